// Concurrency stress for the ring on caller-provided memory (Init, no EAL).
//
// Producer threads and consumer threads move sequence-numbered elements through one
// ring, for every producer mode (MP, SP, RTS, HTS) with every consumer mode (MC, SC,
// RTS, HTS), bulk and burst, through the void* API (8-byte elements), the element API
// (16 and 20 bytes) and TypedRing (12 bytes). Each element carries its producer, its
// sequence number and a fingerprint of both. After each run the test checks:
//   - every element was delivered exactly once, and intact (no torn or stale slot);
//   - every consumer saw each producer's sequence numbers in increasing order. Every
//     mode promises this: a producer's enqueues take increasing ring positions, and a
//     consumer's dequeues claim increasing positions (with one consumer, that consumer
//     sees each producer's elements exactly in order 0, 1, 2, ...);
//   - every returned count is possible: bulk moves all or nothing, burst at most n, and
//     moved + the reported free space / entries left never exceeds the capacity.
// The runs start just below 2^32 so the free-running positions wrap mid-run.
//
// Threads: an RTS or HTS side runs 4 unpinned threads, so RTS/HTS cases run up to 8
// threads on a 2-core machine: threads get preempted in the middle of an operation,
// which those modes are made to tolerate. An MP or MC side runs one thread per CPU
// (at most 2), each pinned to its own CPU: those modes carry DPDK's "non-preemptive
// constraint": a thread preempted between claiming slots and publishing them makes
// the later threads of its side spin, still holding their own claims, until it runs
// again. Unpinned, the preempted thread can wait on a CPU behind a spinner of its own
// side, each operation then waits for a scheduler slice, and the run degrades into a
// convoy (seen: 17 s and 40 s instead of 50 ms for a case). A thread that cannot move
// anything yields, and after a few tries sleeps (Backoff), so that a preempted thread
// gets its CPU back as soon as the other side runs dry.
//
// Peek and zero copy: HTS rings (and SP/SC sides against HTS) where several threads
// hold the side between Start and Finish, write or read the slots directly, and
// finish fewer elements than they started now and then. Besides the checks above,
// these check that HTS lets one operation at a time run per side, and that
// consumption across all consumer threads follows each producer's order exactly.
//
// Run time: each case moves a fixed number of elements (kElementsPerCase), not a
// wall-clock budget; the whole file takes about 7 s on 2 cores (fastbuild), a case at
// most a few hundred ms. A case that stops moving
// elements for kStallTimeout fails (or aborts, if its threads are stuck inside the
// ring) instead of hanging.
//
// Soak: KEEL_RING_SOAK_SECONDS=N repeats every case, with fresh rings, seeds and
// start positions, for N seconds per case, e.g.
//   bazel test //ring:ring_stress_test --test_env=KEEL_RING_SOAK_SECONDS=60
//       --test_timeout=36000 --test_arg=--gtest_filter='*Hts*'
// (one command line).
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ring/internal/layout.h"
#include "ring/ring.h"
#include "ring/ring_testing.h"

namespace keel::ring {
namespace {

using ring_internal::Sync;
using ring_internal::Word;
using testing::Backoff;
using testing::LocalRing;
using testing::Random;

// Under ThreadSanitizer, which makes every access many times slower, a quarter as many:
// every case and every interleaving pattern still runs (CI's budget: DEVELOPERS.md).
#if defined(__SANITIZE_THREAD__)
constexpr unsigned kElementsPerCase = 50000;
#else
constexpr unsigned kElementsPerCase = 200000;
#endif
constexpr unsigned kMaxBatch = 24;  // at most half the smallest capacity below
constexpr absl::Duration kStallTimeout = absl::Seconds(5);

absl::Duration SoakDuration() {
  const char* value = std::getenv("KEEL_RING_SOAK_SECONDS");
  int seconds = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &seconds) || seconds <= 0) {
    return absl::ZeroDuration();
  }
  return absl::Seconds(seconds);
}

// White-box: moves an empty ring that no thread uses yet to position `pos` on both
// sides (and the RTS operation counts near their wrap too), so a run crosses the 2^32
// wrap of the free-running positions. Each side's words as layout.h describes them.
void StartAtPosition(Ring* ring, uint32_t pos) {
  auto* r = reinterpret_cast<ring_internal::RingLayout*>(ring);
  for (ring_internal::HeadTail* side : {&r->prod, &r->cons}) {
    uint64_t head = 0;
    uint64_t tail = 0;
    switch (static_cast<Sync>(side->sync)) {
      case Sync::kMulti:
      case Sync::kSingle:
        // The hint: the other side's tail (pos) as last read; pos itself is a valid
        // bound for both sides (no slot free or filled).
        head = Word(pos, pos);
        tail = Word(pos, 0);
        break;
      case Sync::kRts:
        head = tail = Word(pos, 0xfffffffdu);
        break;
      case Sync::kHts:
        tail = Word(pos, pos);
        break;
    }
    // Relaxed: no other thread uses the ring yet; starting the threads orders these.
    side->head.store(head, std::memory_order_relaxed);
    side->tail.store(tail, std::memory_order_relaxed);
  }
}

