// The table on caller-provided memory (//hash:core alone): every call and its bad input,
// displacement at high load, overflow chains, attaching from another handle, Verify
// catching damage, repair after a writer died holding the lock, and readers beside
// writers.
#include "hash/hash.h"

#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hash/internal/layout.h"

namespace keel::hash {
namespace {

using ::testing::HasSubstr;

// A table in memory of its own (anonymous mmap, freed at scope end).
class Mem {
 public:
  explicit Mem(size_t size) : size_(size) {
    p_ = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p_ == MAP_FAILED) p_ = nullptr;
  }
  ~Mem() {
    if (p_ != nullptr) munmap(p_, size_);
  }
  void* get() const { return p_; }

 private:
  size_t size_;
  void* p_;
};

struct Key16 {
  uint64_t a, b;
  bool operator<(const Key16& o) const { return a != o.a ? a < o.a : b < o.b; }
  bool operator==(const Key16& o) const { return a == o.a && b == o.b; }
};

Key16 KeyOf(uint64_t i) { return {i * 0x9e3779b97f4a7c15ULL + 1, ~i}; }

class TableTest : public ::testing::Test {
 protected:
  Table Make(const Params& p) {
    absl::StatusOr<size_t> size = MemorySize(p);
    EXPECT_TRUE(size.ok()) << size.status();
    mem_ = std::make_unique<Mem>(*size);
    absl::StatusOr<Table> t = Init(mem_->get(), p);
    EXPECT_TRUE(t.ok()) << t.status();
    return *t;
  }
  std::unique_ptr<Mem> mem_;
};

Params P(uint32_t entries, uint32_t key_length = 16, uint32_t flags = 0,
         absl::string_view function = "crc32c") {
  Params p;
  p.name = "t";
  p.entries = entries;
  p.key_length = key_length;
  p.flags = flags;
  p.function = function;
  return p;
}

// --- Parameters ----------------------------------------------------------------------

TEST(ParamsTest, BadParametersAreRefusedNamingTheValue) {
  auto refused = [](Params p, absl::string_view what) {
    absl::StatusOr<size_t> s = MemorySize(p);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << what;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(std::string(what)));
  };
  refused(P(0), "entries 0");
  refused(P(kMaxEntries + 1), absl::StrCat("entries ", kMaxEntries + 1));
  refused(P(16, 0), "key length 0");
  refused(P(16, kMaxKeyLength + 1), absl::StrCat("key length ", kMaxKeyLength + 1));
  refused(P(16, 16, 1u << 7), "unknown flags 0x80");
  refused(P(16, 16, kLockFreeReaders), "kLockFreeReaders needs kNoFreeOnDelete");
  Params p = P(16);
  p.name = "";
  refused(p, "1 to 63 characters");
  const std::string long_name(64, 'n');
  p.name = long_name;
  refused(p, "1 to 63 characters");
  p.name = "tab\tname";
  refused(p, "unprintable");
  p = P(16);
  p.function = "";
  refused(p, "function name");
  EXPECT_TRUE(MemorySize(P(16, 16, kLockFreeReaders | kNoFreeOnDelete)).ok());
}

TEST(ParamsTest, AnUnknownFunctionIsNotFound) {
  Mem mem(1 << 20);
  absl::StatusOr<Table> t = Init(mem.get(), P(16, 16, 0, "nosuchfn"));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("nosuchfn"));
}

TEST(ParamsTest, MisalignedMemoryIsRefused) {
  Mem mem(1 << 20);
  absl::StatusOr<Table> t = Init(static_cast<char*>(mem.get()) + 8, P(16));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("aligned"));
}

uint32_t Fnv(const void* key, uint32_t length, uint32_t init) {
  uint32_t h = 2166136261u ^ init;
  for (uint32_t i = 0; i < length; ++i) h = (h ^ static_cast<const uint8_t*>(key)[i]) * 16777619u;
  return h;
}
uint32_t Other(const void* key, uint32_t length, uint32_t init) {
  return Fnv(key, length, init) ^ 0x5555;
}
// Every key in one bucket pair: the overflow chain's worst case.
uint32_t Constant(const void*, uint32_t, uint32_t) { return 0x12340007; }

