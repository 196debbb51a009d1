// The shared heap's allocator: boundary-tagged blocks with segregated free lists,
// living entirely in shared memory and addressed by offsets from a base address.
//
// A heap covers [start, start + size) (offsets from `base`). Every block starts with a
// 64-byte BlockHeader; the caller's data follows it, so Free finds the header at
// ptr - 64. Free blocks sit on one of kHeapBins doubly linked lists by size class
// (floor(log2(size))). Allocation is first fit over the bins from the request's class
// up; freeing coalesces with both neighbours.
//
// Crash consistency: the block chain (walking by `size` from `start`) is the source of
// truth and is valid after every single store: a split writes the new block's header
// before shrinking the old block's size, a merge is one store that grows a block over
// its neighbour. Free lists, prev_size and counters are derived: after a holder of the
// heap lock died, HeapRebuildLocked() recomputes them from the chain. Memory a dead
// process was in the middle of allocating stays allocated (leaked, not corrupt).
//
// The functions work on any memory (tests use a local buffer): no EAL needed.
#ifndef KEEL_MEMORY_INTERNAL_HEAP_H_
#define KEEL_MEMORY_INTERNAL_HEAP_H_

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "absl/status/status.h"

namespace keel::memory_internal {

inline constexpr uint64_t kBlockHeaderSize = 64;
inline constexpr uint64_t kMinBlockSize = 128;  // header + 64 bytes of data
inline constexpr int kHeapBins = 48;
inline constexpr uint32_t kBlockMagic = 0x6b6c626bu;  // "kblk"

enum BlockState : uint32_t { kBlockFree = 1, kBlockBusy = 2 };

struct BlockHeader {
  uint64_t size;       // whole block, header included; a multiple of 64
  uint64_t prev_size;  // size of the block before it, 0 for the first (derived)
  uint32_t state;      // BlockState
  uint32_t magic;      // kBlockMagic
  uint64_t next_free;  // free blocks: next/prev in the bin, offsets, 0 = none (derived)
  uint64_t prev_free;
  uint64_t requested;  // busy blocks: bytes the caller asked for
  uint64_t reserved[2];
};
static_assert(sizeof(BlockHeader) == kBlockHeaderSize);
static_assert(std::is_trivially_copyable_v<BlockHeader>);

// How the heap lock is named in logs and errors.
inline constexpr char kHeapLockName[] = "memory heap lock";

struct alignas(64) HeapHeader {
  pthread_mutex_t lock;  // robust; guards everything below and the heap's blocks
  int32_t socket;
  uint32_t pad;
  uint64_t start;        // offset of the first block
  uint64_t size;         // bytes covered
  uint64_t free_bytes;   // (derived)
  uint64_t busy_blocks;  // (derived)
  uint64_t free_heads[kHeapBins];  // (derived)
};
static_assert(std::is_standard_layout_v<HeapHeader>);

// Sets up one free block over the range. `start` and `size` are multiples of 64 and
// size >= kMinBlockSize. Initializes the lock (an error only when that fails). Not
// thread-safe.
absl::Status HeapInit(HeapHeader* heap, char* base, uint64_t start, uint64_t size, int socket);

// The caller holds heap->lock for all of these.
// A block of at least `size` bytes aligned to `align` (a power of two), or nullptr.
void* HeapAllocLocked(HeapHeader* heap, char* base, uint64_t size, uint64_t align);
// Frees a pointer HeapAllocLocked returned. False (nothing changed) when `ptr` is not
// the start of a busy block of this heap: a double free or a foreign pointer.
bool HeapFreeLocked(HeapHeader* heap, char* base, void* ptr);
// Recomputes the derived state from the block chain (after EOWNERDEAD).
void HeapRebuildLocked(HeapHeader* heap, char* base);
// The largest block an allocation could get (data bytes).
uint64_t HeapLargestFreeLocked(const HeapHeader* heap, const char* base);
// True when `ptr` lies inside the heap's range.
bool HeapContains(const HeapHeader* heap, const char* base, const void* ptr);
// Checks every invariant (chain covers the range, lists hold exactly the free blocks,
// counters match, no two free neighbours). For tests and audits.
bool HeapCheckLocked(const HeapHeader* heap, const char* base);

}  // namespace keel::memory_internal

#endif  // KEEL_MEMORY_INTERNAL_HEAP_H_
