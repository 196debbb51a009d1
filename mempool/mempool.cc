// Control path: the backend table, Create / Lookup / Free, counts, audit, user caches,
// and the debug-build cookie checks the fast path calls.
#include "mempool/mempool.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "eal/internal/components.h"
#include "base/kill_point.h"
#include "base/log.h"
#include "base/names.h"
#include "base/units.h"
#include "memory/memory.h"
#include "ring/internal/layout.h"

namespace keel::mempool_internal {
namespace {

constexpr char kLog[] = "mempool";

// Index of an object of `mp`, or -1 when `obj` is not one.
int64_t IndexOf(const MempoolLayout& mp, const void* obj) {
  const char* first = reinterpret_cast<const char*>(&mp) + mp.objects_offset + mp.header_size;
  const char* p = static_cast<const char*>(obj);
  if (p < first) return -1;
  const size_t delta = static_cast<size_t>(p - first);
  if (delta % mp.stride != 0 || delta / mp.stride >= mp.size) return -1;
  return static_cast<int64_t>(delta / mp.stride);
}

// The ring alone cannot serve a get: take all the cache has and the rest from the ring.
bool GetFromCacheAndRing(MempoolLayout& mp, void** objs, unsigned n, CacheLayout* cache,
                         uint32_t len) {
  const unsigned rest = n - len;
  if (Backend(mp)->DequeueBulk(objs, rest) != rest) return false;
  // A kill here: the ring's `rest` objects die with the caller (a leak); the cache is
  // whole.
  KillPointForTest("mempool.get.after_dequeue");
  // L0: shrink first; K0 keeps the copy below. A kill after it leaks the cache's len
  // objects too.
  cache->len.store(0, std::memory_order_relaxed);
  CrashOrder();
  KillPointForTest("mempool.get.after_len");
  std::memcpy(objs + rest, CacheSlots(cache), len * sizeof(void*));
  if constexpr (kDebug) MarkGot(mp, objs, n);
  return true;
}

}  // namespace

bool GetMiss(MempoolLayout& mp, void** objs, unsigned n, CacheLayout* cache, uint32_t len) {
  if (n > cache->size) {
    // Too many for the cache: straight from the ring.
    if (Backend(mp)->DequeueBulk(objs, n) != n) {
      return GetFromCacheAndRing(mp, objs, n, cache, len);
    }
    if constexpr (kDebug) MarkGot(mp, objs, n);
    return true;
  }
  // Refill so that n can be taken and `size` objects stay for the next gets: into the
  // slots above len, which len does not count yet.
  void** slots = CacheSlots(cache);
  const unsigned want = cache->size + n - len;
  if (Backend(mp)->DequeueBulk(slots + len, want) != want) {
    return GetFromCacheAndRing(mp, objs, n, cache, len);
  }
  // A kill here leaks the `want` objects: out of the ring, in slots len does not count.
  // K0: the ring's copy into the slots stays above the store that counts them.
  CrashOrder();
  KillPointForTest("mempool.get.after_refill");
  const uint32_t stay = len + want - n;  // == size
  // L0: grow to count the objects that stay, never the top n, which go to the caller.
  cache->len.store(stay, std::memory_order_relaxed);
  // K0: the copy below the store. A kill after it leaks the n objects.
  CrashOrder();
  KillPointForTest("mempool.get.after_len");
  std::memcpy(objs, slots + stay, n * sizeof(void*));
  if constexpr (kDebug) MarkGot(mp, objs, n);
  return true;
}

uint32_t FlushToRing(MempoolLayout& mp, CacheLayout* cache, uint32_t len) {
  void** slots = CacheSlots(cache);
  // L0: shrink first. K1: the ring's release of its tail keeps this store before the
  // objects show in the ring. A kill after it leaks the len objects.
  cache->len.store(0, std::memory_order_relaxed);
  KillPointForTest("mempool.flush.after_len");
  const unsigned moved = Backend(mp)->EnqueueBurst(slots, len);
  // A kill here loses nothing: the objects are in the ring, the cache is empty (but for
  // what the ring refused, which leaks).
  KillPointForTest("mempool.flush.after_enqueue");
  if (moved == len) return 0;
  // What the ring refused (a double put that no check stopped) stays in the cache:
  // moved down, then counted (K0; a kill before the store leaks them).
  std::memmove(slots, slots + moved, (len - moved) * sizeof(void*));
  CrashOrder();
  // L0.
  cache->len.store(len - moved, std::memory_order_relaxed);
  return len - moved;
}

void PutOverflow(MempoolLayout& mp, void* const* objs, unsigned n, CacheLayout* cache,
                 uint32_t len) {
  if (n <= cache->flush_threshold) {
    // The cache would pass its threshold: its objects go to the ring, these stay.
    len = FlushToRing(mp, cache, len);
    if (len + n <= cache->capacity) {
      // As in the fast path: copy, then grow (K0). A kill between leaks the n objects.
      std::memcpy(CacheSlots(cache) + len, objs, n * sizeof(void*));
      CrashOrder();
      KillPointForTest("mempool.put.after_copy");
      // L0.
      cache->len.store(len + n, std::memory_order_relaxed);
      return;
    }
  }
  // Too many for the cache (or the ring refused a flush): straight to the ring. A put
  // the ring refuses can only be a double put (see FlushToRing).
  Backend(mp)->EnqueueBurst(objs, n);
}

void MarkGot(MempoolLayout& mp, void* const* objs, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    ObjectHeader* h = Header(objs[i]);
    if (h->cookie != kCookieFree) {
      // Relaxed: a counter.
      mp.bad_cookies.fetch_add(1, std::memory_order_relaxed);
      KEEL_LOG(Error, kLog, "mempool \"%s\": got object %p whose header cookie is %#x, not free",
               mp.name, objs[i], h->cookie);
    }
    h->cookie = kCookieInUse;
  }
}

