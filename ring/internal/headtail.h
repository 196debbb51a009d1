// The ring's fast paths: moving heads and tails for each sync mode, and copying slots.
// Inline so enqueue/dequeue compile into the caller. Every atomic says what it pairs
// with:
//
//   T0 (UpdateTail): release-store of this side's tail. Pairs with T1.
//   T1 (Entries):    acquire-load of the other side's tail. A producer that sees the
//                    consumer's tail at t may overwrite slots before t: the consumer has
//                    finished reading them. A consumer that sees the producer's tail at t
//                    sees the contents of every slot before t.
//   H0/H1/H2:        single-thread and multi-thread sides keep their head in a line of
//                    their own (HeadTail::head), with a hint: the other side's tail as
//                    last read with T1 (plus the capacity for a producer). hint - head
//                    is a lower bound of what this side may take (the other side's tail
//                    only grows), so while it covers a call the call reads no line the
//                    other side writes: a producer writes its slots and its tail, a
//                    consumer reads its slots and writes its tail, and neither loads
//                    from the other's line. The hint costs no store of its own: it is
//                    stored with the head (H1, the claim of a multi-thread side; H2, the
//                    head store of a single-thread side). When the caller asks for the
//                    count, or the hint does not cover the call, T1 is done again.
//                    H0: acquire load of the head word; H1: acq_rel CAS; H2: release
//                    store. A hint another thread of the side stored is thereby ordered
//                    after that thread's T1, so using it is as good as doing T1.
#ifndef KEEL_RING_INTERNAL_HEADTAIL_H_
#define KEEL_RING_INTERNAL_HEADTAIL_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "base/check.h"
#include "base/kill_point.h"
#include "ring/internal/layout.h"

// The fast path's building blocks are forced inline: each sync mode's enqueue and
// dequeue must compile into straight-line code (GCC otherwise keeps the copy helpers
// out of line and pays a call per operation).
#define KEEL_RING_ALWAYS_INLINE __attribute__((always_inline))
#define KEEL_RING_INLINE inline KEEL_RING_ALWAYS_INLINE

