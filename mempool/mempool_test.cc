// Mempool API tests in one process: the EAL is initialized once (--no-huge, two lcores)
// for the whole binary. Multi-process cases live in tests/mempool_multiprocess_test.cc.
#include "mempool/mempool.h"

#include <atomic>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "eal/eal.h"
#include "eal/lcore.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "memory/memory.h"
#include "tests/subprocess.h"

namespace keel::mempool {
namespace {

using ::testing::HasSubstr;

class EalEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    std::vector<std::string> args = {"mempool_test",
                                     "--no-huge",
                                     "-m",
                                     "128",
                                     "--lcores",
                                     "0@0,1@1",
                                     "--file-prefix",
                                     keel::testing::UniquePrefix()};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    absl::StatusOr<std::vector<std::string>> init =
        eal::Init(static_cast<int>(argv.size()), argv.data());
    ASSERT_TRUE(init.ok()) << init.status();
  }
  void TearDown() override { EXPECT_TRUE(eal::Cleanup().ok()); }
};

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new EalEnvironment);

// A pool that frees itself after the test.
struct PoolDeleter {
  void operator()(Mempool* p) const { EXPECT_TRUE(Free(p).ok()); }
};
using PoolPtr = std::unique_ptr<Mempool, PoolDeleter>;

PoolPtr MakePool(const std::string& name, unsigned n, unsigned elt_size, unsigned cache,
                 uint32_t flags = 0, absl::string_view ops = "") {
  absl::StatusOr<Mempool*> p =
      Create(name, n, elt_size, cache, 0, flags, memory::kSocketAny, nullptr, ops);
  EXPECT_TRUE(p.ok()) << p.status();
  return PoolPtr(p.ok() ? *p : nullptr);
}

TEST(MempoolCreate, RejectsBadArguments) {
  struct Case {
    std::string name;
    unsigned n, elt_size, cache;
    uint32_t flags;
    std::string ops;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"p", 0, 64, 0, 0, "", "mempool \"p\": n 0 is not in 1..2147483647"},
           {"p", 0x80000000u, 64, 0, 0, "", "n 2147483648 is not in 1..2147483647"},
           {"p", 100, 0, 0, 0, "", "element size 0"},
           {"p", 10000, 64, 513, 0, "", "cache size 513 is above 512"},
           {"p", 100, 64, 100, 0, "", "cache size 100 needs at least 150 objects"},
           {"p", 100, 64, 0, 1u << 9, "", "unknown flags 0x200"},
           {"p", 100, 64, 0, 0, "stack", "unknown backend \"stack\" (known: ring_mp_mc"},
           {"", 100, 64, 0, 0, "", "mempool name \"\" must be 1 to 63 characters (it has 0)"},
           {std::string(64, 'x'), 100, 64, 0, 0, "", "must be 1 to 63 characters (it has 64)"},
       }) {
    absl::StatusOr<Mempool*> p =
        Create(c.name, c.n, c.elt_size, c.cache, 0, c.flags, memory::kSocketAny, nullptr, c.ops);
    ASSERT_FALSE(p.ok()) << c.message;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.message));
  }
}

TEST(MempoolCreate, DuplicateMissingAndTooLarge) {
  PoolPtr pool = MakePool("dup", 63, 64, 0);
  absl::StatusOr<Mempool*> again = Create("dup", 63, 64, 0, 0, 0, memory::kSocketAny);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Lookup("missing").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<Mempool*> huge = Create("huge", 1 << 20, 4096, 0, 0, 0, memory::kSocketAny);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(huge.status().message()), HasSubstr("mempool \"huge\""));
  // The failed creations left nothing behind.
  EXPECT_EQ(Lookup("huge").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*Lookup("dup"), pool.get());
}

TEST(MempoolCreate, LookupOfAnotherKindIsRefused) {
  absl::StatusOr<ring::Ring*> r = ring::Create("not-a-pool", 16, memory::kSocketAny, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<Mempool*> p = Lookup("not-a-pool");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ring::Free(*r).ok());
  EXPECT_EQ(Free(reinterpret_cast<Mempool*>(*r)).code(), absl::StatusCode::kInvalidArgument);
}

