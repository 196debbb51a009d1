// Hash tables across real processes and binaries: every test starts hash_helper
// processes (and hash_other_helper, a binary with other hash functions; see
// tests/hash_helper.cc) in a group of its own: a primary (-l 0, --no-huge but for the
// Hugepages sharing test) and secondaries on lcore ids of their own.
//
// Keys are derived from integer seeds by the helpers, each with data of its own, so
// "check-range" can tell, in any process, whether every key of a range is present with
// its data (single and bulk lookups agreeing, the key at its position). Writers killed
// at the table's kill points (debug builds) and at random moments leave a table that the
// next writer repairs through its robust lock: Verify passes, no key added before the
// killed operation is lost, none is there twice, and the count is the keys present.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"
#include "tests/subprocess.h"

namespace keel {
namespace {

using ::keel::testing::Ask;
using ::keel::testing::Await;
using ::keel::testing::kTimeout;
using ::keel::testing::RunfilePath;
using ::keel::testing::Subprocess;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kKilled = 128 + SIGKILL;

// The number after "key=" in `line`, or -1.
int64_t Field(const std::string& line, const std::string& key) {
  for (absl::string_view word : absl::StrSplit(line, ' ')) {
    int64_t v;
    if (absl::ConsumePrefix(&word, key + "=") && absl::SimpleAtoi(word, &v)) return v;
  }
  return -1;
}

// What check-range answers when seeds [first, first + count) are all present.
std::string AllPresent(uint64_t count) {
  return absl::StrCat("RANGE present=", count,
                      " missing=0 wrong=0 first_missing=none first_wrong=none");
}

// What check-range answers when none is.
std::string NonePresent(uint64_t count, uint64_t first) {
  return absl::StrCat("RANGE present=0 missing=", count, " wrong=0 first_missing=", first,
                      " first_wrong=none");
}

class HashTest : public testing::GroupTest {
 protected:
  HashTest() : GroupTest("tests/hash_helper") {}

  std::vector<std::string> PrimaryArgs() const {
    std::vector<std::string> args = {"-l", "0", "-m", "32"};
    if (!NeedsHugepages()) args.push_back("--no-huge");
    return args;
  }
  std::unique_ptr<Subprocess> Primary() {
    std::unique_ptr<Subprocess> p = Join(PrimaryArgs());
    EXPECT_THAT(ready_line_, HasSubstr("type=primary"));
    return p;
  }
  // A secondary owning lcore `lcore` (pinned to CPU lcore % 2); of hash_other_helper
  // when `other`.
  std::unique_ptr<Subprocess> Secondary(int lcore, bool other = false) {
    const std::vector<std::string> args = {"--proc-type=secondary", "--lcores",
                                           absl::StrCat(lcore, "@", lcore % 2)};
    if (!other) {
      std::unique_ptr<Subprocess> p = Join(args);
      EXPECT_THAT(ready_line_, HasSubstr("type=secondary"));
      return p;
    }
    std::unique_ptr<Subprocess> p = Start(args, {}, {}, RunfilePath("tests/hash_other_helper"));
    EXPECT_THAT(Await(p.get(), "READY", kTimeout), HasSubstr("type=secondary"));
    return p;
  }

