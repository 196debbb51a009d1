// keel timer sets: timers in shared memory, run by per-lcore hierarchical timing wheels.
//
// A timer set holds up to `capacity` timers. Any thread of any process of the group can
// arm (Reset) or stop any timer, for any lcore; the lcore that a timer is armed for runs
// its callback from Manage(), in exact expiry order. Callbacks are named: each process
// registers name -> function (RegisterCallback), the set stores only the name's id, so
// processes built from different binaries share timers safely.
//
// This header is //timer:core: the set on memory the caller provides, with the time and
// lcore passed explicitly, no EAL. //timer (timer.h) puts sets in the group's shared
// memory by name and reads the time and the lcore for you.
//
//   void Tick(TimerSet& set, Timer t, void* arg) { ++*static_cast<int*>(arg); }
//   keel::timer::RegisterCallback("tick", Tick);
//   TimerSet set = *TimerSet::Init(mem, {.name = "t", .capacity = 1024, .hz = hz}, hooks);
//   Timer t = *set.NewTimer();
//   set.Reset(t, {.expiry = now + hz, .period = hz, .lcore = 1,
//                 .callback = *set.AddCallback("tick"), .arg = &count}, caller_lcore);
//   ... on lcore 1, in its loop:  set.Manage(1, ReadTsc());
//
// Fast-path calls (Reset, Stop, Pending, Manage) never block, never allocate (Manage may
// grow a thread-local scratch buffer to the largest batch due at once) and return a
// Result, not a Status. Control-path calls (Init, Attach, NewTimer, DeleteTimer,
// Callback, StopAll, Stats) take the set's robust lock or scan the set.
//
// Time is in ticks of one clock that every user of the set shares (the group's
// timer::Cycles() in //timer); `hz` says how many make a second.
#ifndef KEEL_TIMER_TIMER_SET_H_
#define KEEL_TIMER_TIMER_SET_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "timer/internal/set_layout.h"