namespace keel::ring_internal {

enum class Behavior { kFixed, kVariable };  // bulk: all or nothing; burst: up to n

inline void Pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// The slots follow the struct in the same allocation. The empty asm hides that from
// GCC's object-size tracking, which would otherwise take copies into the slots for
// writes past the end of the struct (-Wstringop-overflow).
KEEL_RING_INLINE char* Slots(RingLayout& r) {
  char* slots = reinterpret_cast<char*>(&r) + sizeof(RingLayout);
  asm("" : "+r"(slots));
  return slots;
}

// Slots this side may take given the other side's tail: free slots for the producer
// (cap_adj = capacity), filled slots for the consumer (cap_adj = 0). RTS and HTS.
KEEL_RING_INLINE uint32_t Entries(uint32_t cap_adj, const HeadTail& other, uint32_t head) {
  // T1: acquire; pairs with the other side's T0.
  return cap_adj + Pos(other.tail.load(std::memory_order_acquire)) - head;
}

// Single-thread and multi-thread sides: the slots this side may take from the head in
// `word`: from the hint (Aux(word)) when it covers n and the caller does not ask for the
// exact count, else from the other side's tail (T1), which becomes *hint. The hint is
// read as signed: a call that took less than the hint offered leaves it ahead of the
// head, never behind, but Finish of a peek may leave it up to a call's count behind.
KEEL_RING_INLINE uint32_t HintedEntries(const HeadTail& other, uint32_t cap_adj, uint64_t word,
                                        unsigned n, bool exact, uint32_t* hint) {
  const uint32_t head = Pos(word);
  *hint = Aux(word);
  const auto hinted = static_cast<int32_t>(*hint - head);
  if (__builtin_expect(hinted >= 0 && static_cast<uint32_t>(hinted) >= n && !exact, 1)) {
    return static_cast<uint32_t>(hinted);
  }
  // Read the head before the other side's tail: a tail read first could be a lap older
  // than the head and overstate the entries.
  std::atomic_thread_fence(std::memory_order_acquire);
  // T1: acquire; pairs with the other side's T0.
  *hint = Pos(other.tail.load(std::memory_order_acquire)) + cap_adj;
  return *hint - head;
}

KEEL_RING_INLINE unsigned Clamp(unsigned n, uint32_t entries, Behavior behavior) {
  if (__builtin_expect(n <= entries, 1)) return n;
  return behavior == Behavior::kFixed ? 0 : entries;
}

// Moves this side's head by up to n slots. Returns how many it moved (maybe 0);
// *old_head is the head it moved from, *entries what was available before the move,
// *hint the hint to store with the new head (single, multi). A single-thread side's
// head is only computed here: the caller stores it (H2) once the slots are copied.
template <Sync kSync, bool kProducer>
KEEL_RING_INLINE unsigned MoveHead(HeadTail& me, const HeadTail& other, uint32_t cap_adj,
                                   unsigned n, Behavior behavior, bool exact, uint32_t* old_head,
                                   uint32_t* entries, uint32_t* hint) {
  unsigned moved;
  if constexpr (kSync == Sync::kSingle) {
    // H0: acquire; pairs with H1/H2 of whichever thread moved this side last (this
    // one, or before it another one the caller handed the side over to). The caller
    // promises no other thread moves this side now.
    const uint64_t word = me.head.load(std::memory_order_acquire);
    *old_head = Pos(word);
    *entries = HintedEntries(other, cap_adj, word, n, exact, hint);
    moved = Clamp(n, *entries, behavior);
  } else if constexpr (kSync == Sync::kMulti) {
    // H0: acquire; pairs with H1 (the CAS below) or H2 of the thread that stored the
    // hint we may use.
    uint64_t word = me.head.load(std::memory_order_acquire);
    do {
      *old_head = Pos(word);
      *entries = HintedEntries(other, cap_adj, word, n, exact, hint);
      moved = Clamp(n, *entries, behavior);
      if (__builtin_expect(moved == 0, 0)) return 0;
      // H1: acq_rel CAS; claims slots [head, head + moved) among this side's threads and
      // stores the hint with the new head. Release pairs with H0 of the threads that
      // use the hint; acquire on failure reloads as H0.
    } while (__builtin_expect(
        !me.head.compare_exchange_weak(word, Word(Pos(word) + moved, *hint),
                                       std::memory_order_acq_rel, std::memory_order_acquire),
        0));
  } else if constexpr (kSync == Sync::kRts) {
    // Acquire: pairs with the release CAS of the tail in UpdateTail<kRts>, so the
    // head-tail distance below compares values at least that recent.
    uint64_t word = me.head.load(std::memory_order_acquire);
    uint64_t next;
    do {
      // Throttle: wait while this side has more than htd_max slots in flight.
      while (Pos(word) - Pos(me.tail.load(std::memory_order_acquire)) > me.htd_max) {
        Pause();
        word = me.head.load(std::memory_order_acquire);
      }
      *old_head = Pos(word);
      *entries = Entries(cap_adj, other, Pos(word));
      moved = Clamp(n, *entries, behavior);
      if (moved == 0) return 0;
      next = Word(Pos(word) + moved, Aux(word) + 1);
    } while (!me.head.compare_exchange_weak(word, next, std::memory_order_acquire,
                                            std::memory_order_acquire));
  } else {  // kHts: tail = Word(tail, head); one operation at a time per side.
    uint64_t word = me.tail.load(std::memory_order_acquire);
    uint64_t next;
    do {
      while (Aux(word) != Pos(word)) {  // the previous operation has not finished
        Pause();
        word = me.tail.load(std::memory_order_acquire);
      }
      *old_head = Aux(word);
      *entries = Entries(cap_adj, other, Aux(word));
      moved = Clamp(n, *entries, behavior);
      if (moved == 0) return 0;
      next = Word(Pos(word), Aux(word) + moved);
      // Acquire: pairs with the release store in UpdateTail<kHts> of the operation
      // before ours on this side.
    } while (!me.tail.compare_exchange_weak(word, next, std::memory_order_acquire,
                                            std::memory_order_acquire));
  }
  return moved;
}

// Publishes [old_head, new_head): the other side may now use those slots.
template <Sync kSync>
KEEL_RING_INLINE void UpdateTail(HeadTail& me, uint32_t old_head, uint32_t new_head) {
  if constexpr (kSync == Sync::kSingle || kSync == Sync::kMulti) {
    if constexpr (kSync == Sync::kMulti) {
      // W0: acquire; pairs with T0 of the thread of this side that claimed the slots
      // before ours. Our T0 below then publishes its slots with ours: a thread of the
      // other side that sees our tail (T1) sees their contents too. (A plain store does
      // not continue another thread's release sequence, so relaxed would not do.)
      while (__builtin_expect(Pos(me.tail.load(std::memory_order_acquire)) != old_head, 0)) {
        Pause();
      }
    }
    // T0: release; pairs with T1 on the other side.
    me.tail.store(Word(new_head, 0), std::memory_order_release);
  } else if constexpr (kSync == Sync::kRts) {
    // The last of the overlapping operations to finish moves the tail to the head.
    uint64_t tail = me.tail.load(std::memory_order_acquire);
    uint64_t next;
    do {
      // Relaxed: compared by count only; the CAS below orders.
      const uint64_t head = me.head.load(std::memory_order_relaxed);
      next = Word(Pos(tail), Aux(tail) + 1);
      if (Aux(next) == Aux(head)) next = Word(Pos(head), Aux(next));
      // T0 (release on success): pairs with T1 on the other side.
    } while (!me.tail.compare_exchange_weak(tail, next, std::memory_order_release,
                                            std::memory_order_acquire));
  } else {
    // T0: release; pairs with T1 on the other side and with the acquire CAS in
    // MoveHead<kHts> of this side's next operation.
    me.tail.store(Word(new_head, new_head), std::memory_order_release);
  }
}

// Copies 32 bytes.
KEEL_RING_INLINE void Copy32(char* dst, const char* src) {
#if defined(__AVX__)
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
#elif defined(__SSE2__)
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst),
                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16),
                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16)));
