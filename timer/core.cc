// Timer sets on caller memory: layout, the callback registry, arming and stopping, and
// the wheels' Manage. See internal/set_layout.h for the layout and what is the truth.
//
// The wheel (Varghese & Lauck's hierarchical timing wheel, with bitmaps to jump over
// empty slots): time is cut into granules of 2^granule_shift ticks; `cur` is the granule
// Manage reached. An entry whose granule g is after cur lives at level k, the highest
// 6-bit group in which g and cur differ, in slot (g >> 6k) & 63; one whose granule is
// not after cur lives in level 0's slot cur & 63, "the current slot". When cur reaches
// the start of an occupied level-k slot (k >= 1), its entries are re-placed below
// (cascaded). Manage(now) collects the due level-0 slots of a 64-granule block in
// granule order, sorts each by expiry and runs them: exact expiry order, O(1) arm and
// stop (they only touch the timer's record; stale entries are dropped when met, and a
// compaction bounds how many there are).
#include <x86intrin.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "base/kill_point.h"
#include "base/log.h"
#include "base/names.h"
#include "base/robust_mutex.h"
#include "timer/timer_set.h"

namespace keel::timer {

namespace ti = timer_internal;

namespace {

constexpr uint32_t kRefillChunks = 32;
constexpr uint32_t kMaxSpareChunks = 256;
constexpr size_t kPrefetchAhead = 8;
constexpr char kLockName[] = "timer set lock";

// --- The process's callback registry -------------------------------------------------

struct Registry {
  absl::Mutex mu;
  absl::flat_hash_map<std::string, Callback> fns ABSL_GUARDED_BY(mu);
  // Bumped on every registration, so sets re-resolve names they found missing.
  std::atomic<uint64_t> epoch{1};
};

Registry& TheRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

Callback FindRegistered(absl::string_view name) {
  Registry& r = TheRegistry();
  absl::MutexLock lock(&r.mu);
  auto it = r.fns.find(std::string(name));
  return it == r.fns.end() ? nullptr : it->second;
}

// Per-thread state of the Manage running on this thread.
struct ManageContext {
  int depth = 0;         // > 0 inside a callback
  uint64_t now = 0;      // the Manage's time
  unsigned lcore = ~0u;  // the lcore it runs for
  const ti::SetHeader* set = nullptr;
};
thread_local ManageContext t_manage;
thread_local std::vector<ti::Entry> t_batch;
thread_local std::vector<ti::Entry> t_moving;
// Entries that callbacks armed, already due: inserted once the Manage has run what was
// due when it began, so a timer re-arming itself at "now" runs again at the next Manage
// instead of forever in this one (as DPDK's rte_timer_manage does).
thread_local std::vector<ti::Entry> t_deferred;

inline void Prefetch(const void* p) { __builtin_prefetch(p, 1, 3); }

// Keeps the compiler from moving stores across it: where shared writes must reach memory
// in a crash-safe order (a SIGKILL stops the process between two stores; the CPU, x86,
// keeps stores in order).
inline void CrashOrder() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// a + b, or UINT64_MAX when that overflows ("never", at the top of the tick space).
inline uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > ~uint64_t{0} - b ? ~uint64_t{0} : a + b;
}

uint64_t RoundUp64(uint64_t n) { return (n + 63) & ~uint64_t{63}; }

struct Geometry {
  uint32_t granule_shift = 0;
  uint32_t levels = 0;
  uint32_t chunk_count = 0;
  uint32_t notify_words = 0;
  uint32_t summary_words = 0;
  uint64_t timers = 0, wheels = 0, notify = 0, summary = 0, chunk_meta = 0, chunks = 0,
           free_timers = 0, free_chunks = 0, total = 0;
};

Geometry Compute(uint32_t capacity, uint64_t hz, uint32_t lcores_hint) {
  Geometry g;
  // A granule of about a microsecond: the largest power of two ticks not above it.
  const uint64_t per_us = std::max<uint64_t>(1, hz / 1'000'000);
  g.granule_shift = 63 - static_cast<uint32_t>(__builtin_clzll(per_us));
  g.levels = (64 - g.granule_shift + ti::kSlotBits - 1) / ti::kSlotBits;
  // Entries: at most two per pending timer (a compaction runs before stale ones outgrow
  // the live), plus partly filled chunks: one per slot of each wheel in use, and spares.
  const uint64_t slots = uint64_t{g.levels} * ti::kSlots + kMaxSpareChunks + kRefillChunks;
  g.chunk_count =
      static_cast<uint32_t>((2 * uint64_t{capacity} + ti::kChunkEntries - 1) / ti::kChunkEntries +
                            slots * std::max<uint32_t>(1, lcores_hint));
  g.notify_words = (capacity + 63) / 64;
  g.summary_words = (g.notify_words + 63) / 64;
  uint64_t at = RoundUp64(sizeof(ti::SetHeader));
  g.timers = at;
  at += uint64_t{capacity} * sizeof(ti::TimerRecord);
  g.wheels = at;
  at += uint64_t{ti::kLcores} * sizeof(ti::Wheel);
  g.notify = at;
  at = RoundUp64(at + uint64_t{ti::kLcores} * g.notify_words * 8);
  g.summary = at;
  at = RoundUp64(at + uint64_t{ti::kLcores} * g.summary_words * 8);
  g.chunk_meta = at;
  at = RoundUp64(at + uint64_t{g.chunk_count} * sizeof(ti::ChunkMeta));
  g.chunks = at;
  at += uint64_t{g.chunk_count} * sizeof(ti::Chunk);
  g.free_timers = at;
  at = RoundUp64(at + uint64_t{capacity} * 4);
  g.free_chunks = at;
  at = RoundUp64(at + uint64_t{g.chunk_count} * 4);
  g.total = at;
  return g;
}

template <typename T>
T* At(ti::SetHeader* h, uint64_t offset) {
  return reinterpret_cast<T*>(reinterpret_cast<char*>(h) + offset);
}

void MissingCallbackMarker(TimerSet&, Timer, void*) {}

}  // namespace

// Process-local state of one set: the functions of its callback ids.
struct TimerSet::Local {
  // The function of each id: nullptr = not resolved yet; MissingCallbackMarker = this
  // process has none (as of resolved_epoch[id]).
  std::atomic<Callback> fns[kMaxCallbacks] = {};
  std::atomic<uint64_t> resolved_epoch[kMaxCallbacks] = {};
  std::atomic<bool> warned[kMaxCallbacks] = {};
  // Per lcore: the registry epoch its wheel's callbacks_known was computed at.
  uint64_t known_epoch[ti::kLcores] = {};
};

namespace {

absl::Mutex g_locals_mu;
// By address and nonce: a set freed and another made at its address get their own.
absl::flat_hash_map<std::pair<const ti::SetHeader*, uint64_t>, void*>* g_locals
    ABSL_GUARDED_BY(g_locals_mu) = nullptr;

}  // namespace

// The implementation, with access to TimerSet's members.
class Core {
 public:
  using Local = TimerSet::Local;

  static uint64_t* NotifyWords(const TimerSet& s, unsigned lcore) {
    return At<uint64_t>(s.header_, s.header_->notify_offset) +
           uint64_t{lcore} * s.header_->notify_words;
  }
  static std::atomic<uint64_t>* Notify(const TimerSet& s, unsigned lcore) {
    return reinterpret_cast<std::atomic<uint64_t>*>(NotifyWords(s, lcore));
  }
  static std::atomic<uint64_t>* Summary(const TimerSet& s, unsigned lcore) {
    return At<std::atomic<uint64_t>>(s.header_, s.header_->summary_offset) +
           uint64_t{lcore} * s.header_->summary_words;
  }
  static ti::ChunkMeta* Meta(const TimerSet& s) {
    return At<ti::ChunkMeta>(s.header_, s.header_->chunk_meta_offset);
  }
  static ti::Chunk* Chunks(const TimerSet& s) {
    return At<ti::Chunk>(s.header_, s.header_->chunks_offset);
  }
  static uint32_t* FreeTimers(const TimerSet& s) {
    return At<uint32_t>(s.header_, s.header_->free_timers_offset);
  }
  static uint32_t* FreeChunks(const TimerSet& s) {
    return At<uint32_t>(s.header_, s.header_->free_chunks_offset);
  }

