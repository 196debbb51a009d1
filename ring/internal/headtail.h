// The ring's fast paths: moving heads and tails for each sync mode, and copying slots.
// Inline so enqueue/dequeue compile into the caller. Every atomic says what it pairs
// with:
//
//   T0 (UpdateTail): release-store of this side's tail. Pairs with T1.
//   T1 (Entries):    acquire-load of the other side's tail. A producer that sees the
//                    consumer's tail at t may overwrite slots before t: the consumer has
//                    finished reading them. A consumer that sees the producer's tail at t
//                    sees the contents of every slot before t.
//   C0/C1:           the cached copy of the other side's tail (HeadTail::other_tail):
//                    C1 release-stores a value read with T1, C0 acquire-loads it, so a
//                    thread using the cache is ordered after the other side's T0 exactly
//                    as if it had done T1 itself.
#ifndef KEEL_RING_INTERNAL_HEADTAIL_H_
#define KEEL_RING_INTERNAL_HEADTAIL_H_

#include <atomic>
#include <cstdint>
#include <cstring>

#include "ring/internal/layout.h"

namespace keel::ring_internal {

enum class Behavior { kFixed, kVariable };  // bulk: all or nothing; burst: up to n

inline void Pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

inline char* Slots(RingLayout& r) { return reinterpret_cast<char*>(&r) + sizeof(RingLayout); }

// Slots this side may take given the other side's tail: free slots for the producer
// (cap_adj = capacity), filled slots for the consumer (cap_adj = 0). exact: the caller
// reports the count (free_space / available), so the cached tail, a lower bound that
// can be a whole ring behind, is not enough and the real tail is read.
template <Sync kSync>
inline uint32_t Entries(const RingLayout& r, HeadTail& me, HeadTail& other, uint32_t cap_adj,
                        uint32_t head, unsigned n, bool exact) {
  if constexpr (kSync == Sync::kMulti || kSync == Sync::kSingle) {
    if (!exact) {
      // C0: acquire; pairs with C1. The cached tail is a lower bound of the real one,
      // so the entries it gives are a lower bound too; a value above capacity means the
      // cache is older than a full lap and is not used.
      const uint32_t cached = cap_adj + me.other_tail.load(std::memory_order_acquire) - head;
      if (cached >= n && cached <= r.capacity) return cached;
    }
  }
  // T1: acquire; pairs with the other side's T0.
  const uint32_t tail = Pos(other.tail.load(std::memory_order_acquire));
  if constexpr (kSync == Sync::kMulti || kSync == Sync::kSingle) {
    // C1: release; pairs with C0 in this side's other threads.
    me.other_tail.store(tail, std::memory_order_release);
  }
  return cap_adj + tail - head;
}

inline unsigned Clamp(unsigned n, uint32_t entries, Behavior behavior) {
  if (n <= entries) return n;
  return behavior == Behavior::kFixed ? 0 : entries;
}

// Moves this side's head by up to n slots. Returns how many it moved (maybe 0);
// *old_head is the head it moved from, *entries what was available before the move
// (exact when `exact`, else possibly a lower bound: see Entries).
template <Sync kSync>
inline unsigned MoveHead(RingLayout& r, HeadTail& me, HeadTail& other, uint32_t cap_adj,
                         unsigned n, Behavior behavior, bool exact, uint32_t* old_head,
                         uint32_t* entries) {
  unsigned moved;
  if constexpr (kSync == Sync::kSingle) {
    // Relaxed: only this thread writes this side's head.
    const uint32_t head = Pos(me.head.load(std::memory_order_relaxed));
    *old_head = head;
    *entries = Entries<kSync>(r, me, other, cap_adj, head, n, exact);
    moved = Clamp(n, *entries, behavior);
    if (moved != 0) me.head.store(Word(head + moved, 0), std::memory_order_relaxed);
  } else if constexpr (kSync == Sync::kMulti) {
    // Relaxed: the CAS below decides; the slots are ordered by T0/T1, not by the head.
    uint64_t word = me.head.load(std::memory_order_relaxed);
    do {
      const uint32_t head = Pos(word);
      // Read the head before the other side's tail: a tail read first could be a lap
      // older than the head and overstate the entries.
      std::atomic_thread_fence(std::memory_order_acquire);
      *old_head = head;
      *entries = Entries<kSync>(r, me, other, cap_adj, head, n, exact);
      moved = Clamp(n, *entries, behavior);
      if (moved == 0) return 0;
      // Relaxed CAS: it only claims slots [head, head + moved) among this side's threads.
    } while (!me.head.compare_exchange_weak(word, Word(Pos(word) + moved, 0),
                                            std::memory_order_relaxed,
                                            std::memory_order_relaxed));
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
      *entries = Entries<kSync>(r, me, other, cap_adj, Pos(word), n, exact);
      moved = Clamp(n, *entries, behavior);
      if (moved == 0) return 0;
      next = Word(Pos(word) + moved, Low(word) + 1);
    } while (!me.head.compare_exchange_weak(word, next, std::memory_order_acquire,
                                            std::memory_order_acquire));
  } else {  // kHts: tail = Word(tail, head); one operation at a time per side.
    uint64_t word = me.tail.load(std::memory_order_acquire);
    uint64_t next;
    do {
      while (Low(word) != Pos(word)) {  // the previous operation has not finished
        Pause();
        word = me.tail.load(std::memory_order_acquire);
      }
      *old_head = Low(word);
      *entries = Entries<kSync>(r, me, other, cap_adj, Low(word), n, exact);
      moved = Clamp(n, *entries, behavior);
      if (moved == 0) return 0;
      next = Word(Pos(word), Low(word) + moved);
      // Acquire: pairs with the release store in UpdateTail<kHts> of the operation
      // before ours on this side.
    } while (!me.tail.compare_exchange_weak(word, next, std::memory_order_acquire,
                                            std::memory_order_acquire));
  }
  return moved;
}

