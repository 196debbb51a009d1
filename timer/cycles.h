// keel timer cycles: the group's clock. Cycles() counts ticks of one time source, the
// TSC or the HPET, at Hz() ticks per second, and every process of a group counts the same
// ticks: the primary chooses the source at eal::Init (`--timer-source tsc|hpet|auto`,
// default auto: the HPET when /dev/hpet opens and maps, else the TSC), records it and its
// frequency in the group's shared memory, and secondaries use that record (they never
// recalibrate; for the HPET they get the primary's open /dev/hpet over a unix socket).
//
// Use it for timeouts, rates and timer expiries (DPDK's rte_get_timer_cycles(),
// rte_get_timer_hz(), rte_delay_us_block()). Without the EAL, or before eal::Init, it is
// the TSC, its frequency probed once when first asked.
//
//   const uint64_t deadline = keel::timer::Cycles() + keel::timer::Hz() / 1000;  // 1 ms
//   while (keel::timer::Cycles() < deadline) Poll();
//   keel::timer::DelayUs(10);                                  // busy-waits 10 us
//   keel::timer::SourceInfo info = keel::timer::CurrentSourceInfo();  // source, hz, why
#ifndef KEEL_TIMER_CYCLES_H_
#define KEEL_TIMER_CYCLES_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/optimization.h"
#include "absl/strings/string_view.h"
#include "base/version.h"
#include "timer/clock.h"

namespace keel::timer {

// The timer component's version.
inline constexpr Version kVersion = {0, 1, 0};

// The device `--timer-source hpet|auto` opens in the primary.
inline constexpr char kHpetDevice[] = "/dev/hpet";

enum class Source { kTsc, kHpet };
// "tsc", "hpet".
absl::string_view SourceName(Source source);

}  // namespace keel::timer

namespace keel::timer_internal {
// The HPET clock Cycles() reads, or null for the TSC. Process-local; set by the timer
// component's init hook (timer/source.cc) and reset to null by its cleanup hook.
extern std::atomic<const timer::HpetClock*> g_hpet_clock;
}  // namespace keel::timer_internal

namespace keel::timer {

// The group's clock: ticks of the current source (CurrentSource()), Hz() per second.
// Within a process the values never go backwards (the TSC is synchronized across CPUs
// where it is invariant; the HPET is one counter). Between processes of a group they are
// the same clock: a value read in one process can be compared with one read in another.
// Values read before eal::Init or after eal::Cleanup (the TSC) are not comparable with
// values read during a group on the HPET.
// Fast path: thread-safe, process-safe, lock-free, never blocks or allocates. For the TSC
// it is a load of a process-global, a branch and rdtsc; for the HPET one MMIO read (and
// for a 32-bit HPET a compare-and-swap of the group's shared extension word). In a group
// on the HPET, no thread may call it while the main thread runs eal::Cleanup (which
// unmaps the HPET and the group's memory), as for any use of the group's shared memory.
inline uint64_t Cycles() {
  // Acquire: pairs with the release-store in SetGroupClock() (timer/cycles.cc): a thread
  // that sees the HpetClock sees it constructed and mapped. Free on x86 (a plain load).
  const HpetClock* hpet = timer_internal::g_hpet_clock.load(std::memory_order_acquire);
  if (ABSL_PREDICT_TRUE(hpet == nullptr)) return ReadTsc();
  return hpet->Read();
}

// Ticks of Cycles() per second: the group's recorded frequency between eal::Init and
// eal::Cleanup; otherwise the TSC's, probed once per process (CPUID leaf 0x15 when
// exact, else calibrated against CLOCK_MONOTONIC_RAW, unrounded) on first use (that call
// blocks about 150 ms when it calibrates; concurrent first callers wait for the one
// probe). Thread-safe; after the first call it takes no lock.
uint64_t Hz();

// The source Cycles() reads now. Thread-safe, lock-free.
Source CurrentSource();

// Busy-waits (spins on Cycles() with a pause instruction) until at least `cycles` ticks
// of Cycles() have passed. Does not yield the CPU: for short waits on an lcore (DPDK's
// rte_delay_us_block). Thread-safe; never allocates.
void DelayCycles(uint64_t cycles);
// At least `us` microseconds / `ms` milliseconds, by Hz() (rounded up to whole ticks;
// saturates at 2^64 - 1 ticks). As DelayCycles; the first call may probe the TSC (Hz()).
void DelayUs(uint64_t us);
void DelayMs(uint64_t ms);

// What the current source is and why, for logs, tools and tests.
struct SourceInfo {
  Source source = Source::kTsc;
  uint64_t hz = 0;  // Hz()
  // CPUID 0x80000007 EDX bit 8: the TSC ticks at one rate in every P-, C- and T-state
  // (in a group: as the primary read it). The timer component warns when the group runs
  // on a TSC that is not invariant.
  bool tsc_invariant = false;
  // The TSC's hz came from CPUID leaf 0x15 (exact); false: calibrated. False for the HPET.
  bool hz_from_cpuid = false;
  bool hpet_counter_64_bit = false;  // the HPET's main counter is 64-bit (HPET only)
  // True between eal::Init and eal::Cleanup: the source is the group's choice.
  bool from_group = false;
  // Why this source: "auto: cannot open /dev/hpet: No such file or directory (errno 2)",
  // "--timer-source tsc", "no EAL: the TSC". In a secondary, the primary's reason.
  std::string why;
};
// A copy of the current source's description. Thread-safe; takes a process-local lock;
// probes the TSC (Hz()) when it is the source and was not probed yet; allocates.
SourceInfo CurrentSourceInfo();

// --- Test hooks ------------------------------------------------------------------------

// Makes the primary's eal::Init open `path` instead of /dev/hpet (for --timer-source hpet
// and auto): a file laid out like the HPET's registers, its counter moved by the test.
// "" restores /dev/hpet. Call before eal::Init; secondaries never open the device.
void SetHpetDeviceForTest(absl::string_view path);

// How many times this process probed the TSC's frequency (ProbeTsc: the lazy probe of
// Hz() and a TSC primary's init, which reuses a lazy probe done before). A secondary
// uses the group's frequency and never adds to it.
int TscProbesForTest();

}  // namespace keel::timer

#endif  // KEEL_TIMER_CYCLES_H_