TEST(MempoolCreate, ObjectInitPrivateDataAndIteration) {
  std::vector<void*> seen;
  absl::StatusOr<Mempool*> p = Create("init", 100, 24, 0, 40, 0, memory::kSocketAny,
                                      [&](Mempool& pool, void* obj, unsigned index) {
                                        EXPECT_EQ(Mempool::FromObject(obj), &pool);
                                        std::memcpy(obj, &index, sizeof(index));
                                        seen.push_back(obj);
                                      });
  ASSERT_TRUE(p.ok()) << p.status();
  PoolPtr pool(*p);
  ASSERT_EQ(seen.size(), 100u);
  EXPECT_EQ(pool->Size(), 100u);
  EXPECT_EQ(pool->ElementSize(), 24u);
  EXPECT_EQ(pool->PrivateSize(), 40u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(pool->PrivateData()) % 64, 0u);
  EXPECT_EQ(std::string(40, '\0'), std::string(static_cast<char*>(pool->PrivateData()), 40));
  unsigned visits = 0;
  pool->ObjectIterate([&](void* obj, unsigned index) {
    unsigned stored;
    std::memcpy(&stored, obj, sizeof(stored));
    EXPECT_EQ(stored, index);
    EXPECT_EQ(obj, seen[index]);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(obj) % 64, 0u);  // cache-aligned by default
    ++visits;
  });
  EXPECT_EQ(visits, 100u);
  EXPECT_EQ(pool->ops_name(), "ring_mp_mc");
  EXPECT_TRUE(pool->Full());
}

TEST(MempoolCreate, FlagsChooseTheBackend) {
  EXPECT_EQ(MakePool("f1", 15, 8, 0, kSingleProducerPut | kSingleConsumerGet)->ops_name(),
            "ring_sp_sc");
  EXPECT_EQ(MakePool("f2", 15, 8, 0, kSingleProducerPut)->ops_name(), "ring_sp_mc");
  EXPECT_EQ(MakePool("f3", 15, 8, 0, kSingleConsumerGet)->ops_name(), "ring_mp_sc");
  EXPECT_EQ(MakePool("f4", 15, 8, 0, 0, "ring_mt_hts")->ops_name(), "ring_mt_hts");
  EXPECT_THAT(OpsNames(), ::testing::Contains("ring_mt_rts"));
  PoolPtr dense = MakePool("dense", 16, 8, 0, kNoCacheAlign);
  dense->ObjectIterate(
      [](void* obj, unsigned) { EXPECT_EQ(reinterpret_cast<uintptr_t>(obj) % 8, 0u); });
}

// Every backend and cache configuration: get everything, counts, all distinct, put
// everything back.
class MempoolModeTest
    : public ::testing::TestWithParam<std::tuple<const char*, unsigned /*cache*/>> {};

TEST_P(MempoolModeTest, GetAllPutAllAndTheCounts) {
  const auto [ops, cache] = GetParam();
  PoolPtr pool = MakePool(absl::StrCat("mode-", ops, "-", cache), 1000, 48, cache, 0, ops);
  std::vector<void*> got(1000);
  std::set<void*> distinct;
  unsigned taken = 0;
  for (unsigned n : {1u, 7u, 32u, 100u}) {
    ASSERT_TRUE(pool->GetBulk(got.data() + taken, n));
    taken += n;
    EXPECT_EQ(pool->InUseCount(), taken);
    EXPECT_EQ(pool->AvailableCount(), 1000 - taken);
  }
  while (taken < 1000) {
    const unsigned n = std::min(1000 - taken, 37u);
    ASSERT_TRUE(pool->GetBulk(got.data() + taken, n)) << taken;
    taken += n;
  }
  void* extra;
  EXPECT_FALSE(pool->Get(&extra));  // empty: all or nothing
  EXPECT_TRUE(pool->Empty());
  distinct.insert(got.begin(), got.end());
  EXPECT_EQ(distinct.size(), 1000u);
  for (void* obj : got) {
    ASSERT_EQ(Mempool::FromObject(obj), pool.get());
    std::memset(obj, 0xab, 48);  // the whole object is the caller's
  }
  for (unsigned i = 0; i < 1000;) {
    const unsigned n = std::min(1000 - i, 1 + i % 50);
    pool->PutBulk(got.data() + i, n);
    i += n;
  }
  EXPECT_TRUE(pool->Full());
  EXPECT_EQ(pool->InUseCount(), 0u);
  EXPECT_TRUE(pool->Audit().ok()) << pool->Audit();
}

