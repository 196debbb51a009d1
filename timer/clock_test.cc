// The TSC's probing and calibration against the kernel's clock; the HPET against a fake
// register block (this machine has no /dev/hpet): 64- and 32-bit counters, the wrap, two
// readers sharing the extension, bad periods, a stopped counter.
#include "timer/clock.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keel::timer {
namespace {

using ::testing::HasSubstr;

uint64_t RawNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

TEST(TscTest, Cpuid15GivesTheFrequencyOnlyWhenExact) {
  EXPECT_EQ(TscHzFromCpuid15(2, 216, 24'000'000), std::optional<uint64_t>(2'592'000'000));
  EXPECT_EQ(TscHzFromCpuid15(2, 216, 0), std::nullopt);  // crystal not given
  EXPECT_EQ(TscHzFromCpuid15(0, 216, 24'000'000), std::nullopt);
  EXPECT_EQ(TscHzFromCpuid15(2, 0, 24'000'000), std::nullopt);
}

// The calibrated frequency predicts the TSC over a later, longer interval of
// CLOCK_MONOTONIC_RAW to within 1 % (the VM's scheduling is the noise).
TEST(TscTest, CalibrationAgreesWithTheKernelClock) {
  const TscInfo info = ProbeTsc();
  ASSERT_GT(info.hz, 100'000'000u) << "a TSC below 100 MHz";
  const uint64_t c0 = RawNs();
  const uint64_t t0 = ReadTsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const uint64_t t1 = ReadTsc();
  const uint64_t c1 = RawNs();
  const double measured = static_cast<double>(t1 - t0) * 1e9 / static_cast<double>(c1 - c0);
  EXPECT_NEAR(measured / static_cast<double>(info.hz), 1.0, 0.01)
      << "probe " << info.hz << " Hz (" << (info.from_cpuid ? "CPUID 0x15" : "calibrated")
      << "), measured " << measured << " Hz";
  // Not rounded as DPDK rounds (to 10 MHz).
  const uint64_t again = CalibrateTsc();
  EXPECT_NEAR(static_cast<double>(again) / static_cast<double>(info.hz), 1.0, 0.01);
}

// A file laid out like the HPET's registers, its counter set by the test.
class FakeHpet {
 public:
  FakeHpet(uint32_t period_fs, bool counter64, bool enabled) {
    fd_ = memfd_create("fake-hpet", 0);
    EXPECT_GE(fd_, 0);
    EXPECT_EQ(ftruncate(fd_, kHpetMapSize), 0);
    regs_ = static_cast<uint8_t*>(
        mmap(nullptr, kHpetMapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0));
    EXPECT_NE(regs_, MAP_FAILED);
    const uint64_t caps = (uint64_t{period_fs} << 32) | (counter64 ? kHpetCounter64 : 0) | 0x01;
    std::memcpy(regs_ + kHpetCapabilities, &caps, 8);
    const uint64_t config = enabled ? kHpetEnabled : 0;
    std::memcpy(regs_ + kHpetConfig, &config, 8);
  }
  ~FakeHpet() {
    munmap(regs_, kHpetMapSize);
    close(fd_);
  }
  void Set(uint64_t counter) {
    reinterpret_cast<volatile uint64_t*>(regs_ + kHpetCounter)[0] = counter;
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  uint8_t* regs_ = nullptr;
};

constexpr uint32_t kPeriod14MHz = 69'841'279;  // 14.318 MHz, the usual HPET

TEST(HpetTest, A64BitCounterReadsAsIs) {
  FakeHpet fake(kPeriod14MHz, true, true);
  absl::StatusOr<HpetClock> hpet = HpetClock::Map(fake.fd(), nullptr);
  ASSERT_TRUE(hpet.ok()) << hpet.status();
  EXPECT_TRUE(hpet->counter_is_64_bit());
  EXPECT_EQ(hpet->period_fs(), kPeriod14MHz);
  EXPECT_EQ(hpet->hz(), 14'318'180u);
  fake.Set(0x123456789abcull);
  EXPECT_EQ(hpet->Read(), 0x123456789abcull);
}

TEST(HpetTest, A32BitCounterIsExtendedAcrossItsWrap) {
  FakeHpet fake(kPeriod14MHz, false, true);
  HpetShared shared;
  absl::StatusOr<HpetClock> hpet = HpetClock::Map(fake.fd(), &shared);
  ASSERT_TRUE(hpet.ok()) << hpet.status();
  EXPECT_FALSE(hpet->counter_is_64_bit());
  fake.Set(0xfffffff0u);
  EXPECT_EQ(hpet->Read(), 0xfffffff0u);
  fake.Set(0x10);  // wrapped
  EXPECT_EQ(hpet->Read(), 0x100000010ull);
  fake.Set(0x7fff0000u);
  EXPECT_EQ(hpet->Read(), 0x17fff0000ull);
  fake.Set(0xfff00000u);  // less than 2^31 on: readings must come that often
  EXPECT_EQ(hpet->Read(), 0x1fff00000ull);
  fake.Set(0x5);  // the second wrap
  EXPECT_EQ(hpet->Read(), 0x200000005ull);
}

// Two processes' clocks on one shared state agree, whichever of them reads: each wrap is
// counted once, however long one of them did not read (DPDK extends per process).
TEST(HpetTest, ReadersSharingTheStateAgree) {
  FakeHpet fake(kPeriod14MHz, false, true);
  HpetShared shared;
  absl::StatusOr<HpetClock> a = HpetClock::Map(fake.fd(), &shared);
  absl::StatusOr<HpetClock> b = HpetClock::Map(fake.fd(), &shared);
  ASSERT_TRUE(a.ok() && b.ok());
  uint64_t expect = 0;
  for (int step = 0; step < 40; ++step) {
    expect += 0x30000000u;  // under half the range per step, about 5 wraps in all
    fake.Set(static_cast<uint32_t>(expect));
    const HpetClock& reader = step % 5 == 0 ? *b : *a;  // b reads one time in five
    ASSERT_EQ(reader.Read(), expect) << "step " << step;
  }
  EXPECT_EQ(b->Read(), expect);
}

TEST(HpetTest, AReadingOlderThanTheLastIsNotTakenForAWrap) {
  // A reader that read the register just before another reader's newer value was
  // stored: slightly below, not 2^32 ahead.
  EXPECT_EQ(ExtendCounter32(0x100000010ull, 0x0000000c), 0x10000000cull);
  EXPECT_EQ(ExtendCounter32(0x100000010ull, 0xfffffff0u), 0xfffffff0ull);
  EXPECT_EQ(ExtendCounter32(0x100000010ull, 0x00000020), 0x100000020ull);
  EXPECT_EQ(ExtendCounter32(0, 0xf0000000u), 0xf0000000ull);  // the first reading
  EXPECT_EQ(ExtendCounter32(5, 0xffffffffu), 0u);             // before the first: clamped
}

// Nobody read for more than 2^31 ticks (the contract broken): the reading comes out low,
// and the shared state is left alone rather than pushed a wrap ahead for every process.
TEST(HpetTest, AReadingBeyondHalfTheRangeDoesNotMoveTheSharedState) {
  FakeHpet fake(kPeriod14MHz, false, true);
  HpetShared shared;
  absl::StatusOr<HpetClock> hpet = HpetClock::Map(fake.fd(), &shared);
  ASSERT_TRUE(hpet.ok());
  shared.last.store(0x100000010ull);
  fake.Set(0x90000000u);
  EXPECT_LT(hpet->Read(), 0x100000010ull);
  EXPECT_EQ(shared.last.load(), 0x100000010ull);
}

TEST(HpetTest, ThreadsReadingWhileTheCounterRunsSeeItGrow) {
  FakeHpet fake(kPeriod14MHz, false, true);
  HpetShared shared;
  absl::StatusOr<HpetClock> hpet = HpetClock::Map(fake.fd(), &shared);
  ASSERT_TRUE(hpet.ok());
  fake.Set(0xfff00000u);
  ASSERT_EQ(hpet->Read(), 0xfff00000u);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> backwards{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      uint64_t last = 0;
      while (!stop.load()) {
        const uint64_t v = hpet->Read();
        if (v < last) backwards.fetch_add(1);
        last = v;
      }
    });
  }
  // Small steps across one wrap: no reader can be held off 2^31 ticks (8M steps), which
  // the contract forbids; the thread moving the counter reads it too.
  uint64_t counter = 0xfff00000u;
  for (int i = 0; i < 200000; ++i) {
    counter += 0x100;
    fake.Set(static_cast<uint32_t>(counter));
    ASSERT_LE(hpet->Read(), counter);
  }
  ASSERT_GT(counter, uint64_t{1} << 32);
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(backwards.load(), 0u);
  EXPECT_EQ(hpet->Read(), counter);
}

TEST(HpetTest, BadPeriodsAndAStoppedCounterAreRefused) {
  for (uint32_t period : {0u, kHpetMaxPeriodFs + 1}) {
    FakeHpet fake(period, true, true);
    absl::StatusOr<HpetClock> hpet = HpetClock::Map(fake.fd(), nullptr);
    EXPECT_EQ(hpet.status().code(), absl::StatusCode::kInvalidArgument) << period;
    EXPECT_THAT(std::string(hpet.status().message()), HasSubstr(absl::StrCat(period, " fs")));
  }
  FakeHpet stopped(kPeriod14MHz, true, false);
  EXPECT_EQ(HpetClock::Map(stopped.fd(), nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
  FakeHpet narrow(kPeriod14MHz, false, true);
  EXPECT_THAT(std::string(HpetClock::Map(narrow.fd(), nullptr).status().message()),
              HasSubstr("32-bit counter"));
  EXPECT_FALSE(HpetClock::Map(-1, nullptr).ok());
}

}  // namespace
}  // namespace keel::timer
