// The table's core: sizing, Init and Attach on caller memory, the function registry,
// the writers' slow parts (displacement, overflow chains, kMultiWriter's lock), the bulk
// lookup, repair and Verify; the write fast paths are inline in internal/write.h. No
// EAL, no memory component: //hash:core depends on //base and Abseil alone.
//
// Crash order. A writer may die between any two instructions; the next write notices
// (kMultiWriter: its lock recovers the mutex; else the `writing` word is still set) and
// runs Repair(), which rebuilds everything derived from the
// buckets: each position's state, the free stacks, the counts, the `away` counters,
// the tags; a key referenced twice (a move cut short between its publication at the new
// place and its removal at the old) keeps one reference. So each writer only has to
// order its stores such that the buckets never lose a key that was present: publish a
// key at its new place before removing it from the old one. What a kill leaves at each
// point is said at the kill points (hash.*), which the multi-process tests trigger.
#include <emmintrin.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "base/kill_point.h"
#include "base/log.h"
#include "base/names.h"
#include "base/robust_mutex.h"
#include "base/units.h"
#include "hash/hash.h"
#include "hash/internal/layout.h"
#include "hash/internal/lookup.h"

namespace keel::hash_internal {
namespace {

constexpr char kLog[] = "hash";
constexpr char kLockName[] = "hash table lock";
constexpr uint32_t kAllFlags =
    hash::kMultiWriter | hash::kLockFreeReaders | hash::kExtendableBuckets | hash::kNoFreeOnDelete;
// Bucket nodes a displacement search visits at most (DPDK: 1000).
constexpr int kMaxSearchNodes = 512;

struct Geometry {
  uint32_t num_buckets;
  uint32_t ext_buckets;
  uint32_t key_stride;
  uint64_t buckets_offset;
  uint64_t keys_offset;
  uint64_t free_offset;
  uint64_t ext_free_offset;
  uint64_t states_offset;
  uint64_t total_size;
};

absl::Status Invalid(absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrFormat("hash \"%s\": %s", Printable(name.substr(0, 80)), why));
}

uint32_t NextPowerOfTwo(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

// At least `entries` bucket slots (DPDK's sizing), so tables run at most full at
// `entries`; overflow buckets for the worst case of dense chains (Delete compacts them).
Geometry GeometryOf(uint32_t entries, uint32_t key_length, uint32_t flags) {
  Geometry g;
  g.num_buckets = std::max<uint32_t>(2, NextPowerOfTwo(entries) / kBucketEntries);
  g.ext_buckets = (flags & hash::kExtendableBuckets)
                      ? (entries + kBucketEntries - 1) / kBucketEntries + g.num_buckets
                      : 0;
  g.key_stride = static_cast<uint32_t>(RoundUp(sizeof(KeyEntry) + key_length, 16));
  g.buckets_offset = RoundUp(sizeof(TableLayout), 64);
  g.keys_offset = g.buckets_offset + uint64_t{g.num_buckets + g.ext_buckets} * sizeof(Bucket);
  g.free_offset = g.keys_offset + RoundUp(uint64_t{entries} * g.key_stride, 64);
  g.ext_free_offset = g.free_offset + RoundUp(uint64_t{entries} * 4, 64);
  g.states_offset = g.ext_free_offset + RoundUp(uint64_t{g.ext_buckets} * 4, 64);
  g.total_size =
      g.states_offset + RoundUp((uint64_t{entries} + kStatesPerWord - 1) / kStatesPerWord * 4, 64);
  return g;
}

// --- Functions ---------------------------------------------------------------------

struct Registry {
  absl::Mutex mu;
  absl::flat_hash_map<std::string, hash::Function> functions ABSL_GUARDED_BY(mu);
};

Registry& Functions() {
  static Registry* registry = new Registry;
  return *registry;
}

bool IsBuiltIn(absl::string_view name) { return name == "crc32c" || name == "jhash"; }

hash::Function Registered(absl::string_view name) {
  Registry& r = Functions();
  absl::MutexLock lock(&r.mu);
  auto it = r.functions.find(std::string(name));
  return it == r.functions.end() ? nullptr : it->second;
}

uint32_t Compute(FunctionId id, hash::Function user, const void* key, uint32_t length,
                 uint32_t init) {
  switch (id) {
    case FunctionId::kCrc32c:
      return hash::Crc32c(key, length, init);
    case FunctionId::kJhash:
      return hash::Jhash(key, length, init);
    case FunctionId::kUser:
      return user(key, length, init);
  }
  return 0;
}

// The function's values on fixed keys of the table's length: what a process must
// reproduce to use the table's function.
void Probe(FunctionId id, hash::Function user, uint32_t length, uint32_t init,
           uint32_t (&values)[kProbes]) {
  std::vector<uint8_t> key(length);
  for (int k = 0; k < kProbes; ++k) {
    for (uint32_t i = 0; i < length; ++i) key[i] = static_cast<uint8_t>(i * 31 + k * 97 + 1);
    values[k] = Compute(id, user, key.data(), length, init);
  }
}

// Moves the key at (from, from_slot) to its other bucket `to`, slot `to_slot` (empty).
// Every step keeps the key findable by a concurrent reader (lookup.h).
void Move(TableLayout& t, uint32_t from, int from_slot, uint32_t to, int to_slot) {
  Bucket& src = BucketAt(t, from);
  Bucket& dst = BucketAt(t, to);
  const uint32_t position = PositionAt(src, from_slot) - 1;
  // Relaxed: written by an earlier write, which happened before this one (the lock, or
  // the caller's ordering of its one writer).
  const uint32_t hash = Entry(t, position)->hash.load(std::memory_order_relaxed);
  const uint32_t primary = PrimaryBucket(t, hash);
  if (to != primary) {
    // Release: pairs with the reader's acquire of `away`; counted before the key shows
    // in its alternative (a kill leaves it counted once too often: repair recounts).
    AddWriterOnly(BucketAt(t, primary).away, 1);
  }
  Publish(dst, to_slot, TagOf(hash), position);
  // A kill here leaves the key in both buckets: repair keeps one.
  KillPointForTest("hash.move.published");
  BumpChangeCount(t);
  Clear(src, from_slot);
  if (from != primary) AddWriterOnly(BucketAt(t, primary).away, -1);
}

// Frees a slot in bucket `a` or `b` by moving keys to their other buckets along the
// shortest path a breadth-first search finds. Returns the bucket with the free slot
// (*slot set), or -1.
int64_t MakeRoom(TableLayout& t, uint32_t a, uint32_t b, int* slot) {
  struct Node {
    uint32_t bucket;
    int parent;         // index in `nodes`, -1 for a start bucket
    int parent_slot;    // the slot of the parent's bucket whose key moves here
    uint32_t position;  // that key's position + 1, checked before the move
  };
  Node nodes[kMaxSearchNodes];
  int tail = 0;
  nodes[tail++] = {a, -1, -1, 0};
  nodes[tail++] = {b, -1, -1, 0};
  for (int head = 0; head < tail; ++head) {
    const Bucket& bucket = BucketAt(t, nodes[head].bucket);
    for (int i = 0; i < kBucketEntries; ++i) {
      const uint32_t s = PositionAt(bucket, i);
      if (s == 0) continue;
      const uint32_t other = Alternative(t, nodes[head].bucket, TagAt(bucket, i));
      const int free_slot = EmptySlot(BucketAt(t, other));
      if (free_slot < 0) {
        if (tail < kMaxSearchNodes) nodes[tail++] = {other, head, i, s};
        continue;
      }
      // Found: move along the path from its end, each key into the slot just freed.
      Move(t, nodes[head].bucket, i, other, free_slot);
      int freed = i;
      for (int n = head; nodes[n].parent >= 0; n = nodes[n].parent) {
        const Node& parent = nodes[nodes[n].parent];
        // A path through one bucket twice may have changed this slot: stop (every move
        // made was a valid one) and let the caller search again.
        if (PositionAt(BucketAt(t, parent.bucket), nodes[n].parent_slot) != nodes[n].position) {
          return -2;
        }
        Move(t, parent.bucket, nodes[n].parent_slot, nodes[n].bucket, freed);
        freed = nodes[n].parent_slot;
      }
      *slot = freed;
      int start = head;
      while (nodes[start].parent >= 0) start = nodes[start].parent;
      return nodes[start].bucket;
    }
  }
  return -1;
}

// Appends `position` to the overflow chain of bucket `p`. False when no overflow
// bucket is left.
bool PlaceInChain(TableLayout& t, uint32_t p, uint16_t tag, uint32_t position) {
  uint32_t last = p;
  uint32_t steps = t.ext_buckets;
  for (uint32_t n = BucketAt(t, p).next.load(std::memory_order_relaxed); n != 0 && steps-- != 0;
       n = BucketAt(t, n - 1).next.load(std::memory_order_relaxed)) {
    const int slot = EmptySlot(BucketAt(t, n - 1));
    if (slot >= 0) {
      Publish(BucketAt(t, n - 1), slot, tag, position);
      return true;
    }
    last = n - 1;
  }
  const uint32_t top = t.ext_free_top.load(std::memory_order_relaxed);
  if (top == 0) return false;
  const uint32_t index = ExtFreeStack(t)[top - 1];
  // Shrink first: a kill after it leaks the bucket until repair (unlinked = free).
  t.ext_free_top.store(top - 1, std::memory_order_relaxed);
  Bucket& e = BucketAt(t, index);
  for (auto& w : e.tags) w.store(0, std::memory_order_relaxed);
  for (auto& s : e.slots) s.store(0, std::memory_order_relaxed);
  e.next.store(0, std::memory_order_relaxed);
  e.away.store(0, std::memory_order_relaxed);
  Publish(e, 0, tag, position);
  KillPointForTest("hash.chain.filled");
  // Release: pairs with the reader's acquire of `next`: the bucket is whole before it is
  // reachable.
  BucketAt(t, last).next.store(index + 1, std::memory_order_release);
  return true;
}

}  // namespace

// The room-making part of Place (write.h), after the primary and the alternative bucket
// were both found full: displacement, then the overflow chain.
bool PlaceSlow(TableLayout& t, uint32_t hash, uint32_t position) {
  const uint32_t p = PrimaryBucket(t, hash);
  const uint16_t tag = TagOf(hash);
  const uint32_t q = Alternative(t, p, tag);
  for (int attempt = 0; attempt < 4; ++attempt) {
    int slot;
    const int64_t room = MakeRoom(t, p, q, &slot);
    if (room == -1) break;
    if (room == -2) {
      // A path crossed itself, after some moves: they may have emptied a slot of p or q.
      if (EmptySlot(BucketAt(t, p)) >= 0 || EmptySlot(BucketAt(t, q)) >= 0) {
        return Place(t, hash, position);
      }
      continue;
    }
    if (static_cast<uint32_t>(room) != p) AddWriterOnly(BucketAt(t, p).away, 1);
    Publish(BucketAt(t, static_cast<uint32_t>(room)), slot, tag, position);
    return true;
  }
  return t.ext_buckets != 0 && PlaceInChain(t, p, tag, position);
}

// Removes the hole at (hole, hole_slot) of p's chain by moving the chain's last key into
// it, and unlinks the chain's last bucket when it empties: chains stay dense, which is
// what bounds the overflow buckets a table needs.
void CompactChain(TableLayout& t, uint32_t p, uint32_t hole, int hole_slot) {
  uint32_t before_last = p;
  uint32_t last = p;
  uint32_t steps = t.ext_buckets;
  for (uint32_t n = BucketAt(t, p).next.load(std::memory_order_relaxed); n != 0 && steps-- != 0;
       n = BucketAt(t, n - 1).next.load(std::memory_order_relaxed)) {
    before_last = last;
    last = n - 1;
  }
  Bucket& z = BucketAt(t, last);
  int top = -1;
  for (int i = kBucketEntries - 1; i >= 0 && top < 0; --i) {
    if (PositionAt(z, i) != 0) top = i;
  }
  if (last != hole && top >= 0) {
    Bucket& h = BucketAt(t, hole);
    Publish(h, hole_slot, TagAt(z, top), PositionAt(z, top) - 1);
    BumpChangeCount(t);
    Clear(z, top);
    top = -1;
    for (int i = kBucketEntries - 1; i >= 0 && top < 0; --i) {
      if (PositionAt(z, i) != 0) top = i;
    }
  }
  if (top >= 0) return;
  // The last bucket is empty: unlink it, then bump (a reader still inside it finishes
  // its walk there; once it is reused elsewhere, C2 sends the reader round again).
  BucketAt(t, before_last).next.store(0, std::memory_order_release);
  BumpChangeCount(t);
  KillPointForTest("hash.chain.unlinked");
  const uint32_t etop = t.ext_free_top.load(std::memory_order_relaxed);
  ExtFreeStack(t)[etop] = last;
  t.ext_free_top.store(etop + 1, std::memory_order_relaxed);
}

// Rebuilds what a writer killed mid-operation may have left inconsistent, from the
// buckets and the position states (see the top of the file). Runs with the write access
// held (the recovered lock, or the one writer's).
void Repair(TableLayout& t) {
  const uint32_t nb = t.num_buckets;
  const uint32_t ext = t.ext_buckets;
  std::vector<bool> referenced(t.entries, false);
  std::vector<bool> linked(ext, false);
  // Counted here and stored once every reference is settled: lock-free readers go on
  // reading `away`, and it must never drop below the keys away while they do.
  std::vector<uint32_t> away(nb, 0);
  uint32_t count = 0;
  // Keeps the reference in (bucket, slot) if it is a key's first, in a bucket it may be
  // in; rewrites its tag. `chain_of`: the main bucket whose chain this is, or -1.
  auto check = [&](uint32_t index, int64_t chain_of) {
    Bucket& b = BucketAt(t, index);
    for (int i = 0; i < kBucketEntries; ++i) {
      const uint32_t s = PositionAt(b, i);
      if (s == 0) continue;
      const uint32_t pos = s - 1;
      bool keep = pos < t.entries && !referenced[pos];
      uint32_t hash = 0, p = 0;
      if (keep) {
        hash = Entry(t, pos)->hash.load(std::memory_order_relaxed);
        p = PrimaryBucket(t, hash);
        keep =
            chain_of >= 0 ? p == chain_of : (index == p || index == Alternative(t, p, TagOf(hash)));
      }
      if (!keep) {
        Clear(b, i);
        continue;
      }
      referenced[pos] = true;
      ++count;
      SetTag(b, i, TagOf(hash));
      if (chain_of < 0 && index != p) ++away[p];
    }
  };
  // Dropping one reference of a key referenced twice leaves the other one findable: an
  // unfinished move had already counted the key away (Move), and `away` is not lowered
  // before the loop below.
  for (uint32_t i = 0; i < nb; ++i) check(i, -1);
  for (uint32_t i = 0; i < nb; ++i) {
    uint32_t prev = i;
    for (uint32_t n = BucketAt(t, i).next.load(std::memory_order_relaxed); n != 0;) {
      const uint32_t index = n - 1;
      if (index < nb || index >= nb + ext || linked[index - nb]) {
        BucketAt(t, prev).next.store(0, std::memory_order_relaxed);  // a bad link: cut
        break;
      }
      check(index, i);
      const uint32_t next = BucketAt(t, index).next.load(std::memory_order_relaxed);
      const Bucket& e = BucketAt(t, index);
      if (std::all_of(std::begin(e.slots), std::end(e.slots), [](const std::atomic<uint32_t>& s) {
            return s.load(std::memory_order_relaxed) == 0;
          })) {
        BucketAt(t, prev).next.store(next, std::memory_order_relaxed);  // empty: unlink
      } else {
        linked[index - nb] = true;
        prev = index;
      }
      n = next;
    }
  }
  for (uint32_t i = 0; i < nb; ++i) BucketAt(t, i).away.store(away[i], std::memory_order_release);
  const bool keep_deleted = (t.flags & hash::kNoFreeOnDelete) != 0;
  uint32_t top = 0;
  for (uint32_t pos = t.entries; pos-- > 0;) {
    const State state = StateOf(t, pos, std::memory_order_relaxed);
    State now;
    if (referenced[pos]) {
      now = State::kLive;
    } else if (state == State::kDeleted || (state == State::kLive && keep_deleted)) {
      now = State::kDeleted;  // deleted (a kill may have stopped a delete before this)
    } else {
      now = State::kFree;  // free, an add that did not publish, or a delete cut short
    }
    if (now != state) SetState(t, pos, now);
    if (now == State::kFree) FreeStack(t)[top++] = pos;
  }
  t.free_top.store(top, std::memory_order_relaxed);
  uint32_t etop = 0;
  for (uint32_t e = ext; e-- > 0;) {
    if (!linked[e]) ExtFreeStack(t)[etop++] = nb + e;
  }
  t.ext_free_top.store(etop, std::memory_order_relaxed);
  t.count.store(count, std::memory_order_relaxed);
  BumpChangeCount(t);
  AddWriterOnly(t.repairs, 1);
  KEEL_LOG(Warning, kLog,
           "table \"%s\": a writer died in the middle of a write; repaired (%u keys)",
           Printable(NameOf(t.name)), count);
}

namespace {

// Empties the table: every position free (the lowest popped first), no key in a bucket.
void Clean(TableLayout& t) {
  std::memset(static_cast<void*>(Buckets(t)), 0,
              sizeof(Bucket) * (size_t{t.num_buckets} + t.ext_buckets));
  std::memset(static_cast<void*>(States(t)), 0,  // State::kFree
              (size_t{t.entries} + kStatesPerWord - 1) / kStatesPerWord * 4);
  for (uint32_t pos = 0; pos < t.entries; ++pos) FreeStack(t)[t.entries - 1 - pos] = pos;
  for (uint32_t e = 0; e < t.ext_buckets; ++e) {
    ExtFreeStack(t)[t.ext_buckets - 1 - e] = t.num_buckets + e;
  }
  t.free_top.store(t.entries, std::memory_order_relaxed);
  t.ext_free_top.store(t.ext_buckets, std::memory_order_relaxed);
  t.count.store(0, std::memory_order_relaxed);
}

}  // namespace

// A write's scope: kMultiWriter tables under the table's robust lock, repaired first
// when its last holder died (not ok(), logged, when the lock cannot be taken); others
// marked by BeginSingleWrite (write.h).
class WriteScope {
 public:
  explicit WriteScope(TableLayout& t) : t_(t), single_((t.flags & hash::kMultiWriter) == 0) {
    if (!single_) {
      Lock();
      return;
    }
    BeginSingleWrite(t);
  }
  ~WriteScope() {
    if (single_) EndSingleWrite(t_);
  }
  WriteScope(const WriteScope&) = delete;
  WriteScope& operator=(const WriteScope&) = delete;

