// absl_tsan.cc's interposition: in a TSan build absl::Mutex::Lock resolves to it, and two
// threads that take turns under an absl::Mutex are no race to TSan (TSan halts the test
// with a report if they were). Other builds have no interposer.
#include <dlfcn.h>

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace {

constexpr bool kTsan =
#if defined(__SANITIZE_THREAD__)
    true;
#else
    false;
#endif

TEST(AbslTsanTest, MutexLockResolvesToTheInterposerOnlyUnderTsan) {
  void* lock = dlsym(RTLD_DEFAULT, "_ZN4absl7debian35Mutex4LockEv");
  ASSERT_NE(lock, nullptr) << dlerror();
  Dl_info info;
  ASSERT_NE(dladdr(lock, &info), 0);
  const std::string library = info.dli_fname;
  if (kTsan) {
    EXPECT_EQ(library.find("libabsl_synchronization"), std::string::npos) << library;
  } else {
    EXPECT_NE(library.find("libabsl_synchronization"), std::string::npos) << library;
  }
}

TEST(AbslTsanTest, AccessesUnderAMutexAndAfterANotificationAreOrdered) {
  absl::Mutex mu;
  int guarded = 0;  // plain int: TSan checks every access
  int published = 0;
  absl::Notification done;
  std::thread other([&] {
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock lock(&mu);
      ++guarded;
    }
    published = 42;
    done.Notify();
  });
  for (int i = 0; i < 1000; ++i) {
    absl::MutexLock lock(&mu);
    ++guarded;
  }
  done.WaitForNotification();
  EXPECT_EQ(published, 42);
  other.join();
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](int* g) { return *g == 2000; }, &guarded));
  EXPECT_EQ(guarded, 2000);
}

}  // namespace
