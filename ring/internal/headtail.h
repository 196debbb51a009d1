// The ring's fast paths: moving heads and tails for each sync mode, and copying slots.
// Inline so enqueue/dequeue compile into the caller. Every atomic says what it pairs
// with:
//
//   T0 (UpdateTail): release-store of this side's tail. Pairs with T1.
//   T1 (Entries):    acquire-load of the other side's tail. A producer that sees the
//                    consumer's tail at t may overwrite slots before t: the consumer has
//                    finished reading them. A consumer that sees the producer's tail at t
//                    sees the contents of every slot before t.
//   C0/C1:           a single producer keeps HeadTail::limit, the consumer's tail as
//                    last read with T1 plus the capacity: it may fill slots up to there
//                    without reading the consumer's line. Only that one thread reads
//                    and writes it, so relaxed is enough: the thread that did T1 is the
//                    thread that uses the value. A stale limit is a lower bound of the
//                    real one, so the free space it gives is a lower bound too; when the
//                    caller asks for the free space, or the limit is too low, T1 is done
//                    again. (Consumers and multi-thread producers were measured slower
//                    with such a cache: a consumer usually finds the ring near empty and
//                    must read the tail anyway, and a shared hint costs more stores to
//                    a contended line than the reads it saves.)
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
// (cap_adj = capacity), filled slots for the consumer (cap_adj = 0). exact: the caller
// reports the count, so a single-thread side's cached limit is not enough.
template <Sync kSync, bool kProducer>
KEEL_RING_INLINE uint32_t Entries(uint32_t cap_adj, HeadTail& me, const HeadTail& other,
                                  uint32_t head, unsigned n, bool exact) {
  if constexpr (kSync == Sync::kSingle && kProducer) {
    // C0: relaxed (see above).
    const uint32_t free = me.limit.load(std::memory_order_relaxed) - head;
    if (__builtin_expect(free >= n && !exact, 1)) return free;
  } else if constexpr (kSync == Sync::kSingle) {
    // C2: relaxed (see above). Read as signed: the limit may have fallen behind the head.
    const auto filled = static_cast<int32_t>(me.limit.load(std::memory_order_relaxed) - head);
    if (filled >= static_cast<int32_t>(n) && !exact) return static_cast<uint32_t>(filled);
  }
  // T1: acquire; pairs with the other side's T0.
  const uint32_t tail = Pos(other.tail.load(std::memory_order_acquire));
  if constexpr (kSync == Sync::kSingle && kProducer) {
    // C1: relaxed (see above).
    me.limit.store(tail + cap_adj, std::memory_order_relaxed);
  } else if constexpr (kSync == Sync::kSingle) {
    // C3: relaxed (see above). Only when what was read outlasts this call, or before the
    // old limit falls 2^30 behind the head (so C2's signed reading stays exact).
    if (tail - head > n || head - me.limit.load(std::memory_order_relaxed) >= (1u << 30)) {
      me.limit.store(tail, std::memory_order_relaxed);
    }
  }
  return cap_adj + tail - head;
}

KEEL_RING_INLINE unsigned Clamp(unsigned n, uint32_t entries, Behavior behavior) {
  if (__builtin_expect(n <= entries, 1)) return n;
  return behavior == Behavior::kFixed ? 0 : entries;
}