  static bool Alive(const TimerSet& s, uint32_t token) {
    return token == s.self_ || s.hooks_.alive == nullptr || s.hooks_.alive(token);
  }

  // True when the calling thread manages `lcore`'s wheel.
  static bool OwnsWheel(const TimerSet& s, unsigned lcore, unsigned caller_lcore) {
    return caller_lcore == lcore && lcore < ti::kLcores &&
           s.wheels_[lcore].owner.load(std::memory_order_relaxed) == s.self_;
  }

  // --- Callbacks ---------------------------------------------------------------------

  // This process's function for callback `id`, or nullptr.
  static Callback Resolve(const TimerSet& s, uint32_t id) {
    Local& local = *s.local_;
    // Acquire: pairs with the release-store below, by another thread of this process.
    Callback fn = local.fns[id].load(std::memory_order_acquire);
    // Resolved (every local arm comes here): the registry's epoch is not needed.
    if (ABSL_PREDICT_TRUE(fn != nullptr && fn != &MissingCallbackMarker)) return fn;
    const uint64_t epoch = TheRegistry().epoch.load(std::memory_order_acquire);
    if (fn == &MissingCallbackMarker &&
        local.resolved_epoch[id].load(std::memory_order_relaxed) == epoch) {
      return nullptr;
    }
    // C0 (acquire): the name of an id below callback_count is complete.
    if (id >= s.header_->callback_count.load(std::memory_order_acquire)) return nullptr;
    fn = FindRegistered(NameOf(s.header_->callbacks[id]));
    local.resolved_epoch[id].store(epoch, std::memory_order_relaxed);
    local.fns[id].store(fn == nullptr ? &MissingCallbackMarker : fn, std::memory_order_release);
    return fn;
  }

  // Publishes which callbacks this process has, for arms from elsewhere (K0).
  static void PublishCallbacks(TimerSet& s, unsigned lcore) {
    ti::Wheel& w = s.wheels_[lcore];
    const uint64_t epoch = TheRegistry().epoch.load(std::memory_order_acquire);
    const uint32_t count = s.header_->callback_count.load(std::memory_order_acquire);
    if (s.local_->known_epoch[lcore] == epoch &&
        w.callbacks_seen.load(std::memory_order_relaxed) == count &&
        w.callbacks_token.load(std::memory_order_relaxed) == s.self_) {
      return;
    }
    // K0: bits, then seen, then token. While they change, the token is not ours, and
    // arms from elsewhere treat the callbacks as unknown.
    w.callbacks_token.store(0, std::memory_order_release);
    for (uint32_t word = 0; word < kMaxCallbacks / 64; ++word) {
      uint64_t bits = 0;
      for (uint32_t bit = 0; bit < 64 && word * 64 + bit < count; ++bit) {
        if (Resolve(s, word * 64 + bit) != nullptr) bits |= uint64_t{1} << bit;
      }
      w.callbacks_known[word].store(bits, std::memory_order_relaxed);
    }
    w.callbacks_seen.store(count, std::memory_order_release);
    w.callbacks_token.store(s.self_, std::memory_order_release);
    s.local_->known_epoch[lcore] = epoch;
  }

  // Whether arming callback `id` for `lcore` is refused as known to be missing there.
  static bool KnownMissing(const TimerSet& s, unsigned lcore, uint32_t id, bool local) {
    if (local) return Resolve(s, id) == nullptr;
    if (s.hooks_.lcore_owner == nullptr) return false;
    const ti::Wheel& w = s.wheels_[lcore];
    // K0 (acquire): the bits below `seen` are those of `token`'s process.
    const uint32_t token = w.callbacks_token.load(std::memory_order_acquire);
    if (token == 0 || token != s.hooks_.lcore_owner(lcore)) return false;
    if (id >= w.callbacks_seen.load(std::memory_order_acquire)) return false;
    return (w.callbacks_known[id / 64].load(std::memory_order_relaxed) >> (id % 64) & 1) == 0;
  }

  // --- Chunks ------------------------------------------------------------------------

