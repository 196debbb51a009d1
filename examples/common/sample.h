// What keel's sample applications share beyond ports: their small option parser, their
// signals, link-event printing and a periodic keel timer.
#ifndef KEEL_EXAMPLES_COMMON_SAMPLE_H_
#define KEEL_EXAMPLES_COMMON_SAMPLE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "examples/common/port.h"
#include "timer/timer.h"

namespace keel::examples {

// A sample's main(): eal::Init (with -h: prints `usage`, exits 0), InstallSignals,
// then `body(application arguments)`, then eal::Cleanup. Errors are printed after
// "NAME: "; returns the exit code (body's, or 1).
int SampleMain(int argc, char** argv, const char* name, const char* usage,
               const std::function<int(const std::vector<std::string>&)>& body);

// A hexadecimal port mask ("3", "0x3") of ports below kMaxPorts, not empty.
absl::StatusOr<uint32_t> ParsePortMask(absl::string_view text);
// A decimal number of `flag` in [min, max].
absl::StatusOr<uint64_t> ParseNumber(absl::string_view flag, absl::string_view text, uint64_t min,
                                     uint64_t max);
// The value after flag args[*i] (advancing *i), or InvalidArgument naming the flag.
absl::StatusOr<std::string> FlagValue(const std::vector<std::string>& args, size_t* i);

// The port options both samples take: --ports null|generator, --flows N, --packets N
// (per port), --rate PPS (per port), --link-down.
struct TrafficOptions {
  PortKind kind = PortKind::kNull;
  unsigned flows = 64;
  uint64_t packets = 0;
  uint64_t rate = 0;
  bool link_down = false;
};
// When args[*i] is one of those flags: parses it (and its value, advancing *i) into *o
// and returns true; false for another flag. InvalidArgument for a bad value.
absl::StatusOr<bool> ParseTrafficFlag(const std::vector<std::string>& args, size_t* i,
                                      TrafficOptions* o);
// The kind, flows, packets, rate and initial link of `config`, from `o`.
void ApplyTraffic(const TrafficOptions& o, PortConfig* config);

// SIGINT and SIGTERM ask the sample to quit; SIGUSR1 asks the primary to toggle its
// ports' links.
void InstallSignals();
bool QuitRequested();
// The signal that asked to quit (0 when none did).
int QuitSignal();
// True once per SIGUSR1.
bool TakeLinkToggle();

// Prints "Port N Link Up|Down" (after `who`) for every link event of the group.
absl::Status PrintLinkEvents(const std::string& who);

// Runs `fn(arg)` every `period_ms` on lcore `lcore` of this process, from a keel timer
// in the set "samples.timers" (created by the first process to ask): the lcore must
// call Manage(set) in its loop. `name` names the callback (unique per function).
struct PeriodicTimer {
  timer::TimerSet set;
  timer::Timer timer;
};
absl::StatusOr<PeriodicTimer> StartPeriodic(absl::string_view name, void (*fn)(void*), void* arg,
                                            uint64_t period_ms, unsigned lcore);
// Stops and deletes the timer (not from its own callback).
void StopPeriodic(PeriodicTimer& p);

}  // namespace keel::examples

#endif  // KEEL_EXAMPLES_COMMON_SAMPLE_H_