  // Kill points exist in debug builds only.
  static bool KillPointsCompiledIn(Subprocess* p) {
    return Ask(p, "killpoints") == "KILLPOINTS on";
  }
};

// --- One table, two processes; with hugepages and without ----------------------------

class HashSharingTest : public HashTest, public ::testing::WithParamInterface<bool> {
 protected:
  bool NeedsHugepages() const override { return !GetParam(); }
};

TEST_P(HashSharingTest, ATableCreatedInThePrimaryIsUsedByASecondary) {
  std::unique_ptr<Subprocess> primary = Primary();
  ASSERT_EQ(Ask(primary.get(), "create t 1024 16 crc32c none"), "CREATED t");
  std::unique_ptr<Subprocess> secondary = Secondary(1);
  // Found, at the same address, as created.
  const std::string found = Ask(secondary.get(), "lookup t");
  EXPECT_THAT(found, StartsWith("FOUND t addr=0x"));
  EXPECT_THAT(found, HasSubstr("function=crc32c entries=1024 key_length=16 flags=0x0 init=0 "
                               "count=0"));
  EXPECT_EQ(Ask(primary.get(), "lookup t"), found);
  if (NeedsHugepages()) {  // in a hugetlbfs segment, not /dev/shm
    EXPECT_THAT(testing::SegmentFiles(prefix_),
                ::testing::Contains(::testing::Not(StartsWith("/dev/shm/"))));
  }

  // Keys added in one process are found in the other with their data, at the same
  // positions.
  ASSERT_EQ(Ask(primary.get(), "add-range t 0 300"),
            "ADDED-RANGE n=300 failed=0 first_failure=none");
  EXPECT_EQ(Ask(secondary.get(), "check-range t 0 300"), AllPresent(300));
  ASSERT_EQ(Ask(secondary.get(), "add-range t 300 200"),
            "ADDED-RANGE n=200 failed=0 first_failure=none");
  EXPECT_EQ(Ask(primary.get(), "check-range t 0 500"), AllPresent(500));
  for (const char* seed : {"0", "1", "299", "300", "499"}) {
    const std::string at = Ask(primary.get(), absl::StrCat("get t ", seed));
    EXPECT_THAT(at, StartsWith("AT pos="));
    EXPECT_EQ(Ask(secondary.get(), absl::StrCat("get t ", seed)), at) << seed;
    const std::string pos = absl::StrCat(Field(at, "pos"));
    const std::string key = Ask(secondary.get(), "key t " + pos);
    EXPECT_THAT(key, StartsWith("KEY pos=" + pos + " key=0x"));
    EXPECT_EQ(Ask(primary.get(), "key t " + pos), key);
  }

  // A key of our own bytes, its data replaced from the other process.
  const std::string hex = "0x00112233445566778899aabbccddeeff";
  const std::string added = Ask(secondary.get(), "add t " + hex + " 42");
  ASSERT_THAT(added, StartsWith("ADDED pos="));
  const int64_t pos = Field(added, "pos");
  EXPECT_EQ(Ask(primary.get(), "get t " + hex), absl::StrCat("AT pos=", pos, " data=42"));
  EXPECT_EQ(Ask(primary.get(), "add t " + hex + " 43"), added);
  EXPECT_EQ(Ask(secondary.get(), "get t " + hex), absl::StrCat("AT pos=", pos, " data=43"));
  EXPECT_EQ(Ask(secondary.get(), absl::StrCat("key t ", pos)),
            absl::StrCat("KEY pos=", pos, " key=", hex));
  EXPECT_EQ(Ask(primary.get(), "count t"), "COUNT n=501");

  // A delete in one is seen in the other.
  EXPECT_EQ(Ask(primary.get(), "del t " + hex), absl::StrCat("DELETED pos=", pos));
  EXPECT_EQ(Ask(secondary.get(), "get t " + hex), "MISSING code=-2");
  EXPECT_EQ(Ask(secondary.get(), absl::StrCat("key t ", pos)), absl::StrCat("NO-KEY pos=", pos));
  const std::string seven = Ask(primary.get(), "get t 7");
  EXPECT_EQ(Ask(secondary.get(), "del t 7"), absl::StrCat("DELETED pos=", Field(seven, "pos")));
  EXPECT_EQ(Ask(primary.get(), "get t 7"), "MISSING code=-2");
  EXPECT_EQ(Ask(primary.get(), "del t 7"), "DELETE-FAILED code=-2");
  EXPECT_EQ(Ask(primary.get(), "check-range t 0 500"),
            "RANGE present=499 missing=1 wrong=0 first_missing=7 first_wrong=none");
  EXPECT_EQ(Ask(secondary.get(), "count t"), "COUNT n=499");
  EXPECT_EQ(Ask(secondary.get(), "iterate t"), "ITERATED n=499 wrong=0");
  EXPECT_EQ(Ask(secondary.get(), "verify t"), "VERIFY OK");

  // Freed by the secondary: gone for everyone, and the name can be taken again.
  EXPECT_EQ(Ask(secondary.get(), "free t"), "FREED t");
  EXPECT_EQ(Ask(primary.get(), "lookup t"), "ERROR NOT_FOUND: no hash \"t\"");
  EXPECT_EQ(Ask(secondary.get(), "lookup-hashes-only t"), "ERROR NOT_FOUND: no hash \"t\"");
  ASSERT_EQ(Ask(primary.get(), "create t 64 8 jhash none"), "CREATED t");
  EXPECT_THAT(Ask(secondary.get(), "lookup t"),
              HasSubstr("function=jhash entries=64 key_length=8 flags=0x0 init=0 count=0"));
  Quit(secondary.get());
  Quit(primary.get());
}

INSTANTIATE_TEST_SUITE_P(HugeAndNoHuge, HashSharingTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "NoHuge" : "Hugepages";
                         });

TEST_F(HashTest, TakenNamesUnknownNamesAndBadParametersAreRefused) {
  std::unique_ptr<Subprocess> primary = Primary();
  ASSERT_EQ(Ask(primary.get(), "create t 64 16 crc32c none"), "CREATED t");
  std::unique_ptr<Subprocess> secondary = Secondary(1);
  for (Subprocess* p : {primary.get(), secondary.get()}) {
    const std::string taken = Ask(p, "create t 128 8 jhash none");
    EXPECT_THAT(taken, StartsWith("ERROR ALREADY_EXISTS"));
    EXPECT_THAT(taken, HasSubstr("\"t\""));
  }
  EXPECT_EQ(Ask(secondary.get(), "lookup nope"), "ERROR NOT_FOUND: no hash \"nope\"");
  EXPECT_EQ(Ask(secondary.get(), "lookup-hashes-only nope"), "ERROR NOT_FOUND: no hash \"nope\"");
  EXPECT_EQ(Ask(primary.get(), "free nope"), "ERROR NOT_FOUND: no hash \"nope\"");
  EXPECT_THAT(Ask(secondary.get(), "create u 0 16 crc32c none"),
              StartsWith("ERROR INVALID_ARGUMENT: hash \"u\": entries 0"));
  EXPECT_THAT(Ask(secondary.get(), "create u 64 1025 crc32c none"),
              StartsWith("ERROR INVALID_ARGUMENT: hash \"u\": key length 1025"));
  EXPECT_THAT(Ask(secondary.get(), "create u 64 16 crc32c lf"),
              StartsWith("ERROR INVALID_ARGUMENT: hash \"u\": kLockFreeReaders needs "
                         "kNoFreeOnDelete"));
  EXPECT_THAT(Ask(secondary.get(), "create u 64 16 nosuch none"),
              StartsWith("ERROR NOT_FOUND: hash \"u\": function \"nosuch\""));
  // None of it touched the table, or left a "u".
  EXPECT_THAT(Ask(secondary.get(), "lookup t"),
              HasSubstr("function=crc32c entries=64 key_length=16 flags=0x0 init=0 count=0"));
  EXPECT_EQ(Ask(primary.get(), "lookup u"), "ERROR NOT_FOUND: no hash \"u\"");
  // A table made by a secondary is the primary's as well.
  ASSERT_EQ(Ask(secondary.get(), "create u 64 16 fnv1a ext"), "CREATED u");
  EXPECT_THAT(Ask(primary.get(), "lookup u"),
              HasSubstr("function=fnv1a entries=64 key_length=16 flags=0x4 init=0 count=0"));
  Quit(secondary.get());
  Quit(primary.get());
}

// --- Across binaries: functions by name ----------------------------------------------

// hash_other_helper lacks "xorshift": Lookup is refused naming it, LookupHashesOnly
// gives the *WithHash calls, with hashes hash_helper computes.
TEST_F(HashTest, ABinaryWithoutTheFunctionUsesTheWithHashCalls) {
  std::unique_ptr<Subprocess> primary = Primary();
  ASSERT_EQ(Ask(primary.get(), "create xs 512 16 xorshift none 7"), "CREATED xs");
  ASSERT_EQ(Ask(primary.get(), "add-range xs 0 100"),
            "ADDED-RANGE n=100 failed=0 first_failure=none");
  std::unique_ptr<Subprocess> other = Secondary(1, /*other=*/true);
  const std::string refused = Ask(other.get(), "lookup xs");
  EXPECT_THAT(refused, StartsWith("ERROR FAILED_PRECONDITION: hash \"xs\": function \"xorshift\" "
                                  "is not registered in this process"));
  EXPECT_THAT(refused, HasSubstr("LookupHashesOnly"));
  const std::string hashes_only = Ask(other.get(), "lookup-hashes-only xs");
  EXPECT_THAT(hashes_only,
              HasSubstr("function=xorshift entries=512 key_length=16 flags=0x0 init=7 count=100 "));
  EXPECT_THAT(hashes_only, HasSubstr("can_hash=0"));
  // Without the function, calls by key alone are refused.
  EXPECT_EQ(Ask(other.get(), "get xs 5"), "MISSING code=-22");
  EXPECT_EQ(Ask(other.get(), "add xs 200"), "ADD-FAILED code=-22");
  EXPECT_EQ(Ask(other.get(), "del xs 5"), "DELETE-FAILED code=-22");
  EXPECT_THAT(Ask(other.get(), "hash xs 5"), HasSubstr("no function xorshift"));

  // With the creator's hashes, everything works.
  const std::string h5 = Ask(primary.get(), "hash xs 5");
  ASSERT_THAT(h5, StartsWith("HASH h="));
  const std::string at5 = Ask(primary.get(), "get xs 5");
  ASSERT_THAT(at5, StartsWith("AT pos="));
  EXPECT_EQ(Ask(other.get(), "get-with-hash xs 5 " + h5.substr(7)), at5);
  const std::string h200 = Ask(primary.get(), "hash xs 200");
  ASSERT_THAT(h200, StartsWith("HASH h="));
  EXPECT_NE(h200, h5);
  EXPECT_EQ(Ask(primary.get(), "get xs 200"), "MISSING code=-2");
  const std::string added = Ask(other.get(), "add-with-hash xs 200 " + h200.substr(7));
  ASSERT_THAT(added, StartsWith("ADDED pos="));
  const std::string at200 = Ask(primary.get(), "get xs 200");
  EXPECT_THAT(at200, StartsWith(absl::StrCat("AT pos=", Field(added, "pos"), " data=")));
  EXPECT_EQ(Ask(other.get(), "get-with-hash xs 200 " + h200.substr(7)), at200);
  EXPECT_EQ(Ask(other.get(), "del-with-hash xs 5 " + h5.substr(7)),
            absl::StrCat("DELETED pos=", Field(at5, "pos")));
  EXPECT_EQ(Ask(primary.get(), "get xs 5"), "MISSING code=-2");
  EXPECT_EQ(Ask(other.get(), "get-with-hash xs 5 " + h5.substr(7)), "MISSING code=-2");
  // Positions and iteration need no function.
  EXPECT_EQ(Ask(other.get(), absl::StrCat("key xs ", Field(at200, "pos"))),
            Ask(primary.get(), absl::StrCat("key xs ", Field(at200, "pos"))));
  EXPECT_EQ(Ask(other.get(), "iterate xs"), "ITERATED n=100 wrong=0");
  EXPECT_EQ(Ask(other.get(), "count xs"), "COUNT n=100");
  EXPECT_EQ(Ask(other.get(), "verify xs"), "VERIFY OK");
  EXPECT_EQ(Ask(primary.get(), "check-range xs 0 5"), AllPresent(5));
  EXPECT_EQ(Ask(primary.get(), "check-range xs 6 94"), AllPresent(94));
  Quit(other.get());
  Quit(primary.get());
}

// FNV-1a of the bytes 00 01 .. 0c seeded with 9 (the offset basis xored with the seed),
// computed here, independently of the helpers.
uint32_t ExpectedFnv1a() {
  uint32_t h = 2166136261u ^ 9;
  for (int i = 0; i < 13; ++i) {
    h ^= static_cast<uint32_t>(i);
    h *= 16777619u;
  }
  return h;
}

// Both binaries register "fnv1a" alike: both use the table by key, whoever made it.
TEST_F(HashTest, BothBinariesUseATableOfAFunctionBothHave) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> other = Secondary(1, /*other=*/true);
  // 13-byte keys: not one of the lengths the key comparison special-cases.
  ASSERT_EQ(Ask(other.get(), "create f 512 13 fnv1a none 9"), "CREATED f");
  ASSERT_EQ(Ask(other.get(), "add-range f 0 150"), "ADDED-RANGE n=150 failed=0 first_failure=none");
  EXPECT_THAT(Ask(primary.get(), "lookup f"),
              HasSubstr("function=fnv1a entries=512 key_length=13 flags=0x0 init=9 count=150 "));
  EXPECT_EQ(Ask(primary.get(), "check-range f 0 150"), AllPresent(150));
  ASSERT_EQ(Ask(primary.get(), "add-range f 150 150"),
            "ADDED-RANGE n=150 failed=0 first_failure=none");
  EXPECT_EQ(Ask(other.get(), "check-range f 0 300"), AllPresent(300));
  EXPECT_EQ(Ask(other.get(), "get f 222"), Ask(primary.get(), "get f 222"));
  const std::string hex = "0x000102030405060708090a0b0c";
  const std::string expected = absl::StrFormat("HASH h=%08x", ExpectedFnv1a());
  EXPECT_EQ(Ask(primary.get(), "hash f " + hex), expected);
  EXPECT_EQ(Ask(other.get(), "hash f " + hex), expected);
  EXPECT_EQ(Ask(other.get(), "del-range f 0 100"), "DELETED-RANGE n=100 missing=0");
  EXPECT_EQ(Ask(primary.get(), "check-range f 0 100"), NonePresent(100, 0));
  EXPECT_EQ(Ask(primary.get(), "check-range f 100 200"), AllPresent(200));
  EXPECT_EQ(Ask(primary.get(), "count f"), "COUNT n=200");
  EXPECT_EQ(Ask(primary.get(), "verify f"), "VERIFY OK");
  Quit(other.get());
  Quit(primary.get());
}

