// keel's timer sets (timer/timer_set.h) beside DPDK 22.11's rte_timer, in one process run,
// and a table of keel/DPDK ratios at the end. Both sides: 1M (2^20) single-shot timers on
// one lcore (lcore 0, the main thread, CPU 0), a callback that increments a counter.
// Cycles per operation: rdtsc around the whole pass over the count (TSC ticks, which both
// sides' clocks count here). Cases:
//   arm           Reset of 1M stopped timers, expiries 10 to 20 s ahead
//   re-arm        Reset of 1M pending timers (10-20 s ahead) to new expiries 10-20 s ahead
//   stop          Stop of 1M pending timers
//   expire        1M timers armed (untimed) with expiries in the next 50 ms; once that
//                 window has passed, ONE Manage() / rte_timer_manage() runs all 1M
//                 callbacks: the cycles of that call over 1M (the counter must reach 1M)
// each with expiries both
//   scattered     uniform over the window, timer after timer (the skiplist's worst case)
//   in order      timer i at i * spacing + a jitter of up to 2 spacings (a near append)
// and, with 1M timers pending 10-20 s ahead (scattered):
//   idle Manage   10M calls with nothing due: keel's Manage(0, timer::Cycles()) against
//                 rte_timer_manage() (which reads the clock itself), cycles per call
//   Cycles()      10M calls of timer::Cycles() (the TSC: no eal::Init here) against
//                 rte_get_timer_cycles()
// and keel alone:
//   Due           `now = Cycles(); if (set.Due(0, now)) set.Manage(0, now);` per
//                 iteration, for loops that already hold the time, beside the same loop
//                 reading the clock only (the difference is Due's own cost)
//   HPET (fake)   HpetClock::Read() and Cycles() with it as the group's clock, against a
//                 fake HPET: a memfd laid out like its registers, so a memory read, NOT
//                 MMIO (a real HPET read costs far more). DPDK has no HPET here: Debian
//                 builds it without RTE_LIBEAL_USE_HPET (rte_get_timer_cycles() is rdtsc)
// Targets, printed beside the ratios (never a failure): arm, re-arm and stop keel/DPDK
// <= 0.1; expire <= 0.3; idle Manage <= 1.0 (the clock read included).
//
//   bazel run -c opt //timer:timer_benchmark                       # about 2 min on 2 cores
//   bazel run -c opt //timer:timer_benchmark -- --benchmark_repetitions=5
//   bazel run -c opt //timer:timer_benchmark -- --benchmark_filter=Arm
//
// Same ticks on both sides: keel's Arm.expiry is absolute, now + ticks[i] with `now` read
// once per pass; rte_timer_reset takes ticks[i] and reads the clock inside, at each call.
// Timers are armed, re-armed and stopped in index order, so both sides walk their timer
// memory the same way. Nothing may fire while arm, re-arm, stop and idle Manage are
// timed: each side's callback counter (and keel's Stats()[0].ran) is checked unchanged
// after the pass, else that benchmark fails with an error. Each pass is prepared untimed:
// the timers stopped or pending as the case needs (DPDK's pending timers are reused when
// armed less than 4 s before, with the same spread). keel's stops and re-arms leave stale
// wheel entries behind, which a later Manage compacts (or drops when met); so that every
// keel pass starts from a compact wheel, keel's preparation stops its timers and makes
// lcore 0's next Manage take its slow path (an arm and stop of one timer from "lcore 1"
// notifies lcore 0) that compacts the wheel. That compaction is keel's deferred cost of a
// stop: the stop case times it and prints it beside the stop (informational).
//
// Runs: each benchmark iteration is one keel pass and one DPDK pass, the side going first
// alternating; each case runs 3 times per side by default (--benchmark_repetitions), the
// cases and repetitions interleaved at random. The final table gives each side's median,
// the median of the per-run ratios (keel's run i over DPDK's run i) and every run, marking
// runs whose measuring thread lost its CPU to something else on the machine.
//
// Memory: keel's set (TimerSet::MemorySize for 1M timers) and DPDK's 1M struct rte_timer
// are each mmap(MAP_HUGETLB) of 2 MiB pages, else mmap + madvise(MADV_HUGEPAGE); DPDK's
// EAL runs on 2 MiB hugepages (-m 128, its files unlinked at once), else --no-huge.
// stderr says which.
#include <fcntl.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_timer.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

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
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "timer/clock.h"
#include "timer/cycles.h"
#include "timer/timer_set.h"
#include "tools/bench/dpdk_peer.h"
#include "tools/bench/figures.h"

