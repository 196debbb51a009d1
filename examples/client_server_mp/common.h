// What mp_server and mp_client share (DPDK's client_server_mp/shared/common.h): the
// names of the group's objects and the statistics both sides write, in the memzone
// kPortInfoName.
#ifndef KEEL_EXAMPLES_CLIENT_SERVER_MP_COMMON_H_
#define KEEL_EXAMPLES_CLIENT_SERVER_MP_COMMON_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "examples/common/port.h"

namespace keel::examples {

inline constexpr unsigned kMaxClients = 16;
inline constexpr char kPoolName[] = "MProc_pktmbuf_pool";
inline constexpr char kPortInfoName[] = "MProc_port_info";
inline constexpr uint64_t kPortInfoMagic = 0x316f666e69747270ULL;  // "prtinfo1"
// The event a client is told to stop with, and so on: none; link events come from the
// ports (kLinkEventType).

// Client `id`'s ring of packets from the server.
inline std::string ClientRingName(unsigned id) { return absl::StrCat("MProc_Client_", id, "_RX"); }

// Written by the server.
struct alignas(64) ClientRxStats {
  std::atomic<uint64_t> rx;       // packets enqueued to the client's ring
  std::atomic<uint64_t> rx_drop;  // packets its full ring refused (freed by the server)
};
// Written by client `i` (one process at a time).
struct alignas(64) ClientTxStats {
  std::atomic<uint64_t> tx[kMaxPorts];       // packets sent on each port
  std::atomic<uint64_t> tx_drop[kMaxPorts];  // packets a port's Tx refused (freed)
};

struct PortInfo {
  uint64_t magic;  // kPortInfoMagic, written last by the server
  uint32_t num_ports;
  uint32_t num_clients;
  uint16_t id[kMaxPorts];
  alignas(64) std::atomic<uint64_t> rx[kMaxPorts];  // server: packets received per port
  ClientRxStats clients[kMaxClients];
  ClientTxStats tx[kMaxClients];
};

// One writer per counter: a relaxed load and store.
inline void AddTo(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace keel::examples

#endif  // KEEL_EXAMPLES_CLIENT_SERVER_MP_COMMON_H_
