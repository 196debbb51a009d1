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
//   single/multi:  head = Word(head, hint)         tail = Word(tail, 0)
//                  (hint: the other side's tail as last read, plus the capacity for a
//                  producer, a bound the side uses instead of reading the other side's
//                  line; 0 with head 0 after Init or Reset. Whenever no call runs, a
//                  single/multi side's head equals its tail, so either algorithm may
//                  move it next: explicit Mp/Mc calls on a single-thread side, Sp/Sc on
//                  a multi-thread one.)
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
inline constexpr uint32_t kLayoutVersion = 5;
inline constexpr uint64_t kRingMagic = 0x676e69726c65656bULL;  // "keelring"
inline constexpr uint32_t kMaxCount = 0x7fffffff;
inline constexpr int kNameSize = 64;

enum class Sync : uint32_t { kMulti = 0, kSingle = 1, kRts = 2, kHts = 3 };

// A word holds a position in its low half, so reading one is a plain truncation, and a
// second field (single/multi head: the hint; RTS: an operation count; HTS tail: the
// head) in its high half.
inline constexpr uint32_t Pos(uint64_t word) { return static_cast<uint32_t>(word); }
inline constexpr uint32_t Aux(uint64_t word) { return static_cast<uint32_t>(word >> 32); }
inline constexpr uint64_t Word(uint32_t pos, uint32_t aux) {
  return (static_cast<uint64_t>(aux) << 32) | pos;
}

struct alignas(128) HeadTail {
  // The side's published word: the one the other side reads (T1 in headtail.h), alone
  // on its line, so the other side's polling steals nothing this side loads.
  std::atomic<uint64_t> tail;
  // 128 bytes on (past adjacent-line prefetch): the side's own line, which the other
  // side never touches, so a call whose hint covers it loads nothing the other side
  // writes. Single, multi: Word(head, hint), the hint being the other side's tail as
  // last read (plus the capacity on the producer's side), H0-H2 in headtail.h; RTS:
  // Word(head, operation count); HTS: unused (its head is in the tail word).
  alignas(128) std::atomic<uint64_t> head;
  // Debug builds, single-thread side: 1 + the slots an open peek or zero-copy Start
  // holds, 0 when none (for KEEL_DCHECK in Finish). Unused otherwise.
  std::atomic<uint32_t> started;
  uint32_t sync;     // Sync; read-only after Init
  uint32_t htd_max;  // RTS: how far the head may run ahead of the tail; read-only
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
static_assert(sizeof(HeadTail) == 256);
static_assert(offsetof(HeadTail, head) == 128);

}  // namespace keel::ring_internal

#endif  // KEEL_RING_INTERNAL_LAYOUT_H_
