// keel mempool: fixed-size objects in shared memory, with per-lcore caches.
//
// A pool holds `n` objects of one size, allocated once at Create. Any process of the
// group gets objects from it and puts them back — a message one process writes,
// another reads and returns. Each lcore has a cache of its own, so most gets and puts
// never touch the shared backend (a keel ring). Threads that are not lcores go to the
// ring directly, or bring a cache of their own (CreateCache).
//
//   keel::mempool::Mempool* pool = *keel::mempool::Create("MSG_POOL", 1023, 64, 32, 0, 0,
//                                                         keel::memory::kSocketAny);
//   void* msg;
//   if (pool->Get(&msg)) { ...; ring->Enqueue(msg); }   // in one process
//   pool->Put(msg);                                     // in another, after Lookup
//
// The pool belongs to the group, not to the process that created it. The Mempool*
// is the shared-memory object itself: it means the same pool in every process.
// Backends are chosen by name ("ring_mp_mc", ...) and resolved by each process from
// its own table, never through an index or function pointer stored in shared memory,
// so processes built from different binaries agree on them.
#ifndef KEEL_MEMPOOL_MEMPOOL_H_
#define KEEL_MEMPOOL_MEMPOOL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "eal/lcore.h"
#include "base/version.h"
#include "mempool/internal/cache.h"
#include "mempool/internal/layout.h"

namespace keel::mempool {

inline constexpr Version kVersion = {0, 1, 0};

inline constexpr uint32_t kMaxCacheSize = mempool_internal::kMaxCacheSize;

// Creation flags (DPDK's RTE_MEMPOOL_F_*).
enum Flags : uint32_t {
  kSingleProducerPut = 1u << 0,  // RTE_MEMPOOL_F_SP_PUT: one thread puts (backend "ring_sp_*")
  kSingleConsumerGet = 1u << 1,  // RTE_MEMPOOL_F_SC_GET: one thread gets (backend "ring_*_sc")
  kNoCacheAlign = 1u << 2,       // RTE_MEMPOOL_F_NO_CACHE_ALIGN: objects 8-byte aligned,
                                 // not 64 (denser pools)
};

// A cache of objects owned by one thread (see CreateCache). Opaque.
using Cache = mempool_internal::CacheLayout;

class Mempool {
 public:
  Mempool() = delete;
  Mempool(const Mempool&) = delete;
  Mempool& operator=(const Mempool&) = delete;

  // --- Fast path: never allocates, never blocks (but for a concurrent operation on
  // the backend ring). Through this lcore's cache; threads that are not lcores of this
  // process use the ring directly. Thread-safe and process-safe (the EAL gives each
  // lcore id to one thread of the group, so a cache has one user).

  // Gets n objects, all or none (DPDK's rte_mempool_get_bulk). False when the pool
  // has fewer than n available.
  KEEL_MEMPOOL_INLINE bool GetBulk(void** objs, unsigned n) {
    return mempool_internal::GetBulk(r_, objs, n, DefaultCache());
  }
  KEEL_MEMPOOL_INLINE bool Get(void** obj) { return GetBulk(obj, 1); }
  // Puts objects got from this pool back. Debug builds refuse (skip and count) an
  // object put twice, and count an object whose end was overwritten; see Audit.
  KEEL_MEMPOOL_INLINE void PutBulk(void* const* objs, unsigned n) {
    mempool_internal::PutBulk(r_, objs, n, DefaultCache());
  }
  KEEL_MEMPOOL_INLINE void Put(void* obj) { PutBulk(&obj, 1); }

  // The same with an explicit cache: a user-owned one (CreateCache), an lcore's
  // (DefaultCache), or nullptr for the ring directly. The calling thread must be the
  // only one using `cache`.
  KEEL_MEMPOOL_INLINE bool GetBulk(void** objs, unsigned n, Cache* cache) {
    return mempool_internal::GetBulk(r_, objs, n, cache);
  }
  KEEL_MEMPOOL_INLINE void PutBulk(void* const* objs, unsigned n, Cache* cache) {
    mempool_internal::PutBulk(r_, objs, n, cache);
  }

  // Test hook: a put without the debug build's checks, as a release build does it (a
  // double put then goes into the pool; Audit finds it).
  void PutBulkUncheckedForTest(void* const* objs, unsigned n, Cache* cache) {
    mempool_internal::PutBulkUnchecked(r_, objs, n, cache);
  }

  // This thread's lcore cache; nullptr for a thread that is not an lcore or a pool
  // without caches.
  KEEL_MEMPOOL_INLINE Cache* DefaultCache() { return DefaultCache(eal::LcoreId()); }
  KEEL_MEMPOOL_INLINE Cache* DefaultCache(unsigned lcore) {
    return mempool_internal::LcoreCache(r_, lcore);
  }