// --- Elements ------------------------------------------------------------------------
// Words of an element (any size from 8 bytes, a multiple of 4):
//   0:      the sequence number (per producer, from 0)
//   1:      (producer + 1) << 24 | the low 24 bits of Mix(sequence)
//   2, ...: Fingerprint(producer, sequence, word)
// An 8-byte void* element is word 1 << 32 | word 0.
uint32_t Mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

uint32_t Fingerprint(uint32_t producer, uint32_t seq, unsigned word) {
  return Mix(seq ^ (producer << 20) ^ (word << 27));
}

void Encode(uint32_t producer, uint32_t seq, uint32_t* words, unsigned n_words) {
  words[0] = seq;
  words[1] = (producer + 1) << 24 | (Mix(seq) & 0xffffff);
  for (unsigned k = 2; k < n_words; ++k) words[k] = Fingerprint(producer, seq, k);
}

struct Item {
  uint32_t producer;
  uint32_t seq;
};

// False for anything Encode did not write for one of `producers` producers.
bool Decode(const uint32_t* words, unsigned n_words, unsigned producers, Item* item) {
  const uint32_t seq = words[0];
  const uint32_t tag = words[1] >> 24;
  if ((words[1] & 0xffffff) != (Mix(seq) & 0xffffff) || tag == 0 || tag > producers) {
    return false;
  }
  for (unsigned k = 2; k < n_words; ++k) {
    if (words[k] != Fingerprint(tag - 1, seq, k)) return false;
  }
  *item = {tag - 1, seq};
  return true;
}

std::string Describe(const uint32_t* words, unsigned n_words) {
  std::string s = "[";
  for (unsigned k = 0; k < n_words; ++k) absl::StrAppend(&s, k ? " " : "", absl::Hex(words[k]));
  return s + "]";
}

// --- One thread's access to the ring through one API -----------------------------
enum class Api { kPointer, kElem, kTyped };

struct Elem12 {
  uint32_t w[3];
};

class Endpoint {
 public:
  // explicit_multi: the pointer API through MpEnqueue* / McDequeue*, as DPDK code
  // calling rte_ring_mp_enqueue_* / rte_ring_mc_dequeue_* would.
  Endpoint(Ring* ring, Api api, bool explicit_multi = false)
      : ring_(ring),
        api_(api),
        explicit_multi_(explicit_multi),
        n_words_(ring->ElementSize() / 4),
        words_(kMaxBatch * n_words_),
        pointers_(kMaxBatch),
        typed_(kMaxBatch) {}

  // Enqueues elements seq, seq+1, ... of `producer`: n of them (bulk) or up to n.
  unsigned Put(uint32_t producer, uint32_t seq, unsigned n, bool bulk, unsigned* free_space) {
    for (unsigned i = 0; i < n; ++i) Encode(producer, seq + i, Words(i), n_words_);
    switch (api_) {
      case Api::kPointer:
        for (unsigned i = 0; i < n; ++i) {
          pointers_[i] = reinterpret_cast<void*>(
              static_cast<uintptr_t>(uint64_t{Words(i)[1]} << 32 | Words(i)[0]));
        }
        if (explicit_multi_) {
          return bulk ? ring_->MpEnqueueBulk(pointers_.data(), n, free_space)
                      : ring_->MpEnqueueBurst(pointers_.data(), n, free_space);
        }
        return bulk ? ring_->EnqueueBulk(pointers_.data(), n, free_space)
                    : ring_->EnqueueBurst(pointers_.data(), n, free_space);
      case Api::kElem:
        return bulk ? ring_->EnqueueBulkElem(words_.data(), n, free_space)
                    : ring_->EnqueueBurstElem(words_.data(), n, free_space);
      case Api::kTyped: {
        std::memcpy(typed_.data(), words_.data(), n * sizeof(Elem12));
        TypedRing<Elem12> typed(ring_);
        return bulk ? typed.EnqueueBulk(typed_.data(), n, free_space)
                    : typed.EnqueueBurst(typed_.data(), n, free_space);
      }
    }
    return 0;
  }