  // Takes up to kRefillChunks from the set's pool. Crash order: the pool's count shrinks
  // before the chunks are marked ours, so a kill leaks them at worst. Out of line: once
  // per kRefillChunks chunks, and inlined it gave Append (every arm) the lock's frame.
  ABSL_ATTRIBUTE_NOINLINE static void Refill(TimerSet& s, unsigned lcore) {
    ti::SetHeader* h = s.header_;
    RobustLock lock(&h->lock, kLockName);
    if (!lock.ok()) return;
    uint32_t taken[kRefillChunks];
    const uint32_t n = std::min({kRefillChunks, h->free_chunks, h->chunk_count});
    uint32_t* stack = FreeChunks(s);
    for (uint32_t i = 0; i < n; ++i) taken[i] = stack[h->free_chunks - 1 - i];
    h->free_chunks -= n;
    // The compiler keeps the stores in program order (crash order; kill points compile
    // away with NDEBUG, so they do not keep it).
    CrashOrder();
    KillPointForTest("timer.refill.taken");
    ti::ChunkMeta* meta = Meta(s);
    ti::Wheel& w = s.wheels_[lcore];
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t c = taken[i];
      if (c >= h->chunk_count) continue;  // a corrupted stack: leave it
      meta[c].owner = static_cast<uint16_t>(lcore + 1);
      meta[c].next = w.free_head;
      w.free_head = c + 1;
      ++w.free_count;
    }
  }

  // Gives spare chunks back to the pool. Crash order: a chunk leaves our free list, is
  // marked the pool's, then the pool's count grows: a kill leaks it at worst (or leaves
  // it ours, found again by a new owner's Adopt).
  static void GiveBack(TimerSet& s, unsigned lcore, uint32_t n) {
    ti::SetHeader* h = s.header_;
    RobustLock lock(&h->lock, kLockName);
    if (!lock.ok()) return;
    ti::Wheel& w = s.wheels_[lcore];
    ti::ChunkMeta* meta = Meta(s);
    uint32_t* stack = FreeChunks(s);
    uint32_t given = 0;
    while (given < n && w.free_head != 0 && h->free_chunks + given < h->chunk_count) {
      const uint32_t c = w.free_head - 1;
      w.free_head = meta[c].next;
      --w.free_count;
      meta[c].owner = 0;
      meta[c].next = 0;
      stack[h->free_chunks + given] = c;
      ++given;
    }
    CrashOrder();
    h->free_chunks += given;
  }

  static uint32_t AllocChunk(TimerSet& s, unsigned lcore) {
    ti::Wheel& w = s.wheels_[lcore];
    if (w.free_head == 0) Refill(s, lcore);
    if (w.free_head == 0) return 0;
    const uint32_t c = w.free_head;
    ti::ChunkMeta& m = Meta(s)[c - 1];
    w.free_head = m.next;
    --w.free_count;
    m.next = 0;
    return c;
  }

  static void FreeChunk(TimerSet& s, unsigned lcore, uint32_t c) {
    ti::Wheel& w = s.wheels_[lcore];
    ti::ChunkMeta& m = Meta(s)[c - 1];
    m.next = w.free_head;
    w.free_head = c;
    ++w.free_count;
  }

  // --- Wheel structure (owner only) ----------------------------------------------------

  // Always inline, as Insert: they are half of a local arm's cycles and most of a
  // cascade's (measured by timer/timer_benchmark.cc).
  ABSL_ATTRIBUTE_ALWAYS_INLINE static bool Append(TimerSet& s, unsigned lcore, int level, int slot,
                                                  const ti::Entry& e) {
    ti::Wheel& w = s.wheels_[lcore];
    ti::SlotList& list = w.slots[level][slot];
    if (list.tail == 0 || list.count == ti::kChunkEntries) {
      const uint32_t c = AllocChunk(s, lcore);
      if (c == 0) return false;
      if (list.tail == 0) {
        list.head = c;
      } else {
        Meta(s)[list.tail - 1].next = c;
      }
      list.tail = c;
      list.count = 0;
    }
    Chunks(s)[list.tail - 1].entries[list.count] = e;
    ++list.count;
    w.bitmap[level] |= uint64_t{1} << slot;
    return true;
  }

  // Where an entry of granule `g` goes when the wheel is at `cur`.
  static void Place(uint64_t g, uint64_t cur, int* level, int* slot) {
    if (g <= cur) {
      *level = 0;
      *slot = static_cast<int>(cur & (ti::kSlots - 1));
      return;
    }
    const int k = (63 - __builtin_clzll(g ^ cur)) / ti::kSlotBits;
    *level = k;
    *slot = static_cast<int>((g >> (k * ti::kSlotBits)) & (ti::kSlots - 1));
  }

  // Inserts `e` into `lcore`'s wheel. False when no chunk is free.
  ABSL_ATTRIBUTE_ALWAYS_INLINE static bool Insert(TimerSet& s, unsigned lcore, const ti::Entry& e) {
    ti::Wheel& w = s.wheels_[lcore];
    if (t_manage.depth > 0 && t_manage.set == s.header_ && t_manage.lcore == lcore &&
        e.expiry <= t_manage.now) {
      t_deferred.push_back(e);
      return true;
    }
    int level, slot;
    Place(e.expiry >> s.header_->granule_shift, w.cur, &level, &slot);
    if (!Append(s, lcore, level, slot, e)) {
      w.no_space.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    w.entries.store(w.entries.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (e.expiry < w.next_due) w.next_due = e.expiry;
    return true;
  }

  // Moves the entries of a slot to `out` and empties it.
  static void TakeSlot(TimerSet& s, unsigned lcore, int level, int slot,
                       std::vector<ti::Entry>* out) {
    ti::Wheel& w = s.wheels_[lcore];
    ti::SlotList& list = w.slots[level][slot];
    ti::ChunkMeta* meta = Meta(s);
    ti::Chunk* chunks = Chunks(s);
    uint64_t taken = 0;
    uint32_t c = list.head;
    const uint32_t tail = list.tail, tail_count = list.count;
    list.head = list.tail = list.count = 0;
    w.bitmap[level] &= ~(uint64_t{1} << slot);
    while (c != 0) {
      const uint32_t next = meta[c - 1].next;
      const uint32_t count = c == tail ? tail_count : ti::kChunkEntries;
      out->insert(out->end(), chunks[c - 1].entries, chunks[c - 1].entries + count);
      taken += count;
      FreeChunk(s, lcore, c);
      c = next;
    }
    w.entries.store(w.entries.load(std::memory_order_relaxed) - taken, std::memory_order_relaxed);
  }

  struct Event {
    int level;
    int slot;
    uint64_t granule;
  };

  // The first occupied slot after `cur` at any level, as the granule where it begins.
  static bool NextEvent(const TimerSet& s, const ti::Wheel& w, Event* ev) {
    for (int k = 0; k < static_cast<int>(s.header_->levels); ++k) {
      const int shift = k * ti::kSlotBits;
      const uint64_t idx = (w.cur >> shift) & (ti::kSlots - 1);
      const uint64_t above = idx == ti::kSlots - 1 ? 0 : w.bitmap[k] & (~uint64_t{0} << (idx + 1));
      if (above == 0) continue;
      const int slot = __builtin_ctzll(above);
      const int block_shift = shift + ti::kSlotBits;
      const uint64_t block = block_shift >= 64 ? 0 : (w.cur >> block_shift) << block_shift;
      *ev = {k, slot, block | (uint64_t{static_cast<uint64_t>(slot)} << shift)};
      return true;
    }
    return false;
  }

  static bool CurrentSlotEmpty(const ti::Wheel& w) {
    return (w.bitmap[0] >> (w.cur & (ti::kSlots - 1)) & 1) == 0;
  }

  // --- Records -----------------------------------------------------------------------

  // A record left in kConfig by a dead process: stop it (its arm never happened).
  // Returns the state now.
  static uint64_t RecoverConfig(TimerSet& s, ti::TimerRecord& r, uint64_t state) {
    const uint64_t stopped = ti::MakeState(ti::kStopped, ti::LcoreOf(state), 0, ti::GenOf(state));
    // A CAS: only if nobody recovered or re-armed it meanwhile.
    r.state.compare_exchange_strong(state, stopped, std::memory_order_acq_rel,
                                    std::memory_order_acquire);
    return r.state.load(std::memory_order_acquire);
  }

  // N1: tells `lcore` to look at timer `id`. The timer's bit, then its word's summary
  // bit, then the flag (each a release RMW); the owner takes them in the other order
  // (acquire exchanges), so it misses nothing that was set before the flag it cleared.
  // A kill between two of them leaves a bit that the owner's sweep finds.
  static void NotifyLcore(TimerSet& s, unsigned lcore, uint32_t id) {
    Notify(s, lcore)[id / 64].fetch_or(uint64_t{1} << (id % 64), std::memory_order_release);
    KillPointForTest("timer.notify.bit");
    Summary(s, lcore)[id / 4096].fetch_or(uint64_t{1} << ((id / 64) % 64),
                                          std::memory_order_release);
    // An RMW, so every notifier's release is in the sequence the owner's exchange reads.
    s.wheels_[lcore].notify.fetch_or(1, std::memory_order_release);
  }

  static Result Reset(TimerSet& s, Timer t, const Arm& arm, unsigned caller_lcore) {
    ti::SetHeader* h = s.header_;
    if (t.id >= h->capacity) return Result::kBadTimer;
    if (arm.lcore >= ti::kLcores) return Result::kBadLcore;
    if (arm.callback.value >= h->callback_count.load(std::memory_order_acquire)) {
      return Result::kBadCallback;
    }
    ti::TimerRecord& r = s.timers_[t.id];
    if (r.allocated != 1) return Result::kBadTimer;
    const bool local = OwnsWheel(s, arm.lcore, caller_lcore);
    if (KnownMissing(s, arm.lcore, arm.callback.value, local)) return Result::kNoCallbackOnLcore;

    uint64_t state = r.state.load(std::memory_order_acquire);
    uint64_t config;
    for (;;) {
      const ti::Status st = ti::StatusOf(state);
      if (st == ti::kConfig) {
        if (Alive(s, ti::HolderOf(state))) return Result::kBusy;
        state = RecoverConfig(s, r, state);
        continue;
      }
      if (st == ti::kRunning && !OwnsWheel(s, ti::LcoreOf(state), caller_lcore)) {
        return Result::kBusy;
      }
      config = ti::MakeState(ti::kConfig, arm.lcore, s.self_, ti::GenOf(state) + 1);
      // Acquire on success: we read nothing of the record's old parameters, but a
      // running callback's writes (before its owner's release) come first.
      if (r.state.compare_exchange_weak(state, config, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
        break;
      }
    }
    // A kill from here to the publish leaves the record in kConfig with a dead holder:
    // whoever touches it next stops it (RecoverConfig); any entry made below is stale.
    KillPointForTest("timer.reset.config");
    if (ti::StatusOf(state) == ti::kPending) s.StaleEntry(ti::LcoreOf(state), caller_lcore);
    const uint32_t gen = ti::GenOf(config);
    // Relaxed: S1 below orders them.
    r.expiry.store(arm.expiry, std::memory_order_relaxed);
    r.period.store(arm.period, std::memory_order_relaxed);
    r.arg.store(reinterpret_cast<uintptr_t>(arm.arg), std::memory_order_relaxed);
    r.callback.store(arm.callback.value, std::memory_order_relaxed);
    r.flags.store(arm.late == Late::kSkip ? ti::kSkipLate : 0, std::memory_order_relaxed);
    r.missed.store(0, std::memory_order_relaxed);
    if (local) {
      // The owner's own re-arms can outrun its Manage calls: compact here too.
      const ti::Wheel& w = s.wheels_[arm.lcore];
      if (ABSL_PREDICT_FALSE(w.stale > 1024) && t_manage.depth == 0 &&
          w.stale > w.entries.load(std::memory_order_relaxed) / 2 + 1024) {
        MaybeCompact(s, arm.lcore);
      }
      if (!Insert(s, arm.lcore, {arm.expiry, t.id, gen})) {
        r.state.store(ti::MakeState(ti::kStopped, arm.lcore, 0, gen), std::memory_order_release);
        return Result::kNoSpace;
      }
    } else {
      // Before the publish: an owner that takes the bit and still sees kConfig looks
      // again at its next Manage (HandleNotified).
      NotifyLcore(s, arm.lcore, t.id);
    }
    KillPointForTest("timer.reset.publish");
    // S1: release-store of kPending. Pairs with the acquire-loads of the owner
    // (HandleNotified, Fire): it sees the parameters written above.
    r.state.store(ti::MakeState(ti::kPending, arm.lcore, 0, gen), std::memory_order_release);
    return Result::kOk;
  }

  static Result Stop(TimerSet& s, Timer t, unsigned caller_lcore) {
    if (t.id >= s.header_->capacity) return Result::kBadTimer;
    ti::TimerRecord& r = s.timers_[t.id];
    uint64_t state = r.state.load(std::memory_order_acquire);
    for (;;) {
      const ti::Status st = ti::StatusOf(state);
      const unsigned lcore = ti::LcoreOf(state);
      if (st == ti::kStopped) return Result::kOk;
      if (st == ti::kConfig) {
        if (Alive(s, ti::HolderOf(state))) return Result::kBusy;
        state = RecoverConfig(s, r, state);
        continue;
      }
      if (st == ti::kRunning && !OwnsWheel(s, lcore, caller_lcore)) return Result::kBusy;
      const uint64_t stopped = ti::MakeState(ti::kStopped, lcore, 0, ti::GenOf(state));
      if (r.state.compare_exchange_weak(state, stopped, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
        if (st == ti::kPending) s.StaleEntry(lcore, caller_lcore);
        return Result::kOk;
      }
    }
  }

  // Waits while `op` says busy (Reset or Stop), never inside a callback.
  template <typename Op>
  static Result Sync(TimerSet& s, Timer t, Op op) {
    for (uint64_t spins = 0;; ++spins) {
      const Result result = op();
      if (result != Result::kBusy) return result;
      if (t_manage.depth > 0) return Result::kWouldWaitInCallback;
      if (spins % 1024 == 1023) {
        const uint64_t state = s.timers_[t.id].state.load(std::memory_order_acquire);
        if (ti::StatusOf(state) == ti::kRunning) {
          const unsigned lcore = ti::LcoreOf(state);
          const uint32_t owner = s.wheels_[lcore].owner.load(std::memory_order_relaxed);
          if (!Alive(s, owner)) return Result::kOwnerDead;
        }
      }
      __builtin_ia32_pause();
    }
  }

  // The owner looks at timer `id`, which someone notified it of: inserts its entry when
  // it is pending here. One still being armed (kConfig) is looked at again at the next
  // Manage, or stopped when its holder died (`check_holder`, in the sweep).
  static void HandleNotified(TimerSet& s, unsigned lcore, uint32_t id, bool check_holder) {
    if (id >= s.header_->capacity) return;
    ti::TimerRecord& r = s.timers_[id];
    // S1 (acquire): the parameters of a kPending are complete.
    uint64_t state = r.state.load(std::memory_order_acquire);
    if (ti::LcoreOf(state) != lcore) return;
    if (ti::StatusOf(state) == ti::kConfig) {
      if (check_holder && !Alive(s, ti::HolderOf(state))) {
        state = RecoverConfig(s, r, state);
        if (ti::StatusOf(state) != ti::kPending) return;
      } else {
        NotifyLcore(s, lcore, id);
        return;
      }
    }
    if (ti::StatusOf(state) != ti::kPending) return;
    const uint64_t expiry = r.expiry.load(std::memory_order_relaxed);
    // A record re-armed while we read its expiry has a newer generation: this entry is
    // then stale, and the newer arm notified us too.
    if (!Insert(s, lcore, {expiry, id, ti::GenOf(state)})) NotifyLcore(s, lcore, id);
  }

  // Takes the notifications (N1, the owner's side).
  static void Drain(TimerSet& s, unsigned lcore) {
    ti::Wheel& w = s.wheels_[lcore];
    w.notify.exchange(0, std::memory_order_acquire);
    std::atomic<uint64_t>* summary = Summary(s, lcore);
    std::atomic<uint64_t>* bits = Notify(s, lcore);
    for (uint32_t m = 0; m < s.header_->summary_words; ++m) {
      if (summary[m].load(std::memory_order_relaxed) == 0) continue;
      uint64_t words = summary[m].exchange(0, std::memory_order_acquire);
      while (words != 0) {
        const uint32_t j = m * 64 + static_cast<uint32_t>(__builtin_ctzll(words));
        words &= words - 1;
        if (j >= s.header_->notify_words) break;
        uint64_t ids = bits[j].exchange(0, std::memory_order_acquire);
        while (ids != 0) {
          HandleNotified(s, lcore, j * 64 + static_cast<uint32_t>(__builtin_ctzll(ids)), false);
          ids &= ids - 1;
        }
      }
    }
  }

  // Once a second: every notification bit, whatever the summary says (a notifier killed
  // between the two), and the holders of records still being armed.
  static void Sweep(TimerSet& s, unsigned lcore, uint64_t now) {
    ti::Wheel& w = s.wheels_[lcore];
    w.next_sweep = SaturatingAdd(now, std::max<uint64_t>(s.header_->hz, 1));
    std::atomic<uint64_t>* bits = Notify(s, lcore);
    for (uint32_t j = 0; j < s.header_->notify_words; ++j) {
      if (bits[j].load(std::memory_order_relaxed) == 0) continue;
      uint64_t ids = bits[j].exchange(0, std::memory_order_acquire);
      while (ids != 0) {
        HandleNotified(s, lcore, j * 64 + static_cast<uint32_t>(__builtin_ctzll(ids)), true);
        ids &= ids - 1;
      }
    }
  }

  // A new owner takes over `lcore`'s wheel: whatever state its last owner left it in
  // (killed in the middle of an update, say), it is rebuilt from the records.
  static void Adopt(TimerSet& s, unsigned lcore, uint64_t now) {
    ti::SetHeader* h = s.header_;
    ti::Wheel& w = s.wheels_[lcore];
    // Ours first: a kill during the rebuild leaves a wheel the next owner rebuilds again.
    const bool fresh = w.owner.load(std::memory_order_relaxed) == 0;
    w.owner.store(s.self_, std::memory_order_relaxed);
    w.adoptions.fetch_add(1, std::memory_order_relaxed);
    std::memset(w.bitmap, 0, sizeof(w.bitmap));
    std::memset(w.slots, 0, sizeof(w.slots));
    w.cur = now >> h->granule_shift;
    w.next_due = 0;
    w.next_sweep = now;
    w.stale = 0;
    w.remote_stale_seen = w.remote_stale.load(std::memory_order_relaxed);
    w.entries.store(0, std::memory_order_relaxed);
    w.free_head = 0;
    w.free_count = 0;
    s.local_->known_epoch[lcore] = 0;
    ti::ChunkMeta* meta = Meta(s);
    for (uint32_t c = h->chunk_count; c-- > 0;) {
      if (meta[c].owner != lcore + 1) continue;
      meta[c].next = w.free_head;
      w.free_head = c + 1;
      ++w.free_count;
    }
    KillPointForTest("timer.adopt.chunks");
    // A wheel nobody managed yet has no entries: every timer armed for it notified it.
    if (fresh) return;
    for (uint32_t id = 0; id < h->capacity; ++id) {
      ti::TimerRecord& r = s.timers_[id];
      uint64_t state = r.state.load(std::memory_order_acquire);
      if (ti::LcoreOf(state) != lcore) continue;
      switch (ti::StatusOf(state)) {
        case ti::kStopped:
          break;
        case ti::kPending:
        case ti::kConfig:
          HandleNotified(s, lcore, id, false);
          break;
        case ti::kRunning: {
          // Its callback was running when the last owner died: at most once, so a single
          // timer is not run again; a periodic one goes on at its next period.
          const uint32_t gen = ti::GenOf(state);
          const uint64_t period = r.period.load(std::memory_order_relaxed);
          if (period == 0) {
            r.state.compare_exchange_strong(state, ti::MakeState(ti::kStopped, lcore, 0, gen),
                                            std::memory_order_acq_rel);
            break;
          }
          const uint64_t next = SaturatingAdd(r.expiry.load(std::memory_order_relaxed), period);
          r.expiry.store(next, std::memory_order_relaxed);
          if (r.state.compare_exchange_strong(state, ti::MakeState(ti::kPending, lcore, 0, gen + 1),
                                              std::memory_order_acq_rel)) {
            HandleNotified(s, lcore, id, false);
          }
          break;
        }
      }
    }
  }

  // Runs one due entry.
  static unsigned Fire(TimerSet& s, unsigned lcore, const ti::Entry& e, uint64_t now) {
    ti::Wheel& w = s.wheels_[lcore];
    if (e.timer >= s.header_->capacity) return 0;  // a damaged entry: drop it
    ti::TimerRecord& r = s.timers_[e.timer];
    uint64_t state = ti::MakeState(ti::kPending, lcore, 0, e.gen);
    const uint64_t running = ti::MakeState(ti::kRunning, lcore, 0, e.gen);
    // S1 (acquire): the parameters of this generation. Fails for a stale entry (stopped,
    // re-armed, or a duplicate of one that ran).
    if (!r.state.compare_exchange_strong(state, running, std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
      if (w.stale > 0) --w.stale;
      return 0;
    }
    KillPointForTest("timer.fire.running");
    const uint32_t id = r.callback.load(std::memory_order_relaxed);
    void* arg = reinterpret_cast<void*>(r.arg.load(std::memory_order_relaxed));
    const uint64_t period = r.period.load(std::memory_order_relaxed);
    const Callback fn = id < kMaxCallbacks ? Resolve(s, id) : nullptr;
    unsigned ran = 0;
    uint64_t expiry = e.expiry;
    for (;;) {
      if (fn != nullptr) {
        ++t_manage.depth;
        fn(s, Timer{e.timer}, arg);
        --t_manage.depth;
        ++ran;
      } else {
        w.missing_callback.fetch_add(1, std::memory_order_relaxed);
        WarnMissing(s, id);
      }
      // Nobody else writes a record running here (Reset and Stop from elsewhere see
      // kRunning and return kBusy), so plain stores move it on; unless the callback
      // re-armed or stopped it (this thread).
      if (r.state.load(std::memory_order_relaxed) != running) return ran;
      if (period == 0) {
        // Release: pairs with the acquire of a Reset or Stop that sees kStopped, so it
        // sees what the callback wrote.
        r.state.store(ti::MakeState(ti::kStopped, lcore, 0, e.gen), std::memory_order_release);
        return ran;
      }
      // No drift: the next period counts from the expiry, not from now. Periods already
      // due when this one ran are missed: run late, back to back (kCatchUp), or skipped.
      const uint64_t next = SaturatingAdd(expiry, period);
      if (next > now) {
        expiry = next;
        break;
      }
      if ((r.flags.load(std::memory_order_relaxed) & ti::kSkipLate) != 0) {
        const uint64_t late = (now - expiry) / period;
        r.missed.fetch_add(late, std::memory_order_relaxed);
        w.missed_periods.fetch_add(late, std::memory_order_relaxed);
        expiry = late + 1 > (~uint64_t{0} - expiry) / period ? ~uint64_t{0}
                                                             : expiry + (late + 1) * period;
        break;
      }
      r.missed.fetch_add(1, std::memory_order_relaxed);
      w.missed_periods.fetch_add(1, std::memory_order_relaxed);
      expiry = next;
      r.expiry.store(expiry, std::memory_order_relaxed);
    }
    r.expiry.store(expiry, std::memory_order_relaxed);
    const uint32_t gen = e.gen + 1;
    const bool inserted = Insert(s, lcore, {expiry, e.timer, gen});
    // S1 for the next period (no other thread changes a record running here).
    r.state.store(ti::MakeState(ti::kPending, lcore, 0, gen), std::memory_order_release);
    if (!inserted) NotifyLcore(s, lcore, e.timer);
    return ran;
  }

  static void WarnMissing(TimerSet& s, uint32_t id) {
    if (id >= kMaxCallbacks || s.local_->warned[id].exchange(true)) return;
    KEEL_LOG(Warning, "timer",
             "timer set \"%s\": callback \"%s\" (id %u) is not registered in this process; "
             "its expiries are counted (missing_callback), not run",
             Printable(NameOf(s.header_->name)),
             id < s.header_->callback_count.load(std::memory_order_acquire)
                 ? Printable(NameOf(s.header_->callbacks[id]))
                 : std::string("?"),
             id);
  }

  // Runs the entries of `batch` (sorted) that are due, in order, prefetching records.
  static unsigned RunBatch(TimerSet& s, unsigned lcore, std::vector<ti::Entry>& batch, size_t due,
                           uint64_t now) {
    unsigned ran = 0;
    for (size_t i = 0; i < std::min(due, kPrefetchAhead); ++i) {
      Prefetch(&s.timers_[batch[i].timer]);
    }
    for (size_t i = 0; i < due; ++i) {
      if (i + kPrefetchAhead < due) Prefetch(&s.timers_[batch[i + kPrefetchAhead].timer]);
      ran += Fire(s, lcore, batch[i], now);
    }
    return ran;
  }

  static bool Before(const ti::Entry& a, const ti::Entry& b) {
    return a.expiry != b.expiry ? a.expiry < b.expiry : a.timer < b.timer;
  }

  // Sorts v[from..) by (expiry, timer) with an insertion sort, which is linear for
  // entries that arrive nearly in order (timers armed in expiry order, the usual case)
  // and the fastest sort of a few; gives up, leaving v[from..) permuted, when more than
  // 16 entries look shuffled (more than 20 descents in the first 64: shuffled ones have
  // about 32, timers armed in order with a jitter of 2 spacings 8) or need more than 2
  // moves each.
  static bool SortNearlyInOrder(std::vector<ti::Entry>& v, size_t from) {
    const size_t n = v.size() - from;
    if (n > 16) {
      size_t descents = 0;
      for (size_t i = from + 1; i < from + 64 && i < v.size(); ++i) {
        descents += Before(v[i], v[i - 1]);
      }
      if (descents > 20) return false;
    }
    size_t budget = n <= 16 ? n * n : 2 * n;
    for (size_t i = from + 1; i < v.size(); ++i) {
      if (!Before(v[i], v[i - 1])) continue;
      const ti::Entry e = v[i];
      size_t j = i;
      do {
        v[j] = v[j - 1];
        --j;
        if (budget-- == 0) {
          v[j] = e;
          return false;
        }
      } while (j > from && Before(e, v[j - 1]));
      v[j] = e;
    }
    return true;
  }

  static void SortEntries(std::vector<ti::Entry>& v, size_t from) {
    if (SortNearlyInOrder(v, from)) return;
    std::sort(v.begin() + static_cast<ptrdiff_t>(from), v.end(), Before);
  }

  // Runs the due entries of `batch` (sorted, every entry of granules up to cur) and puts
  // the others (only those of granule cur can be) back.
  static unsigned RunSorted(TimerSet& s, unsigned lcore, std::vector<ti::Entry>& batch,
                            uint64_t now) {
    size_t due = batch.size();
    while (due > 0 && batch[due - 1].expiry > now) --due;
    for (size_t i = due; i < batch.size(); ++i) {
      if (!Insert(s, lcore, batch[i])) NotifyLcore(s, lcore, batch[i].timer);
    }
    KillPointForTest("timer.manage.batch");
    return RunBatch(s, lcore, batch, due, now);
  }

  // Runs everything due at `now`.
  static unsigned Advance(TimerSet& s, unsigned lcore, uint64_t now) {
    ti::Wheel& w = s.wheels_[lcore];
    const uint32_t shift = s.header_->granule_shift;
    uint64_t n = now >> shift;
    if (n < w.cur) n = w.cur;  // a clock read before the last Manage's
    unsigned ran = 0;
    std::vector<ti::Entry>& batch = t_batch;
    for (;;) {
      // The current slot, and the occupied level-0 slots after it up to n: entries of
      // one granule are in one slot, slots come in granule order.
      if (!CurrentSlotEmpty(w)) {
        batch.clear();
        TakeSlot(s, lcore, 0, static_cast<int>(w.cur & (ti::kSlots - 1)), &batch);
        SortEntries(batch, 0);
        Event ev;
        while (NextEvent(s, w, &ev) && ev.level == 0 && ev.granule <= n) {
          w.cur = ev.granule;
          const size_t from = batch.size();
          TakeSlot(s, lcore, 0, ev.slot, &batch);
          SortEntries(batch, from);
        }
        ran += RunSorted(s, lcore, batch, now);
        if (w.cur == n) break;
        continue;
      }
      if (w.cur == n) break;
      Event ev;
      if (!NextEvent(s, w, &ev) || ev.granule > n) {
        w.cur = n;
        break;
      }
      w.cur = ev.granule;
      if (ev.level > 0) {
        // A slot due as a whole (a late Manage, or one that runs everything at once)
        // whose entries came nearly in order runs as it is, without cascading: the lower
        // levels are empty, so it holds every entry of its granules.
        const uint64_t last = ev.granule + (uint64_t{1} << (ev.level * ti::kSlotBits)) - 1;
        std::vector<ti::Entry>& moving = t_moving;
        moving.clear();
        TakeSlot(s, lcore, ev.level, ev.slot, &moving);
        if (last <= n && SortNearlyInOrder(moving, 0)) {
          w.cur = last;
          ran += RunSorted(s, lcore, moving, now);
          continue;
        }
        KillPointForTest("timer.manage.cascade");
        for (const ti::Entry& e : moving) {
          if (!Insert(s, lcore, e)) NotifyLcore(s, lcore, e.timer);
        }
      }
    }
    return ran;
  }

  // Drops stale entries once they outnumber the live ones (plus a margin).
  static void MaybeCompact(TimerSet& s, unsigned lcore) {
    ti::Wheel& w = s.wheels_[lcore];
    const uint64_t remote = w.remote_stale.load(std::memory_order_relaxed);
    const uint64_t stale = w.stale + (remote - w.remote_stale_seen);
    const uint64_t entries = w.entries.load(std::memory_order_relaxed);
    if (stale <= entries / 2 + 1024) return;
    std::vector<ti::Entry>& all = t_moving;
    all.clear();
    for (int k = 0; k < static_cast<int>(s.header_->levels); ++k) {
      uint64_t bits = w.bitmap[k];
      while (bits != 0) {
        TakeSlot(s, lcore, k, __builtin_ctzll(bits), &all);
        bits &= bits - 1;
      }
    }
    for (size_t i = 0; i < all.size(); ++i) {
      if (i + kPrefetchAhead < all.size()) Prefetch(&s.timers_[all[i + kPrefetchAhead].timer]);
      const ti::Entry& e = all[i];
      if (e.timer >= s.header_->capacity) continue;
      const uint64_t live = ti::MakeState(ti::kPending, lcore, 0, e.gen);
      if (s.timers_[e.timer].state.load(std::memory_order_relaxed) != live) continue;
      if (!Insert(s, lcore, e)) NotifyLcore(s, lcore, e.timer);
    }
    w.stale = 0;
    w.remote_stale_seen = remote;
  }

  static void ComputeNextDue(TimerSet& s, unsigned lcore) {
    ti::Wheel& w = s.wheels_[lcore];
    uint64_t next = w.next_sweep;
    if (!CurrentSlotEmpty(w)) {
      const ti::SlotList& list = w.slots[0][w.cur & (ti::kSlots - 1)];
      for (uint32_t c = list.head; c != 0; c = Meta(s)[c - 1].next) {
        const ti::Chunk& chunk = Chunks(s)[c - 1];
        const uint32_t count = c == list.tail ? list.count : ti::kChunkEntries;
        for (uint32_t i = 0; i < count; ++i) {
          next = std::min(next, chunk.entries[i].expiry);
        }
      }
    }
    Event ev;
    if (NextEvent(s, w, &ev)) {
      const uint32_t shift = s.header_->granule_shift;
      next =
          std::min(next, ev.granule > (~uint64_t{0} >> shift) ? ~uint64_t{0} : ev.granule << shift);
    }
    w.next_due = next;
  }

  static unsigned ManageSlow(TimerSet& s, unsigned lcore, uint64_t now) {
    if (t_manage.depth > 0) return 0;  // Manage from inside a callback: refused
    ti::Wheel& w = s.wheels_[lcore];
    const uint32_t owner = w.owner.load(std::memory_order_relaxed);
    if (owner != s.self_) {
      // Take over only a wheel nobody managed, one whose owner died, or one whose lcore
      // the EAL says is ours now (its last owner left the group): never a live owner's.
      const bool ours = s.hooks_.lcore_owner != nullptr && s.hooks_.lcore_owner(lcore) == s.self_;
      if (owner != 0 && !ours && Alive(s, owner)) return 0;
      Adopt(s, lcore, now);
    }
    const ManageContext saved = t_manage;
    t_manage = {0, now, lcore, s.header_};
    if (w.notify.load(std::memory_order_relaxed) != 0) Drain(s, lcore);
    if (now >= w.next_sweep) Sweep(s, lcore, now);
    PublishCallbacks(s, lcore);
    const unsigned ran = Advance(s, lcore, now);
    t_manage.lcore = ~0u;
    for (const ti::Entry& e : t_deferred) {
      if (!Insert(s, lcore, e)) NotifyLcore(s, lcore, e.timer);
    }
    t_deferred.clear();
    MaybeCompact(s, lcore);
    if (w.free_count > kMaxSpareChunks) GiveBack(s, lcore, w.free_count - kMaxSpareChunks / 2);
    ComputeNextDue(s, lcore);
    w.ran.fetch_add(ran, std::memory_order_relaxed);
    t_manage = saved;
    return ran;
  }
};

// --- Public API ------------------------------------------------------------------------

absl::Status RegisterCallback(absl::string_view name, Callback fn) {
  if (absl::Status s = CheckNameLength("timer callback name", name, kMaxCallbackNameLength);
      !s.ok()) {
    return s;
  }
  if (fn == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("timer callback \"%s\": the function is null", Printable(name)));
  }
  Registry& r = TheRegistry();
  absl::MutexLock lock(&r.mu);
  auto [it, inserted] = r.fns.emplace(std::string(name), fn);
  if (!inserted && it->second != fn) {
    return absl::AlreadyExistsError(absl::StrFormat(
        "timer callback \"%s\" already has another function in this process", Printable(name)));
  }
  r.epoch.fetch_add(1, std::memory_order_acq_rel);
  return absl::OkStatus();
}

absl::string_view ResultName(Result result) {
  switch (result) {
    case Result::kOk:
      return "ok";
    case Result::kBusy:
      return "busy";
    case Result::kBadTimer:
      return "bad timer";
    case Result::kBadLcore:
      return "bad lcore";
    case Result::kBadCallback:
      return "bad callback";
    case Result::kNoCallbackOnLcore:
      return "no such callback in the lcore's process";
    case Result::kNoSpace:
      return "no space";
    case Result::kWouldWaitInCallback:
      return "would wait inside a callback";
    case Result::kOwnerDead:
      return "owner dead";
  }
  return "?";
}

absl::StatusOr<size_t> TimerSet::MemorySize(const SetParams& params) {
  if (absl::Status s = CheckNameLength("timer set name", params.name, kMaxNameLength); !s.ok()) {
    return s;
  }
  if (params.capacity == 0 || params.capacity > kMaxTimers) {
    return absl::InvalidArgumentError(
        absl::StrFormat("timer set \"%s\": capacity %u is not in 1..%u", Printable(params.name),
                        params.capacity, kMaxTimers));
  }
  if (params.hz == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("timer set \"%s\": hz is 0", Printable(params.name)));
  }
  if (params.lcores_hint == 0 || params.lcores_hint > ti::kLcores) {
    return absl::InvalidArgumentError(
        absl::StrFormat("timer set \"%s\": lcores_hint %u is not in 1..%u", Printable(params.name),
                        params.lcores_hint, ti::kLcores));
  }
  return Compute(params.capacity, params.hz, params.lcores_hint).total;
}

absl::StatusOr<TimerSet> TimerSet::Init(void* mem, const SetParams& params,
                                        const ProcessHooks& hooks) {
  absl::StatusOr<size_t> size = MemorySize(params);
  if (!size.ok()) return size.status();
  if (mem == nullptr || reinterpret_cast<uintptr_t>(mem) % 64 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "timer set \"%s\": memory %p is not 64-byte aligned", Printable(params.name), mem));
  }
  const Geometry g = Compute(params.capacity, params.hz, params.lcores_hint);
  std::memset(mem, 0, g.free_timers);  // the stacks are written below
  auto* h = static_cast<ti::SetHeader*>(mem);
  h->layout_version = ti::kLayoutVersion;
  h->capacity = params.capacity;
  h->granule_shift = g.granule_shift;
  h->levels = g.levels;
  h->chunk_count = g.chunk_count;
  h->notify_words = g.notify_words;
  h->summary_words = g.summary_words;
  h->hz = params.hz;
  h->nonce = (uint64_t{std::random_device()()} << 32) ^ std::random_device()() ^ __rdtsc();
  h->total_size = g.total;
  h->timers_offset = g.timers;
  h->wheels_offset = g.wheels;
  h->notify_offset = g.notify;
  h->summary_offset = g.summary;
  h->chunk_meta_offset = g.chunk_meta;
  h->chunks_offset = g.chunks;
  h->free_timers_offset = g.free_timers;
  h->free_chunks_offset = g.free_chunks;
  CopyName(h->name, params.name);
  if (absl::Status s = InitRobustMutex(&h->lock, kLockName); !s.ok()) return s;
  auto* timers = At<ti::TimerRecord>(h, g.timers);
  uint32_t* free_timers = At<uint32_t>(h, g.free_timers);
  for (uint32_t i = 0; i < params.capacity; ++i) {
    timers[i].state.store(ti::MakeState(ti::kStopped, ti::kNoLcore, 0, 0),
                          std::memory_order_relaxed);
    free_timers[i] = params.capacity - 1 - i;  // NewTimer hands out 0, 1, 2, ...
  }
  h->free_timers = params.capacity;
  uint32_t* free_chunks = At<uint32_t>(h, g.free_chunks);
  for (uint32_t i = 0; i < g.chunk_count; ++i) free_chunks[i] = g.chunk_count - 1 - i;
  h->free_chunks = g.chunk_count;
  auto* wheels = At<ti::Wheel>(h, g.wheels);
  for (unsigned l = 0; l < ti::kLcores; ++l) wheels[l].next_sweep = 0;
  h->magic = ti::kSetMagic;
  return Attach(mem, hooks);
}

