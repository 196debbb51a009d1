// CLOCK_MONOTONIC in nanoseconds: comparable between the processes of a host (the
// interrupt relay's event timestamps, its benchmark's one-way latencies, rate limits).
//
//   const uint64_t start = keel::MonotonicNs();
#ifndef KEEL_BASE_MONOTONIC_H_
#define KEEL_BASE_MONOTONIC_H_

#include <time.h>

#include <cstdint>

namespace keel {

// Never blocks (vDSO); thread-safe.
inline uint64_t MonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace keel

#endif  // KEEL_BASE_MONOTONIC_H_
