// A process for the hash tests: joins a group (EAL + memory + hash), prints READY, then
// runs commands read from stdin, one per line, printing one result line each (errors:
// "ERROR <status>"). Built twice: hash_helper, and hash_other_helper
// (KEEL_HASH_OTHER_HELPER), a binary with other hash functions (see Functions()).
//
//   create NAME ENTRIES KEYLEN FUNCTION FLAGS [INIT]   CREATED NAME
//   lookup NAME               FOUND NAME addr=A function=F entries=E key_length=K
//                             flags=0xF init=I count=C memory=M can_hash=1
//   lookup-hashes-only NAME   the same by hash::LookupHashesOnly (can_hash=0)
//   free NAME                 FREED NAME
//   add NAME KEY [DATA]       ADDED pos=P | ADD-FAILED code=C
//   add-with-hash NAME KEY HASH [DATA]
//   get NAME KEY              AT pos=P data=D | MISSING code=C
//   get-with-hash NAME KEY HASH
//   del NAME KEY              DELETED pos=P | DELETE-FAILED code=C
//   del-with-hash NAME KEY HASH
//   free-pos NAME POS         FREED-POS P | FREE-POS-FAILED code=C
//   key NAME POS              KEY pos=P key=0xHEX | NO-KEY pos=P (GetKeyWithPosition)
//   hash NAME KEY             HASH h=xxxxxxxx (the table's function, in this process)
//   fn FUNCTION HEXKEY INIT   FN h=xxxxxxxx (this binary's registered FUNCTION)
//   add-range NAME FIRST COUNT [trace]
//                             ADDED-RANGE n=N failed=F first_failure=SEED:CODE|none
//                             (trace: "ADDING SEED" before each add)
//   del-range NAME FIRST COUNT
//                             DELETED-RANGE n=N missing=M (positions freed on
//                             kNoFreeOnDelete tables)
//   check-range NAME FIRST COUNT
//                             RANGE present=P missing=M wrong=W first_missing=SEED|none
//                             first_wrong=SEED|none
//   iterate NAME              ITERATED n=N wrong=W (Iterate: keys, data, positions)
//   verify NAME               VERIFY OK | VERIFY <status>
//   count NAME                COUNT n=N
//   kill-at POINT [NTH]       ARMED POINT: the NTH (1) hit of kill point POINT SIGKILLs
//                             this process (NO-KILL-POINTS with NDEBUG)
//   killpoints                KILLPOINTS on | off (compiled in: debug builds)
//   churn NAME SEED OPS FIRST COUNT
//                             CHURNING present=P, then CHURNED ops=N adds=A deletes=D
//                             present=P errors=E first_error=... after OPS operations
//                             (0: until SIGUSR1)
//   read NAME FIRST COUNT SECONDS [THREADS]
//                             READING, then READ lookups=L misses=M wrong=W first=...
//                             after SECONDS or at SIGUSR1, whichever comes first
//   quit
//
// Functions registered (both binaries alike unless said): fnv1a (FNV-1a, 32 bits, the
// seed xored into the offset basis), constant (every key hashes to the seed: one bucket
// pair, then its overflow chain), xorshift (hash_helper only), mixed (another function
// in each binary).
//
// KEY: a decimal seed (the derived key DerivedKey(SEED), with data Data(SEED) unless
// DATA is given), or 0x followed by exactly 2 * KEYLEN hex digits (data DATA or 0).
// HASH: 8 hex digits. FLAGS: "none" or a '+'-joined list of mw (kMultiWriter), lf
// (kLockFreeReaders), ext (kExtendableBuckets), nofree (kNoFreeOnDelete).
//
// churn adds and deletes random keys (SEED) of seeds FIRST .. FIRST+COUNT-1, which no
// other process writes: it learns which are present first (a writer before it may have
// died), then checks that each delete returns the position its add returned, that an
// added key is found with its data, and, on kNoFreeOnDelete tables, frees each deleted
// position with FreeKeyWithPosition. read looks up seeds FIRST .. FIRST+COUNT-1, which
// must stay present, for SECONDS (single and bulk lookups in turn, on THREADS threads):
// a miss, wrong data or a position that changed is counted.
//
//   hash_helper [EAL options] --
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/kill_point.h"
#include "eal/eal.h"
#include "hash/hash.h"
#include "tests/helper_loop.h"

