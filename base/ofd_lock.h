// Open-file-description locks (fcntl F_OFD_*), the one way keel asks the kernel who is
// alive. An OFD lock belongs to an open file, not to a process: the kernel drops it when
// the last descriptor of that open file closes, whatever the cause of death (SIGKILL
// included), a child forked with the descriptor keeps it, and it means the same in
// every PID namespace. Two opens of one file by the same process conflict like two
// processes do.
//
//   if (TryLock(fd, LockType::kExclusive).ok()) { ... nobody else has the file ... }
//   bool alive = LockHeld(probe_fd, /*start=*/slot_byte, /*len=*/1);
#ifndef KEEL_BASE_OFD_LOCK_H_
#define KEEL_BASE_OFD_LOCK_H_

#include <sys/types.h>

#include "absl/status/status.h"

namespace keel {

enum class LockType { kShared, kExclusive };

// Takes a lock on [start, start + len) of `fd`'s file without waiting (len 0: from start
// on, past the end too). Unavailable when another open file holds a conflicting lock;
// another failure as ErrnoStatus. An exclusive lock needs `fd` open for writing.
absl::Status TryLock(int fd, LockType type, off_t start = 0, off_t len = 0);

// True when an open file other than `probe_fd`'s holds any lock on [start, start + len).
// Only asks. A probe that fails (it cannot, for a valid fd) answers true, so that
// nothing live is ever taken for dead.
bool LockHeld(int probe_fd, off_t start = 0, off_t len = 0);

}  // namespace keel

#endif  // KEEL_BASE_OFD_LOCK_H_
