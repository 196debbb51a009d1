// A process for the telemetry tests, linking every component: joins a group, prints
//   READY pid=P type=primary|secondary socket=PATH   (PATH "" without telemetry)
// (or INIT-FAILED: <status>, exit code 2), then runs commands read from stdin, one per
// line, printing one result line each:
//
//   objects          OBJECTS: creates ring "tel_ring" (1024), mempool "tel_pool" (511
//                    objects of 64 B, cache 16), hash "tel_hash" (1024 entries, 8-byte
//                    keys) holding 100 keys, timer set "tel_timers" (64) with 5 timers
//                    pending an hour away on this process's main lcore, and subscribes
//                    to event type "tel.event"
//   enqueue N        ENQUEUED N: N elements into tel_ring
//   get N            GOT N: takes N objects from tel_pool (and keeps them)
//   quit
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "eal/eal.h"
#include "eal/lcore.h"
#include "hash/hash.h"
#include "interrupts/interrupts.h"
#include "mempool/mempool.h"
#include "ring/ring.h"
#include "tests/helper_loop.h"
#include "timer/timer.h"

namespace {

using namespace keel;  // NOLINT: a test helper

void Ignore(timer::TimerSet&, timer::Timer, void*) {}
void IgnoreEvent(const interrupts::Event&, void*) {}

absl::Status MakeObjects() {
  absl::StatusOr<ring::Ring*> r = ring::Create("tel_ring", 1024, -1, 0);
  if (!r.ok()) return r.status();
  absl::StatusOr<mempool::Mempool*> pool = mempool::Create("tel_pool", 511, 64, 16, 0, 0, -1);
  if (!pool.ok()) return pool.status();
  hash::Params params;
  params.name = "tel_hash";
  params.entries = 1024;
  params.key_length = 8;
  absl::StatusOr<hash::Table> table = hash::Create(params);
  if (!table.ok()) return table.status();
  for (uint64_t key = 1; key <= 100; ++key) {
    if (table->Add(&key) < 0) return absl::InternalError("hash add failed");
  }
  if (absl::Status s = timer::RegisterCallback("ignore", Ignore); !s.ok()) return s;
  absl::StatusOr<timer::TimerSet> set = timer::Create({"tel_timers", 64});
  if (!set.ok()) return set.status();
  absl::StatusOr<timer::CallbackId> cb = set->AddCallback("ignore");
  if (!cb.ok()) return cb.status();
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<timer::Timer> t = set->NewTimer();
    if (!t.ok()) return t.status();
    if (timer::Reset(*set, *t, timer::Hz() * 3600, timer::Mode::kSingle, eal::MainLcore(), *cb,
                     nullptr) != timer::Result::kOk) {
      return absl::InternalError("timer reset failed");
    }
  }
  absl::StatusOr<interrupts::EventType> type = interrupts::RegisterType("tel.event");
  if (!type.ok()) return type.status();
  return interrupts::Subscribe("tel.event", IgnoreEvent, nullptr).status();
}

std::string Run(const std::vector<std::string>& cmd) {
  uint64_t n = 0;
  if (cmd[0] == "objects" && cmd.size() == 1) {
    const absl::Status s = MakeObjects();
    return s.ok() ? "OBJECTS" : "ERROR " + s.ToString();
  }
  if (cmd[0] == "enqueue" && cmd.size() == 2 && absl::SimpleAtoi(cmd[1], &n)) {
    absl::StatusOr<ring::Ring*> r = ring::Lookup("tel_ring");
    if (!r.ok()) return "ERROR " + r.status().ToString();
    std::vector<void*> objs(n, &n);
    return absl::StrCat("ENQUEUED ", (*r)->EnqueueBurst(objs.data(), n));
  }
  if (cmd[0] == "get" && cmd.size() == 2 && absl::SimpleAtoi(cmd[1], &n)) {
    absl::StatusOr<mempool::Mempool*> pool = mempool::Lookup("tel_pool");
    if (!pool.ok()) return "ERROR " + pool.status().ToString();
    std::vector<void*> objs(n);
    return (*pool)->GetBulk(objs.data(), n) ? absl::StrCat("GOT ", n) : "ERROR empty";
  }
  return "UNKNOWN " + cmd[0];
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::vector<std::string>> args = keel::testing::JoinGroup(argc, argv);
  if (!args) return 2;
  std::printf("READY pid=%d type=%s socket=%s\n", ::getpid(),
              std::string(keel::eal::ProcessTypeName(keel::eal::GetProcessType())).c_str(),
              keel::eal::TelemetrySocketPath().c_str());
  return keel::testing::ServeCommands(Run);
}
