// The mempool's fast paths: get and put through a cache, or straight to the ring.
// Inline so they compile into the caller.
//
// A cache is a LIFO stack of object pointers owned by one thread: an lcore's (the EAL
// gives every lcore id to exactly one thread of the group) or a user-owned cache. Its
// only atomic, `len`, is written by that thread alone:
//   L0: relaxed store of len by the owner. Readers on other threads or processes
//       (AvailableCount, Audit, Dump) only want a number; nobody takes objects from
//       the slots through it but the owner.
//   L1: relaxed load of len by the owner: it wrote the value itself (or, for an lcore
//       cache inherited from a dead process, the dead owner did, before the EAL handed
//       the lcore id on).
// The ring (the backend) holds every object that is in no cache and not handed out; it
// has room for all of them, so a flush into it never fails.
//
// Crash order (STYLE.md). Lcore caches live in the pool's shared memory and outlive
// their process: the next process to take a dead one's lcore id goes on with its cache
// — slots and len as the kill left them. So at every instruction, len may count only
// slots whose objects are nowhere else:
//   - objects leave the cache (to the caller, to the ring) only after len has stopped
//     counting them: shrink len first;
//   - objects enter it (from the caller, from the ring) before len counts them: grow
//     len last.
// A kill between the two leaks the objects in between (nobody alive has them), never
// lets two holders have one. Each step says what a kill there leaves behind, and has a
// kill point (base/kill_point.h; debug builds) that tests/mempool_multiprocess_test.cc
// kills at:
//   mempool.get.after_len        len shrunk, objects not yet copied to the caller
//   mempool.get.after_refill     the ring's objects in slots above len, len not grown
//   mempool.get.after_dequeue    cache + ring: the ring's part with the caller, the
//                                cache's part still in the cache
//   mempool.put.after_copy       objects in slots above len, len not grown
//   mempool.flush.after_len      len 0, the objects not yet in the ring
//   mempool.flush.after_enqueue  the objects in the ring, len 0
// Why the stores keep their order:
//   K0: CrashOrder(), a compiler-only fence (no instruction), between a len store and
//       the slot copies it must precede or follow: the compiler may otherwise move a
//       relaxed store across plain ones. The CPU needs nothing: a SIGKILL stops a
//       thread at an instruction boundary, with every earlier store performed and no
//       later one (the store buffer drains; interrupts are precise), and on x86 (TSO)
//       other CPUs see stores in program order anyway.
//   K1: before a ring enqueue, the len store needs no fence: the ring publishes the
//       objects with a release store of its producer tail (T0 in
//       ring/internal/headtail.h; a multi-producer's head CAS comes before it), and
//       neither the compiler nor the CPU moves an earlier store past a release. A
//       process that sees the objects in the ring sees len without them.
#ifndef KEEL_MEMPOOL_INTERNAL_CACHE_H_
#define KEEL_MEMPOOL_INTERNAL_CACHE_H_

#include <atomic>
#include <cstdint>
#include <cstring>

#include "base/kill_point.h"
#include "mempool/internal/layout.h"
#include "ring/ring.h"

// The fast path's entry points are forced inline: a call costs as much as a one-object
// get from the cache, and the bulk size, usually a constant, then folds the copies.
// Their rare paths (refill, flush, the ring alone) are kept out of line.
#define KEEL_MEMPOOL_INLINE inline __attribute__((always_inline))

