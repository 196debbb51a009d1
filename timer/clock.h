// keel timer clock: the two time sources a group can run on, the TSC and the HPET, on
// their own (no EAL): probing, calibration, reading.
//
// This is the first piece of //timer (issue 10): what the EAL's `--timer-source` option
// will choose between and record in shared memory for the whole group.
//
//   keel::timer::TscInfo tsc = keel::timer::ProbeTsc();   // CPUID, else calibrated
//   uint64_t start = keel::timer::ReadTsc();
//   ...
//   double seconds = double(keel::timer::ReadTsc() - start) / tsc.hz;
//
//   keel::timer::HpetClock hpet = *keel::timer::HpetClock::Map(fd, &shared_state);
//   uint64_t ticks = hpet.Read();                          // 64 bits, every process agrees
#ifndef KEEL_TIMER_CLOCK_H_
#define KEEL_TIMER_CLOCK_H_

#include <x86intrin.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace keel::timer {

// --- TSC -----------------------------------------------------------------------------

inline uint64_t ReadTsc() { return __rdtsc(); }

struct TscInfo {
  uint64_t hz = 0;
  // CPUID 0x80000007 EDX bit 8: the TSC runs at one rate in every P-, C- and T-state.
  bool invariant = false;
  // True when hz came from CPUID leaf 0x15 (exact), false when calibrated.
  bool from_cpuid = false;
};

// The TSC's frequency from CPUID leaf 0x15 registers: EBX/EAX is the TSC / crystal
// ratio, ECX the crystal's frequency in Hz. Only when the leaf gives all three (some
// CPUs leave ECX 0: the crystal is then a guess, not used here).
std::optional<uint64_t> TscHzFromCpuid15(uint32_t eax, uint32_t ebx, uint32_t ecx);

// Counts TSC ticks over `window` of CLOCK_MONOTONIC_RAW (the kernel's unadjusted clock),
// unrounded (DPDK rounds to 10 MHz, which is 0.15 % off on a 2596.13 MHz TSC). Blocks for
// about `window`; the best of three tries, which the scheduler disturbs least.
uint64_t CalibrateTsc(absl::Duration window = absl::Milliseconds(50));

// What this CPU's TSC is: leaf 0x15 when exact, else CalibrateTsc(). Blocks for the
// calibration (about 150 ms) when it calibrates.
TscInfo ProbeTsc();

// --- HPET ----------------------------------------------------------------------------

// Register offsets and fields (IA-PC HPET specification 1.0a).
inline constexpr uint64_t kHpetCapabilities = 0x000;           // GCAP_ID
inline constexpr uint64_t kHpetConfig = 0x010;                 // GEN_CONF
inline constexpr uint64_t kHpetCounter = 0x0f0;                // MAIN_CNT
inline constexpr uint64_t kHpetCounter64 = uint64_t{1} << 13;  // GCAP_ID COUNT_SIZE_CAP
inline constexpr uint64_t kHpetEnabled = 1;                    // GEN_CONF ENABLE_CNF
// The specification's longest tick: 100 ns, in femtoseconds.
inline constexpr uint32_t kHpetMaxPeriodFs = 100'000'000;
inline constexpr size_t kHpetMapSize = 1024;

// What every process reading one 32-bit HPET shares (in the group's shared memory): the
// last 64-bit value any of them read. Zero-initialized.
struct HpetShared {
  std::atomic<uint64_t> last{0};
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

class HpetClock {
 public:
  // Maps the HPET registers of `fd` (/dev/hpet, or a file laid out like it in tests)
  // read-only. `shared` extends a 32-bit counter for every process that passes the same
  // one (it must outlive the clock); unused for a 64-bit counter. InvalidArgument: the
  // period is 0 or above 100 ns (the message gives it); FailedPrecondition: the main
  // counter is not enabled; the mmap's errno otherwise.
  static absl::StatusOr<HpetClock> Map(int fd, HpetShared* shared);

  HpetClock(HpetClock&& other) noexcept;
  HpetClock& operator=(HpetClock&& other) noexcept;
  HpetClock(const HpetClock&) = delete;
  HpetClock& operator=(const HpetClock&) = delete;
  ~HpetClock();

  // The main counter as 64 bits. A 32-bit counter is extended from `shared`: every
  // process agrees on the value whenever some process reads at least once per 2^31 ticks
  // (150 s at 14.318 MHz). Thread-safe, process-safe, lock-free.
  uint64_t Read() const;

  uint64_t hz() const { return hz_; }
  uint32_t period_fs() const { return period_fs_; }
  bool counter_is_64_bit() const { return counter64_; }

 private:
  HpetClock(const volatile uint8_t* regs, uint32_t period_fs, bool counter64, HpetShared* shared);
  uint64_t Register(uint64_t offset) const;

  const volatile uint8_t* regs_ = nullptr;
  uint32_t period_fs_ = 0;
  uint64_t hz_ = 0;
  bool counter64_ = false;
  HpetShared* shared_ = nullptr;
};

// Extends a 32-bit reading `low` of a counter, given the last 64-bit value `last` any
// reader saw: the value within 2^31 of `last` whose low half is `low` (a reader whose
// reading is slightly older than `last` gets a value a little below it, never one a wrap
// ahead).
// `last` 0 means no reading yet: the value is `low`.
inline uint64_t ExtendCounter32(uint64_t last, uint32_t low) {
  if (last == 0) return low;
  const int32_t delta = static_cast<int32_t>(low - static_cast<uint32_t>(last));
  if (delta < 0 && static_cast<uint64_t>(-static_cast<int64_t>(delta)) > last) return 0;
  return last + static_cast<uint64_t>(static_cast<int64_t>(delta));
}

}  // namespace keel::timer

#endif  // KEEL_TIMER_CLOCK_H_