unsigned CheckPut(MempoolLayout& mp, void** objs, unsigned n) {
  unsigned kept = 0;
  for (unsigned i = 0; i < n; ++i) {
    void* obj = objs[i];
    ObjectHeader* h = Header(obj);
    if (IndexOf(mp, obj) < 0 || h->cookie != kCookieInUse) {
      // Relaxed: a counter.
      mp.double_frees.fetch_add(1, std::memory_order_relaxed);
      KEEL_LOG(Error, kLog, "mempool \"%s\": put of %p refused: %s", mp.name, obj,
               IndexOf(mp, obj) < 0 ? "not an object of this pool"
                                    : "already in the pool "
                                      "(double free)");
      continue;
    }
    if (!TrailerIntact(mp, obj)) {
      // Relaxed: a counter.
      mp.overruns.fetch_add(1, std::memory_order_relaxed);
      KEEL_LOG(Error, kLog, "mempool \"%s\": object %p (index %d) was written past its %u bytes",
               mp.name, obj, IndexOf(mp, obj), mp.elt_size);
      WriteTrailer(mp, obj);
    }
    h->cookie = kCookieFree;
    objs[kept++] = obj;
  }
  return kept;
}

}  // namespace keel::mempool_internal

namespace keel::mempool {
namespace {

using mempool_internal::CacheLayout;
using mempool_internal::MempoolLayout;
using mempool_internal::ObjectHeader;

constexpr char kKind[] = "mempool";
constexpr uint32_t kAllFlags = kSingleProducerPut | kSingleConsumerGet | kNoCacheAlign;

const eal_internal::ComponentRegistrar kRegistrar({"mempool", kVersion,
                                                   mempool_internal::kLayoutVersion});

// The backends this process knows. A pool records the name; every process resolves it
// here, so two binaries with different tables still agree on what a name means.
struct Ops {
  const char* name;
  uint32_t ring_flags;
};
constexpr Ops kOps[] = {
    {"ring_mp_mc", 0},
    {"ring_sp_sc", ring::kSingleProducer | ring::kSingleConsumer},
    {"ring_mp_sc", ring::kSingleConsumer},
    {"ring_sp_mc", ring::kSingleProducer},
    {"ring_mt_rts", ring::kProducerRts | ring::kConsumerRts},
    {"ring_mt_hts", ring::kProducerHts | ring::kConsumerHts},
};

// Backends ForgetOpsForTest removed from this process's table.
ABSL_CONST_INIT absl::Mutex g_forgotten_mu(absl::kConstInit);
std::vector<std::string>& Forgotten() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_forgotten_mu) {
  static auto* forgotten = new std::vector<std::string>;
  return *forgotten;
}

const Ops* FindOps(absl::string_view name) {
  absl::MutexLock lock(&g_forgotten_mu);
  for (const Ops& ops : kOps) {
    if (name == ops.name && !absl::c_linear_search(Forgotten(), name)) return &ops;
  }
  return nullptr;
}

const char* OpsFromFlags(uint32_t flags) {
  const bool sp = flags & kSingleProducerPut;
  const bool sc = flags & kSingleConsumerGet;
  if (sp && sc) return "ring_sp_sc";
  if (sp) return "ring_sp_mc";
  if (sc) return "ring_mp_sc";
  return "ring_mp_mc";
}

absl::Status Invalid(absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrFormat("mempool \"%s\": %s", name, why));
}

