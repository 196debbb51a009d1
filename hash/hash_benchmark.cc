// keel's hash table beside DPDK 22.11's rte_hash, in one process run, and a table of
// keel/DPDK ratios at the end. Both sides: 1M (2^20) random, distinct 16-byte keys in a
// table sized for 2M (2^21) entries, crc32c with init 0. Cases, ns per key:
//   add with hash          fill an emptied table 0 -> 1M with precomputed hashes
//   lookup with hash       hits, keys in a random order (not insertion order)
//   lookup                 the same, the table hashing the key
//   bulk n, with hash and without, n = 1, 4, 8, 32, 64 (DPDK's RTE_HASH_LOOKUP_BULK_MAX)
//   lookup with data       with hash, the key's data too
//   lookup miss            with hash, 1M keys that are not in the table
//   delete with hash       the 1M keys in a random order (refilled outside the timing)
//   lookup with a writer   a reader on CPU 0 looking up present keys with hash while a
//                          writer on CPU 1 adds and deletes 1024 other keys (keel:
//                          kLockFreeReaders | kNoFreeOnDelete | kMultiWriter, DPDK:
//                          RW_CONCURRENCY_LF | MULTI_WRITER_ADD); reader ns per lookup, and
//                          each writer's rate beside it
// and each side's bytes of memory per entry. Targets, printed beside the ratios (never
// a failure): keel/DPDK <= 0.8 on single-key cases, <= 0.6 on bulk lookups and misses.
//
//   bazel run -c opt //hash:hash_benchmark                     # about 70 s on 2 cores
//   bazel run -c opt //hash:hash_benchmark -- --benchmark_repetitions=5
//   bazel run -c opt //hash:hash_benchmark -- --benchmark_filter=Bulk
//
// Same keys, same lookup order on both sides; each side's tables are filled before the
// benchmarks and every lookup form is checked against the others once (a disagreement
// is printed on stderr). One benchmark iteration is one pass over the 1M keys, timed by
// hand (emptying or refilling a table stays outside the timing; lookups get one untimed
// warm-up pass); ns per key is the timed time over the keys passed. Each pass counts
// its hits: a wrong count fails that benchmark with an error. Each case runs 3 times
// per side by default, keel's and DPDK's runs interleaved at random; the final table
// gives each side's median, the median of the per-run ratios (keel's run i over DPDK's
// run i) and every run, not only the best, marking runs whose measuring thread lost its
// CPU to something else on the machine.
//
// Memory: keel's tables are mmap(MAP_HUGETLB) of hash::MemorySize bytes (2 MiB pages),
// else mmap + madvise(MADV_HUGEPAGE); DPDK runs its EAL on 2 MiB hugepages (-m 512, its
// files unlinked at once), else --no-huge -m 1024. stderr says which. DPDK's bytes are
// its heap's allocated bytes (rte_malloc_get_socket_stats) before and after
// rte_hash_create.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "hash/hash.h"
#include "tools/bench/dpdk_peer.h"
#include "tools/bench/figures.h"

