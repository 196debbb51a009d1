// A process for the ring tests: joins a group (EAL + memory + ring), prints READY,
// then runs commands read from stdin, one per line, printing one result line each
// (errors: "ERROR <status>"):
//
//   create NAME COUNT FLAGS [ELEM_SIZE]  CREATED NAME
//   lookup NAME                          FOUND NAME capacity=C elem_size=E flags=0xF
//   lookup-typed NAME SIZE               FOUND NAME (TypedRing<T> with sizeof(T) = SIZE:
//                                        8, 12 or 16)
//   free NAME                            FREED NAME (looks the ring up first)
//   free-known NAME                      FREED NAME (frees the pointer this process last
//                                        created or looked up under NAME: maybe stale)
//   register NAME KIND VERSION           REGISTERED NAME (a 64-byte object of KIND)
//   memzone NAME                         RESERVED NAME (a 64-byte memzone)
//   put NAME V...                        PUT NAME n=N (8-byte values, one bulk)
//   get NAME N                           GOT NAME V... (a burst of up to N)
//   count NAME                           COUNT NAME n=N
//   kill-at POINT                        ARMED POINT: the next hit of kill point POINT
//                                        SIGKILLs this process (NO-KILL-POINTS with NDEBUG)
//   tally NAME PRODUCERS PER_PRODUCER    TALLY NAME (a memzone that counts deliveries)
//   tally-check NAME                     TALLY NAME missing=M duplicated=D first=...
//   produce NAME ID FIRST COUNT MODE     PRODUCED NAME id=ID next=FIRST+COUNT
//   consume NAME TALLY MODE [CHECKPOINT] [CHECKPOINT RING once CHECKPOINT taken, then]
//                                        CONSUMED NAME n=N corrupt=C out_of_order=O
//   quit
//
// FLAGS: "mpmc" (none), or a '+'-joined list of sp, sc, prts, crts, phts, chts, exact.
// MODE: bulk or burst (batches of 1 to 32 elements, random).
//
// produce enqueues elements FIRST .. FIRST+COUNT-1 of producer ID, waiting while the
// ring is full. consume dequeues until the tally has every element of every producer
// (counted over all consumers), and checks each element's fingerprint and that each
// producer's sequence numbers arrive in increasing order. Elements are 8 bytes:
//   (ID + 1) << 48 | (Mix(seq) & 0xffff) << 32 | seq
//
//   ring_helper [EAL options] --
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/kill_point.h"
#include "eal/eal.h"
#include "memory/memory.h"
#include "ring/ring.h"
#include "ring/ring_testing.h"
#include "tests/helper_loop.h"

