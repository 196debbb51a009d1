// symmetric_mp: DPDK's symmetric multi-process sample on keel. N processes, each the
// same program: process I polls RX queue I of every port and forwards port pairs
// (0 <-> 1, 2 <-> 3) on TX queue I. The primary (any --proc-id, with --num-procs)
// creates the packet pool and the ports, with N queues each; secondaries look them up.
// Every process counts RX, TX and drops per port, prints them every few seconds (a keel
// timer on its main lcore) and on SIGINT or SIGTERM, and prints the link changes the
// primary makes (SIGUSR1 to the primary toggles every port's link; --link-down starts
// with them down, so no traffic flows before the first SIGUSR1).
//
//   symmetric_mp [EAL options] -- -p PORTMASK --num-procs N --proc-id I
//                [--ports null|generator] [--flows N] [--packets N] [--rate PPS]
//                [--stats-ms MS]
//
// Ports as in mp_server ("null", or "generator": the primary's Wire thread generates
// --packets per port of --flows flows at --rate, spread over the N RX queues by RSS, and
// checks what comes back). Worker lcores share the port pairs as DPDK's does; on this
// 2-CPU machine run 2-4 processes with --lcores mappings:
//
//   symmetric_mp -l 0 -m 64 --file-prefix smp -- -p 3 --num-procs 2 --proc-id 0
//   symmetric_mp --proc-type=secondary --lcores 1@1 --file-prefix smp --
//                -p 3 --num-procs 2 --proc-id 1
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "eal/eal.h"
#include "eal/lcore.h"
#include "examples/common/port.h"
#include "examples/common/sample.h"
#include "memory/memory.h"
#include "mempool/mempool.h"
#include "timer/timer.h"

namespace keel::examples {
namespace {

constexpr unsigned kBurst = 32;       // DPDK's PKT_BURST
constexpr unsigned kRingSize = 1024;  // DPDK's RX_RING_SIZE / TX_RING_SIZE
constexpr unsigned kPoolCache = 256;  // DPDK's MBUF_CACHE_SIZE
constexpr unsigned kPacketsPerPortQueue = 2048 + 1024 + 256;
constexpr unsigned kPayload = 64;
constexpr char kPoolName[] = "MProc_pktmbuf_pool";

constexpr char kUsage[] =
    "symmetric_mp [EAL options] -- -p PORTMASK --num-procs N --proc-id I\n"
    "             [--ports null|generator] [--flows N] [--packets N] [--rate PPS]\n"
    "             [--stats-ms MS] [--link-down]\n";

struct Options {
  uint32_t port_mask = 0;
  unsigned num_procs = 0;
  int proc_id = -1;
  TrafficOptions traffic;
  uint64_t stats_ms = 5000;
};

absl::StatusOr<Options> Parse(const std::vector<std::string>& args, bool primary) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    absl::StatusOr<bool> traffic = ParseTrafficFlag(args, &i, &o.traffic);
    if (!traffic.ok()) return traffic.status();
    if (*traffic) continue;
    absl::StatusOr<std::string> v = FlagValue(args, &i);
    if (!v.ok()) return v.status();
    absl::StatusOr<uint64_t> n = uint64_t{0};
    if (a == "-p") {
      absl::StatusOr<uint32_t> m = ParsePortMask(*v);
      if (!m.ok()) return m.status();
      o.port_mask = *m;
    } else if (a == "--num-procs") {
      n = ParseNumber(a, *v, 1, kMaxQueues);
      if (n.ok()) o.num_procs = static_cast<unsigned>(*n);
    } else if (a == "--proc-id") {
      n = ParseNumber(a, *v, 0, kMaxQueues - 1);
      if (n.ok()) o.proc_id = static_cast<int>(*n);
    } else if (a == "--stats-ms") {
      n = ParseNumber(a, *v, 10, 3'600'000);
      if (n.ok()) o.stats_ms = *n;
    } else {
      return absl::InvalidArgumentError(absl::StrFormat("unknown option %s", a));
    }
    if (!n.ok()) return n.status();
  }
  if (o.proc_id < 0) return absl::InvalidArgumentError("Invalid or missing proc-id parameter");
  if (primary && o.num_procs == 0) {
    return absl::InvalidArgumentError("Invalid or missing num-procs parameter");
  }
  if (o.port_mask == 0) return absl::InvalidArgumentError("Invalid or missing port mask");
  if (__builtin_popcount(o.port_mask) % 2 != 0) {
    return absl::InvalidArgumentError("the port mask must give an even number of ports (pairs)");
  }
  return o;
}