// The bytes (i * 31 + 1) & 0xff, i < 16: the key on which hash/core.cc's Probe() takes
// probe 0 of a 16-byte table.
std::string ProbeZeroKey() {
  std::string hex = "0x";
  for (int i = 0; i < 16; ++i) absl::StrAppendFormat(&hex, "%02x", (i * 31 + 1) & 0xff);
  return hex;
}

// Each binary registers another function as "mixed": the table is refused, the message
// giving both values.
TEST_F(HashTest, AFunctionComputedDifferentlyIsRefusedWithBothValues) {
  std::unique_ptr<Subprocess> primary = Primary();
  ASSERT_EQ(Ask(primary.get(), "create m 64 16 mixed none"), "CREATED m");
  ASSERT_EQ(Ask(primary.get(), "add m 1"), "ADDED pos=0");
  std::unique_ptr<Subprocess> other = Secondary(1, /*other=*/true);
  const std::string refused = Ask(other.get(), "lookup m");
  EXPECT_THAT(refused, StartsWith("ERROR FAILED_PRECONDITION: hash \"m\": function \"mixed\""));
  std::smatch values;
  ASSERT_TRUE(std::regex_search(refused, values,
                                std::regex("computes ([0-9a-f]{8}) on probe ([0-9]) in this "
                                           "process, ([0-9a-f]{8}) in the table's creator")))
      << refused;
  EXPECT_NE(values[1].str(), values[3].str());
  // They are the two binaries' functions on the probe key.
  if (values[2].str() == "0") {
    EXPECT_EQ(Ask(other.get(), "fn mixed " + ProbeZeroKey() + " 0"), "FN h=" + values[1].str());
    EXPECT_EQ(Ask(primary.get(), "fn mixed " + ProbeZeroKey() + " 0"), "FN h=" + values[3].str());
  }
  // The *WithHash calls remain.
  EXPECT_THAT(Ask(other.get(), "lookup-hashes-only m"), HasSubstr("function=mixed"));
  const std::string h = Ask(primary.get(), "hash m 1");
  ASSERT_THAT(h, StartsWith("HASH h="));
  EXPECT_EQ(Ask(other.get(), "get-with-hash m 1 " + h.substr(7)), Ask(primary.get(), "get m 1"));
  Quit(other.get());
  Quit(primary.get());
}

