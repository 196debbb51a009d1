// A process for the time-source tests: joins a group (EAL + memory + timer), prints
//   READY pid=P type=primary|secondary source=tsc|hpet hz=H init_us=U
// (or INIT-FAILED: <status>, exit code 2), then runs commands read from stdin, one per
// line, printing one result line each:
//
//   source        SOURCE name=N hz=H invariant=0|1 cpuid=0|1 counter64=0|1 group=0|1
//                 probes=P why=WHY   (CurrentSourceInfo(); probes: TscProbesForTest())
//   cycles        CYCLES N           (Cycles())
//   delay-us N    DELAYED us=N cycles=C (DelayUs(N), C: the Cycles() it took)
//
// and for timer sets (callbacks all count: each run adds 1 to the counter of its timer,
// in the memzone "timer.counts", kCounters uint64s, created by the first to ask):
//   create SET CAPACITY                 CREATED SET | ERROR ...
//   lookup SET                          FOUND SET | ERROR ...
//   register CB                         REGISTERED CB (this process runs CB)
//   alloc SET N                         ALLOCATED first=F (N timers, ids F..F+N-1)
//   arm SET FIRST COUNT MS LCORE CB [periodic]
//                                       ARMED ok=K first_error=none|RESULT: timers
//                                       FIRST.. armed MS ms ahead for LCORE
//   stop SET FIRST COUNT                STOPPED ok=K busy=B
//   serve SET                           SERVING lcore=L: the worker lcore runs
//                                       Manage(SET) until "unserve"
//   unserve                             UNSERVED ran=R
//   counts FIRST COUNT                  COUNTS zeros=Z ones=O more=M
//   stats SET                           STATS L:pending=P,ran=R,missing=M,adoptions=A ...
//   quit
//
//   timer_helper [EAL options] -- [--hpet-fake PATH]
// --hpet-fake makes a primary open PATH instead of /dev/hpet (SetHpetDeviceForTest,
// called before eal::Init): a file laid out like the HPET's registers.
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eal/eal.h"
#include "eal/lcore.h"
#include "memory/memory.h"
#include "tests/helper_loop.h"
#include "timer/cycles.h"
#include "timer/timer.h"