namespace {

namespace hash = keel::hash;

std::string Err(const absl::Status& s) { return "ERROR " + s.ToString(); }

// --- Hash functions ------------------------------------------------------------------

// FNV-1a, 32 bits, over the key's bytes; the seed is xored into the offset basis.
uint32_t Fnv1a(const void* key, uint32_t length, uint32_t init) {
  const auto* p = static_cast<const uint8_t*>(key);
  uint32_t h = 2166136261u ^ init;
  for (uint32_t i = 0; i < length; ++i) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

#ifndef KEEL_HASH_OTHER_HELPER
// A xorshift step per byte (another function than FNV-1a); hash_helper only.
uint32_t Xorshift(const void* key, uint32_t length, uint32_t init) {
  const auto* p = static_cast<const uint8_t*>(key);
  uint32_t h = 0x9e3779b9u ^ init ^ length;
  for (uint32_t i = 0; i < length; ++i) {
    h ^= p[i];
    h ^= h << 13;
    h ^= h >> 17;
    h ^= h << 5;
  }
  return h;
}
#endif

// Every key hashes alike: a table's keys all share one bucket pair, then that bucket's
// overflow chain (kExtendableBuckets).
uint32_t Constant(const void*, uint32_t, uint32_t init) { return init; }

// "mixed" is another function in each binary.
#ifdef KEEL_HASH_OTHER_HELPER
uint32_t Mixed(const void* key, uint32_t length, uint32_t init) {
  return Fnv1a(key, length, init) ^ 0xa5a5a5a5u;
}
#else
uint32_t Mixed(const void* key, uint32_t length, uint32_t init) {
  const uint32_t h = Fnv1a(key, length, init);
  return (h << 7 | h >> 25) + 1;
}
#endif

// What this binary registers: fnv1a, constant and mixed in both; xorshift only in
// hash_helper.
const std::map<std::string, hash::Function>& Functions() {
  static const auto* functions = new std::map<std::string, hash::Function>{
      {"fnv1a", Fnv1a},
      {"constant", Constant},
      {"mixed", Mixed},
#ifndef KEEL_HASH_OTHER_HELPER
      {"xorshift", Xorshift},
#endif
  };
  return *functions;
}

// --- Keys ----------------------------------------------------------------------------

uint32_t Mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// The key of seed `n`: its 8 bytes little-endian, then bytes of Mix (distinct seeds,
// distinct keys, for lengths of 8 and more).
std::string DerivedKey(uint64_t n, uint32_t length) {
  std::string key(length, '\0');
  for (uint32_t i = 0; i < length; ++i) {
    key[i] = static_cast<char>(i < 8 ? n >> (8 * i)
                                     : Mix(static_cast<uint32_t>(n) * 31 + i / 4) >> (8 * (i % 4)));
  }
  return key;
}

uint64_t Data(uint64_t n) { return (n * 0x9e3779b97f4a7c15ULL) ^ 0x5eed000000000000ULL; }

struct Key {
  std::string bytes;
  uint64_t data = 0;  // Data(seed), or 0 for a hex key
};

absl::StatusOr<Key> ParseKey(const std::string& text, uint32_t length) {
  absl::string_view hex = text;
  if (absl::ConsumePrefix(&hex, "0x")) {
    if (hex.size() != 2 * size_t{length} ||
        !std::all_of(hex.begin(), hex.end(), [](char c) { return absl::ascii_isxdigit(c); })) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", text, " is not ", length, " bytes of hex"));
    }
    return Key{absl::HexStringToBytes(hex), 0};
  }
  uint64_t seed;
  if (!absl::SimpleAtoi(text, &seed)) {
    return absl::InvalidArgumentError(absl::StrCat("key ", text, " is neither 0xHEX nor a seed"));
  }
  return Key{DerivedKey(seed, length), Data(seed)};
}

absl::StatusOr<uint32_t> ParseHash(const std::string& text) {
  uint32_t h;
  if (text.size() != 8 || !absl::SimpleHexAtoi(text, &h)) {
    return absl::InvalidArgumentError(absl::StrCat("hash ", text, " is not 8 hex digits"));
  }
  return h;
}

absl::StatusOr<uint32_t> ParseFlags(const std::string& text) {
  if (text == "none") return 0u;
  const std::map<std::string, uint32_t> names = {{"mw", hash::kMultiWriter},
                                                 {"lf", hash::kLockFreeReaders},
                                                 {"ext", hash::kExtendableBuckets},
                                                 {"nofree", hash::kNoFreeOnDelete}};
  uint32_t flags = 0;
  for (absl::string_view part : absl::StrSplit(text, '+')) {
    auto it = names.find(std::string(part));
    if (it == names.end()) return absl::InvalidArgumentError(absl::StrCat("flag ", part));
    flags |= it->second;
  }
  return flags;
}

// --- Tables --------------------------------------------------------------------------

// The handle this process last created or looked up under each name.
std::map<std::string, hash::Table>& Known() {
  static auto* known = new std::map<std::string, hash::Table>;
  return *known;
}

// The known handle, or one from hash::Lookup.
absl::StatusOr<hash::Table> Handle(const std::string& name) {
  auto it = Known().find(name);
  if (it != Known().end()) return it->second;
  absl::StatusOr<hash::Table> t = hash::Lookup(name);
  if (t.ok()) Known()[name] = *t;
  return t;
}

std::string Describe(const hash::Table& t) {
  return absl::StrFormat(
      "FOUND %s addr=%p function=%s entries=%u key_length=%u flags=0x%x init=%u count=%u "
      "memory=%u can_hash=%d",
      t.name(), static_cast<const void*>(t.layout()), t.function(), t.entries(), t.key_length(),
      t.flags(), t.init_value(), t.Count(), t.memory_size(), t.CanHash() ? 1 : 0);
}

std::string AddRange(const hash::Table& t, uint64_t first, uint64_t count, bool trace) {
  uint64_t failed = 0;
  std::string first_failure = "none";
  for (uint64_t n = first; n < first + count; ++n) {
    if (trace) std::printf("ADDING %llu\n", static_cast<unsigned long long>(n));
    const int32_t r = t.Add(DerivedKey(n, t.key_length()).data(), Data(n));
    if (r < 0 && failed++ == 0) first_failure = absl::StrCat(n, ":", r);
  }
  return absl::StrCat("ADDED-RANGE n=", count - failed, " failed=", failed,
                      " first_failure=", first_failure);
}

std::string DeleteRange(const hash::Table& t, uint64_t first, uint64_t count) {
  uint64_t deleted = 0;
  for (uint64_t n = first; n < first + count; ++n) {
    const int32_t r = t.Delete(DerivedKey(n, t.key_length()).data());
    if (r < 0) continue;
    ++deleted;
    if (t.flags() & hash::kNoFreeOnDelete) t.FreeKeyWithPosition(r);
  }
  return absl::StrCat("DELETED-RANGE n=", deleted, " missing=", count - deleted);
}

// Every seed looked up alone and in bulk: the two must agree, the data must be
// Data(seed), and the key at the position must be the key.
std::string CheckRange(const hash::Table& t, uint64_t first, uint64_t count) {
  uint64_t present = 0;
  uint64_t missing = 0;
  uint64_t wrong = 0;
  std::string first_missing = "none";
  std::string first_wrong = "none";
  const uint32_t length = t.key_length();
  for (uint64_t base = first; base < first + count; base += hash::kMaxBulk) {
    const unsigned n =
        static_cast<unsigned>(std::min<uint64_t>(hash::kMaxBulk, first + count - base));
    std::vector<std::string> keys;
    std::vector<const void*> pointers;
    for (unsigned i = 0; i < n; ++i) keys.push_back(DerivedKey(base + i, length));
    for (const std::string& k : keys) pointers.push_back(k.data());
    uint64_t bulk_data[hash::kMaxBulk];
    int32_t bulk_positions[hash::kMaxBulk];
    const uint64_t hits = t.LookupBulkData(pointers.data(), n, bulk_data);
    t.LookupBulk(pointers.data(), n, bulk_positions);
    for (unsigned i = 0; i < n; ++i) {
      const uint64_t seed = base + i;
      uint64_t data = 0;
      const int32_t pos = t.LookupData(keys[i].data(), &data);
      const bool hit = (hits >> i) & 1;
      if (pos < 0 && !hit && bulk_positions[i] < 0) {
        if (missing++ == 0) first_missing = absl::StrCat(seed);
        continue;
      }
      const void* at = pos >= 0 ? t.GetKeyWithPosition(pos) : nullptr;
      if (pos < 0 || !hit || bulk_positions[i] != pos || data != Data(seed) ||
          bulk_data[i] != data || at == nullptr || std::memcmp(at, keys[i].data(), length) != 0) {
        if (wrong++ == 0) {
          first_wrong = absl::StrFormat("%u(pos=%d,bulk=%d,hit=%d,data=%x)", seed, pos,
                                        bulk_positions[i], hit, data);
        }
        continue;
      }
      ++present;
    }
  }
  return absl::StrCat("RANGE present=", present, " missing=", missing, " wrong=", wrong,
                      " first_missing=", first_missing, " first_wrong=", first_wrong);
}

// Every key Iterate gives is found at its position with its data.
std::string IterateAll(const hash::Table& t) {
  uint64_t n = 0;
  uint64_t wrong = 0;
  uint32_t next = 0;
  const void* key;
  uint64_t data;
  for (int32_t pos; (pos = t.Iterate(&key, &data, &next)) >= 0;) {
    ++n;
    uint64_t found_data = 0;
    if (t.CanHash() && (t.LookupData(key, &found_data) != pos || found_data != data)) ++wrong;
    if (t.GetKeyWithPosition(pos) != key) ++wrong;
  }
  return absl::StrCat("ITERATED n=", n, " wrong=", wrong);
}

// Set by SIGUSR1: read and churn stop. Relaxed: a flag, with nothing to publish.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void Stop(int) { g_stop.store(true, std::memory_order_relaxed); }

std::string Churn(const hash::Table& t, uint64_t seed, uint64_t ops, uint64_t first,
                  uint64_t count) {
  if (count == 0) return "ERROR churn over no keys";
  const bool free_positions = (t.flags() & hash::kNoFreeOnDelete) != 0;
  std::vector<std::string> keys;
  for (uint64_t i = 0; i < count; ++i) keys.push_back(DerivedKey(first + i, t.key_length()));
  std::vector<int32_t> position(count, -1);
  uint64_t errors = 0;
  std::string first_error = "none";
  auto error = [&](uint64_t i, const std::string& what) {
    if (errors++ == 0) first_error = absl::StrCat(first + i, ":", what);
  };
  uint64_t present = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t data = 0;
    position[i] = t.LookupData(keys[i].data(), &data);
    if (position[i] < 0) continue;
    ++present;
    if (data != Data(first + i)) error(i, "data");
  }
  g_stop.store(false, std::memory_order_relaxed);
  std::printf("CHURNING present=%llu\n", static_cast<unsigned long long>(present));
  std::mt19937_64 random(seed);
  uint64_t adds = 0;
  uint64_t deletes = 0;
  uint64_t op = 0;
  for (; (ops == 0 || op < ops) && !g_stop.load(std::memory_order_relaxed); ++op) {
    const uint64_t i = random() % count;
    const void* key = keys[i].data();
    if (position[i] >= 0) {
      const int32_t r = t.Delete(key);
      if (r != position[i]) error(i, absl::StrCat("delete ", r, " for position ", position[i]));
      if (free_positions && r >= 0 && t.FreeKeyWithPosition(r) != 0) error(i, "free-pos");
      position[i] = -1;
      ++deletes;
      --present;
    } else {
      const int32_t r = t.Add(key, Data(first + i));
      if (r < 0) {
        error(i, absl::StrCat("add ", r));
        continue;
      }
      position[i] = r;
      ++adds;
      ++present;
      uint64_t data = 0;
      if (const int32_t found = t.LookupData(key, &data); found != r || data != Data(first + i)) {
        error(i, absl::StrCat("lookup ", found, " after add at ", r));
      }
    }
  }
  return absl::StrCat("CHURNED ops=", op, " adds=", adds, " deletes=", deletes,
                      " present=", present, " errors=", errors, " first_error=", first_error);
}