// DPDK's CALC_CACHE_FLUSHTHRESH.
uint32_t FlushThreshold(uint32_t size) { return size * 3 / 2; }

size_t CacheBytes(uint32_t size) {
  return RoundUp(sizeof(CacheLayout) + sizeof(void*) * 2 * size, 64);
}

void InitCache(CacheLayout* cache, uint32_t size) {
  cache->size = size;
  cache->flush_threshold = FlushThreshold(size);
  cache->capacity = 2 * size;
  cache->len.store(0, std::memory_order_relaxed);
}

// Where everything goes in the pool's one allocation.
struct Geometry {
  uint32_t header_size;
  uint32_t stride;
  uint32_t cache_stride;
  size_t ring_offset;
  size_t caches_offset;
  size_t private_offset;
  size_t objects_offset;
  size_t bytes;
};

absl::StatusOr<Geometry> Plan(absl::string_view name, unsigned n, unsigned elt_size,
                              unsigned cache_size, unsigned private_size, uint32_t flags,
                              const Ops& ops) {
  Geometry g;
  const size_t align = (flags & kNoCacheAlign) ? 8 : 64;
  g.header_size = static_cast<uint32_t>(RoundUp(sizeof(ObjectHeader), align));
  const size_t trailer = mempool_internal::kDebug ? sizeof(uint64_t) : 0;
  const size_t stride = RoundUp(g.header_size + RoundUp(elt_size + trailer, 8), align);
  if (stride > UINT32_MAX) {
    return Invalid(name, absl::StrFormat("element size %u is too large", elt_size));
  }
  g.stride = static_cast<uint32_t>(stride);
  g.cache_stride = cache_size == 0 ? 0 : static_cast<uint32_t>(CacheBytes(cache_size));
  absl::StatusOr<size_t> ring_bytes = ring::MemorySize(n, ring::kExactSize | ops.ring_flags);
  if (!ring_bytes.ok()) {
    return Invalid(name, absl::StrFormat("n %u: %s", n, ring_bytes.status().message()));
  }
  g.ring_offset = RoundUp(sizeof(MempoolLayout), 128);
  g.caches_offset = g.ring_offset + RoundUp(*ring_bytes, 128);
  g.private_offset = g.caches_offset +
                     (cache_size == 0 ? 0 : size_t{mempool_internal::kMaxLcores} * g.cache_stride);
  g.objects_offset = RoundUp(g.private_offset + private_size, 64);
  g.bytes = g.objects_offset + static_cast<size_t>(n) * g.stride;
  return g;
}

