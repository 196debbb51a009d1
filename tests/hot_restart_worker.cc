// One process of the hot-restart benchmark (tests/hot_restart_benchmark.cc drives it).
//
//   hot_restart_worker EAL-OPTIONS -- echo|ping
//
// echo (the primary): takes objects off the ring "hr.ping" and puts them on "hr.pong".
//   The first one creates the pool "hr.pool" and both rings; one that adopted the group
//   (--adopt, --takeover) looks them up. When another primary asks for the group
//   (--takeover) it hands it over (eal::HandOver) and prints HANDED-OVER.
// ping (a secondary): keeps a few objects on "hr.ping" and takes them back off
//   "hr.pong", timing the gaps between objects coming back. Commands on stdin, one per
//   line: "reset" (RESET: forget the longest gap), "gap" (GAP max_ns=N pongs=P: the
//   longest gap since the reset, and how many came back in all), "quit".
// Both print READY pid=P once they move objects. Only the pinger gets from and puts to
// the pool, so a killed echo loses at most the burst in its hands.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/monotonic.h"
#include "eal/eal.h"
#include "mempool/mempool.h"
#include "ring/ring.h"

namespace {

using namespace keel;  // NOLINT: a tool's main file

constexpr unsigned kObjects = 16383;
constexpr unsigned kRingSize = 1024;
constexpr unsigned kBurst = 32;
constexpr unsigned kInFlight = 32;  // the pinger keeps this many on hr.ping at most

struct Objects {
  mempool::Mempool* pool = nullptr;
  ring::Ring* ping = nullptr;
  ring::Ring* pong = nullptr;
};

absl::Status Create() {
  absl::StatusOr<mempool::Mempool*> pool = mempool::Create("hr.pool", kObjects, 64, 0, 0, 0, -1);
  if (!pool.ok()) return pool.status();
  for (const char* name : {"hr.ping", "hr.pong"}) {
    absl::StatusOr<ring::Ring*> r =
        ring::Create(name, kRingSize, -1, ring::kSingleProducer | ring::kSingleConsumer);
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

absl::Status Find(Objects* o) {
  absl::StatusOr<mempool::Mempool*> pool = mempool::Lookup("hr.pool");
  if (!pool.ok()) return pool.status();
  o->pool = *pool;
  absl::StatusOr<ring::Ring*> ping = ring::Lookup("hr.ping");
  if (!ping.ok()) return ping.status();
  o->ping = *ping;
  absl::StatusOr<ring::Ring*> pong = ring::Lookup("hr.pong");
  if (!pong.ok()) return pong.status();
  o->pong = *pong;
  return absl::OkStatus();
}

// Whether `fd` is readable now (never waits).
bool Readable(int fd) {
  pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
}

// The echo; returns the exit code (after HandOver or Cleanup).
int Echo(const Objects& o) {
  void* objs[kBurst];
  for (;;) {
    const unsigned n = o.ping->ScDequeueBurst(objs, kBurst, nullptr);
    for (unsigned sent = 0; sent < n;)
      sent += o.pong->SpEnqueueBurst(objs + sent, n - sent, nullptr);
    if (n != 0) continue;
    if (Readable(eal::TakeoverRequestFd())) {
      const absl::Status s = eal::HandOver();
      std::printf("%s\n", s.ok() ? "HANDED-OVER" : s.ToString().c_str());
      return s.ok() ? 0 : 3;
    }
    if (Readable(STDIN_FILENO)) break;  // a line or the end of input: quit
  }
  return eal::Cleanup().ok() ? 0 : 3;
}

int Ping(const Objects& o) {
  uint64_t last = 0, max_gap = 0, pongs = 0;
  std::string input;
  for (uint64_t round = 0;; ++round) {
    void* obj;
    if (o.ping->Count() < kInFlight && o.pool->Get(&obj)) {
      if (o.ping->SpEnqueueBurst(&obj, 1, nullptr) != 1) o.pool->Put(obj);
    }
    void* back[kBurst];
    const unsigned n = o.pong->ScDequeueBurst(back, kBurst, nullptr);
    if (n != 0) {
      const uint64_t now = MonotonicNs();
      if (last != 0) max_gap = std::max(max_gap, now - last);
      last = now;
      pongs += n;
      o.pool->PutBulk(back, n);
    }
    if (round % 1024 != 0 || !Readable(STDIN_FILENO)) continue;
    char chunk[256];
    const ssize_t got = read(STDIN_FILENO, chunk, sizeof chunk);
    if (got <= 0) break;
    input.append(chunk, static_cast<size_t>(got));
    for (size_t end; (end = input.find('\n')) != std::string::npos;) {
      const std::string line = input.substr(0, end);
      input.erase(0, end + 1);
      if (line == "quit") return eal::Cleanup().ok() ? 0 : 3;
      if (line == "reset") {
        max_gap = 0;
        std::printf("RESET\n");
      } else if (line == "gap") {
        std::printf("GAP max_ns=%llu pongs=%llu\n", static_cast<unsigned long long>(max_gap),
                    static_cast<unsigned long long>(pongs));
      }
    }
  }
  return eal::Cleanup().ok() ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  absl::StatusOr<std::vector<std::string>> args = eal::Init(argc, argv);
  if (!args.ok()) {
    std::printf("INIT-FAILED: %s\n", args.status().ToString().c_str());
    return 2;
  }
  const bool echo = args->size() == 1 && (*args)[0] == "echo";
  if (!echo && (args->size() != 1 || (*args)[0] != "ping")) {
    std::printf("USAGE: hot_restart_worker EAL-OPTIONS -- echo|ping\n");
    return 2;
  }
  Objects o;
  absl::Status ready = absl::OkStatus();
  if (echo && !eal::Adopted()) ready = Create();
  if (ready.ok()) ready = Find(&o);
  if (!ready.ok()) {
    std::printf("SETUP-FAILED %s\n", ready.ToString().c_str());
    return 2;
  }
  std::printf("READY pid=%d\n", getpid());
  return echo ? Echo(o) : Ping(o);
}