// Moves this side's head by up to n slots. Returns how many it moved (maybe 0);
// *old_head is the head it moved from, *entries what was available before the move.
// kKeepHead: the single-thread algorithm on a multi-thread side (an explicit Sp/Sc
// call) keeps the head in step for the side's compare-and-swap calls; a single-thread
// side keeps no head (it is its tail).
template <Sync kSync, bool kProducer, bool kKeepHead = false>
KEEL_RING_INLINE unsigned MoveHead(HeadTail& me, const HeadTail& other, uint32_t cap_adj,
                                   unsigned n, Behavior behavior, bool exact, uint32_t* old_head,
                                   uint32_t* entries) {
  unsigned moved;
  if constexpr (kSync == Sync::kSingle) {
    // One thread moves this side, so its head is its tail whenever it starts an
    // operation (a started peek is finished before the next): the head is not kept.
    // Relaxed: only this thread writes this side's tail.
    const uint32_t head = Pos(me.tail.load(std::memory_order_relaxed));
    *old_head = head;
    // On a multi-thread side (kKeepHead) the limit is not kept up to date: read the
    // consumer's tail.
    *entries = Entries<kSync, kProducer>(cap_adj, me, other, head, n, exact || kKeepHead);
    moved = Clamp(n, *entries, behavior);
    // Relaxed: the caller promises no other thread moves this side now.
    if (kKeepHead && moved != 0) me.head.store(Word(head + moved, 0), std::memory_order_relaxed);
  } else if constexpr (kSync == Sync::kMulti) {
    // Relaxed: the CAS below decides; the slots are ordered by T0/T1, not by the head.
    uint64_t word = me.head.load(std::memory_order_relaxed);
    do {
      const uint32_t head = Pos(word);
      // Read the head before the other side's tail: a tail read first could be a lap
      // older than the head and overstate the entries.
      std::atomic_thread_fence(std::memory_order_acquire);
      *old_head = head;
      *entries = Entries<kSync, kProducer>(cap_adj, me, other, head, n, exact);
      moved = Clamp(n, *entries, behavior);
      if (__builtin_expect(moved == 0, 0)) return 0;
      // Relaxed CAS: it only claims slots [head, head + moved) among this side's threads.
    } while (__builtin_expect(
        !me.head.compare_exchange_weak(word, Word(Pos(word) + moved, 0), std::memory_order_relaxed,
                                       std::memory_order_relaxed),
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
      *entries = Entries<kSync, kProducer>(cap_adj, me, other, Pos(word), n, exact);
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
      *entries = Entries<kSync, kProducer>(cap_adj, me, other, Aux(word), n, exact);
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

template <Sync kSync, size_t kSize, bool kKeepHead = false>
KEEL_RING_INLINE unsigned Enqueue(RingLayout& r, const void* objs, unsigned n, Behavior behavior,
                                  unsigned* free_space) {
  uint32_t head;
  uint32_t entries;
  const unsigned moved = MoveHead<kSync, true, kKeepHead>(r.prod, r.cons, r.capacity, n, behavior,
                                                          free_space != nullptr, &head, &entries);
  if (moved != 0) {
    CopyToSlots<kSize>(r, head, objs, moved);
    UpdateTail<kSync>(r.prod, head, head + moved);
  }
  if (free_space != nullptr) *free_space = entries - moved;
  return moved;
}

template <Sync kSync, size_t kSize, bool kKeepHead = false>
KEEL_RING_INLINE unsigned Dequeue(RingLayout& r, void* objs, unsigned n, Behavior behavior,
                                  unsigned* available) {
  uint32_t head;
  uint32_t entries;
  const unsigned moved = MoveHead<kSync, false, kKeepHead>(r.cons, r.prod, 0, n, behavior,
                                                           available != nullptr, &head, &entries);
  if (moved != 0) {
    CopyFromSlots<kSize>(r, head, objs, moved);
    UpdateTail<kSync>(r.cons, head, head + moved);
  }
  if (available != nullptr) *available = entries - moved;
  return moved;
}

// --- Explicit multi-thread calls on a side created single-thread ---------------------
// DPDK's rte_ring_mp_enqueue / rte_ring_mc_dequeue are multi-thread safe whatever the
// ring's flags, so MpEnqueue* / McDequeue* are too. A single-thread side keeps no head:
// its head is its tail, and its single-thread calls store Word(tail, 0). These calls
// claim slots in the tail word's high half instead: Aux(tail) counts the slots claimed
// beyond the published tail (0 whenever no such call runs), so the side's head is
// Pos(tail) + Aux(tail). The other side reads Pos(tail) only: it sees no difference. The
// single-thread path is untouched (it costs it nothing); the contract is DPDK's: these
// calls may run concurrently with each other, not with the side's single-thread calls
// (generic, Sp/Sc, peek), which assume no other thread moves the side.
//
// Every modification of the tail word while these calls run is a read-modify-write (S0,
// S1), so each continues the release sequence of the publications before it: the other
// side's T1 that reads a value synchronizes with every publication up to it.
//
// The single-thread side's `limit` (C0-C3) must stay a valid bound for the side's next
// single-thread call: every call here raises it (S2) to what it read of the other
// side's tail (plus the capacity), which covers the slots it claimed, before it
// publishes them. So limit >= Pos(tail) (producer) and the consumer's signed reading of
// C2 stays exact.
//
// A thread killed between S0 and S1 leaves its claim in Aux(tail) for good: the side's
// later Mp/Mc calls wait for it (W1) as on a multi-thread side; the other side is not
// affected (DPDK's behaviour for a killed multi-thread producer or consumer).

// S2: raises `limit` to `value` (free-running: compared by signed difference).
// Relaxed: the limit is a bound, not a publication; whichever thread raises it last,
// it is at least every value raised so far. Pairs with nothing: the side's next
// single-thread call runs after these calls by the caller's own synchronization.
inline void RaiseLimit(HeadTail& me, uint32_t value) {
  uint32_t current = me.limit.load(std::memory_order_relaxed);
  while (static_cast<int32_t>(value - current) > 0 &&
         !me.limit.compare_exchange_weak(current, value, std::memory_order_relaxed,
                                         std::memory_order_relaxed)) {
  }
}

template <bool kProducer>
inline unsigned ClaimOnSingleSide(HeadTail& me, const HeadTail& other, uint32_t cap_adj, unsigned n,
                                  Behavior behavior, uint32_t* old_head, uint32_t* entries) {
  // Relaxed: the CAS below decides; the slots are ordered by T0/T1.
  uint64_t word = me.tail.load(std::memory_order_relaxed);
  unsigned moved;
  uint32_t other_tail;
  do {
    const uint32_t head = Pos(word) + Aux(word);
    // Read our word before the other side's tail (as MoveHead<kMulti>).
    std::atomic_thread_fence(std::memory_order_acquire);
    *old_head = head;
    // T1: acquire; pairs with the other side's T0.
    other_tail = Pos(other.tail.load(std::memory_order_acquire));
    *entries = cap_adj + other_tail - head;
    moved = Clamp(n, *entries, behavior);
    if (moved == 0) return 0;
    // S0: relaxed CAS; claims [head, head + moved) among this side's Mp/Mc callers. The
    // published position (low half) is unchanged.
  } while (!me.tail.compare_exchange_weak(word, Word(Pos(word), Aux(word) + moved),
                                          std::memory_order_relaxed, std::memory_order_relaxed));
  RaiseLimit(me, other_tail + cap_adj);  // S2, before S1 publishes the claim
  return moved;
}

inline void PublishOnSingleSide(HeadTail& me, uint32_t old_head, unsigned moved) {
  // W1: relaxed; the CAS orders. Wait for the calls that claimed before us to publish.
  uint64_t word = me.tail.load(std::memory_order_relaxed);
  for (;;) {
    if (__builtin_expect(Pos(word) != old_head, 0)) {
      Pause();
      word = me.tail.load(std::memory_order_relaxed);
      continue;
    }
    // S1 (T0 for this mode): release CAS; pairs with T1 on the other side. Moves the
    // published position past our slots and takes them out of the claimed count.
    if (me.tail.compare_exchange_weak(word, Word(old_head + moved, Aux(word) - moved),
                                      std::memory_order_release, std::memory_order_relaxed)) {
      return;
    }
  }
}

// Out of line: a ported program's path, not the single-thread side's.
__attribute__((noinline)) inline unsigned EnqueueOnSingleSide(RingLayout& r, const void* objs,
                                                              unsigned n, Behavior behavior,
                                                              unsigned* free_space) {
  uint32_t head;
  uint32_t entries = 0;
  const unsigned moved =
      ClaimOnSingleSide<true>(r.prod, r.cons, r.capacity, n, behavior, &head, &entries);
  if (moved != 0) {
    CopyToSlots<8>(r, head, objs, moved);
    PublishOnSingleSide(r.prod, head, moved);
  }
  if (free_space != nullptr) *free_space = entries - moved;
  return moved;
}

__attribute__((noinline)) inline unsigned DequeueOnSingleSide(RingLayout& r, void* objs, unsigned n,
                                                              Behavior behavior,
                                                              unsigned* available) {
  uint32_t head;
  uint32_t entries = 0;
  const unsigned moved = ClaimOnSingleSide<false>(r.cons, r.prod, 0, n, behavior, &head, &entries);
  if (moved != 0) {
    CopyFromSlots<8>(r, head, objs, moved);
    PublishOnSingleSide(r.cons, head, moved);
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
  unsigned moved = 0;
  if (me.sync == static_cast<uint32_t>(Sync::kSingle)) {
    if constexpr (kDebugChecks) {
      // Relaxed: only this thread (the side's one thread) uses the record.
      KEEL_DCHECK(Aux(me.head.load(std::memory_order_relaxed)) == 0,
                  "ring \"%s\": %s Start while the previous Start is not finished", r.name,
                  kProducer ? "an enqueue" : "a dequeue");
    }
    moved =
        MoveHead<Sync::kSingle, kProducer>(me, other, cap_adj, n, behavior, exact, head, &entries);
    if (kDebugChecks && moved != 0) {
      // Relaxed: as above.
      me.head.store(Word(*head + moved, 1), std::memory_order_relaxed);
    }
  } else if (me.sync == static_cast<uint32_t>(Sync::kHts)) {
    moved = MoveHead<Sync::kHts, kProducer>(me, other, cap_adj, n, behavior, exact, head, &entries);
  }
  if (entries_out != nullptr) *entries_out = entries - moved;
  return moved;
}

// Slots the open Start of a side that can peek holds: 0 when none is open. Exact on an
// HTS side; on a single-thread side, debug builds only (0 in others).
inline uint32_t Reserved(const HeadTail& me) {
  // Relaxed: read by the thread that owns the open Start, which wrote both words.
  const uint64_t tail = me.tail.load(std::memory_order_relaxed);
  if (me.sync == static_cast<uint32_t>(Sync::kHts)) return Aux(tail) - Pos(tail);
  // Relaxed: as above.
  const uint64_t head = me.head.load(std::memory_order_relaxed);
  return Aux(head) != 0 ? Pos(head) - Pos(tail) : 0;
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
  // Relaxed: only this thread (the side's single owner of the started operation)
  // moves this side now.
  const uint32_t tail = Pos(me.tail.load(std::memory_order_relaxed));
  if (me.sync == static_cast<uint32_t>(Sync::kSingle)) {
    // Relaxed: the debug record of the open Start (StartMove), this thread's only.
    if constexpr (kDebugChecks) me.head.store(0, std::memory_order_relaxed);
    UpdateTail<Sync::kSingle>(me, tail, tail + n);  // the rest of what Start took is back
  } else {
    UpdateTail<Sync::kHts>(me, tail, tail + n);
  }
}

}  // namespace keel::ring_internal

#endif  // KEEL_RING_INTERNAL_HEADTAIL_H_
