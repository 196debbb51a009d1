// TSC probing and calibration; the HPET's registers and its 32-bit extension.
#include "timer/clock.h"

#include <cpuid.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status.h"

namespace keel::timer {
namespace {

uint64_t MonotonicRawNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

std::optional<uint64_t> TscHzFromCpuid15(uint32_t eax, uint32_t ebx, uint32_t ecx) {
  if (eax == 0 || ebx == 0 || ecx == 0) return std::nullopt;
  return static_cast<uint64_t>(ecx) * ebx / eax;
}

uint64_t CalibrateTsc(absl::Duration window) {
  const uint64_t window_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(window));
  uint64_t best_hz = 0;
  uint64_t best_error_ns = UINT64_MAX;
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Each end is read between two clock reads; the narrower the bracket, the less a
    // preemption between the TSC and the clock read can have shifted it.
    const uint64_t c0 = MonotonicRawNs();
    const uint64_t t0 = ReadTsc();
    const uint64_t c1 = MonotonicRawNs();
    uint64_t now = c1;
    while (now - c0 < window_ns) now = MonotonicRawNs();
    const uint64_t c2 = MonotonicRawNs();
    const uint64_t t1 = ReadTsc();
    const uint64_t c3 = MonotonicRawNs();
    const uint64_t error_ns = (c1 - c0) + (c3 - c2);
    const double ns = static_cast<double>((c2 + c3) / 2 - (c0 + c1) / 2);
    const uint64_t hz = static_cast<uint64_t>(static_cast<double>(t1 - t0) * 1e9 / ns + 0.5);
    if (error_ns < best_error_ns) {
      best_error_ns = error_ns;
      best_hz = hz;
    }
  }
  return best_hz;
}

TscInfo ProbeTsc() {
  TscInfo info;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx)) info.invariant = (edx >> 8) & 1;
  if (__get_cpuid_max(0, nullptr) >= 0x15 && __get_cpuid(0x15, &eax, &ebx, &ecx, &edx)) {
    if (std::optional<uint64_t> hz = TscHzFromCpuid15(eax, ebx, ecx)) {
      info.hz = *hz;
      info.from_cpuid = true;
      return info;
    }
  }
  info.hz = CalibrateTsc();
  return info;
}

absl::StatusOr<HpetClock> HpetClock::Map(int fd, HpetShared* shared) {
  void* p = mmap(nullptr, kHpetMapSize, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    return ErrnoStatus(errno, "cannot map the HPET registers of", absl::StrCat("fd ", fd));
  }
  const auto* regs = static_cast<const volatile uint8_t*>(p);
  const uint64_t caps = *reinterpret_cast<const volatile uint64_t*>(regs + kHpetCapabilities);
  const uint64_t config = *reinterpret_cast<const volatile uint64_t*>(regs + kHpetConfig);
  const uint32_t period_fs = static_cast<uint32_t>(caps >> 32);
  absl::Status error;
  if (period_fs == 0 || period_fs > kHpetMaxPeriodFs) {
    error = absl::InvalidArgumentError(absl::StrFormat(
        "HPET: the capabilities register gives a period of %u fs; a valid HPET ticks at least "
        "every %u fs (100 ns) and not at 0",
        period_fs, kHpetMaxPeriodFs));
  } else if ((config & kHpetEnabled) == 0) {
    error = absl::FailedPreconditionError(
        "HPET: the main counter is not enabled (GEN_CONF ENABLE_CNF is 0)");
  } else if ((caps & kHpetCounter64) == 0 && shared == nullptr) {
    error = absl::InvalidArgumentError(
        "HPET: a 32-bit counter needs the group's shared extension state (none given)");
  }
  if (!error.ok()) {
    munmap(p, kHpetMapSize);
    return error;
  }
  return HpetClock(regs, period_fs, (caps & kHpetCounter64) != 0, shared);
}

HpetClock::HpetClock(const volatile uint8_t* regs, uint32_t period_fs, bool counter64,
                     HpetShared* shared)
    : regs_(regs),
      period_fs_(period_fs),
      hz_((1'000'000'000'000'000ULL + period_fs / 2) / period_fs),  // rounded: fs per second
      counter64_(counter64),
      shared_(shared) {}

HpetClock::HpetClock(HpetClock&& other) noexcept { *this = std::move(other); }

HpetClock& HpetClock::operator=(HpetClock&& other) noexcept {
  if (this != &other) {
    if (regs_ != nullptr) munmap(const_cast<uint8_t*>(regs_), kHpetMapSize);
    regs_ = std::exchange(other.regs_, nullptr);
    period_fs_ = other.period_fs_;
    hz_ = other.hz_;
    counter64_ = other.counter64_;
    shared_ = other.shared_;
  }
  return *this;
}

HpetClock::~HpetClock() {
  if (regs_ != nullptr) munmap(const_cast<uint8_t*>(regs_), kHpetMapSize);
}

uint64_t HpetClock::Register(uint64_t offset) const {
  return *reinterpret_cast<const volatile uint64_t*>(regs_ + offset);
}

uint64_t HpetClock::Read() const {
  if (counter64_) return Register(kHpetCounter);
  // `last` first, then the register: the reading is then never older than `last`'s
  // own, so a reader delayed between the two cannot take the counter's advance for a
  // wrap (and push `last` 2^32 ticks ahead for every process); a delay longer than 2^31
  // ticks makes this reading low, and it is not stored. Acquire: the register read
  // stays after the load (and pairs with the release of the compare-and-swap below, so
  // `last` is a value some reader read from the register before).
  uint64_t last = shared_->last.load(std::memory_order_acquire);
  const uint32_t low = *reinterpret_cast<const volatile uint32_t*>(regs_ + kHpetCounter);
  for (;;) {
    const uint64_t value = ExtendCounter32(last, low);
    // Older than the newest reading (another reader's, made after ours): no update.
    if (value <= last) return value;
    if (shared_->last.compare_exchange_weak(last, value, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
      return value;
    }
  }
}

}  // namespace keel::timer