// --- Concurrency ---------------------------------------------------------------------

// Two writer processes churn keys of their own ranges (adds, deletes, the displacements
// they cause at up to 85 % load) while two reader threads of a third process look up a
// stable range for 2 s: no reader ever misses a key or reads wrong data. The writers
// churn until the reader is done (SIGUSR1 stops them).
TEST_F(HashTest, TwoWritersAndReadersInThreeProcesses) {
  std::unique_ptr<Subprocess> primary = Primary();
  ASSERT_EQ(Ask(primary.get(), "create t 4096 16 fnv1a mw+lf+nofree"), "CREATED t");
  ASSERT_EQ(Ask(primary.get(), "add-range t 0 2500"),
            "ADDED-RANGE n=2500 failed=0 first_failure=none");
  std::unique_ptr<Subprocess> writer_a = Secondary(1);
  std::unique_ptr<Subprocess> writer_b = Secondary(2);
  std::unique_ptr<Subprocess> reader = Secondary(3);
  writer_a->Send("churn t 1 0 1000000 500\n");
  writer_b->Send("churn t 2 0 2000000 500\n");
  EXPECT_EQ(Await(writer_a.get(), "CHURNING", kTimeout), "CHURNING present=0");
  EXPECT_EQ(Await(writer_b.get(), "CHURNING", kTimeout), "CHURNING present=0");
  reader->Send("read t 0 2500 2 2\n");
  const std::string read = Await(reader.get(), "READ ", kTimeout);
  EXPECT_THAT(read, StartsWith("READ lookups="));
  EXPECT_THAT(read, HasSubstr(" misses=0 wrong=0 first=none"));
  EXPECT_GT(Field(read, "lookups"), 100000) << read;
  writer_a->Kill(SIGUSR1);
  writer_b->Kill(SIGUSR1);
  const std::string a = Await(writer_a.get(), "CHURNED", kTimeout);
  const std::string b = Await(writer_b.get(), "CHURNED", kTimeout);
  std::printf("%s\n%s\n%s\n", read.c_str(), a.c_str(), b.c_str());
  EXPECT_GT(Field(a, "ops"), 10000) << a;
  EXPECT_GT(Field(b, "ops"), 10000) << b;
  EXPECT_THAT(a, HasSubstr(" errors=0 first_error=none"));
  EXPECT_THAT(b, HasSubstr(" errors=0 first_error=none"));
  EXPECT_EQ(Ask(reader.get(), "verify t"), "VERIFY OK");
  // Each writer's keys are the ones it says it left, with their data; nothing else.
  const int64_t present_a = Field(a, "present");
  const int64_t present_b = Field(b, "present");
  EXPECT_EQ(Field(Ask(reader.get(), "check-range t 1000000 500"), "present"), present_a);
  EXPECT_EQ(Field(Ask(reader.get(), "check-range t 2000000 500"), "present"), present_b);
  EXPECT_EQ(Field(Ask(reader.get(), "check-range t 1000000 500"), "wrong"), 0);
  EXPECT_EQ(Field(Ask(reader.get(), "check-range t 2000000 500"), "wrong"), 0);
  EXPECT_EQ(Ask(reader.get(), "check-range t 0 2500"), AllPresent(2500));
  EXPECT_EQ(Ask(primary.get(), "count t"), absl::StrCat("COUNT n=", 2500 + present_a + present_b));
  EXPECT_EQ(Ask(primary.get(), "iterate t"),
            absl::StrCat("ITERATED n=", 2500 + present_a + present_b, " wrong=0"));
  for (Subprocess* p : {reader.get(), writer_b.get(), writer_a.get(), primary.get()}) Quit(p);
}

