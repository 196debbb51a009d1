#include "timer/timer_set.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/kill_point.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keel::timer {
namespace {

using ::testing::HasSubstr;
namespace ti = timer_internal;

constexpr uint64_t kHz = 1'000'000'000;  // ticks are nanoseconds here: granule 512

// Shared memory (MAP_SHARED, so forked children see it at the same address).
class Memory {
 public:
  explicit Memory(size_t size) : size_(size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    mem_ = p;
  }
  ~Memory() { munmap(mem_, size_); }
  void* get() const { return mem_; }

 private:
  size_t size_;
  void* mem_;
};

// What each callback run records, in shared memory.
struct Log {
  std::atomic<uint64_t> count{0};
  struct Run {
    uint32_t timer;
    unsigned lcore;
    uint64_t now;
  } runs[1 << 16];
};

// Tokens of "processes" the tests declare dead.
std::atomic<uint32_t> g_dead_token{0};
bool AliveHook(uint32_t token) { return token != g_dead_token.load(); }
std::atomic<uint32_t> g_lcore_owner{0};
uint32_t LcoreOwnerHook(unsigned) { return g_lcore_owner.load(); }

ProcessHooks Hooks(uint32_t self) {
  ProcessHooks hooks;
  hooks.self = self;
  hooks.alive = AliveHook;
  hooks.lcore_owner = LcoreOwnerHook;
  return hooks;
}

Log* g_log = nullptr;
thread_local uint64_t t_now = 0;  // the time the test passed to Manage
thread_local unsigned t_lcore = 0;

void Record(TimerSet&, Timer t, void*) {
  const uint64_t i = g_log->count.fetch_add(1);
  if (i < (1 << 16)) g_log->runs[i] = {t.id, t_lcore, t_now};
}
void CountArg(TimerSet&, Timer, void* arg) {
  static_cast<std::atomic<uint64_t>*>(arg)->fetch_add(1);
}

class TimerSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_dead_token = 0;
    g_lcore_owner = 0;
    ASSERT_TRUE(RegisterCallback("record", Record).ok());
    ASSERT_TRUE(RegisterCallback("count", CountArg).ok());
    log_mem_ = std::make_unique<Memory>(sizeof(Log));
    g_log = new (log_mem_->get()) Log;
  }

  TimerSet Make(uint32_t capacity, uint32_t self = 1) {
    SetParams params;
    params.name = "test";
    params.capacity = capacity;
    params.hz = kHz;
    params.lcores_hint = 4;
    const size_t size = *TimerSet::MemorySize(params);
    mem_ = std::make_unique<Memory>(size);
    absl::StatusOr<TimerSet> set = TimerSet::Init(mem_->get(), params, Hooks(self));
    EXPECT_TRUE(set.ok()) << set.status();
    return *set;
  }

  unsigned Manage(TimerSet& set, unsigned lcore, uint64_t now) {
    t_now = now;
    t_lcore = lcore;
    return set.Manage(lcore, now);
  }

  Arm At(uint64_t expiry, unsigned lcore, CallbackId cb, void* arg = nullptr) {
    Arm arm;
    arm.expiry = expiry;
    arm.lcore = lcore;
    arm.callback = cb;
    arm.arg = arg;
    return arm;
  }

  std::unique_ptr<Memory> mem_;
  std::unique_ptr<Memory> log_mem_;
};

TEST_F(TimerSetTest, RefusesBadParams) {
  SetParams p;
  p.name = "";
  p.capacity = 10;
  p.hz = kHz;
  EXPECT_THAT(TimerSet::MemorySize(p).status().message(), HasSubstr("1 to 63"));
  p.name = std::string(64, 'x');
  EXPECT_FALSE(TimerSet::MemorySize(p).ok());
  p.name = "ok";
  p.capacity = 0;
  EXPECT_THAT(TimerSet::MemorySize(p).status().message(), HasSubstr("capacity 0"));
  p.capacity = kMaxTimers + 1;
  EXPECT_FALSE(TimerSet::MemorySize(p).ok());
  p.capacity = 10;
  p.hz = 0;
  EXPECT_THAT(TimerSet::MemorySize(p).status().message(), HasSubstr("hz is 0"));
  p.hz = kHz;
  p.lcores_hint = 0;
  EXPECT_THAT(TimerSet::MemorySize(p).status().message(), HasSubstr("lcores_hint 0"));
  p.lcores_hint = 1;
  EXPECT_TRUE(TimerSet::MemorySize(p).ok());
  void* unaligned = reinterpret_cast<void*>(uintptr_t{8});
  EXPECT_THAT(TimerSet::Init(unaligned, p, Hooks(1)).status().message(),
              HasSubstr("not 64-byte aligned"));
}

