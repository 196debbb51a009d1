// The cycles API in one process: without the EAL (the TSC, probed once, lazily), and
// around an in-process eal::Init on a fake HPET (a file laid out like its registers, the
// counter set by the test), on a missing device (auto falls back to the TSC; hpet fails
// Init) and with --timer-source tsc. Multi-process behaviour: tests/timer_source_test.cc.
#include "timer/cycles.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "eal/eal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "timer/clock.h"

namespace keel::timer {
namespace {

using ::testing::HasSubstr;

uint64_t RawNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// --- Without the EAL ---------------------------------------------------------------------

// First in this file: nothing has asked for Hz() yet. Concurrent first callers share one
// probe, and later calls (and CurrentSourceInfo) reuse it.
TEST(CyclesTest, HzProbesTheTscOnceLazilyForAllThreads) {
  EXPECT_EQ(TscProbesForTest(), 0) << "probed before anyone asked";
  std::vector<std::thread> threads;
  std::vector<uint64_t> seen(4);
  for (int i = 0; i < 4; ++i) threads.emplace_back([&seen, i] { seen[i] = Hz(); });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(TscProbesForTest(), 1);
  for (uint64_t hz : seen) EXPECT_EQ(hz, seen[0]);
  EXPECT_EQ(Hz(), seen[0]);
  const SourceInfo info = CurrentSourceInfo();
  EXPECT_EQ(TscProbesForTest(), 1);
  EXPECT_EQ(info.source, Source::kTsc);
  EXPECT_EQ(info.hz, seen[0]);
  EXPECT_FALSE(info.from_group);
  EXPECT_THAT(info.why, HasSubstr("not in a group"));
  EXPECT_EQ(CurrentSource(), Source::kTsc);
  EXPECT_EQ(SourceName(Source::kTsc), "tsc");
  EXPECT_EQ(SourceName(Source::kHpet), "hpet");
}

TEST(CyclesTest, NeverGoesBackwardsInAThread) {
  uint64_t last = Cycles();
  for (int i = 0; i < 1'000'000; ++i) {
    const uint64_t now = Cycles();
    ASSERT_GE(now, last) << "read " << i;
    last = now;
  }
}

// Hz() predicts Cycles() over an interval of CLOCK_MONOTONIC_RAW to within 1 % (the VM's
// scheduling is the noise).
TEST(CyclesTest, HzAgreesWithTheKernelClock) {
  const uint64_t hz = Hz();
  ASSERT_GT(hz, 100'000'000u) << "a TSC below 100 MHz";
  ASSERT_LT(hz, 20'000'000'000u) << "a TSC above 20 GHz";
  const uint64_t c0 = RawNs();
  const uint64_t t0 = Cycles();
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  const uint64_t t1 = Cycles();
  const uint64_t c1 = RawNs();
  const double measured = static_cast<double>(t1 - t0) * 1e9 / static_cast<double>(c1 - c0);
  EXPECT_NEAR(measured / static_cast<double>(hz), 1.0, 0.01)
      << "Hz() " << hz << ", measured " << measured;
}

// Each delay lasts at least what it says, by the kernel's clock (less 0.1 %: Hz() is a
// calibration), and not absurdly longer.
TEST(CyclesTest, DelaysDelayAtLeastWhatTheySay) {
  for (uint64_t us : {1, 50, 2000}) {
    const uint64_t c0 = RawNs();
    DelayUs(us);
    const uint64_t elapsed = RawNs() - c0;
    EXPECT_GE(static_cast<double>(elapsed), us * 1000 * 0.999) << us << " us";
  }
  const uint64_t c0 = RawNs();
  DelayMs(20);
  const uint64_t elapsed = RawNs() - c0;
  EXPECT_GE(static_cast<double>(elapsed), 20e6 * 0.999);
  EXPECT_LT(elapsed, 2'000'000'000u) << "20 ms took over 2 s";

  const uint64_t before = Cycles();
  DelayCycles(100'000);
  EXPECT_GE(Cycles() - before, 100'000u);
  DelayCycles(0);
  DelayUs(0);
  DelayMs(0);
}

// --- In-process eal::Init ----------------------------------------------------------------

constexpr uint32_t kPeriod14MHz = 69'841'279;  // 14.318 MHz, the usual HPET
constexpr uint64_t kHz14MHz = 14'318'180;

// A file laid out like the HPET's registers (its first 1 KiB), its counter set by the test.
class FakeHpetFile {
 public:
  FakeHpetFile(bool counter64, bool enabled = true) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    path_ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/fake-hpet-", getpid(), "-", counter64);
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd_, 0) << path_;
    EXPECT_EQ(ftruncate(fd_, kHpetMapSize), 0);
    regs_ = static_cast<uint8_t*>(
        mmap(nullptr, kHpetMapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0));
    EXPECT_NE(regs_, MAP_FAILED);
    // Low half: vendor 0x8086, legacy-capable, 3 comparators, revision 1 (bit 13 set only
    // for a 64-bit counter).
    const uint64_t caps =
        (uint64_t{kPeriod14MHz} << 32) | (counter64 ? kHpetCounter64 : 0) | 0x80868201;
    std::memcpy(regs_ + kHpetCapabilities, &caps, 8);
    const uint64_t config = enabled ? kHpetEnabled : 0;
    std::memcpy(regs_ + kHpetConfig, &config, 8);
  }
  ~FakeHpetFile() {
    munmap(regs_, kHpetMapSize);
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  void Set(uint64_t counter) {
    reinterpret_cast<volatile uint64_t*>(regs_ + kHpetCounter)[0] = counter;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint8_t* regs_ = nullptr;
};

class InitTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (eal::Initialized()) {
      EXPECT_TRUE(eal::Cleanup().ok());
    }
    SetHpetDeviceForTest("");
  }

  // A primary on one lcore, --no-huge, of a group of this test's own.
  static absl::StatusOr<eal::Options> Options(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {
        "--no-huge", "-m", "32", "--file-prefix",
        absl::StrCat("t.timer.", getpid(), ".",
                     ::testing::UnitTest::GetInstance()->current_test_info()->name())};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<eal::Options> options = eal::ParseOptions(args);
    if (!options.ok()) return options;
    const auto first = *options->lcores.begin();
    options->lcores = {first};
    options->main_lcore = first.first;
    return options;
  }
};

TEST_F(InitTest, AutoTakesTheHpetAndCleanupReturnsToTheTsc) {
  FakeHpetFile fake(/*counter64=*/false);
  fake.Set(0xfffffff0u);
  SetHpetDeviceForTest(fake.path());
  absl::StatusOr<eal::Options> options = Options({});
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(eal::Init(*options).ok());
  EXPECT_EQ(CurrentSource(), Source::kHpet);
  EXPECT_EQ(Hz(), kHz14MHz);
  EXPECT_EQ(Cycles(), 0xfffffff0u);
  fake.Set(0x20);  // the wrap, extended
  EXPECT_EQ(Cycles(), 0x100000020u);
  const uint64_t before = Cycles();
  DelayCycles(0);  // the fake does not tick: only 0 can return
  EXPECT_EQ(Cycles(), before);
  SourceInfo info = CurrentSourceInfo();
  EXPECT_EQ(info.source, Source::kHpet);
  EXPECT_EQ(info.hz, kHz14MHz);
  EXPECT_FALSE(info.hpet_counter_64_bit);
  EXPECT_FALSE(info.hz_from_cpuid);
  EXPECT_TRUE(info.from_group);
  EXPECT_EQ(info.why, absl::StrCat("auto: ", fake.path(), " opened and mapped"));
  // The fd server's socket, private.
  struct stat st;
  const std::string socket = eal::RuntimeDirectory() + "/hpet";
  ASSERT_EQ(::stat(socket.c_str(), &st), 0) << socket;
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  ASSERT_TRUE(eal::Cleanup().ok());
  EXPECT_FALSE(::stat(socket.c_str(), &st) == 0) << socket << " left behind";
  EXPECT_EQ(CurrentSource(), Source::kTsc);
  EXPECT_GT(Hz(), 100'000'000u);
  info = CurrentSourceInfo();
  EXPECT_EQ(info.source, Source::kTsc);
  EXPECT_FALSE(info.from_group);
  EXPECT_THAT(info.why, HasSubstr("the group ended"));
  const uint64_t tsc = ReadTsc();
  EXPECT_GE(Cycles(), tsc);
}

TEST_F(InitTest, A64BitHpetIsReadAsIs) {
  FakeHpetFile fake(/*counter64=*/true);
  fake.Set(0x123456789abcull);
  SetHpetDeviceForTest(fake.path());
  absl::StatusOr<eal::Options> options = Options({"--timer-source", "hpet"});
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(eal::Init(*options).ok());
  EXPECT_EQ(Cycles(), 0x123456789abcull);
  const SourceInfo info = CurrentSourceInfo();
  EXPECT_TRUE(info.hpet_counter_64_bit);
  EXPECT_EQ(info.why, absl::StrCat("--timer-source hpet: ", fake.path(), " opened and mapped"));
}

TEST_F(InitTest, AutoWithoutTheDeviceFallsBackToTheTscSayingWhy) {
  const std::string missing = "/nonexistent/keel-hpet";
  SetHpetDeviceForTest(missing);
  Hz();  // this process's own probe, before Init
  const int probes = TscProbesForTest();
  absl::StatusOr<eal::Options> options = Options({});
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(eal::Init(*options).ok());
  EXPECT_EQ(CurrentSource(), Source::kTsc);
  const SourceInfo info = CurrentSourceInfo();
  EXPECT_TRUE(info.from_group);
  EXPECT_EQ(info.why,
            absl::StrCat("auto: cannot open ", missing, ": No such file or directory (errno 2)"));
  // The probe made before Init is reused, not repeated.
  EXPECT_EQ(TscProbesForTest(), probes);
  EXPECT_EQ(info.hz, Hz());
}

// A register block the HPET code refuses (a stopped counter) is a fallback too.
TEST_F(InitTest, AutoWithAStoppedHpetFallsBackToTheTsc) {
  FakeHpetFile fake(/*counter64=*/false, /*enabled=*/false);
  SetHpetDeviceForTest(fake.path());
  absl::StatusOr<eal::Options> options = Options({});
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_TRUE(eal::Init(*options).ok());
  EXPECT_EQ(CurrentSource(), Source::kTsc);
  EXPECT_THAT(CurrentSourceInfo().why, HasSubstr(absl::StrCat("auto: ", fake.path(),
                                                              " opened but cannot be used: HPET: "
                                                              "the main counter is not enabled")));
}

TEST_F(InitTest, HpetWithoutTheDeviceFailsInitCleanly) {
  const std::string missing = "/nonexistent/keel-hpet";
  SetHpetDeviceForTest(missing);
  absl::StatusOr<eal::Options> options = Options({"--timer-source", "hpet"});
  ASSERT_TRUE(options.ok()) << options.status();
  const absl::Status status = eal::Init(*options);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("--timer-source hpet: cannot open ", missing,
                                     ": No such file or directory (errno 2)")));
  EXPECT_FALSE(eal::Initialized());
  EXPECT_EQ(CurrentSource(), Source::kTsc);
  // Nothing half-made blocks the next Init of the same group.
  SetHpetDeviceForTest("");
  options = Options({"--timer-source", "tsc"});
  ASSERT_TRUE(options.ok());
  ASSERT_TRUE(eal::Init(*options).ok());
  EXPECT_EQ(CurrentSourceInfo().why, "--timer-source tsc");
}

}  // namespace
}  // namespace keel::timer