namespace keel::mempool_internal {

inline ring::Ring* Backend(MempoolLayout& mp) {
  return reinterpret_cast<ring::Ring*>(reinterpret_cast<char*>(&mp) + mp.ring_offset);
}

KEEL_MEMPOOL_INLINE void** CacheSlots(CacheLayout* cache) {
  return reinterpret_cast<void**>(cache + 1);
}

KEEL_MEMPOOL_INLINE CacheLayout* LcoreCache(MempoolLayout& mp, unsigned lcore) {
  if (mp.cache_size == 0 || lcore >= kMaxLcores) return nullptr;
  return reinterpret_cast<CacheLayout*>(reinterpret_cast<char*>(&mp) + mp.caches_offset +
                                        static_cast<size_t>(lcore) * mp.cache_stride);
}

inline ObjectHeader* Header(const void* obj) {
  return reinterpret_cast<ObjectHeader*>(const_cast<void*>(obj)) - 1;
}

// K0 (see the top of this file).
KEEL_MEMPOOL_INLINE void CrashOrder() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// Four pointers, moved as one 32-byte vector (a ymm register with AVX; two SSE moves or
// scalars without).
typedef uint64_t FourObjects __attribute__((vector_size(32)));

// n pointers. A constant n (the usual bulk size) up to 64 is unrolled into 32-byte
// moves, then 8-byte ones. Not 64-byte moves, which GCC picks for a memcpy on AVX-512 machines: in
// a get followed by a put of the same objects, each copy reads what the one before
// wrote, and on this VM's AMD EPYC a 64-byte load waits much longer for a 64-byte store
// than a 32-byte load for a 32-byte store (bulks of 8: 9.8 against 5.5 ns a get+put).
// A variable n is a loop while it is short, where a call to memcpy would cost more than
// the copy.
KEEL_MEMPOOL_INLINE void CopyObjects(void** dst, void* const* src, unsigned n) {
  if (__builtin_constant_p(n) && n <= 64) {
    unsigned i = 0;
    for (; i + 4 <= n; i += 4) {
      FourObjects four;
      std::memcpy(&four, src + i, sizeof(four));
      std::memcpy(dst + i, &four, sizeof(four));
    }
    for (; i < n; ++i) dst[i] = src[i];
  } else if (n < 16) {
    for (unsigned i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    std::memcpy(dst, src, n * sizeof(void*));
  }
}

// Debug builds: the trailer cookie, directly after the object's elt_size bytes (so an
// overrun of one byte shows); unaligned, so read and write it with memcpy.
inline bool TrailerIntact(const MempoolLayout& mp, const void* obj) {
  uint64_t cookie;
  std::memcpy(&cookie, static_cast<const char*>(obj) + mp.elt_size, sizeof(cookie));
  return cookie == kCookieTrailer;
}
inline void WriteTrailer(const MempoolLayout& mp, void* obj) {
  std::memcpy(static_cast<char*>(obj) + mp.elt_size, &kCookieTrailer, sizeof(kCookieTrailer));
}

// Debug builds (mempool.cc): mark objects handed out, and check objects given back.
// CheckedPut drops double frees from objs (returning how many remain) and repairs
// overrun trailers; both are counted for Audit and logged.
void MarkGot(MempoolLayout& mp, void* const* objs, unsigned n);
unsigned CheckPut(MempoolLayout& mp, void** objs, unsigned n);

// The rare paths of GetBulk and PutBulk, out of line (mempool.cc).
bool GetMiss(MempoolLayout& mp, void** objs, unsigned n, CacheLayout* cache, uint32_t len);
void PutOverflow(MempoolLayout& mp, void* const* objs, unsigned n, CacheLayout* cache,
                 uint32_t len);
// Moves the cache's first len objects to the ring; returns the cache's new length: 0,
// unless the ring refused some (only a double put, which debug builds catch, can
// overfill it: the ring has room for every object of the pool), which stay in the cache.
uint32_t FlushToRing(MempoolLayout& mp, CacheLayout* cache, uint32_t len);

// Gets n objects, all or none: it fails only when the ring and the cache together hold
// fewer than n. cache: the caller's own, or nullptr.
KEEL_MEMPOOL_INLINE bool GetBulk(MempoolLayout& mp, void** objs, unsigned n, CacheLayout* cache) {
  if (__builtin_expect(cache != nullptr, 1)) {
    // L1.
    const uint32_t len = cache->len.load(std::memory_order_relaxed);
    if (__builtin_expect(n <= len, 1)) {
      // The top n: the most recently put objects, the warmest in the CPU's caches.
      // Shrink first (L0); K0 keeps the copy below. A kill after the store leaks the n
      // objects: the cache no longer counts them and the caller never got them.
      cache->len.store(len - n, std::memory_order_relaxed);
      CrashOrder();
      KillPointForTest("mempool.get.after_len");
      CopyObjects(objs, CacheSlots(cache) + (len - n), n);
      if constexpr (kDebug) MarkGot(mp, objs, n);
      return true;
    }
    return GetMiss(mp, objs, n, cache, len);
  }
  if (Backend(mp)->DequeueBulk(objs, n) != n) return false;
  if constexpr (kDebug) MarkGot(mp, objs, n);
  return true;
}

// Puts n objects back. Never fails: the pool has room for every object it owns.
KEEL_MEMPOOL_INLINE void PutBulkUnchecked(MempoolLayout& mp, void* const* objs, unsigned n,
                                          CacheLayout* cache) {
  if (__builtin_expect(cache != nullptr, 1)) {
    // L1.
    const uint32_t len = cache->len.load(std::memory_order_relaxed);
    // 64-bit: no n wraps the sum.
    if (__builtin_expect(uint64_t{len} + n <= cache->flush_threshold, 1)) {
      // Copy first; K0 keeps the store below. A kill after the copy leaks the n
      // objects: they sit in slots len does not count, and the caller is gone.
      CopyObjects(CacheSlots(cache) + len, objs, n);
      CrashOrder();
      KillPointForTest("mempool.put.after_copy");
      // L0: grow last.
      cache->len.store(len + n, std::memory_order_relaxed);
      return;
    }
    PutOverflow(mp, objs, n, cache, len);
    return;
  }
  // A put the ring refuses can only be a double put (see FlushToRing).
  Backend(mp)->EnqueueBurst(objs, n);
}

KEEL_MEMPOOL_INLINE void PutBulk(MempoolLayout& mp, void* const* objs, unsigned n,
                                 CacheLayout* cache) {
  if constexpr (!kDebug) {
    PutBulkUnchecked(mp, objs, n, cache);
  } else {
    // Checked in chunks on the stack: the caller's array stays untouched.
    void* chunk[64];
    while (n > 0) {
      const unsigned take = n < 64 ? n : 64;
      for (unsigned i = 0; i < take; ++i) chunk[i] = objs[i];
      PutBulkUnchecked(mp, chunk, CheckPut(mp, chunk, take), cache);
      objs += take;
      n -= take;
    }
  }
}

// Moves every object of `cache` back to the ring.
inline void Flush(MempoolLayout& mp, CacheLayout* cache) {
  // L1.
  const uint32_t len = cache->len.load(std::memory_order_relaxed);
  if (len != 0) FlushToRing(mp, cache, len);
}

}  // namespace keel::mempool_internal

#endif  // KEEL_MEMPOOL_INTERNAL_CACHE_H_