// --- Writers killed at the table's kill points -------------------------------------

struct KillCase {
  const char* name;
  const char* kill_point;  // and its hit, "POINT [NTH]"
  const char* create;      // the table "t": ENTRIES KEYLEN FUNCTION FLAGS
  uint64_t prefill;        // seeds 0 .. prefill-1, added by the primary
  const char* victim;      // the command the victim dies in
  // The seed of the killed operation; -1: the victim's last "ADDING SEED" line (an
  // add-range trace).
  int64_t killed;
};

void PrintTo(const KillCase& c, std::ostream* os) { *os << c.name << " at " << c.kill_point; }

class HashKillPointTest : public HashTest, public ::testing::WithParamInterface<KillCase> {};

// After the kill, another process's verify repairs the table; every key added before the
// killed operation (or, for a delete, every other key) is present with its data, the
// killed key is present or not (once: Verify checks it), keys never added are absent,
// and the count is the keys present. Then the table takes the killed key again.
TEST_P(HashKillPointTest, TheNextWriterRepairsTheTableAndLosesNoKey) {
  const KillCase& c = GetParam();
  std::unique_ptr<Subprocess> primary = Primary();
  if (!KillPointsCompiledIn(primary.get())) {
    Quit(primary.get());
    GTEST_SKIP() << "kill points are compiled in debug builds only";
  }
  ASSERT_EQ(Ask(primary.get(), absl::StrCat("create t ", c.create)), "CREATED t");
  if (c.prefill > 0) {
    ASSERT_EQ(Ask(primary.get(), absl::StrCat("add-range t 0 ", c.prefill)),
              absl::StrCat("ADDED-RANGE n=", c.prefill, " failed=0 first_failure=none"));
  }
  std::unique_ptr<Subprocess> victim = Secondary(1);
  ASSERT_THAT(Ask(victim.get(), absl::StrCat("kill-at ", c.kill_point)), StartsWith("ARMED"));
  victim->Send(absl::StrCat(c.victim, "\n"));
  ASSERT_EQ(victim->Wait(), kKilled) << "not killed at " << c.kill_point << ":\n"
                                     << victim->Output();
  int64_t killed = c.killed;
  if (killed < 0) {
    for (absl::string_view line : absl::StrSplit(victim->Output(), '\n')) {
      if (absl::ConsumePrefix(&line, "ADDING ")) {
        ASSERT_TRUE(absl::SimpleAtoi(line, &killed)) << line;
      }
    }
    ASSERT_GE(killed, 0) << victim->Output();
  }
  std::printf("killed in the operation on seed %lld\n", static_cast<long long>(killed));
  // The repair runs in whichever writer takes the lock next: here the primary's Verify.
  EXPECT_EQ(Ask(primary.get(), "verify t"), "VERIFY OK");
  // Present before the killed operation: [0, end) but `killed`.
  const uint64_t end = std::max<uint64_t>(c.prefill, killed + 1);
  EXPECT_EQ(Ask(primary.get(), absl::StrCat("check-range t 0 ", killed)), AllPresent(killed));
  EXPECT_EQ(Ask(primary.get(), absl::StrCat("check-range t ", killed + 1, " ", end - killed - 1)),
            AllPresent(end - killed - 1));
  EXPECT_EQ(Ask(primary.get(), absl::StrCat("check-range t ", end, " 100")), NonePresent(100, end));
  const std::string killed_key = Ask(primary.get(), absl::StrCat("check-range t ", killed, " 1"));
  EXPECT_THAT(killed_key, AnyOf(AllPresent(1), NonePresent(1, killed)));
  const int64_t present = end - 1 + Field(killed_key, "present");
  EXPECT_EQ(Ask(primary.get(), "count t"), absl::StrCat("COUNT n=", present));
  EXPECT_EQ(Ask(primary.get(), "iterate t"), absl::StrCat("ITERATED n=", present, " wrong=0"));
  // The table goes on: the killed key once more, and everything checks out.
  ASSERT_THAT(Ask(primary.get(), absl::StrCat("add t ", killed)), StartsWith("ADDED pos="));
  EXPECT_EQ(Ask(primary.get(), absl::StrCat("check-range t 0 ", end)), AllPresent(end));
  EXPECT_EQ(Ask(primary.get(), "count t"), absl::StrCat("COUNT n=", end));
  EXPECT_EQ(Ask(primary.get(), "verify t"), "VERIFY OK");
  Quit(primary.get());
}

