// A process for the time-source tests: joins a group (EAL + memory + timer), prints
//   READY pid=P type=primary|secondary source=tsc|hpet hz=H init_us=U
// (or INIT-FAILED: <status>, exit code 2), then runs commands read from stdin, one per
// line, printing one result line each:
//
//   source        SOURCE name=N hz=H invariant=0|1 cpuid=0|1 counter64=0|1 group=0|1
//                 probes=P why=WHY   (CurrentSourceInfo(); probes: TscProbesForTest())
//   cycles        CYCLES N           (Cycles())
//   delay-us N    DELAYED us=N cycles=C (DelayUs(N), C: the Cycles() it took)
//   quit
//
//   timer_helper [EAL options] -- [--hpet-fake PATH]
// --hpet-fake makes a primary open PATH instead of /dev/hpet (SetHpetDeviceForTest,
// called before eal::Init): a file laid out like the HPET's registers.
#include <unistd.h>

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
#include "tests/helper_loop.h"
#include "timer/cycles.h"

namespace {

namespace timer = keel::timer;

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
  return "UNKNOWN " + cmd[0];
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
