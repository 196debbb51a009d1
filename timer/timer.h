// keel timer: the group's clock and timers in shared memory, for every process of the
// group (DPDK's rte_timer, without its multi-process limits).
//
// The clock is cycles.h (Cycles(), Hz(), delays; --timer-source). Timers live in named
// timer sets in the group's shared memory (timer_set.h has the whole API): any thread of
// any process arms or stops any timer of a set, for any lcore of the group, and that
// lcore runs the callback from its Manage() loop. Callbacks are registered by name in
// each process; the set holds only names, so different binaries share timers.
//
//   void Report(keel::timer::TimerSet& set, keel::timer::Timer t, void* arg) { ... }
//   keel::timer::RegisterCallback("report", Report);             // in every process
//   keel::timer::TimerSet set = *keel::timer::Create({"stats", 1024});  // or Lookup("stats")
//   keel::timer::Timer t = *set.NewTimer();
//   keel::timer::Reset(set, t, keel::timer::Hz(), keel::timer::Mode::kPeriodic,
//                      /*lcore=*/1, *set.AddCallback("report"), stats);
//   ... on lcore 1:   for (;;) { Poll(); keel::timer::Manage(set); }
//
// The functions here are the calls of timer_set.h with the group's clock and the calling
// thread's lcore filled in. Sets and their handles are valid from eal::Init to
// eal::Cleanup.
#ifndef KEEL_TIMER_TIMER_H_
#define KEEL_TIMER_TIMER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "eal/lcore.h"
#include "timer/cycles.h"
#include "timer/timer_set.h"

namespace keel::timer {

// A new set in the group's shared memory, registered as `params.name` (kind
// "timer_set") so every process can Lookup it. `params.hz` 0 means Hz(). Any process,
// after eal::Init. Errors: TimerSet::MemorySize's, AlreadyExists for a taken name,
// ResourceExhausted when shared memory is short, FailedPrecondition before eal::Init.
absl::StatusOr<TimerSet> Create(SetParams params);
// The set named `name`. NotFound for an unknown name; FailedPrecondition for another
// kind or layout version, or a set made for another clock rate than this group's.
absl::StatusOr<TimerSet> Lookup(absl::string_view name);
// Removes the set from the group and frees its memory. FailedPrecondition while any of
// its timers is pending, running or being armed (naming how many); the handles of every process are
// invalid afterwards.
absl::Status Free(TimerSet set);

// The process hooks for sets in this group (eal_internal's process tokens).
// FailedPrecondition before eal::Init.
absl::StatusOr<ProcessHooks> GroupHooks();

enum class Mode { kSingle, kPeriodic };

// The Arm for `ticks` from now (Cycles()), once or every `ticks`.
inline Arm ArmIn(uint64_t ticks, Mode mode, unsigned lcore, CallbackId callback, void* arg,
                 Late late) {
  Arm arm;
  const uint64_t now = Cycles();
  arm.expiry = ticks > ~uint64_t{0} - now ? ~uint64_t{0} : now + ticks;  // "never" saturates
  arm.period = mode == Mode::kPeriodic ? ticks : 0;
  arm.lcore = lcore;
  arm.callback = callback;
  arm.arg = arg;
  arm.late = late;
  return arm;
}

// rte_timer_reset: arms `timer` to expire `ticks` from now (Cycles()), once or every
// `ticks`, on `lcore`, running callback `callback` with `arg`. From any thread.
inline Result Reset(TimerSet& set, Timer timer, uint64_t ticks, Mode mode, unsigned lcore,
                    CallbackId callback, void* arg = nullptr, Late late = Late::kCatchUp) {
  return set.Reset(timer, ArmIn(ticks, mode, lcore, callback, arg, late), eal::LcoreId());
}
// rte_timer_reset_sync: Reset, waiting while the timer is busy (never inside a callback).
inline Result ResetSync(TimerSet& set, Timer timer, uint64_t ticks, Mode mode, unsigned lcore,
                        CallbackId callback, void* arg = nullptr, Late late = Late::kCatchUp) {
  return set.ResetSync(timer, ArmIn(ticks, mode, lcore, callback, arg, late), eal::LcoreId());
}
inline Result Stop(TimerSet& set, Timer timer) { return set.Stop(timer, eal::LcoreId()); }
inline Result StopSync(TimerSet& set, Timer timer) { return set.StopSync(timer, eal::LcoreId()); }
// rte_timer_manage: runs the calling lcore's due timers of `set`.
inline unsigned Manage(TimerSet& set) { return set.Manage(eal::LcoreId(), Cycles()); }

}  // namespace keel::timer

#endif  // KEEL_TIMER_TIMER_H_