  // --- Counts (a snapshot; exact only when no get or put runs) ----------------------
  // Objects in the ring and in the lcore caches. User-owned caches count as in use.
  unsigned AvailableCount() const;
  // Size() - AvailableCount(): objects handed out — held by any process, live or
  // dead, or sitting in user-owned caches.
  unsigned InUseCount() const { return Size() - AvailableCount(); }
  bool Full() const { return AvailableCount() == Size(); }
  bool Empty() const { return AvailableCount() == 0; }

  // --- What the pool is ------------------------------------------------------------
  unsigned Size() const { return r_.size; }
  unsigned ElementSize() const { return r_.elt_size; }
  unsigned CacheSize() const { return r_.cache_size; }
  uint32_t flags() const { return r_.flags; }
  absl::string_view name() const;
  // The backend's name, e.g. "ring_mp_mc".
  absl::string_view ops_name() const;
  // Create's private_size bytes, 64-byte aligned, zeroed at creation.
  void* PrivateData();
  size_t PrivateSize() const { return r_.private_size; }

  // Calls fn(object, index) for every object of the pool, in or out (index 0..Size()-1).
  void ObjectIterate(const std::function<void(void* obj, unsigned index)>& fn);

  // The pool an object of it belongs to (DPDK's rte_mempool_from_obj).
  static Mempool* FromObject(const void* obj) {
    return reinterpret_cast<Mempool*>(mempool_internal::Header(obj)->pool);
  }

  // Checks the pool: lcore cache fills in range; every object in the ring and the lcore
  // caches at most once (an object there twice would be handed out twice: a double put
  // no check stopped); no pointer there that is not an object of the pool. In debug
  // builds also: no object there marked in use, every object's header cookie (free or
  // in use) and trailer cookie, and what earlier gets and puts counted: puts refused
  // (double free, foreign pointer), overruns repaired, gets that found an object not
  // marked free. DataLoss naming each problem (objects by index or address, the first
  // few of each kind, with counts); OK otherwise. A snapshot: exact when no get or put
  // runs (a concurrent one can move an object between the ring and a cache as it is
  // read). Any process; allocates a byte per object.
  absl::Status Audit() const;
  // A human-readable description: sizes, counts, per-lcore cache fill.
  std::string Dump() const;

 private:
  friend absl::Status Free(Mempool* pool);
  friend void FlushCache(Cache* cache, Mempool* pool);
  mempool_internal::MempoolLayout r_;
};

static_assert(std::is_standard_layout_v<Mempool>);

// Called once per object at Create, in the creating process, before any other process
// can see the pool.
using ObjectInit = std::function<void(Mempool& pool, void* obj, unsigned index)>;

// Creates a pool of n objects of elt_size bytes, registered under `name` so any
// process can Lookup it. Any process, secondaries included; may allocate; control path.
//   cache_size: per-lcore cache, 0..512; at most n / 1.5 (DPDK's rule).
//   private_size: bytes of private data (PrivateData()).
//   flags: Flags; chooses the backend unless `ops` names one.
//   ops: "ring_mp_mc", "ring_sp_sc", "ring_mp_sc", "ring_sp_mc", "ring_mt_rts",
//        "ring_mt_hts"; empty: from flags.
// Errors: InvalidArgument (the message names the pool and the value: n, elt_size,
// cache_size, flags, ops, name), AlreadyExists, ResourceExhausted (no memory: the sizes
// are in the message), FailedPrecondition (no EAL).
absl::StatusOr<Mempool*> Create(absl::string_view name, unsigned n, unsigned elt_size,
                                unsigned cache_size, unsigned private_size, uint32_t flags,
                                int socket, const ObjectInit& obj_init = nullptr,
                                absl::string_view ops = "");
// Any process. NotFound for an unknown name; FailedPrecondition when the name is
// another kind of object, a pool of another layout version (debug vs release build
// included), or a pool whose backend this process does not know.
absl::StatusOr<Mempool*> Lookup(absl::string_view name);
// Unregisters and frees a pool, from any process. The caller ensures no process uses
// it any more. InvalidArgument for something Create did not make.
absl::Status Free(Mempool* pool);

// The backends this process knows, by name.
std::vector<std::string> OpsNames();
// Test hook: makes this process not know backend `name` (as a process built without
// it would). Call before Create / Lookup.
void ForgetOpsForTest(absl::string_view name);

// A cache of `size` objects (1..512) in shared memory, for a thread that is not an
// lcore (DPDK's rte_mempool_cache_create). Use it with one pool at a time, from one
// thread at a time; FlushCache before using it with another pool or freeing it.
// Errors: InvalidArgument (size), ResourceExhausted.
absl::StatusOr<Cache*> CreateCache(unsigned size, int socket);
// Moves the cache's objects back to `pool`.
void FlushCache(Cache* cache, Mempool* pool);
// Frees a cache (flush it first: objects still in it are lost to their pool).
absl::Status FreeCache(Cache* cache);

}  // namespace keel::mempool

#endif  // KEEL_MEMPOOL_MEMPOOL_H_
