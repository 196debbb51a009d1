#include "examples/common/sample.h"

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "eal/eal.h"
#include "examples/common/port.h"
#include "interrupts/interrupts.h"

namespace keel::examples {
namespace {

std::atomic<int> g_quit_signal{0};
std::atomic<int> g_link_toggles{0};

void OnSignal(int signal) {
  if (signal == SIGUSR1) {
    g_link_toggles.fetch_add(1);
  } else {
    g_quit_signal.store(signal);
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

// What StartPeriodic armed in this process, by timer id. The timers' own argument is
// null: a timer of a dead process that this process's lcore adopted (timer/README) must
// not run a pointer of that process; it is not in this table and is stopped.
struct Periodic {
  void (*fn)(void*);
  void* arg;
};
std::mutex g_periodic_mu;
std::map<uint32_t, Periodic>* g_periodic = new std::map<uint32_t, Periodic>;

void RunPeriodic(timer::TimerSet& set, timer::Timer t, void*) {
  Periodic p = {nullptr, nullptr};
  {
    std::lock_guard<std::mutex> lock(g_periodic_mu);
    auto it = g_periodic->find(t.id);
    if (it != g_periodic->end()) p = it->second;
  }
  if (p.fn == nullptr) {
    (void)timer::Stop(set, t);  // a dead process's timer, adopted with its lcore
    return;
  }
  p.fn(p.arg);
}

}  // namespace

int SampleMain(int argc, char** argv, const char* name, const char* usage,
               const std::function<int(const std::vector<std::string>&)>& body) {
  absl::StatusOr<std::vector<std::string>> args = eal::Init(argc, argv);
  if (!args.ok()) {
    if (absl::IsCancelled(args.status())) {
      std::fputs(usage, stdout);
      return 0;
    }
    std::fprintf(stderr, "%s: %s\n", name, args.status().ToString().c_str());
    return 1;
  }
  InstallSignals();
  const int rc = body(*args);
  if (absl::Status s = eal::Cleanup(); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", name, s.ToString().c_str());
    return 1;
  }
  return rc;
}

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

absl::StatusOr<bool> ParseTrafficFlag(const std::vector<std::string>& args, size_t* i,
                                      TrafficOptions* o) {
  const std::string& flag = args[*i];
  if (flag == "--link-down") {
    o->link_down = true;
    return true;
  }
  if (flag != "--ports" && flag != "--flows" && flag != "--packets" && flag != "--rate") {
    return false;
  }
  absl::StatusOr<std::string> v = FlagValue(args, i);
  if (!v.ok()) return v.status();
  if (flag == "--ports") {
    if (*v != "null" && *v != "generator") {
      return absl::InvalidArgumentError(
          absl::StrFormat("--ports \"%s\": give null or generator", *v));
    }
    o->kind = *v == "generator" ? PortKind::kGenerator : PortKind::kNull;
    return true;
  }
  absl::StatusOr<uint64_t> n =
      flag == "--flows" ? ParseNumber(flag, *v, 1, 1 << 20) : ParseNumber(flag, *v, 0, UINT64_MAX);
  if (!n.ok()) return n.status();
  if (flag == "--flows") o->flows = static_cast<unsigned>(*n);
  if (flag == "--packets") o->packets = *n;
  if (flag == "--rate") o->rate = *n;
  return true;
}

void ApplyTraffic(const TrafficOptions& o, PortConfig* config) {
  config->kind = o.kind;
  config->flows = o.flows;
  config->packets = o.packets;
  config->rate_pps = o.rate;
  config->link_up = !o.link_down;
}

void InstallSignals() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGUSR1}) sigaction(s, &sa, nullptr);
}

bool QuitRequested() { return g_quit_signal.load(std::memory_order_relaxed) != 0; }

int QuitSignal() { return g_quit_signal.load(std::memory_order_relaxed); }

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
  {
    std::lock_guard<std::mutex> lock(g_periodic_mu);
    (*g_periodic)[t->id] = Periodic{fn, arg};
  }
  const uint64_t ticks = timer::Hz() * period_ms / 1000;
  // kSkip: an lcore that was busy prints one screen late, not several back to back.
  const timer::Result r = timer::Reset(*set, *t, ticks, timer::Mode::kPeriodic, lcore, *cb, nullptr,
                                       timer::Late::kSkip);
  if (r != timer::Result::kOk) {
    return absl::InternalError(
        absl::StrFormat("timer \"%s\": Reset failed (%d)", name, static_cast<int>(r)));
  }
  return PeriodicTimer{*set, *t};
}

void StopPeriodic(PeriodicTimer& p) {
  (void)timer::StopSync(p.set, p.timer);
  {
    std::lock_guard<std::mutex> lock(g_periodic_mu);
    g_periodic->erase(p.timer.id);
  }
  (void)p.set.DeleteTimer(p.timer);
}

}  // namespace keel::examples