absl::StatusOr<TimerSet> TimerSet::Attach(void* mem, const ProcessHooks& hooks) {
  auto* h = static_cast<ti::SetHeader*>(mem);
  if (h == nullptr || h->magic != ti::kSetMagic) {
    return absl::FailedPreconditionError(absl::StrFormat("%p is not a timer set", mem));
  }
  const std::string name = Printable(NameOf(h->name));
  if (h->layout_version != ti::kLayoutVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "timer set \"%s\": layout version %u, this process has timer layout version %u", name,
        h->layout_version, ti::kLayoutVersion));
  }
  const uint32_t callbacks = h->callback_count.load(std::memory_order_acquire);
  if (h->capacity == 0 || h->capacity > kMaxTimers || h->hz == 0 || callbacks > kMaxCallbacks) {
    return absl::FailedPreconditionError(
        absl::StrFormat("timer set \"%s\": capacity %u, hz %u or callback count %u is invalid",
                        name, h->capacity, h->hz, callbacks));
  }
  // Recompute the geometry: every offset must be what this build would lay out.
  const Geometry g = Compute(h->capacity, h->hz, 1);
  const bool consistent =
      h->granule_shift == g.granule_shift && h->levels == g.levels &&
      h->notify_words == g.notify_words && h->summary_words == g.summary_words &&
      h->timers_offset == g.timers && h->wheels_offset == g.wheels &&
      h->notify_offset == g.notify && h->summary_offset == g.summary &&
      h->chunk_meta_offset == g.chunk_meta && h->chunk_count >= g.chunk_count &&
      h->chunk_count < (1u << 28) &&
      h->chunks_offset == RoundUp64(g.chunk_meta + uint64_t{h->chunk_count} * 8) &&
      h->free_timers_offset == h->chunks_offset + uint64_t{h->chunk_count} * sizeof(ti::Chunk) &&
      h->free_chunks_offset == RoundUp64(h->free_timers_offset + uint64_t{h->capacity} * 4) &&
      h->total_size == RoundUp64(h->free_chunks_offset + uint64_t{h->chunk_count} * 4);
  if (!consistent) {
    return absl::FailedPreconditionError(
        absl::StrFormat("timer set \"%s\": its header's geometry is inconsistent", name));
  }
  if (hooks.self == 0 || hooks.self > ti::kTokenMask) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "timer set \"%s\": process token %u is not in 1..%u", name, hooks.self, ti::kTokenMask));
  }
  return TimerSet(h, hooks);
}