// Publishes [old_head, new_head): the other side may now use those slots.
template <Sync kSync>
inline void UpdateTail(HeadTail& me, uint32_t old_head, uint32_t new_head) {
  if constexpr (kSync == Sync::kSingle || kSync == Sync::kMulti) {
    if constexpr (kSync == Sync::kMulti) {
      // Relaxed: waiting for the threads of this side that claimed earlier slots to
      // publish them; our own release below orders our slots.
      while (Pos(me.tail.load(std::memory_order_relaxed)) != old_head) Pause();
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
      next = Word(Pos(tail), Low(tail) + 1);
      if (Low(next) == Low(head)) next = Word(Pos(head), Low(next));
      // T0 (release on success): pairs with T1 on the other side.
    } while (!me.tail.compare_exchange_weak(tail, next, std::memory_order_release,
                                            std::memory_order_acquire));
  } else {
    // T0: release; pairs with T1 on the other side and with the acquire CAS in
    // MoveHead<kHts> of this side's next operation.
    me.tail.store(Word(new_head, new_head), std::memory_order_release);
  }
}

// Copies n elements of kSize bytes (0: the ring's elem_size) between a buffer and the
// slots from position `pos`, wrapping at the end of the slot array.
template <size_t kSize>
inline void CopyElements(char* dst, const char* src, unsigned n, uint32_t elem_size) {
  if constexpr (kSize == 0) {
    std::memcpy(dst, src, static_cast<size_t>(n) * elem_size);
  } else {
    for (unsigned i = 0; i < n; ++i) std::memcpy(dst + i * kSize, src + i * kSize, kSize);
  }
}

template <size_t kSize>
inline void CopyToSlots(RingLayout& r, uint32_t pos, const void* objs, unsigned n) {
  const uint32_t esize = kSize != 0 ? kSize : r.elem_size;
  const uint32_t idx = pos & r.mask;
  const char* src = static_cast<const char*>(objs);
  const unsigned first = idx + n <= r.size ? n : r.size - idx;
  CopyElements<kSize>(Slots(r) + static_cast<size_t>(idx) * esize, src, first, esize);
  if (first != n) {
    CopyElements<kSize>(Slots(r), src + static_cast<size_t>(first) * esize, n - first, esize);
  }
}

template <size_t kSize>
inline void CopyFromSlots(RingLayout& r, uint32_t pos, void* objs, unsigned n) {
  const uint32_t esize = kSize != 0 ? kSize : r.elem_size;
  const uint32_t idx = pos & r.mask;
  char* dst = static_cast<char*>(objs);
  const unsigned first = idx + n <= r.size ? n : r.size - idx;
  CopyElements<kSize>(dst, Slots(r) + static_cast<size_t>(idx) * esize, first, esize);
  if (first != n) {
    CopyElements<kSize>(dst + static_cast<size_t>(first) * esize, Slots(r), n - first, esize);
  }
}

