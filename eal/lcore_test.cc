// lcore launching inside one process (the multi-process behaviour is in
// tests/eal_multiprocess_test.cc).
#include "eal/lcore.h"

#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "eal/eal.h"
#include "gtest/gtest.h"

namespace keel::eal {
namespace {

class LcoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Three lcores on CPU 0: main 0, workers 1 and 2.
    absl::StatusOr<Options> options =
        ParseOptions({"--lcores", "(0-2)@0", "--file-prefix", absl::StrCat("t.lcore.", getpid())});
    ASSERT_TRUE(options.ok()) << options.status();
    ASSERT_TRUE(Init(*options).ok());
  }
  static void TearDownTestSuite() { EXPECT_TRUE(Cleanup().ok()); }
};

TEST_F(LcoreTest, IdsAndRoles) {
  EXPECT_EQ(LcoreId(), 0u);
  EXPECT_EQ(MainLcore(), 0u);
  EXPECT_EQ(Lcores(), (std::vector<unsigned>{0, 1, 2}));
  EXPECT_EQ(WorkerLcores(), (std::vector<unsigned>{1, 2}));
  EXPECT_TRUE(IsLcoreEnabled(2));
  EXPECT_FALSE(IsLcoreEnabled(3));
  std::thread([] { EXPECT_EQ(LcoreId(), kLcoreIdAny); }).join();
}

TEST_F(LcoreTest, RemoteLaunchRunsOnTheWorkerAndReturnsItsResult) {
  std::atomic<unsigned> seen{kLcoreIdAny};
  ASSERT_TRUE(RemoteLaunch([&] { seen = LcoreId(); return 7; }, 2).ok());
  EXPECT_EQ(WaitLcore(2), 7);
  EXPECT_EQ(seen.load(), 2u);
  EXPECT_EQ(GetLcoreState(2), LcoreState::kIdle);
  EXPECT_EQ(WaitLcore(2), 0);  // idle: nothing to wait for
}

TEST_F(LcoreTest, LaunchRefusesNonWorkersAndBusyLcores) {
  EXPECT_EQ(RemoteLaunch([] { return 0; }, 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RemoteLaunch([] { return 0; }, 9).code(), absl::StatusCode::kInvalidArgument);

  absl::Notification release;
  ASSERT_TRUE(RemoteLaunch([&] { release.WaitForNotification(); return 1; }, 1).ok());
  EXPECT_EQ(GetLcoreState(1), LcoreState::kRunning);
  EXPECT_EQ(RemoteLaunch([] { return 0; }, 1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(LaunchOnAllWorkers([] { return 0; }, CallMain::kSkip).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Cleanup().code(), absl::StatusCode::kFailedPrecondition);  // a worker is busy
  release.Notify();
  EXPECT_EQ(WaitLcore(1), 1);
}

TEST_F(LcoreTest, LaunchOnAllWorkersWithMain) {
  std::atomic<int> ran{0};
  ASSERT_TRUE(LaunchOnAllWorkers([&] { ran |= 1 << LcoreId(); return 0; }, CallMain::kCall).ok());
  WaitAllLcores();
  EXPECT_EQ(ran.load(), 0b111);
}

TEST_F(LcoreTest, SecondInitIsRefused) {
  absl::StatusOr<Options> options = ParseOptions({"-l", "0"});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(Init(*options).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace keel::eal
