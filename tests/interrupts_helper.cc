// A process for the interrupt relay's tests: joins a group (EAL + memory + interrupts),
// prints READY pid=P type=primary|secondary (or INIT-FAILED: <status>, exit code 2),
// then runs commands read from stdin, one per line, printing one result line each:
//
//   subscribe TYPE           SUBSCRIBED TYPE | ERROR <status>
//   unsubscribe TYPE         UNSUBSCRIBED TYPE
//   publish TYPE COUNT SIZE [PID]
//                            PUBLISHED ok=K full=F failed=E ns=T first_error=...
//                            (COUNT events of SIZE bytes >= 16, to PID or broadcast)
//   received TYPE            RECEIVED TYPE n=N dropped=D bad=B disorder=O sources=P:C,...
//   await TYPE N             as received, once N events arrived (or after 20 s)
//   relay TYPE               RELAYING fd=F: an eventfd, relayed as TYPE (RelayFd)
//   toggle VALUE             TOGGLED: writes VALUE to that eventfd
//   describe                 RELAY types=T undelivered=U
//                            subscribers=PID:DEPTH:DROPPED:TYPE+TYPE,...
//   watch-primary            WATCHING (subscribes to kPrimaryExited)
//   primary-exited           PRIMARY-EXITED n=N pid=P
//   watch-adoption           WATCHING (subscribes to kPrimaryAdopted)
//   primary-adopted          PRIMARY-ADOPTED n=N pid=P
//   quit
//
// Payloads: {uint64 n, int32 publisher pid, uint32 size} then size - 16 bytes derived
// from (n, pid, index): a subscriber checks each one's bytes ("bad") and that each
// publisher's n only grows ("disorder").
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eal/eal.h"
#include "interrupts/interrupts.h"
#include "tests/helper_loop.h"

