#include "base/robust_mutex.h"

#include <cerrno>

#include "base/log.h"

namespace keel {

void InitRobustMutex(pthread_mutex_t* mu) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(mu, &attr);
  pthread_mutexattr_destroy(&attr);
}

RobustLock::RobustLock(pthread_mutex_t* mu) : RobustLock(mu, [] {}) {}

RobustLock::RobustLock(pthread_mutex_t* mu, absl::FunctionRef<void()> repair) : mu_(mu) {
  if (pthread_mutex_lock(mu_) == EOWNERDEAD) {
    recovered_ = true;
    KEEL_LOG(Warning, "eal", "recovering a shared lock from a process that died holding it");
    repair();
    pthread_mutex_consistent(mu_);
  }
}

RobustLock::~RobustLock() { pthread_mutex_unlock(mu_); }

}  // namespace keel