// "constant" hashes every key alike: seeds 0-15 fill the key's two buckets, 16-23 the
// first overflow bucket of the chain, 24-31 the second.
INSTANTIATE_TEST_SUITE_P(
    KillPoints, HashKillPointTest,
    ::testing::Values(
        // A position popped off the free stack, not yet in a bucket.
        KillCase{"AddPopped", "hash.add.popped", "256 16 fnv1a none", 100, "add t 100", 100},
        // The key in its bucket, not yet counted nor live.
        KillCase{"AddPlaced", "hash.add.placed", "256 16 fnv1a none", 100, "add t 100", 100},
        KillCase{"AddPlacedInAChain", "hash.add.placed", "64 16 constant ext", 20, "add t 20", 20},
        KillCase{"AddPlacedNoFree", "hash.add.placed", "256 16 fnv1a mw+lf+nofree", 100,
                 "add t 100", 100},
        // A displaced key published at its new place, still at its old one. The first
        // displacement of a filling table.
        KillCase{"MovePublished", "hash.move.published", "256 16 fnv1a none", 0,
                 "add-range t 0 256 trace", -1},
        KillCase{"MovePublishedFifth", "hash.move.published 5", "256 16 fnv1a mw+lf+nofree", 0,
                 "add-range t 0 256 trace", -1},
        // A key cleared from its bucket, still counted.
        KillCase{"DeleteCleared", "hash.delete.cleared", "256 16 fnv1a none", 100, "del t 50", 50},
        KillCase{"DeleteClearedNoFree", "hash.delete.cleared", "256 16 fnv1a mw+lf+nofree", 100,
                 "del t 50", 50},
        KillCase{"DeleteClearedInAChain", "hash.delete.cleared", "64 16 constant ext", 30,
                 "del t 20", 20},
        // An overflow bucket off its free stack, filled, not yet linked: the first of
        // the chain, and the second.
        KillCase{"ChainFilledFirst", "hash.chain.filled", "64 16 constant ext", 0,
                 "add-range t 0 64 trace", -1},
        KillCase{"ChainFilledSecond", "hash.chain.filled 2", "64 16 constant ext+mw+lf+nofree", 0,
                 "add-range t 0 64 trace", -1},
        // The chain's last bucket emptied and unlinked, not yet on the free stack: after
        // the chain's last key moved into the deleted key's slot (25 keys, seed 24 the
        // second bucket's only one), and when the deleted key was the last bucket's only
        // one (17 keys).
        KillCase{"ChainUnlinkedAfterCompaction", "hash.chain.unlinked", "64 16 constant ext", 25,
                 "del t 16", 16},
        KillCase{"ChainUnlinkedLast", "hash.chain.unlinked", "64 16 constant ext", 17, "del t 16",
                 16}),
    [](const ::testing::TestParamInfo<KillCase>& info) { return info.param.name; });

