// Kill points: named places in crash-sensitive code where a test can SIGKILL the
// process, to prove that a kill there leaves at worst a leak (STYLE.md, crash order).
//
// A process arms one kill point from the environment, so a multi-process test can start
// a helper that dies exactly there:
//
//   KEEL_KILL_POINT=mempool.flush.after_len        die at the first hit
//   KEEL_KILL_POINT=mempool.flush.after_len@25     die at the 25th hit
//
// or in-process with SetKillPointForTest. Debug builds only: with NDEBUG the call is
// empty and costs nothing, so kill points may sit on fast paths.
//
//   len_.store(0, std::memory_order_relaxed);
//   KillPointForTest("mempool.flush.after_len");   // a kill here leaks the objects
//   ring->EnqueueBurst(slots, len);
#ifndef KEEL_BASE_KILL_POINT_H_
#define KEEL_BASE_KILL_POINT_H_

#include <atomic>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace keel {
namespace base_internal {
// True when a kill point is armed in this process (read on every kill point).
extern std::atomic<bool> g_kill_point_armed;
void HitKillPoint(const char* name);
}  // namespace base_internal

#ifdef NDEBUG
inline void KillPointForTest(const char*) {}
#else
// SIGKILLs this process when `name` is the armed kill point and this is the hit it
// waits for. Thread-safe.
inline void KillPointForTest(const char* name) {
  // Relaxed: arming happens before the threads that hit it start (env at start-up, or
  // SetKillPointForTest before the test's threads).
  if (base_internal::g_kill_point_armed.load(std::memory_order_relaxed)) {
    base_internal::HitKillPoint(name);
  }
}
#endif

// Arms `name`: the `nth` hit (1 = the first) SIGKILLs the process. An empty name
// disarms. Overrides KEEL_KILL_POINT. Call before the code under test runs.
void SetKillPointForTest(absl::string_view name, uint64_t nth = 1);

}  // namespace keel

#endif  // KEEL_BASE_KILL_POINT_H_
