// Process identity and liveness: a pid plus its start time names one process for the
// lifetime of the machine (pids are reused, start times are not).
#ifndef KEEL_EAL_INTERNAL_PROCESS_H_
#define KEEL_EAL_INTERNAL_PROCESS_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"

namespace keel::eal_internal {

// Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22). NotFound
// when the process is gone or a zombie (it has exited; only its parent has yet to reap).
absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid);

// True when `pid` is alive and is the process that started at `start_time`.
bool IsAlive(pid_t pid, uint64_t start_time);

// A pidfd for the process (pid, start_time): poll() reports it readable once that
// process exits. NotFound when the process is already gone. The caller closes it.
absl::StatusOr<int> OpenPidfd(pid_t pid, uint64_t start_time);

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_PROCESS_H_