#else
  std::memcpy(dst, src, 32);
#endif
}

// Copies n elements of kSize bytes (0: the ring's elem_size) between a buffer and the
// slots. Sizes that divide 32 go 32 bytes at a time, then the rest (a multiple of 4
// below 32 bytes) in pieces of 16, 8 and 4. Written so that GCC does not turn it into a
// call to memcpy, which costs more than the copy itself for the few elements of a
// typical operation.
template <size_t kSize>
KEEL_RING_INLINE void CopyElements(char* dst, const char* src, unsigned n, uint32_t elem_size) {
  if constexpr (kSize == 0 || kSize > 32 || 32 % kSize != 0) {
    std::memcpy(dst, src, static_cast<size_t>(n) * (kSize != 0 ? kSize : elem_size));
  } else {
    size_t bytes = static_cast<size_t>(n) * kSize;
    // Laid out for the few-element copy (a single-object call) as the straight path.
    if (__builtin_expect(bytes >= 32, 0)) {
      do {
        Copy32(dst, src);
        // An empty statement GCC must keep: without it the loop becomes a memcpy call.
        asm volatile("");
        bytes -= 32;
        dst += 32;
        src += 32;
      } while (bytes >= 32);
    }
    if (bytes & 16) {
      std::memcpy(dst, src, 16);
      dst += 16;
      src += 16;
    }
    if (__builtin_expect((bytes & 8) != 0, 1)) {  // one pointer: a single-object call
      std::memcpy(dst, src, 8);
      dst += 8;
      src += 8;
    }
    if (bytes & 4) std::memcpy(dst, src, 4);
  }
}

