// mp_server: DPDK's client_server_mp server on keel. The primary of the group: it polls
// the ports and hands each packet to one client's ring (round robin as DPDK's, or by
// the packet's flow hash: --dist flow); every second (a keel timer) it prints DPDK's
// stats screen: per port rx/tx, per client rx, rx_drop, tx, tx_drop.
//
//   mp_server [EAL options] -- -p PORTMASK -n NUM_CLIENTS [--dist rr|flow]
//             [--ports null|generator] [--flows N] [--packets N] [--rate PPS]
//             [--stats-ms MS]
//
// Ports: "null" (DPDK's net_null: RX allocates, TX frees) or "generator" (a Wire thread
// generates --packets packets of --flows flows at --rate, and checks what comes back;
// its counts are on the screen too). Each port has one RX queue and one TX queue per
// client. The display runs on the first worker lcore when there is one (as DPDK's),
// else on the main lcore between bursts. SIGINT or SIGTERM: final stats, then exit;
// SIGUSR1: toggle every port's link (each process prints the event); --link-down starts
// with the links down (no traffic until the first SIGUSR1). --packets is per port.
//
//   mp_server -l 0-1 -m 64 --file-prefix cs -- -p 3 -n 2
//
// Hot restart: a server started with --adopt (the same options after --) after the
// previous one died takes its group over: it looks the pool, the ports, the clients'
// rings and the statistics up, starts the generator again, and the clients, which never
// stopped, get packets again. What the dead server held (a burst, the generator's) is
// lost; every other packet is accounted for.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "eal/eal.h"
#include "eal/lcore.h"
#include "examples/client_server_mp/common.h"
#include "examples/common/port.h"
#include "examples/common/sample.h"
#include "memory/memory.h"
#include "mempool/mempool.h"
#include "ring/ring.h"
#include "timer/timer.h"