INSTANTIATE_TEST_SUITE_P(Backends, MempoolModeTest,
                         ::testing::Combine(::testing::Values("ring_mp_mc", "ring_sp_sc",
                                                              "ring_mp_sc", "ring_sp_mc",
                                                              "ring_mt_rts", "ring_mt_hts"),
                                            ::testing::Values(0u, 32u, 512u)),
                         [](const auto& info) {
                           return absl::StrCat(std::get<0>(info.param), "_cache",
                                               std::get<1>(info.param));
                         });

TEST(MempoolCache, LcoreCacheFillsAndFlushesAtTheThresholds) {
  PoolPtr pool = MakePool("thresholds", 1000, 16, 32);
  ASSERT_EQ(eal::LcoreId(), 0u);
  Cache* cache = pool->DefaultCache();
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(pool->DefaultCache(0), cache);
  EXPECT_NE(pool->DefaultCache(1), cache);
  EXPECT_EQ(pool->DefaultCache(eal::kLcoreIdAny), nullptr);
  ring::Ring* backend =
      mempool_internal::Backend(*reinterpret_cast<mempool_internal::MempoolLayout*>(pool.get()));

  void* objs[64];
  // A get of 4 from an empty cache refills it to 32 after taking 4.
  ASSERT_TRUE(pool->GetBulk(objs, 4));
  EXPECT_EQ(cache->len.load(), 32u);
  EXPECT_EQ(backend->Count(), 1000u - 36);
  // Puts stay in the cache up to 1.5 x 32 = 48 ...
  pool->PutBulk(objs, 4);
  EXPECT_EQ(cache->len.load(), 36u);
  ASSERT_TRUE(pool->GetBulk(objs, 12));
  pool->PutBulk(objs, 12);
  EXPECT_EQ(cache->len.load(), 36u);
  ASSERT_TRUE(pool->GetBulk(objs, 24));  // 12 left: no refill needed
  EXPECT_EQ(cache->len.load(), 12u);
  pool->PutBulk(objs, 24);
  EXPECT_EQ(cache->len.load(), 36u);
  ASSERT_TRUE(pool->GetBulk(objs, 12));
  pool->PutBulk(objs, 12);
  ASSERT_TRUE(pool->GetBulk(objs, 13));
  pool->PutBulk(objs, 13);  // 23 + 13 = 36: stays
  EXPECT_EQ(cache->len.load(), 36u);
  // ... beyond it the cache is flushed to the ring and keeps what was put.
  ASSERT_TRUE(pool->GetBulk(objs, 1, nullptr));  // straight from the ring
  void* more[13];
  ASSERT_TRUE(pool->GetBulk(more, 13, nullptr));
  pool->PutBulk(more, 13);  // 36 + 13 = 49 > 48: flush 36, keep 13
  EXPECT_EQ(cache->len.load(), 13u);
  pool->PutBulk(objs, 1, nullptr);
  // A bulk larger than the cache goes to the ring both ways.
  ASSERT_TRUE(pool->GetBulk(objs, 64));
  EXPECT_EQ(cache->len.load(), 13u);
  pool->PutBulk(objs, 64);
  EXPECT_EQ(cache->len.load(), 13u);
  EXPECT_EQ(pool->AvailableCount(), 1000u);
  EXPECT_THAT(pool->Dump(), HasSubstr("lcore 0 cache: 13 objects"));
}

