// interrupts_benchmark: keel's interrupt relay beside DPDK's rte_mp_sendmsg (primary to
// secondary, the nearest DPDK has), in the same run.
//
// This process is the primary of a keel group and of a DPDK group; it starts one
// secondary of each (this binary again, --child=keel|dpdk), which subscribes ("bench":
// keel::interrupts::Subscribe / rte_mp_action_register) and records, for every event,
// CLOCK_MONOTONIC at its callback minus the send time the payload carries, in a memfd
// shared with the parent. Each case measures keel, then DPDK, in one run:
//   BM_Latency/PLACEMENT/SIZE     one-way latency of events sent one at a time, each
//                                 after the previous arrived and 100 us of quiet (the
//                                 subscriber sleeps: every event is a wake-up); median
//                                 and p99 of kLatencyEvents
//   BM_Throughput/PLACEMENT/SIZE  events per second, kThroughputEvents sent back to back
//                                 (keel: unicast Publish, retried while the mailbox is
//                                 full; DPDK: rte_mp_sendmsg, which blocks while the
//                                 secondary's socket is full), until the last arrived
//   PLACEMENT: separate (publisher on CPU 0, every thread of the subscriber on CPU 1) or
//   one (every thread of both on CPU 0). SIZE: payload bytes (DPDK carries at most 256).
// Then a table: every run's keel/DPDK ratio, against the targets.
#include <dirent.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "base/monotonic.h"
#include "eal/eal.h"
#include "interrupts/interrupts.h"
#include "tools/bench/dpdk_peer.h"
#include "tools/bench/figures.h"

extern char** environ;