namespace keel::examples {
namespace {

constexpr unsigned kBurst = 32;               // DPDK's PACKET_READ_SIZE
constexpr unsigned kClientRingSize = 128;     // DPDK's CLIENT_QUEUE_RINGSIZE
constexpr unsigned kPacketsPerClient = 1536;  // DPDK's MBUFS_PER_CLIENT
constexpr unsigned kPacketsPerPort = 1536;    // DPDK's MBUFS_PER_PORT
constexpr unsigned kPoolCache = 512;
constexpr unsigned kPayload = 64;

struct Options {
  uint32_t port_mask = 0;
  unsigned clients = 0;
  bool by_flow = false;
  TrafficOptions traffic;
  uint64_t stats_ms = 1000;
};

constexpr char kUsage[] =
    "mp_server [EAL options] -- -p PORTMASK -n NUM_CLIENTS [--dist rr|flow]\n"
    "          [--ports null|generator] [--flows N] [--packets N] [--rate PPS] [--stats-ms MS]\n"
    "          [--link-down]\n";

absl::StatusOr<Options> Parse(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    absl::StatusOr<bool> traffic = ParseTrafficFlag(args, &i, &o.traffic);
    if (!traffic.ok()) return traffic.status();
    if (*traffic) continue;
    absl::StatusOr<std::string> v = FlagValue(args, &i);
    if (!v.ok()) return v.status();
    absl::Status bad;
    auto number = [&](uint64_t min, uint64_t max, uint64_t* out) {
      absl::StatusOr<uint64_t> n = ParseNumber(a, *v, min, max);
      if (n.ok())
        *out = *n;
      else
        bad = n.status();
    };
    uint64_t n = 0;
    if (a == "-p") {
      absl::StatusOr<uint32_t> m = ParsePortMask(*v);
      if (!m.ok()) return m.status();
      o.port_mask = *m;
    } else if (a == "-n") {
      number(1, kMaxClients, &n);
      o.clients = static_cast<unsigned>(n);
    } else if (a == "--dist") {
      if (*v != "rr" && *v != "flow") bad = absl::InvalidArgumentError("--dist: rr or flow");
      o.by_flow = *v == "flow";
    } else if (a == "--stats-ms") {
      number(10, 3'600'000, &o.stats_ms);
    } else {
      return absl::InvalidArgumentError(absl::StrFormat("unknown option %s", a));
    }
    if (!bad.ok()) return bad;
  }
  if (o.port_mask == 0) return absl::InvalidArgumentError("-p PORTMASK is required");
  if (o.clients == 0) return absl::InvalidArgumentError("-n NUM_CLIENTS is required");
  return o;
}

struct Server {
  Options options;
  PortInfo* info = nullptr;
  std::vector<Port> ports;
  ring::Ring* rings[kMaxClients] = {};
  mempool::Mempool* pool = nullptr;
  std::unique_ptr<Wire> wire;
};
Server* g_server = nullptr;

// DPDK's do_stats_display, plus the generator's counts and one line of totals.
void DisplayStats(void*) {
  const Server& s = *g_server;
  const PortInfo& info = *s.info;
  uint64_t port_tx[kMaxPorts] = {}, client_tx[kMaxClients] = {}, client_drop[kMaxClients] = {};
  uint64_t rx = 0, rx_drop = 0, client_rx = 0;
  for (unsigned c = 0; c < info.num_clients; ++c) {
    for (unsigned p = 0; p < info.num_ports; ++p) {
      const uint64_t tx = info.tx[c].tx[info.id[p]].load(std::memory_order_relaxed);
      port_tx[p] += tx;
      client_tx[c] += tx;
      client_drop[c] += info.tx[c].tx_drop[info.id[p]].load(std::memory_order_relaxed);
    }
  }
  std::string screen;
  if (isatty(STDOUT_FILENO)) screen += "\x1b[2J\x1b[1;1H";  // clear, top left (as DPDK)
  screen += "PORTS\n-----\n";
  for (const Port& p : s.ports) {
    absl::StrAppendFormat(&screen, "Port %u: '%s'\t", p.id(),
                          p.kind() == PortKind::kNull ? "null" : "generator");
  }
  screen += "\n\n";
  for (unsigned p = 0; p < info.num_ports; ++p) {
    const uint64_t port_rx = info.rx[p].load(std::memory_order_relaxed);
    rx += port_rx;
    absl::StrAppendFormat(&screen, "Port %u - rx: %9u\ttx: %9u\n", info.id[p], port_rx, port_tx[p]);
  }
  screen += "\nCLIENTS\n-------\n";
  uint64_t tx = 0, tx_drop = 0;
  for (unsigned c = 0; c < info.num_clients; ++c) {
    const uint64_t crx = info.clients[c].rx.load(std::memory_order_relaxed);
    const uint64_t cdrop = info.clients[c].rx_drop.load(std::memory_order_relaxed);
    client_rx += crx;
    rx_drop += cdrop;
    tx += client_tx[c];
    tx_drop += client_drop[c];
    absl::StrAppendFormat(&screen,
                          "Client %2u - rx: %9u, rx_drop: %9u\n"
                          "            tx: %9u, tx_drop: %9u\n",
                          c, crx, cdrop, client_tx[c], client_drop[c]);
  }
  uint64_t generated = 0, missed = 0, returned = 0, bad = 0, rx_queued = 0, tx_queued = 0,
           duplicates = 0, crossed = 0;
  for (const Port& p : s.ports) {
    const PortStats st = p.Stats();
    generated += st.generated;
    returned += st.returned;
    bad += st.bad;
    rx_queued += st.rx_queued;
    tx_queued += st.tx_queued;
    duplicates += st.duplicates;
    // Returned on the port it came in on: the clients pair ports, so none should be
    // (with an even number of ports).
    crossed += st.returned_from[p.id()];
    missed += st.missed;
  }
  if (s.options.traffic.kind == PortKind::kGenerator) {
    absl::StrAppendFormat(
        &screen, "\nGENERATOR\n---------\ngenerated: %u, missed: %u, returned: %u, bad: %u\n",
        generated, missed, returned, bad);
  }
  absl::StrAppendFormat(&screen,
                        "\nTOTALS generated=%u missed=%u rx_queued=%u port_rx=%u client_rx=%u "
                        "rx_drop=%u tx=%u tx_drop=%u tx_queued=%u returned=%u bad=%u "
                        "duplicates=%u unpaired=%u\n",
                        generated, missed, rx_queued, rx, client_rx, rx_drop, tx, tx_drop,
                        tx_queued, returned, bad, duplicates, crossed);
  std::fputs(screen.c_str(), stdout);
  std::fflush(stdout);
}

absl::Status Setup(const Options& o) {
  auto* s = new Server;
  s->options = o;
  g_server = s;
  const unsigned num_ports = static_cast<unsigned>(__builtin_popcount(o.port_mask));
  absl::StatusOr<mempool::Mempool*> pool =
      mempool::Create(kPoolName, o.clients * kPacketsPerClient + num_ports * kPacketsPerPort,
                      sizeof(Packet) + kPayload, kPoolCache, 0, 0, memory::kSocketAny);
  if (!pool.ok()) return pool.status();
  s->pool = *pool;
  absl::StatusOr<memory::Memzone> zone =
      memory::ReserveMemzone(kPortInfoName, sizeof(PortInfo), memory::kSocketAny, 64);
  if (!zone.ok()) return zone.status();
  s->info = new (zone->addr) PortInfo();
  for (unsigned id = 0; id < kMaxPorts; ++id) {
    if ((o.port_mask >> id & 1) == 0) continue;
    PortConfig config;
    config.rx_queues = 1;
    config.tx_queues = o.clients;
    config.payload_length = kPayload;
    ApplyTraffic(o.traffic, &config);
    absl::StatusOr<Port> port = Port::Create(id, config, kPoolName);
    if (!port.ok()) return port.status();
    s->info->id[s->info->num_ports++] = static_cast<uint16_t>(id);
    s->ports.push_back(*port);
  }
  s->info->num_clients = o.clients;
  for (unsigned c = 0; c < o.clients; ++c) {
    absl::StatusOr<ring::Ring*> r =
        ring::Create(ClientRingName(c), kClientRingSize, memory::kSocketAny,
                     ring::kSingleProducer | ring::kSingleConsumer);
    if (!r.ok()) return r.status();
    s->rings[c] = *r;
  }
  s->info->magic = kPortInfoMagic;
  if (o.traffic.kind == PortKind::kGenerator) {
    absl::StatusOr<std::unique_ptr<Wire>> wire = Wire::Start(s->ports);
    if (!wire.ok()) return wire.status();
    s->wire = *std::move(wire);
  }
  return PrintLinkEvents("server: ");
}

// A server that adopted the group (eal --adopt): the objects the dead server made, checked
// against this one's options.
absl::Status Adopt(const Options& o) {
  auto* s = new Server;
  s->options = o;
  g_server = s;
  absl::StatusOr<mempool::Mempool*> pool = mempool::Lookup(kPoolName);
  if (!pool.ok()) return pool.status();
  s->pool = *pool;
  absl::StatusOr<memory::Memzone> zone = memory::LookupMemzone(kPortInfoName);
  if (!zone.ok()) return zone.status();
  s->info = static_cast<PortInfo*>(zone->addr);
  const unsigned num_ports = static_cast<unsigned>(__builtin_popcount(o.port_mask));
  if (zone->size < sizeof(PortInfo) || s->info->magic != kPortInfoMagic ||
      s->info->num_clients != o.clients || s->info->num_ports != num_ports) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the group's server ran %u ports and %u clients; this one is given %u ports (-p) and %u "
        "clients (-n): give the dead server's options",
        s->info->num_ports, s->info->num_clients, num_ports, o.clients));
  }
  for (unsigned id = 0; id < kMaxPorts; ++id) {
    if ((o.port_mask >> id & 1) == 0) continue;
    absl::StatusOr<Port> port = Port::Lookup(id);
    if (!port.ok()) return port.status();
    if (port->kind() != o.traffic.kind) {
      return absl::FailedPreconditionError(
          absl::StrFormat("port %u is of another kind than --ports says", id));
    }
    s->ports.push_back(*port);
  }
  for (unsigned c = 0; c < o.clients; ++c) {
    absl::StatusOr<ring::Ring*> r = ring::Lookup(ClientRingName(c));
    if (!r.ok()) return r.status();
    s->rings[c] = *r;
  }
  if (o.traffic.kind == PortKind::kGenerator) {
    absl::StatusOr<std::unique_ptr<Wire>> wire = Wire::Start(s->ports);
    if (!wire.ok()) return wire.status();
    s->wire = *std::move(wire);
  }
  absl::PrintF("mp_server: adopted the group of a dead server\n");
  return PrintLinkEvents("server: ");
}