absl::Status Validate(absl::string_view name, unsigned n, unsigned elt_size, unsigned cache_size,
                      uint32_t flags, absl::string_view ops_name) {
  if (absl::Status s = CheckNameLength("mempool", name, memory::kMaxNameLength); !s.ok()) {
    return s;
  }
  if (n == 0 || n > ring::kMaxCount) {
    return Invalid(name, absl::StrFormat("n %u is not in 1..%u", n, ring::kMaxCount));
  }
  if (elt_size == 0) return Invalid(name, "element size 0");
  if ((flags & ~kAllFlags) != 0) {
    return Invalid(name, absl::StrFormat("unknown flags 0x%x", flags & ~kAllFlags));
  }
  if (cache_size > kMaxCacheSize) {
    return Invalid(name, absl::StrFormat("cache size %u is above %u", cache_size, kMaxCacheSize));
  }
  if (FlushThreshold(cache_size) > n) {
    return Invalid(name,
                   absl::StrFormat("cache size %u needs at least %u objects (1.5 x cache size), "
                                   "not %u",
                                   cache_size, FlushThreshold(cache_size), n));
  }
  if (!ops_name.empty() && FindOps(ops_name) == nullptr) {
    return Invalid(name, absl::StrFormat("unknown backend \"%s\" (known: %s)", ops_name,
                                         absl::StrJoin(OpsNames(), ", ")));
  }
  return absl::OkStatus();
}

bool IsPool(const void* p) {
  return static_cast<const MempoolLayout*>(p)->magic == mempool_internal::kPoolMagic;
}

char* ObjectAt(MempoolLayout& mp, unsigned index) {
  return reinterpret_cast<char*>(&mp) + mp.objects_offset + static_cast<size_t>(index) * mp.stride +
         mp.header_size;
}

}  // namespace

std::vector<std::string> OpsNames() {
  std::vector<std::string> names;
  for (const Ops& ops : kOps) {
    if (FindOps(ops.name) != nullptr) names.emplace_back(ops.name);
  }
  return names;
}

void ForgetOpsForTest(absl::string_view name) {
  absl::MutexLock lock(&g_forgotten_mu);
  Forgotten().emplace_back(name);
}

absl::StatusOr<Mempool*> Create(absl::string_view name, unsigned n, unsigned elt_size,
                                unsigned cache_size, unsigned private_size, uint32_t flags,
                                int socket, const ObjectInit& obj_init,
                                absl::string_view ops_name) {
  if (absl::Status s = Validate(name, n, elt_size, cache_size, flags, ops_name); !s.ok()) {
    return s;
  }
  const Ops& ops = *FindOps(ops_name.empty() ? OpsFromFlags(flags) : ops_name);
  absl::StatusOr<Geometry> g = Plan(name, n, elt_size, cache_size, private_size, flags, ops);
  if (!g.ok()) return g.status();
  absl::StatusOr<void*> mem = memory::Allocate(g->bytes, 128, socket);
  if (!mem.ok()) {
    return absl::Status(mem.status().code(),
                        absl::StrFormat("mempool \"%s\" (%u objects of %u bytes): %s", name, n,
                                        elt_size, mem.status().message()));
  }
  auto* mp = new (*mem) MempoolLayout{};
  mp->layout_version = mempool_internal::kLayoutVersion;
  mp->flags = flags;
  mp->size = n;
  mp->elt_size = elt_size;
  mp->header_size = g->header_size;
  mp->stride = g->stride;
  mp->cache_size = cache_size;
  mp->cache_stride = g->cache_stride;
  mp->private_size = private_size;
  mp->ring_offset = g->ring_offset;
  mp->caches_offset = g->caches_offset;
  mp->private_offset = g->private_offset;
  mp->objects_offset = g->objects_offset;
  CopyName(mp->name, name);
  CopyName(mp->ops_name, ops.name);

  char* base = static_cast<char*>(*mem);
  absl::StatusOr<ring::Ring*> backend =
      ring::Init(base + g->ring_offset, absl::StrCat("MP_", name).substr(0, 63), n,
                 ring::kExactSize | ops.ring_flags);
  if (!backend.ok()) {
    memory::Free(*mem).IgnoreError();
    return backend.status();
  }
  for (unsigned lcore = 0; cache_size != 0 && lcore < mempool_internal::kMaxLcores; ++lcore) {
    InitCache(mempool_internal::LcoreCache(*mp, lcore), cache_size);
  }
  std::memset(base + g->private_offset, 0, private_size);

  auto* pool = reinterpret_cast<Mempool*>(mp);
  std::vector<void*> objs(n);
  for (unsigned i = 0; i < n; ++i) {
    char* obj = ObjectAt(*mp, i);
    *mempool_internal::Header(obj) =
        ObjectHeader{reinterpret_cast<uint64_t>(mp),
                     mempool_internal::kDebug ? mempool_internal::kCookieFree : 0};
    if constexpr (mempool_internal::kDebug) {
      mempool_internal::WriteTrailer(*mp, obj);
    }
    if (obj_init) obj_init(*pool, obj, i);
    objs[i] = obj;
  }
  (*backend)->EnqueueBulk(objs.data(), n);
  mp->magic = mempool_internal::kPoolMagic;

  if (absl::Status s = memory::RegisterObject(kKind, name, mempool_internal::kLayoutVersion, mp);
      !s.ok()) {
    mp->magic = 0;
    memory::Free(mp).IgnoreError();
    return s;
  }
  return pool;
}