TimerSet::TimerSet(ti::SetHeader* header, const ProcessHooks& hooks)
    : header_(header),
      timers_(At<ti::TimerRecord>(header, header->timers_offset)),
      wheels_(At<ti::Wheel>(header, header->wheels_offset)),
      self_(hooks.self),
      hooks_(hooks) {
  absl::MutexLock lock(&g_locals_mu);
  if (g_locals == nullptr) {
    g_locals = new absl::flat_hash_map<std::pair<const ti::SetHeader*, uint64_t>, void*>;
  }
  void*& local = (*g_locals)[{header, header->nonce}];
  if (local == nullptr) local = new Local;
  local_ = static_cast<Local*>(local);
}

std::string TimerSet::name() const { return std::string(NameOf(header_->name)); }

absl::StatusOr<Timer> TimerSet::NewTimer() {
  RobustLock lock(&header_->lock, kLockName);
  if (!lock.ok()) return lock.status();
  if (header_->free_timers > header_->capacity) {
    return absl::InternalError(absl::StrFormat("timer set \"%s\": free timer stack holds %u",
                                               name(), header_->free_timers));
  }
  if (header_->free_timers == 0) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("timer set \"%s\": all %u timers are in use", name(), header_->capacity));
  }
  const uint32_t id = Core::FreeTimers(*this)[header_->free_timers - 1];
  if (id >= header_->capacity) {
    return absl::InternalError(
        absl::StrFormat("timer set \"%s\": free timer stack holds %u", name(), id));
  }
  // Crash order: the count shrinks before the timer is marked ours (a kill leaks it).
  --header_->free_timers;
  CrashOrder();
  KillPointForTest("timer.new_timer.counted");
  timers_[id].allocated = 1;
  return Timer{id};
}

