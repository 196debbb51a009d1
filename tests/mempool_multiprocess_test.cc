// Mempools across real processes: objects got in one process and put back by another,
// per-lcore caches of several processes on one pool, a secondary killed while it
// holds objects, backends resolved by name in each process; processes killed inside a
// get, put or flush (kill points) or at random moments, and the next process on their
// lcore, which inherits the dead one's cache, never given an object someone holds.
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"
#include "tests/subprocess.h"

namespace keel {
namespace {

using ::keel::testing::Ask;
using ::keel::testing::NextAnswer;
using ::keel::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class MempoolTest : public testing::GroupTest, public ::testing::WithParamInterface<bool> {
 protected:
  MempoolTest() : GroupTest("tests/mempool_helper") {}
  bool NeedsHugepages() const override { return !GetParam(); }

  // The primary: hugepages, or --no-huge for the parameter true.
  std::unique_ptr<Subprocess> JoinPrimary(const std::vector<std::string>& lcores,
                                          const std::vector<std::string>& app_args = {}) {
    std::vector<std::string> args = lcores;
    args.insert(args.end(), {"-m", "32"});
    if (GetParam()) args.push_back("--no-huge");
    return Join(args, app_args);
  }
  std::unique_ptr<Subprocess> JoinSecondary(const std::string& lcores,
                                            const std::vector<std::string>& app_args = {}) {
    return Join({"--proc-type=secondary", "--lcores", lcores}, app_args);
  }
};

TEST_P(MempoolTest, ObjectsGotInOneProcessArePutBackByAnother) {
  std::unique_ptr<Subprocess> primary = JoinPrimary({"-l", "0"});
  ASSERT_EQ(Ask(primary.get(), "create pool 1023 64 32"), "CREATED pool");
  ASSERT_EQ(Ask(primary.get(), "create-ring handoff 1024"), "CREATED handoff");
  std::unique_ptr<Subprocess> secondary = JoinSecondary("1@1");
  EXPECT_EQ(Ask(secondary.get(), "lookup pool"), "FOUND pool size=1023 cache=32 ops=ring_mp_mc");

  // The secondary gets 300 objects and writes into them; the primary sees them in use.
  ASSERT_EQ(Ask(secondary.get(), "get pool 300 from-secondary"), "GOT 300");
  EXPECT_EQ(Ask(primary.get(), "counts pool"), "COUNTS available=723 in_use=300 held=0");
  // It hands them to the primary through a ring; the primary reads what was written
  // and puts them back into the pool.
  ASSERT_EQ(Ask(secondary.get(), "handoff handoff"), "HANDED 300");
  ASSERT_EQ(Ask(primary.get(), "take handoff 1000"), "TOOK 300");
  EXPECT_EQ(Ask(primary.get(), "check from-secondary"), "CHECKED 300 ok=300");
  ASSERT_EQ(Ask(primary.get(), "put pool"), "PUT 300");
  EXPECT_EQ(Ask(secondary.get(), "counts pool"), "COUNTS available=1023 in_use=0 held=0");
  // And the other way round: the primary's objects come back through the secondary.
  ASSERT_EQ(Ask(primary.get(), "get pool 1023 from-primary"), "GOT 1023");
  EXPECT_EQ(Ask(secondary.get(), "get pool 1 x"), "GET-FAILED");  // all handed out
  ASSERT_EQ(Ask(primary.get(), "handoff handoff"), "HANDED 1023");
  ASSERT_EQ(Ask(secondary.get(), "take handoff 1023"), "TOOK 1023");
  EXPECT_EQ(Ask(secondary.get(), "check from-primary"), "CHECKED 1023 ok=1023");
  ASSERT_EQ(Ask(secondary.get(), "put pool"), "PUT 1023");
  EXPECT_EQ(Ask(primary.get(), "counts pool"), "COUNTS available=1023 in_use=0 held=0");
  EXPECT_EQ(Ask(primary.get(), "audit pool"), "AUDIT OK");
  Quit(secondary.get());
  Quit(primary.get());
}

TEST_P(MempoolTest, LcoreCachesOfSeveralProcessesShareOnePool) {
  std::unique_ptr<Subprocess> primary = JoinPrimary({"--lcores", "0@0,1@1"});
  ASSERT_EQ(Ask(primary.get(), "create pool 4095 64 128"), "CREATED pool");
  std::unique_ptr<Subprocess> secondary = JoinSecondary("2@0,3@1");
  // Four lcores in two processes get, stamp, verify and put at the same time.
  primary->Send("churn pool 20000\n");
  secondary->Send("churn pool 20000\n");
  EXPECT_EQ(NextAnswer(primary.get()), "CHURNED errors=0");
  EXPECT_EQ(NextAnswer(secondary.get()), "CHURNED errors=0");
  // Nothing lost; every lcore kept a cache of its own, in shared memory, which every
  // process sees.
  EXPECT_EQ(Ask(primary.get(), "counts pool"), "COUNTS available=4095 in_use=0 held=0");
  for (int lcore = 0; lcore < 4; ++lcore) {
    const std::string cache = Ask(primary.get(), absl::StrCat("cache pool ", lcore));
    EXPECT_THAT(cache, StartsWith(absl::StrCat("CACHE lcore=", lcore, " len=")));
    EXPECT_NE(cache, absl::StrCat("CACHE lcore=", lcore, " len=0"));
  }
  EXPECT_EQ(Ask(primary.get(), "cache pool 4"), "CACHE lcore=4 len=0");
  EXPECT_EQ(Ask(secondary.get(), "audit pool"), "AUDIT OK");
  Quit(secondary.get());
  Quit(primary.get());
}

TEST_P(MempoolTest, ASecondaryKilledWhileHoldingObjectsLeavesThePoolWorking) {
  std::unique_ptr<Subprocess> primary = JoinPrimary({"-l", "0"});
  ASSERT_EQ(Ask(primary.get(), "create pool 1023 64 32"), "CREATED pool");
  std::unique_ptr<Subprocess> doomed = JoinSecondary("1@1");
  // 200 straight from the ring, then 20 through lcore 1's cache, which the refill
  // leaves holding 32.
  ASSERT_EQ(Ask(doomed.get(), "get pool 200 doomed"), "GOT 200");
  ASSERT_EQ(Ask(doomed.get(), "get pool 20 doomed"), "GOT 20");
  EXPECT_EQ(Ask(doomed.get(), "cache pool 1"), "CACHE lcore=1 len=32");
  doomed->Kill(SIGKILL);
  doomed->Wait();
  // The loss shows in the in-use count; everyone else goes on.
  EXPECT_EQ(Ask(primary.get(), "counts pool"), "COUNTS available=803 in_use=220 held=0");
  EXPECT_EQ(Ask(primary.get(), "churn pool 5000"), "CHURNED errors=0");
  // Objects in the primary's lcore cache are only the primary's to get: flush them so
  // the next process can have everything that is left.
  EXPECT_EQ(Ask(primary.get(), "flush pool"), "FLUSHED lcore=0");
  // The dead secondary's lcore is reclaimed; a new process on it gets the objects the
  // dead one left in that lcore's cache first.
  std::unique_ptr<Subprocess> next = JoinSecondary("1@1");
  ASSERT_EQ(Ask(next.get(), "get pool 10 next"), "GOT 10");
  EXPECT_EQ(Ask(next.get(), "cache pool 1"), "CACHE lcore=1 len=22");
  ASSERT_EQ(Ask(next.get(), "get pool 793 next"), "GOT 793");
  EXPECT_EQ(Ask(next.get(), "get pool 1 x"), "GET-FAILED");
  ASSERT_EQ(Ask(next.get(), "put pool"), "PUT 803");
  EXPECT_EQ(Ask(next.get(), "counts pool"), "COUNTS available=803 in_use=220 held=0");
  EXPECT_EQ(Ask(next.get(), "audit pool"), "AUDIT OK");
  Quit(next.get());
  Quit(primary.get());
}

TEST_P(MempoolTest, BackendsAreResolvedByNameInEachProcess) {
  std::unique_ptr<Subprocess> primary = JoinPrimary({"-l", "0"});
  ASSERT_EQ(Ask(primary.get(), "create pool 255 64 0"), "CREATED pool");
  // A process built without the pool's backend refuses the pool clearly...
  std::unique_ptr<Subprocess> other = JoinSecondary("1@1", {"--forget-ops", "ring_mp_mc"});
  const std::string refused = Ask(other.get(), "lookup pool");
  EXPECT_THAT(refused, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(refused, HasSubstr("backend \"ring_mp_mc\" is not known to this process"));
  // ... while one that knows it, whatever else it knows, uses it.
  std::unique_ptr<Subprocess> same = JoinSecondary("2@1", {"--forget-ops", "ring_sp_sc"});
  EXPECT_EQ(Ask(same.get(), "lookup pool"), "FOUND pool size=255 cache=0 ops=ring_mp_mc");
  EXPECT_EQ(Ask(same.get(), "get pool 255 y"), "GOT 255");
  EXPECT_EQ(Ask(same.get(), "put pool"), "PUT 255");
  // Free from a secondary; then nobody finds it.
  EXPECT_EQ(Ask(same.get(), "free pool"), "FREED pool");
  EXPECT_THAT(Ask(primary.get(), "lookup pool"), HasSubstr("NOT_FOUND"));
  Quit(same.get());
  Quit(other.get());
  Quit(primary.get());
}

// --- Kills inside the cache's fast paths ------------------------------------------
//
// A kill point (base/kill_point.h) SIGKILLs a helper at a named place of a get, put or
// flush. The next process to take the dead one's lcore id inherits its cache (caches
// live in the pool's shared memory). The pool must never hand out an object twice: every
// object carries an ownership word (see tests/mempool_helper.cc) that a get claims and
// a put releases, and the survivors drain the pool to the last object. What a kill may
// cost is a leak: objects the dead process held or had in flight.

constexpr int kKilled = 128 + SIGKILL;

class MempoolKillTest : public testing::GroupTest {
 protected:
  MempoolKillTest() : GroupTest("tests/mempool_helper") {}

  std::unique_ptr<Subprocess> JoinPrimary() { return Join({"-l", "0", "-m", "32", "--no-huge"}); }
  // A secondary on `lcores` ("1@1"), with KEEL_KILL_POINT=kill_point when not empty.
  std::unique_ptr<Subprocess> JoinSecondary(const std::string& lcores,
                                            const std::string& kill_point = "") {
    testing::SpawnOptions options;
    if (!kill_point.empty()) options.env.push_back("KEEL_KILL_POINT=" + kill_point);
    return Join({"--proc-type=secondary", "--lcores", lcores}, {}, options);
  }
  // Kill points exist in debug builds only.
  bool KillPointsCompiledIn(Subprocess* p) { return Ask(p, "killpoints") == "KILLPOINTS on"; }

  // The number after "key=" in `line`, or -1.
  static int64_t Field(const std::string& line, const std::string& key) {
    for (absl::string_view word : absl::StrSplit(line, ' ')) {
      int64_t v;
      if (absl::ConsumePrefix(&word, key + "=") && absl::SimpleAtoi(word, &v)) return v;
    }
    return -1;
  }
};

// Random, or KEEL_MEMPOOL_CHURN_SEED (--test_env) to repeat a run's choices (kill points,
// hits, bulks, delays; not the timing); printed.
uint32_t ChurnSeed() {
  uint32_t seed = std::random_device{}();
  if (const char* s = std::getenv("KEEL_MEMPOOL_CHURN_SEED")) {
    if (!absl::SimpleAtoi(s, &seed)) ADD_FAILURE() << "KEEL_MEMPOOL_CHURN_SEED=" << s;
  }
  std::printf("seed %u (--test_env=KEEL_MEMPOOL_CHURN_SEED=%u repeats its choices)\n", seed, seed);
  return seed;
}

struct KillCase {
  const char* name;
  const char* kill_point;           // KEEL_KILL_POINT
  std::vector<std::string> before;  // the primary's commands before the victim starts
  std::vector<std::string> victim;  // on lcore 1; the last one dies at the kill point
  std::vector<std::string> after;   // the primary's commands after the death
  unsigned available;               // ring + caches afterwards: 255 minus the leak
};

void PrintTo(const KillCase& c, std::ostream* os) { *os << c.name << " at " << c.kill_point; }

// The helper's "helper: DOUBLE" and "helper: STOLEN" lines in `output`.
std::string DoublesIn(const std::string& output) {
  std::vector<absl::string_view> lines;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (absl::StartsWith(line, "helper: ")) lines.push_back(line);
  }
  return absl::StrJoin(lines, "\n");
}

class MempoolKillPointTest : public MempoolKillTest,
                             public ::testing::WithParamInterface<KillCase> {};

// A pool of 255 objects, lcore caches of 32 (flush above 48, refill to 32).
TEST_P(MempoolKillPointTest, TheNextProcessOnTheLcoreGetsNoObjectTwice) {
  const KillCase& c = GetParam();
  std::unique_ptr<Subprocess> primary = JoinPrimary();
  if (!KillPointsCompiledIn(primary.get())) {
    Quit(primary.get());
    GTEST_SKIP() << "kill points are compiled in debug builds only";
  }
  ASSERT_EQ(Ask(primary.get(), "ocreate pool 255 64 32"), "CREATED pool");
  for (const std::string& cmd : c.before) ASSERT_THAT(Ask(primary.get(), cmd), StartsWith("O"));

  std::unique_ptr<Subprocess> victim = JoinSecondary("1@1", c.kill_point);
  for (size_t i = 0; i + 1 < c.victim.size(); ++i) {
    const std::string answer = Ask(victim.get(), c.victim[i]);
    ASSERT_THAT(answer, StartsWith("O")) << c.victim[i];
    ASSERT_EQ(Field(answer, "doubles"), answer.rfind("OGOT", 0) == 0 ? 0 : -1) << answer;
  }
  victim->Send(c.victim.back() + "\n");
  ASSERT_EQ(victim->Wait(), kKilled) << "not killed at " << c.kill_point << ":\n"
                                     << victim->Output();
  for (const std::string& cmd : c.after) ASSERT_THAT(Ask(primary.get(), cmd), StartsWith("O"));

  // The pool counts what the dead process left in the ring and its cache.
  EXPECT_EQ(
      Ask(primary.get(), "counts pool"),
      absl::StrCat("COUNTS available=", c.available, " in_use=", 255 - c.available, " held=0"));
  EXPECT_EQ(Ask(primary.get(), "audit pool"), "AUDIT OK");
  // A new process on lcore 1 inherits the cache and takes everything: each object once.
  std::unique_ptr<Subprocess> next = JoinSecondary("1@1");
  EXPECT_EQ(Ask(next.get(), "drain pool"), absl::StrCat("DRAINED got=", c.available, " doubles=0"));
  EXPECT_EQ(DoublesIn(next->Output()), "");
  // And everything it took goes back.
  EXPECT_THAT(Ask(next.get(), "oput pool 1000"), StartsWith("OPUT"));
  EXPECT_EQ(Ask(next.get(), "counts pool"), absl::StrCat("COUNTS available=", c.available,
                                                         " in_use=", 255 - c.available, " held=0"));
  EXPECT_EQ(Ask(next.get(), "audit pool"), "AUDIT OK");
  Quit(next.get());
  Quit(primary.get());
}

// Counts: the victim's oget 10 refills its cache with 42 (ring 213, cache 32 after
// taking 10); oget 60 goes to the ring directly; oput 30 twice flushes the first 30 at
// the second (30 + 30 > 48).
INSTANTIATE_TEST_SUITE_P(
    CacheWindows, MempoolKillPointTest,
    ::testing::Values(
        // After a flush's enqueue: the objects are in the ring, the cache's len was 0
        // before the ring saw them. The put's own 30 die with the process.
        KillCase{"PutFlushAfterEnqueue",
                 "mempool.flush.after_enqueue",
                 {},
                 {"oget pool 60", "oput pool 30", "oput pool 30"},
                 {},
                 225},
        KillCase{"ExplicitFlushAfterEnqueue",
                 "mempool.flush.after_enqueue",
                 {},
                 {"oget pool 10", "oflush pool"},
                 {},
                 245},
        // A put's objects copied into the cache, its len not yet grown: leaked.
        KillCase{"PutAfterCopy",
                 "mempool.put.after_copy",
                 {},
                 {"oget pool 60", "oput pool 30"},
                 {},
                 195},
        // A refill's objects out of the ring, in slots above len: leaked.
        KillCase{"GetAfterRefill", "mempool.get.after_refill", {}, {"oget pool 10"}, {}, 213},
        // A flush's len shrunk to 0, the objects not yet in the ring: leaked.
        KillCase{"PutFlushAfterLen",
                 "mempool.flush.after_len",
                 {},
                 {"oget pool 60", "oput pool 30", "oput pool 30"},
                 {},
                 195},
        KillCase{"ExplicitFlushAfterLen",
                 "mempool.flush.after_len",
                 {},
                 {"oget pool 10", "oflush pool"},
                 {},
                 213},
        // A get's len shrunk, the objects not yet copied out: leaked. In a refill (the
        // 32 that stay are counted, the 10 taken are not) and from a full cache.
        KillCase{"RefillAfterLen", "mempool.get.after_len", {}, {"oget pool 10"}, {}, 245},
        KillCase{
            "GetAfterLen", "mempool.get.after_len@2", {}, {"oget pool 10", "oget pool 5"}, {}, 240},
        // A get of 40 when the ring holds 13 and the cache 32: 8 from the ring (to the
        // caller, who dies with them), then the cache's 32 (len 0 first).
        KillCase{"CacheAndRingAfterDequeue",
                 "mempool.get.after_dequeue",
                 {"oget pool 200"},
                 {"oget pool 10", "oget pool 40"},
                 {"oput pool 200", "oflush pool"},
                 237},
        KillCase{"CacheAndRingAfterLen",
                 "mempool.get.after_len@2",
                 {"oget pool 200"},
                 {"oget pool 10", "oget pool 40"},
                 {"oput pool 200", "oflush pool"},
                 205}),
    [](const ::testing::TestParamInfo<KillCase>& info) { return info.param.name; });

// Several processes on lcores 1-3 churn one pool through their caches while each is
// armed to die at a random kill point and hit (seeded, printed); a new process takes
// each dead one's lcore. Afterwards nothing was handed out twice, and the pool holds
// every object but those the dead held and at most a cache's worth (2 x 32) plus one
// bulk (40) in flight per kill.
TEST_F(MempoolKillTest, ChurnWithKillsAtRandomKillPointsHandsNothingOutTwice) {
  std::unique_ptr<Subprocess> primary = JoinPrimary();
  if (!KillPointsCompiledIn(primary.get())) {
    Quit(primary.get());
    GTEST_SKIP() << "kill points are compiled in debug builds only";
  }
  // Large enough that the leaks (up to 104 a kill) and what the dead hold (up to 100
  // each) never empty it.
  constexpr unsigned kSize = 16383;
  ASSERT_EQ(Ask(primary.get(), "ocreate pool 16383 64 32"), "CREATED pool");
  const std::vector<std::string> points = {
      "mempool.get.after_len",  "mempool.get.after_refill", "mempool.get.after_dequeue",
      "mempool.put.after_copy", "mempool.flush.after_len",  "mempool.flush.after_enqueue"};
  const uint32_t seed = ChurnSeed();
  std::mt19937 rng(seed);
  constexpr int kKills = 30;
  int kills = 0;
  for (int batch = 0; kills < kKills && batch < 30; ++batch) {
    std::vector<std::unique_ptr<Subprocess>> workers;
    std::vector<std::string> armed;
    for (int lcore = 1; lcore <= 3; ++lcore) {
      armed.push_back(absl::StrCat(points[rng() % points.size()], "@", 1 + rng() % 40));
      workers.push_back(JoinSecondary(absl::StrCat(lcore, "@", lcore % 2), armed.back()));
      workers.back()->Send(absl::StrCat("ochurn pool 3000 ", rng() % 1000000, "\n"));
    }
    for (size_t i = 0; i < workers.size(); ++i) {
      Subprocess* w = workers[i].get();
      const std::string done = testing::Await(w, "OCHURNED", testing::kTimeout);
      if (absl::StartsWith(done, "OCHURNED")) {
        EXPECT_EQ(done, "OCHURNED doubles=0 errors=0");
        Quit(w);
      } else {
        ASSERT_EQ(w->Wait(), kKilled) << w->Output();
        ++kills;
      }
      EXPECT_EQ(DoublesIn(w->Output()), "") << "worker armed at " << armed[i];
    }
  }
  std::printf("%d kills\n", kills);
  EXPECT_GE(kills, kKills / 2);

  std::unique_ptr<Subprocess> checker = JoinSecondary("1@0,2@1,3@1");
  EXPECT_EQ(Ask(checker.get(), "audit pool"), "AUDIT OK");
  // The checker has every lcore cache but the idle primary's (empty): it can take all
  // the pool counts.
  const int64_t available = Field(Ask(checker.get(), "counts pool"), "available");
  const std::string drained = Ask(checker.get(), "drain pool");
  EXPECT_EQ(Field(drained, "doubles"), 0) << drained;
  const int64_t got = Field(drained, "got");
  EXPECT_EQ(got, available) << drained;
  EXPECT_GT(got, kSize / 2);
  const int64_t dead_held = Field(Ask(checker.get(), "owners pool"), "held") - got;
  const int64_t lost = kSize - got - dead_held;
  std::printf("drained %lld, held by the dead %lld, leaked %lld\n", static_cast<long long>(got),
              static_cast<long long>(dead_held), static_cast<long long>(lost));
  EXPECT_GE(lost, 0);
  EXPECT_LE(lost, kills * (2 * 32 + 40));
  EXPECT_THAT(Ask(checker.get(), "oput pool 2000"), StartsWith("OPUT"));
  EXPECT_EQ(Ask(checker.get(), "audit pool"), "AUDIT OK");
  Quit(checker.get());
  Quit(primary.get());
}

// Processes on lcores 1-3, one after another, churn a pool through their caches and are
// SIGKILLed from outside after a random time (seeded, printed): at any instruction, not
// only at kill points. The backend is a single-producer single-consumer ring, which a
// process killed inside an enqueue or dequeue does not stop (the next one starts from
// the published tail); a multi-thread side would stay stopped (see README.md). One
// process at a time uses the pool, as the single-thread ring requires.
TEST_F(MempoolKillTest, ProcessesKilledAtRandomMomentsLeaveNoObjectTwice) {
  std::unique_ptr<Subprocess> primary = JoinPrimary();
  constexpr unsigned kSize = 16383;
  ASSERT_EQ(Ask(primary.get(), "ocreate pool 16383 64 32 ring_sp_sc"), "CREATED pool");
  std::mt19937 rng(ChurnSeed());
  constexpr int kKills = 40;
  for (int i = 0; i < kKills; ++i) {
    const int lcore = 1 + i % 3;
    std::unique_ptr<Subprocess> w = JoinSecondary(absl::StrCat(lcore, "@", lcore % 2));
    w->Send(absl::StrCat("ochurn pool 1000000000 ", rng() % 1000000, "\n"));
    ASSERT_EQ(testing::Await(w.get(), "CHURNING", testing::kTimeout), "CHURNING");
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    w->Kill(SIGKILL);
    ASSERT_EQ(w->Wait(), kKilled) << w->Output();
    EXPECT_EQ(DoublesIn(w->Output()), "") << "kill " << i;
  }
  // One process per lcore id takes what that lcore's cache holds (the first also the
  // ring), one after another.
  std::vector<std::unique_ptr<Subprocess>> checkers;
  int64_t got = 0;
  for (int lcore = 1; lcore <= 3; ++lcore) {
    checkers.push_back(JoinSecondary(absl::StrCat(lcore, "@0")));
    Subprocess* c = checkers.back().get();
    if (lcore == 1) {
      EXPECT_EQ(Ask(c, "audit pool"), "AUDIT OK");
      EXPECT_GT(Field(Ask(c, "counts pool"), "available"), kSize / 2);
    }
    const std::string drained = Ask(c, "drain pool");
    EXPECT_EQ(Field(drained, "doubles"), 0) << drained;
    got += Field(drained, "got");
  }
  const int64_t dead_held = Field(Ask(primary.get(), "owners pool"), "held") - got;
  const int64_t lost = kSize - got - dead_held;
  std::printf("%d kills; drained %lld, held by the dead %lld, leaked %lld\n", kKills,
              static_cast<long long>(got), static_cast<long long>(dead_held),
              static_cast<long long>(lost));
  EXPECT_GE(lost, 0);
  EXPECT_LE(lost, kKills * (2 * 32 + 40));
  for (auto& c : checkers) {
    EXPECT_THAT(Ask(c.get(), "oput pool 20000"), StartsWith("OPUT"));
    Quit(c.get());
  }
  EXPECT_EQ(Ask(primary.get(), "audit pool"), "AUDIT OK");
  Quit(primary.get());
}

INSTANTIATE_TEST_SUITE_P(HugeAndNoHuge, MempoolTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "NoHuge" : "Hugepages";
                         });

}  // namespace
}  // namespace keel