template <size_t kSize>
KEEL_RING_INLINE void CopyToSlots(RingLayout& r, uint32_t pos, const void* objs, unsigned n) {
  const uint32_t esize = kSize != 0 ? kSize : r.elem_size;
  const uint32_t idx = pos & r.mask;
  const char* src = static_cast<const char*>(objs);
  if (__builtin_expect(idx + n <= r.size, 1)) {  // no wrap: the usual case
    CopyElements<kSize>(Slots(r) + static_cast<size_t>(idx) * esize, src, n, esize);
    return;
  }
  const unsigned first = std::min<unsigned>(n, r.size - idx);  // up to the end of the slots
  CopyElements<kSize>(Slots(r) + static_cast<size_t>(idx) * esize, src, first, esize);
  CopyElements<kSize>(Slots(r), src + static_cast<size_t>(first) * esize, n - first, esize);
}

template <size_t kSize>
KEEL_RING_INLINE void CopyFromSlots(RingLayout& r, uint32_t pos, void* objs, unsigned n) {
  const uint32_t esize = kSize != 0 ? kSize : r.elem_size;
  const uint32_t idx = pos & r.mask;
  char* dst = static_cast<char*>(objs);
  if (__builtin_expect(idx + n <= r.size, 1)) {  // no wrap: the usual case
    CopyElements<kSize>(dst, Slots(r) + static_cast<size_t>(idx) * esize, n, esize);
    return;
  }
  const unsigned first = std::min<unsigned>(n, r.size - idx);  // up to the end of the slots
  CopyElements<kSize>(dst, Slots(r) + static_cast<size_t>(idx) * esize, first, esize);
  CopyElements<kSize>(dst + static_cast<size_t>(first) * esize, Slots(r), n - first, esize);
}

// H2 of a single-thread side: the new head with its hint. Release: pairs with H0 of the
// thread that moves the side next (an explicit Mp/Mc call on this side, or Sp/Sc on a
// multi-thread side, uses the same word). Before T0: a thread killed between the two
// leaves the head ahead of the tail by slots it has finished with, which the side's
// next call publishes with its own; never a tail ahead of the head.
template <Sync kSync>
KEEL_RING_INLINE void StoreHead(HeadTail& me, uint32_t new_head, uint32_t hint) {
  if constexpr (kSync == Sync::kSingle) {
    me.head.store(Word(new_head, hint), std::memory_order_release);
  }
}

template <Sync kSync, size_t kSize>
KEEL_RING_INLINE unsigned Enqueue(RingLayout& r, const void* objs, unsigned n, Behavior behavior,
                                  unsigned* free_space) {
  uint32_t head;
  uint32_t entries;
  uint32_t hint;
  const unsigned moved = MoveHead<kSync, true>(r.prod, r.cons, r.capacity, n, behavior,
                                               free_space != nullptr, &head, &entries, &hint);
  if (moved != 0) {
    CopyToSlots<kSize>(r, head, objs, moved);
    StoreHead<kSync>(r.prod, head + moved, hint);
    // A kill here leaves the head ahead of the tail by slots already written: the side's
    // next call publishes them with its own (ring_multiprocess_test).
    if constexpr (kSync == Sync::kSingle) KillPointForTest("ring.enqueue.after_head");
    UpdateTail<kSync>(r.prod, head, head + moved);
  }
  if (free_space != nullptr) *free_space = entries - moved;
  return moved;
}

template <Sync kSync, size_t kSize>
KEEL_RING_INLINE unsigned Dequeue(RingLayout& r, void* objs, unsigned n, Behavior behavior,
                                  unsigned* available) {
  uint32_t head;
  uint32_t entries;
  uint32_t hint;
  const unsigned moved = MoveHead<kSync, false>(r.cons, r.prod, 0, n, behavior,
                                                available != nullptr, &head, &entries, &hint);
  if (moved != 0) {
    CopyFromSlots<kSize>(r, head, objs, moved);
    StoreHead<kSync>(r.cons, head + moved, hint);
    // A kill here loses the slots read out (with the process that read them) and leaves
    // the tail behind the head: the producer sees less room until the side's next call.
    // Never a duplicate (ring_multiprocess_test).
    if constexpr (kSync == Sync::kSingle) KillPointForTest("ring.dequeue.after_head");
    UpdateTail<kSync>(r.cons, head, head + moved);
  }
  if (available != nullptr) *available = entries - moved;
  return moved;
}

