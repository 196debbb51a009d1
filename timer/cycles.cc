// The cycles API over the process-local choice of source (timer/internal/state.h).
#include "timer/cycles.h"

#include <immintrin.h>

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "timer/internal/state.h"

namespace keel::timer_internal {

std::atomic<const timer::HpetClock*> g_hpet_clock{nullptr};

namespace {

// The TSC's frequency once known (0 before): the lazy probe's, or the group's. A plain
// number, published alone: relaxed loads and stores (the writers hold Local::mu, which
// orders them among themselves).
std::atomic<uint64_t> g_tsc_hz{0};

struct Local {
  absl::Mutex mu;
  bool tsc_known ABSL_GUARDED_BY(mu) = false;
  timer::TscInfo tsc ABSL_GUARDED_BY(mu);
  int probes ABSL_GUARDED_BY(mu) = 0;
  bool in_group ABSL_GUARDED_BY(mu) = false;
  timer::SourceInfo group ABSL_GUARDED_BY(mu);  // while in_group
  // CurrentSourceInfo().why outside a group.
  std::string own_why ABSL_GUARDED_BY(mu) =
      "not in a group (before eal::Init, or without the EAL): the TSC";
  std::string hpet_device ABSL_GUARDED_BY(mu) = timer::kHpetDevice;
};

Local& TheLocal() {
  static Local* local = new Local;
  return *local;
}

timer::TscInfo ProcessTscLocked(Local& l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(l.mu) {
  if (!l.tsc_known) {
    l.tsc = timer::ProbeTsc();
    ++l.probes;
    l.tsc_known = true;
    // Relaxed: see g_tsc_hz.
    g_tsc_hz.store(l.tsc.hz, std::memory_order_relaxed);
  }
  return l.tsc;
}

// Ticks of `amount` units of which `per_second` make a second, rounded up, saturated.
uint64_t CyclesFor(uint64_t amount, uint64_t per_second) {
  const unsigned __int128 ticks =
      (static_cast<unsigned __int128>(amount) * timer::Hz() + per_second - 1) / per_second;
  return ticks > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(ticks);
}

}  // namespace

timer::TscInfo ProcessTsc() {
  Local& l = TheLocal();
  absl::MutexLock lock(&l.mu);
  return ProcessTscLocked(l);
}

void SetGroupClock(const timer::HpetClock* hpet, const timer::SourceInfo& info) {
  Local& l = TheLocal();
  absl::MutexLock lock(&l.mu);
  l.in_group = true;
  l.group = info;
  l.group.from_group = true;
  if (info.source == timer::Source::kTsc) {
    l.tsc = {info.hz, info.tsc_invariant, info.hz_from_cpuid};
    l.tsc_known = true;
    // Relaxed: see g_tsc_hz.
    g_tsc_hz.store(info.hz, std::memory_order_relaxed);
  }
  // R0: release-store. Pairs with the acquire-loads in Cycles() and Hz(): a thread that
  // sees `hpet` sees the clock constructed and its registers mapped.
  g_hpet_clock.store(hpet, std::memory_order_release);
}

void ClearGroupClock(absl::string_view why) {
  Local& l = TheLocal();
  absl::MutexLock lock(&l.mu);
  // Release for symmetry with R0; nothing is published with null.
  g_hpet_clock.store(nullptr, std::memory_order_release);
  l.in_group = false;
  l.group = timer::SourceInfo();
  l.own_why = std::string(why);
}

std::string HpetDevice() {
  Local& l = TheLocal();
  absl::MutexLock lock(&l.mu);
  return l.hpet_device;
}

}  // namespace keel::timer_internal

namespace keel::timer {

using timer_internal::g_hpet_clock;
using timer_internal::g_tsc_hz;

absl::string_view SourceName(Source source) {
  switch (source) {
    case Source::kTsc:
      return "tsc";
    case Source::kHpet:
      return "hpet";
  }
  return "unknown";
}

uint64_t Hz() {
  // Acquire: pairs with R0 in SetGroupClock (the clock's fields).
  if (const HpetClock* hpet = g_hpet_clock.load(std::memory_order_acquire)) return hpet->hz();
  // Relaxed: see g_tsc_hz.
  const uint64_t hz = g_tsc_hz.load(std::memory_order_relaxed);
  if (ABSL_PREDICT_TRUE(hz != 0)) return hz;
  return timer_internal::ProcessTsc().hz;
}

Source CurrentSource() {
  // Relaxed: only the pointer's nullness is used.
  return g_hpet_clock.load(std::memory_order_relaxed) == nullptr ? Source::kTsc : Source::kHpet;
}

void DelayCycles(uint64_t cycles) {
  const uint64_t start = Cycles();
  for (;;) {
    const uint64_t now = Cycles();
    if (now >= start && now - start >= cycles) return;
    _mm_pause();
  }
}

void DelayUs(uint64_t us) { DelayCycles(timer_internal::CyclesFor(us, 1'000'000)); }

void DelayMs(uint64_t ms) { DelayCycles(timer_internal::CyclesFor(ms, 1'000)); }

SourceInfo CurrentSourceInfo() {
  timer_internal::Local& l = timer_internal::TheLocal();
  absl::MutexLock lock(&l.mu);
  if (l.in_group) return l.group;
  const TscInfo tsc = timer_internal::ProcessTscLocked(l);
  SourceInfo info;
  info.source = Source::kTsc;
  info.hz = tsc.hz;
  info.tsc_invariant = tsc.invariant;
  info.hz_from_cpuid = tsc.from_cpuid;
  info.why = l.own_why;
  return info;
}

void SetHpetDeviceForTest(absl::string_view path) {
  timer_internal::Local& l = timer_internal::TheLocal();
  absl::MutexLock lock(&l.mu);
  l.hpet_device = path.empty() ? std::string(kHpetDevice) : std::string(path);
}

int TscProbesForTest() {
  timer_internal::Local& l = timer_internal::TheLocal();
  absl::MutexLock lock(&l.mu);
  return l.probes;
}

}  // namespace keel::timer