namespace {

namespace intr = keel::interrupts;
using keel::MonotonicNs;

constexpr int kLatencyEvents = 2000;
constexpr uint64_t kThroughputEvents = 200'000;
constexpr char kType[] = "bench";
enum Side { kKeel = 0, kDpdk = 1 };
constexpr const char* kSideName[] = {"keel", "DPDK"};

// Shared with the children (a memfd they inherit).
struct Shared {
  std::atomic<int64_t> ready[2];  // the child's pid once it subscribed
  std::atomic<uint64_t> received[2];
  std::atomic<uint64_t> stop;
  std::atomic<int64_t> busy_poll_ns;          // the parent's request to the keel child
  std::atomic<int64_t> busy_poll_applied_ns;  // the child's answer
  int64_t latency_ns[2][kLatencyEvents];
};
Shared* g_shared = nullptr;

struct Payload {
  uint64_t index;
  uint64_t sent_ns;
};

void Arrived(Side side, const void* data, size_t size) {
  const uint64_t now = MonotonicNs();
  Payload p;
  if (size < sizeof(p)) return;
  std::memcpy(&p, data, sizeof(p));
  if (p.index < static_cast<uint64_t>(kLatencyEvents)) {
    g_shared->latency_ns[side][p.index] = static_cast<int64_t>(now - p.sent_ns);
  }
  // Release: the parent that sees the count sees the sample.
  g_shared->received[side].fetch_add(1, std::memory_order_release);
}

void OnKeelEvent(const intr::Event& e, void*) {
  Arrived(kKeel, e.payload.data(), e.payload.size());
}

int OnDpdkMessage(const rte_mp_msg* msg, const void*) {
  Arrived(kDpdk, msg->param, static_cast<size_t>(msg->len_param));
  return 0;
}

// Until the parent says stop; the keel child applies busy-poll requests meanwhile.
void WaitForStop(bool keel) {
  while (g_shared->stop.load() == 0) {
    absl::SleepFor(absl::Milliseconds(1));
    const int64_t want = g_shared->busy_poll_ns.load();
    if (keel && want != g_shared->busy_poll_applied_ns.load() &&
        intr::SetBusyPoll(absl::Nanoseconds(want)).ok()) {
      g_shared->busy_poll_applied_ns = want;
    }
  }
}

int KeelChild(const std::string& prefix) {
  std::vector<std::string> args = {"interrupts_benchmark",
                                   "--proc-type",
                                   "secondary",
                                   "--file-prefix",
                                   prefix,
                                   "--lcores",
                                   "1@1"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  absl::StatusOr<std::vector<std::string>> init =
      keel::eal::Init(static_cast<int>(argv.size()), argv.data());
  if (!init.ok()) {
    std::fprintf(stderr, "keel child: %s\n", init.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<intr::SubscriptionId> sub = intr::Subscribe(kType, OnKeelEvent, nullptr);
  if (!sub.ok()) {
    std::fprintf(stderr, "keel child: %s\n", sub.status().ToString().c_str());
    return 1;
  }
  g_shared->ready[kKeel] = getpid();
  WaitForStop(true);
  return keel::eal::Cleanup().ok() ? 0 : 1;
}

int DpdkChild(const std::string& prefix) {
  std::string how;
  keel::bench::DpdkEal eal;
  eal.lcores = "1";
  eal.prefix = prefix.c_str();
  eal.multi_process = true;
  eal.secondary = true;
  if (!keel::bench::InitDpdkEal(eal, &how)) return 1;
  if (rte_mp_action_register(kType, OnDpdkMessage) != 0) {
    std::fprintf(stderr, "DPDK child: rte_mp_action_register: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  g_shared->ready[kDpdk] = getpid();
  WaitForStop(false);
  rte_mp_action_unregister(kType);
  keel::bench::CleanupDpdkEal();
  return 0;
}

// --- The parent ---------------------------------------------------------------------------

pid_t g_child[2] = {-1, -1};
bool g_dpdk = false;     // the DPDK side runs
std::string g_dpdk_why;  // why not
intr::EventType g_type;

// Every thread of `pid` on `cpu`.
void Pin(pid_t pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    int tid;
    if (absl::SimpleAtoi(e->d_name, &tid)) sched_setaffinity(tid, sizeof(set), &set);
  }
  closedir(d);
}

enum Placement { kSeparate = 0, kOne = 1 };

void Place(Side side, Placement placement) {
  Pin(getpid(), 0);
  Pin(g_child[side], placement == kSeparate ? 1 : 0);
}

// Sends one event; false on a failure other than a full mailbox (counted in *full).
bool Send(Side side, const Payload& p, size_t size, uint64_t* full) {
  unsigned char buffer[256] = {};
  std::memcpy(buffer, &p, sizeof(p));
  if (side == kKeel) {
    for (;;) {
      const absl::Status s =
          intr::Publish(g_type, buffer, size, static_cast<pid_t>(g_child[kKeel]));
      if (s.ok()) return true;
      if (!absl::IsResourceExhausted(s)) {
        std::fprintf(stderr, "keel Publish: %s\n", s.ToString().c_str());
        return false;
      }
      ++*full;
      sched_yield();
    }
  }
  rte_mp_msg msg = {};
  std::snprintf(msg.name, sizeof(msg.name), "%s", kType);
  msg.len_param = static_cast<int>(size);
  std::memcpy(msg.param, buffer, size);
  if (rte_mp_sendmsg(&msg) != 0) {
    std::fprintf(stderr, "rte_mp_sendmsg: %s\n", rte_strerror(rte_errno));
    return false;
  }
  return true;
}

// Waits (yielding the CPU: the subscriber may share it) until `count` events arrived.
bool AwaitReceived(Side side, uint64_t count) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  // Acquire: pairs with Arrived's release: the samples are written.
  while (g_shared->received[side].load(std::memory_order_acquire) < count) {
    if (absl::Now() > deadline) return false;
    sched_yield();
  }
  return true;
}

struct LatencyResult {
  double median_us = 0;
  double p99_us = 0;
};

bool MeasureLatency(Side side, Placement placement, size_t size, LatencyResult* out) {
  Place(side, placement);
  g_shared->received[side] = 0;
  uint64_t full = 0;
  for (int i = 0; i < kLatencyEvents; ++i) {
    absl::SleepFor(absl::Microseconds(100));  // the subscriber goes back to sleep
    if (!Send(side, Payload{static_cast<uint64_t>(i), MonotonicNs()}, size, &full)) return false;
    if (!AwaitReceived(side, i + 1)) return false;
  }
  std::vector<int64_t> v(g_shared->latency_ns[side], g_shared->latency_ns[side] + kLatencyEvents);
  std::sort(v.begin(), v.end());
  out->median_us = v[v.size() / 2] / 1e3;
  out->p99_us = v[v.size() * 99 / 100] / 1e3;
  return true;
}

bool MeasureThroughput(Side side, Placement placement, size_t size, double* events_per_s) {
  Place(side, placement);
  g_shared->received[side] = 0;
  uint64_t full = 0;
  const uint64_t start = MonotonicNs();
  for (uint64_t i = 0; i < kThroughputEvents; ++i) {
    if (!Send(side, Payload{kLatencyEvents + i, MonotonicNs()}, size, &full)) return false;
  }
  if (!AwaitReceived(side, kThroughputEvents)) return false;
  *events_per_s = kThroughputEvents / ((MonotonicNs() - start) / 1e9);
  return true;
}

// Every run's numbers, by case, for the table.
struct Run {
  double keel = 0, dpdk = 0, keel_p99 = 0, dpdk_p99 = 0;
};
std::map<std::string, std::vector<Run>>& Runs() {
  static auto* runs = new std::map<std::string, std::vector<Run>>;
  return *runs;
}

const char* PlacementName(Placement p) { return p == kSeparate ? "separate" : "one"; }

// Asks the keel child for a busy-poll window (SetBusyPoll) and waits until it applied it.
void ApplyBusyPoll(int64_t window_ns) {
  g_shared->busy_poll_ns = window_ns;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (g_shared->busy_poll_applied_ns.load() != window_ns && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
}

// busy_poll: keel's subscriber with SetBusyPoll(200 us), beside DPDK's (sleeping) rte_mp:
// events 100 us apart arrive while it watches its mailbox, without a wake-up.
void BM_Latency(benchmark::State& state, Placement placement, size_t size, bool busy_poll) {
  Run run;
  for (auto _ : state) {
    LatencyResult r[2];
    if (busy_poll) ApplyBusyPoll(200'000);
    const bool keel = MeasureLatency(kKeel, placement, size, &r[kKeel]);
    if (busy_poll) ApplyBusyPoll(0);
    if (!keel) {
      state.SkipWithError("keel: an event did not arrive");
      return;
    }
    if (g_dpdk && !MeasureLatency(kDpdk, placement, size, &r[kDpdk])) {
      state.SkipWithError("DPDK: an event did not arrive");
      return;
    }
    run = {r[kKeel].median_us, r[kDpdk].median_us, r[kKeel].p99_us, r[kDpdk].p99_us};
  }
  state.counters["keel_median_us"] = run.keel;
  state.counters["keel_p99_us"] = run.keel_p99;
  if (g_dpdk) {
    state.counters["dpdk_median_us"] = run.dpdk;
    state.counters["dpdk_p99_us"] = run.dpdk_p99;
    state.counters["median_ratio"] = run.keel / run.dpdk;
  }
  Runs()[absl::StrFormat("latency %s %d B%s", PlacementName(placement), size,
                         busy_poll ? " busy-poll" : "")]
      .push_back(run);
}

void BM_Throughput(benchmark::State& state, Placement placement, size_t size) {
  Run run;
  for (auto _ : state) {
    if (!MeasureThroughput(kKeel, placement, size, &run.keel)) {
      state.SkipWithError("keel: events did not arrive");
      return;
    }
    if (g_dpdk && !MeasureThroughput(kDpdk, placement, size, &run.dpdk)) {
      state.SkipWithError("DPDK: events did not arrive");
      return;
    }
  }
  state.counters["keel_events_per_s"] = run.keel;
  if (g_dpdk) {
    state.counters["dpdk_events_per_s"] = run.dpdk;
    state.counters["ratio"] = run.keel / run.dpdk;
  }
  Runs()[absl::StrFormat("throughput %s %d B", PlacementName(placement), size)].push_back(run);
}

void PrintTable() {
  std::printf(
      "\nkeel/DPDK, primary to one secondary (keel: interrupts::Publish unicast; DPDK: "
      "rte_mp_sendmsg)%s\n",
      g_dpdk ? "" : absl::StrCat(" -- DPDK did not run: ", g_dpdk_why).c_str());
  std::printf("%-36s %-24s %s\n", "case", "target", "every run: keel / DPDK = ratio");
  for (const auto& [name, runs] : Runs()) {
    const bool latency = name.rfind("latency", 0) == 0;
    std::string line;
    bool met = !runs.empty();
    for (const Run& r : runs) {
      const double ratio = g_dpdk ? r.keel / r.dpdk : 0;
      met = met && g_dpdk && (latency ? ratio <= 0.5 : ratio >= 10);
      if (latency) {
        absl::StrAppendFormat(&line, "  %.1f/%.1f us (p99 %.0f/%.0f) = %.2f", r.keel, r.dpdk,
                              r.keel_p99, r.dpdk_p99, ratio);
      } else {
        absl::StrAppendFormat(&line, "  %.2fM/%.3fM = %.1f", r.keel / 1e6, r.dpdk / 1e6, ratio);
      }
    }
    std::printf(
        "%-36s %-24s%s\n", name.c_str(),
        absl::StrCat(latency ? "median <= 0.5x" : "events/s >= 10x", met ? " (met)" : " (missed)")
            .c_str(),
        line.c_str());
    // The median run of each side (runs are 1 here unless --benchmark_repetitions).
    std::vector<double> keel, dpdk;
    for (const Run& r : runs) {
      keel.push_back(r.keel);
      dpdk.push_back(g_dpdk ? r.dpdk : 0);
    }
    std::sort(keel.begin(), keel.end());
    std::sort(dpdk.begin(), dpdk.end());
    if (!runs.empty()) {
      const double scale = latency ? 1 : 1e-6;
      keel::bench::RecordFigure({"primary to one secondary", name,
                                 latency ? "us median latency" : "M events/s",
                                 keel[keel.size() / 2] * scale, dpdk[dpdk.size() / 2] * scale,
                                 latency ? keel::bench::Better::kLower
                                         : keel::bench::Better::kHigher});
    }
  }
}

pid_t SpawnChild(const char* kind, const std::string& prefix, int memfd) {
  std::vector<std::string> args = {"/proc/self/exe", absl::StrCat("--child=", kind), prefix,
                                   absl::StrCat(memfd)};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

bool AwaitReady(Side side) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (g_shared->ready[side].load() == 0) {
    int status;
    if (waitpid(g_child[side], &status, WNOHANG) == g_child[side]) return false;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

void StopChildren() {
  g_shared->stop = 1;
  for (pid_t pid : g_child) {
    if (pid > 0) waitpid(pid, nullptr, 0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strncmp(argv[1], "--child=", 8) == 0) {
    int fd;
    if (!absl::SimpleAtoi(argv[3], &fd)) return 1;
    void* p = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 1;
    g_shared = static_cast<Shared*>(p);
    return std::strcmp(argv[1] + 8, "keel") == 0 ? KeelChild(argv[2]) : DpdkChild(argv[2]);
  }
  if (!keel::bench::InitBenchmark(argc, argv)) return 1;
  // Sleeps of the latency loop end when asked, not up to 50 us later.
  prctl(PR_SET_TIMERSLACK, 1UL);
  const int memfd = memfd_create("interrupts_benchmark", 0);  // inherited by the children
  if (memfd < 0 || ftruncate(memfd, sizeof(Shared)) != 0) return 1;
  void* p = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (p == MAP_FAILED) return 1;
  g_shared = new (p) Shared();

  const std::string keel_prefix = absl::StrCat("bench-intr-keel-", getpid());
  const std::string dpdk_prefix = absl::StrCat("bench-intr-dpdk-", getpid());
  std::vector<std::string> args = {
      "interrupts_benchmark", "-l", "0", "--file-prefix", keel_prefix, "-m", "64"};
  // keel on hugepages when 64 MiB of them are free beside DPDK's 64 MiB, else --no-huge.
  long free_pages = 0;
  if (FILE* f = std::fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r")) {
    if (std::fscanf(f, "%ld", &free_pages) != 1) free_pages = 0;
    std::fclose(f);
  }
  if (free_pages < 64) args.push_back("--no-huge");
  std::vector<char*> eal_argv;
  for (std::string& a : args) eal_argv.push_back(a.data());
  absl::StatusOr<std::vector<std::string>> init =
      keel::eal::Init(static_cast<int>(eal_argv.size()), eal_argv.data());
  if (!init.ok()) {
    std::fprintf(stderr, "keel eal::Init: %s\n", init.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<intr::EventType> type = intr::RegisterType(kType);
  if (!type.ok()) return 1;
  g_type = *type;

  std::string how;
  keel::bench::DpdkEal eal;
  eal.lcores = "0";
  eal.hugepages = 32;
  eal.prefix = dpdk_prefix.c_str();
  eal.multi_process = true;
  g_dpdk = keel::bench::InitDpdkEal(eal, &how);
  if (!g_dpdk) g_dpdk_why = "its EAL did not start (see above; it needs 2 MiB hugepages)";

  g_child[kKeel] = SpawnChild("keel", keel_prefix, memfd);
  if (g_child[kKeel] < 0 || !AwaitReady(kKeel)) {
    std::fprintf(stderr, "the keel subscriber did not start\n");
    return 1;
  }
  if (g_dpdk) {
    g_child[kDpdk] = SpawnChild("dpdk", dpdk_prefix, memfd);
    if (g_child[kDpdk] < 0 || !AwaitReady(kDpdk)) {
      g_dpdk = false;
      g_dpdk_why = "its secondary did not start";
    }
  }
  std::printf("keel: %s; DPDK: %s\n", args.back() == "--no-huge" ? "--no-huge" : "hugepages",
              g_dpdk ? how.c_str() : g_dpdk_why.c_str());
  for (Placement placement : {kSeparate, kOne}) {
    for (size_t size : {16, 256}) {
      const std::string suffix = absl::StrCat(PlacementName(placement), "/", size);
      benchmark::RegisterBenchmark(("BM_Latency/" + suffix).c_str(), BM_Latency, placement, size,
                                   false)
          ->Iterations(1)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("BM_Throughput/" + suffix).c_str(), BM_Throughput, placement,
                                   size)
          ->Iterations(1)
          ->Unit(benchmark::kMillisecond);
    }
  }
  // Busy-polling shares no CPU well: across CPUs only.
  benchmark::RegisterBenchmark("BM_LatencyBusyPoll/separate/16", BM_Latency, kSeparate, size_t{16},
                               true)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  PrintTable();
  StopChildren();
  (void)keel::eal::Cleanup();
  if (g_dpdk) keel::bench::CleanupDpdkEal();
  return 0;
}
