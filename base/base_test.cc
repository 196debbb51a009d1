#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "base/check.h"
#include "base/checksum.h"
#include "base/kill_point.h"
#include "base/names.h"
#include "base/ofd_lock.h"
#include "base/robust_mutex.h"
#include "base/status.h"
#include "base/units.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keel {
namespace {

using ::testing::HasSubstr;

TEST(ErrnoStatusTest, MapsErrnoAsDpdkDoes) {
  EXPECT_TRUE(absl::IsPermissionDenied(ErrnoStatus(EACCES, "cannot open", "/x")));
  EXPECT_TRUE(absl::IsPermissionDenied(ErrnoStatus(EPERM, "cannot open", "/x")));
  EXPECT_TRUE(absl::IsNotFound(ErrnoStatus(ENOENT, "cannot open", "/x")));
  EXPECT_TRUE(absl::IsAlreadyExists(ErrnoStatus(EEXIST, "cannot open", "/x")));
  EXPECT_TRUE(absl::IsResourceExhausted(ErrnoStatus(ENOMEM, "cannot map", "/x")));
  EXPECT_TRUE(absl::IsResourceExhausted(ErrnoStatus(ENOSPC, "cannot map", "/x")));
  EXPECT_TRUE(absl::IsInvalidArgument(ErrnoStatus(EINVAL, "cannot map", "/x")));
  EXPECT_TRUE(absl::IsUnavailable(ErrnoStatus(EAGAIN, "cannot lock", "/x")));
  EXPECT_TRUE(absl::IsInternal(ErrnoStatus(EIO, "cannot read", "/x")));
  EXPECT_EQ(ErrnoStatus(ENOENT, "cannot open", "/run/x").message(),
            "cannot open /run/x: No such file or directory");
}

TEST(NamesTest, CopyNameTruncatesAndPads) {
  char name[8];
  std::memset(name, 'x', sizeof(name));
  CopyName(name, "abc");
  EXPECT_EQ(NameOf(name), "abc");
  EXPECT_EQ(name[7], '\0');
  CopyName(name, "0123456789");
  EXPECT_EQ(NameOf(name), "0123456");
}

// A default string_view's data() is null: copying it must not hand memcpy a null
// source (undefined even for 0 bytes; --config=ubsan reports it).
TEST(NamesTest, CopyNameOfAnEmptyViewOnlyZeroes) {
  char name[8];
  std::memset(name, 'x', sizeof(name));
  CopyName(name, absl::string_view());
  for (const char c : name) EXPECT_EQ(c, '\0');
}

TEST(NamesTest, NameOfStopsAtTheArrayEnd) {
  char name[4] = {'a', 'b', 'c', 'd'};  // not terminated, as a corrupted file may be
  EXPECT_EQ(NameOf(name), "abcd");
}

TEST(NamesTest, CheckNameLength) {
  EXPECT_TRUE(CheckNameLength("ring", "r", 3).ok());
  EXPECT_TRUE(CheckNameLength("ring", "abc", 3).ok());
  const absl::Status empty = CheckNameLength("ring", "", 3);
  EXPECT_TRUE(absl::IsInvalidArgument(empty));
  EXPECT_EQ(empty.message(), "ring name \"\" must be 1 to 3 characters (it has 0)");
  EXPECT_THAT(CheckNameLength("ring", "abcd", 3).message(), HasSubstr("(it has 4)"));
}

TEST(NamesTest, PrintableEscapesUntrustedBytes) {
  EXPECT_EQ(Printable("plain-name_1.0"), "plain-name_1.0");
  EXPECT_EQ(Printable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(Printable("\xff\x1b[2J\"\\"), "\\xff\\x1b[2J\\x22\\x5c");
}

TEST(UnitsTest, RoundUpAndMib) {
  EXPECT_EQ(RoundUp(0, 4096), 0u);
  EXPECT_EQ(RoundUp(1, 4096), 4096u);
  EXPECT_EQ(RoundUp(4096, 4096), 4096u);
  EXPECT_EQ(RoundUp(10, 3), 12u);
  EXPECT_TRUE(IsPowerOfTwo(64));
  EXPECT_FALSE(IsPowerOfTwo(0));
  EXPECT_FALSE(IsPowerOfTwo(96));
  EXPECT_EQ(FormatMib(3 << 20), "3.0 MiB");
  EXPECT_EQ(FormatMib(3 << 19), "1.5 MiB");
}

TEST(ChecksumTest, Fnv1a64KnownValuesAndSensitivity) {
  EXPECT_EQ(Fnv1a64("", 0), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv1a64("foobar", 6), 0x85944171f73967e8ULL);
  char block[64] = {};
  const uint64_t clean = Fnv1a64(block, sizeof(block));
  for (size_t i = 0; i < sizeof(block); ++i) {
    block[i] ^= 1;
    EXPECT_NE(Fnv1a64(block, sizeof(block)), clean) << "a flipped bit at byte " << i;
    block[i] ^= 1;
  }
}

// A mutex in memory shared with forked children, as in a shared file.
class RobustMutexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    mu_ = static_cast<pthread_mutex_t*>(p);
    ASSERT_TRUE(InitRobustMutex(mu_, "test lock").ok());
  }
  void TearDown() override { munmap(mu_, 4096); }