namespace {

// The measuring loops call both sides' fast paths inlined, as an application would
// (keel's lookups are header-inline; DPDK's calls go into librte_hash either way).
#define KEEL_BENCH_INLINE __attribute__((always_inline)) inline

constexpr uint32_t kKeys = 1u << 20;
constexpr uint32_t kEntries = 2u << 20;
constexpr uint32_t kKeyLength = 16;
// Keys the writer of the concurrent case adds and deletes, disjoint from the reader's.
constexpr uint32_t kWriterKeys = 1024;
constexpr unsigned kBulkSizes[] = {1, 4, 8, 32, 64};
constexpr double kSingleTarget = 0.8;
constexpr double kBulkTarget = 0.6;

struct Key {
  uint64_t w[2];
};
static_assert(sizeof(Key) == kKeyLength);

// The keys, shared by both sides.
struct Keys {
  std::vector<Key> insert;             // added in this order
  std::vector<Key> lookup;             // the same keys, in a random order (lookups, deletes)
  std::vector<uint32_t> lookup_index;  // insert index of lookup[i] (its data - 1)
  std::vector<Key> miss;               // keys not in the table
  std::vector<Key> writer;             // the concurrent writer's keys
  std::vector<const void*> lookup_ptrs;
};
Keys* g_keys = nullptr;

// One side's hashes of the keys above (each side computes them with its own function;
// they are checked equal).
struct Hashes {
  std::vector<uint32_t> insert, lookup, miss, writer;
};
Hashes g_hashes[2];

// --- The two sides -------------------------------------------------------------------

struct Keel {
  static constexpr int kSide = 0;
  using Table = keel::hash::Table;
  KEEL_BENCH_INLINE static int32_t Add(const Table& t, const void* key, uint32_t hash,
                                       uint64_t data) {
    return t.AddWithHash(key, hash, data);
  }
  KEEL_BENCH_INLINE static int32_t Delete(const Table& t, const void* key, uint32_t hash) {
    return t.DeleteWithHash(key, hash);
  }
  KEEL_BENCH_INLINE static int32_t FreePosition(const Table& t, int32_t position) {
    return t.FreeKeyWithPosition(position);
  }
  static void Reset(const Table& t) { t.Reset(); }
  KEEL_BENCH_INLINE static int32_t LookupWithHash(const Table& t, const void* key, uint32_t hash) {
    return t.LookupWithHash(key, hash);
  }
  KEEL_BENCH_INLINE static int32_t Lookup(const Table& t, const void* key) { return t.Lookup(key); }
  KEEL_BENCH_INLINE static int32_t LookupWithHashData(const Table& t, const void* key,
                                                      uint32_t hash, uint64_t* data) {
    return t.LookupWithHashData(key, hash, data);
  }
  KEEL_BENCH_INLINE static void LookupBulkWithHash(const Table& t, const void** keys,
                                                   const uint32_t* hashes, unsigned n,
                                                   int32_t* positions) {
    t.LookupBulkWithHash(keys, hashes, n, positions);
  }
  KEEL_BENCH_INLINE static void LookupBulk(const Table& t, const void** keys, unsigned n,
                                           int32_t* positions) {
    t.LookupBulk(keys, n, positions);
  }
  static uint32_t Hash(const Table& t, const void* key) { return t.Hash(key); }
  static uint32_t Count(const Table& t) { return t.Count(); }
  static const void* KeyAt(const Table& t, int32_t position) {
    return t.GetKeyWithPosition(position);
  }
};

struct Dpdk {
  static constexpr int kSide = 1;
  using Table = rte_hash*;
  KEEL_BENCH_INLINE static int32_t Add(Table t, const void* key, uint32_t hash, uint64_t data) {
    if (data == 0) return rte_hash_add_key_with_hash(t, key, hash);
    // With data (the fills, untimed): rte_hash_add_key_with_hash_data returns 0, not the
    // position.
    const int r =
        rte_hash_add_key_with_hash_data(t, key, hash, reinterpret_cast<void*>(uintptr_t{data}));
    return r < 0 ? r : rte_hash_lookup_with_hash(t, key, hash);
  }
  KEEL_BENCH_INLINE static int32_t Delete(Table t, const void* key, uint32_t hash) {
    return rte_hash_del_key_with_hash(t, key, hash);
  }
  KEEL_BENCH_INLINE static int32_t FreePosition(Table t, int32_t position) {
    return rte_hash_free_key_with_position(t, position);
  }
  static void Reset(Table t) { rte_hash_reset(t); }
  KEEL_BENCH_INLINE static int32_t LookupWithHash(Table t, const void* key, uint32_t hash) {
    return rte_hash_lookup_with_hash(t, key, hash);
  }
  KEEL_BENCH_INLINE static int32_t Lookup(Table t, const void* key) {
    return rte_hash_lookup(t, key);
  }
  KEEL_BENCH_INLINE static int32_t LookupWithHashData(Table t, const void* key, uint32_t hash,
                                                      uint64_t* data) {
    void* d = nullptr;
    const int32_t r = rte_hash_lookup_with_hash_data(t, key, hash, &d);
    *data = reinterpret_cast<uintptr_t>(d);
    return r;
  }
  KEEL_BENCH_INLINE static void LookupBulkWithHash(Table t, const void** keys,
                                                   const uint32_t* hashes, unsigned n,
                                                   int32_t* positions) {
    rte_hash_lookup_with_hash_bulk(t, keys, const_cast<hash_sig_t*>(hashes), n, positions);
  }
  KEEL_BENCH_INLINE static void LookupBulk(Table t, const void** keys, unsigned n,
                                           int32_t* positions) {
    rte_hash_lookup_bulk(t, keys, n, positions);
  }
  static uint32_t Hash(Table t, const void* key) { return rte_hash_hash(t, key); }
  static uint32_t Count(Table t) { return static_cast<uint32_t>(rte_hash_count(t)); }
  static const void* KeyAt(Table t, int32_t position) {
    void* key = nullptr;
    return rte_hash_get_key_with_position(t, position, &key) == 0 ? key : nullptr;
  }
};

const char* const kSideName[2] = {"keel", "DPDK"};

// Each side's tables: `lookup` filled once with the keys (data = insert index + 1),
// `scratch` emptied and filled by the add and delete cases, `rw` (the concurrent flags)
// filled once with the keys.
template <typename Side>
struct Tables {
  static inline typename Side::Table lookup{};
  static inline typename Side::Table scratch{};
  static inline typename Side::Table rw{};
};

// What each table costs, for the memory report.
struct MemoryNote {
  std::string table;
  size_t bytes[2] = {0, 0};
  std::string how[2];
};
std::vector<MemoryNote>& MemoryNotes() {
  static auto* notes = new std::vector<MemoryNote>;
  return *notes;
}

absl::StatusOr<keel::hash::Table> MakeKeel(const char* name, uint32_t flags, size_t* bytes,
                                           std::string* how) {
  keel::hash::Params p{.name = name, .entries = kEntries, .key_length = kKeyLength};
  p.function = "crc32c";
  p.init_value = 0;
  p.flags = flags;
  absl::StatusOr<size_t> size = keel::hash::MemorySize(p);
  if (!size.ok()) return size.status();
  void* mem = keel::bench::MapBenchMemory(*size, how);
  if (mem == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("keel table \"%s\": mmap of %u bytes failed", name, *size));
  }
  *bytes = *size;
  return keel::hash::Init(mem, p);
}

size_t DpdkHeapAllocated() {
  size_t total = 0;
  for (unsigned i = 0; i < rte_socket_count(); ++i) {
    rte_malloc_socket_stats s;
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &s) == 0) {
      total += s.heap_allocsz_bytes;
    }
  }
  return total;
}