TEST_F(TimerSetTest, AttachChecksMagicVersionAndGeometry) {
  TimerSet set = Make(100);
  ti::SetHeader* h = set.layout();
  EXPECT_TRUE(TimerSet::Attach(h, Hooks(2)).ok());
  EXPECT_THAT(TimerSet::Attach(h, Hooks(0)).status().message(), HasSubstr("process token 0"));
  h->layout_version = 99;
  EXPECT_THAT(TimerSet::Attach(h, Hooks(2)).status().message(),
              HasSubstr("layout version 99, this process has timer layout version 1"));
  h->layout_version = ti::kLayoutVersion;
  h->chunks_offset += 64;
  EXPECT_THAT(TimerSet::Attach(h, Hooks(2)).status().message(), HasSubstr("inconsistent"));
  h->chunks_offset -= 64;
  h->magic = 0;
  EXPECT_THAT(TimerSet::Attach(h, Hooks(2)).status().message(), HasSubstr("not a timer set"));
}

TEST_F(TimerSetTest, TimersAndCallbackNames) {
  TimerSet set = Make(3);
  std::vector<Timer> timers;
  for (int i = 0; i < 3; ++i) timers.push_back(*set.NewTimer());
  EXPECT_EQ(timers[0].id, 0u);
  EXPECT_EQ(timers[2].id, 2u);
  EXPECT_THAT(set.NewTimer().status().message(), HasSubstr("all 3 timers are in use"));
  const CallbackId cb = *set.AddCallback("record");
  EXPECT_EQ(set.AddCallback("record")->value, cb.value);
  EXPECT_NE(set.AddCallback("count")->value, cb.value);
  EXPECT_FALSE(set.AddCallback("").ok());
  EXPECT_FALSE(set.AddCallback(std::string(48, 'c')).ok());
  for (uint32_t i = 2; i < kMaxCallbacks; ++i) {
    ASSERT_TRUE(set.AddCallback(absl::StrCat("cb", i)).ok());
  }
  EXPECT_THAT(set.AddCallback("one-too-many").status().message(), HasSubstr("all 256"));

  ASSERT_EQ(set.Reset(timers[1], At(100, 0, cb), 0), Result::kOk);
  EXPECT_THAT(set.DeleteTimer(timers[1]).message(), HasSubstr("timer 1 is pending"));
  EXPECT_EQ(set.Stop(timers[1], 0), Result::kOk);
  EXPECT_TRUE(set.DeleteTimer(timers[1]).ok());
  EXPECT_THAT(set.DeleteTimer(timers[1]).message(), HasSubstr("not in use"));
  EXPECT_THAT(set.DeleteTimer(Timer{7}).message(), HasSubstr("not one of its 3"));
  EXPECT_EQ(set.Reset(timers[1], At(100, 0, cb), 0), Result::kBadTimer);
  EXPECT_EQ(set.NewTimer()->id, 1u);
}

TEST_F(TimerSetTest, RegisterCallbackRefusesBadInput) {
  EXPECT_FALSE(RegisterCallback("", Record).ok());
  EXPECT_FALSE(RegisterCallback("null", nullptr).ok());
  EXPECT_TRUE(RegisterCallback("record", Record).ok());  // the same function again
  EXPECT_THAT(RegisterCallback("record", CountArg).message(), HasSubstr("another function"));
}

TEST_F(TimerSetTest, ResetRefusesBadArguments) {
  TimerSet set = Make(4);
  const Timer t = *set.NewTimer();
  const CallbackId cb = *set.AddCallback("record");
  EXPECT_EQ(set.Reset(Timer{99}, At(1, 0, cb), 0), Result::kBadTimer);
  EXPECT_EQ(set.Reset(Timer{3}, At(1, 0, cb), 0), Result::kBadTimer);  // not handed out
  EXPECT_EQ(set.Reset(t, At(1, 128, cb), 0), Result::kBadLcore);
  EXPECT_EQ(set.Reset(t, At(1, 0, CallbackId{5}), 0), Result::kBadCallback);
  EXPECT_EQ(set.Stop(Timer{99}, 0), Result::kBadTimer);
  EXPECT_FALSE(set.Pending(t));
  EXPECT_EQ(ResultName(Result::kBusy), "busy");
}

