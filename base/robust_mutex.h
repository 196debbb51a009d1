// A process-shared robust mutex for structures in shared memory.
//
// A process killed while holding a robust mutex does not wedge the others: the next
// locker gets the mutex back (EOWNERDEAD), repairs what the dead holder may have left
// half done, and marks it consistent. Every pthread return code is checked; a lock that
// cannot be taken comes back as a Status, never as a lock silently not held.
//
//   if (absl::Status s = InitRobustMutex(&table->lock, "table lock"); !s.ok()) return s;
//   RobustLock lock(&table->lock, "table lock", [&] { RepairTable(table); });
//   if (!lock.ok()) return lock.status();
#ifndef KEEL_BASE_ROBUST_MUTEX_H_
#define KEEL_BASE_ROBUST_MUTEX_H_

#include <pthread.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace keel {

// Initializes `mu` (in shared memory) as process-shared and robust. Not thread-safe.
// Internal, naming the lock and the call, when a pthread call fails.
absl::Status InitRobustMutex(pthread_mutex_t* mu, absl::string_view name);

// Holds `mu` for its scope, when ok(). `name` (a literal: it is kept) names the lock in
// logs and errors. When the previous owner died holding it, `repair` runs under the
// lock before the mutex is marked consistent: it must leave the protected structure
// valid whatever point of an update the dead owner reached.
//
// Not ok() when the lock cannot be taken: FailedPrecondition for a mutex left
// unrecoverable (ENOTRECOVERABLE: an earlier recovery did not complete; the group must
// be restarted), DeadlineExceeded when it is not released within `patience` (a live
// holder stuck or stopped, or a lock word overwritten with another thread's id),
// Internal for any other error (a corrupted mutex: EINVAL). The destructor then
// unlocks nothing. Critical sections on these locks are microseconds long: waiting
// `patience` means something is wrong, and the caller gets an error, not a hang.
inline constexpr absl::Duration kLockPatience = absl::Seconds(10);

class RobustLock {
 public:
  RobustLock(pthread_mutex_t* mu, absl::string_view name);
  RobustLock(pthread_mutex_t* mu, absl::string_view name, absl::FunctionRef<void()> repair,
             absl::Duration patience = kLockPatience);
  ~RobustLock();
  RobustLock(const RobustLock&) = delete;
  RobustLock& operator=(const RobustLock&) = delete;

  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }
  // True when this lock recovered the mutex from a dead owner.
  bool recovered() const { return recovered_; }

 private:
  pthread_mutex_t* mu_;
  absl::string_view name_;
  absl::Status status_;
  bool recovered_ = false;
};

}  // namespace keel

#endif  // KEEL_BASE_ROBUST_MUTEX_H_