namespace keel::timer {

inline constexpr size_t kMaxNameLength = timer_internal::kNameSize - 1;
inline constexpr size_t kMaxCallbackNameLength = timer_internal::kCallbackNameSize - 1;
inline constexpr uint32_t kMaxCallbacks = timer_internal::kMaxCallbacks;
inline constexpr uint32_t kMaxTimers = 1u << 24;

class TimerSet;

// A timer of a set: its index, the same in every process.
struct Timer {
  uint32_t id = ~0u;
  friend bool operator==(Timer a, Timer b) { return a.id == b.id; }
  friend bool operator!=(Timer a, Timer b) { return a.id != b.id; }
};

// A callback name's id in one set (TimerSet::AddCallback).
struct CallbackId {
  uint32_t value = ~0u;
};

// Runs on the lcore the timer was armed for, inside Manage(). May Reset or Stop any
// timer (its own included: a callback that re-arms itself is the usual periodic idiom);
// must not call Manage, and ResetSync / StopSync refuse to wait inside it.
using Callback = void (*)(TimerSet& set, Timer timer, void* arg);

// Process-local: the function this process runs for timers whose callback is `name`.
// Thread-safe; may be called before or after sets are attached. InvalidArgument for an
// empty name or one longer than kMaxCallbackNameLength, or a null function;
// AlreadyExists when `name` has another function in this process.
absl::Status RegisterCallback(absl::string_view name, Callback fn);

// What late periodic timers do when Manage runs after more than one period passed.
enum class Late {
  kCatchUp,  // run every missed period, back to back, in this Manage
  kSkip,     // run once, then go on at the next period still ahead
};

struct Arm {
  uint64_t expiry = 0;  // absolute ticks; at or before now: due at the next Manage
  uint64_t period = 0;  // 0: single shot; else re-armed at expiry + k * period, no drift
  unsigned lcore = 0;   // the lcore whose Manage runs it (< 128)
  CallbackId callback;
  void* arg = nullptr;  // passed to the callback as is: a pointer into shared memory is
                        // valid in every process
  Late late = Late::kCatchUp;
};

enum class Result : uint8_t {
  kOk = 0,
  kBusy,                 // the timer's callback runs on another lcore, or another thread
                         // is arming it right now: try again (or use the Sync calls)
  kBadTimer,             // not a timer of this set handed out by NewTimer
  kBadLcore,             // lcore >= 128
  kBadCallback,          // not an id of this set's AddCallback()
  kNoCallbackOnLcore,    // the process owning that lcore has no function for it
  kNoSpace,              // no free wheel chunk (more lcores hold timers than lcores_hint)
  kWouldWaitInCallback,  // ResetSync / StopSync inside a callback on a timer busy elsewhere
  kOwnerDead,            // StopSync / ResetSync: running on an lcore whose process died and
                         // which no process took over yet
};
absl::string_view ResultName(Result result);

// What the set needs to know of processes (//timer fills it from the EAL). Tokens are
// nonzero, at most 22 bits, unique among live processes.
struct ProcessHooks {
  uint32_t self = 1;
  // Whether the process with `token` still runs (to take over what a dead one held). Null:
  // every token is alive.
  bool (*alive)(uint32_t token) = nullptr;
  // The token of the process owning `lcore`, 0 when none or unknown. Null: unknown.
  uint32_t (*lcore_owner)(unsigned lcore) = nullptr;
};

struct SetParams {
  std::string name;
  uint32_t capacity = 0;     // timers, 1..kMaxTimers
  uint64_t hz = 0;           // ticks per second of the clock (sets the wheel's granule, ~1 us)
  uint32_t lcores_hint = 8;  // lcores expected to hold timers at once (sizes spare chunks)
  int socket = -1;           // NUMA node for //timer's Create (-1: any)
};

struct LcoreStats {
  unsigned lcore = 0;
  uint64_t pending = 0;           // timers armed for it now
  uint64_t ran = 0;               // callbacks run
  uint64_t missing_callback = 0;  // expiries whose callback its process lacked (not run)
  uint64_t missed_periods = 0;    // periods run late (kCatchUp) or skipped (kSkip)
  uint64_t no_space = 0;
  uint64_t adoptions = 0;  // times a new owner took over its timers
  uint64_t entries = 0;    // wheel entries, stale ones included
  uint32_t owner_token = 0;
};

class TimerSet {
 public:
  // Bytes Init needs for `params`. InvalidArgument names the bad field.
  static absl::StatusOr<size_t> MemorySize(const SetParams& params);
  // Builds a set in `mem` (MemorySize(params) bytes, 64-byte aligned). Not thread-safe
  // against users of `mem`.
  static absl::StatusOr<TimerSet> Init(void* mem, const SetParams& params,
                                       const ProcessHooks& hooks);
  // A handle on a set Init built (in this process or another). FailedPrecondition for a
  // bad magic, another layout version (naming both) or inconsistent geometry.
  static absl::StatusOr<TimerSet> Attach(void* mem, const ProcessHooks& hooks);

  TimerSet() = default;

  // --- Control path --------------------------------------------------------------------
  // A stopped timer. ResourceExhausted when all `capacity` are handed out.
  absl::StatusOr<Timer> NewTimer();
  // Returns a timer to the set. FailedPrecondition while it is pending, running or being
  // armed; InvalidArgument when it is not handed out.
  absl::Status DeleteTimer(Timer timer);
  // The id of callback `name` in this set, adding the name when new. InvalidArgument for
  // a bad name; ResourceExhausted past kMaxCallbacks names.
  absl::StatusOr<CallbackId> AddCallback(absl::string_view name);
  // Stops every timer pending for `lcore`; returns how many. Scans the set.
  size_t StopAll(unsigned lcore);
  // Timers pending, running or being armed (one left being armed by a dead process is
  // stopped first). Scans the set.
  size_t Busy() const;
  // Every lcore that has pending timers or was ever managed. Scans the set.
  std::vector<LcoreStats> Stats() const;

