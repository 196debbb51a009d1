// The timer component's shared state: the group's clock record, in the memzone
// kClockMemzone of the group's shared memory (//memory), mapped by every process.
//
// Shared-memory rules (STYLE.md, as in eal/internal/layout.h):
// - Only standard-layout structs whose plain fields are trivially copyable;
//   static_assert'ed below.
// - Atomics are std::atomic<uint64_t> and always lock-free.
// - No pointers to process-local things, no function pointers, no vtables, no
//   std::string, no absl::Mutex. Text is a fixed char array, NUL-padded.
// - The record carries kLayoutVersion; a process built with another is refused (the EAL
//   checks the component's layout version when a process joins; the record repeats it).
// - Everything read from the record is untrusted: a secondary checks the magic, the
//   version, the source and the frequency before using them, and reads `why` with
//   NameOf and escapes it in messages.
//
// Life cycle: the primary reserves the memzone during eal::Init (the timer component's
// init hook, after //memory's), fills every field, writes `magic` last, and only then
// does the EAL publish the group ready (eal/internal/layout.h, I0), which is what
// secondaries wait for before reading it. A kill before `magic` is written leaves a
// record nobody reads (the primary died during init: no secondary attaches). After init
// only `hpet` changes (every reader of a 32-bit HPET moves it, compare-and-swap), on a
// cache line of its own. The record lives as long as the group's memory; nobody frees it.
//
// Issue 15 (a new primary adopting a live group) can rebuild all of its process-local
// state from this record: the source and frequency are here, the HPET extension state is
// here, and the HPET's fd can be reopened from the device path (see timer/source.cc).
#ifndef KEEL_TIMER_INTERNAL_LAYOUT_H_
#define KEEL_TIMER_INTERNAL_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "timer/clock.h"

namespace keel::timer_internal {

// Bump on any change to the structs in this file.
inline constexpr uint32_t kLayoutVersion = 1;  // unreleased: no older layout to refuse
inline constexpr uint64_t kClockMagic = 0x316b6c63726d6974ULL;  // "timrclk1"
// The memzone that holds the ClockRecord.
inline constexpr char kClockMemzone[] = "keel.timer.clock";
inline constexpr int kWhySize = 512;

// ClockRecord::source.
enum SharedSource : uint32_t { kSharedTsc = 0, kSharedHpet = 1 };

// The group's time source, as its primary chose it.
struct alignas(64) ClockRecord {
  uint64_t magic;           // kClockMagic; written last by the primary
  uint32_t layout_version;  // kLayoutVersion
  uint32_t source;          // SharedSource
  // Ticks per second of Cycles(): the TSC's (CPUID leaf 0x15, else calibrated by the
  // primary, unrounded) or the HPET's (from its period). Secondaries use it as it is.
  uint64_t hz;
  uint32_t tsc_invariant;        // 1: CPUID 0x80000007 EDX bit 8, on the primary's CPU
  uint32_t hz_from_cpuid;        // 1: a TSC frequency from CPUID leaf 0x15 (exact)
  uint32_t hpet_period_fs;       // HPET: the capabilities register's period; 0 for the TSC
  uint32_t hpet_counter_64_bit;  // HPET: 1 when its main counter has 64 bits
  int32_t primary_pid;           // who filled the record (as its PID namespace sees it)
  uint32_t reserved;
  // Why the primary chose the source ("auto: cannot open /dev/hpet: ..."), NUL-padded;
  // cut to kWhySize - 1 bytes, ending in "..." when cut.
  char why[kWhySize];
  // A 32-bit HPET's extension to 64 bits, shared by every process reading it
  // (HpetClock::Read). Zero-initialized by the primary; unused for the TSC and a 64-bit
  // HPET. On its own cache line: the only field written after init.
  alignas(64) timer::HpetShared hpet;
};

static_assert(std::is_standard_layout_v<ClockRecord>);
static_assert(std::is_standard_layout_v<timer::HpetShared>);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(timer::HpetShared) == sizeof(uint64_t));
static_assert(offsetof(ClockRecord, magic) == 0);
static_assert(offsetof(ClockRecord, why) + kWhySize <= offsetof(ClockRecord, hpet));
static_assert(offsetof(ClockRecord, hpet) % 64 == 0);
static_assert(sizeof(ClockRecord) % 64 == 0);

// What the primary's fd server sends with the HPET's fd (SCM_RIGHTS): a secondary
// takes only a message that says this.
struct FdMessage {
  uint64_t magic;           // kFdMagic
  uint32_t layout_version;  // kLayoutVersion
  uint32_t reserved;
};
inline constexpr uint64_t kFdMagic = 0x3130646674657068ULL;  // "hpetfd01"
static_assert(std::is_trivially_copyable_v<FdMessage>);

}  // namespace keel::timer_internal

#endif  // KEEL_TIMER_INTERNAL_LAYOUT_H_