TEST_F(TimerSetTest, FiresOnceAtItsExpiryNotBefore) {
  TimerSet set = Make(16);
  const CallbackId cb = *set.AddCallback("record");
  Manage(set, 0, 1000);  // the wheel starts at 1000
  const Timer t = *set.NewTimer();
  ASSERT_EQ(set.Reset(t, At(5000, 0, cb), 0), Result::kOk);
  EXPECT_TRUE(set.Pending(t));
  EXPECT_EQ(set.Expiry(t), 5000u);
  EXPECT_EQ(Manage(set, 0, 4999), 0u);
  EXPECT_FALSE(set.Due(0, 4999));
  EXPECT_TRUE(set.Due(0, 5000));
  EXPECT_EQ(Manage(set, 0, 5000), 1u);
  EXPECT_FALSE(set.Pending(t));
  EXPECT_EQ(Manage(set, 0, 1'000'000'000), 0u);
  ASSERT_EQ(g_log->count.load(), 1u);
  EXPECT_EQ(g_log->runs[0].now, 5000u);
  // An expiry in the past is due at once.
  ASSERT_EQ(set.Reset(t, At(10, 0, cb), 0), Result::kOk);
  EXPECT_EQ(Manage(set, 0, 1'000'000'001), 1u);
}

// Random arms, re-arms and stops against a model; each Manage must run exactly the
// model's due timers, in (expiry, id) order.
TEST_F(TimerSetTest, ExpiryOrderMatchesModel) {
  constexpr uint32_t kTimers = 4000;
  TimerSet set = Make(kTimers);
  const CallbackId cb = *set.AddCallback("record");
  std::vector<Timer> timers;
  for (uint32_t i = 0; i < kTimers; ++i) timers.push_back(*set.NewTimer());
  std::mt19937_64 rng(7);
  uint64_t now = 123'456;
  Manage(set, 0, now);
  std::map<uint32_t, uint64_t> model;  // timer -> expiry
  for (int round = 0; round < 300; ++round) {
    for (int op = 0; op < 40; ++op) {
      const uint32_t id = static_cast<uint32_t>(rng() % kTimers);
      if (rng() % 5 == 0) {
        ASSERT_EQ(set.Stop(timers[id], 0), Result::kOk);
        model.erase(id);
        continue;
      }
      // Spans from the current granule to hours ahead, many ties and near ones.
      uint64_t ahead;
      switch (rng() % 4) {
        case 0:
          ahead = rng() % 2048;
          break;
        case 1:
          ahead = rng() % 1'000'000;
          break;
        case 2:
          ahead = (rng() % 50) * 100'000;
          break;
        default:
          ahead = rng() % 10'000'000'000'000ull;
          break;
      }
      ASSERT_EQ(set.Reset(timers[id], At(now + ahead, 0, cb), 0), Result::kOk);
      model[id] = now + ahead;
    }
    now += (round % 10 == 9) ? rng() % 100'000'000'000ull : rng() % 3'000'000;
    g_log->count = 0;
    const unsigned ran = Manage(set, 0, now);
    std::vector<std::pair<uint64_t, uint32_t>> expected;
    for (auto it = model.begin(); it != model.end();) {
      if (it->second <= now) {
        expected.push_back({it->second, it->first});
        it = model.erase(it);
      } else {
        ++it;
      }
    }
    std::sort(expected.begin(), expected.end());
    ASSERT_EQ(ran, expected.size()) << "round " << round;
    ASSERT_EQ(g_log->count.load(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(g_log->runs[i].timer, expected[i].second) << "round " << round << " run " << i;
    }
  }
  for (const auto& [id, expiry] : model) EXPECT_TRUE(set.Pending(timers[id]));
  // Nothing is lost at the far end either.
  g_log->count = 0;
  EXPECT_EQ(Manage(set, 0, ~uint64_t{0} >> 1), model.size());
}

// Timers armed nearly in expiry order, run by one late Manage (whole slots due at once
// take the path without cascading) or by many: in exact order either way.
TEST_F(TimerSetTest, NearlyInOrderArmsRunInExactOrder) {
  constexpr uint32_t kTimers = 60000;
  for (const bool one_manage : {true, false}) {
    SCOPED_TRACE(one_manage ? "one late Manage" : "many");
    TimerSet set = Make(kTimers);
    const CallbackId cb = *set.AddCallback("record");
    Manage(set, 0, 1);
    std::mt19937_64 rng(9);
    std::vector<std::pair<uint64_t, uint32_t>> expected;
    for (uint32_t i = 0; i < kTimers; ++i) {
      const Timer t = *set.NewTimer();
      const uint64_t expiry = 1000 + i * 5000 + rng() % 10000;  // up to 2 spacings late
      ASSERT_EQ(set.Reset(t, At(expiry, 0, cb), 0), Result::kOk);
      expected.push_back({expiry, t.id});
    }
    std::sort(expected.begin(), expected.end());
    g_log->count = 0;
    if (one_manage) {
      EXPECT_EQ(Manage(set, 0, uint64_t{kTimers} * 5000 + 20000), kTimers);
    } else {
      for (uint64_t now = 0; now <= uint64_t{kTimers} * 5000 + 20000; now += 777'777) {
        Manage(set, 0, now);
      }
      Manage(set, 0, uint64_t{kTimers} * 5000 + 20000);
    }
    ASSERT_EQ(g_log->count.load(), kTimers);
    for (uint32_t i = 0; i < kTimers; ++i) {
      ASSERT_EQ(g_log->runs[i].timer, expected[i].second) << "run " << i;
    }
  }
}

void Periodic(TimerSet&, Timer, void* arg) {
  auto* times = static_cast<std::vector<uint64_t>*>(arg);
  times->push_back(t_now);
}

TEST_F(TimerSetTest, PeriodicDoesNotDrift) {
  ASSERT_TRUE(RegisterCallback("periodic", Periodic).ok());
  TimerSet set = Make(4);
  const CallbackId cb = *set.AddCallback("periodic");
  const Timer t = *set.NewTimer();
  std::vector<uint64_t> times;
  constexpr uint64_t kStart = 10'000, kPeriod = 1'000'003;
  Manage(set, 0, 1);
  Arm arm = At(kStart, 0, cb, &times);
  arm.period = kPeriod;
  ASSERT_EQ(set.Reset(t, arm, 0), Result::kOk);
  // Manage runs late by up to most of a period each time, never a whole one.
  std::mt19937_64 rng(3);
  for (uint64_t k = 0; k < 1000; ++k) {
    const uint64_t expiry = kStart + k * kPeriod;
    EXPECT_EQ(Manage(set, 0, expiry - 1), 0u);
    EXPECT_EQ(Manage(set, 0, expiry + rng() % (kPeriod - 1)), 1u) << "period " << k;
    ASSERT_EQ(set.Expiry(t), expiry + kPeriod);
  }
  EXPECT_EQ(times.size(), 1000u);
  EXPECT_EQ(set.MissedPeriods(t), 0u);
  EXPECT_TRUE(set.Pending(t));
  EXPECT_EQ(set.Stop(t, 0), Result::kOk);
  EXPECT_EQ(Manage(set, 0, ~uint64_t{0} >> 2), 0u);
}

TEST_F(TimerSetTest, LatePeriodicCatchesUpOrSkips) {
  ASSERT_TRUE(RegisterCallback("periodic", Periodic).ok());
  TimerSet set = Make(4);
  const CallbackId cb = *set.AddCallback("periodic");
  const Timer catch_up = *set.NewTimer();
  const Timer skip = *set.NewTimer();
  std::vector<uint64_t> a, b;
  Manage(set, 0, 1);
  Arm arm = At(1000, 0, cb, &a);
  arm.period = 100;
  ASSERT_EQ(set.Reset(catch_up, arm, 0), Result::kOk);
  arm.arg = &b;
  arm.late = Late::kSkip;
  ASSERT_EQ(set.Reset(skip, arm, 0), Result::kOk);
  // 1000, 1100, ..., 1950: ten periods due at 1950.
  EXPECT_EQ(Manage(set, 0, 1950), 11u);
  EXPECT_EQ(a.size(), 10u);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(set.MissedPeriods(catch_up), 9u);
  EXPECT_EQ(set.MissedPeriods(skip), 9u);
  EXPECT_EQ(set.Expiry(catch_up), 2000u);
  EXPECT_EQ(set.Expiry(skip), 2000u);
  EXPECT_EQ(Manage(set, 0, 2000), 2u);
  EXPECT_EQ(set.Stats()[0].missed_periods, 18u);
}

// A periodic timer at the top of the tick space saturates at "never" instead of wrapping
// around to "now" (which would catch up forever).
TEST_F(TimerSetTest, PeriodicAtTheTopOfTheTickSpace) {
  ASSERT_TRUE(RegisterCallback("periodic", Periodic).ok());
  TimerSet set = Make(4);
  const Timer t = *set.NewTimer();
  std::vector<uint64_t> times;
  constexpr uint64_t kTop = ~uint64_t{0};
  Manage(set, 0, kTop - 1000);
  Arm arm = At(kTop - 500, 0, *set.AddCallback("periodic"), &times);
  arm.period = 400;
  ASSERT_EQ(set.Reset(t, arm, 0), Result::kOk);
  EXPECT_TRUE(set.Busy() == 1);
  EXPECT_EQ(Manage(set, 0, kTop - 50), 2u);  // kTop - 500 and kTop - 100
  EXPECT_EQ(set.Expiry(t), kTop);
  EXPECT_EQ(times.size(), 2u);
}

struct SelfArm {
  CallbackId cb;
  int runs = 0;
};
void RearmAtNow(TimerSet& set, Timer t, void* arg) {
  auto* self = static_cast<SelfArm*>(arg);
  ++self->runs;
  Arm arm;
  arm.expiry = t_now;  // due at once, again
  arm.lcore = t_lcore;
  arm.callback = self->cb;
  arm.arg = arg;
  EXPECT_EQ(set.Reset(t, arm, t_lcore), Result::kOk);
}

TEST_F(TimerSetTest, ACallbackRearmingItselfAtNowRunsOncePerManage) {
  ASSERT_TRUE(RegisterCallback("rearm_now", RearmAtNow).ok());
  TimerSet set = Make(4);
  SelfArm self{*set.AddCallback("rearm_now")};
  const Timer t = *set.NewTimer();
  Manage(set, 0, 1);
  ASSERT_EQ(set.Reset(t, At(5, 0, self.cb, &self), 0), Result::kOk);
  for (int i = 1; i <= 5; ++i) {
    EXPECT_EQ(Manage(set, 0, 100 + i), 1u);
    EXPECT_EQ(self.runs, i);
  }
  EXPECT_TRUE(set.Pending(t));
}

TEST_F(TimerSetTest, StopAndRearmReplaceTheOldExpiry) {
  TimerSet set = Make(8);
  const CallbackId cb = *set.AddCallback("record");
  Manage(set, 0, 1);
  const Timer a = *set.NewTimer();
  const Timer b = *set.NewTimer();
  ASSERT_EQ(set.Reset(a, At(1000, 0, cb), 0), Result::kOk);
  ASSERT_EQ(set.Reset(a, At(3000, 0, cb), 0), Result::kOk);  // re-arm later
  ASSERT_EQ(set.Reset(b, At(2000, 0, cb), 0), Result::kOk);
  ASSERT_EQ(set.Stop(b, 0), Result::kOk);
  ASSERT_EQ(set.Stop(b, 0), Result::kOk);  // already stopped
  EXPECT_EQ(Manage(set, 0, 2500), 0u);
  EXPECT_EQ(Manage(set, 0, 3000), 1u);
  EXPECT_EQ(g_log->runs[0].timer, a.id);
  EXPECT_EQ(Manage(set, 0, 100000), 0u);
}

// Arms and stops from other threads (as other processes would: another token) reach the
// owning lcore; every arm not stopped runs exactly once, none after a successful stop.
TEST_F(TimerSetTest, RemoteArmsAndStopsRunExactlyOnce) {
  constexpr uint32_t kTimers = 20000;
  TimerSet set = Make(kTimers);
  TimerSet other = *TimerSet::Attach(set.layout(), Hooks(2));
  std::vector<std::atomic<uint64_t>> runs(kTimers);
  std::vector<std::atomic<int>> stopped(kTimers);
  for (auto& r : runs) r = 0;
  for (auto& s : stopped) s = 0;
  const CallbackId cb = *set.AddCallback("count");
  std::vector<Timer> timers;
  for (uint32_t i = 0; i < kTimers; ++i) timers.push_back(*set.NewTimer());
  std::atomic<bool> done{false};
  std::atomic<uint64_t> clock{1};
  std::thread owner([&] {
    while (!done.load()) set.Manage(1, clock.fetch_add(3));
  });
  std::vector<std::thread> remotes;
  for (int r = 0; r < 2; ++r) {
    remotes.emplace_back([&, r] {
      std::mt19937 rng(r);
      for (uint32_t i = r; i < kTimers; i += 2) {
        Arm arm = At(clock.load() + rng() % 5000, 1, cb, &runs[i]);
        ASSERT_EQ(other.Reset(timers[i], arm, ~0u), Result::kOk);
        if (rng() % 3 == 0) {
          const Result stop = other.StopSync(timers[i], ~0u);
          ASSERT_EQ(stop, Result::kOk);
          stopped[i] = runs[i].load() == 0 ? 1 : 2;  // 2: it ran before the stop
        }
      }
    });
  }
  for (auto& t : remotes) t.join();
  const uint64_t end = clock.load() + 10'000;
  while (clock.load() < end) std::this_thread::yield();
  done = true;
  owner.join();
  set.Manage(1, end + 1'000'000);
  for (uint32_t i = 0; i < kTimers; ++i) {
    if (stopped[i] == 1) {
      EXPECT_EQ(runs[i].load(), 0u) << "timer " << i << " ran after a successful stop";
    } else {
      EXPECT_EQ(runs[i].load(), 1u) << "timer " << i;
    }
    EXPECT_FALSE(set.Pending(timers[i]));
  }
}

// Stop racing expiry: once Stop returned kOk, the callback never starts.
std::atomic<int>* g_flags = nullptr;
std::atomic<int> g_violations{0};
void CheckNotStopped(TimerSet&, Timer t, void*) {
  if (g_flags[t.id].load() != 0) g_violations.fetch_add(1);
  g_flags[t.id].store(2);
}

TEST_F(TimerSetTest, StopRacingExpiry) {
  ASSERT_TRUE(RegisterCallback("check_not_stopped", CheckNotStopped).ok());
  constexpr uint32_t kTimers = 50000;
  TimerSet set = Make(kTimers);
  std::vector<std::atomic<int>> flags(kTimers);
  for (auto& f : flags) f = 0;
  g_flags = flags.data();
  g_violations = 0;
  const CallbackId cb = *set.AddCallback("check_not_stopped");
  std::vector<Timer> timers;
  set.Manage(0, 1);
  for (uint32_t i = 0; i < kTimers; ++i) {
    timers.push_back(*set.NewTimer());
    ASSERT_EQ(set.Reset(timers[i], At(1 + i * 10, 0, cb), 0), Result::kOk);
  }
  std::atomic<bool> done{false};
  std::thread owner([&] {
    for (uint64_t now = 1; now < kTimers * 10 + 100; now += 7) set.Manage(0, now);
    done = true;
  });
  uint64_t stopped = 0, busy = 0;
  for (uint32_t i = kTimers; i-- > 0;) {
    const Result r = set.Stop(timers[i], ~0u);
    if (r == Result::kOk) {
      int expected = 0;
      if (flags[i].compare_exchange_strong(expected, 1)) ++stopped;
    } else {
      ASSERT_EQ(r, Result::kBusy);
      ++busy;
    }
  }
  owner.join();
  EXPECT_EQ(g_violations.load(), 0);
  uint64_t ran = 0;
  for (auto& f : flags) ran += f.load() == 2;
  EXPECT_EQ(ran + stopped, kTimers);
  EXPECT_GT(stopped, 0u);
}

// A Sync call inside a callback on a timer whose callback runs on another lcore gets an
// error instead of waiting (the two callbacks would wait on each other).
std::atomic<int> g_phase{0};
TimerSet* g_set = nullptr;
Timer g_other;
std::atomic<int> g_sync_result{-1};
void Blocker(TimerSet&, Timer, void*) {
  g_phase = 1;
  while (g_phase.load() != 2) std::this_thread::yield();
}
void SyncInside(TimerSet& set, Timer, void*) {
  while (g_phase.load() != 1) std::this_thread::yield();
  g_sync_result = static_cast<int>(set.StopSync(g_other, 2));
  g_phase = 2;
}

TEST_F(TimerSetTest, SyncCallsInsideACallbackNeverWait) {
  ASSERT_TRUE(RegisterCallback("blocker", Blocker).ok());
  ASSERT_TRUE(RegisterCallback("sync_inside", SyncInside).ok());
  TimerSet set = Make(4);
  g_set = &set;
  g_phase = 0;
  const Timer a = *set.NewTimer();
  const Timer b = *set.NewTimer();
  g_other = a;
  set.Manage(1, 1);
  set.Manage(2, 1);
  ASSERT_EQ(set.Reset(a, At(10, 1, *set.AddCallback("blocker")), 1), Result::kOk);
  ASSERT_EQ(set.Reset(b, At(10, 2, *set.AddCallback("sync_inside")), 2), Result::kOk);
  std::thread l1([&] { set.Manage(1, 20); });
  std::thread l2([&] { set.Manage(2, 20); });
  l1.join();
  l2.join();
  EXPECT_EQ(g_sync_result.load(), static_cast<int>(Result::kWouldWaitInCallback));
  // Outside a callback StopSync waits and succeeds.
  EXPECT_EQ(set.StopSync(a, ~0u), Result::kOk);
}

TEST_F(TimerSetTest, StopAllAndStats) {
  TimerSet set = Make(100);
  const CallbackId cb = *set.AddCallback("record");
  set.Manage(3, 1);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(set.Reset(*set.NewTimer(), At(1000 + i, i < 6 ? 3 : 4, cb), 3), Result::kOk);
  }
  std::vector<LcoreStats> stats = set.Stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].lcore, 3u);
  EXPECT_EQ(stats[0].pending, 6u);
  EXPECT_EQ(stats[0].entries, 6u);
  EXPECT_EQ(stats[1].lcore, 4u);
  EXPECT_EQ(stats[1].pending, 4u);
  EXPECT_EQ(set.StopAll(3), 6u);
  EXPECT_EQ(set.Stats()[0].pending, 0u);
  EXPECT_EQ(set.Manage(3, 5000), 0u);
  set.Manage(4, 1);
  EXPECT_EQ(set.Manage(4, 5000), 4u);
}

// Arms of a callback the lcore's process lacks: refused when that process published
// what it has, counted by its Manage otherwise.
TEST_F(TimerSetTest, MissingCallbacks) {
  TimerSet set = Make(8);
  const CallbackId known = *set.AddCallback("record");
  const CallbackId unknown = *set.AddCallback("nobody-has-this");
  const Timer t = *set.NewTimer();
  // Local: this process knows it lacks it.
  set.Manage(0, 1);
  EXPECT_EQ(set.Reset(t, At(10, 0, unknown), 0), Result::kNoCallbackOnLcore);
  // Remote, with the lcore's owner known (token 1 published its callbacks at Manage).
  TimerSet other = *TimerSet::Attach(set.layout(), Hooks(2));
  g_lcore_owner = 1;
  EXPECT_EQ(other.Reset(t, At(10, 0, unknown), ~0u), Result::kNoCallbackOnLcore);
  EXPECT_EQ(other.Reset(t, At(10, 0, known), ~0u), Result::kOk);
  // Unknown owner: allowed, and counted when it expires.
  g_lcore_owner = 0;
  ASSERT_EQ(other.Stop(t, ~0u), Result::kOk);
  EXPECT_EQ(other.Reset(t, At(10, 0, unknown), ~0u), Result::kOk);
  EXPECT_EQ(set.Manage(0, 100), 0u);
  EXPECT_EQ(set.Stats()[0].missing_callback, 1u);
  EXPECT_FALSE(set.Pending(t));
}

// A process that owned lcore 2 dies: the next owner of lcore 2 (another token) takes
// over its wheel and runs its timers, once each, at their time.
TEST_F(TimerSetTest, NewOwnerAdoptsADeadOwnersTimers) {
  constexpr uint32_t kTimers = 3000;
  TimerSet dead = Make(kTimers, 1);
  std::vector<std::atomic<uint64_t>> runs(kTimers);
  for (auto& r : runs) r = 0;
  const CallbackId cb = *dead.AddCallback("count");
  dead.Manage(2, 1);
  std::mt19937 rng(5);
  for (uint32_t i = 0; i < kTimers; ++i) {
    ASSERT_EQ(dead.Reset(*dead.NewTimer(), At(100 + rng() % 1'000'000, 2, cb, &runs[i]), 2),
              Result::kOk);
  }
  const unsigned first = dead.Manage(2, 500'000);
  EXPECT_GT(first, 0u);
  g_dead_token = 1;
  TimerSet heir = *TimerSet::Attach(dead.layout(), Hooks(2));
  EXPECT_EQ(heir.Manage(2, 2'000'000) + first, kTimers);
  for (uint32_t i = 0; i < kTimers; ++i) EXPECT_EQ(runs[i].load(), 1u) << i;
  EXPECT_EQ(heir.Stats()[0].adoptions, 2u);  // the dead one's first Manage, then ours
}

TEST_F(TimerSetTest, StaleEntriesAreCompacted) {
  TimerSet set = Make(100);
  const CallbackId cb = *set.AddCallback("record");
  const Timer t = *set.NewTimer();
  set.Manage(0, 1);
  // A watchdog re-armed far ahead 100000 times leaves at most a bounded number of
  // entries, and only the last arm runs.
  for (uint64_t i = 0; i < 100'000; ++i) {
    ASSERT_EQ(set.Reset(t, At(1'000'000'000 + i, 0, cb), 0), Result::kOk);
    if (i % 1000 == 0) set.Manage(0, 2 + i);
  }
  set.Manage(0, 200'000);
  EXPECT_LT(set.Stats()[0].entries, 2200u);
  EXPECT_EQ(set.Manage(0, 2'000'000'000), 1u);
  EXPECT_EQ(g_log->count.load(), 1u);
}

TEST_F(TimerSetTest, AMillionTimers) {
  constexpr uint32_t kTimers = 1'000'000;
  TimerSet set = Make(kTimers);
  const CallbackId cb = *set.AddCallback("count");
  std::atomic<uint64_t> runs{0};
  set.Manage(0, 1);
  std::mt19937_64 rng(11);
  for (uint32_t i = 0; i < kTimers; ++i) {
    ASSERT_EQ(set.Reset(*set.NewTimer(), At(10 + rng() % 1'000'000'000, 0, cb, &runs), 0),
              Result::kOk);
  }
  EXPECT_EQ(set.Stats()[0].pending, kTimers);
  uint64_t ran = 0;
  for (uint64_t now = 0; now <= 1'000'000'010; now += 10'000'000) ran += set.Manage(0, now);
  EXPECT_EQ(ran, kTimers);
  EXPECT_EQ(runs.load(), kTimers);
  EXPECT_EQ(set.Stats()[0].pending, 0u);
}

// --- Kills (debug builds: kill points compile away with NDEBUG) ---------------------

#ifndef NDEBUG
// Forks a child that runs `body` with `point` armed (it dies there), and waits for it.
void RunChildKilledAt(const char* point, const std::function<void()>& body) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    SetKillPointForTest(point);
    body();
    _exit(0);  // the kill point was not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << point << ": the child was not killed there (status " << status << ")";
}

TEST_F(TimerSetTest, KillWhileArmingLeavesAStoppedTimer) {
  for (const char* point : {"timer.reset.config", "timer.notify.bit", "timer.reset.publish"}) {
    SCOPED_TRACE(point);
    TimerSet set = Make(8, 1);
    const CallbackId cb = *set.AddCallback("record");
    const Timer t = *set.NewTimer();
    set.Manage(0, 1);
    g_log->count = 0;
    RunChildKilledAt(point, [&] {
      TimerSet child = *TimerSet::Attach(set.layout(), Hooks(7));
      child.Reset(t, At(100, 0, cb), ~0u);
    });
    g_dead_token = 7;
    EXPECT_EQ(set.Busy(), 0u);  // a dead holder's arm is stopped, not counted as busy
    // The owner finds it (or not) and recovers it at its sweep, a second later.
    set.Manage(0, 50);
    set.Manage(0, 2 * kHz);
    EXPECT_EQ(g_log->count.load(), 0u);
    EXPECT_FALSE(set.Pending(t));
    EXPECT_EQ(set.Reset(t, At(3 * kHz, 0, cb), 0), Result::kOk);
    EXPECT_EQ(set.Manage(0, 3 * kHz), 1u);
    g_dead_token = 0;
  }
}

// Killed inside the control path, under the set's lock: NewTimer leaks the timer it took
// (the next one comes from the stack), AddCallback adds nothing (the name's slot is
// reused); the robust lock is taken back.
TEST_F(TimerSetTest, KillInTheControlPathLeaksAtWorst) {
  TimerSet set = Make(8, 1);
  ASSERT_EQ(set.NewTimer()->id, 0u);
  RunChildKilledAt("timer.new_timer.counted", [&] {
    TimerSet child = *TimerSet::Attach(set.layout(), Hooks(7));
    child.NewTimer().IgnoreError();
  });
  g_dead_token = 7;
  EXPECT_EQ(set.NewTimer()->id, 2u);  // timer 1 leaked, never handed out twice
  EXPECT_EQ(set.Reset(Timer{1}, At(10, 0, *set.AddCallback("record")), 0), Result::kBadTimer);
  RunChildKilledAt("timer.add_callback.named", [&] {
    TimerSet child = *TimerSet::Attach(set.layout(), Hooks(8));
    child.AddCallback("half-added").IgnoreError();
  });
  const CallbackId next = *set.AddCallback("after");
  EXPECT_EQ(next.value, 1u);  // "half-added" never got an id
  EXPECT_EQ(set.AddCallback("half-added")->value, 2u);
  g_dead_token = 0;
}

TEST_F(TimerSetTest, KillOfTheOwnerMidManageLosesNoTimer) {
  for (const char* point :
       {"timer.manage.cascade", "timer.manage.batch", "timer.fire.running", "timer.refill.taken"}) {
    SCOPED_TRACE(point);
    constexpr uint32_t kTimers = 2000;
    TimerSet set = Make(kTimers, 1);
    Memory runs_mem(kTimers * sizeof(std::atomic<uint64_t>));
    auto* runs = new (runs_mem.get()) std::atomic<uint64_t>[kTimers]();
    const CallbackId cb = *set.AddCallback("count");
    std::vector<Timer> timers;
    for (uint32_t i = 0; i < kTimers; ++i) timers.push_back(*set.NewTimer());
    RunChildKilledAt(point, [&] {
      TimerSet child = *TimerSet::Attach(set.layout(), Hooks(7));
      child.Manage(5, 1);
      for (uint32_t i = 0; i < kTimers; ++i) {
        child.Reset(timers[i], At(100 + i * 1000, 5, cb, &runs[i]), 5);
      }
      for (uint64_t now = 1; now < kTimers * 1000 + 200; now += 777) child.Manage(5, now);
    });
    g_dead_token = 7;
    set.Manage(5, kTimers * 1000 + 1000);
    int running_at_death = 0;
    for (uint32_t i = 0; i < kTimers; ++i) {
      const uint64_t n = runs[i].load();
      if (n == 0) ++running_at_death;
      EXPECT_LE(n, 1u) << i;
      EXPECT_FALSE(set.Pending(timers[i])) << i;
    }
    // Only a timer whose callback was starting when its owner died may not have run
    // (at most once); with arms still to come (refill), the rest were never armed.
    const std::string p = point;
    if (p == "timer.fire.running") {
      EXPECT_EQ(running_at_death, 1);
    } else if (p != "timer.refill.taken") {
      EXPECT_EQ(running_at_death, 0);
    }
    g_dead_token = 0;
  }
}
#endif  // NDEBUG

}  // namespace
}  // namespace keel::timer