rte_hash* MakeDpdk(const char* name, uint32_t flags, size_t* bytes) {
  rte_hash_parameters p{};
  p.name = name;
  p.entries = kEntries;
  p.key_len = kKeyLength;
  p.hash_func = rte_hash_crc;
  p.hash_func_init_val = 0;
  p.socket_id = static_cast<int>(rte_socket_id());
  p.extra_flag = static_cast<uint8_t>(flags);
  const size_t before = DpdkHeapAllocated();
  rte_hash* h = rte_hash_create(&p);
  *bytes = DpdkHeapAllocated() - before;
  return h;
}

// --- Keys, tables, checks ------------------------------------------------------------

void MakeKeys() {
  g_keys = new Keys;
  Keys& k = *g_keys;
  std::mt19937_64 rng(0x6b65656c68617368ULL);
  const size_t total = size_t{kKeys} * 2 + kWriterKeys;
  std::vector<Key> all(total);
  for (;;) {
    for (Key& key : all) key = {{rng(), rng()}};
    std::vector<std::pair<uint64_t, uint64_t>> sorted(total);
    for (size_t i = 0; i < total; ++i) sorted[i] = {all[i].w[0], all[i].w[1]};
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()) break;
  }
  k.insert.assign(all.begin(), all.begin() + kKeys);
  k.miss.assign(all.begin() + kKeys, all.begin() + 2 * size_t{kKeys});
  k.writer.assign(all.begin() + 2 * size_t{kKeys}, all.end());
  k.lookup_index.resize(kKeys);
  std::iota(k.lookup_index.begin(), k.lookup_index.end(), 0u);
  std::shuffle(k.lookup_index.begin(), k.lookup_index.end(), rng);
  k.lookup.resize(kKeys);
  k.lookup_ptrs.resize(kKeys);
  for (uint32_t i = 0; i < kKeys; ++i) {
    k.lookup[i] = k.insert[k.lookup_index[i]];
    k.lookup_ptrs[i] = &k.lookup[i];
  }
}

template <typename Side>
void ComputeHashes(typename Side::Table t) {
  Hashes& h = g_hashes[Side::kSide];
  auto of = [&](const std::vector<Key>& keys, std::vector<uint32_t>* out) {
    out->resize(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) (*out)[i] = Side::Hash(t, &keys[i]);
  };
  of(g_keys->insert, &h.insert);
  of(g_keys->lookup, &h.lookup);
  of(g_keys->miss, &h.miss);
  of(g_keys->writer, &h.writer);
}

// Adds the 1M keys in insertion order, data = insert index + 1 (0 when !with_data).
template <typename Side>
std::string Fill(typename Side::Table t, bool with_data) {
  const Hashes& h = g_hashes[Side::kSide];
  for (uint32_t i = 0; i < kKeys; ++i) {
    const int32_t pos = Side::Add(t, &g_keys->insert[i], h.insert[i], with_data ? i + 1 : 0);
    if (pos < 0) {
      return absl::StrFormat("%s: add of key %u of %u (hash %08x) returned %d",
                             kSideName[Side::kSide], i, kKeys, h.insert[i], pos);
    }
  }
  if (Side::Count(t) != kKeys) {
    return absl::StrFormat("%s: count %u after adding %u keys", kSideName[Side::kSide],
                           Side::Count(t), kKeys);
  }
  return "";
}

// Every lookup form on a filled table against each other and the keys: the first
// disagreement, or "".
template <typename Side>
std::string Check(typename Side::Table t, bool with_data) {
  const char* side = kSideName[Side::kSide];
  const Keys& k = *g_keys;
  const Hashes& h = g_hashes[Side::kSide];
  std::vector<int32_t> pos(kKeys);
  // DPDK's positions run past `entries` with per-lcore caches (MULTI_WRITER_ADD).
  std::vector<bool> seen(2 * size_t{kEntries}, false);
  for (uint32_t i = 0; i < kKeys; ++i) {
    pos[i] = Side::LookupWithHash(t, &k.lookup[i], h.lookup[i]);
    if (pos[i] < 0) {
      return absl::StrFormat("%s: present key %u: LookupWithHash %d", side, i, pos[i]);
    }
    if (static_cast<size_t>(pos[i]) >= seen.size() || seen[pos[i]]) {
      return absl::StrFormat("%s: present key %u: position %d out of range or repeated", side, i,
                             pos[i]);
    }
    seen[pos[i]] = true;
    const int32_t p2 = Side::Lookup(t, &k.lookup[i]);
    if (p2 != pos[i]) {
      return absl::StrFormat("%s: key %u: Lookup %d, LookupWithHash %d", side, i, p2, pos[i]);
    }
    uint64_t data = 0;
    const int32_t p3 = Side::LookupWithHashData(t, &k.lookup[i], h.lookup[i], &data);
    const uint64_t want = with_data ? k.lookup_index[i] + 1 : 0;
    if (p3 != pos[i] || data != want) {
      return absl::StrFormat("%s: key %u: LookupWithHashData %d data %u, want %d data %u", side, i,
                             p3, data, pos[i], want);
    }
    const void* stored = Side::KeyAt(t, pos[i]);
    if (stored == nullptr || std::memcmp(stored, &k.lookup[i], kKeyLength) != 0) {
      return absl::StrFormat("%s: key %u: the key at position %d is %s", side, i, pos[i],
                             stored == nullptr ? "missing" : "another");
    }
  }
  int32_t bulk[RTE_HASH_LOOKUP_BULK_MAX];
  std::vector<const void*> miss_ptrs(kKeys);
  for (uint32_t i = 0; i < kKeys; ++i) miss_ptrs[i] = &k.miss[i];
  for (unsigned n : kBulkSizes) {
    for (int with_hash = 0; with_hash < 2; ++with_hash) {
      for (uint32_t i = 0; i < kKeys; i += n) {
        const void** keys = const_cast<const void**>(k.lookup_ptrs.data()) + i;
        if (with_hash) {
          Side::LookupBulkWithHash(t, keys, h.lookup.data() + i, n, bulk);
        } else {
          Side::LookupBulk(t, keys, n, bulk);
        }
        for (unsigned j = 0; j < n; ++j) {
          if (bulk[j] != pos[i + j]) {
            return absl::StrFormat("%s: bulk %u%s: key %u at %d, single lookups say %d", side, n,
                                   with_hash ? " with hash" : "", i + j, bulk[j], pos[i + j]);
          }
        }
      }
    }
  }
  for (uint32_t i = 0; i < kKeys; ++i) {
    const int32_t p = Side::LookupWithHash(t, &k.miss[i], h.miss[i]);
    if (p != -ENOENT) return absl::StrFormat("%s: absent key %u: LookupWithHash %d", side, i, p);
  }
  for (uint32_t i = 0; i < kKeys; i += 64) {
    Side::LookupBulkWithHash(t, miss_ptrs.data() + i, h.miss.data() + i, 64, bulk);
    for (unsigned j = 0; j < 64; ++j) {
      if (bulk[j] != -ENOENT) {
        return absl::StrFormat("%s: absent key %u: bulk with hash %d", side, i + j, bulk[j]);
      }
    }
  }
  if constexpr (Side::kSide == Keel::kSide) {
    if (absl::Status s = t.Verify(); !s.ok()) return absl::StrCat("keel: Verify: ", s.ToString());
  }
  return "";
}