absl::Status TimerSet::DeleteTimer(Timer timer) {
  if (timer.id >= header_->capacity) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "timer set \"%s\": timer %u is not one of its %u", name(), timer.id, header_->capacity));
  }
  ti::TimerRecord& r = timers_[timer.id];
  uint64_t state = r.state.load(std::memory_order_acquire);
  if (ti::StatusOf(state) == ti::kConfig && !Core::Alive(*this, ti::HolderOf(state))) {
    state = Core::RecoverConfig(*this, r, state);
  }
  if (ti::StatusOf(state) != ti::kStopped) {
    return absl::FailedPreconditionError(
        absl::StrFormat("timer set \"%s\": timer %u is %s; stop it first", name(), timer.id,
                        ti::StatusOf(state) == ti::kPending   ? "pending"
                        : ti::StatusOf(state) == ti::kRunning ? "running"
                                                              : "being armed"));
  }
  RobustLock lock(&header_->lock, kLockName);
  if (!lock.ok()) return lock.status();
  if (r.allocated != 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("timer set \"%s\": timer %u is not in use", name(), timer.id));
  }
  if (header_->free_timers >= header_->capacity) {
    return absl::InternalError(absl::StrFormat("timer set \"%s\": free timer stack holds %u",
                                               name(), header_->free_timers));
  }
  // Crash order: unmarked, then pushed (a kill leaks it).
  r.allocated = 0;
  CrashOrder();
  Core::FreeTimers(*this)[header_->free_timers] = timer.id;
  CrashOrder();
  ++header_->free_timers;
  return absl::OkStatus();
}

