// The memory component's shared state: RUNDIR/memory, mapped at the group's base
// address in every process, followed by the segments.
//
//   base                      the group's address range (one reservation per process)
//   |- MemoryConfig           RUNDIR/memory (ordinary file)
//   |- segment 0              hugetlbfs file HUGEDIR/keel.PREFIX.GROUP.seg0 (with
//   |- segment 1 ...          --no-huge: SHMDIR/keel.PREFIX.GROUP.seg0, SHMDIR being
//                             /dev/shm or $KEEL_SHM_DIR), each aligned to its page size
//
// GROUP is the group id (16 hex digits, random per primary): two groups of one prefix
// under different runtime directories never share a file name. Every process that maps
// a segment holds an OFD read lock on its file for as long as it lives; a segment file
// is stale — and removed by the next primary of its prefix — only when a write lock on
// it can be taken, so the kernel, not a pid, says it is unused.
//
// Shared-memory rules: see eal/internal/layout.h. In short: standard layout, offsets
// not pointers (an offset is from `base`; 0 means none), robust locks, and
// kLayoutVersion checked by every process that attaches. The header is written once and
// checksummed; a secondary validates every field of it before mapping anything.
#ifndef KEEL_MEMORY_INTERNAL_LAYOUT_H_
#define KEEL_MEMORY_INTERNAL_LAYOUT_H_

#include <pthread.h>

#include <cstdint>
#include <type_traits>

#include "memory/internal/heap.h"

namespace keel::memory_internal {

// Bump on any change to the structs in this file or in heap.h.
inline constexpr uint32_t kLayoutVersion = 2;
inline constexpr uint64_t kMemoryMagic = 0x316d656d6c65656bULL;  // "keelmem1"

inline constexpr int kMaxSegments = 8;
inline constexpr int kMaxSockets = 8;
inline constexpr int kMaxMemzones = 2560;
inline constexpr int kMaxObjects = 1024;
inline constexpr int kNameSize = 64;  // names up to 63 characters
inline constexpr int kKindSize = 16;
inline constexpr int kPathSize = 192;

// How the names lock is named in logs and errors (the heap lock: heap.h).
inline constexpr char kNamesLockName[] = "memory names lock";

struct SegmentRecord {
  char path[kPathSize];
  uint64_t offset;     // from base, a multiple of page_size
  uint64_t size;       // a multiple of page_size
  uint64_t page_size;
  int32_t socket;
  uint32_t hugepages;  // 1: hugetlbfs file; 0: ordinary file in the runtime dir
};

// Written once by the primary before it publishes init-complete; read-only afterwards.
// A secondary reads it with pread() to learn where to map everything.
struct MemoryHeader {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t segment_count;
  uint64_t group_id;    // in every segment file's name
  uint64_t checksum;    // FNV-1a of this header with checksum = 0
  uint64_t base;        // address of the MemoryConfig in every process
  uint64_t total_size;  // length of the group's address range
  uint64_t config_size; // bytes of RUNDIR/memory
  uint64_t limit_mb;    // the -m / --socket-mem total the primary was given
  SegmentRecord segments[kMaxSegments];
};

struct MemzoneRecord {
  char name[kNameSize];
  uint64_t offset;  // of the zone's first byte
  uint64_t size;
  uint64_t align;
  int32_t socket;
  uint32_t in_use;  // written last when reserving, first when freeing
};

struct ObjectRecord {
  char name[kNameSize];
  char kind[kKindSize];  // "ring", "mempool", ...
  uint64_t offset;       // of the object
  uint32_t layout_version;
  uint32_t in_use;       // written last when registering, first when unregistering
  int32_t creator_pid;
  uint32_t pad;
};

struct MemoryConfig {
  MemoryHeader header;
  // Robust. Guards memzones[] and objects[]. Lock order: names_lock, then a heap lock.
  alignas(64) pthread_mutex_t names_lock;
  HeapHeader heaps[kMaxSockets];  // heaps[s] serves NUMA node s; size 0 = no memory there
  MemzoneRecord memzones[kMaxMemzones];
  ObjectRecord objects[kMaxObjects];
};

static_assert(std::is_standard_layout_v<MemoryConfig>);
static_assert(std::is_trivially_copyable_v<MemoryHeader>);
static_assert(std::is_trivially_copyable_v<MemzoneRecord>);
static_assert(std::is_trivially_copyable_v<ObjectRecord>);
static_assert(offsetof(MemoryConfig, header) == 0);

}  // namespace keel::memory_internal

#endif  // KEEL_MEMORY_INTERNAL_LAYOUT_H_