// --- Measuring -----------------------------------------------------------------------

double NowNs() {
  return std::chrono::duration<double, std::nano>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

// What one side does in a case: an untimed `setup` before each pass, `begin` and `end`
// around it (the concurrent case's writer; `end` returns an error or ""), and the timed
// `pass`, which returns what it counted (hits, misses or successes): it must be `want`.
// With `warm`, one untimed pass first.
struct Job {
  bool warm = false;
  uint64_t want = kKeys;
  const char* what = "hits";
  std::function<void()> setup = [] {};
  std::function<uint64_t()> pass;
  std::function<void()> begin = [] {};
  std::function<std::string()> end = [] { return std::string(); };
  std::function<double()> writes_per_s;  // the concurrent case's writer rate
};

// Runs a case on both sides, pass by pass: each benchmark iteration is one keel pass and
// one DPDK pass, the side going first alternating, so a slow spell of the machine falls
// on both and each run's ratio compares passes made moments apart. Reports each side's
// ns per key (timed time over the keys passed) and cpu share (the measuring thread's CPU
// time over that time: below 1 when the machine took the CPU away).
void Paired(benchmark::State& state, Job (&jobs)[2]) {
  for (Job& j : jobs) {
    if (!j.warm) continue;
    j.setup();
    j.begin();
    j.pass();
    if (std::string e = j.end(); !e.empty()) {
      state.SkipWithError(e.c_str());
      return;
    }
  }
  double ns[2] = {0, 0};
  double cpu[2] = {0, 0};
  uint64_t passes = 0;
  for (auto _ : state) {
    double both = 0;
    for (int k = 0; k < 2; ++k) {
      const int side = static_cast<int>((passes + k) % 2);
      Job& j = jobs[side];
      j.setup();
      j.begin();
      const double cpu_start = ThreadCpuNs();
      const double start = NowNs();
      const uint64_t got = j.pass();
      const double took = NowNs() - start;
      cpu[side] += ThreadCpuNs() - cpu_start;
      ns[side] += took;
      both += took;
      std::string error = j.end();
      if (error.empty() && got != j.want) {
        error = absl::StrFormat("%u %s of %u", got, j.what, j.want);
      }
      if (!error.empty()) {
        state.SkipWithError(absl::StrCat(kSideName[side], ": ", error).c_str());
        return;
      }
    }
    state.SetIterationTime(both * 1e-9);
    ++passes;
  }
  for (int side = 0; side < 2; ++side) {
    const std::string name = side ? "dpdk" : "keel";
    state.counters[name + "_ns_per_key"] = passes ? ns[side] / (passes * double{kKeys}) : 0;
    state.counters[name + "_cpu_share"] = ns[side] > 0 ? cpu[side] / ns[side] : 0;
    if (jobs[side].writes_per_s) state.counters[name + "_writes_per_s"] = jobs[side].writes_per_s();
  }
}

template <typename Side>
Job AddWithHash(int) {
  const auto t = Tables<Side>::scratch;
  const Key* keys = g_keys->insert.data();
  const uint32_t* h = g_hashes[Side::kSide].insert.data();
  Job j;
  j.what = "adds succeeded";
  j.setup = [t] { Side::Reset(t); };
  j.pass = [t, keys, h] {
    uint64_t ok = 0;
    for (uint32_t i = 0; i < kKeys; ++i) {
      int32_t pos = Side::Add(t, &keys[i], h[i], 0);
      benchmark::DoNotOptimize(pos);
      ok += pos >= 0;
    }
    return ok;
  };
  return j;
}

template <typename Side>
Job DeleteWithHash(int) {
  const auto t = Tables<Side>::scratch;
  const Key* keys = g_keys->lookup.data();
  const uint32_t* h = g_hashes[Side::kSide].lookup.data();
  auto error = std::make_shared<std::string>();
  Job j;
  j.what = "deletes succeeded";
  j.setup = [t, error] {
    Side::Reset(t);
    if (error->empty()) *error = Fill<Side>(t, false);
  };
  j.pass = [t, keys, h] {
    uint64_t ok = 0;
    for (uint32_t i = 0; i < kKeys; ++i) {
      int32_t pos = Side::Delete(t, &keys[i], h[i]);
      benchmark::DoNotOptimize(pos);
      ok += pos >= 0;
    }
    return ok;
  };
  j.end = [error] { return *error; };
  return j;
}

// Single-key lookups of `keys`; returns how many were found. kMode 0: with hash,
// 1: hashing inside, 2: with hash and data.
template <typename Side, int kMode>
uint64_t LookupPass(typename Side::Table t, const Key* keys, const uint32_t* h) {
  uint64_t found = 0;
  uint64_t sum = 0;
  for (uint32_t i = 0; i < kKeys; ++i) {
    int32_t pos;
    if constexpr (kMode == 0) {
      pos = Side::LookupWithHash(t, &keys[i], h[i]);
    } else if constexpr (kMode == 1) {
      pos = Side::Lookup(t, &keys[i]);
    } else {
      uint64_t data = 0;
      pos = Side::LookupWithHashData(t, &keys[i], h[i], &data);
      sum += data;
    }
    benchmark::DoNotOptimize(pos);
    found += pos >= 0;
  }
  benchmark::DoNotOptimize(sum);
  return found;
}

// Lookups of `keys` in the lookup table (kMiss: the absent keys) in mode kMode.
template <typename Side, int kMode, bool kMiss = false>
Job Lookups(int) {
  const auto t = Tables<Side>::lookup;
  const Key* keys = kMiss ? g_keys->miss.data() : g_keys->lookup.data();
  const uint32_t* h =
      kMiss ? g_hashes[Side::kSide].miss.data() : g_hashes[Side::kSide].lookup.data();
  Job j;
  j.warm = true;
  if (kMiss) {
    j.want = 0;
    j.what = "hits (of absent keys)";
  }
  j.pass = [t, keys, h] { return LookupPass<Side, kMode>(t, keys, kMode == 1 ? nullptr : h); };
  return j;
}

template <typename Side, bool kWithHash>
Job LookupBulk(int n_arg) {
  const auto t = Tables<Side>::lookup;
  const unsigned n = static_cast<unsigned>(n_arg);
  const void** keys = const_cast<const void**>(g_keys->lookup_ptrs.data());
  const uint32_t* h = g_hashes[Side::kSide].lookup.data();
  Job j;
  j.warm = true;
  j.pass = [t, n, keys, h] {
    int32_t pos[RTE_HASH_LOOKUP_BULK_MAX];
    uint64_t found = 0;
    for (uint32_t i = 0; i < kKeys; i += n) {
      if constexpr (kWithHash) {
        Side::LookupBulkWithHash(t, keys + i, h + i, n, pos);
      } else {
        Side::LookupBulk(t, keys + i, n, pos);
      }
      benchmark::DoNotOptimize(pos[0]);
      for (unsigned k = 0; k < n; ++k) found += pos[k] >= 0;
    }
    return found;
  };
  return j;
}

// The concurrent case's writer, on lcore 1: adds the writer keys, then deletes them and
// frees their positions, round after round until `stop`; only between rounds, so the
// table holds the reader's keys alone when it returns.
struct Writer {
  std::atomic<int> running{0};
  std::atomic<int> stop{0};
  uint64_t writes = 0;
  std::string error;
};

template <typename Side>
int WriterMain(void* arg) {
  auto* w = static_cast<Writer*>(arg);
  const auto t = Tables<Side>::rw;
  const Key* keys = g_keys->writer.data();
  const uint32_t* h = g_hashes[Side::kSide].writer.data();
  int32_t positions[kWriterKeys];
  // Release: pairs with the reader's acquire; it starts timing once we write.
  w->running.store(1, std::memory_order_release);
  // Relaxed: a flag; nothing is read through it.
  while (w->stop.load(std::memory_order_relaxed) == 0) {
    for (uint32_t j = 0; j < kWriterKeys; ++j) {
      positions[j] = Side::Add(t, &keys[j], h[j], 0);
      if (positions[j] < 0) {
        w->error = absl::StrFormat("writer: add of key %u returned %d", j, positions[j]);
        return 0;
      }
    }
    for (uint32_t j = 0; j < kWriterKeys; ++j) {
      const int32_t pos = Side::Delete(t, &keys[j], h[j]);
      if (pos != positions[j]) {
        w->error = absl::StrFormat("writer: delete of key %u returned %d, added at %d", j, pos,
                                   positions[j]);
        return 0;
      }
      if (const int32_t r = Side::FreePosition(t, pos); r != 0) {
        w->error = absl::StrFormat("writer: free of position %d returned %d", pos, r);
        return 0;
      }
    }
    w->writes += 2 * kWriterKeys;
  }
  return 0;
}

// Lookups with hash in the concurrent table while the writer runs on lcore 1: started
// before each pass (and the warm-up), stopped after it.
template <typename Side>
Job LookupWithWriter(int) {
  struct State {
    Writer w;
    double started = 0;
    uint64_t writes = 0;
    double seconds = 0;
  };
  const auto t = Tables<Side>::rw;
  auto st = std::make_shared<State>();
  Job j;
  j.warm = true;
  j.what = "hits of keys present throughout";
  j.begin = [st] {
    st->w.running.store(0);
    st->w.stop.store(0);
    st->w.writes = 0;
    if (rte_eal_remote_launch(WriterMain<Side>, &st->w, 1) != 0) {
      st->w.error = "lcore 1 is busy";
      return;
    }
    // Acquire: pairs with the writer's release of `running`.
    while (st->w.running.load(std::memory_order_acquire) == 0) {
    }
    st->started = NowNs();
  };
  j.pass = [t] {
    return LookupPass<Side, 0>(t, g_keys->lookup.data(), g_hashes[Side::kSide].lookup.data());
  };
  j.end = [t, st]() -> std::string {
    st->w.stop.store(1, std::memory_order_relaxed);
    rte_eal_wait_lcore(1);
    st->seconds += (NowNs() - st->started) * 1e-9;
    st->writes += st->w.writes;
    if (!st->w.error.empty()) return st->w.error;
    if (st->w.writes == 0) return "the writer wrote nothing";
    if (Side::Count(t) != kKeys) {
      return absl::StrFormat("count %u after the writer stopped, want %u", Side::Count(t), kKeys);
    }
    if constexpr (Side::kSide == Keel::kSide) {
      if (absl::Status s = t.Verify(); !s.ok()) return s.ToString();
    }
    return "";
  };
  j.writes_per_s = [st] { return st->seconds > 0 ? st->writes / st->seconds : 0; };
  return j;
}

// --- Reporting -----------------------------------------------------------------------

struct Case {
  std::string key;    // benchmark name without "BM_", then "/arg"
  std::string label;  // for the table
  double target;
};
std::vector<Case>& Cases() {
  static auto* cases = new std::vector<Case>;
  return *cases;
}

// ns per key of every run, by case and side, with its repetition index; errors.
std::map<std::string, std::vector<std::pair<int64_t, double>>>& Measured(int side) {
  static auto* measured = new std::map<std::string, std::vector<std::pair<int64_t, double>>>[2];
  return measured[side];
}
std::map<std::string, std::string>& Errors(int side) {
  static auto* errors = new std::map<std::string, std::string>[2];
  return errors[side];
}

std::map<std::string, std::vector<std::pair<int64_t, double>>>& WriterRates(int side) {
  static auto* rates = new std::map<std::string, std::vector<std::pair<int64_t, double>>>[2];
  return rates[side];
}

std::map<std::string, std::vector<std::pair<int64_t, double>>>& CpuShares(int side) {
  static auto* shares = new std::map<std::string, std::vector<std::pair<int64_t, double>>>[2];
  return shares[side];
}

// Prints each run (the table at the end gives the medians), and keeps its ns per key.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  explicit RatioReporter(OutputOptions options) : ConsoleReporter(options) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> measurements;
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;  // means, medians: not measurements
      measurements.push_back(run);
      const std::string& function = run.run_name.function_name;
      if (function.rfind("BM_", 0) != 0) continue;
      std::string key = function.substr(3);
      if (!run.run_name.args.empty()) absl::StrAppend(&key, "/", run.run_name.args);
      if (run.error_occurred) {
        const int side = run.error_message.rfind(kSideName[1], 0) == 0 ? 1 : 0;
        Errors(side)[key] = run.error_message;
        continue;
      }
      for (int side = 0; side < 2; ++side) {
        const std::string name = side ? "dpdk" : "keel";
        auto it = run.counters.find(name + "_ns_per_key");
        if (it != run.counters.end()) {
          Measured(side)[key].push_back({run.repetition_index, it->second.value});
        }
        it = run.counters.find(name + "_cpu_share");
        if (it != run.counters.end()) {
          CpuShares(side)[key].push_back({run.repetition_index, it->second.value});
        }
        it = run.counters.find(name + "_writes_per_s");
        if (it != run.counters.end()) {
          WriterRates(side)[key].push_back({run.repetition_index, it->second.value});
        }
      }
    }
    if (!measurements.empty()) ConsoleReporter::ReportRuns(measurements);
  }
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A side's values of one case, in repetition order.
std::vector<double> InOrder(
    const std::map<std::string, std::vector<std::pair<int64_t, double>>>& by_case,
    const std::string& key) {
  auto it = by_case.find(key);
  if (it == by_case.end()) return {};
  std::vector<std::pair<int64_t, double>> runs = it->second;
  std::sort(runs.begin(), runs.end());
  std::vector<double> values;
  for (const auto& [rep, v] : runs) values.push_back(v);
  return values;
}

