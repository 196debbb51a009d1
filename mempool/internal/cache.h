// The mempool's fast paths: get and put through a cache, or straight to the ring.
// Inline so they compile into the caller.
//
// A cache is a LIFO stack of object pointers owned by one thread: an lcore's (the EAL
// gives every lcore id to exactly one thread of the group) or a user-owned cache. Its
// only atomic, `len`, is written by that thread alone:
//   L0: relaxed store of len by the owner. Readers on other threads or processes
//       (AvailableCount) only want a number; nobody reads the slots through it.
//   L1: relaxed load of len by the owner: it wrote the value itself.
// The ring (the backend) holds every object that is in no cache and not handed out; it
// has room for all of them, so a flush into it never fails.
#ifndef KEEL_MEMPOOL_INTERNAL_CACHE_H_
#define KEEL_MEMPOOL_INTERNAL_CACHE_H_

#include <atomic>
#include <cstdint>
#include <cstring>

#include "mempool/internal/layout.h"
#include "ring/ring.h"

namespace keel::mempool_internal {

inline ring::Ring* Backend(MempoolLayout& mp) {
  return reinterpret_cast<ring::Ring*>(reinterpret_cast<char*>(&mp) + mp.ring_offset);
}

inline void** CacheSlots(CacheLayout* cache) { return reinterpret_cast<void**>(cache + 1); }

inline CacheLayout* LcoreCache(MempoolLayout& mp, unsigned lcore) {
  if (mp.cache_size == 0 || lcore >= kMaxLcores) return nullptr;
  return reinterpret_cast<CacheLayout*>(reinterpret_cast<char*>(&mp) + mp.caches_offset +
                                        static_cast<size_t>(lcore) * mp.cache_stride);
}

inline ObjectHeader* Header(const void* obj) {
  return reinterpret_cast<ObjectHeader*>(const_cast<void*>(obj)) - 1;
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

// The ring alone cannot serve a get: take all the cache has and the rest from the ring.
inline bool GetFromCacheAndRing(MempoolLayout& mp, void** objs, unsigned n, CacheLayout* cache,
                                uint32_t len) {
  const unsigned rest = n - len;
  if (Backend(mp)->DequeueBulk(objs, rest) != rest) return false;
  void** slots = CacheSlots(cache);
  std::memcpy(objs + rest, slots, len * sizeof(void*));
  // L0.
  cache->len.store(0, std::memory_order_relaxed);
  if constexpr (kDebug) MarkGot(mp, objs, n);
  return true;
}

// Gets n objects, all or none: it fails only when the ring and the cache together hold
// fewer than n. cache: the caller's own, or nullptr.
inline bool GetBulk(MempoolLayout& mp, void** objs, unsigned n, CacheLayout* cache) {
  if (cache == nullptr) {
    if (Backend(mp)->DequeueBulk(objs, n) != n) return false;
    if constexpr (kDebug) MarkGot(mp, objs, n);
    return true;
  }
  void** slots = CacheSlots(cache);
  // L1.
  uint32_t len = cache->len.load(std::memory_order_relaxed);
  if (n > len) {
    if (n > cache->size) {
      // Too many for the cache: straight from the ring.
      if (Backend(mp)->DequeueBulk(objs, n) != n) {
        return GetFromCacheAndRing(mp, objs, n, cache, len);
      }
      if constexpr (kDebug) MarkGot(mp, objs, n);
      return true;
    }
    // Refill so that n can be taken and `size` objects stay for the next gets.
    const unsigned want = cache->size + n - len;
    if (Backend(mp)->DequeueBulk(slots + len, want) != want) {
      return GetFromCacheAndRing(mp, objs, n, cache, len);
    }
    len += want;
  }
  // The top n: the most recently put objects, the warmest in the CPU's caches.
  std::memcpy(objs, slots + len - n, n * sizeof(void*));
  // L0.
  cache->len.store(len - n, std::memory_order_relaxed);
  if constexpr (kDebug) MarkGot(mp, objs, n);
  return true;
}

// Puts n objects back. Never fails: the pool has room for every object it owns.
// Moves the cache's objects to the ring and returns the cache's new length: 0, unless
// the ring refused some (only a double put, which debug builds catch, can overfill it:
// the ring has room for every object of the pool), which then stay in the cache.
inline uint32_t FlushToRing(MempoolLayout& mp, CacheLayout* cache, uint32_t len) {
  void** slots = CacheSlots(cache);
  const unsigned moved = Backend(mp)->EnqueueBurst(slots, len);
  if (moved != len) std::memmove(slots, slots + moved, (len - moved) * sizeof(void*));
  return len - moved;
}

inline void PutBulkUnchecked(MempoolLayout& mp, void* const* objs, unsigned n, CacheLayout* cache) {
  if (cache != nullptr && n <= cache->flush_threshold) {
    // L1.
    uint32_t len = cache->len.load(std::memory_order_relaxed);
    if (len + n > cache->flush_threshold) len = FlushToRing(mp, cache, len);
    if (len + n <= cache->capacity) {
      std::memcpy(CacheSlots(cache) + len, objs, n * sizeof(void*));
      // L0.
      cache->len.store(len + n, std::memory_order_relaxed);
      return;
    }
    // L0.
    cache->len.store(len, std::memory_order_relaxed);
  }
  // A put the ring refuses can only be a double put (see FlushToRing).
  Backend(mp)->EnqueueBurst(objs, n);
}

inline void PutBulk(MempoolLayout& mp, void* const* objs, unsigned n, CacheLayout* cache) {
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
  // L1, L0.
  const uint32_t len = cache->len.load(std::memory_order_relaxed);
  if (len != 0) cache->len.store(FlushToRing(mp, cache, len), std::memory_order_relaxed);
}

}  // namespace keel::mempool_internal

#endif  // KEEL_MEMPOOL_INTERNAL_CACHE_H_