  // Dequeues n elements (bulk) or up to n; Words(i) then holds the i-th.
  unsigned Get(unsigned n, bool bulk, unsigned* available) {
    std::fill(words_.begin(), words_.end(), 0);  // nothing stale can pass for an element
    unsigned got = 0;
    switch (api_) {
      case Api::kPointer:
        if (explicit_multi_) {
          got = bulk ? ring_->McDequeueBulk(pointers_.data(), n, available)
                     : ring_->McDequeueBurst(pointers_.data(), n, available);
        } else {
          got = bulk ? ring_->DequeueBulk(pointers_.data(), n, available)
                     : ring_->DequeueBurst(pointers_.data(), n, available);
        }
        for (unsigned i = 0; i < got; ++i) {
          const uint64_t v = reinterpret_cast<uintptr_t>(pointers_[i]);
          Words(i)[0] = static_cast<uint32_t>(v);
          Words(i)[1] = static_cast<uint32_t>(v >> 32);
        }
        break;
      case Api::kElem:
        got = bulk ? ring_->DequeueBulkElem(words_.data(), n, available)
                   : ring_->DequeueBurstElem(words_.data(), n, available);
        break;
      case Api::kTyped: {
        TypedRing<Elem12> typed(ring_);
        got = bulk ? typed.DequeueBulk(typed_.data(), n, available)
                   : typed.DequeueBurst(typed_.data(), n, available);
        std::memcpy(words_.data(), typed_.data(), got * sizeof(Elem12));
        break;
      }
    }
    return got;
  }

  uint32_t* Words(unsigned i) { return &words_[i * n_words_]; }
  unsigned n_words() const { return n_words_; }

 private:
  Ring* const ring_;
  const Api api_;
  const bool explicit_multi_;
  const unsigned n_words_;
  std::vector<uint32_t> words_;
  std::vector<void*> pointers_;
  std::vector<Elem12> typed_;
};

// --- What the threads saw, checked after they are joined ---------------------------
struct ThreadLog {
  std::vector<std::vector<uint32_t>> seqs;  // consumers: by producer, in arrival order
  uint64_t corrupt = 0;                     // elements that do not decode, or out of range
  uint64_t out_of_order = 0;                // a producer's sequence not increasing (or not next)
  uint64_t bad_counts = 0;                  // a call returned an impossible count
  uint64_t overlaps = 0;                    // two HTS operations of one side at once
  std::string first_error;

  void Error(uint64_t* counter, const std::string& what) {
    ++*counter;
    if (first_error.empty()) first_error = what;
  }
};

// Runs the threads until all exit, failing the test if no element moves for
// kStallTimeout. `consumed` is the consumers' shared progress count.
class Run {
 public:
  explicit Run(Ring* ring) : ring_(ring) {}

  // Starts a thread running body(), pinned to `cpu` unless it is negative.
  template <typename Body>
  void Spawn(int cpu, Body body) {
    // Relaxed: only counts threads still running; join() orders everything else.
    running_.fetch_add(1, std::memory_order_relaxed);
    threads_.emplace_back([this, cpu, body] {
      if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
          std::fprintf(stderr, "ring stress: cannot pin a thread to CPU %d\n", cpu);
        }
      }
      start_.WaitForNotification();
      body();
      // Relaxed: read-modify-writes of one variable never lose a count, so exactly
      // the last thread out sees 1; what the threads wrote is read after join().
      if (running_.fetch_sub(1, std::memory_order_relaxed) == 1) all_exited_.Notify();
    });
  }

  // True once the threads should give up (the run stalled).
  bool Stopping() const {
    // Relaxed: a hint to leave a loop; nothing is published through it.
    return stop_.load(std::memory_order_relaxed);
  }

  void StartAndJoin(const std::atomic<uint64_t>& consumed, uint64_t total) {
    start_.Notify();
    uint64_t last_seen = 0;
    while (!all_exited_.WaitForNotificationWithTimeout(kStallTimeout)) {
      // Relaxed: a progress sample for the watchdog only.
      const uint64_t now = consumed.load(std::memory_order_relaxed);
      if (now != last_seen) {
        last_seen = now;
        continue;
      }
      // Relaxed: see Stopping().
      stop_.store(true, std::memory_order_relaxed);
      const std::string state = absl::StrCat("consumed ", now, " of ", total, "\n", ring_->Dump());
      if (!all_exited_.WaitForNotificationWithTimeout(absl::Seconds(5))) {
        // Threads spinning inside the ring cannot be joined: report and end here.
        std::fprintf(stderr, "ring stress: threads stuck inside the ring; %s\n", state.c_str());
        std::abort();
      }
      ADD_FAILURE() << "no element moved for " << kStallTimeout << "; " << state;
      break;
    }
    for (std::thread& t : threads_) t.join();
  }

 private:
  Ring* const ring_;
  std::vector<std::thread> threads_;
  absl::Notification start_;
  absl::Notification all_exited_;
  std::atomic<int> running_{0};
  std::atomic<bool> stop_{false};
};

