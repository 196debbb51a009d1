#include "examples/common/port.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/monotonic.h"
#include "base/names.h"
#include "eal/eal.h"
#include "hash/functions.h"
#include "interrupts/interrupts.h"
#include "memory/memory.h"

namespace keel::examples {
namespace port_internal {

inline constexpr uint64_t kPortMagic = 0x3174726f70706d78ULL;  // "xmpport1"

// A port's state in the memzone "keel.port.N". Written by the primary at Create; then
// the counters by their queue's one user (a relaxed load and store: one writer each),
// the generator's by its Wire, the link by the primary.
struct alignas(64) PortShared {
  uint64_t magic;
  uint32_t id;
  uint32_t kind;
  uint32_t rx_queues;
  uint32_t tx_queues;
  uint32_t ring_size;
  uint32_t payload_length;
  uint32_t flows;
  uint32_t reserved;
  uint64_t packets_limit;
  uint64_t rate_pps;
  char pool[32];
  std::atomic<uint32_t> link_up;
  Counter rx[kMaxQueues];
  Counter tx[kMaxQueues];
  alignas(64) std::atomic<uint64_t> generated;
  std::atomic<uint64_t> returned;
  std::atomic<uint64_t> bad;
  std::atomic<uint64_t> duplicates;  // returned twice (a packet's sequence seen before)
  std::atomic<uint64_t> returned_from[kMaxPorts];  // by the port each was generated on
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

}  // namespace port_internal

namespace {

using port_internal::PortShared;

constexpr unsigned kBurst = 32;

std::string MemzoneName(unsigned id) { return absl::StrCat("keel.port.", id); }
std::string RingName(unsigned id, const char* dir, unsigned q) {
  return absl::StrFormat("port%u.%s%u", id, dir, q);
}

// One writer per counter: a relaxed load and store, cheaper than an RMW.
void Add(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

absl::Status CheckConfig(unsigned id, const PortConfig& c, const mempool::Mempool& pool) {
  auto bad = [&](absl::string_view what, uint64_t value) {
    return absl::InvalidArgumentError(absl::StrFormat("port %u: %s %d", id, what, value));
  };
  if (id >= kMaxPorts) return bad("id out of range 0..7:", id);
  if (c.rx_queues == 0 || c.rx_queues > kMaxQueues) return bad("rx_queues (1..16)", c.rx_queues);
  if (c.tx_queues == 0 || c.tx_queues > kMaxQueues) return bad("tx_queues (1..16)", c.tx_queues);
  if (sizeof(Packet) + c.payload_length > pool.ElementSize()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "port %u: a packet of %d payload bytes needs %d-byte objects; the pool has %d", id,
        c.payload_length, sizeof(Packet) + c.payload_length, pool.ElementSize()));
  }
  if (c.payload_length > UINT16_MAX) return bad("payload_length", c.payload_length);
  if (c.kind == PortKind::kGenerator && (c.flows == 0 || c.flows > 1u << 20)) {
    return bad("flows (1..1048576)", c.flows);
  }
  return absl::OkStatus();
}

}  // namespace

uint32_t TupleHash(const FiveTuple& t) { return hash::Crc32c(&t, sizeof(t), 0); }

uint32_t PacketCheck(const Packet& p) {
  return hash::Crc32c(&p, offsetof(Packet, check), 0x6b65656c);
}

absl::StatusOr<Port> Port::Create(unsigned id, const PortConfig& config,
                                  absl::string_view pool_name) {
  absl::StatusOr<mempool::Mempool*> pool = mempool::Lookup(pool_name);
  if (!pool.ok()) return pool.status();
  if (absl::Status c = CheckConfig(id, config, **pool); !c.ok()) return c;
  absl::StatusOr<memory::Memzone> zone =
      memory::ReserveMemzone(MemzoneName(id), sizeof(PortShared), memory::kSocketAny, 64);
  if (!zone.ok()) return zone.status();
  auto* s = new (zone->addr) PortShared();
  s->id = id;
  s->kind = static_cast<uint32_t>(config.kind);
  s->rx_queues = config.rx_queues;
  s->tx_queues = config.tx_queues;
  s->ring_size = config.ring_size;
  s->payload_length = config.payload_length;
  s->flows = config.flows;
  s->packets_limit = config.packets;
  s->rate_pps = config.rate_pps;
  CopyName(s->pool, pool_name);
  s->link_up.store(config.link_up ? 1 : 0);
  Port port;
  port.shared_ = s;
  port.pool_ = *pool;
  if (config.kind == PortKind::kGenerator) {
    constexpr uint32_t kFlags = ring::kSingleProducer | ring::kSingleConsumer;
    for (unsigned q = 0; q < config.rx_queues; ++q) {
      absl::StatusOr<ring::Ring*> r =
          ring::Create(RingName(id, "rx", q), config.ring_size, memory::kSocketAny, kFlags);
      if (!r.ok()) return r.status();
      port.rx_rings_[q] = *r;
    }
    for (unsigned q = 0; q < config.tx_queues; ++q) {
      absl::StatusOr<ring::Ring*> r =
          ring::Create(RingName(id, "tx", q), config.ring_size, memory::kSocketAny, kFlags);
      if (!r.ok()) return r.status();
      port.tx_rings_[q] = *r;
    }
  }
  // Last: Lookup refuses a port without its magic.
  s->magic = port_internal::kPortMagic;
  return port;
}

absl::StatusOr<Port> Port::Lookup(unsigned id) {
  if (id >= kMaxPorts) {
    return absl::InvalidArgumentError(absl::StrFormat("port %u: id out of range 0..7", id));
  }
  absl::StatusOr<memory::Memzone> zone = memory::LookupMemzone(MemzoneName(id));
  if (!zone.ok()) {
    return absl::NotFoundError(
        absl::StrFormat("port %u: not created by the primary (%s)", id, zone.status().message()));
  }
  auto* s = static_cast<PortShared*>(zone->addr);
  if (zone->size < sizeof(PortShared) || s->magic != port_internal::kPortMagic || s->id != id ||
      s->rx_queues == 0 || s->rx_queues > kMaxQueues || s->tx_queues == 0 ||
      s->tx_queues > kMaxQueues || s->kind > 1) {
    return absl::FailedPreconditionError(
        absl::StrFormat("port %u: memzone \"%s\" is not a port", id, MemzoneName(id)));
  }
  absl::StatusOr<mempool::Mempool*> pool = mempool::Lookup(NameOf(s->pool));
  if (!pool.ok()) return pool.status();
  Port port;
  port.shared_ = s;
  port.pool_ = *pool;
  if (static_cast<PortKind>(s->kind) == PortKind::kGenerator) {
    for (unsigned q = 0; q < s->rx_queues; ++q) {
      absl::StatusOr<ring::Ring*> r = ring::Lookup(RingName(id, "rx", q));
      if (!r.ok()) return r.status();
      port.rx_rings_[q] = *r;
    }
    for (unsigned q = 0; q < s->tx_queues; ++q) {
      absl::StatusOr<ring::Ring*> r = ring::Lookup(RingName(id, "tx", q));
      if (!r.ok()) return r.status();
      port.tx_rings_[q] = *r;
    }
  }
  return port;
}

unsigned Port::Rx(unsigned queue, Packet** pkts, unsigned n) {
  PortShared& s = *shared_;
  if (queue >= s.rx_queues || s.link_up.load(std::memory_order_relaxed) == 0) return 0;
  unsigned got;
  if (s.kind == static_cast<uint32_t>(PortKind::kNull)) {
    // As net_null: a burst from the pool, all or nothing.
    if (!pool_->GetBulk(reinterpret_cast<void**>(pkts), n)) return 0;
    // A synthetic flow hash (the payload is not written), so flow-hash distribution
    // spreads null packets too: from the queue's count of packets, which only this
    // queue's poller writes. Relaxed: that is this thread.
    const uint64_t first = s.rx[queue].packets.load(std::memory_order_relaxed) + queue;
    for (unsigned i = 0; i < n; ++i) {
      pkts[i]->port = static_cast<uint16_t>(s.id);
      pkts[i]->length = static_cast<uint16_t>(s.payload_length);
      pkts[i]->rss = static_cast<uint32_t>((first + i) * 2654435761u);
    }
    got = n;
  } else {
    got = rx_rings_[queue]->DequeueBurst(reinterpret_cast<void**>(pkts), n);
  }
  if (got > 0) Add(s.rx[queue].packets, got);
  return got;
}

unsigned Port::Tx(unsigned queue, Packet** pkts, unsigned n) {
  PortShared& s = *shared_;
  if (queue >= s.tx_queues || n == 0) return 0;
  unsigned sent = 0;
  if (s.link_up.load(std::memory_order_relaxed) != 0) {
    if (s.kind == static_cast<uint32_t>(PortKind::kNull)) {
      pool_->PutBulk(reinterpret_cast<void* const*>(pkts), n);
      sent = n;
    } else {
      sent = tx_rings_[queue]->EnqueueBurst(reinterpret_cast<void* const*>(pkts), n);
    }
  }
  if (sent > 0) Add(s.tx[queue].packets, sent);
  if (sent < n) Add(s.tx[queue].dropped, n - sent);
  return sent;
}

unsigned Port::id() const { return shared_->id; }
PortKind Port::kind() const { return static_cast<PortKind>(shared_->kind); }
unsigned Port::rx_queues() const { return shared_->rx_queues; }
unsigned Port::tx_queues() const { return shared_->tx_queues; }
bool Port::LinkUp() const { return shared_->link_up.load() != 0; }

PortStats Port::Stats() const {
  const PortShared& s = *shared_;
  PortStats st;
  st.id = s.id;
  st.kind = kind();
  st.link_up = LinkUp();
  // Relaxed: a snapshot.
  for (unsigned q = 0; q < s.rx_queues; ++q) {
    st.rx.push_back({s.rx[q].packets.load(std::memory_order_relaxed),
                     s.rx[q].dropped.load(std::memory_order_relaxed)});
    st.missed += st.rx.back().dropped;
  }
  for (unsigned q = 0; q < s.tx_queues; ++q) {
    st.tx.push_back({s.tx[q].packets.load(std::memory_order_relaxed),
                     s.tx[q].dropped.load(std::memory_order_relaxed)});
  }
  st.generated = s.generated.load(std::memory_order_relaxed);
  st.returned = s.returned.load(std::memory_order_relaxed);
  st.bad = s.bad.load(std::memory_order_relaxed);
  st.duplicates = s.duplicates.load(std::memory_order_relaxed);
  for (unsigned p = 0; p < kMaxPorts; ++p) {
    st.returned_from[p] = s.returned_from[p].load(std::memory_order_relaxed);
  }
  for (unsigned q = 0; q < kMaxQueues; ++q) {
    if (rx_rings_[q] != nullptr) st.rx_queued += rx_rings_[q]->Count();
    if (tx_rings_[q] != nullptr) st.tx_queued += tx_rings_[q]->Count();
  }
  return st;
}

absl::Status Port::SetLink(bool up) {
  if (eal::GetProcessType() != eal::ProcessType::kPrimary) {
    return absl::FailedPreconditionError(
        absl::StrFormat("port %u: the primary owns the link", shared_->id));
  }
  shared_->link_up.store(up ? 1 : 0);
  // One event per change, to every subscriber (a full mailbox drops it, counted).
  const LinkEvent e = {shared_->id, up ? 1u : 0u};
  return interrupts::Publish(kLinkEventType, &e, sizeof(e));
}

// --- Wire ------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Wire>> Wire::Start(std::vector<Port> ports) {
  std::unique_ptr<Wire> wire(new Wire);
  for (const Port& p : ports) {
    if (p.kind() != PortKind::kGenerator) continue;
    // Each flow goes to the RX queue its 5-tuple hashes to (RSS).
    std::vector<std::vector<FiveTuple>> by_queue(p.rx_queues());
    for (uint32_t f = 0; f < p.shared_->flows; ++f) {
      FiveTuple t = {};
      t.src_ip = 0x0a000000u + f;  // 10.0.x.x
      t.dst_ip = 0x0a800000u + (f * 7919u) % 65536u;
      t.src_port = static_cast<uint16_t>(1024 + f % 60000);
      t.dst_port = static_cast<uint16_t>(f % 3 == 0 ? 80 : f % 3 == 1 ? 443 : 53);
      t.proto = f % 3 == 2 ? 17 : 6;
      by_queue[TupleHash(t) % p.rx_queues()].push_back(t);
    }
    wire->ports_.push_back(p);
    wire->flows_.push_back(std::move(by_queue));
  }
  const int err = pthread_create(&wire->thread_, nullptr, &Wire::RunThread, wire.get());
  if (err != 0) return absl::InternalError(absl::StrCat("wire thread: ", std::strerror(err)));
  pthread_setname_np(wire->thread_, "port-wire");
  wire->running_ = true;
  return wire;
}