absl::StatusOr<Mempool*> Lookup(absl::string_view name) {
  absl::StatusOr<void*> obj = memory::LookupObject(kKind, name, mempool_internal::kLayoutVersion);
  if (!obj.ok()) return obj.status();
  auto* mp = static_cast<MempoolLayout*>(*obj);
  // Read from shared memory: bounded by the array, escaped in the message.
  const absl::string_view ops = NameOf(mp->ops_name);
  if (FindOps(ops) == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("mempool \"%s\": backend \"%s\" is not known to this process (known: %s)",
                        name, Printable(ops), absl::StrJoin(OpsNames(), ", ")));
  }
  return reinterpret_cast<Mempool*>(mp);
}

absl::Status Free(Mempool* pool) {
  if (pool == nullptr || !memory::Contains(pool) || !IsPool(pool)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%p is not a mempool in the group's shared memory", pool));
  }
  const std::string name(pool->name());
  absl::StatusOr<void*> registered =
      memory::LookupObject(kKind, name, mempool_internal::kLayoutVersion);
  if (!registered.ok() || *registered != static_cast<void*>(pool)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("mempool \"%s\" at %p was not made by mempool::Create", name, pool));
  }
  if (absl::Status s = memory::UnregisterObject(kKind, name); !s.ok()) return s;
  pool->r_.magic = 0;
  return memory::Free(pool);
}

unsigned Mempool::AvailableCount() const {
  auto& mp = const_cast<MempoolLayout&>(r_);
  uint64_t count = mempool_internal::Backend(mp)->Count();
  for (unsigned lcore = 0; r_.cache_size != 0 && lcore < mempool_internal::kMaxLcores; ++lcore) {
    // Relaxed: a snapshot of another thread's count (L0 in internal/cache.h).
    count += mempool_internal::LcoreCache(mp, lcore)->len.load(std::memory_order_relaxed);
  }
  return static_cast<unsigned>(std::min<uint64_t>(count, r_.size));
}

absl::string_view Mempool::name() const { return NameOf(r_.name); }

absl::string_view Mempool::ops_name() const { return NameOf(r_.ops_name); }

void* Mempool::PrivateData() { return reinterpret_cast<char*>(&r_) + r_.private_offset; }

void Mempool::ObjectIterate(const std::function<void(void* obj, unsigned index)>& fn) {
  for (unsigned i = 0; i < r_.size; ++i) fn(ObjectAt(r_, i), i);
}

