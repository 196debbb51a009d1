// Timer sets across real processes: every test starts timer_helper processes in a group
// of its own (--no-huge): a primary on lcore 0 that creates the set and arms timers, and
// secondaries whose worker lcore runs Manage ("serve"). Each callback run adds one to
// its timer's counter in shared memory, so "counts" tells, from any process, how many
// timers ran exactly once, never, or more than once.
#include <signal.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"
#include "tests/subprocess.h"

namespace keel {
namespace {

using ::keel::testing::Ask;
using ::keel::testing::AwaitAnswer;
using ::keel::testing::RunfilePath;
using ::keel::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class TimerTest : public testing::GroupTest {
 protected:
  TimerTest() : GroupTest("tests/timer_helper") {}

  std::unique_ptr<Subprocess> Primary() {
    std::unique_ptr<Subprocess> p = Join({"-l", "0", "-m", "64", "--no-huge"});
    EXPECT_EQ(Ask(p.get(), "create t 4096"), "CREATED t");
    EXPECT_EQ(Ask(p.get(), "counts 0 1"), "COUNTS zeros=1 ones=0 more=0");
    EXPECT_EQ(Ask(p.get(), "alloc t 4096"), "ALLOCATED first=0");
    return p;
  }

  // A secondary with main lcore `main` and worker lcore `worker` (both on the machine's
  // CPUs 0 and 1), serving set t on the worker, running callback "count".
  std::unique_ptr<Subprocess> Server(unsigned main, unsigned worker,
                                     const testing::SpawnOptions& options = {}) {
    std::unique_ptr<Subprocess> p =
        Join({"--proc-type", "secondary", "--lcores", absl::StrCat(main, "@0,", worker, "@1"),
              "--main-lcore", absl::StrCat(main)},
             {}, options);
    EXPECT_EQ(Ask(p.get(), "register count"), "REGISTERED count");
    EXPECT_EQ(Ask(p.get(), "serve t"), absl::StrCat("SERVING lcore=", worker));
    return p;
  }

  // Stops a server's Manage loop and quits it.
  static void QuitServer(Subprocess* p) {
    EXPECT_THAT(Ask(p, "unserve"), StartsWith("UNSERVED"));
    Quit(p);
  }
};

// Process A arms timers for an lcore of process B; B's callback runs each exactly once,
// and none that A stopped in time.
TEST_F(TimerTest, ArmForAnotherProcessesLcoreRunsOnce) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> server = Server(2, 3);
  // 200 stopped before their expiry, then 1000 that expire later: lcore 3 runs in
  // expiry order, so once the 1000 ran, the 200 would have run too had they not stopped.
  EXPECT_EQ(Ask(primary.get(), "arm t 1000 200 300 3 count"), "ARMED ok=200 first_error=none");
  EXPECT_EQ(Ask(primary.get(), "stop t 1000 200"), "STOPPED ok=200 busy=0");
  EXPECT_EQ(Ask(primary.get(), "arm t 0 1000 400 3 count"), "ARMED ok=1000 first_error=none");
  EXPECT_EQ(AwaitAnswer(primary.get(), "counts 0 1000", "COUNTS zeros=0 ones=1000 more=0"),
            "COUNTS zeros=0 ones=1000 more=0");
  EXPECT_EQ(Ask(primary.get(), "counts 1000 200"), "COUNTS zeros=200 ones=0 more=0");
  // The secondary arms for nobody's lcore 9 (pending until an owner comes), then for
  // itself (a local arm), later: once its own ran, lcore 3 has not run lcore 9's.
  EXPECT_EQ(Ask(server.get(), "arm t 3000 10 10 9 count"), "ARMED ok=10 first_error=none");
  EXPECT_EQ(Ask(server.get(), "arm t 2000 100 20 3 count"), "ARMED ok=100 first_error=none");
  EXPECT_EQ(AwaitAnswer(primary.get(), "counts 2000 100", "COUNTS zeros=0 ones=100 more=0"),
            "COUNTS zeros=0 ones=100 more=0");
  EXPECT_EQ(Ask(primary.get(), "counts 3000 10"), "COUNTS zeros=10 ones=0 more=0");
  EXPECT_THAT(Ask(primary.get(), "stats t"),
              AllOf(HasSubstr(" 3:pending=0,ran=1100,missing=0"), HasSubstr(" 9:pending=10,")));
  EXPECT_THAT(Ask(server.get(), "unserve"), StartsWith("UNSERVED ran=1100"));
  Quit(server.get());
  Quit(primary.get());
}

// The process owning lcore 3 is SIGKILLed with timers pending there: they stay pending,
// and the next process to take lcore 3 runs each of them once.
TEST_F(TimerTest, NextOwnerOfAKilledLcoreRunsItsTimers) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> server = Server(2, 3);
  EXPECT_EQ(Ask(primary.get(), "arm t 0 500 50 3 count"), "ARMED ok=500 first_error=none");
  EXPECT_EQ(Ask(primary.get(), "arm t 500 500 1500 3 count"), "ARMED ok=500 first_error=none");
  EXPECT_EQ(AwaitAnswer(primary.get(), "counts 0 500", "COUNTS zeros=0 ones=500 more=0"),
            "COUNTS zeros=0 ones=500 more=0");
  server->Kill(SIGKILL);
  server->Wait();
  EXPECT_THAT(Ask(primary.get(), "stats t"), HasSubstr(" 3:pending=500,"));
  std::unique_ptr<Subprocess> heir = Server(4, 3);
  EXPECT_EQ(AwaitAnswer(primary.get(), "counts 0 1000", "COUNTS zeros=0 ones=1000 more=0"),
            "COUNTS zeros=0 ones=1000 more=0");
  EXPECT_THAT(Ask(primary.get(), "stats t"),
              HasSubstr(" 3:pending=0,ran=1000,missing=0,adoptions=2"));
  QuitServer(heir.get());
  Quit(primary.get());
}

