// Process identity across PID namespaces, and the primary's pidfd. Liveness itself is
// a lock (base/ofd_lock.h; layout.h: one byte of RUNDIR/config per process slot), never
// a pid read from /proc: a pid means nothing in another PID namespace.
#ifndef KEEL_EAL_INTERNAL_PROCESS_H_
#define KEEL_EAL_INTERNAL_PROCESS_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace keel::eal_internal {

// Identifies this process's PID namespace (the inode of /proc/self/ns/pid), 0 when
// unknown. Pids recorded by a process of another namespace mean nothing here.
uint64_t PidNamespaceId();

// A pidfd for `pid` (readable once the process exits). The caller closes it and must
// confirm afterwards, by its lock, that the process is still the one it meant (a pid
// can be reused once its process is gone). NotFound when no such process exists.
absl::StatusOr<int> OpenPidfd(pid_t pid);

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_PROCESS_H_