namespace {

// Calls fn(obj) for every object the pool has to give: the ring's, from its consumer
// tail to its producer tail, and each lcore cache's first len. A snapshot: exact only
// when no get or put runs. Reads the ring's layout (ring/internal/layout.h): the ring
// has no API to list its entries.
template <typename Fn>
void ForEachAvailable(MempoolLayout& mp, Fn fn) {
  const auto& ring = *reinterpret_cast<const ring_internal::RingLayout*>(
      reinterpret_cast<const char*>(&mp) + mp.ring_offset);
  // Relaxed: a snapshot, read as numbers (as ring::Ring::Count).
  const uint32_t cons = ring_internal::Pos(ring.cons.tail.load(std::memory_order_relaxed));
  const uint32_t prod = ring_internal::Pos(ring.prod.tail.load(std::memory_order_relaxed));
  const uint32_t count = std::min((prod - cons) & ring.mask, ring.capacity);
  const auto* slots = reinterpret_cast<void* const*>(reinterpret_cast<const char*>(&ring) +
                                                     sizeof(ring_internal::RingLayout));
  for (uint32_t i = 0; i < count; ++i) fn(slots[(cons + i) & ring.mask]);
  for (unsigned lcore = 0; mp.cache_size != 0 && lcore < mempool_internal::kMaxLcores; ++lcore) {
    CacheLayout* cache = mempool_internal::LcoreCache(mp, lcore);
    // Relaxed: a snapshot (L0).
    const uint32_t len = std::min(cache->len.load(std::memory_order_relaxed), cache->capacity);
    void* const* objs = mempool_internal::CacheSlots(cache);
    for (uint32_t i = 0; i < len; ++i) fn(objs[i]);
  }
}

// "N <what>: a, b, c, d, ..." with the first few examples.
std::string Listed(uint64_t n, absl::string_view what, const std::vector<std::string>& examples) {
  return absl::StrFormat("%u %s: %s%s", n, what, absl::StrJoin(examples, ", "),
                         n > examples.size() ? ", ..." : "");
}

}  // namespace