struct ReadResult {
  uint64_t lookups = 0;
  uint64_t misses = 0;
  uint64_t wrong = 0;
  std::string first = "none";
};

// One reader thread: rounds over every key, single lookups and bulk ones in turn; a
// key's position must not change (it stays present).
void ReadLoop(const hash::Table& t, uint64_t first, const std::vector<std::string>& keys,
              absl::Time deadline, ReadResult* out) {
  const size_t count = keys.size();
  std::vector<int32_t> position(count, -1);
  std::vector<const void*> pointers;
  for (const std::string& k : keys) pointers.push_back(k.data());
  auto check = [&](size_t i, int32_t pos, uint64_t data, bool hit) {
    ++out->lookups;
    if (!hit || pos < 0) {
      if (out->misses++ == 0 && out->wrong == 0) out->first = absl::StrCat("miss:", first + i);
      return;
    }
    if (position[i] < 0) position[i] = pos;
    if (data != Data(first + i) || pos != position[i]) {
      if (out->wrong++ == 0 && out->misses == 0) {
        out->first = absl::StrCat("wrong:", first + i, ":pos=", pos, ":was=", position[i]);
      }
    }
  };
  for (uint64_t round = 0; absl::Now() < deadline && !g_stop.load(std::memory_order_relaxed);
       ++round) {
    if (round % 2 == 0) {
      for (size_t i = 0; i < count; ++i) {
        uint64_t data = 0;
        const int32_t pos = t.LookupData(pointers[i], &data);
        check(i, pos, data, pos >= 0);
      }
      continue;
    }
    for (size_t base = 0; base < count; base += hash::kMaxBulk) {
      const unsigned n = static_cast<unsigned>(std::min<size_t>(hash::kMaxBulk, count - base));
      int32_t positions[hash::kMaxBulk];
      uint64_t data[hash::kMaxBulk];
      const uint64_t hits = t.LookupBulk(&pointers[base], n, positions);
      const uint64_t data_hits = t.LookupBulkData(&pointers[base], n, data);
      for (unsigned i = 0; i < n; ++i) {
        check(base + i, positions[i], data[i], ((hits & data_hits) >> i) & 1);
      }
    }
  }
}