absl::StatusOr<CallbackId> TimerSet::AddCallback(absl::string_view callback) {
  if (absl::Status s = CheckNameLength("timer callback name", callback, kMaxCallbackNameLength);
      !s.ok()) {
    return s;
  }
  RobustLock lock(&header_->lock, kLockName);
  if (!lock.ok()) return lock.status();
  const uint32_t count = header_->callback_count.load(std::memory_order_relaxed);
  for (uint32_t id = 0; id < std::min(count, kMaxCallbacks); ++id) {
    if (NameOf(header_->callbacks[id]) == callback) return CallbackId{id};
  }
  if (count >= kMaxCallbacks) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "timer set \"%s\": all %u callback names are taken", name(), kMaxCallbacks));
  }
  CopyName(header_->callbacks[count], callback);
  KillPointForTest("timer.add_callback.named");
  // C0: the name before the count (a kill before it leaves the name unused).
  header_->callback_count.store(count + 1, std::memory_order_release);
  return CallbackId{count};
}

size_t TimerSet::Busy() const {
  size_t busy = 0;
  for (uint32_t id = 0; id < header_->capacity; ++id) {
    uint64_t state = timers_[id].state.load(std::memory_order_acquire);
    if (ti::StatusOf(state) == ti::kConfig && !Core::Alive(*this, ti::HolderOf(state))) {
      state = Core::RecoverConfig(const_cast<TimerSet&>(*this), timers_[id], state);
    }
    busy += ti::StatusOf(state) != ti::kStopped;
  }
  return busy;
}

