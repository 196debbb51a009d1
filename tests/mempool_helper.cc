// A process for the mempool tests: joins a group (EAL + memory + ring + mempool), then
// runs commands read from stdin, one per line, printing one result line each. The
// process keeps a list of objects it holds (got and not yet put back).
//
//   create POOL N ELT CACHE        CREATED POOL | ERROR <status>
//   create-ring RING COUNT         CREATED RING
//   lookup POOL                    FOUND POOL size=N cache=C ops=NAME
//   get POOL N TAG                 GOT N (TAG-i written into each) | GET-FAILED
//   put POOL                       PUT N (every held object)
//   handoff RING                   HANDED N (every held object enqueued on RING)
//   take RING N                    TOOK N (dequeued into the held list)
//   check TAG                      CHECKED N ok=K (held objects whose text starts TAG)
//   counts POOL                    COUNTS available=A in_use=U held=H
//   cache POOL LCORE               CACHE lcore=L len=N
//   flush POOL                     FLUSHED lcore=L (this lcore's cache back to the ring)
//   churn POOL ROUNDS              CHURNED errors=E (get/tag/verify/put on every lcore
//                                  of this process at once)
//   audit POOL                     AUDIT OK | AUDIT <status>
//   free POOL                      FREED POOL
//   quit
//
//   mempool_helper [EAL options] -- [--forget-ops NAME]
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "eal/eal.h"
#include "memory/memory.h"
#include "mempool/mempool.h"
#include "ring/ring.h"
#include "tests/helper_loop.h"

namespace {

namespace mempool = keel::mempool;

std::vector<void*> g_held;

std::string Err(const absl::Status& s) { return "ERROR " + s.ToString(); }

unsigned Num(const std::string& text) {
  unsigned n = 0;
  if (!absl::SimpleAtoi(text, &n)) std::printf("bad number \"%s\"\n", text.c_str());
  return n;
}

// On every lcore of this process at once: get a few objects, stamp them with the lcore
// id, check nobody else changed them, put them back.
unsigned Churn(mempool::Mempool* pool, unsigned rounds) {
  std::atomic<unsigned> errors{0};
  auto work = [&]() {
    const unsigned me = keel::eal::LcoreId() + 1000 * static_cast<unsigned>(getpid());
    void* objs[48];
    for (unsigned r = 0; r < rounds; ++r) {
      const unsigned n = 1 + r % 48;
      if (!pool->GetBulk(objs, n)) continue;
      for (unsigned i = 0; i < n; ++i) std::memcpy(objs[i], &me, sizeof(me));
      for (unsigned i = 0; i < n; ++i) {
        unsigned seen;
        std::memcpy(&seen, objs[i], sizeof(seen));
        // Relaxed: a counter read after every lcore is waited for.
        if (seen != me) errors.fetch_add(1, std::memory_order_relaxed);
      }
      pool->PutBulk(objs, n);
    }
    return 0;
  };
  keel::eal::LaunchOnAllWorkers(work, keel::eal::CallMain::kCall).IgnoreError();
  keel::eal::WaitAllLcores();
  return errors.load();
}

std::string Run(const std::vector<std::string>& cmd) {
  const std::string& op = cmd[0];
  auto arg = [&](size_t i) { return i < cmd.size() ? cmd[i] : std::string(); };
  if (op == "create") {
    absl::StatusOr<mempool::Mempool*> p = mempool::Create(
        arg(1), Num(arg(2)), Num(arg(3)), Num(arg(4)), 0, 0, keel::memory::kSocketAny);
    return p.ok() ? "CREATED " + arg(1) : Err(p.status());
  }
  if (op == "create-ring") {
    absl::StatusOr<keel::ring::Ring*> r =
        keel::ring::Create(arg(1), Num(arg(2)), keel::memory::kSocketAny, 0);
    return r.ok() ? "CREATED " + arg(1) : Err(r.status());
  }
  if (op == "handoff" || op == "take") {
    absl::StatusOr<keel::ring::Ring*> r = keel::ring::Lookup(arg(1));
    if (!r.ok()) return Err(r.status());
    if (op == "handoff") {
      const unsigned n = (*r)->EnqueueBurst(g_held.data(), static_cast<unsigned>(g_held.size()));
      g_held.erase(g_held.begin(), g_held.begin() + n);
      return absl::StrCat("HANDED ", n);
    }
    std::vector<void*> objs(Num(arg(2)));
    const unsigned n = (*r)->DequeueBurst(objs.data(), static_cast<unsigned>(objs.size()));
    g_held.insert(g_held.end(), objs.begin(), objs.begin() + n);
    return absl::StrCat("TOOK ", n);
  }
  if (op == "check") {
    unsigned ok = 0;
    for (void* obj : g_held) {
      if (absl::StartsWith(static_cast<const char*>(obj), arg(1) + "-")) ++ok;
    }
    return absl::StrCat("CHECKED ", g_held.size(), " ok=", ok);
  }
  absl::StatusOr<mempool::Mempool*> pool = mempool::Lookup(arg(1));
  if (!pool.ok()) return Err(pool.status());
  mempool::Mempool* p = *pool;
  if (op == "lookup") {
    return absl::StrCat("FOUND ", arg(1), " size=", p->Size(), " cache=", p->CacheSize(),
                        " ops=", p->ops_name());
  }
  if (op == "get") {
    std::vector<void*> objs(Num(arg(2)));
    if (!p->GetBulk(objs.data(), static_cast<unsigned>(objs.size()))) return "GET-FAILED";
    for (size_t i = 0; i < objs.size(); ++i) {
      absl::SNPrintF(static_cast<char*>(objs[i]), p->ElementSize(), "%s-%d", arg(3), i);
    }
    g_held.insert(g_held.end(), objs.begin(), objs.end());
    return absl::StrCat("GOT ", objs.size());
  }
  if (op == "put") {
    const size_t n = g_held.size();
    p->PutBulk(g_held.data(), static_cast<unsigned>(n));
    g_held.clear();
    return absl::StrCat("PUT ", n);
  }
  if (op == "counts") {
    return absl::StrCat("COUNTS available=", p->AvailableCount(), " in_use=", p->InUseCount(),
                        " held=", g_held.size());
  }
  if (op == "cache") {
    const unsigned lcore = Num(arg(2));
    mempool::Cache* cache = p->DefaultCache(lcore);
    return absl::StrCat("CACHE lcore=", lcore, " len=", cache == nullptr ? 0 : cache->len.load());
  }
  if (op == "flush") {
    mempool::FlushCache(p->DefaultCache(), p);
    return absl::StrCat("FLUSHED lcore=", keel::eal::LcoreId());
  }
  if (op == "churn") return absl::StrCat("CHURNED errors=", Churn(p, Num(arg(2))));
  if (op == "audit") {
    const absl::Status s = p->Audit();
    return s.ok() ? "AUDIT OK" : "AUDIT " + s.ToString();
  }
  if (op == "free") {
    const absl::Status s = mempool::Free(p);
    return s.ok() ? "FREED " + arg(1) : Err(s);
  }
  return "UNKNOWN " + op;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::vector<std::string>> app_args = keel::testing::JoinGroup(argc, argv);
  if (!app_args) return 2;
  for (size_t i = 0; i + 1 < app_args->size(); ++i) {
    if ((*app_args)[i] == "--forget-ops") mempool::ForgetOpsForTest((*app_args)[i + 1]);
  }
  std::printf("READY pid=%d\n", getpid());
  return keel::testing::ServeCommands(Run);
}