namespace {

namespace memory = keel::memory;
namespace ring = keel::ring;
using keel::ring::testing::Backoff;
using keel::ring::testing::Random;

std::string Err(const absl::Status& s) { return "ERROR " + s.ToString(); }

std::map<std::string, ring::Ring*>& Known() {
  static auto* known = new std::map<std::string, ring::Ring*>;
  return *known;
}

absl::StatusOr<uint32_t> ParseFlags(const std::string& text) {
  if (text == "mpmc") return 0u;
  const std::map<std::string, uint32_t> names = {
      {"sp", ring::kSingleProducer}, {"sc", ring::kSingleConsumer}, {"prts", ring::kProducerRts},
      {"crts", ring::kConsumerRts},  {"phts", ring::kProducerHts},  {"chts", ring::kConsumerHts},
      {"exact", ring::kExactSize}};
  uint32_t flags = 0;
  for (absl::string_view part : absl::StrSplit(text, '+')) {
    auto it = names.find(std::string(part));
    if (it == names.end()) return absl::InvalidArgumentError(absl::StrCat("flag ", part));
    flags |= it->second;
  }
  return flags;
}

absl::StatusOr<ring::Ring*> LookupRing(const std::string& name) {
  absl::StatusOr<ring::Ring*> r = ring::Lookup(name);
  if (r.ok()) Known()[name] = *r;
  return r;
}

// --- Elements ------------------------------------------------------------------------
uint32_t Mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

void* Encode(uint32_t producer, uint32_t seq) {
  const uint64_t v = uint64_t{producer + 1} << 48 | uint64_t{Mix(seq) & 0xffff} << 32 | seq;
  return reinterpret_cast<void*>(static_cast<uintptr_t>(v));
}

bool Decode(void* element, uint32_t producers, uint32_t* producer, uint32_t* seq) {
  const uint64_t v = reinterpret_cast<uintptr_t>(element);
  const uint32_t tag = static_cast<uint32_t>(v >> 48);
  *seq = static_cast<uint32_t>(v);
  *producer = tag - 1;
  return tag >= 1 && tag <= producers && ((v >> 32) & 0xffff) == (Mix(*seq) & 0xffff);
}

// --- Tally: delivery counts in shared memory, for consumers in several processes ----
// One memzone: this header, then one counter per element of every producer.
struct Tally {
  uint32_t producers;
  uint32_t per_producer;
  // Elements taken out by all consumers. Relaxed: it only tells consumers when to
  // stop; the elements themselves are ordered by the ring.
  std::atomic<uint64_t> consumed;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// Times each element was delivered. Relaxed increments: each counter is only ever
// read by tally-check, after every consumer printed CONSUMED (the test reads that line
// before it asks, and the pipes between the processes order the two).
std::atomic<uint32_t>* Seen(Tally* t) { return reinterpret_cast<std::atomic<uint32_t>*>(t + 1); }

absl::StatusOr<Tally*> LookupTally(const std::string& name) {
  absl::StatusOr<memory::Memzone> z = memory::LookupMemzone(name);
  if (!z.ok()) return z.status();
  return static_cast<Tally*>(z->addr);
}

std::string MakeTally(const std::string& name, uint32_t producers, uint32_t per_producer) {
  const size_t counters = size_t{producers} * per_producer;
  absl::StatusOr<memory::Memzone> z =
      memory::ReserveMemzone(name, sizeof(Tally) + counters * sizeof(std::atomic<uint32_t>));
  if (!z.ok()) return Err(z.status());
  auto* t = static_cast<Tally*>(z->addr);
  t->producers = producers;
  t->per_producer = per_producer;
  // Relaxed: no consumer uses the tally before this process answers TALLY.
  t->consumed.store(0, std::memory_order_relaxed);
  for (size_t i = 0; i < counters; ++i) Seen(t)[i].store(0, std::memory_order_relaxed);
  return "TALLY " + name;
}

std::string CheckTally(const std::string& name) {
  absl::StatusOr<Tally*> t = LookupTally(name);
  if (!t.ok()) return Err(t.status());
  uint64_t missing = 0;
  uint64_t duplicated = 0;
  std::string first = "none";
  for (uint32_t p = 0; p < (*t)->producers; ++p) {
    for (uint32_t seq = 0; seq < (*t)->per_producer; ++seq) {
      // Relaxed: see Seen().
      const uint32_t times =
          Seen(*t)[size_t{p} * (*t)->per_producer + seq].load(std::memory_order_relaxed);
      if (times == 1) continue;
      ++(times == 0 ? missing : duplicated);
      if (first == "none") first = absl::StrCat("producer", p, "/seq", seq, "x", times);
    }
  }
  return absl::StrCat("TALLY ", name, " missing=", missing, " duplicated=", duplicated,
                      " first=", first);
}

// --- Streams ---------------------------------------------------------------------

std::string Produce(const std::string& name, uint32_t id, uint32_t first, uint32_t count,
                    bool bulk) {
  absl::StatusOr<ring::Ring*> r = LookupRing(name);
  if (!r.ok()) return Err(r.status());
  Random random(getpid());
  Backoff backoff;
  void* batch[32];
  const uint32_t end = first + count;
  for (uint32_t seq = first; seq < end;) {
    const unsigned n = std::min<uint32_t>(random.Between(1, 32), end - seq);
    for (unsigned i = 0; i < n; ++i) batch[i] = Encode(id, seq + i);
    const unsigned put = bulk ? (*r)->EnqueueBulk(batch, n) : (*r)->EnqueueBurst(batch, n);
    if (put == 0) {
      backoff.Failed();
      continue;
    }
    backoff.Moved();
    seq += put;
  }
  return absl::StrCat("PRODUCED ", name, " id=", id, " next=", end);
}

std::string Consume(const std::string& name, const std::string& tally_name, bool bulk,
                    uint64_t checkpoint) {
  absl::StatusOr<ring::Ring*> r = LookupRing(name);
  if (!r.ok()) return Err(r.status());
  absl::StatusOr<Tally*> tally = LookupTally(tally_name);
  if (!tally.ok()) return Err(tally.status());
  Tally* t = *tally;
  const uint64_t total = uint64_t{t->producers} * t->per_producer;
  std::vector<int64_t> last(t->producers, -1);
  uint64_t mine = 0;
  uint64_t corrupt = 0;
  uint64_t out_of_order = 0;
  std::string first = "none";
  Random random(getpid());
  Backoff backoff;
  void* batch[32];
  // Relaxed: see Tally::consumed.
  while (t->consumed.load(std::memory_order_relaxed) < total) {
    const unsigned n = random.Between(1, 32);
    const unsigned got = bulk ? (*r)->DequeueBulk(batch, n) : (*r)->DequeueBurst(batch, n);
    if (got == 0) {
      backoff.Failed();
      continue;
    }
    backoff.Moved();
    for (unsigned i = 0; i < got; ++i) {
      uint32_t producer;
      uint32_t seq;
      if (!Decode(batch[i], t->producers, &producer, &seq) || seq >= t->per_producer) {
        if (++corrupt == 1) first = absl::StrCat("corrupt:", absl::Hex(uintptr_t(batch[i])));
        continue;
      }
      if (seq <= last[producer]) {
        if (++out_of_order == 1 && first == "none") {
          first = absl::StrCat("producer", producer, "/seq", seq, "after", last[producer]);
        }
      }
      last[producer] = seq;
      // Relaxed: see Seen().
      Seen(t)[size_t{producer} * t->per_producer + seq].fetch_add(1, std::memory_order_relaxed);
    }
    const uint64_t before = mine;
    mine += got;
    // Relaxed: see Tally::consumed.
    t->consumed.fetch_add(got, std::memory_order_relaxed);
    if (checkpoint != 0 && before < checkpoint && mine >= checkpoint) {
      std::printf("CHECKPOINT %s\n", name.c_str());
    }
  }
  return absl::StrCat("CONSUMED ", name, " n=", mine, " corrupt=", corrupt,
                      " out_of_order=", out_of_order, " first=", first);
}

// --- Commands ------------------------------------------------------------------------
struct Elem12 {
  uint32_t w[3];
};
struct Elem16 {
  uint64_t w[2];
};

template <typename T>
std::string LookupTyped(const std::string& name) {
  absl::StatusOr<ring::TypedRing<T>> r = ring::TypedRing<T>::Lookup(name);
  return r.ok() ? "FOUND " + name : Err(r.status());
}

std::string Run(const std::vector<std::string>& cmd) {
  const std::string& op = cmd[0];
  auto arg = [&](size_t i) { return i < cmd.size() ? cmd[i] : std::string(); };
  auto num = [&](size_t i) {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(arg(i), &v)) v = 0;
    return v;
  };
  const std::string& name = arg(1);
  if (op == "create") {
    absl::StatusOr<uint32_t> flags = ParseFlags(arg(3));
    if (!flags.ok()) return Err(flags.status());
    absl::StatusOr<ring::Ring*> r =
        ring::Create(name, num(2), memory::kSocketAny, *flags, cmd.size() > 4 ? num(4) : 8);
    if (!r.ok()) return Err(r.status());
    Known()[name] = *r;
    return "CREATED " + name;
  }
  if (op == "lookup") {
    absl::StatusOr<ring::Ring*> r = LookupRing(name);
    if (!r.ok()) return Err(r.status());
    return absl::StrCat("FOUND ", name, " capacity=", (*r)->Capacity(),
                        " elem_size=", (*r)->ElementSize(), " flags=0x", absl::Hex((*r)->flags()));
  }
  if (op == "lookup-typed") {
    switch (num(2)) {
      case 8:
        return LookupTyped<uint64_t>(name);
      case 12:
        return LookupTyped<Elem12>(name);
      case 16:
        return LookupTyped<Elem16>(name);
    }
    return "ERROR size " + arg(2);
  }
  if (op == "free" || op == "free-known") {
    ring::Ring* r = nullptr;
    if (op == "free") {
      absl::StatusOr<ring::Ring*> found = LookupRing(name);
      if (!found.ok()) return Err(found.status());
      r = *found;
    } else {
      auto it = Known().find(name);
      if (it == Known().end()) return "ERROR this process never saw " + name;
      r = it->second;
    }
    absl::Status s = ring::Free(r);
    return s.ok() ? "FREED " + name : Err(s);
  }
  if (op == "register") {
    absl::StatusOr<void*> mem = memory::Allocate(64);
    if (!mem.ok()) return Err(mem.status());
    absl::Status s = memory::RegisterObject(arg(2), name, num(3), *mem);
    return s.ok() ? "REGISTERED " + name : Err(s);
  }
  if (op == "memzone") {
    absl::StatusOr<memory::Memzone> z = memory::ReserveMemzone(name, 64);
    return z.ok() ? "RESERVED " + name : Err(z.status());
  }
  if (op == "kill-at") {  // arms a kill point (debug builds only)
#ifdef NDEBUG
    return "NO-KILL-POINTS";
#else
    keel::SetKillPointForTest(name);
    return "ARMED " + name;
#endif
  }
  if (op == "put" || op == "get" || op == "count") {
    absl::StatusOr<ring::Ring*> r = LookupRing(name);
    if (!r.ok()) return Err(r.status());
    if (op == "count") return absl::StrCat("COUNT ", name, " n=", (*r)->Count());
    if (op == "put") {
      std::vector<void*> values;
      for (size_t i = 2; i < cmd.size(); ++i) {
        values.push_back(reinterpret_cast<void*>(static_cast<uintptr_t>(num(i))));
      }
      return absl::StrCat("PUT ", name, " n=", (*r)->EnqueueBulk(values.data(), values.size()));
    }
    std::vector<void*> values(num(2));
    const unsigned got = (*r)->DequeueBurst(values.data(), values.size());
    std::string out = "GOT " + name;
    for (unsigned i = 0; i < got; ++i) {
      absl::StrAppend(&out, " ", reinterpret_cast<uintptr_t>(values[i]));
    }
    return out;
  }
  if (op == "tally") return MakeTally(name, num(2), num(3));
  if (op == "tally-check") return CheckTally(name);
  if (op == "produce") return Produce(name, num(2), num(3), num(4), arg(5) == "bulk");
  if (op == "consume") return Consume(name, arg(2), arg(3) == "bulk", num(4));
  return "UNKNOWN " + op;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::vector<std::string>> app_args = keel::testing::JoinGroup(argc, argv);
  if (!app_args) return 2;
  std::printf("READY pid=%d type=%s\n", getpid(),
              std::string(keel::eal::ProcessTypeName(keel::eal::GetProcessType())).c_str());
  return keel::testing::ServeCommands(Run);
}