template <Sync kSync, size_t kSize>
inline unsigned Enqueue(RingLayout& r, const void* objs, unsigned n, Behavior behavior,
                        unsigned* free_space) {
  uint32_t head;
  uint32_t entries;
  const unsigned moved =
      MoveHead<kSync>(r, r.prod, r.cons, r.capacity, n, behavior, free_space != nullptr, &head,
                      &entries);
  if (moved != 0) {
    CopyToSlots<kSize>(r, head, objs, moved);
    UpdateTail<kSync>(r.prod, head, head + moved);
  }
  if (free_space != nullptr) *free_space = entries - moved;
  return moved;
}

template <Sync kSync, size_t kSize>
inline unsigned Dequeue(RingLayout& r, void* objs, unsigned n, Behavior behavior,
                        unsigned* available) {
  uint32_t head;
  uint32_t entries;
  const unsigned moved = MoveHead<kSync>(r, r.cons, r.prod, 0, n, behavior,
                                         available != nullptr, &head, &entries);
  if (moved != 0) {
    CopyFromSlots<kSize>(r, head, objs, moved);
    UpdateTail<kSync>(r.cons, head, head + moved);
  }
  if (available != nullptr) *available = entries - moved;
  return moved;
}

// Dispatch on the side's sync mode (fixed at creation; the branch predicts perfectly).
template <size_t kSize>
inline unsigned EnqueueAny(RingLayout& r, const void* objs, unsigned n, Behavior behavior,
                           unsigned* free_space) {
  switch (static_cast<Sync>(r.prod.sync)) {
    case Sync::kSingle:
      return Enqueue<Sync::kSingle, kSize>(r, objs, n, behavior, free_space);
    case Sync::kMulti:
      return Enqueue<Sync::kMulti, kSize>(r, objs, n, behavior, free_space);
    case Sync::kRts:
      return Enqueue<Sync::kRts, kSize>(r, objs, n, behavior, free_space);
    case Sync::kHts:
      return Enqueue<Sync::kHts, kSize>(r, objs, n, behavior, free_space);
  }
  return 0;
}

template <size_t kSize>
inline unsigned DequeueAny(RingLayout& r, void* objs, unsigned n, Behavior behavior,
                           unsigned* available) {
  switch (static_cast<Sync>(r.cons.sync)) {
    case Sync::kSingle:
      return Dequeue<Sync::kSingle, kSize>(r, objs, n, behavior, available);
    case Sync::kMulti:
      return Dequeue<Sync::kMulti, kSize>(r, objs, n, behavior, available);
    case Sync::kRts:
      return Dequeue<Sync::kRts, kSize>(r, objs, n, behavior, available);
    case Sync::kHts:
      return Dequeue<Sync::kHts, kSize>(r, objs, n, behavior, available);
  }
  return 0;
}

// --- Peek and zero-copy: single-thread and HTS sides only --------------------------
// Start moves the head (the slots are this thread's until Finish); Finish publishes
// the first n of them and gives the rest back.

inline bool CanPeek(const HeadTail& side) {
  return side.sync == static_cast<uint32_t>(Sync::kSingle) ||
         side.sync == static_cast<uint32_t>(Sync::kHts);
}

inline unsigned StartMove(RingLayout& r, bool producer, unsigned n, Behavior behavior,
                          uint32_t* head, unsigned* entries_out) {
  HeadTail& me = producer ? r.prod : r.cons;
  HeadTail& other = producer ? r.cons : r.prod;
  const uint32_t cap_adj = producer ? r.capacity : 0;
  const bool exact = entries_out != nullptr;
  uint32_t entries = 0;
  unsigned moved = 0;
  if (me.sync == static_cast<uint32_t>(Sync::kSingle)) {
    moved = MoveHead<Sync::kSingle>(r, me, other, cap_adj, n, behavior, exact, head, &entries);
  } else if (me.sync == static_cast<uint32_t>(Sync::kHts)) {
    moved = MoveHead<Sync::kHts>(r, me, other, cap_adj, n, behavior, exact, head, &entries);
  }
  if (entries_out != nullptr) *entries_out = entries - moved;
  return moved;
}

// Publishes n slots from the side's tail (the head Start moved from).
inline void FinishMove(HeadTail& me, unsigned n) {
  // Relaxed: only this thread (the side's single owner of the started operation)
  // moves this side now.
  const uint32_t tail = Pos(me.tail.load(std::memory_order_relaxed));
  if (me.sync == static_cast<uint32_t>(Sync::kSingle)) {
    me.head.store(Word(tail + n, 0), std::memory_order_relaxed);  // give back the rest
    UpdateTail<Sync::kSingle>(me, tail, tail + n);
  } else {
    UpdateTail<Sync::kHts>(me, tail, tail + n);
  }
}

}  // namespace keel::ring_internal

#endif  // KEEL_RING_INTERNAL_HEADTAIL_H_
