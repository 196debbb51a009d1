// Timer sets in the group's shared memory, in one process (in-process eal::Init,
// --no-huge): Create / Lookup / Free by name and their errors, and timers against the real
// clock: none runs before its expiry, they run in expiry order, and a periodic one keeps
// its schedule. Across processes: tests/timer_multiprocess_test.cc.
#include "timer/timer.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eal/eal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keel::timer {
namespace {

using ::testing::HasSubstr;

struct Fired {
  uint32_t timer;
  uint64_t at;  // Cycles() when the callback ran
};
std::vector<Fired>* g_fired = nullptr;

void Note(TimerSet&, Timer t, void*) { g_fired->push_back({t.id, Cycles()}); }

class TimerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> args = {
        "--no-huge", "-m", "128", "--file-prefix",
        absl::StrCat("t.timer_test.", getpid(), ".",
                     ::testing::UnitTest::GetInstance()->current_test_info()->name())};
    absl::StatusOr<eal::Options> options = eal::ParseOptions(args);
    ASSERT_TRUE(options.ok()) << options.status();
    const auto first = *options->lcores.begin();
    options->lcores = {first};
    options->main_lcore = first.first;
    ASSERT_TRUE(eal::Init(*options).ok());
    ASSERT_TRUE(RegisterCallback("note", Note).ok());
    g_fired = &fired_;
  }
  void TearDown() override {
    if (eal::Initialized()) {
      EXPECT_TRUE(eal::Cleanup().ok());
    }
  }

  std::vector<Fired> fired_;
};

TEST_F(TimerTest, CreateLookupFree) {
  SetParams params;
  params.name = "sched";
  params.capacity = 64;
  absl::StatusOr<TimerSet> set = Create(params);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->hz(), Hz());
  EXPECT_EQ(Create(params).status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<TimerSet> same = Lookup("sched");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->layout(), set->layout());
  EXPECT_EQ(Lookup("nope").status().code(), absl::StatusCode::kNotFound);
  params.name = "";
  EXPECT_EQ(Create(params).status().code(), absl::StatusCode::kInvalidArgument);

  const Timer t = *set->NewTimer();
  ASSERT_EQ(Reset(*set, t, Hz(), Mode::kSingle, eal::LcoreId(), *set->AddCallback("note")),
            Result::kOk);
  EXPECT_THAT(Free(*set).message(), HasSubstr("1 pending, running or arming timers"));
  EXPECT_EQ(Stop(*set, t), Result::kOk);
  EXPECT_TRUE(Free(*set).ok());
  EXPECT_EQ(Lookup("sched").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(Free(TimerSet()).ok());
}

TEST_F(TimerTest, HooksNeedTheEal) {
  ASSERT_TRUE(eal::Cleanup().ok());
  EXPECT_EQ(GroupHooks().status().code(), absl::StatusCode::kFailedPrecondition);
  SetParams params;
  params.name = "x";
  params.capacity = 1;
  EXPECT_EQ(Create(params).status().code(), absl::StatusCode::kFailedPrecondition);
}

// 200 timers 1..40 ms ahead, Manage in a loop: none before its expiry, all in expiry
// order. How late they ran is printed, not checked: CI runs tests side by side on two
// CPUs, and a preempted Manage loop runs late.
TEST_F(TimerTest, AgainstTheClockNoneEarlyAllInOrder) {
  SetParams params;
  params.name = "clock";
  params.capacity = 256;
  TimerSet set = *Create(params);
  const CallbackId cb = *set.AddCallback("note");
  const unsigned lcore = eal::LcoreId();
  Manage(set);
  std::mt19937_64 rng(1);
  std::vector<uint64_t> expiry(200);
  for (uint32_t i = 0; i < 200; ++i) {
    const Timer t = *set.NewTimer();
    const uint64_t ticks = Hz() / 1000 + rng() % (Hz() / 25);
    ASSERT_EQ(Reset(set, t, ticks, Mode::kSingle, lcore, cb), Result::kOk);
    expiry[t.id] = set.Expiry(t);
  }
  const uint64_t end = Cycles() + Hz() / 20;
  while (Cycles() < end) Manage(set);
  ASSERT_EQ(fired_.size(), 200u);
  std::vector<uint64_t> late;
  for (size_t i = 0; i < fired_.size(); ++i) {
    EXPECT_GE(fired_[i].at, expiry[fired_[i].timer]) << "timer " << fired_[i].timer << " early";
    if (i > 0) {
      EXPECT_GE(expiry[fired_[i].timer], expiry[fired_[i - 1].timer]) << "order";
    }
    late.push_back(fired_[i].at - expiry[fired_[i].timer]);
  }
  std::sort(late.begin(), late.end());
  const double us = 1e6 / static_cast<double>(Hz());
  std::printf("lateness: median %.1f us, 90th %.1f us, max %.1f us\n", late[100] * us,
              late[180] * us, late.back() * us);
}

// A 1 ms periodic timer over 200 periods: the n-th run is never before start + n periods
// (no drift), and none is lost (a late Manage catches up).
TEST_F(TimerTest, PeriodicAgainstTheClock) {
  SetParams params;
  params.name = "tick";
  params.capacity = 4;
  TimerSet set = *Create(params);
  const Timer t = *set.NewTimer();
  Manage(set);
  const uint64_t period = Hz() / 1000;
  ASSERT_EQ(Reset(set, t, period, Mode::kPeriodic, eal::LcoreId(), *set.AddCallback("note")),
            Result::kOk);
  const uint64_t first = set.Expiry(t);
  while (fired_.size() < 200) Manage(set);
  for (size_t n = 0; n < fired_.size(); ++n) {
    EXPECT_GE(fired_[n].at, first + n * period) << "run " << n;
  }
  // A late Manage may have caught up several periods at once.
  EXPECT_EQ(set.Expiry(t), first + fired_.size() * period);
  EXPECT_EQ(StopSync(set, t), Result::kOk);
}

}  // namespace
}  // namespace keel::timer