// RTS and HTS operations out of line: they are for sides whose threads may be
// preempted, where a call costs nothing next to the wait; keeping them out of the
// inlined dispatch keeps the single and multi paths small in every caller.
template <Sync kSync, size_t kSize>
__attribute__((noinline)) unsigned EnqueueOutOfLine(RingLayout& r, const void* objs, unsigned n,
                                                    Behavior behavior, unsigned* free_space) {
  return Enqueue<kSync, kSize>(r, objs, n, behavior, free_space);
}

template <Sync kSync, size_t kSize>
__attribute__((noinline)) unsigned DequeueOutOfLine(RingLayout& r, void* objs, unsigned n,
                                                    Behavior behavior, unsigned* available) {
  return Dequeue<kSync, kSize>(r, objs, n, behavior, available);
}

// Dispatch on the side's sync mode (fixed at creation; the branch predicts perfectly).
// Debug builds: the caller's buffer and element size match the ring (KEEL_DCHECK). kSize
// 0: the element calls, which take the ring's own size.
template <size_t kSize>
KEEL_RING_INLINE void CheckCall(const RingLayout& r, const void* objs, unsigned n,
                                const char* call) {
  KEEL_DCHECK(kSize == 0 || r.elem_size == kSize,
              "ring \"%s\": %s of %zu-byte elements on a ring of %u-byte elements", r.name, call,
              kSize, r.elem_size);
  KEEL_DCHECK(objs != nullptr || n == 0, "ring \"%s\": %s of %u elements from a null buffer",
              r.name, call, n);
}

template <size_t kSize>
KEEL_RING_INLINE unsigned EnqueueAny(RingLayout& r, const void* objs, unsigned n, Behavior behavior,
                                     unsigned* free_space) {
  CheckCall<kSize>(r, objs, n, "enqueue");
  const auto sync = static_cast<Sync>(r.prod.sync);
  if (sync == Sync::kSingle) return Enqueue<Sync::kSingle, kSize>(r, objs, n, behavior, free_space);
  if (sync == Sync::kMulti) return Enqueue<Sync::kMulti, kSize>(r, objs, n, behavior, free_space);
  if (sync == Sync::kRts) {
    return EnqueueOutOfLine<Sync::kRts, kSize>(r, objs, n, behavior, free_space);
  }
  return EnqueueOutOfLine<Sync::kHts, kSize>(r, objs, n, behavior, free_space);
}

template <size_t kSize>
KEEL_RING_INLINE unsigned DequeueAny(RingLayout& r, void* objs, unsigned n, Behavior behavior,
                                     unsigned* available) {
  CheckCall<kSize>(r, objs, n, "dequeue");
  const auto sync = static_cast<Sync>(r.cons.sync);
  if (sync == Sync::kSingle) return Dequeue<Sync::kSingle, kSize>(r, objs, n, behavior, available);
  if (sync == Sync::kMulti) return Dequeue<Sync::kMulti, kSize>(r, objs, n, behavior, available);
  if (sync == Sync::kRts) {
    return DequeueOutOfLine<Sync::kRts, kSize>(r, objs, n, behavior, available);
  }
  return DequeueOutOfLine<Sync::kHts, kSize>(r, objs, n, behavior, available);
}

// --- Peek and zero-copy: single-thread and HTS sides only --------------------------
// Start moves the head (the slots are this thread's until Finish); Finish publishes
// the first n of them and gives the rest back.

// Debug builds record an open Start of a single-thread side in the side's head word,
// which such a side does not otherwise use: Word(the head after the Start, 1) until the
// Finish, 0 otherwise, so that Finish can check its count (KEEL_DCHECK). An HTS side
// keeps its head in its tail word anyway. Debug and optimized builds never share a group
// (the EAL's build fingerprint includes debug checks), so neither misreads the other.
#ifdef NDEBUG
inline constexpr bool kDebugChecks = false;
#else
inline constexpr bool kDebugChecks = true;
#endif

inline bool CanPeek(const HeadTail& side) {
  return side.sync == static_cast<uint32_t>(Sync::kSingle) ||
         side.sync == static_cast<uint32_t>(Sync::kHts);
}

