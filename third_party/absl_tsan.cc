// ThreadSanitizer builds only (--config=tsan): tells TSan what Debian's Abseil mutexes do.
//
// libabsl_synchronization.so is not built with TSan, and absl::Mutex waits on futexes
// TSan cannot see, so TSan would take every absl::Mutex-guarded access of two threads
// for a race. These definitions interpose on the library's own (the executable's
// libraries are searched before libabsl_synchronization.so, and every call to them,
// Abseil's internal ones included, goes through the PLT): each calls the real function
// (dlsym RTLD_NEXT) and marks the happens-before edge the mutex makes: a release of the
// mutex's address before anything that unlocks it, an acquire after anything that locks
// it. Notification is the same edge from Notify to the waits that return true. This is
// only an ordering annotation: the locking itself is Abseil's. Outside TSan builds this
// file is empty. //third_party:absl_tsan_test checks that the interposition happened.
#if defined(__SANITIZE_THREAD__)

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/time/time.h"

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

// The next definition of `symbol` after this library's: libabsl_synchronization's.
template <typename F>
F Real(const char* symbol) {
  void* f = dlsym(RTLD_NEXT, symbol);
  if (f == nullptr) {
    std::fprintf(stderr, "absl_tsan: %s not found in the libraries after this one\n", symbol);
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

}  // namespace

// The interposed functions, under their Itanium-mangled names in Debian's inline
// namespace absl::debian3 (nm -D libabsl_synchronization.so); `this` and the arguments
// the annotation does not need pass through as opaque pointers. Not covered: the timed
// Mutex and CondVar waits (keel uses none) and the inline HasBeenNotified() (a poll of
// it synchronizes with nothing TSan sees; keel waits instead).
#define KEEL_TSAN_REAL(type, symbol) static const auto real = Real<type>(symbol)

extern "C" {

void KeelTsanMutexLock(void* mu) __asm__("_ZN4absl7debian35Mutex4LockEv");
void KeelTsanMutexLock(void* mu) {
  KEEL_TSAN_REAL(void (*)(void*), "_ZN4absl7debian35Mutex4LockEv");
  real(mu);
  __tsan_acquire(mu);
}

void KeelTsanMutexReaderLock(void* mu) __asm__("_ZN4absl7debian35Mutex10ReaderLockEv");
void KeelTsanMutexReaderLock(void* mu) {
  KEEL_TSAN_REAL(void (*)(void*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(mu);
  __tsan_acquire(mu);
}

bool KeelTsanMutexTryLock(void* mu) __asm__("_ZN4absl7debian35Mutex7TryLockEv");
bool KeelTsanMutexTryLock(void* mu) {
  KEEL_TSAN_REAL(bool (*)(void*), "_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = real(mu);
  if (locked) __tsan_acquire(mu);
  return locked;
}

void KeelTsanMutexUnlock(void* mu) __asm__("_ZN4absl7debian35Mutex6UnlockEv");
void KeelTsanMutexUnlock(void* mu) {
  KEEL_TSAN_REAL(void (*)(void*), "_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_release(mu);
  real(mu);
}

void KeelTsanMutexReaderUnlock(void* mu) __asm__("_ZN4absl7debian35Mutex12ReaderUnlockEv");
void KeelTsanMutexReaderUnlock(void* mu) {
  KEEL_TSAN_REAL(void (*)(void*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  __tsan_release(mu);
  real(mu);
}

// Await and LockWhen: Abseil evaluates a waiter's condition inside the library, in
// whichever thread holds the mutex at that moment, which no annotation here can reach.
// So under TSan they wait by polling: the condition is evaluated by the waiting thread
// itself, with the mutex held through the annotated Lock above. Same contract (return
// with the mutex held and the condition true), slower wake-ups.
static bool EvalCondition(const void* cond) {
  KEEL_TSAN_REAL(bool (*)(const void*), "_ZNK4absl7debian39Condition4EvalEv");
  return real(cond);
}

void KeelTsanMutexAwait(void* mu,
                        const void* cond) __asm__("_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
void KeelTsanMutexAwait(void* mu, const void* cond) {
  while (!EvalCondition(cond)) {
    KeelTsanMutexUnlock(mu);
    usleep(50);
    KeelTsanMutexLock(mu);
  }
}

void KeelTsanMutexLockWhen(void* mu, const void* cond) __asm__(
    "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
void KeelTsanMutexLockWhen(void* mu, const void* cond) {
  KeelTsanMutexLock(mu);
  KeelTsanMutexAwait(mu, cond);
}

void KeelTsanCondVarWait(void* cv, void* mu) __asm__("_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
void KeelTsanCondVarWait(void* cv, void* mu) {
  KEEL_TSAN_REAL(void (*)(void*, void*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(cv, mu);
  __tsan_acquire(mu);
}

void KeelTsanNotify(void* n) __asm__("_ZN4absl7debian312Notification6NotifyEv");
void KeelTsanNotify(void* n) {
  KEEL_TSAN_REAL(void (*)(void*), "_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(n);
  real(n);
}

void KeelTsanWaitForNotification(const void* n) __asm__(
    "_ZNK4absl7debian312Notification19WaitForNotificationEv");
void KeelTsanWaitForNotification(const void* n) {
  KEEL_TSAN_REAL(void (*)(const void*), "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(n);
  __tsan_acquire(const_cast<void*>(n));
}

bool KeelTsanWaitForNotificationWithTimeout(const void* n, absl::Duration timeout) __asm__(
    "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
bool KeelTsanWaitForNotificationWithTimeout(const void* n, absl::Duration timeout) {
  KEEL_TSAN_REAL(bool (*)(const void*, absl::Duration),
                 "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(n, timeout);
  if (notified) __tsan_acquire(const_cast<void*>(n));
  return notified;
}

}  // extern "C"

#endif  // __SANITIZE_THREAD__