std::string Read(const hash::Table& t, uint64_t first, uint64_t count, double seconds,
                 unsigned threads) {
  std::vector<std::string> keys;
  for (uint64_t i = 0; i < count; ++i) keys.push_back(DerivedKey(first + i, t.key_length()));
  g_stop.store(false, std::memory_order_relaxed);
  std::printf("READING\n");
  const absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  std::vector<ReadResult> results(std::max(1u, threads));
  std::vector<std::thread> workers;
  for (ReadResult& r : results) {
    workers.emplace_back([&, out = &r] { ReadLoop(t, first, keys, deadline, out); });
  }
  for (std::thread& w : workers) w.join();
  ReadResult total;
  for (const ReadResult& r : results) {
    total.lookups += r.lookups;
    total.misses += r.misses;
    total.wrong += r.wrong;
    if (total.first == "none") total.first = r.first;
  }
  return absl::StrCat("READ lookups=", total.lookups, " misses=", total.misses,
                      " wrong=", total.wrong, " first=", total.first);
}

std::string Hex(const void* bytes, uint32_t length) {
  return "0x" + absl::BytesToHexString(absl::string_view(static_cast<const char*>(bytes), length));
}

std::string Run(const std::vector<std::string>& cmd) {
  const std::string& op = cmd[0];
  auto arg = [&](size_t i) { return i < cmd.size() ? cmd[i] : std::string(); };
  auto num = [&](size_t i) {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(arg(i), &v)) v = 0;
    return v;
  };
  const std::string& name = arg(1);
  if (op == "kill-at") {  // arms a kill point (debug builds only)
#ifdef NDEBUG
    return "NO-KILL-POINTS";
#else
    keel::SetKillPointForTest(name, cmd.size() > 2 ? num(2) : 1);
    return "ARMED " + name;
#endif
  }
  if (op == "killpoints") {
#ifdef NDEBUG
    return "KILLPOINTS off";
#else
    return "KILLPOINTS on";
#endif
  }
  if (op == "fn") {
    auto it = Functions().find(name);
    if (it == Functions().end()) return "ERROR no function " + name + " in this binary";
    absl::StatusOr<Key> key = ParseKey(arg(2), static_cast<uint32_t>((arg(2).size() - 2) / 2));
    if (!key.ok()) return Err(key.status());
    const uint32_t h = it->second(key->bytes.data(), static_cast<uint32_t>(key->bytes.size()),
                                  static_cast<uint32_t>(num(3)));
    return absl::StrFormat("FN h=%08x", h);
  }
  if (op == "create") {
    absl::StatusOr<uint32_t> flags = ParseFlags(arg(5));
    if (!flags.ok()) return Err(flags.status());
    const std::string function = arg(4);
    hash::Params params{.name = name,
                        .entries = static_cast<uint32_t>(num(2)),
                        .key_length = static_cast<uint32_t>(num(3)),
                        .function = function,
                        .init_value = static_cast<uint32_t>(num(6)),
                        .flags = *flags};
    absl::StatusOr<hash::Table> t = hash::Create(params);
    if (!t.ok()) return Err(t.status());
    Known()[name] = *t;
    return "CREATED " + name;
  }
  if (op == "lookup" || op == "lookup-hashes-only") {
    Known().erase(name);
    absl::StatusOr<hash::Table> t =
        op == "lookup" ? hash::Lookup(name) : hash::LookupHashesOnly(name);
    if (!t.ok()) return Err(t.status());
    Known()[name] = *t;
    return Describe(*t);
  }
  absl::StatusOr<hash::Table> table = Handle(name);
  if (!table.ok()) return Err(table.status());
  const hash::Table& t = *table;
  if (op == "free") {
    Known().erase(name);
    absl::Status s = hash::Free(t);
    return s.ok() ? "FREED " + name : Err(s);
  }
  if (op == "verify") {
    absl::Status s = t.Verify();
    return s.ok() ? "VERIFY OK" : "VERIFY " + s.ToString();
  }
  if (op == "count") return absl::StrCat("COUNT n=", t.Count());
  if (op == "iterate") return IterateAll(t);
  if (op == "add-range") return AddRange(t, num(2), num(3), arg(4) == "trace");
  if (op == "del-range") return DeleteRange(t, num(2), num(3));
  if (op == "check-range") return CheckRange(t, num(2), num(3));
  if (op == "churn") return Churn(t, num(2), num(3), num(4), num(5));
  if (op == "read") {
    double seconds = 0;
    if (!absl::SimpleAtod(arg(4), &seconds)) return "ERROR seconds " + arg(4);
    return Read(t, num(2), num(3), seconds, static_cast<unsigned>(num(5)));
  }
  if (op == "free-pos") {
    const int32_t r = t.FreeKeyWithPosition(static_cast<int32_t>(num(2)));
    return r == 0 ? absl::StrCat("FREED-POS ", num(2)) : absl::StrCat("FREE-POS-FAILED code=", r);
  }
  if (op == "key") {
    const int32_t pos = static_cast<int32_t>(num(2));
    const void* key = t.GetKeyWithPosition(pos);
    if (key == nullptr) return absl::StrCat("NO-KEY pos=", pos);
    return absl::StrCat("KEY pos=", pos, " key=", Hex(key, t.key_length()));
  }
  absl::StatusOr<Key> key = ParseKey(arg(2), t.key_length());
  if (!key.ok()) return Err(key.status());
  const void* k = key->bytes.data();
  const bool with_hash = absl::EndsWith(op, "-with-hash");
  uint32_t h = 0;
  if (with_hash) {
    absl::StatusOr<uint32_t> parsed = ParseHash(arg(3));
    if (!parsed.ok()) return Err(parsed.status());
    h = *parsed;
  }
  // DATA follows KEY (and HASH).
  const size_t data_arg = with_hash ? 4 : 3;
  const uint64_t data = cmd.size() > data_arg ? num(data_arg) : key->data;
  if (op == "hash") {
    if (!t.CanHash()) return "ERROR no function " + t.function() + " in this process";
    return absl::StrFormat("HASH h=%08x", t.Hash(k));
  }
  if (op == "add" || op == "add-with-hash") {
    const int32_t r = with_hash ? t.AddWithHash(k, h, data) : t.Add(k, data);
    return r >= 0 ? absl::StrCat("ADDED pos=", r) : absl::StrCat("ADD-FAILED code=", r);
  }
  if (op == "get" || op == "get-with-hash") {
    uint64_t found = 0;
    const int32_t r = with_hash ? t.LookupWithHashData(k, h, &found) : t.LookupData(k, &found);
    return r >= 0 ? absl::StrCat("AT pos=", r, " data=", found) : absl::StrCat("MISSING code=", r);
  }
  if (op == "del" || op == "del-with-hash") {
    const int32_t r = with_hash ? t.DeleteWithHash(k, h) : t.Delete(k);
    return r >= 0 ? absl::StrCat("DELETED pos=", r) : absl::StrCat("DELETE-FAILED code=", r);
  }
  return "UNKNOWN " + op;
}

}  // namespace

int main(int argc, char** argv) {
  for (const auto& [name, function] : Functions()) {
    if (absl::Status s = hash::RegisterFunction(name, function); !s.ok()) {
      std::printf("INIT-FAILED: %s\n", s.ToString().c_str());
      return 2;
    }
  }
  ::signal(SIGUSR1, Stop);
  std::optional<std::vector<std::string>> app_args = keel::testing::JoinGroup(argc, argv);
  if (!app_args) return 2;
  std::printf("READY pid=%d type=%s\n", getpid(),
              std::string(keel::eal::ProcessTypeName(keel::eal::GetProcessType())).c_str());
  return keel::testing::ServeCommands(Run);
}