template <bool kProducer>
inline unsigned StartMove(RingLayout& r, unsigned n, Behavior behavior, uint32_t* head,
                          unsigned* entries_out) {
  HeadTail& me = kProducer ? r.prod : r.cons;
  const HeadTail& other = kProducer ? r.cons : r.prod;
  const uint32_t cap_adj = kProducer ? r.capacity : 0;
  const bool exact = entries_out != nullptr;
  uint32_t entries = 0;
  uint32_t hint;
  unsigned moved = 0;
  if (me.sync == static_cast<uint32_t>(Sync::kSingle)) {
    if constexpr (kDebugChecks) {
      // Relaxed: only this thread (the side's one thread) uses the record.
      KEEL_DCHECK(me.started.load(std::memory_order_relaxed) == 0,
                  "ring \"%s\": %s Start while the previous Start is not finished", r.name,
                  kProducer ? "an enqueue" : "a dequeue");
    }
    // The head stays where it is until Finish (which moves it and the tail).
    moved = MoveHead<Sync::kSingle, kProducer>(me, other, cap_adj, n, behavior, exact, head,
                                               &entries, &hint);
    if (kDebugChecks && moved != 0) {
      // Relaxed: as above.
      me.started.store(moved + 1, std::memory_order_relaxed);
    }
  } else if (me.sync == static_cast<uint32_t>(Sync::kHts)) {
    moved = MoveHead<Sync::kHts, kProducer>(me, other, cap_adj, n, behavior, exact, head, &entries,
                                            &hint);
  }
  if (entries_out != nullptr) *entries_out = entries - moved;
  return moved;
}

// Slots the open Start of a side that can peek holds: 0 when none is open. Exact on an
// HTS side; on a single-thread side, debug builds only (0 in others).
inline uint32_t Reserved(const HeadTail& me) {
  if (me.sync == static_cast<uint32_t>(Sync::kHts)) {
    // Relaxed: read by the thread that owns the open Start, which wrote the word.
    const uint64_t tail = me.tail.load(std::memory_order_relaxed);
    return Aux(tail) - Pos(tail);
  }
  // Relaxed: as above (the debug record of StartMove).
  const uint32_t started = me.started.load(std::memory_order_relaxed);
  return started != 0 ? started - 1 : 0;
}

// Debug builds: a Finish finishes at most what its own Start holds.
inline void CheckFinish(const RingLayout& r, const HeadTail& me, unsigned n, const char* call) {
  if constexpr (kDebugChecks) {
    if (!CanPeek(me)) return;  // Finish does nothing there
    const uint32_t reserved = Reserved(me);
    KEEL_DCHECK(n <= reserved,
                "ring \"%s\": %s(%u) with %u slots started: a Finish needs its own Start "
                "and finishes at most what that Start returned",
                r.name, call, n, reserved);
  }
}

// Publishes n slots from the side's tail (the head Start moved from).
// Does nothing on sides that cannot peek (their Start returned 0).
inline void FinishMove(HeadTail& me, unsigned n) {
  if (!CanPeek(me)) return;
  if (me.sync == static_cast<uint32_t>(Sync::kSingle)) {
    // Relaxed: the debug record of the open Start (StartMove), this thread's only.
    if constexpr (kDebugChecks) me.started.store(0, std::memory_order_relaxed);
    // H0: acquire (as in MoveHead); only this thread moves this side now. The hint stays:
    // it may fall behind the new head by up to n (HintedEntries reads it signed).
    const uint64_t word = me.head.load(std::memory_order_acquire);
    StoreHead<Sync::kSingle>(me, Pos(word) + n, Aux(word));   // H2
    UpdateTail<Sync::kSingle>(me, Pos(word), Pos(word) + n);  // the rest is given back
  } else {
    // Relaxed: only this thread (the side's owner of the started operation) moves this
    // side now.
    const uint32_t tail = Pos(me.tail.load(std::memory_order_relaxed));
    UpdateTail<Sync::kHts>(me, tail, tail + n);
  }
}

}  // namespace keel::ring_internal

#endif  // KEEL_RING_INTERNAL_HEADTAIL_H_