// --- Writers killed at random moments ----------------------------------------------

// Random, or KEEL_HASH_CHURN_SEED (--test_env) to repeat a run's choices (not its
// timing); printed.
uint32_t ChurnSeed() {
  uint32_t seed = std::random_device{}();
  if (const char* s = std::getenv("KEEL_HASH_CHURN_SEED")) {
    if (!absl::SimpleAtoi(s, &seed)) ADD_FAILURE() << "KEEL_HASH_CHURN_SEED=" << s;
  }
  std::printf("seed %u (--test_env=KEEL_HASH_CHURN_SEED=%u repeats its choices)\n", seed, seed);
  return seed;
}

// Writers churning their range, one after another, SIGKILLed from outside after a
// random time: at any instruction, often holding the table's lock. After each, the
// primary's verify repairs the table; a reader in another process looks up a stable
// range throughout and never misses (a dead writer leaves no reader waiting, and the
// repair moves no key a reader needs).
class RandomKillTest : public HashTest, public ::testing::WithParamInterface<const char*> {};
INSTANTIATE_TEST_SUITE_P(Writers, RandomKillTest, ::testing::Values("mw+lf+nofree", "lf+nofree"),
                         [](const auto& info) {
                           return std::string(absl::StrContains(info.param, "mw") ? "MultiWriter"
                                                                                  : "SingleWriter");
                         });

// kMultiWriter writers hold the lock; the others have the `writing` flag set while in
// a write (one writer at a time: each is killed before the next starts).
TEST_P(RandomKillTest, WritersKilledAtRandomMomentsLeaveARepairableTable) {
  std::unique_ptr<Subprocess> primary = Primary();
  ASSERT_EQ(Ask(primary.get(), absl::StrCat("create t 4096 16 fnv1a ", GetParam())), "CREATED t");
  ASSERT_EQ(Ask(primary.get(), "add-range t 0 2500"),
            "ADDED-RANGE n=2500 failed=0 first_failure=none");
  std::unique_ptr<Subprocess> reader = Secondary(1);
  reader->Send("read t 0 2500 60 1\n");
  ASSERT_EQ(Await(reader.get(), "READING", kTimeout), "READING");
  std::mt19937 rng(ChurnSeed());
  constexpr int kKills = 16;
  for (int i = 0; i < kKills; ++i) {
    std::unique_ptr<Subprocess> writer = Secondary(10 + i);
    writer->Send(absl::StrCat("churn t ", rng(), " 0 1000000 1000\n"));
    ASSERT_THAT(Await(writer.get(), "CHURNING", kTimeout), StartsWith("CHURNING present="));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 100000));
    writer->Kill(SIGKILL);
    ASSERT_EQ(writer->Wait(), kKilled) << writer->Output();
    EXPECT_EQ(Ask(primary.get(), "verify t"), "VERIFY OK") << "kill " << i;
    EXPECT_EQ(Ask(primary.get(), "check-range t 0 2500"), AllPresent(2500)) << "kill " << i;
    const std::string churned = Ask(primary.get(), "check-range t 1000000 1000");
    EXPECT_EQ(Field(churned, "wrong"), 0) << churned;
    const int64_t present = 2500 + Field(churned, "present");
    EXPECT_EQ(Ask(primary.get(), "count t"), absl::StrCat("COUNT n=", present)) << "kill " << i;
    EXPECT_EQ(Ask(primary.get(), "iterate t"), absl::StrCat("ITERATED n=", present, " wrong=0"));
  }
  // SIGUSR1 stops the reader, which then reports.
  reader->Kill(SIGUSR1);
  const std::string read = Await(reader.get(), "READ ", kTimeout);
  EXPECT_THAT(read, StartsWith("READ lookups="));
  EXPECT_THAT(read, HasSubstr(" misses=0 wrong=0 first=none"));
  // A writer killed in a write is repaired by the next (the primary's verify),
  // which logs it. Churn is in a write most of the time: of 16 kills, some land in one.
  const std::vector<absl::string_view> parts = absl::StrSplit(primary->Output(), "repaired");
  const int repairs = static_cast<int>(parts.size()) - 1;
  std::printf("%d kills, %d in a write; %s\n", kKills, repairs, read.c_str());
  EXPECT_GT(repairs, 0);
  Quit(reader.get());
  Quit(primary.get());
}

