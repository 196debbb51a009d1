#include "examples/common/sample.h"

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "examples/common/port.h"
#include "interrupts/interrupts.h"

namespace keel::examples {
namespace {

std::atomic<bool> g_quit{false};
std::atomic<int> g_link_toggles{0};

void OnSignal(int signal) {
  if (signal == SIGUSR1) {
    g_link_toggles.fetch_add(1);
  } else {
    g_quit.store(true);
  }
}

void PrintLink(const interrupts::Event& e, void* arg) {
  LinkEvent link;
  if (e.payload.size() != sizeof(link)) return;
  std::memcpy(&link, e.payload.data(), sizeof(link));
  std::printf("%sPort %u Link %s\n", static_cast<const std::string*>(arg)->c_str(), link.port,
              link.up ? "Up" : "Down");
  std::fflush(stdout);
}

constexpr char kTimerSet[] = "samples.timers";

// The callbacks StartPeriodic arms: fn and arg per timer, by callback name.
struct Periodic {
  void (*fn)(void*);
  void* arg;
};
void RunPeriodic(timer::TimerSet&, timer::Timer, void* arg) {
  const auto* p = static_cast<const Periodic*>(arg);
  p->fn(p->arg);
}

}  // namespace

absl::StatusOr<uint32_t> ParsePortMask(absl::string_view text) {
  absl::string_view digits = text;
  absl::ConsumePrefix(&digits, "0x");
  uint32_t mask = 0;
  if (digits.empty() || !absl::SimpleHexAtoi(digits, &mask) || mask == 0 ||
      (mask >> kMaxPorts) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "-p \"%s\": give a hexadecimal mask of ports 0..%u, not empty", text, kMaxPorts - 1));
  }
  return mask;
}

absl::StatusOr<uint64_t> ParseNumber(absl::string_view flag, absl::string_view text, uint64_t min,
                                     uint64_t max) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < min || v > max) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s \"%s\": give a number from %d to %d", flag, text, min, max));
  }
  return v;
}

absl::StatusOr<std::string> FlagValue(const std::vector<std::string>& args, size_t* i) {
  if (*i + 1 >= args.size()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s needs a value", args[*i]));
  }
  return args[++*i];
}

void InstallSignals() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGUSR1}) sigaction(s, &sa, nullptr);
}

bool QuitRequested() { return g_quit.load(std::memory_order_relaxed); }

bool TakeLinkToggle() {
  int n = g_link_toggles.load(std::memory_order_relaxed);
  while (n > 0 && !g_link_toggles.compare_exchange_weak(n, n - 1)) {
  }
  return n > 0;
}

absl::Status PrintLinkEvents(const std::string& who) {
  static std::string* prefix = new std::string(who);
  return interrupts::Subscribe(kLinkEventType, PrintLink, prefix).status();
}

absl::StatusOr<PeriodicTimer> StartPeriodic(absl::string_view name, void (*fn)(void*), void* arg,
                                            uint64_t period_ms, unsigned lcore) {
  if (absl::Status s = timer::RegisterCallback(name, RunPeriodic); !s.ok()) return s;
  absl::StatusOr<timer::TimerSet> set = timer::Lookup(kTimerSet);
  if (!set.ok() && absl::IsNotFound(set.status())) set = timer::Create({kTimerSet, 256});
  if (!set.ok() && absl::IsAlreadyExists(set.status())) set = timer::Lookup(kTimerSet);
  if (!set.ok()) return set.status();
  absl::StatusOr<timer::Timer> t = set->NewTimer();
  if (!t.ok()) return t.status();
  absl::StatusOr<timer::CallbackId> cb = set->AddCallback(name);
  if (!cb.ok()) return cb.status();
  auto* periodic = new Periodic{fn, arg};  // lives as long as the timer (the process)
  const uint64_t ticks = timer::Hz() * period_ms / 1000;
  const timer::Result r =
      timer::Reset(*set, *t, ticks, timer::Mode::kPeriodic, lcore, *cb, periodic);
  if (r != timer::Result::kOk) {
    return absl::InternalError(
        absl::StrFormat("timer \"%s\": Reset failed (%d)", name, static_cast<int>(r)));
  }
  return PeriodicTimer{*set, *t};
}

}  // namespace keel::examples
