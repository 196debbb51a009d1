// The process-local state behind timer/cycles.h, as the timer component's EAL hooks
// (timer/source.cc) set it. Control path: called from eal::Init and eal::Cleanup on the
// main thread.
#ifndef KEEL_TIMER_INTERNAL_STATE_H_
#define KEEL_TIMER_INTERNAL_STATE_H_

#include <string>

#include "absl/strings/string_view.h"
#include "timer/clock.h"
#include "timer/cycles.h"

namespace keel::timer_internal {

// This process's own TSC probe (ProbeTsc), done once: later calls return the first
// result, or the group's TSC frequency once SetGroupClock recorded one. Thread-safe; the
// first call blocks for the calibration.
timer::TscInfo ProcessTsc();

// Makes `info` the current source: Cycles() reads `hpet` (info.source kHpet; it must stay
// valid until ClearGroupClock returns) or the TSC (info.source kTsc, `hpet` null), and
// Hz() returns info.hz. A TSC frequency is kept as this process's TSC frequency for good
// (after the group too: a secondary never calibrates).
void SetGroupClock(const timer::HpetClock* hpet, const timer::SourceInfo& info);

// Back to this process's own TSC; `why` becomes CurrentSourceInfo().why. After it
// returns, Cycles() calls that start do not touch the HpetClock given before.
void ClearGroupClock(absl::string_view why);

// /dev/hpet, or what SetHpetDeviceForTest set.
std::string HpetDevice();

}  // namespace keel::timer_internal

#endif  // KEEL_TIMER_INTERNAL_STATE_H_