  // --- Fast path -----------------------------------------------------------------------
  // Arms `timer` (stopping it first when pending) for `arm.lcore`. `caller_lcore` is the
  // calling thread's lcore (or ~0u): arming for one's own lcore inserts into the wheel at
  // once, otherwise the target lcore takes it at its next Manage. Thread- and
  // process-safe, lock-free. kBusy when its callback runs on another lcore or another
  // thread is arming it.
  Result Reset(Timer timer, const Arm& arm, unsigned caller_lcore);
  // Stops `timer`. kOk also when it was not pending; kBusy when its callback runs on
  // another lcore (it may re-arm itself) or another thread is arming it.
  Result Stop(Timer timer, unsigned caller_lcore) {
    // Inline, the usual case: a pending timer stopped by compare-and-swap (as in StopSlow).
    if (ABSL_PREDICT_TRUE(timer.id < header_->capacity)) {
      std::atomic<uint64_t>& state = timers_[timer.id].state;
      uint64_t s = state.load(std::memory_order_acquire);
      if (timer_internal::StatusOf(s) == timer_internal::kPending) {
        const unsigned lcore = timer_internal::LcoreOf(s);
        if (state.compare_exchange_strong(s,
                                          timer_internal::MakeState(timer_internal::kStopped, lcore,
                                                                    0, timer_internal::GenOf(s)),
                                          std::memory_order_acq_rel, std::memory_order_acquire)) {
          StaleEntry(lcore, caller_lcore);
          return Result::kOk;
        }
      } else if (timer_internal::StatusOf(s) == timer_internal::kStopped) {
        return Result::kOk;
      }
    }
    return StopSlow(timer, caller_lcore);
  }
  // Reset / Stop that wait while the timer is busy. Inside a callback they never wait:
  // kWouldWaitInCallback instead; kOwnerDead when the timer's callback was running on an
  // lcore whose process died, until a process takes the lcore over.
  Result ResetSync(Timer timer, const Arm& arm, unsigned caller_lcore);
  Result StopSync(Timer timer, unsigned caller_lcore);
  bool Pending(Timer timer) const;
  // The expiry of its last arm, and the periods a late Manage skipped or ran late since.
  uint64_t Expiry(Timer timer) const;
  uint64_t MissedPeriods(Timer timer) const;

  // Runs the callbacks of `lcore`'s timers due at `now`, in expiry order, and returns how
  // many ran. Call it only from the thread of `lcore` (lcores are unique in a group).
  // With nothing due it reads two cache lines and returns.
  unsigned Manage(unsigned lcore, uint64_t now) {
    if (ABSL_PREDICT_TRUE(!Due(lcore, now))) return 0;
    return ManageSlow(lcore, now);
  }
  // Whether Manage(lcore, now) has anything to do: for loops that already hold the time.
  bool Due(unsigned lcore, uint64_t now) const {
    if (lcore >= timer_internal::kLcores) return false;
    const timer_internal::Wheel& w = wheels_[lcore];
    // Relaxed: a notification seen late is taken at the next Manage; ManageSlow reads
    // the bits with acquire. `owner` equals self_ only by this process's own write.
    return !(now < w.next_due && w.owner.load(std::memory_order_relaxed) == self_ &&
             w.notify.load(std::memory_order_relaxed) == 0);
  }

  std::string name() const;
  uint32_t capacity() const { return header_->capacity; }
  uint64_t hz() const { return header_->hz; }
  uint64_t granule_ticks() const { return uint64_t{1} << header_->granule_shift; }
  timer_internal::SetHeader* layout() const { return header_; }
  bool valid() const { return header_ != nullptr; }

 private:
  struct Local;
  TimerSet(timer_internal::SetHeader* header, const ProcessHooks& hooks);

  unsigned ManageSlow(unsigned lcore, uint64_t now);
  Result StopSlow(Timer timer, unsigned caller_lcore);
  // Counts an entry of `lcore` that the caller made stale (a compaction hint): the
  // owner's own count, or the count other lcores and processes add to.
  void StaleEntry(unsigned lcore, unsigned caller_lcore) {
    if (lcore >= timer_internal::kLcores) return;
    timer_internal::Wheel& w = wheels_[lcore];
    if (caller_lcore == lcore && w.owner.load(std::memory_order_relaxed) == self_) {
      ++w.stale;
    } else {
      // Relaxed: a hint for the owner's compaction.
      w.remote_stale.fetch_add(1, std::memory_order_relaxed);
    }
  }

  timer_internal::SetHeader* header_ = nullptr;
  timer_internal::TimerRecord* timers_ = nullptr;
  timer_internal::Wheel* wheels_ = nullptr;
  uint32_t self_ = 0;
  ProcessHooks hooks_;
  Local* local_ = nullptr;  // process-local, one per set; never freed

  friend class Core;
};

}  // namespace keel::timer

#endif  // KEEL_TIMER_TIMER_SET_H_