// Every element of every producer arrived exactly once, intact, in the promised order.
void CheckLogs(const std::vector<ThreadLog>& producers, const std::vector<ThreadLog>& consumers,
               unsigned per_producer, const std::string& context) {
  for (size_t i = 0; i < producers.size(); ++i) {
    const ThreadLog& log = producers[i];
    EXPECT_EQ(log.bad_counts + log.overlaps, 0u)
        << context << "producer " << i << ": " << log.bad_counts << " impossible counts, "
        << log.overlaps << " overlapping operations; first: " << log.first_error;
  }
  std::vector<std::vector<uint8_t>> times(producers.size(), std::vector<uint8_t>(per_producer));
  for (size_t c = 0; c < consumers.size(); ++c) {
    const ThreadLog& log = consumers[c];
    EXPECT_EQ(log.corrupt, 0u) << context << "consumer " << c << ": " << log.corrupt
                               << " corrupt elements; first: " << log.first_error;
    EXPECT_EQ(log.out_of_order, 0u) << context << "consumer " << c << ": " << log.out_of_order
                                    << " elements out of order; first: " << log.first_error;
    EXPECT_EQ(log.bad_counts + log.overlaps, 0u)
        << context << "consumer " << c << ": " << log.bad_counts << " impossible counts, "
        << log.overlaps << " overlapping operations; first: " << log.first_error;
    for (size_t p = 0; p < log.seqs.size(); ++p) {
      for (uint32_t seq : log.seqs[p]) {
        if (times[p][seq] < 255) ++times[p][seq];
      }
    }
  }
  uint64_t missing = 0;
  uint64_t duplicated = 0;
  std::string first;
  for (size_t p = 0; p < times.size(); ++p) {
    for (unsigned seq = 0; seq < per_producer; ++seq) {
      if (times[p][seq] == 1) continue;
      ++(times[p][seq] == 0 ? missing : duplicated);
      if (first.empty()) {
        first = absl::StrCat("producer ", p, " seq ", seq, " arrived ", times[p][seq], " times");
      }
    }
  }
  EXPECT_EQ(missing, 0u) << context << "first: " << first;
  EXPECT_EQ(duplicated, 0u) << context << "first: " << first;
}

// The CPUs this process may run on.
const std::vector<int>& Cpus() {
  static const std::vector<int>* const cpus = [] {
    auto* v = new std::vector<int>;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) v->push_back(cpu);
      }
    }
    if (v->empty()) v->push_back(0);
    return v;
  }();
  return *cpus;
}

unsigned Threads(Sync sync) {
  switch (sync) {
    case Sync::kSingle:
      return 1;
    case Sync::kMulti:
      return std::min<unsigned>(2, Cpus().size());
    case Sync::kRts:
    case Sync::kHts:
      return 4;
  }
  return 1;
}

// Where the i-th thread of a side runs: MP/MC threads one per CPU, others anywhere.
int CpuFor(Sync sync, unsigned i) { return sync == Sync::kMulti ? Cpus()[i % Cpus().size()] : -1; }

Sync ProducerSync(uint32_t flags) {
  if (flags & kSingleProducer) return Sync::kSingle;
  if (flags & kProducerRts) return Sync::kRts;
  if (flags & kProducerHts) return Sync::kHts;
  return Sync::kMulti;
}

Sync ConsumerSync(uint32_t flags) {
  if (flags & kSingleConsumer) return Sync::kSingle;
  if (flags & kConsumerRts) return Sync::kRts;
  if (flags & kConsumerHts) return Sync::kHts;
  return Sync::kMulti;
}

const char* SyncName(Sync sync) {
  switch (sync) {
    case Sync::kSingle:
      return "S";
    case Sync::kMulti:
      return "M";
    case Sync::kRts:
      return "Rts";
    case Sync::kHts:
      return "Hts";
  }
  return "?";
}

// --- Enqueue/dequeue in every mode ----------------------------------------------------
struct Kind {
  const char* name;
  Api api;
  uint32_t elem_size;
  uint32_t count;  // for Init
  uint32_t flags;  // kExactSize or 0
};

const Kind kKinds[] = {
    {"Ptr8", Api::kPointer, 8, 64, 0},             // capacity 63
    {"Elem16", Api::kElem, 16, 100, kExactSize},   // capacity 100
    {"Elem20", Api::kElem, 20, 256, 0},            // capacity 255
    {"Typed12", Api::kTyped, 12, 48, kExactSize},  // capacity 48
};

// (producer flags, consumer flags, index into kKinds, bulk)
using StressParam = std::tuple<uint32_t, uint32_t, int, bool>;

class RingStressTest : public ::testing::TestWithParam<StressParam> {};