size_t TimerSet::StopAll(unsigned lcore) {
  size_t stopped = 0;
  for (uint32_t id = 0; id < header_->capacity; ++id) {
    ti::TimerRecord& r = timers_[id];
    uint64_t state = r.state.load(std::memory_order_acquire);
    while (ti::StatusOf(state) == ti::kPending && ti::LcoreOf(state) == lcore) {
      if (r.state.compare_exchange_weak(state,
                                        ti::MakeState(ti::kStopped, lcore, 0, ti::GenOf(state)),
                                        std::memory_order_acq_rel, std::memory_order_acquire)) {
        ++stopped;
        StaleEntry(lcore, ~0u);
        break;
      }
    }
  }
  return stopped;
}

std::vector<LcoreStats> TimerSet::Stats() const {
  std::vector<uint64_t> pending(ti::kLcores, 0);
  for (uint32_t id = 0; id < header_->capacity; ++id) {
    const uint64_t state = timers_[id].state.load(std::memory_order_relaxed);
    if (ti::StatusOf(state) == ti::kPending && ti::LcoreOf(state) < ti::kLcores) {
      ++pending[ti::LcoreOf(state)];
    }
  }
  std::vector<LcoreStats> out;
  for (unsigned l = 0; l < ti::kLcores; ++l) {
    const ti::Wheel& w = wheels_[l];
    const uint32_t owner = w.owner.load(std::memory_order_relaxed);
    if (pending[l] == 0 && owner == 0) continue;
    LcoreStats st;
    st.lcore = l;
    st.pending = pending[l];
    st.ran = w.ran.load(std::memory_order_relaxed);
    st.missing_callback = w.missing_callback.load(std::memory_order_relaxed);
    st.missed_periods = w.missed_periods.load(std::memory_order_relaxed);
    st.no_space = w.no_space.load(std::memory_order_relaxed);
    st.adoptions = w.adoptions.load(std::memory_order_relaxed);
    st.entries = w.entries.load(std::memory_order_relaxed);
    st.owner_token = owner;
    out.push_back(st);
  }
  return out;
}

Result TimerSet::Reset(Timer timer, const Arm& arm, unsigned caller_lcore) {
  return Core::Reset(*this, timer, arm, caller_lcore);
}

Result TimerSet::StopSlow(Timer timer, unsigned caller_lcore) {
  return Core::Stop(*this, timer, caller_lcore);
}

Result TimerSet::ResetSync(Timer timer, const Arm& arm, unsigned caller_lcore) {
  return Core::Sync(*this, timer, [&] { return Core::Reset(*this, timer, arm, caller_lcore); });
}

Result TimerSet::StopSync(Timer timer, unsigned caller_lcore) {
  return Core::Sync(*this, timer, [&] { return Core::Stop(*this, timer, caller_lcore); });
}

bool TimerSet::Pending(Timer timer) const {
  if (timer.id >= header_->capacity) return false;
  return ti::StatusOf(timers_[timer.id].state.load(std::memory_order_acquire)) == ti::kPending;
}

uint64_t TimerSet::Expiry(Timer timer) const {
  if (timer.id >= header_->capacity) return 0;
  return timers_[timer.id].expiry.load(std::memory_order_relaxed);
}

uint64_t TimerSet::MissedPeriods(Timer timer) const {
  if (timer.id >= header_->capacity) return 0;
  return timers_[timer.id].missed.load(std::memory_order_relaxed);
}

unsigned TimerSet::ManageSlow(unsigned lcore, uint64_t now) {
  return Core::ManageSlow(*this, lcore, now);
}

}  // namespace keel::timer