// Runs whose measuring thread had less of its CPU than this are marked.
constexpr double kDisturbed = 0.95;

void PrintTable() {
  std::printf(
      "\nkeel/DPDK: %u keys of %u B in a table for %u entries, crc32c init 0; ns per key; "
      "keel, DPDK: median of each side's runs; keel/DPDK: median of the runs' ratios\n",
      kKeys, kKeyLength, kEntries);
  std::printf("%-28s %9s %9s %9s  %-14s %s\n", "case", "keel", "DPDK", "keel/DPDK", "target",
              "every run: keel/DPDK ns = ratio");
  bool any_disturbed = false;
  for (const Case& c : Cases()) {
    std::vector<double> ns[2], share[2];
    for (int side = 0; side < 2; ++side) {
      ns[side] = InOrder(Measured(side), c.key);
      share[side] = InOrder(CpuShares(side), c.key);
    }
    const bool erred = Errors(0).count(c.key) || Errors(1).count(c.key);
    if (ns[0].empty() && ns[1].empty() && !erred) continue;  // filtered out
    std::vector<double> ratios;
    std::string every;
    for (size_t i = 0; i < std::min(ns[0].size(), ns[1].size()); ++i) {
      ratios.push_back(ns[0][i] / ns[1][i]);
      const bool disturbed = (i < share[0].size() && share[0][i] < kDisturbed) ||
                             (i < share[1].size() && share[1][i] < kDisturbed);
      any_disturbed |= disturbed;
      absl::StrAppend(&every, i ? "  " : "",
                      absl::StrFormat("%.1f/%.1f=%.3f%s", ns[0][i], ns[1][i], ratios.back(),
                                      disturbed ? "*" : ""));
    }
    // Runs of one side beyond the other's (a filter or an error): shown, not paired.
    for (int side = 0; side < 2; ++side) {
      for (size_t i = ratios.size(); i < ns[side].size(); ++i) {
        absl::StrAppend(&every, "  ", kSideName[side], absl::StrFormat(" %.1f", ns[side][i]));
      }
    }
    const double ratio = Median(ratios);
    std::string verdict = "-";
    if (!ratios.empty()) {
      verdict = absl::StrFormat("<=%.1f %s", c.target, ratio <= c.target ? "met" : "MISSED");
    }
    std::printf("%-28s %9.2f %9.2f %9.3f  %-14s %s\n", c.label.c_str(), Median(ns[0]),
                Median(ns[1]), ratio, verdict.c_str(), every.c_str());
    if (!ratios.empty()) {
      keel::bench::RecordFigure({"ns per key", c.label, "ns", Median(ns[0]), Median(ns[1])});
    }
    for (int side = 0; side < 2; ++side) {
      const std::vector<double> rates = InOrder(WriterRates(side), c.key);
      if (rates.empty()) continue;
      std::string each;
      for (double v : rates) absl::StrAppend(&each, absl::StrFormat(" %.2f", v / 1e6));
      std::printf("%-28s   %s writer, M writes (adds + deletes) per s:%s\n", "", kSideName[side],
                  each.c_str());
    }
    for (int side = 0; side < 2; ++side) {
      auto it = Errors(side).find(c.key);
      if (it != Errors(side).end()) {
        std::printf("%-28s   %s error: %s\n", "", kSideName[side], it->second.c_str());
      }
    }
  }
  if (any_disturbed) {
    std::printf(
        "* the measuring thread of keel's or DPDK's run had less than %.0f %% of its CPU (the "
        "machine ran something else): a noisy run, kept in the medians\n",
        kDisturbed * 100);
  }
  std::printf("\nmemory per entry (%u entries)\n", kEntries);
  for (const MemoryNote& m : MemoryNotes()) {
    for (int side = 0; side < 2; ++side) {
      std::printf("  %-22s %-5s %7.2f B/entry  %10zu B  %s\n", side ? "" : m.table.c_str(),
                  kSideName[side], static_cast<double>(m.bytes[side]) / kEntries, m.bytes[side],
                  m.how[side].c_str());
    }
    if (m.bytes[1] > 0) {
      std::printf("  %-22s keel/DPDK %.3f\n", "",
                  static_cast<double>(m.bytes[0]) / static_cast<double>(m.bytes[1]));
    }
  }
}

