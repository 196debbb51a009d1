#include "base/robust_mutex.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/log.h"

namespace keel {
namespace {

absl::Status PthreadError(int rc, absl::string_view call, absl::string_view name) {
  return absl::InternalError(
      absl::StrFormat("%s of the shared %s failed: %s", call, name, std::strerror(rc)));
}

}  // namespace

absl::Status InitRobustMutex(pthread_mutex_t* mu, absl::string_view name) {
  pthread_mutexattr_t attr;
  if (int rc = pthread_mutexattr_init(&attr); rc != 0) {
    return PthreadError(rc, "pthread_mutexattr_init", name);
  }
  absl::Status status;
  if (int rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED); rc != 0) {
    status = PthreadError(rc, "pthread_mutexattr_setpshared", name);
  } else if (int rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST); rc != 0) {
    status = PthreadError(rc, "pthread_mutexattr_setrobust", name);
  } else if (int rc = pthread_mutex_init(mu, &attr); rc != 0) {
    status = PthreadError(rc, "pthread_mutex_init", name);
  }
  pthread_mutexattr_destroy(&attr);
  return status;
}

RobustLock::RobustLock(pthread_mutex_t* mu, absl::string_view name) : RobustLock(mu, name, [] {}) {}

RobustLock::RobustLock(pthread_mutex_t* mu, absl::string_view name,
                       absl::FunctionRef<void()> repair, absl::Duration patience)
    : mu_(mu), name_(name) {
  int rc = pthread_mutex_trylock(mu_);
  if (rc == EBUSY) {
    // Contended (rare on these locks): wait, but not forever.
    const timespec deadline = absl::ToTimespec(absl::Now() + patience);
    rc = pthread_mutex_timedlock(mu_, &deadline);
  }
  if (rc == 0) return;
  if (rc == EOWNERDEAD) {
    recovered_ = true;
    KEEL_LOG(Warning, "eal", "recovering the shared %s from a process that died holding it", name_);
    repair();
    const int c = pthread_mutex_consistent(mu_);
    if (c == 0) return;
    status_ = PthreadError(c, "pthread_mutex_consistent", name_);
    pthread_mutex_unlock(mu_);
  } else if (rc == ETIMEDOUT) {
    status_ = absl::DeadlineExceededError(absl::StrFormat(
        "the shared %s was not released within %s: a live process holds it that long "
        "(stopped, or stuck), or the lock word is damaged",
        name_, absl::FormatDuration(patience)));
  } else if (rc == ENOTRECOVERABLE) {
    status_ = absl::FailedPreconditionError(absl::StrFormat(
        "the shared %s is unrecoverable: a process took it from a dead holder and released "
        "it without repairing it; restart the group",
        name_));
  } else {
    status_ = PthreadError(rc, "pthread_mutex_lock", name_);
  }
  KEEL_LOG(Error, "eal", "%s", status_.message());
}

RobustLock::~RobustLock() {
  if (status_.ok()) pthread_mutex_unlock(mu_);
}

}  // namespace keel