  bool ok() const { return single_ || (lock_.has_value() && lock_->ok()); }
  const absl::Status& status() const { return lock_->status(); }

 private:
  ABSL_ATTRIBUTE_NOINLINE void Lock() {
    lock_.emplace(&t_.lock, kLockName, [this] { Repair(t_); });
    if (!lock_->ok()) {
      KEEL_LOG(Error, kLog, "table \"%s\": %s", Printable(NameOf(t_.name)),
               lock_->status().ToString());
    }
  }

  TableLayout& t_;
  const bool single_;
  std::optional<RobustLock> lock_;
};

int32_t FreePosition(TableLayout& t, int32_t position) {
  if (position < 0 || static_cast<uint32_t>(position) >= t.entries) return hash::kInvalid;
  WriteScope scope(t);
  if (!scope.ok()) return hash::kInvalid;
  {
    if (StateOf(t, static_cast<uint32_t>(position), std::memory_order_relaxed) != State::kDeleted) {
      return hash::kInvalid;
    }
    PushFree(t, static_cast<uint32_t>(position));
    return 0;
  }
}

void Reset(TableLayout& t) {
  WriteScope scope(t);
  if (!scope.ok()) return;
  Clean(t);
  BumpChangeCount(t);
}

// Checks every invariant (see Verify in hash.h) and returns the first violation.
absl::Status Check(TableLayout& t) {
  const uint32_t nb = t.num_buckets;
  const uint32_t ext = t.ext_buckets;
  const std::string name = Printable(NameOf(t.name));
  auto loss = [&](const std::string& why) {
    return absl::DataLossError(absl::StrFormat("hash \"%s\": %s", name, why));
  };
  std::vector<bool> referenced(t.entries, false);
  std::vector<bool> linked(ext, false);
  std::vector<uint32_t> away(nb, 0);
  absl::flat_hash_set<absl::string_view> keys;
  uint32_t count = 0;
  auto check = [&](uint32_t index, int64_t chain_of) -> absl::Status {
    const Bucket& b = BucketAt(t, index);
    for (int i = 0; i < kBucketEntries; ++i) {
      const uint32_t s = PositionAt(b, i);
      if (s == 0) continue;
      const uint32_t pos = s - 1;
      if (pos >= t.entries) {
        return loss(
            absl::StrFormat("bucket %u slot %d holds position %u of %u", index, i, pos, t.entries));
      }
      if (referenced[pos]) {
        return loss(
            absl::StrFormat("position %u is in two slots (bucket %u slot %d)", pos, index, i));
      }
      referenced[pos] = true;
      ++count;
      const KeyEntry* e = Entry(t, pos);
      const uint32_t hash = e->hash.load(std::memory_order_relaxed);
      const uint32_t p = PrimaryBucket(t, hash);
      const bool placed =
          chain_of >= 0 ? p == chain_of : (index == p || index == Alternative(t, p, TagOf(hash)));
      if (!placed) {
        return loss(absl::StrFormat("position %u (hash %08x) is in bucket %u, not one of its own",
                                    pos, hash, index));
      }
      if (TagAt(b, i) != TagOf(hash)) {
        return loss(absl::StrFormat("bucket %u slot %d: tag %04x, the key's is %04x", index, i,
                                    TagAt(b, i), TagOf(hash)));
      }
      if (const State st = StateOf(t, pos, std::memory_order_relaxed); st != State::kLive) {
        return loss(absl::StrFormat("position %u is in a bucket but in state %u", pos,
                                    static_cast<uint32_t>(st)));
      }
      if (!keys.insert(absl::string_view(static_cast<const char*>(KeyOf(e)), t.key_length))
               .second) {
        return loss(absl::StrFormat("the key at position %u is also at another", pos));
      }
      if (chain_of < 0 && index != p) ++away[p];
    }
    return absl::OkStatus();
  };
  for (uint32_t i = 0; i < nb; ++i) {
    if (absl::Status s = check(i, -1); !s.ok()) return s;
  }
  for (uint32_t i = 0; i < nb; ++i) {
    for (uint32_t n = BucketAt(t, i).next.load(std::memory_order_relaxed); n != 0;
         n = BucketAt(t, n - 1).next.load(std::memory_order_relaxed)) {
      if (n - 1 < nb || n - 1 >= nb + ext) {
        return loss(absl::StrFormat("bucket %u's chain links to bucket %u", i, n - 1));
      }
      if (linked[n - 1 - nb]) {
        return loss(absl::StrFormat("overflow bucket %u is linked twice", n - 1));
      }
      linked[n - 1 - nb] = true;
      if (absl::Status s = check(n - 1, i); !s.ok()) return s;
    }
  }
  for (uint32_t i = 0; i < nb; ++i) {
    const uint32_t a = BucketAt(t, i).away.load(std::memory_order_relaxed);
    if (a != away[i]) {
      return loss(absl::StrFormat("bucket %u counts %u keys away, %u are", i, a, away[i]));
    }
  }
  if (const uint32_t c = t.count.load(std::memory_order_relaxed); c != count) {
    return loss(absl::StrFormat("count is %u, the buckets hold %u keys", c, count));
  }
  std::vector<bool> on_stack(t.entries, false);
  const uint32_t top = t.free_top.load(std::memory_order_relaxed);
  if (top > t.entries) return loss(absl::StrFormat("free stack of %u positions", top));
  for (uint32_t i = 0; i < top; ++i) {
    const uint32_t pos = FreeStack(t)[i];
    if (pos >= t.entries || on_stack[pos]) {
      return loss(
          absl::StrFormat("free stack entry %u is position %u (a repeat or too big)", i, pos));
    }
    on_stack[pos] = true;
  }
  for (uint32_t pos = 0; pos < t.entries; ++pos) {
    const uint32_t state = static_cast<uint32_t>(StateOf(t, pos, std::memory_order_relaxed));
    const bool is_free = state == static_cast<uint32_t>(State::kFree);
    if (is_free != on_stack[pos]) {
      return loss(absl::StrFormat("position %u is in state %u but %s the free stack", pos, state,
                                  on_stack[pos] ? "on" : "not on"));
    }
    if (!referenced[pos] && state != static_cast<uint32_t>(State::kFree) &&
        state != static_cast<uint32_t>(State::kDeleted)) {
      return loss(absl::StrFormat("position %u is in state %u and in no bucket", pos, state));
    }
  }
  std::vector<bool> ext_free(ext, false);
  const uint32_t etop = t.ext_free_top.load(std::memory_order_relaxed);
  if (etop > ext) return loss(absl::StrFormat("overflow free stack of %u buckets", etop));
  for (uint32_t i = 0; i < etop; ++i) {
    const uint32_t index = ExtFreeStack(t)[i];
    if (index < nb || index >= nb + ext || ext_free[index - nb] || linked[index - nb]) {
      return loss(
          absl::StrFormat("overflow free stack entry %u is bucket %u (linked, a repeat "
                          "or out of range)",
                          i, index));
    }
    ext_free[index - nb] = true;
  }
  for (uint32_t e = 0; e < ext; ++e) {
    if (!ext_free[e] && !linked[e]) {
      return loss(absl::StrFormat("overflow bucket %u is neither linked nor free", nb + e));
    }
  }
  return absl::OkStatus();
}

absl::Status Verify(TableLayout& t) {
  WriteScope scope(t);
  if (!scope.ok()) return scope.status();
  return Check(t);
}

absl::StatusOr<size_t> CheckedSize(const hash::Params& params) {
  const absl::string_view name = params.name;
  if (absl::Status s = CheckNameLength("hash", name, hash::kMaxNameLength); !s.ok()) return s;
  if (Printable(name) != name) return Invalid(name, "the name has unprintable characters");
  if ((params.flags & ~kAllFlags) != 0) {
    return Invalid(name, absl::StrFormat("unknown flags 0x%x", params.flags & ~kAllFlags));
  }
  if ((params.flags & hash::kLockFreeReaders) && !(params.flags & hash::kNoFreeOnDelete)) {
    return Invalid(name,
                   "kLockFreeReaders needs kNoFreeOnDelete: a reader may still be reading a "
                   "deleted key's position until FreeKeyWithPosition");
  }
  if (params.entries == 0 || params.entries > hash::kMaxEntries) {
    return Invalid(
        name, absl::StrFormat("entries %u is not in 1..%u", params.entries, hash::kMaxEntries));
  }
  if (params.key_length == 0 || params.key_length > hash::kMaxKeyLength) {
    return Invalid(name, absl::StrFormat("key length %u is not in 1..%u", params.key_length,
                                         hash::kMaxKeyLength));
  }
  if (params.function.empty() || params.function.size() > hash::kMaxFunctionNameLength) {
    return Invalid(name, absl::StrFormat("function name \"%s\" must be 1 to %u characters",
                                         Printable(params.function.substr(0, 80)),
                                         hash::kMaxFunctionNameLength));
  }
  return GeometryOf(params.entries, params.key_length, params.flags).total_size;
}

}  // namespace keel::hash_internal

