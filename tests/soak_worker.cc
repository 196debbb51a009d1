// One process of the soak (tests/soak.cc drives it): the primary or secondary
// SLOT of a group moving mempool objects through rings while the driver kills processes.
//
//   soak_worker EAL-OPTIONS -- primary|secondary SLOT SECONDARIES TOKEN
//
// The primary creates the pool "soak.pool", and for each secondary S (1..SECONDARIES)
// the rings "soak.to.S" (primary -> S), "soak.from.S" (S -> primary) and "soak.link.S"
// (S -> the next secondary, the last one's to the first), every ring single-producer
// single-consumer: each side belongs to one slot, so a process killed inside an
// operation leaves it to its successor in the slot (ring/README.md, "Crash order").
// Only the primary gets from and puts to the pool. Each object starts with an
// ownership word: 0 while it is in the pool, kInRing | ring while it is in a ring,
// otherwise the TOKEN of the process holding it (unique per process in a soak). Every
// transfer claims the word with a compare-and-swap from the value it must have; a claim
// that finds another value is an object handed out twice, counted in the shared
// memzone "soak.state" (so it survives its finder).
//
// The process moves objects between commands read from stdin, one per line, answering
// each with one line:
//   stats      STATS token=T held=H primary_alive=0|1 to=.. from=.. link_in=.. link_out=..
//              moved=M   (objects through each of its rings; M: those it took out)
//   pause      PAUSED: stops moving (holding what it holds)
//   resume     RESUMED
//   audit      AUDIT objects=N free=F available=A doubles=D rings=ID:WORDS:COUNT,...
//              held=TOKEN:COUNT,...   (every object's word, read while all are paused)
//   lcores     LCORES PID:LCORE,...  PROCESSES PID,...   (eal::DescribeGroup)
//   hide       INJECTED hidden 1|none: (a secondary, paused) forgets an object it holds,
//              leaving its word: a check of the soak's own audit
//   drop       INJECTED dropped 1|none: takes an object out of its ring from the primary
//              and forgets it (the word names the ring): the other check
//   quit       leaves the group (BYE)
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "eal/eal.h"
#include "memory/memory.h"
#include "mempool/mempool.h"
#include "ring/ring.h"
#include "tests/helper_loop.h"

