// Test support: wait for a condition another thread or process makes true.
//
//   ASSERT_TRUE(keel::testing::Eventually([&] { return seen.count == 3; }));
#ifndef KEEL_TESTS_EVENTUALLY_H_
#define KEEL_TESTS_EVENTUALLY_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace keel::testing {

// Polls `done` every 200 us until it returns true (true) or `timeout` passes (false).
template <typename F>
bool Eventually(F done, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Microseconds(200));
  }
  return true;
}

}  // namespace keel::testing

#endif  // KEEL_TESTS_EVENTUALLY_H_