namespace keel::hash {

using hash_internal::FunctionId;
using hash_internal::TableLayout;

absl::Status RegisterFunction(absl::string_view name, Function function) {
  if (name.empty() || name.size() > kMaxFunctionNameLength || Printable(name) != name) {
    return absl::InvalidArgumentError(
        absl::StrFormat("hash function name \"%s\" must be 1 to %u printable characters",
                        Printable(name.substr(0, 80)), kMaxFunctionNameLength));
  }
  if (hash_internal::IsBuiltIn(name)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("hash function \"%s\" is built in and cannot be registered", name));
  }
  if (function == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("hash function \"%s\": the function is null", name));
  }
  hash_internal::Registry& r = hash_internal::Functions();
  absl::MutexLock lock(&r.mu);
  auto [it, inserted] = r.functions.emplace(std::string(name), function);
  if (!inserted && it->second != function) {
    return absl::AlreadyExistsError(
        absl::StrFormat("hash function \"%s\" is already registered with another function", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> MemorySize(const Params& params) {
  return hash_internal::CheckedSize(params);
}

absl::StatusOr<Table> Init(void* mem, const Params& params) {
  absl::StatusOr<size_t> size = hash_internal::CheckedSize(params);
  if (!size.ok()) return size.status();
  const absl::string_view name = params.name;
  FunctionId id = FunctionId::kUser;
  Function user = nullptr;
  if (params.function == "crc32c") {
    id = FunctionId::kCrc32c;
  } else if (params.function == "jhash") {
    id = FunctionId::kJhash;
  } else if ((user = hash_internal::Registered(params.function)) == nullptr) {
    return absl::NotFoundError(absl::StrFormat(
        "hash \"%s\": function \"%s\" is not built in (crc32c, jhash) nor registered in this "
        "process (RegisterFunction)",
        name, Printable(params.function)));
  }
  if (mem == nullptr || reinterpret_cast<uintptr_t>(mem) % alignof(TableLayout) != 0) {
    return hash_internal::Invalid(
        name, absl::StrFormat("memory %p is not %u-byte aligned", mem, alignof(TableLayout)));
  }
  const hash_internal::Geometry g =
      hash_internal::GeometryOf(params.entries, params.key_length, params.flags);
  std::memset(mem, 0, sizeof(TableLayout));
  auto* t = static_cast<TableLayout*>(mem);
  t->layout_version = hash_internal::kLayoutVersion;
  t->flags = params.flags;
  t->entries = params.entries;
  t->key_length = params.key_length;
  t->key_stride = g.key_stride;
  t->num_buckets = g.num_buckets;
  t->bucket_mask = g.num_buckets - 1;
  t->ext_buckets = g.ext_buckets;
  t->function_id = static_cast<uint32_t>(id);
  t->init_value = params.init_value;
  t->buckets_offset = g.buckets_offset;
  t->keys_offset = g.keys_offset;
  t->free_offset = g.free_offset;
  t->ext_free_offset = g.ext_free_offset;
  t->states_offset = g.states_offset;
  t->total_size = g.total_size;
  CopyName(t->name, name);
  CopyName(t->function, params.function);
  hash_internal::Probe(id, user, params.key_length, params.init_value, t->probe_values);
  if (absl::Status s = InitRobustMutex(&t->lock, "hash table lock"); !s.ok()) return s;
  hash_internal::Clean(*t);
  // The magic last: a table is a table once whole.
  t->magic = hash_internal::kHashMagic;
  Table table;
  table.t_ = t;
  table.function_ = user;
  table.function_id_ = static_cast<uint32_t>(id);
  return table;
}

namespace {

// Validates the header at `mem` (untrusted: it comes from shared memory).
absl::StatusOr<TableLayout*> Header(void* mem) {
  auto* t = static_cast<TableLayout*>(mem);
  if (t == nullptr || reinterpret_cast<uintptr_t>(t) % alignof(TableLayout) != 0 ||
      t->magic != hash_internal::kHashMagic) {
    return absl::FailedPreconditionError(absl::StrFormat("%p holds no hash table", mem));
  }
  const std::string name = Printable(NameOf(t->name));
  if (t->layout_version != hash_internal::kLayoutVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("hash \"%s\": layout version %u, this process has hash layout version %u",
                        name, t->layout_version, hash_internal::kLayoutVersion));
  }
  const hash_internal::Geometry g = hash_internal::GeometryOf(t->entries, t->key_length, t->flags);
  if (t->entries == 0 || t->entries > kMaxEntries || t->key_length == 0 ||
      t->key_length > kMaxKeyLength || t->num_buckets != g.num_buckets ||
      t->bucket_mask != g.num_buckets - 1 || t->ext_buckets != g.ext_buckets ||
      t->key_stride != g.key_stride || t->buckets_offset != g.buckets_offset ||
      t->keys_offset != g.keys_offset || t->free_offset != g.free_offset ||
      t->ext_free_offset != g.ext_free_offset || t->states_offset != g.states_offset ||
      t->total_size != g.total_size || t->function_id > static_cast<uint32_t>(FunctionId::kUser)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "hash \"%s\": the header is damaged (entries %u, key length %u, buckets %u)", name,
        t->entries, t->key_length, t->num_buckets));
  }
  return t;
}

}  // namespace