  // A child takes the lock and exits holding it.
  void DieHoldingIt() {
    const pid_t pid = fork();
    if (pid == 0) {
      pthread_mutex_lock(mu_);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
  }

  pthread_mutex_t* mu_ = nullptr;
};

TEST_F(RobustMutexTest, RecoversFromADeadHolderAndRepairsOnce) {
  DieHoldingIt();
  int repairs = 0;
  ::testing::internal::CaptureStderr();
  {
    RobustLock lock(mu_, "test lock", [&] { ++repairs; });
    EXPECT_TRUE(lock.ok());
    EXPECT_TRUE(lock.recovered());
  }
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("recovering the shared test lock from a process that died holding it"));
  EXPECT_EQ(repairs, 1);
  RobustLock again(mu_, "test lock", [&] { ++repairs; });
  EXPECT_TRUE(again.ok());
  EXPECT_FALSE(again.recovered());
  EXPECT_EQ(repairs, 1);
}

TEST_F(RobustMutexTest, AnUnrecoverableLockIsAnErrorNotALockHeld) {
  DieHoldingIt();
  // Taken from the dead holder and released without being made consistent.
  ASSERT_EQ(pthread_mutex_lock(mu_), EOWNERDEAD);
  ASSERT_EQ(pthread_mutex_unlock(mu_), 0);
  RobustLock lock(mu_, "test lock");
  EXPECT_FALSE(lock.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(lock.status()));
  EXPECT_THAT(lock.status().message(), HasSubstr("the shared test lock is unrecoverable"));
}