namespace {

namespace timer = keel::timer;

// The measuring loops call both sides' fast paths as an application would (keel's Manage
// and Due are header-inline; Reset, Stop and DPDK's calls are out-of-line either way).
#define KEEL_BENCH_INLINE __attribute__((always_inline)) inline

constexpr uint32_t kTimers = 1u << 20;
constexpr uint64_t kLoopCalls = 10'000'000;  // idle Manage, Due, the clocks
constexpr unsigned kLcore = 0;
constexpr unsigned kOtherLcore = 1;  // keel's preparation notifies lcore 0 "from" it
constexpr double kArmTarget = 0.1;
constexpr double kExpireTarget = 0.3;
constexpr double kIdleTarget = 1.0;
constexpr double kNoTarget = -1;
// DPDK's pending timers are reused by a later pass while armed less than this ago: their
// first expiry is 10 s after the arm, and no pass lasts seconds.
constexpr double kFreshSeconds = 4;
// A callback count that is not checked (the clock loops).
constexpr uint64_t kUnchecked = ~uint64_t{0};

uint64_t g_hz = 0;  // TSC ticks per second (timer::Hz() without the EAL: the TSC)

enum SpreadKind { kScattered = 0, kInOrder = 1 };
const char* const kSpreadName[2] = {"scattered", "in order"};

// The ticks both sides arm with, by spread: two sets 10 to 20 s ahead (arms and re-arms
// alternate between them) and one within the next 50 ms (the expire case).
struct Spread {
  std::vector<uint64_t> far[2];
  std::vector<uint64_t> near;
  uint64_t near_max = 0;
};
Spread g_spreads[2];

void MakeTicks() {
  std::mt19937_64 rng(0x6b65656c74696d72ULL);
  const uint64_t far_base = 10 * g_hz;
  const uint64_t far_window = 10 * g_hz;
  const uint64_t near_window = g_hz / 20;
  const uint64_t far_spacing = far_window / kTimers;
  const uint64_t near_spacing = std::max<uint64_t>(1, near_window / kTimers);
  for (int kind = 0; kind < 2; ++kind) {
    Spread& s = g_spreads[kind];
    for (auto& far : s.far) far.resize(kTimers);
    s.near.resize(kTimers);
    for (uint32_t i = 0; i < kTimers; ++i) {
      for (auto& far : s.far) {
        far[i] = kind == kScattered ? far_base + rng() % far_window
                                    : far_base + i * far_spacing + rng() % (2 * far_spacing);
      }
      s.near[i] =
          kind == kScattered ? rng() % near_window : i * near_spacing + rng() % (2 * near_spacing);
      s.near_max = std::max(s.near_max, s.near[i]);
    }
  }
}

// --- Timing --------------------------------------------------------------------------

inline uint64_t StartTsc() {
  _mm_lfence();
  const uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

inline uint64_t StopTsc() {
  unsigned aux;
  const uint64_t t = __rdtscp(&aux);
  _mm_lfence();
  return t;
}

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

// Sleeps until the TSC reaches `deadline`.
void WaitUntil(uint64_t deadline) {
  for (;;) {
    const uint64_t now = timer::ReadTsc();
    if (now >= deadline) return;
    const uint64_t left_us = (deadline - now) * 1'000'000 / g_hz;
    std::this_thread::sleep_for(std::chrono::microseconds(std::max<uint64_t>(1, left_us)));
  }
}

// --- The two sides -------------------------------------------------------------------

// What a side's timers are now: stopped, or pending with the far ticks `far` of `spread`,
// armed at TSC `armed_at`.
struct Held {
  bool pending = false;
  int spread = 0;
  int far = 0;
  uint64_t armed_at = 0;
};

const char* const kSideName[2] = {"keel", "DPDK"};

void CountKeel(timer::TimerSet&, timer::Timer, void* arg) { ++*static_cast<uint64_t*>(arg); }

struct Keel {
  static constexpr int kSide = 0;
  static inline timer::TimerSet set;
  static inline std::vector<timer::Timer> timers;
  static inline timer::CallbackId callback;
  static inline uint64_t fired = 0;  // the callback's counter
  static inline Held held;

  static uint64_t Now() { return timer::Cycles(); }
  KEEL_BENCH_INLINE static bool Arm(uint32_t i, uint64_t now, uint64_t ticks) {
    timer::Arm arm;
    arm.expiry = now + ticks;
    arm.lcore = kLcore;
    arm.callback = callback;
    arm.arg = &fired;
    return set.Reset(timers[i], arm, kLcore) == timer::Result::kOk;
  }
  KEEL_BENCH_INLINE static bool Stop(uint32_t i) {
    return set.Stop(timers[i], kLcore) == timer::Result::kOk;
  }
  KEEL_BENCH_INLINE static unsigned Manage() { return set.Manage(kLcore, timer::Cycles()); }

  static std::optional<timer::LcoreStats> Lcore0() {
    for (const timer::LcoreStats& st : set.Stats()) {
      if (st.lcore == kLcore) return st;
    }
    return std::nullopt;
  }
  // Callbacks the set counted on lcore 0.
  static uint64_t Ran() {
    const std::optional<timer::LcoreStats> st = Lcore0();
    return st ? st->ran : 0;
  }

  // With every timer stopped: makes lcore 0's next Manage take its slow path (a timer
  // armed and stopped "from lcore 1" notifies lcore 0), which compacts the stale entries
  // that stops left in the wheel. Returns the TSC ticks of that Manage.
  static uint64_t Compact() {
    timer::Arm arm;
    arm.expiry = timer::Cycles() + 3600 * g_hz;
    arm.lcore = kLcore;
    arm.callback = callback;
    arm.arg = &fired;
    set.Reset(timers[0], arm, kOtherLcore);
    set.Stop(timers[0], kOtherLcore);
    const uint64_t start = StartTsc();
    set.Manage(kLcore, timer::Cycles());
    return StopTsc() - start;
  }
};

struct Dpdk {
  static constexpr int kSide = 1;
  static inline rte_timer* timers = nullptr;
  static inline uint64_t fired = 0;
  static inline Held held;

  static void Count(rte_timer*, void* arg) { ++*static_cast<uint64_t*>(arg); }

  static uint64_t Now() { return rte_get_timer_cycles(); }
  KEEL_BENCH_INLINE static bool Arm(uint32_t i, uint64_t, uint64_t ticks) {
    return rte_timer_reset(&timers[i], ticks, SINGLE, rte_lcore_id(), Count, &fired) == 0;
  }
  KEEL_BENCH_INLINE static bool Stop(uint32_t i) { return rte_timer_stop(&timers[i]) == 0; }
  KEEL_BENCH_INLINE static unsigned Manage() { return rte_timer_manage() == 0 ? 1 : 0; }
};

// Arms every timer with `ticks`; returns how many arms succeeded.
template <typename Side>
uint64_t ArmAll(const std::vector<uint64_t>& ticks) {
  const uint64_t now = Side::Now();
  uint64_t ok = 0;
  for (uint32_t i = 0; i < kTimers; ++i) ok += Side::Arm(i, now, ticks[i]);
  return ok;
}

template <typename Side>
uint64_t StopAll() {
  uint64_t ok = 0;
  for (uint32_t i = 0; i < kTimers; ++i) ok += Side::Stop(i);
  return ok;
}

// Untimed: every timer of the side stopped (keel: and its wheel compacted).
template <typename Side>
std::string MakeStopped() {
  const char* side = kSideName[Side::kSide];
  if (Side::held.pending) {
    const uint64_t stopped = StopAll<Side>();
    Side::held.pending = false;
    if (stopped != kTimers)
      return absl::StrFormat("%s: %u of %u stops succeeded", side, stopped, kTimers);
  }
  if constexpr (Side::kSide == Keel::kSide) {
    Keel::Compact();
    const std::optional<timer::LcoreStats> st = Keel::Lcore0();
    if (!st) return "keel: lcore 0 is missing from Stats()";
    if (st->pending != 0 || st->entries != 0 || st->no_space != 0) {
      return absl::StrFormat(
          "keel: after stopping every timer and a Manage: %u pending, %u wheel entries, "
          "%u no_space",
          st->pending, st->entries, st->no_space);
    }
  }
  return "";
}

// Untimed: every timer pending 10-20 s ahead with ticks of `spread`. keel arms afresh
// (from a compact wheel); DPDK keeps timers armed recently with the same spread.
template <typename Side>
std::string MakePending(int spread) {
  Held& h = Side::held;
  if constexpr (Side::kSide == Dpdk::kSide) {
    if (h.pending && h.spread == spread &&
        static_cast<double>(timer::ReadTsc() - h.armed_at) < kFreshSeconds * g_hz) {
      return "";
    }
  }
  if (std::string e = MakeStopped<Side>(); !e.empty()) return e;
  const uint64_t armed_at = timer::ReadTsc();
  const uint64_t ok = ArmAll<Side>(g_spreads[spread].far[0]);
  h = {true, spread, 0, armed_at};
  if (ok != kTimers) {
    return absl::StrFormat("%s: %u of %u arms succeeded", kSideName[Side::kSide], ok, kTimers);
  }
  return "";
}

// --- Jobs ----------------------------------------------------------------------------

// What one side does in a case: an untimed `setup` before each pass (returns an error or
// ""), the timed `pass`, which returns what it counted (successes, calls): it must be
// `want`; `ops` divides the pass's cycles. `fired` is the callbacks the pass must run
// (kUnchecked: none checked), checked on the side's callback counter and, for keel, on
// Stats(). `deferred` (keel's stop): cycles of deferred work measured after the pass.
struct Job {
  uint64_t want = kTimers;
  uint64_t ops = kTimers;
  uint64_t fired = 0;
  const char* what = "successes";
  std::function<std::string()> setup = [] { return std::string(); };
  std::function<uint64_t()> pass;
  std::function<uint64_t()> deferred;
};

template <typename Side>
Job ArmJob(int spread) {
  Job j;
  j.what = "arms succeeded";
  j.setup = [] { return MakeStopped<Side>(); };
  j.pass = [spread] {
    const uint64_t armed_at = timer::ReadTsc();
    const uint64_t ok = ArmAll<Side>(g_spreads[spread].far[0]);
    Side::held = {true, spread, 0, armed_at};
    return ok;
  };
  return j;
}

template <typename Side>
Job RearmJob(int spread) {
  Job j;
  j.what = "re-arms succeeded";
  j.setup = [spread] { return MakePending<Side>(spread); };
  j.pass = [spread] {
    const int to = 1 - Side::held.far;  // new expiries: the other set
    const uint64_t armed_at = timer::ReadTsc();
    const uint64_t ok = ArmAll<Side>(g_spreads[spread].far[to]);
    Side::held = {true, spread, to, armed_at};
    return ok;
  };
  return j;
}

template <typename Side>
Job StopJob(int spread) {
  Job j;
  j.what = "stops succeeded";
  j.setup = [spread] { return MakePending<Side>(spread); };
  j.pass = [] {
    const uint64_t ok = StopAll<Side>();
    Side::held.pending = false;
    return ok;
  };
  if constexpr (Side::kSide == Keel::kSide) j.deferred = [] { return Keel::Compact(); };
  return j;
}

template <typename Side>
Job ExpireJob(int spread) {
  Job j;
  j.want = 1;
  j.ops = kTimers;
  j.fired = kTimers;
  j.what = "Manage calls";
  j.setup = [spread] {
    if (std::string e = MakeStopped<Side>(); !e.empty()) return e;
    const uint64_t ok = ArmAll<Side>(g_spreads[spread].near);
    // Single shots: the timed Manage stops them all.
    Side::held.pending = false;
    if (ok != kTimers) {
      return absl::StrFormat("%s: %u of %u arms succeeded", kSideName[Side::kSide], ok, kTimers);
    }
    // DPDK's expiries count from its clock read in each arm: wait from the last.
    WaitUntil(timer::ReadTsc() + g_spreads[spread].near_max + g_hz / 1000);
    return std::string();
  };
  j.pass = [] {
    benchmark::DoNotOptimize(Side::Manage());
    return uint64_t{1};
  };
  return j;
}

template <typename Side>
Job IdleManageJob(int) {
  Job j;
  j.want = kLoopCalls;
  j.ops = kLoopCalls;
  j.what = "Manage calls";
  j.setup = [] { return MakePending<Side>(kScattered); };
  j.pass = [] {
    uint64_t n = 0;
    for (; n < kLoopCalls; ++n) {
      unsigned r = Side::Manage();
      benchmark::DoNotOptimize(r);
    }
    return n;  // what ran is checked on the callback counters
  };
  return j;
}

template <typename Side>
Job DueJob(int) {
  Job j;
  j.want = kLoopCalls;
  j.ops = kLoopCalls;
  j.what = "iterations";
  if constexpr (Side::kSide == Keel::kSide) {
    j.setup = [] { return MakePending<Keel>(kScattered); };
    j.pass = [] {
      uint64_t n = 0;
      for (; n < kLoopCalls; ++n) {
        const uint64_t now = timer::Cycles();
        if (ABSL_PREDICT_FALSE(Keel::set.Due(kLcore, now))) Keel::set.Manage(kLcore, now);
      }
      return n;
    };
  } else {
    j.fired = kUnchecked;
    j.pass = [] {
      for (uint64_t n = 0; n < kLoopCalls; ++n) {
        uint64_t now = timer::Cycles();
        benchmark::DoNotOptimize(now);
      }
      return kLoopCalls;
    };
  }
  return j;
}

template <typename Side>
Job CyclesJob(int) {
  Job j;
  j.want = kLoopCalls;
  j.ops = kLoopCalls;
  j.fired = kUnchecked;
  j.what = "calls";
  j.pass = [] {
    uint64_t sum = 0;
    for (uint64_t n = 0; n < kLoopCalls; ++n) {
      if constexpr (Side::kSide == Keel::kSide) {
        sum += timer::Cycles();
      } else {
        sum += rte_get_timer_cycles();
      }
    }
    benchmark::DoNotOptimize(sum);
    return kLoopCalls;
  };
  return j;
}

// --- The fake HPET -------------------------------------------------------------------

// A memfd laid out like the HPET's registers (IA-PC HPET 1.0a), at 14.318 MHz, enabled,
// its counter set once: HpetClock maps it read-only as it maps /dev/hpet. A memory read.
struct FakeHpet {
  int fd = -1;
  timer::HpetShared shared;
  std::optional<timer::HpetClock> clock;
  std::string error;

  explicit FakeHpet(bool counter64) {
    constexpr uint32_t kPeriodFs = 69'841'279;  // 14.318 MHz
    fd = memfd_create(counter64 ? "fake-hpet-64" : "fake-hpet-32", 0);
    if (fd < 0 || ftruncate(fd, timer::kHpetMapSize) != 0) {
      error = absl::StrCat("memfd: ", std::strerror(errno));
      return;
    }
    const uint64_t caps = (uint64_t{kPeriodFs} << 32) | (counter64 ? timer::kHpetCounter64 : 0);
    const uint64_t config = timer::kHpetEnabled;
    const uint64_t counter = 0x12345678;
    if (pwrite(fd, &caps, 8, timer::kHpetCapabilities) != 8 ||
        pwrite(fd, &config, 8, timer::kHpetConfig) != 8 ||
        pwrite(fd, &counter, 8, timer::kHpetCounter) != 8) {
      error = absl::StrCat("pwrite: ", std::strerror(errno));
      return;
    }
    absl::StatusOr<timer::HpetClock> c = timer::HpetClock::Map(fd, &shared);
    if (!c.ok()) {
      error = c.status().ToString();
      return;
    }
    clock.emplace(std::move(*c));
  }
  ~FakeHpet() {
    clock.reset();
    if (fd >= 0) close(fd);
  }
};

FakeHpet* g_hpet64 = nullptr;
FakeHpet* g_hpet32 = nullptr;

// kind 0: Read() of the 64-bit fake; 1: of the 32-bit fake (the counter still, so no
// compare-and-swap of the extension word); 2: Cycles() with the 64-bit fake as the group's
// clock (the pointer eal::Init would publish, set by hand for the pass).
template <typename Side>
Job HpetJob(int kind) {
  Job j;
  j.want = kLoopCalls;
  j.ops = kLoopCalls;
  j.fired = kUnchecked;
  j.what = "reads";
  j.setup = [kind] {
    const FakeHpet* f = kind == 1 ? g_hpet32 : g_hpet64;
    return f->clock ? std::string() : absl::StrCat("keel: fake HPET: ", f->error);
  };
  j.pass = [kind] {
    const timer::HpetClock& clock = *(kind == 1 ? g_hpet32 : g_hpet64)->clock;
    uint64_t sum = 0;
    if (kind == 2) {
      keel::timer_internal::g_hpet_clock.store(&clock, std::memory_order_release);
      for (uint64_t n = 0; n < kLoopCalls; ++n) sum += timer::Cycles();
      keel::timer_internal::g_hpet_clock.store(nullptr, std::memory_order_release);
    } else {
      for (uint64_t n = 0; n < kLoopCalls; ++n) sum += clock.Read();
    }
    benchmark::DoNotOptimize(sum);
    return kLoopCalls;
  };
  return j;
}

// --- Running -------------------------------------------------------------------------

template <typename Side>
uint64_t Fired() {
  return Side::fired;
}

// Runs a case on both sides (or keel's alone when jobs[1] has no pass), pass by pass:
// each benchmark iteration is one pass of each, the side going first alternating, so a
// slow spell of the machine falls on both and each run's ratio compares passes made
// moments apart. Reports each side's cycles per operation, its cpu share (the measuring
// thread's CPU time over the pass's wall time: below 1 when the machine took the CPU
// away) and keel's deferred cycles per operation.
void Paired(benchmark::State& state, Job (&jobs)[2]) {
  const int sides = jobs[1].pass ? 2 : 1;
  double cycles[2] = {0, 0};
  double wall[2] = {0, 0};
  double cpu[2] = {0, 0};
  double deferred[2] = {0, 0};
  uint64_t passes = 0;
  for (auto _ : state) {
    double both = 0;
    for (int k = 0; k < sides; ++k) {
      const int side = sides == 1 ? 0 : static_cast<int>((passes + k) % 2);
      Job& j = jobs[side];
      std::string error = j.setup();
      const uint64_t fired0 = side == 0 ? Fired<Keel>() : Fired<Dpdk>();
      const uint64_t ran0 = side == 0 && error.empty() && j.fired != kUnchecked ? Keel::Ran() : 0;
      uint64_t got = 0;
      if (error.empty()) {
        const double cpu_start = ThreadCpuNs();
        const double start = NowNs();
        const uint64_t tsc = StartTsc();
        got = j.pass();
        const uint64_t took = StopTsc() - tsc;
        const double ns = NowNs() - start;
        cpu[side] += ThreadCpuNs() - cpu_start;
        wall[side] += ns;
        cycles[side] += static_cast<double>(took);
        both += ns;
      }
      if (error.empty() && got != j.want) {
        error = absl::StrFormat("%s: %u %s of %u", kSideName[side], got, j.what, j.want);
      }
      if (error.empty() && j.fired != kUnchecked) {
        const uint64_t fired = (side == 0 ? Fired<Keel>() : Fired<Dpdk>()) - fired0;
        const uint64_t ran = side == 0 ? Keel::Ran() - ran0 : fired;
        if (fired != j.fired || ran != j.fired) {
          error = absl::StrFormat(
              "%s: %u callbacks ran during the timed pass (the set counted %u), want %u",
              kSideName[side], fired, ran, j.fired);
        }
      }
      if (error.empty() && j.deferred) deferred[side] += static_cast<double>(j.deferred());
      if (!error.empty()) {
        state.SkipWithError(error.c_str());
        return;
      }
    }
    state.SetIterationTime(both * 1e-9);
    ++passes;
  }
  for (int side = 0; side < sides; ++side) {
    const std::string name = side ? "dpdk" : "keel";
    const double ops = static_cast<double>(passes) * static_cast<double>(jobs[side].ops);
    state.counters[name + "_cycles"] = passes ? cycles[side] / ops : 0;
    state.counters[name + "_cpu_share"] = wall[side] > 0 ? cpu[side] / wall[side] : 0;
    if (jobs[side].deferred) {
      state.counters[name + "_deferred_cycles"] = passes ? deferred[side] / ops : 0;
    }
  }
}

// --- Reporting -----------------------------------------------------------------------

struct Case {
  std::string key;     // benchmark name without "BM_"
  std::string label;   // for the table
  double target;       // kNoTarget: informational
  std::string quoted;  // the DPDK cycles issue 10 quotes for this machine
  const char* sides[2] = {"keel", "DPDK"};
  bool keel_only = false;  // a row of the keel-only table (sides[1]: its baseline, if any)
};
std::vector<Case>& Cases() {
  static auto* cases = new std::vector<Case>;
  return *cases;
}

using ByCase = std::map<std::string, std::vector<std::pair<int64_t, double>>>;
ByCase& Measured(int side) {
  static auto* measured = new ByCase[2];
  return measured[side];
}
ByCase& CpuShares(int side) {
  static auto* shares = new ByCase[2];
  return shares[side];
}
ByCase& Deferred() {
  static auto* deferred = new ByCase;
  return *deferred;
}
std::map<std::string, std::vector<std::string>>& Errors() {
  static auto* errors = new std::map<std::string, std::vector<std::string>>;
  return *errors;
}

// Prints each run (the table at the end gives the medians), and keeps its numbers.
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
      const std::string key = function.substr(3);
      if (run.error_occurred) {
        Errors()[key].push_back(run.error_message);
        continue;
      }
      auto keep = [&](const std::string& counter, ByCase& into) {
        auto it = run.counters.find(counter);
        if (it != run.counters.end()) into[key].push_back({run.repetition_index, it->second.value});
      };
      for (int side = 0; side < 2; ++side) {
        const std::string name = side ? "dpdk" : "keel";
        keep(name + "_cycles", Measured(side));
        keep(name + "_cpu_share", CpuShares(side));
      }
      keep("keel_deferred_cycles", Deferred());
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
std::vector<double> InOrder(const ByCase& by_case, const std::string& key) {
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

void PrintErrors(const std::string& key) {
  auto it = Errors().find(key);
  if (it == Errors().end()) return;
  for (const std::string& e : it->second) std::printf("%-30s   error: %s\n", "", e.c_str());
}

void PrintTable() {
  std::printf(
      "\nkeel/DPDK: %u single-shot timers on lcore 0; cycles (TSC ticks, %.2f MHz) per "
      "operation; keel, DPDK: median of each side's runs; keel/DPDK: median of the runs' "
      "ratios\n",
      kTimers, static_cast<double>(g_hz) / 1e6);
  std::printf("%-30s %9s %9s %9s  %-12s %-15s %s\n", "case", "keel", "DPDK", "keel/DPDK", "target",
              "DPDK (issue)", "every run: keel/DPDK cycles = ratio");
  bool any_disturbed = false;
  auto runs_of = [&](const Case& c, std::vector<double>(&v)[2], std::vector<bool>* disturbed) {
    std::vector<double> share[2];
    for (int side = 0; side < 2; ++side) {
      v[side] = InOrder(Measured(side), c.key);
      share[side] = InOrder(CpuShares(side), c.key);
    }
    const size_t n = std::max(v[0].size(), v[1].size());
    disturbed->assign(n, false);
    for (size_t i = 0; i < n; ++i) {
      for (int side = 0; side < 2; ++side) {
        if (i < share[side].size() && share[side][i] < kDisturbed) (*disturbed)[i] = true;
      }
      any_disturbed |= (*disturbed)[i];
    }
  };
  for (const Case& c : Cases()) {
    if (c.keel_only) continue;
    std::vector<double> v[2];
    std::vector<bool> disturbed;
    runs_of(c, v, &disturbed);
    if (v[0].empty() && v[1].empty() && !Errors().count(c.key)) continue;  // filtered out
    std::vector<double> ratios;
    std::string every;
    for (size_t i = 0; i < std::min(v[0].size(), v[1].size()); ++i) {
      ratios.push_back(v[0][i] / v[1][i]);
      absl::StrAppend(&every, i ? "  " : "",
                      absl::StrFormat("%.1f/%.1f=%.3f%s", v[0][i], v[1][i], ratios.back(),
                                      disturbed[i] ? "*" : ""));
    }
    for (int side = 0; side < 2; ++side) {
      for (size_t i = ratios.size(); i < v[side].size(); ++i) {
        absl::StrAppend(&every, "  ", kSideName[side], absl::StrFormat(" %.1f", v[side][i]));
      }
    }
    const double ratio = Median(ratios);
    std::string verdict = "-";
    if (!ratios.empty() && c.target != kNoTarget) {
      verdict = absl::StrFormat("<=%.1f %s", c.target, ratio <= c.target ? "met" : "MISSED");
    }
    std::printf("%-30s %9.1f %9.1f %9.3f  %-12s %-15s %s\n", c.label.c_str(), Median(v[0]),
                Median(v[1]), ratio, verdict.c_str(), c.quoted.c_str(), every.c_str());
    if (!ratios.empty()) {
      keel::bench::RecordFigure({"cycles per call", c.label, "cycles", Median(v[0]), Median(v[1])});
    }
    const std::vector<double> later = InOrder(Deferred(), c.key);
    if (!later.empty()) {
      std::string each;
      std::vector<double> with;
      for (size_t i = 0; i < later.size(); ++i) {
        absl::StrAppend(&each, absl::StrFormat(" %.1f", later[i]));
        if (i < ratios.size()) with.push_back((v[0][i] + later[i]) / v[1][i]);
      }
      std::printf(
          "%-30s   keel's deferred cost: its next Manage compacts the 1M stale entries, "
          "%.1f cycles per timer (runs:%s); stop + compaction / DPDK stop = %.3f\n",
          "", Median(later), each.c_str(), Median(with));
    }
    PrintErrors(c.key);
  }
  std::printf("\nkeel alone: cycles (TSC ticks) per call, median of the runs\n");
  std::printf("%-52s %9s  %s\n", "case", "cycles", "every run");
  for (const Case& c : Cases()) {
    if (!c.keel_only) continue;
    std::vector<double> v[2];
    std::vector<bool> disturbed;
    runs_of(c, v, &disturbed);
    if (v[0].empty() && v[1].empty() && !Errors().count(c.key)) continue;
    for (int side = 0; side < 2; ++side) {
      if (v[side].empty()) continue;
      std::string every;
      for (size_t i = 0; i < v[side].size(); ++i) {
        absl::StrAppend(
            &every, i ? "  " : "",
            absl::StrFormat("%.2f%s", v[side][i], i < disturbed.size() && disturbed[i] ? "*" : ""));
      }
      std::printf("%-52s %9.2f  %s\n", side == 0 ? c.label.c_str() : c.sides[1], Median(v[side]),
                  every.c_str());
    }
    if (!v[0].empty() && !v[1].empty()) {
      std::vector<double> diff;
      for (size_t i = 0; i < std::min(v[0].size(), v[1].size()); ++i) {
        diff.push_back(v[0][i] - v[1][i]);
      }
      std::printf("%-52s %9.2f\n", "  Due's own cost (the difference)", Median(diff));
    }
    PrintErrors(c.key);
  }
  if (any_disturbed) {
    std::printf(
        "* the measuring thread of keel's or DPDK's run had less than %.0f %% of its CPU (the "
        "machine ran something else): a noisy run, kept in the medians\n",
        kDisturbed * 100);
  }
}

using MakeJob = Job (*)(int arg);

void Register(const Case& c, MakeJob keel, MakeJob dpdk, int iterations, int arg) {
  Cases().push_back(c);
  benchmark::RegisterBenchmark(absl::StrCat("BM_", c.key).c_str(),
                               [keel, dpdk, arg](benchmark::State& state) {
                                 Job jobs[2] = {keel(arg), dpdk ? dpdk(arg) : Job()};
                                 Paired(state, jobs);
                               })
      ->Iterations(iterations)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

void RegisterAll() {
  struct Timed {
    const char* key;
    const char* label;
    double target;
    const char* quoted;
    MakeJob keel, dpdk;
  };
  const Timed timed[] = {
      {"Arm", "arm", kArmTarget, "300-1600", ArmJob<Keel>, ArmJob<Dpdk>},
      {"Rearm", "re-arm", kArmTarget, "2600-4300", RearmJob<Keel>, RearmJob<Dpdk>},
      {"Stop", "stop", kArmTarget, "1050-3000", StopJob<Keel>, StopJob<Dpdk>},
      {"Expire", "expire (per timer)", kExpireTarget, "200-840", ExpireJob<Keel>, ExpireJob<Dpdk>},
  };
  const char* const kSpreadKey[2] = {"Scattered", "InOrder"};
  for (const Timed& t : timed) {
    for (int spread = 0; spread < 2; ++spread) {
      Case c;
      c.key = absl::StrCat("Timer", t.key, kSpreadKey[spread]);
      c.label = absl::StrCat(t.label, ", ", kSpreadName[spread]);
      c.target = t.target;
      c.quoted = t.quoted;
      Register(c, t.keel, t.dpdk, 2, spread);
    }
  }
  Case idle;
  idle.key = "TimerIdleManage";
  idle.label = "idle Manage (clock read incl.)";
  idle.target = kIdleTarget;
  idle.quoted = "25-33";
  Register(idle, IdleManageJob<Keel>, IdleManageJob<Dpdk>, 3, 0);
  Case cycles;
  cycles.key = "TimerCycles";
  cycles.label = "Cycles() / rte_get_timer_cycles";
  cycles.target = kNoTarget;
  cycles.quoted = "-";
  Register(cycles, CyclesJob<Keel>, CyclesJob<Dpdk>, 3, 0);

  Case due;
  due.key = "TimerDue";
  due.label = "now = Cycles(); Due(0, now) [Manage if due]";
  due.sides[1] = "now = Cycles() alone (the same loop without Due)";
  due.keel_only = true;
  Register(due, DueJob<Keel>, DueJob<Dpdk>, 3, 0);
  const char* const kHpetLabel[3] = {
      "FAKE HPET (memory, not MMIO): Read(), 64-bit",
      "FAKE HPET (memory, not MMIO): Read(), 32-bit, no CAS",
      "FAKE HPET (memory, not MMIO): Cycles() on it, 64-bit",
  };
  const char* const kHpetKey[3] = {"TimerHpetFakeRead64", "TimerHpetFakeRead32",
                                   "TimerHpetFakeCycles64"};
  for (int kind = 0; kind < 3; ++kind) {
    Case c;
    c.key = kHpetKey[kind];
    c.label = kHpetLabel[kind];
    c.keel_only = true;
    Register(c, HpetJob<Keel>, nullptr, 3, kind);
  }
}

// --- Setting up ----------------------------------------------------------------------

// DPDK's EAL on lcore 0 alone (the main thread, on CPU 0), on 2 MiB hugepages when
// enough are free; its timer subsystem.
bool InitDpdk(std::string* how) {
  keel::bench::DpdkEal eal;
  eal.lcores = "0";
  eal.hugepages = 64;  // -m 128
  eal.prefix = "timerbench-dpdk";
  if (!keel::bench::InitDpdkEal(eal, how)) return false;
  if (int r = rte_timer_subsystem_init(); r != 0) {
    std::fprintf(stderr, "rte_timer_subsystem_init: %s\n", rte_strerror(-r));
    return false;
  }
  return true;
}

bool SetUpKeel() {
  timer::SetParams params;
  params.name = "timer_benchmark";
  params.capacity = kTimers;
  params.hz = g_hz;
  absl::StatusOr<size_t> bytes = timer::TimerSet::MemorySize(params);
  if (!bytes.ok()) {
    std::fprintf(stderr, "keel: MemorySize: %s\n", bytes.status().ToString().c_str());
    return false;
  }
  std::string how;
  void* mem = keel::bench::MapBenchMemory(*bytes, &how);
  if (mem == nullptr) {
    std::fprintf(stderr, "keel: mmap of %zu bytes: %s\n", *bytes, std::strerror(errno));
    return false;
  }
  absl::StatusOr<timer::TimerSet> set = timer::TimerSet::Init(mem, params, timer::ProcessHooks{});
  if (!set.ok()) {
    std::fprintf(stderr, "keel: Init: %s\n", set.status().ToString().c_str());
    return false;
  }
  Keel::set = *set;
  // lcore 0's wheel becomes this process's (the first Manage adopts it), so arms from
  // lcore 0 are local.
  Keel::set.Manage(kLcore, timer::Cycles());
  if (absl::Status s = timer::RegisterCallback("timer_benchmark.count", CountKeel); !s.ok()) {
    std::fprintf(stderr, "keel: RegisterCallback: %s\n", s.ToString().c_str());
    return false;
  }
  absl::StatusOr<timer::CallbackId> cb = Keel::set.AddCallback("timer_benchmark.count");
  if (!cb.ok()) {
    std::fprintf(stderr, "keel: AddCallback: %s\n", cb.status().ToString().c_str());
    return false;
  }
  Keel::callback = *cb;
  Keel::timers.reserve(kTimers);
  for (uint32_t i = 0; i < kTimers; ++i) {
    absl::StatusOr<timer::Timer> t = Keel::set.NewTimer();
    if (!t.ok()) {
      std::fprintf(stderr, "keel: NewTimer %u: %s\n", i, t.status().ToString().c_str());
      return false;
    }
    Keel::timers.push_back(*t);
  }
  std::fprintf(stderr,
               "keel: set of %u timers, %zu bytes (%.1f B per timer), %s; granule %lu "
               "ticks\n",
               kTimers, *bytes, static_cast<double>(*bytes) / kTimers, how.c_str(),
               static_cast<unsigned long>(Keel::set.granule_ticks()));
  return true;
}

bool SetUpDpdk(const std::string& eal_how) {
  std::string how;
  const size_t bytes = sizeof(rte_timer) * size_t{kTimers};
  Dpdk::timers = static_cast<rte_timer*>(keel::bench::MapBenchMemory(bytes, &how));
  if (Dpdk::timers == nullptr) {
    std::fprintf(stderr, "DPDK: mmap of %zu bytes: %s\n", bytes, std::strerror(errno));
    return false;
  }
  for (uint32_t i = 0; i < kTimers; ++i) rte_timer_init(&Dpdk::timers[i]);
  std::fprintf(stderr,
               "DPDK: %u struct rte_timer, %zu bytes (%zu B each), %s; %s; "
               "rte_get_timer_hz() %lu, lcore %u\n",
               kTimers, bytes, sizeof(rte_timer), how.c_str(), eal_how.c_str(),
               static_cast<unsigned long>(rte_get_timer_hz()), rte_lcore_id());
  return true;
}

// One arm and stop of everything on both sides, so no timed pass is the first to touch
// its memory (keel's compaction buffer included).
bool WarmUp() {
  const std::string errors[] = {MakePending<Keel>(kScattered), MakeStopped<Keel>(),
                                MakePending<Dpdk>(kScattered), MakeStopped<Dpdk>()};
  for (const std::string& e : errors) {
    if (!e.empty()) {
      std::fprintf(stderr, "warm-up: %s\n", e.c_str());
      return false;
    }
  }
  if (Keel::fired != 0 || Dpdk::fired != 0) {
    std::fprintf(stderr, "warm-up: callbacks ran (keel %lu, DPDK %lu)\n",
                 static_cast<unsigned long>(Keel::fired), static_cast<unsigned long>(Dpdk::fired));
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (!keel::bench::InitBenchmark(argc, argv)) return 1;
  // The TSC's frequency, before anything else runs (it may calibrate for 150 ms).
  g_hz = timer::Hz();
  std::string eal_how;
  if (!InitDpdk(&eal_how)) return 1;
  MakeTicks();
  g_hpet64 = new FakeHpet(true);
  g_hpet32 = new FakeHpet(false);
  if (!SetUpKeel() || !SetUpDpdk(eal_how) || !WarmUp()) {
    keel::bench::CleanupDpdkEal();
    return 1;
  }
  RegisterAll();
  RatioReporter reporter(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                               : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  PrintTable();
  MakeStopped<Dpdk>();
  delete g_hpet64;
  delete g_hpet32;
  keel::bench::UnmapBenchMemory();
  rte_timer_subsystem_finalize();
  keel::bench::CleanupDpdkEal();
  return 0;
}