using MakeJob = Job (*)(int arg);

void Register(const std::string& key, const std::string& label, double target, MakeJob keel,
              MakeJob dpdk, int iterations, int arg = -1) {
  Cases().push_back({arg < 0 ? key : absl::StrCat(key, "/", arg), label, target});
  benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(
      absl::StrCat("BM_", key).c_str(), [keel, dpdk, arg](benchmark::State& state) {
        Job jobs[2] = {keel(arg), dpdk(arg)};
        Paired(state, jobs);
      });
  if (arg >= 0) b->Arg(arg);
  b->Iterations(iterations)->UseManualTime()->Unit(benchmark::kMillisecond);
}

void RegisterAll() {
  Register("AddWithHash", "add with hash", kSingleTarget, AddWithHash<Keel>, AddWithHash<Dpdk>, 3);
  Register("LookupWithHash", "lookup with hash", kSingleTarget, Lookups<Keel, 0>, Lookups<Dpdk, 0>,
           5);
  Register("Lookup", "lookup (hashing inside)", kSingleTarget, Lookups<Keel, 1>, Lookups<Dpdk, 1>,
           5);
  for (unsigned n : kBulkSizes) {
    Register("LookupBulkWithHash", absl::StrCat("bulk ", n, " with hash"), kBulkTarget,
             LookupBulk<Keel, true>, LookupBulk<Dpdk, true>, 5, static_cast<int>(n));
  }
  for (unsigned n : kBulkSizes) {
    Register("LookupBulk", absl::StrCat("bulk ", n, " (hashing inside)"), kBulkTarget,
             LookupBulk<Keel, false>, LookupBulk<Dpdk, false>, 5, static_cast<int>(n));
  }
  Register("LookupWithHashData", "lookup with hash, data", kSingleTarget, Lookups<Keel, 2>,
           Lookups<Dpdk, 2>, 5);
  Register("LookupMissWithHash", "lookup miss with hash", kBulkTarget, Lookups<Keel, 0, true>,
           Lookups<Dpdk, 0, true>, 5);
  Register("DeleteWithHash", "delete with hash", kSingleTarget, DeleteWithHash<Keel>,
           DeleteWithHash<Dpdk>, 3);
  Register("LookupWithWriter", "lookup w/ hash, a writer", kSingleTarget, LookupWithWriter<Keel>,
           LookupWithWriter<Dpdk>, 5);
}