// One run: fresh ring, producers and consumers, then the checks. explicit_multi: every
// thread calls MpEnqueue* / McDequeue* (pointer API), and each side runs as many threads
// as a multi-thread side, whatever the ring's flags (DPDK code ported as it is).
void StressRound(uint32_t flags, const Kind& kind, bool bulk, uint64_t seed, uint32_t start,
                 bool explicit_multi = false) {
  LocalRing local(kind.count, flags | kind.flags, kind.elem_size);
  Ring* ring = local.get();
  ASSERT_NE(ring, nullptr);
  StartAtPosition(ring, start);
  const unsigned capacity = ring->Capacity();
  const Sync producer_sync = explicit_multi ? Sync::kMulti : ProducerSync(flags);
  const Sync consumer_sync = explicit_multi ? Sync::kMulti : ConsumerSync(flags);
  const unsigned n_producers = Threads(producer_sync);
  const unsigned n_consumers = Threads(consumer_sync);
  const unsigned per_producer = kElementsPerCase / n_producers;
  const uint64_t total = uint64_t{per_producer} * n_producers;
  const std::string context = absl::StrCat("seed ", seed, " start ", start, ": ");

  std::vector<ThreadLog> producer_logs(n_producers);
  std::vector<ThreadLog> consumer_logs(n_consumers);
  // Elements taken out so far, by all consumers. Relaxed everywhere: it only decides
  // when consumers stop and feeds the watchdog; the elements themselves are ordered by
  // the ring, and the logs are read after join().
  std::atomic<uint64_t> consumed{0};
  Run run(ring);

  for (unsigned p = 0; p < n_producers; ++p) {
    run.Spawn(CpuFor(producer_sync, p), [&, p] {
      ThreadLog& log = producer_logs[p];
      Endpoint endpoint(ring, kind.api, explicit_multi);
      Random random(seed * 1000 + p);
      Backoff backoff;
      uint32_t seq = 0;
      while (seq < per_producer && !run.Stopping()) {
        const unsigned n = std::min(random.Between(1, kMaxBatch), per_producer - seq);
        // Ask for the free space now and then: asking bypasses the cached consumer
        // tail, so both paths run.
        unsigned free_space = 0;
        const bool ask = random.OneIn(4);
        const unsigned put = endpoint.Put(p, seq, n, bulk, ask ? &free_space : nullptr);
        if (put > n || (bulk && put != 0 && put != n) || (ask && put + free_space > capacity)) {
          log.Error(&log.bad_counts, absl::StrCat("enqueue of ", n, " moved ", put, " and left ",
                                                  free_space, " free"));
        }
        seq += put;
        if (put != 0) {
          backoff.Moved();
          continue;
        }
        if (consumed.load(std::memory_order_relaxed) >= total) {
          // The consumers have as many elements as were to be sent, and this
          // producer has not sent all of its own: they got elements never sent.
          log.Error(&log.bad_counts, "the consumers finished before this producer");
          break;
        }
        backoff.Failed();
      }
    });
  }
  for (unsigned c = 0; c < n_consumers; ++c) {
    run.Spawn(CpuFor(consumer_sync, c), [&, c] {
      ThreadLog& log = consumer_logs[c];
      log.seqs.resize(n_producers);
      std::vector<int64_t> last(n_producers, -1);
      Endpoint endpoint(ring, kind.api, explicit_multi);
      Random random(seed * 1000 + 500 + c);
      Backoff backoff;
      while (consumed.load(std::memory_order_relaxed) < total && !run.Stopping()) {
        const unsigned n = random.Between(1, kMaxBatch);
        unsigned available = 0;
        const bool ask = random.OneIn(4);
        const unsigned got = endpoint.Get(n, bulk, ask ? &available : nullptr);
        if (got > n || (bulk && got != 0 && got != n) || (ask && got + available > capacity)) {
          log.Error(&log.bad_counts, absl::StrCat("dequeue of ", n, " moved ", got, " and left ",
                                                  available, " entries"));
        }
        if (got == 0) {
          backoff.Failed();
          continue;
        }
        backoff.Moved();
        for (unsigned i = 0; i < got; ++i) {
          Item item;
          if (!Decode(endpoint.Words(i), endpoint.n_words(), n_producers, &item) ||
              item.seq >= per_producer) {
            log.Error(&log.corrupt,
                      absl::StrCat("element ", Describe(endpoint.Words(i), endpoint.n_words())));
            continue;
          }
          if (item.seq <= last[item.producer]) {
            log.Error(&log.out_of_order, absl::StrCat("producer ", item.producer, " seq ", item.seq,
                                                      " after ", last[item.producer]));
          }
          last[item.producer] = item.seq;
          log.seqs[item.producer].push_back(item.seq);
        }
        consumed.fetch_add(got, std::memory_order_relaxed);
      }
    });
  }
  run.StartAndJoin(consumed, total);
  CheckLogs(producer_logs, consumer_logs, per_producer, context);
  EXPECT_EQ(consumed.load(std::memory_order_relaxed), total) << context;
  EXPECT_TRUE(ring->Empty()) << context << ring->Dump();
}

