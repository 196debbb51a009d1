// The mempool as it lives in shared memory.
//
// Shared-memory rules: see eal/internal/layout.h. Standard layout; atomics are
// always-lock-free 32/64-bit; no pointers to process-local things, no function
// pointers, no ops index: the backend is named (ops_name) and is a keel ring in the
// pool's own memory, so every process, whatever binary it runs, drives the same ring
// the same way. kLayoutVersion is checked at Lookup.
//
// One shared allocation holds, at offsets from the MempoolLayout:
//
//   MempoolLayout
//   ring            the backend: a keel ring (ring_offset) of exactly `size` pointers
//   caches          kMaxLcores CacheLayouts of cache_stride bytes (cache_size > 0 only)
//   private data    private_size bytes (private_offset)
//   objects         size elements of `stride` bytes (objects_offset):
//                     [padding][ObjectHeader][object: elt_size bytes][trailer: debug]
//
// Objects hold pointers to shared memory (the pool, the objects in caches and ring):
// those are valid in every process of the group, which maps shared memory at one
// address.
#ifndef KEEL_MEMPOOL_INTERNAL_LAYOUT_H_
#define KEEL_MEMPOOL_INTERNAL_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "eal/options.h"

namespace keel::mempool_internal {

#ifdef NDEBUG
inline constexpr bool kDebug = false;
#else
// Debug builds put cookies before and after every object and check them on get, put
// and audit.
inline constexpr bool kDebug = true;
#endif

// Bump on any change to the structs in this file. Debug builds lay objects out with
// cookies, which is another layout: a debug and a release process cannot share a pool.
// 2: the crash order of cache updates (cache.h); a process of version 1 sharing a pool
// could still hand an object out twice after a kill.
inline constexpr uint32_t kLayoutVersion = kDebug ? 0x10002 : 2;
inline constexpr uint64_t kPoolMagic = 0x6c6f6f706c65656bULL;  // "keelpool"
inline constexpr uint32_t kMaxCacheSize = 512;                 // RTE_MEMPOOL_CACHE_MAX_SIZE
inline constexpr unsigned kMaxLcores = eal::kMaxLcores;
inline constexpr int kNameSize = 64;
inline constexpr int kOpsNameSize = 32;

// Debug cookies (DPDK's RTE_MEMPOOL_HEADER_COOKIE1/2 and trailer cookie, our values).
inline constexpr uint64_t kCookieFree = 0x66726565636f6f6bULL;   // in the pool
inline constexpr uint64_t kCookieInUse = 0x696e757365636f6bULL;  // handed out
inline constexpr uint64_t kCookieTrailer = 0x7472616c6c6f636bULL;

// Directly before every object.
struct ObjectHeader {
  uint64_t pool;    // address of the MempoolLayout (shared: the same in every process)
  uint64_t cookie;  // debug builds: kCookieFree or kCookieInUse; else 0
};

// A cache of objects for one lcore (or a user-owned cache). Only its owner thread
// writes it; `len` is atomic because counts are read from other threads and
// processes.
struct alignas(64) CacheLayout {
  uint32_t size;             // the fill a refill leaves behind
  uint32_t flush_threshold;  // 1.5 x size: a put beyond it flushes the cache
  uint32_t capacity;         // slots in objs: 2 x size
  std::atomic<uint32_t> len;
  // objs follow: `capacity` object pointers at this + sizeof(CacheLayout).
};

struct MempoolLayout {
  // Read-only after Create.
  alignas(64) uint64_t magic;
  uint32_t layout_version;
  uint32_t flags;         // the creation flags (mempool.h)
  uint32_t size;          // objects in the pool
  uint32_t elt_size;      // bytes of each object the user sees
  uint32_t header_size;   // bytes before each object (an ObjectHeader at its end)
  uint32_t stride;        // bytes from one element to the next
  uint32_t cache_size;    // per-lcore cache size; 0: no caches
  uint32_t cache_stride;  // bytes from one CacheLayout to the next
  uint32_t private_size;
  uint32_t reserved;
  uint64_t ring_offset;
  uint64_t caches_offset;
  uint64_t private_offset;
  uint64_t objects_offset;
  char name[kNameSize];
  char ops_name[kOpsNameSize];
  // Debug builds: what puts refused or repaired, for Audit.
  // Relaxed everywhere: counters, read as numbers.
  alignas(64) std::atomic<uint64_t> double_frees;
  std::atomic<uint64_t> overruns;
  std::atomic<uint64_t> bad_cookies;  // a get found an object not marked free
};

static_assert(std::is_standard_layout_v<MempoolLayout>);
static_assert(std::is_standard_layout_v<CacheLayout>);
static_assert(std::is_trivially_copyable_v<ObjectHeader>);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(sizeof(ObjectHeader) <= 64);

}  // namespace keel::mempool_internal

#endif  // KEEL_MEMPOOL_INTERNAL_LAYOUT_H_
