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
//   killpoints                     KILLPOINTS on | off (compiled in: debug builds)
//
// Ownership words: pools made with ocreate keep in each object's first 8 bytes the id
// of its holder (0: nobody). A get claims each object (compare-and-swap 0 -> own id)
// and counts a "double" when it was not 0: the pool handed out an object someone
// holds. A put releases (own id -> 0) first. These objects are kept apart from the
// text-tagged ones above. Each double is also logged ("helper: DOUBLE ..." / "helper:
// STOLEN ...", the first few of each command), on lines the tests' NextAnswer skips.
//   ocreate POOL N ELT CACHE [OPS] CREATED POOL (every ownership word 0)
//   oget POOL N                    OGOT N doubles=D | GET-FAILED
//   oput POOL N                    OPUT N (the last N owned, in one bulk)
//   oflush POOL                    OFLUSHED (this lcore's cache back to the ring)
//   drain POOL                     DRAINED got=G doubles=D (gets one at a time on every
//                                  lcore of this process until each fails; keeps them)
//   ochurn POOL ROUNDS SEED        OCHURNED doubles=D errors=E (every lcore: random
//                                  bulks got, claimed, held a while, released, put);
//                                  prints CHURNING first
//   owners POOL                    OWNERS held=H (objects whose word is not 0)
//   quit
//
//   mempool_helper [EAL options] -- [--forget-ops NAME]
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "eal/eal.h"
#include "memory/memory.h"
#include "mempool/mempool.h"
#include "ring/ring.h"
#include "tests/helper_loop.h"