TEST_P(RingStressTest, EveryElementOnceAndInOrder) {
  const auto [producer_flags, consumer_flags, kind_index, bulk] = GetParam();
  const Kind& kind = kKinds[kind_index];
  const uint32_t flags = producer_flags | consumer_flags;
  // The first run wraps the positions halfway; soak runs start anywhere.
  StressRound(flags, kind, bulk, 1, 0u - kElementsPerCase / 2);
  const absl::Duration soak = SoakDuration();
  const absl::Time deadline = absl::Now() + soak;
  Random starts(42);
  for (uint64_t seed = 2; absl::Now() < deadline && !HasFailure(); ++seed) {
    StressRound(flags, kind, bulk, seed, static_cast<uint32_t>(starts.Next()));
  }
}

std::string StressName(const ::testing::TestParamInfo<StressParam>& info) {
  const auto [producer_flags, consumer_flags, kind_index, bulk] = info.param;
  return absl::StrCat(SyncName(ProducerSync(producer_flags)), "p",
                      SyncName(ConsumerSync(consumer_flags)), "c_", kKinds[kind_index].name,
                      bulk ? "_Bulk" : "_Burst");
}

INSTANTIATE_TEST_SUITE_P(
    AllModes, RingStressTest,
    ::testing::Combine(::testing::Values(0u, kSingleProducer, kProducerRts, kProducerHts),
                       ::testing::Values(0u, kSingleConsumer, kConsumerRts, kConsumerHts),
                       ::testing::Range(0, static_cast<int>(std::size(kKinds))), ::testing::Bool()),
    StressName);

// --- DPDK code ported as it is: explicit Mp/Mc calls on any side -----------------
// DPDK's rte_ring_mp_enqueue_* / rte_ring_mc_dequeue_* are multi-thread safe whatever
// the ring's flags; so are keel's MpEnqueue* / McDequeue*: on a ring created
// single-producer and/or single-consumer, threads calling them concurrently (one per
// CPU) still deliver every element once, in each producer's order.
class RingExplicitMultiStressTest : public ::testing::TestWithParam<std::tuple<uint32_t, bool>> {};

TEST_P(RingExplicitMultiStressTest, MpMcCallsOnSingleThreadSides) {
  if (Cpus().size() < 2) GTEST_SKIP() << "needs 2 CPUs for concurrent threads of one side";
  const auto [flags, bulk] = GetParam();
  StressRound(flags, kKinds[0], bulk, 1, 0u - kElementsPerCase / 2, /*explicit_multi=*/true);
  const absl::Duration soak = SoakDuration();
  const absl::Time deadline = absl::Now() + soak;
  Random starts(43);
  for (uint64_t seed = 2; absl::Now() < deadline && !HasFailure(); ++seed) {
    StressRound(flags, kKinds[0], bulk, seed, static_cast<uint32_t>(starts.Next()), true);
  }
}

std::string ExplicitMultiName(const ::testing::TestParamInfo<std::tuple<uint32_t, bool>>& info) {
  const uint32_t flags = std::get<0>(info.param);
  return absl::StrCat(SyncName(ProducerSync(flags)), "p", SyncName(ConsumerSync(flags)), "c",
                      std::get<1>(info.param) ? "_Bulk" : "_Burst");
}

INSTANTIATE_TEST_SUITE_P(SingleSides, RingExplicitMultiStressTest,
                         ::testing::Combine(::testing::Values(kSingleProducer | kSingleConsumer,
                                                              kSingleProducer, kSingleConsumer, 0u),
                                            ::testing::Bool()),
                         ExplicitMultiName);

// --- Peek and zero copy under concurrency --------------------------------------------

// Address of the i-th element of a zero-copy region.
char* ZcElement(const ZeroCopy& zc, unsigned i, uint32_t elem_size) {
  return i < zc.n1 ? static_cast<char*>(zc.ptr1) + size_t{i} * elem_size
                   : static_cast<char*>(zc.ptr2) + size_t{i - zc.n1} * elem_size;
}

bool ZcConsistent(const ZeroCopy& zc, unsigned n) {
  return zc.ptr1 != nullptr && zc.n1 >= 1 && zc.n1 <= n && (zc.n1 == n) == (zc.ptr2 == nullptr);
}

// (flags, element size)
using PeekParam = std::tuple<uint32_t, uint32_t>;

class RingPeekStressTest : public ::testing::TestWithParam<PeekParam> {};