absl::StatusOr<Table> AttachHashesOnly(void* mem) {
  absl::StatusOr<TableLayout*> t = Header(mem);
  if (!t.ok()) return t.status();
  Table table;
  table.t_ = *t;
  return table;
}

absl::StatusOr<Table> Attach(void* mem) {
  absl::StatusOr<TableLayout*> t = Header(mem);
  if (!t.ok()) return t.status();
  const std::string name = Printable(NameOf((*t)->name));
  const std::string function(NameOf((*t)->function));
  const auto id = static_cast<FunctionId>((*t)->function_id);
  Function user = nullptr;
  if (id == FunctionId::kUser) {
    user = hash_internal::Registered(function);
    if (user == nullptr) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "hash \"%s\": function \"%s\" is not registered in this process (RegisterFunction); "
          "its creator's value on probe 0 is %08x; LookupHashesOnly gives the *WithHash calls",
          name, Printable(function), (*t)->probe_values[0]));
    }
  }
  uint32_t values[hash_internal::kProbes];
  hash_internal::Probe(id, user, (*t)->key_length, (*t)->init_value, values);
  for (int k = 0; k < hash_internal::kProbes; ++k) {
    if (values[k] != (*t)->probe_values[k]) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "hash \"%s\": function \"%s\" computes %08x on probe %d in this process, %08x in the "
          "table's creator; LookupHashesOnly gives the *WithHash calls",
          name, Printable(function), values[k], k, (*t)->probe_values[k]));
    }
  }
  Table table;
  table.t_ = *t;
  table.function_ = user;
  table.function_id_ = static_cast<uint32_t>(id);
  return table;
}