TEST_F(RobustMutexTest, ALockNeverReleasedIsAnErrorAfterThePatienceNotAHang) {
  // A live holder that never lets go (a stopped process, say).
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t holder = fork();
  if (holder == 0) {
    pthread_mutex_lock(mu_);
    char c = 1;
    (void)!write(ready[1], &c, 1);
    pause();
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  const absl::Time start = absl::Now();
  {
    RobustLock lock(mu_, "test lock", [] {}, absl::Milliseconds(100));
    EXPECT_TRUE(absl::IsDeadlineExceeded(lock.status())) << lock.status();
    EXPECT_THAT(lock.status().message(),
                HasSubstr("the shared test lock was not released within 100ms"));
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  // Its death frees it: the next locker recovers it.
  RobustLock lock(mu_, "test lock");
  EXPECT_TRUE(lock.ok());
  EXPECT_TRUE(lock.recovered());
  close(ready[0]);
  close(ready[1]);
}

TEST_F(RobustMutexTest, AnOverwrittenLockWordIsAnErrorNotAHang) {
  // The lock word says "held by thread 0x1a5a5a5a" (no owner-died bit), which does not
  // exist: the state a damaged file leaves. Nobody will ever release it.
  const int garbage = 0x1a5a5a5a;
  std::memcpy(static_cast<void*>(mu_), &garbage, sizeof(garbage));
  RobustLock lock(mu_, "test lock", [] {}, absl::Milliseconds(100));
  EXPECT_FALSE(lock.ok());
}

TEST(OfdLockTest, TwoOpensConflictAndAClosedOneFreesItsLock) {
  char path[] = "/tmp/keel-ofd-XXXXXX";
  const int a = mkstemp(path);
  ASSERT_GE(a, 0);
  const int b = open(path, O_RDWR);
  ASSERT_GE(b, 0);
  EXPECT_FALSE(LockHeld(b, 5, 1));
  ASSERT_TRUE(TryLock(a, LockType::kExclusive, 5, 1).ok());
  EXPECT_TRUE(LockHeld(b, 5, 1));
  EXPECT_FALSE(LockHeld(b, 6, 1)) << "a byte lock covers its byte only";
  EXPECT_TRUE(absl::IsUnavailable(TryLock(b, LockType::kShared, 5, 1)));
  // Shared locks share; an exclusive one then waits for both to go.
  ASSERT_TRUE(TryLock(a, LockType::kShared, 100, 0).ok());
  ASSERT_TRUE(TryLock(b, LockType::kShared, 100, 0).ok());
  EXPECT_TRUE(absl::IsUnavailable(TryLock(b, LockType::kExclusive, 100, 0)));
  close(a);  // every lock of that open file goes with it
  EXPECT_TRUE(TryLock(b, LockType::kExclusive, 0, 0).ok());
  close(b);
  unlink(path);
}

#ifndef NDEBUG
TEST(DcheckDeathTest, FailsWithTheMessageInDebugBuilds) {
  const unsigned reserved = 2;
  EXPECT_DEATH(KEEL_DCHECK(reserved > 3, "finish of %u after a start of %u", 4u, reserved),
               "KEEL_DCHECK\\(reserved > 3\\) failed: finish of 4 after a start of 2");
}

// Runs `body` in a child and returns how it ended.
template <typename F>
int InChild(F body) {
  const pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(KillPointTest, KillsAtTheNthHitOfTheArmedPointOnly) {
  int reached = 0;
  int status = InChild([&] {
    SetKillPointForTest("test.point", 3);
    for (int i = 0; i < 5; ++i) {
      KillPointForTest("test.other");
      KillPointForTest("test.point");
    }
  });
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  status = InChild([&] {
    SetKillPointForTest("test.point", 3);
    KillPointForTest("test.point");
    KillPointForTest("test.point");
    SetKillPointForTest("");  // disarmed: the third hit passes
    KillPointForTest("test.point");
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  (void)reached;
}

TEST(KillPointTest, ArmedFromTheEnvironment) {
  // Re-run this binary with KEEL_KILL_POINT set; the child hits the point at start-up
  // through the test filter below.
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("KEEL_KILL_POINT", "test.env@2", 1);
    setenv("KEEL_KILL_POINT_SELFTEST", "1", 1);
    execl("/proc/self/exe", "base_test", "--gtest_also_run_disabled_tests",
          "--gtest_filter=KillPointTest.DISABLED_EnvChild", nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

// Run only by ArmedFromTheEnvironment, in a child with KEEL_KILL_POINT set.
TEST(KillPointTest, DISABLED_EnvChild) {
  ASSERT_NE(getenv("KEEL_KILL_POINT_SELFTEST"), nullptr);
  KillPointForTest("test.env");
  KillPointForTest("test.env");  // the second hit kills
  ADD_FAILURE() << "KEEL_KILL_POINT=test.env@2 did not kill at the second hit";
}
#endif

}  // namespace
}  // namespace keel
