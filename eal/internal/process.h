// Process liveness from locks: a process of a group holds an OFD write lock on one byte
// of the group's config file (its process-table slot's byte) for as long as it lives.
// The kernel drops the lock when the last descriptor of that open file goes, whatever
// the cause of death (SIGKILL included), so "is slot S alive" is a lock probe — true
// across PID namespaces, where a pid read from /proc means nothing, and for a process
// that forked after joining (its child holds the same open file, and the same lock).
#ifndef KEEL_EAL_INTERNAL_PROCESS_H_
#define KEEL_EAL_INTERNAL_PROCESS_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace keel::eal_internal {

// Takes an OFD write lock on byte `byte` of `fd`'s file without waiting. Unavailable
// when another open file holds it; another errno as a Status.
absl::Status LockByte(int fd, off_t byte);
void UnlockByte(int fd, off_t byte);

// True when an open file other than `probe_fd`'s holds a lock on `byte`. Only asks; a
// probe that fails (it cannot, for a valid fd) answers true, so nothing live is reaped.
bool ByteLockHeld(int probe_fd, off_t byte);

// Identifies this process's PID namespace (the inode of /proc/self/ns/pid), 0 when
// unknown. Pids recorded by a process of another namespace mean nothing here.
uint64_t PidNamespaceId();

// A pidfd for `pid` (readable once the process exits). The caller closes it and must
// confirm afterwards, by its lock, that the process is still the one it meant (a pid
// can be reused once its process is gone). NotFound when no such process exists.
absl::StatusOr<int> OpenPidfd(pid_t pid);

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_PROCESS_H_