TEST(FunctionsTest, RegistrationRefusesBadNamesAndConflicts) {
  EXPECT_EQ(RegisterFunction("crc32c", Fnv).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterFunction("", Fnv).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterFunction(std::string(32, 'f'), Fnv).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterFunction("null", nullptr).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(RegisterFunction("fnv", Fnv).ok());
  EXPECT_TRUE(RegisterFunction("fnv", Fnv).ok());  // the same again is fine
  absl::Status conflict = RegisterFunction("fnv", Other);
  EXPECT_EQ(conflict.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(conflict.message()), HasSubstr("fnv"));
}

// --- The calls ---------------------------------------------------------------------

TEST_F(TableTest, AddLookupDeleteKeepPositionsAndData) {
  Table t = Make(P(1000));
  std::map<int32_t, uint64_t> seen;
  for (uint64_t i = 0; i < 500; ++i) {
    const Key16 k = KeyOf(i);
    const int32_t pos = t.Add(&k, i * 3);
    ASSERT_GE(pos, 0);
    ASSERT_LT(pos, 1000);
    EXPECT_TRUE(seen.emplace(pos, i).second) << "position " << pos << " given twice";
  }
  EXPECT_EQ(t.Count(), 500u);
  for (auto [pos, i] : seen) {
    const Key16 k = KeyOf(i);
    uint64_t data = 0;
    EXPECT_EQ(t.Lookup(&k), pos);
    EXPECT_EQ(t.LookupData(&k, &data), pos);
    EXPECT_EQ(data, i * 3);
    EXPECT_EQ(t.LookupWithHash(&k, t.Hash(&k)), pos);
    EXPECT_EQ(t.LookupWithHashData(&k, t.Hash(&k), &data), pos);
    EXPECT_EQ(std::memcmp(t.GetKeyWithPosition(pos), &k, 16), 0);
  }
  // Adding a present key replaces its data and keeps its position.
  const Key16 k7 = KeyOf(7);
  const int32_t p7 = t.Lookup(&k7);
  EXPECT_EQ(t.Add(&k7, 99), p7);
  uint64_t data = 0;
  EXPECT_EQ(t.LookupData(&k7, &data), p7);
  EXPECT_EQ(data, 99u);
  EXPECT_EQ(t.Count(), 500u);
  // Delete returns the position; the key is gone, the others stay.
  EXPECT_EQ(t.Delete(&k7), p7);
  EXPECT_EQ(t.Lookup(&k7), kNotFound);
  EXPECT_EQ(t.Delete(&k7), kNotFound);
  EXPECT_EQ(t.GetKeyWithPosition(p7), nullptr);
  EXPECT_EQ(t.Count(), 499u);
  const Key16 k8 = KeyOf(8);
  const int32_t p8 = t.Lookup(&k8);
  ASSERT_GE(p8, 0);
  EXPECT_EQ(t.DeleteWithHash(&k8, t.Hash(&k8)), p8);
  EXPECT_EQ(t.Lookup(&k8), kNotFound);
  const Key16 absent = KeyOf(100000);
  EXPECT_EQ(t.Lookup(&absent), kNotFound);
  EXPECT_EQ(t.GetKeyWithPosition(-1), nullptr);
  EXPECT_EQ(t.GetKeyWithPosition(1000), nullptr);
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

TEST_F(TableTest, DeleteWithHashRemovesTheKey) {
  Table t = Make(P(64));
  const Key16 k = KeyOf(1);
  const int32_t pos = t.AddWithHash(&k, t.Hash(&k), 5);
  ASSERT_GE(pos, 0);
  EXPECT_EQ(t.DeleteWithHash(&k, t.Hash(&k)), pos);
  EXPECT_EQ(t.LookupWithHash(&k, t.Hash(&k)), kNotFound);
  EXPECT_EQ(t.Count(), 0u);
}

TEST_F(TableTest, AFreedPositionIsReusedAndResetEmptiesTheTable) {
  Table t = Make(P(8));
  std::set<int32_t> positions;
  for (uint64_t i = 0; i < 8; ++i) {
    const Key16 k = KeyOf(i);
    positions.insert(t.Add(&k));
  }
  EXPECT_EQ(positions, (std::set<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  const Key16 extra = KeyOf(8);
  EXPECT_EQ(t.Add(&extra), kNoSpace);  // every position taken
  const Key16 k3 = KeyOf(3);
  const int32_t p3 = t.Delete(&k3);
  EXPECT_EQ(t.Add(&extra), p3);
  t.Reset();
  EXPECT_EQ(t.Count(), 0u);
  for (uint64_t i = 0; i < 9; ++i) {
    const Key16 k = KeyOf(i);
    EXPECT_EQ(t.Lookup(&k), kNotFound);
  }
  EXPECT_GE(t.Add(&k3), 0);
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

TEST_F(TableTest, NoFreeOnDeleteKeepsThePositionUntilFreed) {
  Table t = Make(P(4, 16, kNoFreeOnDelete | kLockFreeReaders));
  for (uint64_t i = 0; i < 4; ++i) {
    const Key16 k = KeyOf(i);
    ASSERT_GE(t.Add(&k), 0);
  }
  const Key16 k0 = KeyOf(0);
  const int32_t p0 = t.Lookup(&k0);
  EXPECT_EQ(t.FreeKeyWithPosition(p0), kInvalid);  // still present
  EXPECT_EQ(t.Delete(&k0), p0);
  const Key16 k9 = KeyOf(9);
  EXPECT_EQ(t.Add(&k9), kNoSpace);  // the deleted position is not reused yet
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
  EXPECT_EQ(t.FreeKeyWithPosition(p0), 0);
  EXPECT_EQ(t.FreeKeyWithPosition(p0), kInvalid);  // twice
  EXPECT_EQ(t.FreeKeyWithPosition(-1), kInvalid);
  EXPECT_EQ(t.FreeKeyWithPosition(4), kInvalid);
  EXPECT_EQ(t.Add(&k9), p0);
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

TEST_F(TableTest, IterateVisitsEveryKeyOnceInPositionOrder) {
  Table t = Make(P(300));
  std::set<Key16> added;
  for (uint64_t i = 0; i < 200; ++i) {
    const Key16 k = KeyOf(i);
    ASSERT_GE(t.Add(&k, i), 0);
    added.insert(k);
  }
  for (uint64_t i = 0; i < 200; i += 3) {
    const Key16 k = KeyOf(i);
    ASSERT_GE(t.Delete(&k), 0);
    added.erase(k);
  }
  std::set<Key16> seen;
  uint32_t next = 0;
  int32_t last = -1;
  const void* key;
  uint64_t data;
  for (int32_t pos; (pos = t.Iterate(&key, &data, &next)) != kNotFound;) {
    EXPECT_GT(pos, last);
    last = pos;
    Key16 k;
    std::memcpy(&k, key, sizeof(k));
    EXPECT_TRUE(seen.insert(k).second);
    EXPECT_EQ(t.Lookup(&k), pos);
    uint64_t want;
    t.LookupData(&k, &want);
    EXPECT_EQ(data, want);
  }
  EXPECT_EQ(seen, added);
  EXPECT_EQ(t.Iterate(&key, &data, &next), kNotFound);
}

TEST_F(TableTest, BulkLookupsGiveTheHitMaskPositionsAndData) {
  Table t = Make(P(1024));
  std::vector<Key16> keys(kMaxBulk);
  std::vector<const void*> ptrs(kMaxBulk);
  std::vector<uint32_t> hashes(kMaxBulk);
  uint64_t want_mask = 0;
  for (unsigned i = 0; i < kMaxBulk; ++i) {
    keys[i] = KeyOf(i);
    ptrs[i] = &keys[i];
    hashes[i] = t.Hash(&keys[i]);
    if (i % 3 != 0) {
      ASSERT_GE(t.Add(&keys[i], 1000 + i), 0);
      want_mask |= uint64_t{1} << i;
    }
  }
  for (unsigned n : {1u, 4u, 8u, 32u, 63u, 64u}) {
    const uint64_t mask = n == 64 ? want_mask : want_mask & ((uint64_t{1} << n) - 1);
    std::vector<int32_t> pos(n), pos_h(n);
    std::vector<uint64_t> data(n, 7), data_h(n, 7);
    EXPECT_EQ(t.LookupBulk(ptrs.data(), n, pos.data()), mask) << n;
    EXPECT_EQ(t.LookupBulkWithHash(ptrs.data(), hashes.data(), n, pos_h.data()), mask) << n;
    EXPECT_EQ(t.LookupBulkData(ptrs.data(), n, data.data()), mask) << n;
    EXPECT_EQ(t.LookupBulkWithHashData(ptrs.data(), hashes.data(), n, data_h.data()), mask) << n;
    for (unsigned i = 0; i < n; ++i) {
      EXPECT_EQ(pos[i], t.Lookup(&keys[i])) << i;
      EXPECT_EQ(pos_h[i], pos[i]) << i;
      if (mask >> i & 1) {
        EXPECT_EQ(data[i], 1000 + i);
        EXPECT_EQ(data_h[i], 1000 + i);
      } else {
        EXPECT_EQ(data[i], 7u);  // untouched on a miss
      }
    }
  }
  std::vector<const void*> many(kMaxBulk + 1, &keys[1]);
  std::vector<int32_t> pos(kMaxBulk + 1, 0);
  EXPECT_EQ(t.LookupBulk(many.data(), kMaxBulk + 1, pos.data()), 0u);
  EXPECT_TRUE(std::all_of(pos.begin(), pos.end(), [](int32_t p) { return p == kInvalid; }));
}

TEST_F(TableTest, KeysOfUnusualLengthsWork) {
  for (uint32_t length : {1u, 3u, 4u, 8u, 12u, 13u, 16u, 32u, 40u, 48u, 64u, 100u, 1024u}) {
    Table t = Make(P(64, length, 0, "jhash"));
    std::vector<std::vector<uint8_t>> keys;
    for (int i = 0; i < 40; ++i) {
      std::vector<uint8_t> k(length);
      for (uint32_t b = 0; b < length; ++b) k[b] = static_cast<uint8_t>(i * 7 + b * (i + 1));
      if (length == 1) k[0] = static_cast<uint8_t>(i);
      keys.push_back(k);
      ASSERT_GE(t.Add(k.data(), i), 0) << length;
    }
    for (int i = 0; i < 40; ++i) {
      uint64_t d = 0;
      ASSERT_GE(t.LookupData(keys[i].data(), &d), 0) << length << " " << i;
      EXPECT_EQ(d, static_cast<uint64_t>(i));
    }
    std::vector<uint8_t> other(length, 0xee);
    EXPECT_EQ(t.Lookup(other.data()), kNotFound);
    EXPECT_TRUE(t.Verify().ok()) << length << ": " << t.Verify();
  }
}

// Keys as small objects of their own (the compiler sees their size at each call: the
// inline lookup must not read past them, nor warn that it might).
TEST_F(TableTest, KeysThatAreSmallObjectsWork) {
  Table t4 = Make(P(64, 4));
  for (uint32_t k = 0; k < 40; ++k) ASSERT_GE(t4.Add(&k, k), 0);
  for (uint32_t k = 0; k < 40; ++k) {
    uint64_t d = 0;
    ASSERT_GE(t4.LookupData(&k, &d), 0);
    EXPECT_EQ(d, k);
  }
  const uint32_t absent = 99;
  EXPECT_EQ(t4.Lookup(&absent), kNotFound);
  const void* one = &absent;
  int32_t pos;
  EXPECT_EQ(t4.LookupBulk(&one, 1, &pos), 0u);
}

TEST_F(TableTest, HighLoadDisplacesKeysAndFindsEveryOne) {
  constexpr uint32_t kEntries = 1 << 16;
  Table t = Make(P(kEntries));
  std::vector<Key16> added;
  std::mt19937_64 rng(1);
  for (;;) {
    const Key16 k{rng(), rng()};
    if (t.Add(&k) < 0) break;
    added.push_back(k);
  }
  // The documented floor: random keys fill at least 90 % of entries before the cuckoo
  // search gives up.
  EXPECT_GE(added.size(), kEntries * 9 / 10);
  EXPECT_EQ(t.Count(), added.size());
  for (const Key16& k : added) ASSERT_GE(t.Lookup(&k), 0);
  ASSERT_TRUE(t.Verify().ok()) << t.Verify();
  // Delete half, add new ones: still consistent.
  for (size_t i = 0; i < added.size(); i += 2) ASSERT_GE(t.Delete(&added[i]), 0);
  for (int i = 0; i < 1000; ++i) {
    const Key16 k{rng(), rng()};
    ASSERT_GE(t.Add(&k), 0);
  }
  for (size_t i = 1; i < added.size(); i += 2) ASSERT_GE(t.Lookup(&added[i]), 0);
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

TEST_F(TableTest, OverflowBucketsTakeEveryEntryEvenWhenAllKeysCollide) {
  ASSERT_TRUE(RegisterFunction("constant", Constant).ok());
  constexpr uint32_t kEntries = 200;
  Table t = Make(P(kEntries, 16, kExtendableBuckets, "constant"));
  for (uint64_t i = 0; i < kEntries; ++i) {
    const Key16 k = KeyOf(i);
    ASSERT_GE(t.Add(&k, i), 0) << i;
  }
  const Key16 extra = KeyOf(kEntries);
  EXPECT_EQ(t.Add(&extra), kNoSpace);
  ASSERT_TRUE(t.Verify().ok()) << t.Verify();
  // Deleting from the middle of the chain compacts it; every other key stays.
  std::mt19937_64 rng(2);
  std::vector<uint64_t> order(kEntries);
  for (uint64_t i = 0; i < kEntries; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t j = 0; j < kEntries / 2; ++j) {
    const Key16 k = KeyOf(order[j]);
    ASSERT_GE(t.Delete(&k), 0);
  }
  ASSERT_TRUE(t.Verify().ok()) << t.Verify();
  for (size_t j = 0; j < kEntries; ++j) {
    const Key16 k = KeyOf(order[j]);
    uint64_t d = 0;
    if (j < kEntries / 2) {
      EXPECT_EQ(t.Lookup(&k), kNotFound);
    } else {
      ASSERT_GE(t.LookupData(&k, &d), 0);
      EXPECT_EQ(d, order[j]);
    }
  }
  // Churn: delete and add again many times; the overflow buckets never run out.
  for (int round = 0; round < 20; ++round) {
    for (size_t j = 0; j < kEntries; ++j) {
      const Key16 k = KeyOf(order[j]);
      if ((j + round) % 2 == 0) {
        t.Delete(&k);
      } else {
        ASSERT_GE(t.Add(&k, order[j]), 0) << round << " " << j;
      }
    }
    ASSERT_TRUE(t.Verify().ok()) << t.Verify();
  }
  for (uint64_t i = 0; i < kEntries; ++i) {
    const Key16 k = KeyOf(i);
    ASSERT_GE(t.Add(&k, i), 0) << i;
  }
  EXPECT_EQ(t.Count(), kEntries);
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

TEST_F(TableTest, WithoutOverflowBucketsCollidingKeysRunOutOfRoom) {
  ASSERT_TRUE(RegisterFunction("constant", Constant).ok());
  Table t = Make(P(200, 16, 0, "constant"));
  int added = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    const Key16 k = KeyOf(i);
    if (t.Add(&k) >= 0) ++added;
  }
  EXPECT_EQ(added, 16);  // one bucket pair
  EXPECT_EQ(t.Count(), 16u);
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

// --- Other handles -------------------------------------------------------------------

TEST_F(TableTest, AttachSharesTheTableAndChecksTheFunction) {
  ASSERT_TRUE(RegisterFunction("fnv", Fnv).ok());
  Table t = Make(P(100, 16, 0, "fnv"));
  const Key16 k = KeyOf(1);
  const int32_t pos = t.Add(&k, 11);
  absl::StatusOr<Table> other = Attach(t.layout());
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->Lookup(&k), pos);
  EXPECT_EQ(other->name(), "t");
  EXPECT_EQ(other->function(), "fnv");
  EXPECT_EQ(other->entries(), 100u);
  EXPECT_EQ(other->key_length(), 16u);
  EXPECT_GT(other->memory_size(), 100u * 32);

  // A process whose "fnv" computes differently is refused, naming both values.
  auto* layout = t.layout();
  const uint32_t saved = layout->probe_values[0];
  layout->probe_values[0] ^= 1;
  absl::StatusOr<Table> refused = Attach(layout);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("\"fnv\""));
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrFormat("%08x", saved ^ 1)));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(absl::StrFormat("%08x", saved)));
  layout->probe_values[0] = saved;

  // Without the function: the *WithHash calls only.
  absl::StatusOr<Table> hashes_only = AttachHashesOnly(layout);
  ASSERT_TRUE(hashes_only.ok());
  EXPECT_FALSE(hashes_only->CanHash());
  EXPECT_EQ(hashes_only->Lookup(&k), kInvalid);
  EXPECT_EQ(hashes_only->Add(&k), kInvalid);
  EXPECT_EQ(hashes_only->Delete(&k), kInvalid);
  EXPECT_EQ(hashes_only->LookupWithHash(&k, Fnv(&k, 16, 0)), pos);
  const Key16 k2 = KeyOf(2);
  const int32_t p2 = hashes_only->AddWithHash(&k2, Fnv(&k2, 16, 0));
  EXPECT_EQ(t.Lookup(&k2), p2);
  const void* one = &k;
  int32_t bulk_pos = 0;
  EXPECT_EQ(hashes_only->LookupBulk(&one, 1, &bulk_pos), 0u);
  EXPECT_EQ(bulk_pos, kInvalid);
}

TEST_F(TableTest, ADamagedHeaderIsRefused) {
  Table t = Make(P(100));
  auto* layout = t.layout();
  layout->entries = 7;
  EXPECT_THAT(std::string(Attach(layout).status().message()), HasSubstr("damaged"));
  layout->entries = 100;
  layout->layout_version = 99;
  absl::Status s = Attach(layout).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("layout version 99"));
  layout->layout_version = hash_internal::kLayoutVersion;
  layout->magic = 0;
  EXPECT_THAT(std::string(Attach(layout).status().message()), HasSubstr("no hash table"));
  layout->magic = hash_internal::kHashMagic;
  EXPECT_TRUE(Attach(layout).ok());
}

// --- Verify and repair ---------------------------------------------------------------

// The bucket slot holding `position`.
std::pair<hash_internal::Bucket*, int> SlotOf(Table t, int32_t position) {
  auto* layout = t.layout();
  hash_internal::Bucket* b = hash_internal::Buckets(*layout);
  for (uint32_t i = 0; i < layout->num_buckets + layout->ext_buckets; ++i) {
    for (int s = 0; s < hash_internal::kBucketEntries; ++s) {
      if (b[i].slots[s].load() == static_cast<uint32_t>(position) + 1) return {&b[i], s};
    }
  }
  return {nullptr, -1};
}

TEST_F(TableTest, VerifyNamesTheDamage) {
  Table t = Make(P(256));
  for (int i = 0; i < 100; ++i) {
    const Key16 k = KeyOf(i);
    ASSERT_GE(t.Add(&k, i), 0);
  }
  ASSERT_TRUE(t.Verify().ok()) << t.Verify();
  auto* layout = t.layout();
  layout->count.fetch_add(1);
  absl::Status s = t.Verify();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("count is 101, the buckets hold 100"));
  layout->count.fetch_sub(1);

  layout->free_top.fetch_sub(1);  // a position lost from the free stack
  EXPECT_THAT(std::string(t.Verify().message()), HasSubstr("not on the free stack"));
  layout->free_top.fetch_add(1);

  const Key16 k5 = KeyOf(5);
  auto [bucket, slot] = SlotOf(t, t.Lookup(&k5));
  ASSERT_NE(bucket, nullptr);
  const uint64_t tags = bucket->tags[slot / 4].load();
  bucket->tags[slot / 4].store(tags ^ (uint64_t{1} << (16 * (slot % 4))));
  EXPECT_THAT(std::string(t.Verify().message()), HasSubstr("tag"));
  bucket->tags[slot / 4].store(tags);
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

// Leaves the table as a writer killed mid-write does: a kMultiWriter table's lock taken
// by a thread that exits holding it (the next locker recovers it as from a killed
// process), another table's `writing` flag set.
void DieMidWrite(Table t) {
  if (t.flags() & kMultiWriter) {
    std::thread([&] { pthread_mutex_lock(&t.layout()->lock); }).join();
  } else {
    t.layout()->writing.store(1);
  }
}

class RepairTest : public TableTest, public ::testing::WithParamInterface<uint32_t> {};
INSTANTIATE_TEST_SUITE_P(Writers, RepairTest, ::testing::Values(0u, kMultiWriter),
                         [](const auto& info) {
                           return std::string(info.param ? "MultiWriter" : "SingleWriter");
                         });

TEST_P(RepairTest, ADeadWritersHalfDoneWorkIsRepaired) {
  Table t = Make(P(256, 16, kExtendableBuckets | GetParam()));
  for (int i = 0; i < 100; ++i) {
    const Key16 k = KeyOf(i);
    ASSERT_GE(t.Add(&k, i), 0);
  }
  auto* layout = t.layout();
  // As a move cut short: key 5 published in its other bucket too, tag included.
  const Key16 k5 = KeyOf(5);
  const int32_t p5 = t.Lookup(&k5);
  auto [bucket, slot] = SlotOf(t, p5);
  const uint32_t hash = t.Hash(&k5);
  const uint32_t here = static_cast<uint32_t>(bucket - hash_internal::Buckets(*layout));
  const uint32_t other = hash_internal::Alternative(*layout, here, hash_internal::TagOf(hash));
  hash_internal::Bucket& ob = hash_internal::Buckets(*layout)[other];
  int empty = 0;
  while (ob.slots[empty].load() != 0) ++empty;
  ob.slots[empty].store(p5 + 1);
  // As an add cut short after taking a position: off the stack, reserved.
  const uint32_t top = layout->free_top.load();
  const uint32_t taken = hash_internal::FreeStack(*layout)[top - 1];
  layout->free_top.store(top - 1);
  hash_internal::SetState(*layout, taken, hash_internal::State::kReserved);
  // As a delete cut short after clearing the slot: key 9 gone from its bucket, live.
  const Key16 k9 = KeyOf(9);
  auto [b9, s9] = SlotOf(t, t.Lookup(&k9));
  b9->slots[s9].store(0);
  layout->count.fetch_add(3);  // and a count gone wrong
  EXPECT_FALSE(t.Verify().ok());

  DieMidWrite(t);
  ASSERT_TRUE(t.Verify().ok()) << t.Verify();
  EXPECT_EQ(layout->repairs.load(), 1u);
  EXPECT_EQ(t.Count(), 99u);
  for (int i = 0; i < 100; ++i) {
    const Key16 k = KeyOf(i);
    uint64_t d = 0;
    if (i == 9) {
      EXPECT_EQ(t.Lookup(&k), kNotFound);
    } else {
      ASSERT_GE(t.LookupData(&k, &d), 0) << i;
      EXPECT_EQ(d, static_cast<uint64_t>(i));
    }
  }
  // Every position comes back: 157 free ones can be added.
  for (int i = 100; i < 257; ++i) {
    const Key16 k = KeyOf(i);
    ASSERT_GE(t.Add(&k), 0) << i;
  }
  EXPECT_EQ(t.Count(), 256u);
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

TEST_P(RepairTest, ARepairKeepsDeletedPositionsForNoFreeOnDelete) {
  Table t = Make(P(64, 16, kNoFreeOnDelete | GetParam()));
  for (int i = 0; i < 10; ++i) {
    const Key16 k = KeyOf(i);
    ASSERT_GE(t.Add(&k), 0);
  }
  const Key16 k3 = KeyOf(3);
  const int32_t p3 = t.Delete(&k3);
  // A delete cut short: key 4's slot cleared, its state still live.
  const Key16 k4 = KeyOf(4);
  const int32_t p4 = t.Lookup(&k4);
  auto [b, s] = SlotOf(t, p4);
  b->slots[s].store(0);
  t.layout()->count.fetch_sub(1);
  DieMidWrite(t);
  ASSERT_TRUE(t.Verify().ok()) << t.Verify();
  // Both stay reserved for their readers until freed.
  EXPECT_EQ(t.FreeKeyWithPosition(p3), 0);
  EXPECT_EQ(t.FreeKeyWithPosition(p4), 0);
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

// --- Concurrency ---------------------------------------------------------------------

// Readers look up a stable set of keys while two writers add and delete others in a
// table run near full, so keys are displaced all the time: no stable key is ever
// missed or read with other data.
TEST_F(TableTest, LockFreeReadersNeverMissAKeyWhileWritersDisplaceKeys) {
  constexpr uint32_t kEntries = 4096;
  constexpr int kStable = 2048;
  Table t = Make(P(kEntries, 16, kLockFreeReaders | kNoFreeOnDelete | kMultiWriter));
  for (int i = 0; i < kStable; ++i) {
    const Key16 k = KeyOf(i);
    ASSERT_GE(t.Add(&k, i), 0);
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> misses{0}, wrong{0}, lookups{0};
  // Each reader's count of passes through a quiescent point (between lookups). A writer
  // frees a deleted key's position only once both readers have passed one since the
  // delete, as kNoFreeOnDelete requires: a reader may still be comparing that key.
  std::atomic<uint64_t> quiescent[2] = {0, 0};
  auto writer = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<Key16> mine;
    struct Deleted {
      int32_t position;
      uint64_t passes[2];
    };
    std::deque<Deleted> deleted;
    auto free_quiesced = [&] {
      // Acquire: pairs with the readers' release, so their reads of the key happen
      // before the free and the position's reuse.
      while (!deleted.empty() &&
             quiescent[0].load(std::memory_order_acquire) > deleted.front().passes[0] &&
             quiescent[1].load(std::memory_order_acquire) > deleted.front().passes[1]) {
        EXPECT_EQ(t.FreeKeyWithPosition(deleted.front().position), 0);
        deleted.pop_front();
      }
    };
    while (!stop.load(std::memory_order_relaxed)) {
      if (deleted.size() >= 128) {  // the readers are slow (TSan): let them pass
        std::this_thread::yield();
        free_quiesced();
        continue;
      }
      if (mine.size() < 800 && rng() % 2 == 0) {
        const Key16 k{rng() | 1, rng()};
        if (t.Add(&k) >= 0) mine.push_back(k);
      } else if (!mine.empty()) {
        const size_t j = rng() % mine.size();
        const int32_t pos = t.Delete(&mine[j]);
        EXPECT_GE(pos, 0);
        deleted.push_back({pos,
                           {quiescent[0].load(std::memory_order_acquire),
                            quiescent[1].load(std::memory_order_acquire)}});
        free_quiesced();
        mine[j] = mine.back();
        mine.pop_back();
      }
    }
  };
  auto reader = [&](int id) {
    std::mt19937 rng(id);
    std::vector<const void*> ptrs(32);
    std::vector<Key16> keys(32);
    std::vector<uint64_t> data(32);
    while (!stop.load(std::memory_order_relaxed)) {
      for (int j = 0; j < 32; ++j) {
        const int i = static_cast<int>(rng() % kStable);
        keys[j] = KeyOf(i);
        ptrs[j] = &keys[j];
        uint64_t d = ~0ull;
        if (t.LookupData(&keys[j], &d) < 0) {
          misses.fetch_add(1);
        } else if (d != static_cast<uint64_t>(i)) {
          wrong.fetch_add(1);
        }
      }
      const uint64_t hits = t.LookupBulkData(ptrs.data(), 32, data.data());
      if (hits != 0xffffffffull) misses.fetch_add(32 - __builtin_popcountll(hits));
      lookups.fetch_add(64, std::memory_order_relaxed);
      // Release: see free_quiesced.
      quiescent[id - 3].fetch_add(1, std::memory_order_release);
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(writer, 1);
  threads.emplace_back(writer, 2);
  threads.emplace_back(reader, 3);
  threads.emplace_back(reader, 4);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(misses.load(), 0u);
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(lookups.load(), 10000u);
  EXPECT_GT(t.layout()->change_count.load(), 100u) << "the writers displaced few keys";
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

TEST_F(TableTest, WritersInSeveralThreadsLoseNothing) {
  constexpr uint32_t kEntries = 1 << 14;
  Table t = Make(P(kEntries, 8, kMultiWriter));
  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 3000;
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      for (uint64_t i = 0; i < kPerThread; ++i) {
        const uint64_t key = th * 1000000 + i;
        EXPECT_GE(t.Add(&key, key), 0);
        if (i % 3 == 0) {
          EXPECT_GE(t.Delete(&key), 0);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(t.Count(), kThreads * (kPerThread - kPerThread / 3));
  for (int th = 0; th < kThreads; ++th) {
    for (uint64_t i = 0; i < kPerThread; ++i) {
      const uint64_t key = th * 1000000 + i;
      uint64_t d = 0;
      EXPECT_EQ(t.LookupData(&key, &d) >= 0, i % 3 != 0) << key;
      if (i % 3 != 0) {
        EXPECT_EQ(d, key);
      }
    }
  }
  EXPECT_TRUE(t.Verify().ok()) << t.Verify();
}

}  // namespace
}  // namespace keel::hash
