// mp_client: DPDK's client_server_mp client on keel. A secondary: it reads the packets
// the server put in its ring (MProc_Client_N_RX) and sends each out of the port paired
// with the one it came in on (0 <-> 1, 2 <-> 3), on TX queue N, counting tx and tx_drop
// per port in the shared port info. A client killed and started again resumes with the
// same ring; while it is away the ring fills and the server counts the drops.
//
//   mp_client [EAL options] -- -n CLIENT_ID
//
//   mp_client --proc-type=secondary --lcores 2@1 --file-prefix cs -- -n 0
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "eal/eal.h"
#include "examples/client_server_mp/common.h"
#include "examples/common/port.h"
#include "examples/common/sample.h"
#include "memory/memory.h"
#include "mempool/mempool.h"
#include "ring/ring.h"

namespace keel::examples {
namespace {

constexpr unsigned kBurst = 32;     // DPDK's PKT_READ_SIZE
constexpr unsigned kTxBuffer = 32;  // DPDK's MBQ_CAPACITY
constexpr char kUsage[] = "mp_client [EAL options] -- -n CLIENT_ID\n";

absl::StatusOr<unsigned> Parse(const std::vector<std::string>& args) {
  if (args.size() != 2 || args[0] != "-n") {
    return absl::InvalidArgumentError("give -n CLIENT_ID");
  }
  absl::StatusOr<uint64_t> id = ParseNumber("-n", args[1], 0, kMaxClients - 1);
  if (!id.ok()) return id.status();
  return static_cast<unsigned>(*id);
}

// A port's TX buffer (DPDK's rte_eth_dev_tx_buffer).
struct TxBuffer {
  Packet* pkts[kTxBuffer];
  unsigned count = 0;
};

int Run(unsigned client) {
  absl::StatusOr<mempool::Mempool*> pool = mempool::Lookup(kPoolName);
  absl::StatusOr<memory::Memzone> zone = memory::LookupMemzone(kPortInfoName);
  if (!pool.ok() || !zone.ok()) {
    std::fprintf(
        stderr,
        "mp_client: cannot get the pool or the port info - is server process running? (%s)\n",
        (pool.ok() ? zone.status() : pool.status()).ToString().c_str());
    return 1;
  }
  auto* info = static_cast<PortInfo*>(zone->addr);
  if (zone->size < sizeof(PortInfo) || info->magic != kPortInfoMagic ||
      info->num_ports > kMaxPorts || client >= info->num_clients) {
    std::fprintf(stderr, "mp_client: client %u: the server has %u clients (port info %s)\n", client,
                 info->num_clients, info->magic == kPortInfoMagic ? "valid" : "not initialised");
    return 1;
  }
  absl::StatusOr<ring::Ring*> ring = ring::Lookup(ClientRingName(client));
  if (!ring.ok()) {
    std::fprintf(stderr, "mp_client: cannot get RX ring - is server process running? (%s)\n",
                 ring.status().ToString().c_str());
    return 1;
  }
  // Every port by id; the output port of each is its pair.
  std::vector<Port> by_id(kMaxPorts);
  unsigned output[kMaxPorts] = {};
  bool have[kMaxPorts] = {};
  for (unsigned i = 0; i < info->num_ports; ++i) {
    absl::StatusOr<Port> p = Port::Lookup(info->id[i]);
    if (!p.ok()) {
      std::fprintf(stderr, "mp_client: %s\n", p.status().ToString().c_str());
      return 1;
    }
    by_id[info->id[i]] = *p;
    have[info->id[i]] = true;
  }
  // An unpaired port (an odd count) sends back out of itself.
  for (unsigned i = 0; i < info->num_ports; ++i) output[info->id[i]] = info->id[i];
  for (unsigned i = 0; i + 1 < info->num_ports; i += 2) {
    output[info->id[i]] = info->id[i + 1];
    output[info->id[i + 1]] = info->id[i];
  }
  if (absl::Status s = PrintLinkEvents(absl::StrFormat("client %u: ", client)); !s.ok()) {
    std::fprintf(stderr, "mp_client: %s\n", s.ToString().c_str());
  }
  ClientTxStats& stats = info->tx[client];
  TxBuffer buffers[kMaxPorts];
  auto flush = [&](unsigned port) {
    TxBuffer& b = buffers[port];
    if (b.count == 0) return;
    const unsigned sent = by_id[port].Tx(client, b.pkts, b.count);
    AddTo(stats.tx[port], sent);
    if (sent < b.count) {
      (*pool)->PutBulk(reinterpret_cast<void* const*>(b.pkts + sent), b.count - sent);
      AddTo(stats.tx_drop[port], b.count - sent);
    }
    b.count = 0;
  };
  std::printf("\nClient process %u handling packets\n[Press Ctrl-C to quit ...]\n", client);
  std::fflush(stdout);
  bool need_flush = false;
  void* pkts[kBurst];
  while (!QuitRequested()) {
    const unsigned n = (*ring)->DequeueBurst(pkts, kBurst);
    if (n == 0) {
      if (need_flush) {
        for (unsigned port = 0; port < kMaxPorts; ++port) flush(port);
        need_flush = false;
      }
      continue;
    }
    for (unsigned i = 0; i < n; ++i) {
      auto* p = static_cast<Packet*>(pkts[i]);
      if (p->port >= kMaxPorts || !have[p->port]) {
        (*pool)->Put(p);  // not from a port of the group: damaged; dropped
        continue;
      }
      const unsigned out = output[p->port];
      TxBuffer& b = buffers[out];
      b.pkts[b.count++] = p;
      if (b.count == kTxBuffer) flush(out);
    }
    need_flush = true;
  }
  for (unsigned port = 0; port < kMaxPorts; ++port) flush(port);
  std::printf("client %u: exiting\n", client);
  return 0;
}

}  // namespace
}  // namespace keel::examples

int main(int argc, char** argv) {
  namespace ex = keel::examples;
  return ex::SampleMain(argc, argv, "mp_client", ex::kUsage,
                        [](const std::vector<std::string>& args) {
                          absl::StatusOr<unsigned> id = ex::Parse(args);
                          if (!id.ok()) {
                            std::fprintf(stderr, "mp_client: %s\n%s",
                                         std::string(id.status().message()).c_str(), ex::kUsage);
                            return 1;
                          }
                          return ex::Run(*id);
                        });
}