namespace {

namespace timer = keel::timer;

constexpr uint64_t kCounters = 1 << 16;

std::atomic<uint64_t>* Counters() {
  static std::atomic<uint64_t>* counters = [] {
    absl::StatusOr<keel::memory::Memzone> zone = keel::memory::LookupMemzone("timer.counts");
    if (!zone.ok()) zone = keel::memory::ReserveMemzone("timer.counts", kCounters * 8);
    if (!zone.ok()) zone = keel::memory::LookupMemzone("timer.counts");  // lost a race
    return zone.ok() ? static_cast<std::atomic<uint64_t>*>(zone->addr) : nullptr;
  }();
  return counters;
}

void Count(timer::TimerSet&, timer::Timer, void* arg) {
  static_cast<std::atomic<uint64_t>*>(arg)->fetch_add(1);
}

std::atomic<bool> g_serving{false};
std::atomic<uint64_t> g_served{0};

bool Number(const std::string& text, uint64_t* value) { return absl::SimpleAtoi(text, value); }

std::string Run(const std::vector<std::string>& cmd);

std::string RunTimer(const std::vector<std::string>& cmd) {
  if (cmd[0] == "register" && cmd.size() == 2) {
    const absl::Status s = timer::RegisterCallback(cmd[1], Count);
    return s.ok() ? "REGISTERED " + cmd[1] : "ERROR " + s.ToString();
  }
  if (cmd[0] == "counts" && cmd.size() == 3) {
    uint64_t first, count;
    if (!Number(cmd[1], &first) || !Number(cmd[2], &count) || first + count > kCounters ||
        Counters() == nullptr) {
      return "ERROR bad counts";
    }
    uint64_t zeros = 0, ones = 0, more = 0;
    for (uint64_t i = first; i < first + count; ++i) {
      const uint64_t n = Counters()[i].load();
      (n == 0 ? zeros : n == 1 ? ones : more) += 1;
    }
    return absl::StrFormat("COUNTS zeros=%d ones=%d more=%d", zeros, ones, more);
  }
  if (cmd[0] == "unserve") {
    g_serving = false;
    for (unsigned lcore : keel::eal::WorkerLcores()) keel::eal::WaitLcore(lcore);
    return absl::StrFormat("UNSERVED ran=%d", g_served.load());
  }
  if (cmd.size() < 2) return "UNKNOWN " + cmd[0];
  if (cmd[0] == "create" && cmd.size() == 3) {
    uint64_t capacity;
    if (!Number(cmd[2], &capacity)) return "ERROR bad capacity";
    timer::SetParams params;
    params.name = cmd[1];
    params.capacity = static_cast<uint32_t>(capacity);
    absl::StatusOr<timer::TimerSet> set = timer::Create(params);
    return set.ok() ? "CREATED " + cmd[1] : "ERROR " + set.status().ToString();
  }
  absl::StatusOr<timer::TimerSet> set = timer::Lookup(cmd[1]);
  if (!set.ok()) return "ERROR " + set.status().ToString();
  if (cmd[0] == "lookup") return "FOUND " + cmd[1];
  if (cmd[0] == "alloc" && cmd.size() == 3) {
    uint64_t n;
    if (!Number(cmd[2], &n) || n == 0) return "ERROR bad count";
    uint32_t first = 0;
    for (uint64_t i = 0; i < n; ++i) {
      absl::StatusOr<timer::Timer> t = set->NewTimer();
      if (!t.ok()) return "ERROR " + t.status().ToString();
      if (i == 0) first = t->id;
    }
    return absl::StrFormat("ALLOCATED first=%d", first);
  }
  if (cmd[0] == "arm" && (cmd.size() == 7 || cmd.size() == 8)) {
    uint64_t first, count, ms, lcore;
    if (!Number(cmd[2], &first) || !Number(cmd[3], &count) || !Number(cmd[4], &ms) ||
        !Number(cmd[5], &lcore) || first + count > kCounters || Counters() == nullptr) {
      return "ERROR bad arm";
    }
    absl::StatusOr<timer::CallbackId> cb = set->AddCallback(cmd[6]);
    if (!cb.ok()) return "ERROR " + cb.status().ToString();
    const timer::Mode mode =
        cmd.size() == 8 && cmd[7] == "periodic" ? timer::Mode::kPeriodic : timer::Mode::kSingle;
    uint64_t ok = 0;
    std::string first_error = "none";
    for (uint64_t i = first; i < first + count; ++i) {
      const timer::Result r =
          timer::Reset(*set, timer::Timer{static_cast<uint32_t>(i)}, ms * timer::Hz() / 1000, mode,
                       static_cast<unsigned>(lcore), *cb, &Counters()[i]);
      if (r == timer::Result::kOk) {
        ++ok;
      } else if (first_error == "none") {
        first_error = std::string(timer::ResultName(r));
      }
    }
    return absl::StrFormat("ARMED ok=%d first_error=%s", ok, first_error);
  }
  if (cmd[0] == "stop" && cmd.size() == 4) {
    uint64_t first, count;
    if (!Number(cmd[2], &first) || !Number(cmd[3], &count)) return "ERROR bad stop";
    uint64_t ok = 0, busy = 0;
    for (uint64_t i = first; i < first + count; ++i) {
      const timer::Result r = timer::Stop(*set, timer::Timer{static_cast<uint32_t>(i)});
      ok += r == timer::Result::kOk;
      busy += r == timer::Result::kBusy;
    }
    return absl::StrFormat("STOPPED ok=%d busy=%d", ok, busy);
  }
  if (cmd[0] == "serve") {
    const std::vector<unsigned> workers = keel::eal::WorkerLcores();
    if (workers.empty()) return "ERROR no worker lcore";
    g_serving = true;
    timer::TimerSet served = *set;
    // One Manage for the worker's lcore here, before its thread starts (so never at the
    // same time): the wheel is ours and the callbacks this process has are published when
    // SERVING is printed.
    served.Manage(workers[0], timer::Cycles());
    const absl::Status s = keel::eal::RemoteLaunch(
        [served]() mutable {
          while (g_serving.load()) {
            g_served += timer::Manage(served);
            usleep(100);
          }
          return 0;
        },
        workers[0]);
    return s.ok() ? absl::StrFormat("SERVING lcore=%d", workers[0]) : "ERROR " + s.ToString();
  }
  if (cmd[0] == "stats") {
    std::string out = "STATS";
    for (const timer::LcoreStats& st : set->Stats()) {
      absl::StrAppendFormat(&out, " %d:pending=%d,ran=%d,missing=%d,adoptions=%d", st.lcore,
                            st.pending, st.ran, st.missing_callback, st.adoptions);
    }
    return out;
  }
  return "UNKNOWN " + cmd[0];
}

std::string Run(const std::vector<std::string>& cmd) {
  if (cmd[0] == "source") {
    const timer::SourceInfo info = timer::CurrentSourceInfo();
    return absl::StrFormat(
        "SOURCE name=%s hz=%d invariant=%d cpuid=%d counter64=%d group=%d probes=%d why=%s",
        timer::SourceName(info.source), info.hz, info.tsc_invariant, info.hz_from_cpuid,
        info.hpet_counter_64_bit, info.from_group, timer::TscProbesForTest(), info.why);
  }
  if (cmd[0] == "cycles") return absl::StrFormat("CYCLES %d", timer::Cycles());
  if (cmd[0] == "delay-us" && cmd.size() == 2) {
    uint64_t us = 0;
    if (!absl::SimpleAtoi(cmd[1], &us)) return "ERROR not a number of microseconds";
    const uint64_t start = timer::Cycles();
    timer::DelayUs(us);
    return absl::StrFormat("DELAYED us=%d cycles=%d", us, timer::Cycles() - start);
  }
  return RunTimer(cmd);
}

}  // namespace

int main(int argc, char** argv) {
  // The hook must run before eal::Init (inside JoinGroup): read the application's
  // arguments (after "--") first.
  bool app = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) app = true;
    if (app && std::strcmp(argv[i], "--hpet-fake") == 0 && i + 1 < argc) {
      timer::SetHpetDeviceForTest(argv[i + 1]);
    }
  }
  const absl::Time start = absl::Now();
  if (!keel::testing::JoinGroup(argc, argv)) return 2;
  const int64_t init_us = absl::ToInt64Microseconds(absl::Now() - start);
  std::printf("READY pid=%d type=%s source=%s hz=%llu init_us=%lld\n", getpid(),
              std::string(keel::eal::ProcessTypeName(keel::eal::GetProcessType())).c_str(),
              std::string(timer::SourceName(timer::CurrentSource())).c_str(),
              static_cast<unsigned long long>(timer::Hz()), static_cast<long long>(init_us));
  return keel::testing::ServeCommands(Run);
}