namespace {

using namespace keel;  // NOLINT: a tool's main file

constexpr uint64_t kInRing = 1ull << 63;
constexpr unsigned kObjects = 16383;
constexpr unsigned kRingSize = 256;
constexpr unsigned kBurst = 8;
// A secondary takes no more while it holds this many (so it holds fewer than
// kMaxHeld + 2 * kBurst: what its death can lose of its own).
constexpr unsigned kMaxHeld = 4 * kBurst;
// Ring ids in ownership words: to.S = S, from.S = 64 + S, link.S = 128 + S.
constexpr uint64_t kTo = 0, kFrom = 64, kLink = 128;
constexpr unsigned kMaxSecondaries = 63;

struct Message {
  std::atomic<uint64_t> owner;
  uint64_t hops;
};

struct SharedState {
  std::atomic<uint64_t> doubles;  // claims that found a word not as it had to be
};

Message* AsMessage(void* obj) { return static_cast<Message*>(obj); }

struct Process {
  bool primary = false;
  unsigned slot = 0;  // 0 for the primary
  unsigned secondaries = 0;
  uint64_t token = 0;
  mempool::Mempool* pool = nullptr;
  SharedState* state = nullptr;
  std::vector<ring::Ring*> to, from, link;  // by slot (index 0 unused)
  std::vector<void*> held;                  // objects this process holds between steps
  std::map<std::string, uint64_t> counts;   // objects moved, by ring role
  bool paused = false;
};

// Claims the objects whose word must be `expected` for `token`.
void Claim(Process& p, void* const* objs, unsigned n, uint64_t expected) {
  for (unsigned i = 0; i < n; ++i) {
    uint64_t seen = expected;
    // Relaxed: the ring or pool hand-over orders the object's contents; the word needs
    // only to be read and replaced atomically.
    if (!AsMessage(objs[i])->owner.compare_exchange_strong(seen, p.token,
                                                           std::memory_order_relaxed)) {
      // Relaxed: a counter.
      p.state->doubles.fetch_add(1, std::memory_order_relaxed);
      std::printf("DOUBLE %p: word %#llx, expected %#llx (claimed by token %llu)\n", objs[i],
                  static_cast<unsigned long long>(seen), static_cast<unsigned long long>(expected),
                  static_cast<unsigned long long>(p.token));
      AsMessage(objs[i])->owner.store(p.token, std::memory_order_relaxed);
    }
  }
}

void Mark(void* const* objs, unsigned n, uint64_t word) {
  // Relaxed: see Claim.
  for (unsigned i = 0; i < n; ++i) AsMessage(objs[i])->owner.store(word, std::memory_order_relaxed);
}

// Moves up to n held objects (from the back of `held`) into `r`: each is marked as in
// the ring first, so a kill before the enqueue shows as the ring's, not as lost
// silently; those the ring refuses are held again.
unsigned Send(Process& p, ring::Ring* r, uint64_t ring_id, unsigned n) {
  n = std::min<unsigned>(n, p.held.size());
  if (n == 0) return 0;
  void** objs = p.held.data() + p.held.size() - n;
  Mark(objs, n, kInRing | ring_id);
  const unsigned sent = r->SpEnqueueBurst(objs, n, nullptr);
  // The refused ones are the last n - sent: claim them back; the sent ones leave.
  Mark(objs + sent, n - sent, p.token);
  std::vector<void*> refused(objs + sent, objs + n);
  p.held.resize(p.held.size() - n);
  p.held.insert(p.held.end(), refused.begin(), refused.end());
  return sent;
}

unsigned Receive(Process& p, ring::Ring* r, uint64_t ring_id) {
  void* objs[kBurst];
  const unsigned n = r->ScDequeueBurst(objs, kBurst, nullptr);
  Claim(p, objs, n, kInRing | ring_id);
  p.held.insert(p.held.end(), objs, objs + n);
  return n;
}

void PrimaryStep(Process& p) {
  for (unsigned s = 1; s <= p.secondaries; ++s) {
    void* objs[kBurst];
    if (p.pool->GetBulk(objs, kBurst)) {
      Claim(p, objs, kBurst, 0);
      for (void* obj : objs) AsMessage(obj)->hops = 0;
      p.held.insert(p.held.end(), objs, objs + kBurst);
      p.counts["to"] += Send(p, p.to[s], kTo + s, kBurst);
    }
    p.counts["from"] += Receive(p, p.from[s], kFrom + s);
    // Everything held goes back: released first (0), then put, so that a kill between
    // the two leaves a free word on an object the pool lacks (the dead primary's).
    Mark(p.held.data(), p.held.size(), 0);
    p.pool->PutBulk(p.held.data(), p.held.size());
    p.held.clear();
  }
}

void SecondaryStep(Process& p) {
  const unsigned prev = p.slot == 1 ? p.secondaries : p.slot - 1;
  if (p.held.size() < kMaxHeld) {
    p.counts["to"] += Receive(p, p.to[p.slot], kTo + p.slot);
    p.counts["link_in"] += Receive(p, p.link[prev], kLink + prev);
  }
  // Objects alternate: even hops go on to the next secondary, odd ones back to the
  // primary (to the next secondary too while the primary's ring is full: it may be
  // dead).
  std::vector<void*> to_link, to_primary;
  for (void* obj : p.held) {
    (AsMessage(obj)->hops++ % 2 == 0 ? to_link : to_primary).push_back(obj);
  }
  p.held = std::move(to_primary);
  const unsigned back = Send(p, p.from[p.slot], kFrom + p.slot, kBurst);
  p.counts["from"] += back;
  p.held.insert(p.held.end(), to_link.begin(), to_link.end());
  p.counts["link_out"] += Send(p, p.link[p.slot], kLink + p.slot, 2 * kBurst);
}

absl::Status CreateObjects(Process& p) {
  absl::StatusOr<memory::Memzone> zone = memory::ReserveMemzone("soak.state", sizeof(SharedState));
  if (!zone.ok()) return zone.status();
  p.state = new (zone->addr) SharedState{};
  absl::StatusOr<mempool::Mempool*> pool =
      mempool::Create("soak.pool", kObjects, sizeof(Message), 32, 0, 0, -1, nullptr, "ring_sp_sc");
  if (!pool.ok()) return pool.status();
  p.pool = *pool;
  p.pool->ObjectIterate([](void* obj, unsigned) { new (obj) Message{{0}, 0}; });
  for (unsigned s = 1; s <= p.secondaries; ++s) {
    for (const char* kind : {"to", "from", "link"}) {
      absl::StatusOr<ring::Ring*> r =
          ring::Create(absl::StrCat("soak.", kind, ".", s), kRingSize, -1,
                       ring::kSingleProducer | ring::kSingleConsumer);
      if (!r.ok()) return r.status();
    }
  }
  return absl::OkStatus();
}

absl::Status FindObjects(Process& p) {
  absl::StatusOr<memory::Memzone> zone = memory::LookupMemzone("soak.state");
  if (!zone.ok()) return zone.status();
  p.state = static_cast<SharedState*>(zone->addr);
  absl::StatusOr<mempool::Mempool*> pool = mempool::Lookup("soak.pool");
  if (!pool.ok()) return pool.status();
  p.pool = *pool;
  p.to.assign(p.secondaries + 1, nullptr);
  p.from.assign(p.secondaries + 1, nullptr);
  p.link.assign(p.secondaries + 1, nullptr);
  for (unsigned s = 1; s <= p.secondaries; ++s) {
    for (auto [kind, rings] : {std::pair{"to", &p.to}, {"from", &p.from}, {"link", &p.link}}) {
      absl::StatusOr<ring::Ring*> r = ring::Lookup(absl::StrCat("soak.", kind, ".", s));
      if (!r.ok()) return r.status();
      (*rings)[s] = *r;
    }
  }
  return absl::OkStatus();
}

std::string Audit(Process& p) {
  uint64_t free_words = 0;
  std::map<uint64_t, uint64_t> ring_words, held;
  p.pool->ObjectIterate([&](void* obj, unsigned) {
    // Relaxed: read while every process is paused.
    const uint64_t word = AsMessage(obj)->owner.load(std::memory_order_relaxed);
    if (word == 0) {
      ++free_words;
    } else if (word & kInRing) {
      ++ring_words[word & ~kInRing];
    } else {
      ++held[word];
    }
  });
  std::vector<std::string> rings;
  for (unsigned s = 1; s <= p.secondaries; ++s) {
    for (auto [id, r] :
         {std::pair{kTo + s, p.to[s]}, {kFrom + s, p.from[s]}, {kLink + s, p.link[s]}}) {
      rings.push_back(absl::StrCat(id, ":", ring_words[id], ":", r->Count()));
      ring_words.erase(id);
    }
  }
  for (const auto& [id, words] : ring_words) rings.push_back(absl::StrCat(id, ":", words, ":-"));
  std::vector<std::string> holders;
  for (const auto& [token, n] : held) holders.push_back(absl::StrCat(token, ":", n));
  const absl::Status pool_audit = p.pool->Audit();
  if (!pool_audit.ok()) return "AUDIT-FAILED " + pool_audit.ToString();
  // Relaxed: a counter.
  return absl::StrCat("AUDIT objects=", p.pool->Size(), " free=", free_words,
                      " available=", p.pool->AvailableCount(),
                      " doubles=", p.state->doubles.load(std::memory_order_relaxed),
                      " rings=", absl::StrJoin(rings, ","), " held=", absl::StrJoin(holders, ","));
}

std::string Lcores() {
  absl::StatusOr<eal::GroupInfo> group = eal::DescribeGroup();
  if (!group.ok()) return "LCORES-FAILED " + group.status().ToString();
  std::vector<std::string> lcores, processes;
  for (const eal::LcoreOwner& owner : group->lcores) {
    lcores.push_back(absl::StrCat(owner.pid, ":", owner.lcore));
  }
  for (const eal::ProcessInfo& process : group->processes)
    processes.push_back(absl::StrCat(process.pid));
  return absl::StrCat("LCORES ", absl::StrJoin(lcores, ","), " PROCESSES ",
                      absl::StrJoin(processes, ","));
}

std::string Answer(Process& p, const std::string& command) {
  if (command == "stats") {
    std::string line = absl::StrCat("STATS token=", p.token, " held=", p.held.size(),
                                    " primary_alive=", eal::PrimaryAlive() ? 1 : 0);
    for (const char* key : {"to", "from", "link_in", "link_out"}) {
      absl::StrAppend(&line, " ", key, "=", p.counts[key]);
    }
    // Objects taken out of rings (each transfer counted once, by its consumer).
    const uint64_t moved = p.primary ? p.counts["from"] : p.counts["to"] + p.counts["link_in"];
    return absl::StrCat(line, " moved=", moved);
  }
  if (command == "pause") return p.paused = true, "PAUSED";
  if (command == "resume") return p.paused = false, "RESUMED";
  if (command == "audit") return Audit(p);
  if (command == "hide" && !p.primary) {
    // The soak's self-check: an object held and forgotten, its word naming this process.
    if (p.held.empty()) Receive(p, p.to[p.slot], kTo + p.slot);
    if (p.held.empty()) return "INJECTED none";
    p.held.pop_back();
    return "INJECTED hidden 1";
  }
  if (command == "drop" && !p.primary) {
    // The other self-check: an object taken out of a ring and forgotten, its word
    // still naming the ring.
    void* obj = nullptr;
    if (p.to[p.slot]->ScDequeueBurst(&obj, 1, nullptr) != 1) return "INJECTED none";
    return "INJECTED dropped 1";
  }
  if (command == "lcores") return Lcores();
  return "UNKNOWN " + command;
}

// The next line from stdin, waiting at most `timeout_ms` for it; "quit" at the end of
// input. (read(2), not std::cin: a line buffered by a stream would not wake poll.)
bool NextLine(int timeout_ms, std::string* line) {
  static std::string buffer;
  static bool closed = false;
  while (true) {
    if (const size_t end = buffer.find('\n'); end != std::string::npos) {
      *line = buffer.substr(0, end);
      buffer.erase(0, end + 1);
      return true;
    }
    if (closed) return *line = "quit", true;
    pollfd fd = {STDIN_FILENO, POLLIN, 0};
    if (poll(&fd, 1, timeout_ms) <= 0) return false;
    char chunk[4096];
    const ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
    if (n > 0) {
      buffer.append(chunk, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      closed = true;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::vector<std::string>> args = testing::JoinGroup(argc, argv);
  if (!args) return 2;
  Process p;
  uint64_t slot = 0, secondaries = 0;
  if (args->size() != 4 || (args->at(0) != "primary" && args->at(0) != "secondary") ||
      !absl::SimpleAtoi(args->at(1), &slot) || !absl::SimpleAtoi(args->at(2), &secondaries) ||
      !absl::SimpleAtoi(args->at(3), &p.token) || secondaries < 1 ||
      secondaries > kMaxSecondaries || slot > secondaries || p.token == 0 ||
      (p.token & kInRing) != 0 || (args->at(0) == "primary") != (slot == 0)) {
    std::printf(
        "USAGE: soak_worker EAL-OPTIONS -- primary|secondary SLOT SECONDARIES TOKEN "
        "(SECONDARIES 1..%u; SLOT 0 for the primary, 1..SECONDARIES for a secondary; "
        "TOKEN > 0)\n",
        kMaxSecondaries);
    return 2;
  }
  p.primary = args->at(0) == "primary";
  p.slot = static_cast<unsigned>(slot);
  p.secondaries = static_cast<unsigned>(secondaries);
  // An adopting primary finds the objects of the dead one.
  absl::Status ready = p.primary && !eal::Adopted() ? CreateObjects(p) : absl::OkStatus();
  if (ready.ok()) ready = FindObjects(p);
  if (!ready.ok()) {
    std::printf("SETUP-FAILED %s\n", ready.ToString().c_str());
    return 2;
  }
  std::printf("READY pid=%d\n", getpid());
  std::string line;
  while (true) {
    if (!p.paused) (p.primary ? PrimaryStep : SecondaryStep)(p);
    if (!NextLine(p.paused ? 10 : 0, &line)) continue;
    if (line == "quit") break;
    std::printf("%s\n", Answer(p, line).c_str());
  }
  if (absl::Status s = eal::Cleanup(); !s.ok()) {
    std::printf("CLEANUP-FAILED %s\n", s.ToString().c_str());
    return 3;
  }
  std::printf("BYE\n");
  return 0;
}
