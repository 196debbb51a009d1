// The ring as it lives in shared memory (or in memory the caller provides).
//
// Shared-memory rules: see eal/internal/layout.h. Standard layout; atomics are
// always-lock-free 32/64-bit; no pointers (slots follow the struct); producer and
// consumer state on cache lines of their own, 128 bytes apart so adjacent-line
// prefetch does not pair them, and within each side the published tail apart from the
// side's own head; kLayoutVersion checked at Lookup.
//
// Positions are free-running 32-bit counters; a slot index is position & mask. Each
// side (producer, consumer) keeps its state in one HeadTail. Whatever the side's sync
// mode, Pos(tail) is the side's published tail position: the one word the other side
// reads.
//   multi:         head = Word(head, 0)            tail = Word(tail, 0)
//   single:        head unused                     tail = Word(tail, claimed)
//                  (claimed: slots explicit Mp/Mc calls hold beyond the tail; 0 when
//                  none runs, so the side's own calls store Word(tail, 0))
//   RTS:           head = Word(head, head count)   tail = Word(tail, tail count)
//   HTS:           head unused                     tail = Word(tail, head)
#ifndef KEEL_RING_INTERNAL_LAYOUT_H_
#define KEEL_RING_INTERNAL_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace keel::ring_internal {

// Bump on any change to the structs in this file.
inline constexpr uint32_t kLayoutVersion = 4;
inline constexpr uint64_t kRingMagic = 0x676e69726c65656bULL;  // "keelring"
inline constexpr uint32_t kMaxCount = 0x7fffffff;
inline constexpr int kNameSize = 64;

enum class Sync : uint32_t { kMulti = 0, kSingle = 1, kRts = 2, kHts = 3 };

// A word holds a position in its low half, so reading one is a plain truncation and a
// single/multi word is the position itself, and a second field (RTS: an operation
// count; HTS: the head) in its high half.
inline constexpr uint32_t Pos(uint64_t word) { return static_cast<uint32_t>(word); }
inline constexpr uint32_t Aux(uint64_t word) { return static_cast<uint32_t>(word >> 32); }
inline constexpr uint64_t Word(uint32_t pos, uint32_t aux) {
  return (static_cast<uint64_t>(aux) << 32) | pos;
}

struct alignas(128) HeadTail {
  // The side's published word: the one the other side reads (T1 in headtail.h). Beside
  // it only what changes rarely, so the other side's polling costs this side nothing.
  std::atomic<uint64_t> tail;
  // Single producer: the consumer's tail as last read plus the capacity, a lower
  // bound of how far the producer may fill; single consumer: the producer's tail as
  // last read. So the fast path need not touch the other side's line on every call
  // (C0-C3 in headtail.h). Unused by other sides.
  std::atomic<uint32_t> limit;
  uint32_t sync;     // Sync
  uint32_t htd_max;  // RTS: how far the head may run ahead of the tail
  // Multi-thread, RTS: the head the side's threads compare-and-swap, 128 bytes on (past
  // adjacent-line prefetch), so that traffic stays off the published line. A
  // single-thread side keeps no head (it is its tail); HTS keeps it in the tail word.
  alignas(128) std::atomic<uint64_t> head;
};

struct RingLayout {
  // Read-only after init.
  alignas(64) uint64_t magic;
  uint32_t layout_version;
  uint32_t flags;      // the creation flags (ring.h)
  uint32_t size;       // slots: a power of two
  uint32_t mask;       // size - 1
  uint32_t capacity;   // usable slots: size - 1, or the exact count
  uint32_t elem_size;  // bytes per element, a multiple of 4
  char name[kNameSize];
  HeadTail prod;
  HeadTail cons;
  // The slots follow: size * elem_size bytes at this + sizeof(RingLayout).
};

static_assert(std::is_standard_layout_v<RingLayout>);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(sizeof(RingLayout) % 128 == 0);
static_assert(offsetof(RingLayout, cons) - offsetof(RingLayout, prod) >= 128);

}  // namespace keel::ring_internal

#endif  // KEEL_RING_INTERNAL_LAYOUT_H_