// The repair itself, after writers killed holding the lock (at hash.add.placed), while
// a reader in another process looks up a stable range of a table at 73 % load (many
// keys in their alternative bucket): the reader never misses a key.
TEST_F(HashTest, ARepairIsInvisibleToLockFreeReaders) {
  std::unique_ptr<Subprocess> primary = Primary();
  if (!KillPointsCompiledIn(primary.get())) {
    Quit(primary.get());
    GTEST_SKIP() << "kill points are compiled in debug builds only";
  }
  ASSERT_EQ(Ask(primary.get(), "create t 4096 16 fnv1a mw+lf+nofree"), "CREATED t");
  ASSERT_EQ(Ask(primary.get(), "add-range t 0 3000"),
            "ADDED-RANGE n=3000 failed=0 first_failure=none");
  std::unique_ptr<Subprocess> reader = Secondary(1);
  reader->Send("read t 0 3000 60 1\n");
  ASSERT_EQ(Await(reader.get(), "READING", kTimeout), "READING");
  constexpr int kKills = 5;
  for (int i = 0; i < kKills; ++i) {
    std::unique_ptr<Subprocess> victim = Secondary(10 + i);
    ASSERT_EQ(Ask(victim.get(), "kill-at hash.add.placed"), "ARMED hash.add.placed");
    victim->Send(absl::StrCat("add t ", 1000000 + i, "\n"));
    ASSERT_EQ(victim->Wait(), kKilled) << victim->Output();
    EXPECT_EQ(Ask(primary.get(), "verify t"), "VERIFY OK");
  }
  reader->Kill(SIGUSR1);
  const std::string read = Await(reader.get(), "READ ", kTimeout);
  EXPECT_THAT(read, StartsWith("READ lookups="));
  EXPECT_THAT(read, HasSubstr(" misses=0 wrong=0 first=none"));
  const std::vector<absl::string_view> parts = absl::StrSplit(primary->Output(), "repaired");
  EXPECT_EQ(parts.size() - 1, kKills);
  EXPECT_EQ(Ask(primary.get(), "check-range t 0 3000"), AllPresent(3000));
  EXPECT_EQ(Ask(primary.get(), absl::StrCat("check-range t 1000000 ", kKills)), AllPresent(kKills));
  EXPECT_EQ(Ask(primary.get(), "count t"), absl::StrCat("COUNT n=", 3000 + kKills));
  Quit(reader.get());
  Quit(primary.get());
}

// --- procinfo ------------------------------------------------------------------------

TEST_F(HashTest, ProcinfoListsHashTables) {
  std::unique_ptr<Subprocess> primary = Primary();
  ASSERT_EQ(Ask(primary.get(), "create flows 1024 16 fnv1a lf+nofree"), "CREATED flows");
  ASSERT_EQ(Ask(primary.get(), "add-range flows 0 10"),
            "ADDED-RANGE n=10 failed=0 first_failure=none");
  ASSERT_EQ(Ask(primary.get(), "create plain 64 8 crc32c none"), "CREATED plain");
  const int64_t flows_size = Field(Ask(primary.get(), "lookup flows"), "memory");
  const int64_t plain_size = Field(Ask(primary.get(), "lookup plain"), "memory");
  ASSERT_GT(flows_size, 0);
  ASSERT_GT(plain_size, 0);
  // procinfo registers no function: it reads tables by LookupHashesOnly.
  const std::string procinfo = RunfilePath("tools/procinfo/procinfo");
  std::unique_ptr<Subprocess> text = Subprocess::Start({procinfo, "--file-prefix", prefix_});
  EXPECT_EQ(text->Wait(), 0) << text->Output();
  EXPECT_THAT(text->Output(), HasSubstr("\nhash tables:\n  NAME "));
  EXPECT_THAT(text->Output(),
              ::testing::ContainsRegex(absl::StrCat("\n  flows +fnv1a +1024 +10 +16 +", flows_size,
                                                    " +lock_free_readers,no_free_on_delete\n")));
  EXPECT_THAT(text->Output(), ::testing::ContainsRegex(absl::StrCat("\n  plain +crc32c +64 +0 +8 +",
                                                                    plain_size, " +-\n")));
  std::unique_ptr<Subprocess> json =
      Subprocess::Start({procinfo, "--file-prefix", prefix_, "--", "--json"});
  EXPECT_EQ(json->Wait(), 0) << json->Output();
  EXPECT_THAT(json->Output(),
              HasSubstr(absl::StrCat(
                  "\"hash_tables\": [{\"name\": \"flows\", \"function\": \"fnv1a\", \"entries\": "
                  "1024, \"used\": 10, \"key_length\": 16, \"flags\": [\"lock_free_readers\", "
                  "\"no_free_on_delete\"], \"memory_size\": ",
                  flows_size,
                  "}, {\"name\": \"plain\", \"function\": \"crc32c\", \"entries\": 64, "
                  "\"used\": 0, \"key_length\": 8, \"flags\": [], \"memory_size\": ",
                  plain_size, "}]")));
  Quit(primary.get());
}

}  // namespace
}  // namespace keel