// The main lcore: DPDK's do_packet_forwarding, with the stats timer managed here when
// there is no worker lcore to run it.
void Forward(timer::TimerSet* stats_set) {
  Server& s = *g_server;
  PortInfo& info = *s.info;
  Packet* burst[kBurst];
  Packet* out[kMaxClients][kBurst];
  unsigned count[kMaxClients] = {};
  unsigned next_client = 0;
  const unsigned clients = s.options.clients;
  for (unsigned p = 0; !QuitRequested(); p = p + 1 == s.ports.size() ? 0 : p + 1) {
    if (stats_set != nullptr) timer::Manage(*stats_set);
    if (TakeLinkToggle()) {
      for (Port& port : s.ports) (void)port.SetLink(!port.LinkUp());
    }
    const unsigned n = s.ports[p].Rx(0, burst, kBurst);
    if (n == 0) continue;
    AddTo(info.rx[p], n);
    for (unsigned i = 0; i < n; ++i) {
      unsigned c;
      if (s.options.by_flow) {
        c = burst[i]->rss % clients;
      } else {
        c = next_client;
        next_client = next_client + 1 == clients ? 0 : next_client + 1;
      }
      out[c][count[c]++] = burst[i];
    }
    for (unsigned c = 0; c < clients; ++c) {
      if (count[c] == 0) continue;
      if (s.rings[c]->EnqueueBulk(reinterpret_cast<void* const*>(out[c]), count[c]) == 0) {
        s.pool->PutBulk(reinterpret_cast<void* const*>(out[c]), count[c]);
        AddTo(info.clients[c].rx_drop, count[c]);
      } else {
        AddTo(info.clients[c].rx, count[c]);
      }
      count[c] = 0;
    }
  }
}