int32_t Table::AddLocked(const void* key, uint32_t hash, uint64_t data) const {
  hash_internal::WriteScope scope(*t_);
  if (!scope.ok()) return kInvalid;
  return hash_internal::AddExclusive(*t_, key, hash, data);
}

int32_t Table::DeleteLocked(const void* key, uint32_t hash) const {
  hash_internal::WriteScope scope(*t_);
  if (!scope.ok()) return kInvalid;
  return hash_internal::DeleteExclusive(*t_, key, hash);
}

int32_t Table::FreeKeyWithPosition(int32_t position) const {
  return hash_internal::FreePosition(*t_, position);
}

void Table::Reset() const { hash_internal::Reset(*t_); }

uint64_t Table::Bulk(const void* const* keys, const uint32_t* hashes, unsigned n,
                     int32_t* positions, uint64_t* data) const {
  if (n > kMaxBulk || (hashes == nullptr && !CanHash())) {
    if (positions != nullptr) std::fill(positions, positions + n, kInvalid);
    return 0;
  }
  const TableLayout& t = *t_;
  uint64_t hits = 0;
  const hash_internal::Bucket* buckets = hash_internal::Buckets(t);
  uint32_t h[kMaxBulk];
  uint32_t candidate[kMaxBulk];
  // A software pipeline, kAhead keys apart: key i's bucket is fetched while key i-kAhead
  // has its tags matched and its key fetched, and key i-2*kAhead is compared, so bucket
  // and key lines are in flight together all along.
  constexpr unsigned kAhead = 8;
  for (unsigned i = 0; i < n + 2 * kAhead; ++i) {
    if (i < n) {
      h[i] = hashes != nullptr ? hashes[i] : HashOf(keys[i]);
      hash_internal::Prefetch(&buckets[hash_internal::PrimaryBucket(t, h[i])]);
    }
    if (i >= kAhead && i - kAhead < n) {
      // The position in the first slot whose tag matches (0: none, or an empty slot), its
      // key on its way. No branch on the data: a miss costs one more line, position 0's.
      const unsigned j = i - kAhead;
      const hash_internal::Bucket& b = buckets[hash_internal::PrimaryBucket(t, h[j])];
      const uint32_t m = hash_internal::MatchTags(b, hash_internal::TagOf(h[j]));
      // A1 (lookup.h).
      const uint32_t s =
          m != 0 ? b.slots[__builtin_ctz(m) >> 1].load(std::memory_order_acquire) : 0;
      candidate[j] = s;
      const char* e = reinterpret_cast<const char*>(hash_internal::Entry(t, s != 0 ? s - 1 : 0));
      hash_internal::Prefetch(e);
      if (t.key_stride > 64) hash_internal::Prefetch(e + t.key_stride - 1);
    }
    if (i >= 2 * kAhead && i - 2 * kAhead < n) {
      // Compare; anything else (another candidate, the alternative bucket, the chain, a
      // retry) goes the single-key way.
      const unsigned k = i - 2 * kAhead;
      uint64_t* d = data != nullptr ? &data[k] : nullptr;
      int32_t pos = -1;
      if (candidate[k] != 0) {
        const hash_internal::KeyEntry* e = hash_internal::Entry(t, candidate[k] - 1);
        if (hash_internal::KeyEqual(hash_internal::KeyOf(e), keys[k], t.key_length)) {
          pos = static_cast<int32_t>(candidate[k] - 1);
          if (d != nullptr) *d = e->data.load(std::memory_order_acquire);
        }
      }
      if (pos < 0) pos = hash_internal::Find(t, keys[k], h[k], d);
      hits |= uint64_t{pos >= 0} << k;
      if (positions != nullptr) positions[k] = pos >= 0 ? pos : kNotFound;
    }
  }
  return hits;
}