namespace {

namespace mempool = keel::mempool;

std::vector<void*> g_held;
std::vector<void*> g_owned;  // objects this process claimed (ownership words)

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

// This thread's id in ownership words: never 0, unique in the group.
uint64_t OwnerId() {
  return (static_cast<uint64_t>(getpid()) << 16) | (keel::eal::LcoreId() & 0xffff) | 1u << 15;
}

std::atomic<uint64_t>* Word(void* obj) { return static_cast<std::atomic<uint64_t>*>(obj); }

// Lines logged per process, at most (the counts in the answers are complete).
std::atomic<int> g_logged{0};
bool ShouldLog() {
  // Relaxed: a counter.
  return g_logged.fetch_add(1, std::memory_order_relaxed) < 8;
}

// Claims objs for `me`; returns how many were not free (held by someone: a double).
unsigned Claim(void* const* objs, unsigned n, uint64_t me) {
  unsigned doubles = 0;
  for (unsigned i = 0; i < n; ++i) {
    uint64_t expected = 0;
    // Relaxed: the pool's own hand-over orders the object's contents; the word only
    // has to be read and written atomically, never ordering anything else.
    if (!Word(objs[i])->compare_exchange_strong(expected, me, std::memory_order_relaxed)) {
      ++doubles;
      if (ShouldLog()) {
        std::printf("helper: DOUBLE %p held by %#llx, got by %#llx\n", objs[i],
                    static_cast<unsigned long long>(expected), static_cast<unsigned long long>(me));
      }
    }
  }
  return doubles;
}

// Releases objs held by `me`; returns how many were not ours (someone else claimed
// them meanwhile: a double too).
unsigned Release(void* const* objs, unsigned n, uint64_t me) {
  unsigned errors = 0;
  for (unsigned i = 0; i < n; ++i) {
    uint64_t expected = me;
    // Relaxed: see Claim.
    if (!Word(objs[i])->compare_exchange_strong(expected, 0, std::memory_order_relaxed)) {
      ++errors;
      if (ShouldLog()) {
        std::printf("helper: STOLEN %p held by %#llx, put by %#llx\n", objs[i],
                    static_cast<unsigned long long>(expected), static_cast<unsigned long long>(me));
      }
    }
  }
  return errors;
}

// On every lcore of this process: get one object at a time until the pool (ring and
// this lcore's cache) has none left; claim each.
std::string Drain(mempool::Mempool* pool) {
  std::atomic<unsigned> got{0};
  std::atomic<unsigned> doubles{0};
  absl::Mutex mu;
  auto work = [&]() {
    std::vector<void*> mine;
    void* obj;
    while (pool->Get(&obj)) mine.push_back(obj);
    const unsigned d = Claim(mine.data(), static_cast<unsigned>(mine.size()), OwnerId());
    // Relaxed: counters read after every lcore is waited for.
    got.fetch_add(static_cast<unsigned>(mine.size()), std::memory_order_relaxed);
    doubles.fetch_add(d, std::memory_order_relaxed);
    absl::MutexLock lock(&mu);
    g_owned.insert(g_owned.end(), mine.begin(), mine.end());
    return 0;
  };
  keel::eal::LaunchOnAllWorkers(work, keel::eal::CallMain::kCall).IgnoreError();
  keel::eal::WaitAllLcores();
  // An object got twice by this process is caught by Claim too: the word is not 0.
  return absl::StrCat("DRAINED got=", got.load(), " doubles=", doubles.load());
}

// On every lcore of this process at once: random bulks (1..40) got and claimed, held
// in a stash of up to 100, released and put back in random bulks.
std::string OwnedChurn(mempool::Mempool* pool, unsigned rounds, uint64_t seed) {
  std::atomic<unsigned> doubles{0};
  std::atomic<unsigned> errors{0};
  std::printf("CHURNING\n");
  auto work = [&]() {
    const uint64_t me = OwnerId();
    uint64_t state = seed * 0x9e3779b97f4a7c15ULL + keel::eal::LcoreId() + 1;
    auto next = [&](unsigned bound) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      return static_cast<unsigned>(state % bound);
    };
    std::vector<void*> stash;
    void* objs[40];
    unsigned d = 0, e = 0;
    for (unsigned r = 0; r < rounds; ++r) {
      const unsigned n = 1 + next(40);
      if (stash.size() + n <= 100 && pool->GetBulk(objs, n)) {
        d += Claim(objs, n, me);
        stash.insert(stash.end(), objs, objs + n);
      }
      const unsigned back = next(static_cast<unsigned>(stash.size()) + 1);
      if (back == 0) continue;
      void** first = stash.data() + stash.size() - back;
      e += Release(first, back, me);
      pool->PutBulk(first, back);
      stash.resize(stash.size() - back);
    }
    e += Release(stash.data(), static_cast<unsigned>(stash.size()), me);
    pool->PutBulk(stash.data(), static_cast<unsigned>(stash.size()));
    // Relaxed: counters read after every lcore is waited for.
    doubles.fetch_add(d, std::memory_order_relaxed);
    errors.fetch_add(e, std::memory_order_relaxed);
    return 0;
  };
  keel::eal::LaunchOnAllWorkers(work, keel::eal::CallMain::kCall).IgnoreError();
  keel::eal::WaitAllLcores();
  return absl::StrCat("OCHURNED doubles=", doubles.load(), " errors=", errors.load());
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
  if (op == "killpoints") {
#ifdef NDEBUG
    return "KILLPOINTS off";
#else
    return "KILLPOINTS on";
#endif
  }
  if (op == "ocreate") {
    absl::StatusOr<mempool::Mempool*> p = mempool::Create(
        arg(1), Num(arg(2)), Num(arg(3)), Num(arg(4)), 0, 0, keel::memory::kSocketAny,
        [](mempool::Mempool&, void* obj, unsigned) {
          // Relaxed: before the pool is visible to anyone.
          new (obj) std::atomic<uint64_t>(0);
        },
        arg(5));
    return p.ok() ? "CREATED " + arg(1) : Err(p.status());
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
  if (op == "oget") {
    const unsigned n = Num(arg(2));
    std::vector<void*> objs(n);
    if (!p->GetBulk(objs.data(), n)) return "GET-FAILED";
    const unsigned doubles = Claim(objs.data(), n, OwnerId());
    g_owned.insert(g_owned.end(), objs.begin(), objs.end());
    return absl::StrCat("OGOT ", n, " doubles=", doubles);
  }
  if (op == "oput") {
    const unsigned n = std::min<unsigned>(Num(arg(2)), static_cast<unsigned>(g_owned.size()));
    void** first = g_owned.data() + g_owned.size() - n;
    const unsigned errors = Release(first, n, OwnerId());
    p->PutBulk(first, n);
    g_owned.resize(g_owned.size() - n);
    return absl::StrCat("OPUT ", n, errors == 0 ? "" : absl::StrCat(" errors=", errors));
  }
  if (op == "oflush") {
    mempool::FlushCache(p->DefaultCache(), p);
    return "OFLUSHED";
  }
  if (op == "drain") return Drain(p);
  if (op == "ochurn") return OwnedChurn(p, Num(arg(2)), Num(arg(3)));
  if (op == "owners") {
    unsigned held = 0;
    p->ObjectIterate([&](void* obj, unsigned) {
      // Relaxed: a count taken when nobody runs.
      if (Word(obj)->load(std::memory_order_relaxed) != 0) ++held;
    });
    return absl::StrCat("OWNERS held=", held);
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
