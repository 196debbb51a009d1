// Virtual ports for keel's sample applications (not a runtime component): what the
// samples would get from NICs under DPDK, without NICs.
//
// A port has RX and TX queues. Packets are mempool objects that start with a Packet
// header (5-tuple, length, flow, sequence, check word, RSS hash) and carry a payload.
// Two kinds:
//   - null (DPDK's net_null): Rx allocates packets from the pool in bursts, Tx frees them.
//     For throughput.
//   - generator: each RX queue and each TX queue is a keel ring. A Wire (a thread of the
//     process that owns the "hardware", the primary) fills the RX rings with packets of
//     the configured flows, spread over the queues by a hash of the 5-tuple (RSS, keel's
//     crc32c), as fast as possible or at a rate, up to a count; it drains the TX rings and
//     checks every packet that comes back. For tests: every packet generated is counted
//     once, as returned, missed (its RX ring was full) or refused by Tx.
// The port's state (kind, queues, counters, link) is in shared memory ("keel.port.N"), so
// every process of the group uses the same ports. The primary owns the link: SetLink
// publishes a "port.link" event (interrupts relay) that every subscribed process gets.
//
//   Port port = *Port::Create(0, {.kind = PortKind::kGenerator, .rx_queues = 2,
//                                 .tx_queues = 2, .flows = 64}, pool);   // primary
//   Port same = *Port::Lookup(0);                                      // any process
//   Packet* burst[32];
//   unsigned n = same.Rx(queue, burst, 32);
//   unsigned sent = other.Tx(queue, burst, n);   // the caller frees burst[sent..n)
#ifndef KEEL_EXAMPLES_COMMON_PORT_H_
#define KEEL_EXAMPLES_COMMON_PORT_H_

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mempool/mempool.h"
#include "ring/ring.h"

namespace keel::examples {

inline constexpr unsigned kMaxPorts = 8;
inline constexpr unsigned kMaxQueues = 16;
// The relay's event type of link changes; payload LinkEvent.
inline constexpr char kLinkEventType[] = "port.link";

struct FiveTuple {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t proto;
  uint8_t pad[3];
};

// The start of every packet object.
struct Packet {
  FiveTuple tuple;
  uint16_t port;      // the port it was received on (DPDK's mbuf->port)
  uint16_t length;    // payload bytes
  uint32_t flow;      // generator: the flow's index
  uint64_t sequence;  // generator: the port's count of packets generated before it
  uint32_t rss;       // the 5-tuple's hash (crc32c)
  uint32_t check;     // generator: crc32c of the fields above; checked when it comes back
  unsigned char payload[];
};
static_assert(sizeof(Packet) == 40);

enum class PortKind : uint32_t { kNull = 0, kGenerator = 1 };

struct PortConfig {
  PortKind kind = PortKind::kNull;
  unsigned rx_queues = 1;
  unsigned tx_queues = 1;
  unsigned ring_size = 1024;     // generator: entries of each queue's ring
  unsigned payload_length = 64;  // bytes after the header (the pool's objects must fit)
  // Generator:
  unsigned flows = 16;    // distinct 5-tuples
  uint64_t packets = 0;   // in all, then the port stops generating (0: no limit)
  uint64_t rate_pps = 0;  // packets per second (0: as fast as the rings take them)
  bool link_up = true;    // the link at start (the primary raises it with SetLink)
};

struct QueueCounters {
  uint64_t packets = 0;  // RX: received by Rx; TX: accepted by Tx
  uint64_t dropped = 0;  // RX (generator): missed, the ring was full; TX: refused by Tx
};

struct PortStats {
  unsigned id = 0;
  PortKind kind = PortKind::kNull;
  bool link_up = true;
  std::vector<QueueCounters> rx, tx;
  uint64_t generated = 0;   // generator: packets made
  uint64_t missed = 0;      // generator: packets their RX ring had no room for (rx[].dropped)
  uint64_t returned = 0;    // generator: packets drained from the TX rings that checked
  uint64_t bad = 0;         // generator: packets that came back damaged
  uint64_t duplicates = 0;  // generator: packets that came back a second time
  uint64_t returned_from[kMaxPorts] = {};  // generator: returned, by the port they came in on
  uint64_t rx_queued = 0;  // generator: packets in the RX rings now (not yet received)
  uint64_t tx_queued = 0;  // generator: packets in the TX rings now (not yet drained)
};

struct LinkEvent {
  uint32_t port;
  uint32_t up;
};

namespace port_internal {
struct alignas(64) Counter {
  std::atomic<uint64_t> packets;
  std::atomic<uint64_t> dropped;
};
struct PortShared;
}  // namespace port_internal

class Port {
 public:
  // An empty handle, to assign a real one (Create, Lookup) to.
  Port() = default;
  // The primary: port `id` (< kMaxPorts) with `config`, over the mempool `pool_name`
  // (whose objects must hold a Packet and config.payload_length bytes). Errors: InvalidArgument
  // (id, queues, sizes), AlreadyExists, the memory's and the rings' errors.
  static absl::StatusOr<Port> Create(unsigned id, const PortConfig& config,
                                     absl::string_view pool_name);
  // Any process: the port the primary created. NotFound, FailedPrecondition (damaged).
  static absl::StatusOr<Port> Lookup(unsigned id);

  // Up to `n` packets received on `queue` (DPDK's rte_eth_rx_burst). One thread per
  // queue at a time (of any process).
  unsigned Rx(unsigned queue, Packet** pkts, unsigned n);
  // Sends up to `n` packets on `queue` (rte_eth_tx_burst) and returns how many it took;
  // the caller still owns (and frees) pkts[sent..n), counted as TX drops. One thread per
  // queue at a time.
  unsigned Tx(unsigned queue, Packet** pkts, unsigned n);

  unsigned id() const;
  PortKind kind() const;
  unsigned rx_queues() const;
  unsigned tx_queues() const;
  mempool::Mempool* pool() const { return pool_; }
  bool LinkUp() const;
  PortStats Stats() const;

  // The primary: sets the link and tells every process (one kLinkEventType event per
  // call, through the interrupt relay). A port whose link is down receives and sends
  // nothing.
  absl::Status SetLink(bool up);

 private:
  friend class Wire;
  port_internal::PortShared* shared_ = nullptr;
  mempool::Mempool* pool_ = nullptr;
  ring::Ring* rx_rings_[kMaxQueues] = {};
  ring::Ring* tx_rings_[kMaxQueues] = {};
};

// The generator ports' "hardware": a thread that fills their RX rings and drains and
// checks their TX rings. Started by the process that created the ports (the primary).
class Wire {
 public:
  static absl::StatusOr<std::unique_ptr<Wire>> Start(std::vector<Port> ports);
  ~Wire();  // stops the thread; packets in the rings stay there
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

 private:
  Wire() = default;
  void Run();
  static void* RunThread(void* self);
  std::vector<Port> ports_;
  std::vector<std::vector<std::vector<FiveTuple>>> flows_;  // [port][rx queue] -> flows
  std::atomic<bool> stop_{false};
  pthread_t thread_{};
  bool running_ = false;
};

// The check word of a generated packet (its header fields, crc32c).
uint32_t PacketCheck(const Packet& p);
// The 5-tuple's RSS hash.
uint32_t TupleHash(const FiveTuple& t);

}  // namespace keel::examples

#endif  // KEEL_EXAMPLES_COMMON_PORT_H_
