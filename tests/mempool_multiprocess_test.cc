// Mempools across real processes: objects got in one process and put back by another,
// per-lcore caches of several processes on one pool, a secondary killed while it
// holds objects, backends resolved by name in each process.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

INSTANTIATE_TEST_SUITE_P(HugeAndNoHuge, MempoolTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "NoHuge" : "Hugepages";
                         });

}  // namespace
}  // namespace keel