void PeekRound(uint32_t flags, uint32_t elem_size, uint64_t seed, uint32_t start) {
  LocalRing local(128, flags, elem_size);  // capacity 127
  Ring* ring = local.get();
  ASSERT_NE(ring, nullptr);
  StartAtPosition(ring, start);
  const unsigned capacity = ring->Capacity();
  const unsigned n_words = elem_size / 4;
  const unsigned n_producers = Threads(ProducerSync(flags));
  const unsigned n_consumers = Threads(ConsumerSync(flags));
  const unsigned per_producer = kElementsPerCase / n_producers;
  const uint64_t total = uint64_t{per_producer} * n_producers;
  const std::string context = absl::StrCat("seed ", seed, " start ", start, ": ");

  std::vector<ThreadLog> producer_logs(n_producers);
  std::vector<ThreadLog> consumer_logs(n_consumers);
  // As in StressRound: relaxed, a stop condition and progress count only.
  std::atomic<uint64_t> consumed{0};
  // 1 while a thread is between Start and Finish on that side. HTS admits one
  // operation per side at a time, so exchange(1) must always find 0. Relaxed is enough
  // to detect an overlap: exchanges on one variable are totally ordered, so two
  // operations in flight at once make one exchange return 1, whatever the ordering.
  std::atomic<int> producer_inside{0};
  std::atomic<int> consumer_inside{0};
  // The next sequence number of each producer, over all consumers: consumer
  // operations run one at a time and each starts where the previous one finished, so
  // the elements consumed, in operation order, follow each producer's order exactly.
  // Relaxed on purpose: only the ring's own ordering (HTS: the acquire CAS in
  // MoveHead<kHts> pairs with the release store in UpdateTail<kHts> of the operation
  // before) may make one operation's store visible to the next one's load; the atomics
  // only keep a broken ring from making this test undefined.
  std::vector<std::atomic<uint32_t>> next_seq(n_producers);
  for (auto& s : next_seq) s.store(0, std::memory_order_relaxed);
  Run run(ring);

  for (unsigned p = 0; p < n_producers; ++p) {
    run.Spawn(CpuFor(ProducerSync(flags), p), [&, p] {
      ThreadLog& log = producer_logs[p];
      Random random(seed * 1000 + p);
      std::vector<uint32_t> buffer(kMaxBatch * n_words);
      Backoff backoff;
      uint32_t seq = 0;
      while (seq < per_producer && !run.Stopping()) {
        const unsigned n = std::min(random.Between(1, kMaxBatch), per_producer - seq);
        const bool zero_copy = random.OneIn(2);
        const bool bulk = random.OneIn(2);
        const bool ask = !random.OneIn(4);
        unsigned free_space = 0;
        unsigned* fs = ask ? &free_space : nullptr;
        ZeroCopy zc;
        const unsigned reserved =
            zero_copy ? (bulk ? ring->EnqueueZcBulkStart(n, &zc, fs)
                              : ring->EnqueueZcBurstStart(n, &zc, fs))
                      : (bulk ? ring->EnqueueBulkStart(n, fs) : ring->EnqueueBurstStart(n, fs));
        if (reserved == 0) {
          if (consumed.load(std::memory_order_relaxed) >= total) {
            log.Error(&log.bad_counts, "the consumers finished before this producer");
            break;
          }
          backoff.Failed();
          continue;
        }
        backoff.Moved();
        // Relaxed: see producer_inside.
        if (producer_inside.exchange(1, std::memory_order_relaxed) != 0) {
          log.Error(&log.overlaps, "two producers between Start and Finish");
        }
        if (reserved > n || (bulk && reserved != n) || (ask && reserved + free_space > capacity) ||
            (zero_copy && !ZcConsistent(zc, reserved))) {
          log.Error(&log.bad_counts, absl::StrCat("start of ", n, " reserved ", reserved,
                                                  " and left ", free_space, " free"));
        }
        // Now and then publish only some of the reserved slots; Finish gives the
        // rest back.
        const unsigned finish = random.OneIn(4) ? random.Between(0, reserved) : reserved;
        for (unsigned i = 0; i < finish; ++i) {
          uint32_t* words = &buffer[i * n_words];
          Encode(p, seq + i, words, n_words);
          if (zero_copy) std::memcpy(ZcElement(zc, i, elem_size), words, elem_size);
        }
        // Relaxed: see producer_inside.
        producer_inside.store(0, std::memory_order_relaxed);
        if (zero_copy) {
          ring->EnqueueZcFinish(finish);
        } else {
          ring->EnqueueFinish(buffer.data(), finish);
        }
        seq += finish;
      }
    });
  }
  for (unsigned c = 0; c < n_consumers; ++c) {
    run.Spawn(CpuFor(ConsumerSync(flags), c), [&, c] {
      ThreadLog& log = consumer_logs[c];
      log.seqs.resize(n_producers);
      Random random(seed * 1000 + 500 + c);
      std::vector<uint32_t> buffer(kMaxBatch * n_words);
      std::vector<uint32_t> words(n_words);
      Backoff backoff;
      while (consumed.load(std::memory_order_relaxed) < total && !run.Stopping()) {
        const unsigned n = random.Between(1, kMaxBatch);
        const bool zero_copy = random.OneIn(2);
        const bool bulk = random.OneIn(2);
        const bool ask = !random.OneIn(4);
        unsigned available = 0;
        unsigned* av = ask ? &available : nullptr;
        ZeroCopy zc;
        std::fill(buffer.begin(), buffer.end(), 0);
        const unsigned got = zero_copy ? (bulk ? ring->DequeueZcBulkStart(n, &zc, av)
                                               : ring->DequeueZcBurstStart(n, &zc, av))
                                       : (bulk ? ring->DequeueBulkStart(buffer.data(), n, av)
                                               : ring->DequeueBurstStart(buffer.data(), n, av));
        if (got == 0) {
          backoff.Failed();
          continue;
        }
        backoff.Moved();
        // Relaxed: see consumer_inside.
        if (consumer_inside.exchange(1, std::memory_order_relaxed) != 0) {
          log.Error(&log.overlaps, "two consumers between Start and Finish");
        }
        if (got > n || (bulk && got != n) || (ask && got + available > capacity) ||
            (zero_copy && !ZcConsistent(zc, got))) {
          log.Error(&log.bad_counts, absl::StrCat("start of ", n, " got ", got, " and left ",
                                                  available, " entries"));
        }
        // Consume only the first `finish` now and then; the rest stays for the next
        // operation, whichever thread runs it. Every peeked element must be intact.
        const unsigned finish = random.OneIn(4) ? random.Between(0, got) : got;
        for (unsigned i = 0; i < got; ++i) {
          if (zero_copy) {
            std::memcpy(words.data(), ZcElement(zc, i, elem_size), elem_size);
          } else {
            std::memcpy(words.data(), &buffer[i * n_words], elem_size);
          }
          Item item;
          if (!Decode(words.data(), n_words, n_producers, &item) || item.seq >= per_producer) {
            log.Error(&log.corrupt, absl::StrCat("element ", Describe(words.data(), n_words)));
            continue;
          }
          if (i >= finish) continue;
          // Relaxed: see next_seq.
          const uint32_t want = next_seq[item.producer].load(std::memory_order_relaxed);
          if (item.seq != want) {
            log.Error(&log.out_of_order, absl::StrCat("producer ", item.producer, " seq ", item.seq,
                                                      " where ", want, " was next"));
          }
          next_seq[item.producer].store(item.seq + 1, std::memory_order_relaxed);
          log.seqs[item.producer].push_back(item.seq);
        }
        // Relaxed: see consumer_inside.
        consumer_inside.store(0, std::memory_order_relaxed);
        if (zero_copy) {
          ring->DequeueZcFinish(finish);
        } else {
          ring->DequeueFinish(finish);
        }
        consumed.fetch_add(finish, std::memory_order_relaxed);
      }
    });
  }
  run.StartAndJoin(consumed, total);
  CheckLogs(producer_logs, consumer_logs, per_producer, context);
  EXPECT_EQ(consumed.load(std::memory_order_relaxed), total) << context;
  EXPECT_TRUE(ring->Empty()) << context << ring->Dump();
}

TEST_P(RingPeekStressTest, StartFinishFromManyThreads) {
  const auto [flags, elem_size] = GetParam();
  PeekRound(flags, elem_size, 1, 0u - kElementsPerCase / 2);
  const absl::Duration soak = SoakDuration();
  const absl::Time deadline = absl::Now() + soak;
  Random starts(43);
  for (uint64_t seed = 2; absl::Now() < deadline && !HasFailure(); ++seed) {
    PeekRound(flags, elem_size, seed, static_cast<uint32_t>(starts.Next()));
  }
}

std::string PeekName(const ::testing::TestParamInfo<PeekParam>& info) {
  const auto [flags, elem_size] = info.param;
  return absl::StrCat(SyncName(ProducerSync(flags)), "p", SyncName(ConsumerSync(flags)), "c_",
                      elem_size);
}

INSTANTIATE_TEST_SUITE_P(HtsAndSingle, RingPeekStressTest,
                         ::testing::Combine(::testing::Values(kProducerHts | kConsumerHts,
                                                              kSingleProducer | kConsumerHts,
                                                              kProducerHts | kSingleConsumer),
                                            ::testing::Values(8u, 20u)),
                         PeekName);

}  // namespace
}  // namespace keel::ring