const void* Table::GetKeyWithPosition(int32_t position) const {
  if (position < 0 || static_cast<uint32_t>(position) >= t_->entries) return nullptr;
  const uint32_t pos = static_cast<uint32_t>(position);
  // Acquire: pairs with SetState's release of kLive after the key's publication.
  if (hash_internal::StateOf(*t_, pos, std::memory_order_acquire) != hash_internal::State::kLive) {
    return nullptr;
  }
  return hash_internal::KeyOf(hash_internal::Entry(*t_, pos));
}

int32_t Table::Iterate(const void** key, uint64_t* data, uint32_t* next) const {
  for (uint32_t pos = *next; pos < t_->entries; ++pos) {
    // Acquire: as GetKeyWithPosition.
    if (hash_internal::StateOf(*t_, pos, std::memory_order_acquire) !=
        hash_internal::State::kLive) {
      continue;
    }
    const hash_internal::KeyEntry* e = hash_internal::Entry(*t_, pos);
    if (key != nullptr) *key = hash_internal::KeyOf(e);
    if (data != nullptr) *data = e->data.load(std::memory_order_acquire);
    *next = pos + 1;
    return static_cast<int32_t>(pos);
  }
  *next = t_->entries;
  return kNotFound;
}

uint32_t Table::Count() const {
  // Relaxed: a snapshot.
  return t_->count.load(std::memory_order_relaxed);
}

