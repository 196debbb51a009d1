// A process-shared robust mutex for structures in shared memory.
//
// A process killed while holding a robust mutex does not wedge the others: the next
// locker gets the mutex back (EOWNERDEAD), repairs what the dead holder may have left
// half done, and marks it consistent.
//
//   InitRobustMutex(&table->lock);                 // once, by the creator
//   RobustLock lock(&table->lock, [&] { RepairTable(table); });
#ifndef KEEL_BASE_ROBUST_MUTEX_H_
#define KEEL_BASE_ROBUST_MUTEX_H_

#include <pthread.h>

#include "absl/functional/function_ref.h"

namespace keel {

// Initializes `mu` (in shared memory) as process-shared and robust. Not thread-safe.
void InitRobustMutex(pthread_mutex_t* mu);

// Holds `mu` for its scope. When the previous owner died holding it, `repair` runs
// under the lock before the mutex is marked consistent: it must leave the protected
// structure valid whatever point of an update the dead owner reached.
class RobustLock {
 public:
  explicit RobustLock(pthread_mutex_t* mu);
  RobustLock(pthread_mutex_t* mu, absl::FunctionRef<void()> repair);
  ~RobustLock();
  RobustLock(const RobustLock&) = delete;
  RobustLock& operator=(const RobustLock&) = delete;

  // True when this lock recovered the mutex from a dead owner.
  bool recovered() const { return recovered_; }

 private:
  pthread_mutex_t* mu_;
  bool recovered_ = false;
};

}  // namespace keel

#endif  // KEEL_BASE_ROBUST_MUTEX_H_