// Gets and puts of a constant bulk N through the lcore cache (the fast path copies
// those in 32-byte moves and single pointers), until the pool is empty and back.
template <unsigned N>
void GetAllAndPutAllInBulksOf(Mempool* pool) {
  std::vector<void*> got(pool->Size());
  unsigned taken = 0;
  while (taken + N <= pool->Size() && pool->GetBulk(got.data() + taken, N)) taken += N;
  EXPECT_EQ(taken, pool->Size() / N * N) << N;
  EXPECT_EQ(std::set<void*>(got.begin(), got.begin() + taken).size(), taken) << N;
  for (unsigned i = 0; i < taken; i += N) pool->PutBulk(got.data() + i, N);
  EXPECT_TRUE(pool->Full()) << N;
  EXPECT_TRUE(pool->Audit().ok()) << pool->Audit();
}

TEST(MempoolCache, EveryBulkSizeKeepsEachObjectOnce) {
  PoolPtr pool = MakePool("bulks", 1000, 16, 64);
  GetAllAndPutAllInBulksOf<1>(pool.get());
  GetAllAndPutAllInBulksOf<3>(pool.get());
  GetAllAndPutAllInBulksOf<4>(pool.get());
  GetAllAndPutAllInBulksOf<7>(pool.get());
  GetAllAndPutAllInBulksOf<8>(pool.get());
  GetAllAndPutAllInBulksOf<9>(pool.get());
  GetAllAndPutAllInBulksOf<13>(pool.get());
  GetAllAndPutAllInBulksOf<32>(pool.get());
  GetAllAndPutAllInBulksOf<33>(pool.get());
  GetAllAndPutAllInBulksOf<64>(pool.get());
  GetAllAndPutAllInBulksOf<96>(pool.get());
}

TEST(MempoolCache, GetTakesWhatTheRingHasLeft) {
  PoolPtr pool = MakePool("last", 48, 16, 32);
  std::vector<void*> objs(48);
  ASSERT_TRUE(pool->GetBulk(objs.data(), 20));  // refill 52 fails; 20 from the ring
  ASSERT_TRUE(pool->GetBulk(objs.data() + 20, 28));
  EXPECT_TRUE(pool->Empty());
  EXPECT_FALSE(pool->GetBulk(objs.data(), 1));
  pool->PutBulk(objs.data(), 48);
  EXPECT_TRUE(pool->Full());
}