Wire::~Wire() {
  stop_ = true;
  if (running_) pthread_join(thread_, nullptr);
}

void* Wire::RunThread(void* self) {
  // The "hardware" is no lcore: any CPU, not the creating lcore's (which forwards).
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int cpu = 0; cpu < CPU_SETSIZE && cpu < static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
       ++cpu) {
    CPU_SET(cpu, &all);
  }
  pthread_setaffinity_np(pthread_self(), sizeof(all), &all);
  static_cast<Wire*>(self)->Run();
  return nullptr;
}

void Wire::Run() {
  // Per port, a token bucket for --rate: it fills at rate_pps and holds at most 20 ms of
  // it, so a link down or an empty pool never banks a flood for later.
  std::vector<double> tokens(ports_.size(), 0.0);
  uint64_t last = MonotonicNs();
  std::vector<std::vector<size_t>> next_flow(ports_.size());
  for (size_t i = 0; i < ports_.size(); ++i) next_flow[i].assign(ports_[i].rx_queues(), 0);
  void* objs[kBurst];
  // Per generator port with a --packets limit, a bit per sequence: a packet that comes
  // back twice (a double free, a slot published twice) is counted as a duplicate.
  std::vector<std::vector<uint64_t>> seen(kMaxPorts);
  for (const Port& p : ports_) {
    const uint64_t limit = p.shared_->packets_limit;
    if (limit != 0 && limit <= (uint64_t{1} << 30)) seen[p.id()].assign((limit + 63) / 64, 0);
  }
  // The queue served first turns, so a rate's budget is shared by every queue.
  for (unsigned round = 0; !stop_.load(std::memory_order_relaxed); ++round) {
    bool busy = false;
    const uint64_t now = MonotonicNs();
    const double elapsed_s = static_cast<double>(now - last) / 1e9;
    last = now;
    for (size_t i = 0; i < ports_.size(); ++i) {
      Port& port = ports_[i];
      PortShared& s = *port.shared_;
      if (s.rate_pps != 0) {
        // At most 20 ms of traffic (or a burst per queue) banked.
        const double cap = std::max(static_cast<double>(kBurst * s.rx_queues),
                                    static_cast<double>(s.rate_pps) / 50);
        tokens[i] = std::min(tokens[i] + elapsed_s * static_cast<double>(s.rate_pps), cap);
      }
      // Generate into each RX queue that has flows.
      for (unsigned k = 0; k < s.rx_queues; ++k) {
        const unsigned q = (round + k) % s.rx_queues;
        const std::vector<FiveTuple>& flows = flows_[i][q];
        if (flows.empty() || s.link_up.load(std::memory_order_relaxed) == 0) continue;
        const uint64_t generated = s.generated.load(std::memory_order_relaxed);
        uint64_t allowed = kBurst;
        if (s.packets_limit != 0) allowed = std::min(allowed, s.packets_limit - generated);
        if (s.rate_pps != 0) allowed = std::min(allowed, static_cast<uint64_t>(tokens[i]));
        if (allowed == 0) continue;
        const unsigned n = static_cast<unsigned>(allowed);
        if (!port.pool_->GetBulk(objs, n, nullptr)) continue;  // the pool is out: wait
        busy = true;
        for (unsigned k = 0; k < n; ++k) {
          auto* p = static_cast<Packet*>(objs[k]);
          const size_t f = next_flow[i][q]++ % flows.size();
          p->tuple = flows[f];
          p->port = static_cast<uint16_t>(s.id);
          p->length = static_cast<uint16_t>(s.payload_length);
          p->flow = static_cast<uint32_t>(f);
          p->sequence = generated + k;
          p->rss = TupleHash(p->tuple);
          p->check = PacketCheck(*p);
        }
        s.generated.store(generated + n, std::memory_order_relaxed);
        if (s.rate_pps != 0) tokens[i] -= n;
        const unsigned in = port.rx_rings_[q]->EnqueueBurst(objs, n);
        if (in < n) {
          port.pool_->PutBulk(objs + in, n - in, nullptr);
          Add(s.rx[q].dropped, n - in);
        }
      }
      // Drain and check what the application sent.
      for (unsigned q = 0; q < s.tx_queues; ++q) {
        const unsigned n = port.tx_rings_[q]->DequeueBurst(objs, kBurst);
        if (n == 0) continue;
        busy = true;
        uint64_t good = 0, duplicates = 0;
        for (unsigned k = 0; k < n; ++k) {
          const auto* p = static_cast<const Packet*>(objs[k]);
          if (p->check != PacketCheck(*p) || p->port >= kMaxPorts) continue;
          ++good;
          Add(s.returned_from[p->port], 1);
          std::vector<uint64_t>& bits = seen[p->port];
          if (p->sequence / 64 < bits.size()) {
            uint64_t& word = bits[p->sequence / 64];
            const uint64_t bit = uint64_t{1} << (p->sequence % 64);
            duplicates += (word & bit) != 0 ? 1 : 0;
            word |= bit;
          }
        }
        Add(s.returned, good);
        if (good < n) Add(s.bad, n - good);
        if (duplicates > 0) Add(s.duplicates, duplicates);
        port.pool_->PutBulk(objs, n, nullptr);
      }
    }
    if (!busy) usleep(50);
  }
}

}  // namespace keel::examples