uint32_t Table::Hash(const void* key) const {
  if (!CanHash()) {
    KEEL_LOG(Error, "hash", "table \"%s\": Hash() without the table's function in this process",
             Printable(NameOf(t_->name)));
    return 0;
  }
  return HashOf(key);
}

absl::Status Table::Verify() const { return hash_internal::Verify(*t_); }

std::string Table::name() const { return std::string(NameOf(t_->name)); }
std::string Table::function() const { return std::string(NameOf(t_->function)); }
uint32_t Table::entries() const { return t_->entries; }
uint32_t Table::key_length() const { return t_->key_length; }
uint32_t Table::init_value() const { return t_->init_value; }
uint32_t Table::flags() const { return t_->flags; }
size_t Table::memory_size() const { return t_->total_size; }

std::vector<std::string> FlagNames(uint32_t flags) {
  static constexpr struct {
    uint32_t flag;
    const char* name;
  } kNames[] = {{kMultiWriter, "multi_writer"},
                {kLockFreeReaders, "lock_free_readers"},
                {kExtendableBuckets, "extendable_buckets"},
                {kNoFreeOnDelete, "no_free_on_delete"}};
  std::vector<std::string> names;
  for (const auto& n : kNames) {
    if (flags & n.flag) names.push_back(n.name);
    flags &= ~n.flag;
  }
  if (flags != 0) names.push_back(absl::StrFormat("0x%x", flags));
  return names;
}

}  // namespace keel::hash