// Creates, fills and checks every table; false (after saying why) when a side cannot be
// benchmarked.
bool SetUp(const std::string& dpdk_memory) {
  const uint32_t keel_rw_flags =
      keel::hash::kLockFreeReaders | keel::hash::kNoFreeOnDelete | keel::hash::kMultiWriter;
  const uint32_t dpdk_rw_flags =
      RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD;
  struct Spec {
    const char* name;
    const char* note;
    uint32_t keel_flags;
    uint32_t dpdk_flags;
    keel::hash::Table* keel;
    rte_hash** dpdk;
  };
  const Spec specs[] = {
      {"kb_lookup", "lookup table", 0, 0, &Tables<Keel>::lookup, &Tables<Dpdk>::lookup},
      {"kb_scratch", "add/delete table", 0, 0, &Tables<Keel>::scratch, &Tables<Dpdk>::scratch},
      {"kb_rw", "lock-free readers, MW", keel_rw_flags, dpdk_rw_flags, &Tables<Keel>::rw,
       &Tables<Dpdk>::rw},
  };
  for (const Spec& s : specs) {
    MemoryNote note;
    note.table = s.note;
    absl::StatusOr<keel::hash::Table> t =
        MakeKeel(s.name, s.keel_flags, &note.bytes[0], &note.how[0]);
    if (!t.ok()) {
      std::fprintf(stderr, "keel table %s: %s\n", s.name, t.status().ToString().c_str());
      return false;
    }
    *s.keel = *t;
    *s.dpdk = MakeDpdk(s.name, s.dpdk_flags, &note.bytes[1]);
    if (*s.dpdk == nullptr) {
      std::fprintf(stderr, "rte_hash_create %s: %s\n", s.name, rte_strerror(rte_errno));
      return false;
    }
    note.how[1] = dpdk_memory;
    std::fprintf(stderr, "%s: keel %s; DPDK %s\n", s.name, note.how[0].c_str(),
                 note.how[1].c_str());
    MemoryNotes().push_back(note);
  }
  ComputeHashes<Keel>(Tables<Keel>::lookup);
  ComputeHashes<Dpdk>(Tables<Dpdk>::lookup);
  uint32_t differ = 0;
  for (uint32_t i = 0; i < kKeys; ++i) {
    if (g_hashes[0].insert[i] != g_hashes[1].insert[i]) {
      if (differ++ == 0) {
        std::fprintf(stderr, "keel's crc32c differs from rte_hash_crc: key %u: %08x vs %08x\n", i,
                     g_hashes[0].insert[i], g_hashes[1].insert[i]);
      }
    }
  }
  if (differ != 0) std::fprintf(stderr, "%u of %u hashes differ\n", differ, kKeys);
  const std::string errors[] = {
      Fill<Keel>(Tables<Keel>::lookup, true),
      Fill<Dpdk>(Tables<Dpdk>::lookup, true),
      Fill<Keel>(Tables<Keel>::rw, true),
      Fill<Dpdk>(Tables<Dpdk>::rw, true),
  };
  bool ok = true;
  for (const std::string& e : errors) {
    if (!e.empty()) {
      std::fprintf(stderr, "fill: %s\n", e.c_str());
      ok = false;
    }
  }
  if (!ok) return false;
  const std::string checks[] = {
      Check<Keel>(Tables<Keel>::lookup, true),
      Check<Dpdk>(Tables<Dpdk>::lookup, true),
      Check<Keel>(Tables<Keel>::rw, true),
      Check<Dpdk>(Tables<Dpdk>::rw, true),
  };
  for (const std::string& e : checks) {
    if (!e.empty()) {
      // Reported, not fatal: the benchmarks count their own hits.
      std::fprintf(stderr, "check: %s\n", e.c_str());
    }
  }
  return true;
}

void TearDown() {
  rte_hash_free(Tables<Dpdk>::lookup);
  rte_hash_free(Tables<Dpdk>::scratch);
  rte_hash_free(Tables<Dpdk>::rw);
  keel::bench::UnmapBenchMemory();
}

}  // namespace

int main(int argc, char** argv) {
  if (!keel::bench::InitBenchmark(argc, argv)) return 1;
  std::string dpdk_memory;
  // DPDK's EAL on lcores 0 and 1 (the main thread becomes lcore 0 on CPU 0; lcore 1 runs
  // the concurrent case's writer).
  keel::bench::DpdkEal eal;
  eal.lcores = "0-1";
  eal.hugepages = 256;  // -m 512
  eal.prefix = "hashbench-dpdk";
  if (!keel::bench::InitDpdkEal(eal, &dpdk_memory)) return 1;
  MakeKeys();
  if (!SetUp(dpdk_memory)) {
    TearDown();
    keel::bench::CleanupDpdkEal();
    return 1;
  }
  RegisterAll();
  RatioReporter reporter(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                               : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  PrintTable();
  TearDown();
  keel::bench::CleanupDpdkEal();
  return 0;
}