#ifndef NDEBUG
// Killed inside Manage at the start of its tenth callback: that timer is not run again
// (at most once), every other runs once, by the next owner.
TEST_F(TimerTest, OwnerKilledAsACallbackStarts) {
  std::unique_ptr<Subprocess> primary = Primary();
  testing::SpawnOptions killed;
  killed.env = {"KEEL_KILL_POINT=timer.fire.running@10"};
  std::unique_ptr<Subprocess> server = Server(2, 3, killed);
  EXPECT_EQ(Ask(primary.get(), "arm t 0 100 50 3 count"), "ARMED ok=100 first_error=none");
  EXPECT_EQ(server->Wait(), 128 + SIGKILL);
  std::unique_ptr<Subprocess> heir = Server(4, 3);
  EXPECT_EQ(AwaitAnswer(primary.get(), "counts 0 100", "COUNTS zeros=1 ones=99 more=0"),
            "COUNTS zeros=1 ones=99 more=0");
  EXPECT_THAT(Ask(primary.get(), "stats t"), HasSubstr(" 3:pending=0,"));
  QuitServer(heir.get());
  Quit(primary.get());
}
#endif

// An arm of a callback the lcore's process lacks is refused once that process published
// its callbacks; expiries of one it never heard of are counted, never a crash.
TEST_F(TimerTest, CallbacksTheLcoresProcessLacks) {
  std::unique_ptr<Subprocess> primary = Primary();
  EXPECT_EQ(Ask(primary.get(), "register elsewhere"), "REGISTERED elsewhere");
  EXPECT_EQ(Ask(primary.get(), "arm t 0 1 100000 0 elsewhere"), "ARMED ok=1 first_error=none");
  std::unique_ptr<Subprocess> server = Server(2, 3);  // published what it has
  EXPECT_EQ(Ask(primary.get(), "arm t 1 1 10 3 elsewhere"),
            "ARMED ok=0 first_error=no such callback in the lcore's process");
  // A name the set never had when the server published: not known, allowed, counted.
  EXPECT_EQ(Ask(primary.get(), "arm t 2 1 10 3 brand-new"), "ARMED ok=1 first_error=none");
  EXPECT_THAT(AwaitAnswer(primary.get(), "stats t", " 3:pending=0,ran=0,missing=1"),
              HasSubstr(" 3:pending=0,ran=0,missing=1"));
  EXPECT_EQ(Ask(primary.get(), "counts 2 1"), "COUNTS zeros=1 ones=0 more=0");
  QuitServer(server.get());
  Quit(primary.get());
}

// procinfo shows the group's clock and its timer sets' pending timers per lcore.
TEST_F(TimerTest, ProcinfoShowsPendingTimersPerLcore) {
  std::unique_ptr<Subprocess> primary = Primary();
  EXPECT_EQ(Ask(primary.get(), "register count"), "REGISTERED count");
  EXPECT_EQ(Ask(primary.get(), "arm t 0 7 600000 5 count"), "ARMED ok=7 first_error=none");
  EXPECT_EQ(Ask(primary.get(), "arm t 7 3 600000 6 count"), "ARMED ok=3 first_error=none");
  std::unique_ptr<Subprocess> info =
      Subprocess::Start({RunfilePath("tools/procinfo/procinfo"), "--file-prefix", prefix_});
  ASSERT_EQ(info->Wait(), 0) << info->Output();
  const std::string out = info->Output();
  EXPECT_THAT(out, HasSubstr("clock: tsc at "));
  EXPECT_THAT(out, ::testing::ContainsRegex("\n  t +4096 +5 +7 "));
  EXPECT_THAT(out, ::testing::ContainsRegex("\n  t +4096 +6 +3 "));
  std::unique_ptr<Subprocess> json = Subprocess::Start(
      {RunfilePath("tools/procinfo/procinfo"), "--file-prefix", prefix_, "--", "--json"});
  ASSERT_EQ(json->Wait(), 0) << json->Output();
  EXPECT_THAT(json->Output(), HasSubstr("\"timer_sets\": [{\"name\": \"t\", \"capacity\": 4096, "
                                        "\"lcores\": [{\"lcore\": 5, \"pending\": 7,"));
  Quit(primary.get());
}

}  // namespace
}  // namespace keel