TEST(MempoolCache, ThreadsWithoutAnLcoreUseTheRingOrTheirOwnCache) {
  PoolPtr pool = MakePool("nonlcore", 1000, 16, 64);
  std::thread([&] {
    ASSERT_EQ(eal::LcoreId(), eal::kLcoreIdAny);
    EXPECT_EQ(pool->DefaultCache(), nullptr);
    void* objs[10];
    ASSERT_TRUE(pool->GetBulk(objs, 10));
    EXPECT_EQ(pool->InUseCount(), 10u);
    pool->PutBulk(objs, 10);

    absl::StatusOr<Cache*> own = CreateCache(16, memory::kSocketAny);
    ASSERT_TRUE(own.ok()) << own.status();
    ASSERT_TRUE(pool->GetBulk(objs, 4, *own));
    EXPECT_EQ((*own)->len.load(), 16u);
    pool->PutBulk(objs, 4, *own);
    // Objects in a user-owned cache count as in use until it is flushed.
    EXPECT_EQ(pool->InUseCount(), 20u);
    FlushCache(*own, pool.get());
    EXPECT_EQ(pool->InUseCount(), 0u);
    EXPECT_TRUE(FreeCache(*own).ok());
  }).join();
  EXPECT_EQ(CreateCache(0, memory::kSocketAny).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCache(513, memory::kSocketAny).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Two lcores of this process (0 main, 1 worker) and a plain thread hammer one pool;
// every object stays owned by exactly one user at a time.
TEST(MempoolCache, LcoresAndAThreadShareAPoolWithoutLosingObjects) {
  PoolPtr pool = MakePool("shared", 2048, 64, 128);
  std::atomic<int> failures{0};
  auto work = [&](uint32_t tag) {
    void* objs[40];
    for (int round = 0; round < 20000; ++round) {
      const unsigned n = 1 + round % 40;
      if (!pool->GetBulk(objs, n)) continue;
      for (unsigned i = 0; i < n; ++i) std::memcpy(objs[i], &tag, sizeof(tag));
      for (unsigned i = 0; i < n; ++i) {
        uint32_t seen;
        std::memcpy(&seen, objs[i], sizeof(seen));
        // Relaxed: a counter read after the threads are joined.
        if (seen != tag) failures.fetch_add(1, std::memory_order_relaxed);
      }
      pool->PutBulk(objs, n);
    }
    return 0;
  };
  ASSERT_TRUE(eal::RemoteLaunch([&] { return work(1); }, 1).ok());
  std::thread plain([&] { work(2); });
  work(0);
  plain.join();
  EXPECT_EQ(eal::WaitLcore(1), 0);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(pool->AvailableCount(), 2048u);
  EXPECT_GT(pool->DefaultCache(1)->len.load(), 0u);  // lcore 1 kept its cache
  EXPECT_TRUE(pool->Audit().ok()) << pool->Audit();
}

TEST(MempoolDebug, DoubleFreeAndOverrunAreCaughtAndNothingIsLost) {
  if (!mempool_internal::kDebug) GTEST_SKIP() << "cookies exist in debug builds only";
  PoolPtr pool = MakePool("cookies", 64, 20, 0);
  void* a;
  void* b;
  ASSERT_TRUE(pool->Get(&a));
  ASSERT_TRUE(pool->Get(&b));
  pool->Put(a);
  pool->Put(a);  // double free: refused
  EXPECT_EQ(pool->AvailableCount(), 63u);
  std::vector<char> foreign(128);
  pool->Put(foreign.data() + 64);  // not an object of the pool: refused
  EXPECT_EQ(pool->AvailableCount(), 63u);
  std::memset(b, 0, 21);  // one byte past its 20
  EXPECT_THAT(std::string(pool->Audit().message()), HasSubstr("written past its 20 bytes"));
  pool->Put(b);  // counted and repaired
  EXPECT_TRUE(pool->Full());
  const absl::Status audit = pool->Audit();
  EXPECT_EQ(audit.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(audit.message()), HasSubstr("2 puts refused"));
  EXPECT_THAT(std::string(audit.message()), HasSubstr("1 objects were put back overrun"));
  EXPECT_THAT(std::string(audit.message()), ::testing::Not(HasSubstr("written past")));
}

// Audit counts every object in the ring and the lcore caches: one found twice (a double
// put that no check stopped, or a cache a killed process left inconsistent) is a
// duplicate the pool would hand out twice.
TEST(MempoolAudit, ReportsAnObjectInThePoolTwice) {
  PoolPtr pool = MakePool("twice", 63, 64, 8);
  Cache* cache = pool->DefaultCache();
  void* objs[3];
  ASSERT_TRUE(pool->GetBulk(objs, 3));
  pool->PutBulk(objs, 3);
  EXPECT_TRUE(pool->Audit().ok()) << pool->Audit();
  // objs[0] again, into the cache, which holds it already; objs[1] straight to the ring.
  pool->PutBulkUncheckedForTest(objs, 1, cache);
  pool->PutBulkUncheckedForTest(objs + 1, 1, nullptr);
  const absl::Status audit = pool->Audit();
  EXPECT_EQ(audit.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(audit.message()),
              HasSubstr("2 objects are in the pool more than once (ring + lcore caches)"));
  EXPECT_THAT(std::string(audit.message()), HasSubstr(absl::StrFormat("%p x2", objs[0])));
  EXPECT_THAT(std::string(audit.message()), HasSubstr(absl::StrFormat("%p x2", objs[1])));
}

TEST(MempoolAudit, ReportsAnObjectInTheCacheMarkedInUse) {
  if (!mempool_internal::kDebug) GTEST_SKIP() << "in-use marks exist in debug builds only";
  PoolPtr pool = MakePool("inuse", 63, 64, 8);
  void* obj;
  ASSERT_TRUE(pool->Get(&obj));
  // Back into the cache without the put's checks, so still marked in use.
  pool->PutBulkUncheckedForTest(&obj, 1, pool->DefaultCache());
  const absl::Status audit = pool->Audit();
  EXPECT_EQ(audit.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(audit.message()),
              HasSubstr(absl::StrFormat("1 objects in the pool are marked in use: %p", obj)));
}

}  // namespace
}  // namespace keel::mempool