int Run(const Options& o) {
  // On every way out: the Wire thread uses the rings and the pool eal::Cleanup unmaps.
  struct StopWire {
    ~StopWire() {
      if (g_server != nullptr) g_server->wire.reset();
    }
  } stop_wire;
  if (absl::Status s = eal::Adopted() ? Adopt(o) : Setup(o); !s.ok()) {
    std::fprintf(stderr, "mp_server: %s\n", s.ToString().c_str());
    return 1;
  }
  const std::vector<unsigned> workers = eal::WorkerLcores();
  const unsigned display_lcore = workers.empty() ? eal::MainLcore() : workers.front();
  absl::StatusOr<PeriodicTimer> stats =
      StartPeriodic("mp_server.stats", DisplayStats, nullptr, o.stats_ms, display_lcore);
  if (!stats.ok()) {
    std::fprintf(stderr, "mp_server: the stats timer: %s\n", stats.status().ToString().c_str());
    return 1;
  }
  absl::PrintF("mp_server: %u ports, %u clients, distribution %s; stats every %d ms on lcore %u\n",
               g_server->info->num_ports, o.clients, o.by_flow ? "by flow hash" : "round robin",
               o.stats_ms, display_lcore);
  std::fflush(stdout);
  timer::TimerSet set = stats->set;
  if (!workers.empty()) {
    // As DPDK's sleep_lcore: one worker displays the statistics.
    (void)eal::RemoteLaunch(
        [set]() mutable {
          while (!QuitRequested()) {
            timer::Manage(set);
            usleep(1000);
          }
          return 0;
        },
        display_lcore);
  }
  Forward(workers.empty() ? &set : nullptr);
  eal::WaitAllLcores();
  StopPeriodic(*stats);
  g_server->wire.reset();
  std::printf("\nmp_server: exiting\n");
  DisplayStats(nullptr);
  return 0;
}

}  // namespace
}  // namespace keel::examples

int main(int argc, char** argv) {
  namespace ex = keel::examples;
  return ex::SampleMain(
      argc, argv, "mp_server", ex::kUsage, [](const std::vector<std::string>& args) {
        if (keel::eal::GetProcessType() != keel::eal::ProcessType::kPrimary) {
          std::fprintf(stderr, "mp_server: must be the group's primary (--proc-type primary)\n");
          return 1;
        }
        absl::StatusOr<ex::Options> o = ex::Parse(args);
        if (!o.ok()) {
          std::fprintf(stderr, "mp_server: %s\n%s", std::string(o.status().message()).c_str(),
                       ex::kUsage);
          return 1;
        }
        return ex::Run(*o);
      });
}