// Per port, this process's counts (DPDK's pstats). Each port of a pair is handled by one
// lcore, the only one to write its counters.
struct PortCounts {
  std::atomic<uint64_t> rx{0}, tx{0}, drop{0};
};
PortCounts g_counts[kMaxPorts];
std::vector<Port> g_ports;
int g_proc_id = 0;

void Add(std::atomic<uint64_t>& c, uint64_t n) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

std::string CountsText() {
  std::string text;
  for (const Port& p : g_ports) {
    const PortCounts& c = g_counts[p.id()];
    absl::StrAppendFormat(&text, "Port %u: RX - %u, TX - %u, Drop - %u\n", p.id(), c.rx.load(),
                          c.tx.load(), c.drop.load());
  }
  return text;
}

// " 0:N 1:M": where a port's returned packets came in.
std::string Origins(const PortStats& st) {
  std::string text;
  for (unsigned p = 0; p < kMaxPorts; ++p) {
    if (st.returned_from[p] != 0) absl::StrAppendFormat(&text, " %u:%u", p, st.returned_from[p]);
  }
  return text.empty() ? " none" : text;
}

// The primary's generator ports: what the Wire made and got back.
std::string WireText() {
  std::string text;
  if (eal::GetProcessType() != eal::ProcessType::kPrimary) return text;
  for (const Port& p : g_ports) {
    const PortStats st = p.Stats();
    if (st.kind == PortKind::kGenerator) {
      absl::StrAppendFormat(
          &text,
          "Generator port %u: generated %u, missed %u, returned %u, bad %u, in RX rings %u, "
          "in TX rings %u, duplicates %u, from%s\n",
          st.id, st.generated, st.missed, st.returned, st.bad, st.rx_queued, st.tx_queued,
          st.duplicates, Origins(st));
    }
  }
  return text;
}

void PrintStats(void*) {
  std::printf("[proc %d]\n%s%s", g_proc_id, CountsText().c_str(), WireText().c_str());
  std::fflush(stdout);
}

// The pairs of lcore `index` of `lcores` (DPDK's assign_ports_to_cores): a contiguous
// run each, the first lcores one more when they do not divide evenly.
std::vector<unsigned> PairsOf(unsigned index, unsigned lcores) {
  const unsigned pairs = static_cast<unsigned>(g_ports.size()) / 2;
  const unsigned each = pairs / lcores, extra = pairs % lcores;
  const unsigned first = index * each + std::min(index, extra);
  std::vector<unsigned> mine;
  for (unsigned p = first; p < first + each + (index < extra ? 1 : 0); ++p) mine.push_back(p);
  return mine;
}

int LcoreMain(std::vector<unsigned> pairs, timer::TimerSet* stats) {
  const unsigned lcore = eal::LcoreId();
  const uint16_t q = static_cast<uint16_t>(g_proc_id);
  if (pairs.empty()) {
    std::printf("Lcore %u has nothing to do\n", lcore);
  } else {
    std::string ports;
    for (unsigned pair : pairs) {
      absl::StrAppendFormat(&ports, "%u %u ", g_ports[2 * pair].id(), g_ports[2 * pair + 1].id());
    }
    std::printf("Lcore %u using ports %s\nlcore %u using queue %u of each port\n", lcore,
                ports.c_str(), lcore, q);
  }
  std::fflush(stdout);
  Packet* buf[kBurst];
  while (!QuitRequested()) {
    if (stats != nullptr) {
      timer::Manage(*stats);
      if (eal::GetProcessType() == eal::ProcessType::kPrimary && TakeLinkToggle()) {
        for (Port& port : g_ports) (void)port.SetLink(!port.LinkUp());
      }
    }
    if (pairs.empty()) {
      usleep(1000);
      continue;
    }
    for (unsigned pair : pairs) {
      for (unsigned side = 0; side < 2; ++side) {
        Port& src = g_ports[2 * pair + side];
        Port& dst = g_ports[2 * pair + (side ^ 1)];
        const unsigned rx = src.Rx(q, buf, kBurst);
        if (rx == 0) continue;
        Add(g_counts[src.id()].rx, rx);
        const unsigned tx = dst.Tx(q, buf, rx);
        Add(g_counts[dst.id()].tx, tx);
        if (tx != rx) {
          Add(g_counts[dst.id()].drop, rx - tx);
          src.pool()->PutBulk(reinterpret_cast<void* const*>(buf + tx), rx - tx);
        }
      }
    }
  }
  return 0;
}