absl::Status Mempool::Audit() const {
  auto& mp = const_cast<MempoolLayout&>(r_);
  std::vector<std::string> problems;
  for (unsigned lcore = 0; r_.cache_size != 0 && lcore < mempool_internal::kMaxLcores; ++lcore) {
    const CacheLayout* cache = mempool_internal::LcoreCache(mp, lcore);
    // Relaxed: a snapshot (L0).
    const uint32_t len = cache->len.load(std::memory_order_relaxed);
    if (len > cache->capacity) {
      problems.push_back(absl::StrFormat("lcore %u's cache holds %u, above its %u slots", lcore,
                                         len, cache->capacity));
    }
  }
  // Every object the ring and the caches hold, counted: one there twice would be handed
  // out twice (a double put no check stopped, a cache left inconsistent by a kill). In
  // debug builds, one there that is marked in use was also handed out.
  constexpr size_t kExamples = 4;
  std::vector<uint8_t> seen(r_.size, 0);
  uint64_t foreign = 0;
  uint64_t marked_in_use = 0;
  std::vector<std::string> foreign_examples, in_use_examples;
  ForEachAvailable(mp, [&](void* obj) {
    const int64_t index = mempool_internal::IndexOf(mp, obj);
    if (index < 0) {
      if (foreign_examples.size() < kExamples) {
        foreign_examples.push_back(absl::StrFormat("%p", obj));
      }
      ++foreign;
      return;
    }
    if (seen[index] < UINT8_MAX) ++seen[index];
    if (mempool_internal::kDebug && seen[index] == 1 &&
        mempool_internal::Header(obj)->cookie == mempool_internal::kCookieInUse) {
      if (in_use_examples.size() < kExamples) in_use_examples.push_back(absl::StrFormat("%p", obj));
      ++marked_in_use;
    }
  });
  uint64_t duplicates = 0;
  std::vector<std::string> duplicate_examples;
  for (unsigned i = 0; i < r_.size; ++i) {
    if (seen[i] < 2) continue;
    if (duplicate_examples.size() < kExamples) {
      duplicate_examples.push_back(absl::StrFormat("%p x%u%s", static_cast<void*>(ObjectAt(mp, i)),
                                                   seen[i], seen[i] == UINT8_MAX ? "+" : ""));
    }
    ++duplicates;
  }
  if (duplicates != 0) {
    problems.push_back(Listed(duplicates,
                              "objects are in the pool more than once (ring + lcore caches)",
                              duplicate_examples));
  }
  if (marked_in_use != 0) {
    problems.push_back(
        Listed(marked_in_use, "objects in the pool are marked in use", in_use_examples));
  }
  if (foreign != 0) {
    problems.push_back(
        Listed(foreign, "pointers in the pool are not objects of it", foreign_examples));
  }
  if constexpr (mempool_internal::kDebug) {
    // Relaxed: counters.
    if (uint64_t n = r_.double_frees.load(std::memory_order_relaxed); n != 0) {
      problems.push_back(absl::StrFormat("%u puts refused (double free or foreign object)", n));
    }
    if (uint64_t n = r_.bad_cookies.load(std::memory_order_relaxed); n != 0) {
      problems.push_back(absl::StrFormat("%u gets found an object not marked free", n));
    }
    if (uint64_t n = r_.overruns.load(std::memory_order_relaxed); n != 0) {
      problems.push_back(absl::StrFormat("%u objects were put back overrun (repaired)", n));
    }
    for (unsigned i = 0; i < r_.size; ++i) {
      char* obj = ObjectAt(mp, i);
      const uint64_t cookie = mempool_internal::Header(obj)->cookie;
      if (cookie != mempool_internal::kCookieFree && cookie != mempool_internal::kCookieInUse) {
        problems.push_back(absl::StrFormat("object %u at %p: header cookie %#x is corrupt", i,
                                           static_cast<void*>(obj), cookie));
      }
      if (!mempool_internal::TrailerIntact(mp, obj)) {
        problems.push_back(absl::StrFormat("object %u at %p: written past its %u bytes", i,
                                           static_cast<void*>(obj), r_.elt_size));
      }
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrFormat("mempool \"%s\": %s", name(), absl::StrJoin(problems, "; ")));
}

std::string Mempool::Dump() const {
  auto& mp = const_cast<MempoolLayout&>(r_);
  std::string out = absl::StrFormat(
      "mempool \"%s\" at %p: backend=%s flags=0x%x size=%u elt_size=%u stride=%u "
      "cache_size=%u private_size=%u available=%u in_use=%u\n",
      name(), static_cast<const void*>(this), ops_name(), r_.flags, r_.size, r_.elt_size, r_.stride,
      r_.cache_size, r_.private_size, AvailableCount(), InUseCount());
  absl::StrAppend(&out, "  ring: ", mempool_internal::Backend(mp)->Count(), " objects\n");
  for (unsigned lcore = 0; r_.cache_size != 0 && lcore < mempool_internal::kMaxLcores; ++lcore) {
    // Relaxed: a snapshot (L0).
    const uint32_t len =
        mempool_internal::LcoreCache(mp, lcore)->len.load(std::memory_order_relaxed);
    if (len != 0) absl::StrAppendFormat(&out, "  lcore %u cache: %u objects\n", lcore, len);
  }
  return out;
}

absl::StatusOr<Cache*> CreateCache(unsigned size, int socket) {
  if (size == 0 || size > kMaxCacheSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("mempool cache: size %u is not in 1..%u", size, kMaxCacheSize));
  }
  absl::StatusOr<void*> mem = memory::Allocate(CacheBytes(size), 64, socket);
  if (!mem.ok()) return mem.status();
  auto* cache = new (*mem) CacheLayout{};
  InitCache(cache, size);
  return cache;
}

void FlushCache(Cache* cache, Mempool* pool) { mempool_internal::Flush(pool->r_, cache); }

absl::Status FreeCache(Cache* cache) { return memory::Free(cache); }

}  // namespace keel::mempool