namespace {

namespace intr = keel::interrupts;

struct PayloadHeader {
  uint64_t n;
  int32_t pid;
  uint32_t size;
};

unsigned char PatternByte(uint64_t n, int32_t pid, size_t index) {
  return static_cast<unsigned char>(n * 7 + index * 13 + static_cast<uint64_t>(pid));
}

struct TypeStats {
  uint64_t count = 0;
  uint64_t dropped = 0;
  uint64_t bad = 0;
  uint64_t disorder = 0;
  std::map<int32_t, uint64_t> per_source;  // events
  std::map<int32_t, uint64_t> last_n;
};

absl::Mutex g_mu;
std::map<std::string, TypeStats> g_stats ABSL_GUARDED_BY(g_mu);
std::map<std::string, intr::SubscriptionId> g_subscriptions;  // main thread only
std::atomic<int> g_primary_exited{0};
std::atomic<int32_t> g_primary_exited_pid{0};
int g_relay_fd = -1;
// Each type's publish counter (the payload's n): main thread only.
std::map<std::string, uint64_t> g_published;

void OnEvent(const intr::Event& e, void*) {
  PayloadHeader h = {};
  bool good = e.payload.size() >= sizeof(h);
  if (good) {
    std::memcpy(&h, e.payload.data(), sizeof(h));
    good = h.size == e.payload.size() && h.pid == e.source_pid;
    for (size_t i = sizeof(h); good && i < e.payload.size(); ++i) {
      good = e.payload[i] == PatternByte(h.n, h.pid, i);
    }
  }
  absl::MutexLock lock(&g_mu);
  TypeStats& s = g_stats[std::string(e.type)];
  ++s.count;
  s.dropped += e.dropped_before;
  if (!good) {
    ++s.bad;
    return;
  }
  ++s.per_source[h.pid];
  auto [it, fresh] = s.last_n.emplace(h.pid, h.n);
  if (!fresh) {
    if (h.n <= it->second) ++s.disorder;
    it->second = h.n;
  }
}

void OnPrimaryExited(const intr::Event& e, void*) {
  int32_t pid = 0;
  if (e.payload.size() == sizeof(pid)) std::memcpy(&pid, e.payload.data(), sizeof(pid));
  g_primary_exited_pid = pid;
  ++g_primary_exited;
}

std::atomic<int> g_primary_adopted{0};
std::atomic<int32_t> g_primary_adopted_pid{0};

void OnPrimaryAdopted(const intr::Event& e, void*) {
  int32_t pid = 0;
  if (e.payload.size() == sizeof(pid)) std::memcpy(&pid, e.payload.data(), sizeof(pid));
  g_primary_adopted_pid = pid;
  ++g_primary_adopted;
}

std::string Received(const std::string& type) {
  absl::MutexLock lock(&g_mu);
  const TypeStats& s = g_stats[type];
  std::vector<std::string> sources;
  for (const auto& [pid, count] : s.per_source) sources.push_back(absl::StrCat(pid, ":", count));
  return absl::StrFormat("RECEIVED %s n=%d dropped=%d bad=%d disorder=%d sources=%s", type, s.count,
                         s.dropped, s.bad, s.disorder, absl::StrJoin(sources, ","));
}

std::string Error(const absl::Status& s) { return absl::StrCat("ERROR ", s.ToString()); }

std::string Publish(const std::string& type, uint64_t count, uint64_t size, pid_t to) {
  if (size < sizeof(PayloadHeader) || size > intr::kMaxPayload) return "ERROR bad size";
  absl::StatusOr<intr::EventType> t = intr::RegisterType(type);
  if (!t.ok()) return Error(t.status());
  std::vector<unsigned char> payload(size);
  uint64_t ok = 0, full = 0, failed = 0;
  std::string first_error = "none";
  uint64_t& n = g_published[type];
  const absl::Time start = absl::Now();
  for (uint64_t i = 0; i < count; ++i) {
    const PayloadHeader h = {n++, static_cast<int32_t>(::getpid()), static_cast<uint32_t>(size)};
    std::memcpy(payload.data(), &h, sizeof(h));
    for (size_t j = sizeof(h); j < size; ++j) payload[j] = PatternByte(h.n, h.pid, j);
    const absl::Status s = intr::Publish(*t, payload.data(), size, to);
    if (s.ok()) {
      ++ok;
      continue;
    }
    if (absl::IsResourceExhausted(s)) {
      ++full;
    } else {
      ++failed;
    }
    if (first_error == "none") first_error = s.ToString();
  }
  const int64_t ns = absl::ToInt64Nanoseconds(absl::Now() - start);
  return absl::StrFormat("PUBLISHED ok=%d full=%d failed=%d ns=%d first_error=%s", ok, full, failed,
                         ns, first_error);
}

std::string Describe() {
  absl::StatusOr<intr::RelayInfo> info = intr::DescribeRelay();
  if (!info.ok()) return Error(info.status());
  std::vector<std::string> subs;
  for (const intr::SubscriberInfo& s : info->subscribers) {
    subs.push_back(
        absl::StrCat(s.pid, ":", s.depth, ":", s.dropped, ":", absl::StrJoin(s.types, "+")));
  }
  return absl::StrCat("RELAY types=", info->types.size(), " undelivered=", info->undelivered,
                      " subscribers=", absl::StrJoin(subs, ","));
}

std::string Run(const std::vector<std::string>& cmd) {
  uint64_t a = 0, b = 0, c = 0;
  if (cmd[0] == "subscribe" && cmd.size() == 2) {
    absl::StatusOr<intr::SubscriptionId> id = intr::Subscribe(cmd[1], OnEvent, nullptr);
    if (!id.ok()) return Error(id.status());
    g_subscriptions[cmd[1]] = *id;
    return "SUBSCRIBED " + cmd[1];
  }
  if (cmd[0] == "unsubscribe" && cmd.size() == 2) {
    auto it = g_subscriptions.find(cmd[1]);
    if (it == g_subscriptions.end()) return "ERROR not subscribed";
    if (absl::Status s = intr::Unsubscribe(it->second); !s.ok()) return Error(s);
    g_subscriptions.erase(it);
    return "UNSUBSCRIBED " + cmd[1];
  }
  if (cmd[0] == "publish" && (cmd.size() == 4 || cmd.size() == 5) && absl::SimpleAtoi(cmd[2], &a) &&
      absl::SimpleAtoi(cmd[3], &b) && (cmd.size() == 4 || absl::SimpleAtoi(cmd[4], &c))) {
    return Publish(cmd[1], a, b, static_cast<pid_t>(c));
  }
  if (cmd[0] == "received" && cmd.size() == 2) return Received(cmd[1]);
  if (cmd[0] == "await" && cmd.size() == 3 && absl::SimpleAtoi(cmd[2], &a)) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      {
        absl::MutexLock lock(&g_mu);
        if (g_stats[cmd[1]].count >= a) break;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    return Received(cmd[1]);
  }
  if (cmd[0] == "relay" && cmd.size() == 2) {
    g_relay_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (absl::Status s = intr::RelayFd(g_relay_fd, cmd[1]); !s.ok()) return Error(s);
    return absl::StrCat("RELAYING fd=", g_relay_fd);
  }
  if (cmd[0] == "toggle" && cmd.size() == 2 && absl::SimpleAtoi(cmd[1], &a)) {
    if (::write(g_relay_fd, &a, sizeof(a)) != sizeof(a)) return "ERROR write";
    return "TOGGLED";
  }
  if (cmd[0] == "describe") return Describe();
  if (cmd[0] == "watch-primary") {
    absl::StatusOr<intr::SubscriptionId> id =
        intr::Subscribe(intr::kPrimaryExited, OnPrimaryExited, nullptr);
    return id.ok() ? "WATCHING" : Error(id.status());
  }
  if (cmd[0] == "watch-adoption") {
    absl::StatusOr<intr::SubscriptionId> id =
        intr::Subscribe(intr::kPrimaryAdopted, OnPrimaryAdopted, nullptr);
    return id.ok() ? "WATCHING" : Error(id.status());
  }
  if (cmd[0] == "primary-adopted") {
    return absl::StrCat("PRIMARY-ADOPTED n=", g_primary_adopted.load(),
                        " pid=", g_primary_adopted_pid.load());
  }
  if (cmd[0] == "primary-exited") {
    return absl::StrCat("PRIMARY-EXITED n=", g_primary_exited.load(),
                        " pid=", g_primary_exited_pid.load());
  }
  return "UNKNOWN " + cmd[0];
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::vector<std::string>> args = keel::testing::JoinGroup(argc, argv);
  if (!args) return 2;
  std::printf("READY pid=%d type=%s\n", ::getpid(),
              std::string(keel::eal::ProcessTypeName(keel::eal::GetProcessType())).c_str());
  return keel::testing::ServeCommands(Run);
}