int Run(const Options& o) {
  g_proc_id = o.proc_id;
  const bool primary = eal::GetProcessType() == eal::ProcessType::kPrimary;
  std::unique_ptr<Wire> wire;
  if (primary) {
    const unsigned ports = static_cast<unsigned>(__builtin_popcount(o.port_mask));
    absl::StatusOr<mempool::Mempool*> pool =
        mempool::Create(kPoolName, ports * o.num_procs * kPacketsPerPortQueue,
                        sizeof(Packet) + kPayload, kPoolCache, 0, 0, memory::kSocketAny);
    if (!pool.ok()) {
      std::fprintf(stderr, "symmetric_mp: %s\n", pool.status().ToString().c_str());
      return 1;
    }
  }
  for (unsigned id = 0; id < kMaxPorts; ++id) {
    if ((o.port_mask >> id & 1) == 0) continue;
    absl::StatusOr<Port> port;
    if (primary) {
      std::printf("# Initialising port %u... ", id);
      PortConfig config;
      config.rx_queues = o.num_procs;
      config.tx_queues = o.num_procs;
      config.ring_size = kRingSize;
      config.payload_length = kPayload;
      ApplyTraffic(o.traffic, &config);
      port = Port::Create(id, config, kPoolName);
      std::printf("%s\n", port.ok() ? "done" : "failed");
    } else {
      port = Port::Lookup(id);
    }
    if (!port.ok()) {
      std::fprintf(stderr, "symmetric_mp: %s\n", port.status().ToString().c_str());
      return 1;
    }
    if (static_cast<unsigned>(o.proc_id) >= port->rx_queues()) {
      std::fprintf(stderr, "symmetric_mp: --proc-id %d: the ports have %u queues (--num-procs)\n",
                   o.proc_id, port->rx_queues());
      return 1;
    }
    g_ports.push_back(*port);
  }
  if (primary && o.traffic.kind == PortKind::kGenerator) {
    absl::StatusOr<std::unique_ptr<Wire>> w = Wire::Start(g_ports);
    if (!w.ok()) {
      std::fprintf(stderr, "symmetric_mp: %s\n", w.status().ToString().c_str());
      return 1;
    }
    wire = *std::move(w);
  }
  if (absl::Status s = PrintLinkEvents(absl::StrFormat("[proc %d] ", o.proc_id)); !s.ok()) {
    std::fprintf(stderr, "symmetric_mp: %s\n", s.ToString().c_str());
  }
  absl::StatusOr<PeriodicTimer> stats =
      StartPeriodic("symmetric_mp.stats", PrintStats, nullptr, o.stats_ms, eal::MainLcore());
  if (!stats.ok()) {
    std::fprintf(stderr, "symmetric_mp: the stats timer: %s\n", stats.status().ToString().c_str());
    return 1;
  }
  timer::TimerSet set = stats->set;
  const std::vector<unsigned> lcores = eal::Lcores();  // main first when it is the lowest
  const std::vector<unsigned> workers = eal::WorkerLcores();
  for (unsigned i = 0; i < workers.size(); ++i) {
    (void)eal::RemoteLaunch(
        [pairs = PairsOf(i + 1, static_cast<unsigned>(lcores.size()))] {
          return LcoreMain(pairs, nullptr);
        },
        workers[i]);
  }
  LcoreMain(PairsOf(0, static_cast<unsigned>(lcores.size())), &set);
  eal::WaitAllLcores();
  StopPeriodic(*stats);
  wire.reset();
  std::printf("\nExiting on signal %d\n\n%s%s", QuitSignal(), CountsText().c_str(),
              WireText().c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace keel::examples

int main(int argc, char** argv) {
  namespace ex = keel::examples;
  return ex::SampleMain(
      argc, argv, "symmetric_mp", ex::kUsage, [](const std::vector<std::string>& args) {
        const bool primary = keel::eal::GetProcessType() == keel::eal::ProcessType::kPrimary;
        absl::StatusOr<ex::Options> o = ex::Parse(args, primary);
        if (!o.ok()) {
          std::fprintf(stderr, "\nError: %s\n\n%s", std::string(o.status().message()).c_str(),
                       ex::kUsage);
          return 1;
        }
        return ex::Run(*o);
      });
}
