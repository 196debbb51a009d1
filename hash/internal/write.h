// The write fast paths, inline: bucket stores, the writer's search, Add and Delete for a
// writer with exclusive access (the one writer of a table without kMultiWriter, or the
// holder of its lock). Included by hash.h; the slow parts (displacement, overflow
// chains, repair) are in core.cc.
//
// Crash order (see core.cc's top): a writer may die between any two stores; the buckets
// never lose a key that was present, and repair rebuilds the rest.
#ifndef KEEL_HASH_INTERNAL_WRITE_H_
#define KEEL_HASH_INTERNAL_WRITE_H_

#include <emmintrin.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/base/attributes.h"
#include "base/kill_point.h"
#include "hash/internal/layout.h"
#include "hash/internal/lookup.h"

namespace keel::hash_internal {

// Results, as hash::kNotFound and hash::kNoSpace.
inline constexpr int32_t kWriteNotFound = -ENOENT;
inline constexpr int32_t kWriteNoSpace = -ENOSPC;

// Out of line (core.cc).
void Repair(TableLayout& t);
bool PlaceSlow(TableLayout& t, uint32_t hash, uint32_t position);
void CompactChain(TableLayout& t, uint32_t p, uint32_t hole, int hole_slot);

inline Bucket& BucketAt(TableLayout& t, uint32_t index) { return Buckets(t)[index]; }

inline void SetTag(Bucket& b, int slot, uint16_t tag) {
  const int shift = 16 * (slot % 4);
  // Relaxed: only the writer (the lock holder or the one writer) writes tags; readers
  // treat them as hints (MatchTags).
  const uint64_t w = b.tags[slot / 4].load(std::memory_order_relaxed);
  b.tags[slot / 4].store((w & ~(uint64_t{0xffff} << shift)) | (uint64_t{tag} << shift),
                         std::memory_order_relaxed);
}

// Publishes `position` in `slot`, its entry already written.
inline void Publish(Bucket& b, int slot, uint16_t tag, uint32_t position) {
  SetTag(b, slot, tag);
  // P0: release. Pairs with A1 (lookup.h): a reader that sees the position sees the
  // key, hash and data written before, and the tag.
  b.slots[slot].store(position + 1, std::memory_order_release);
}

inline void Clear(Bucket& b, int slot) {
  // Release: follows C0 for a move (see Move) and whatever this writer did before.
  b.slots[slot].store(0, std::memory_order_release);
}

// The first empty slot of `b`, or -1: the 8 positions compared with 0 at once, so
// which slot it is costs no mispredicted branch. (Plain vector loads of the writer's own
// words: only the writer stores slots.)
inline int EmptySlot(const Bucket& b) {
  static_assert(sizeof(b.slots) == 32 && alignof(Bucket) >= 16);
  const __m128i* p = reinterpret_cast<const __m128i*>(&b.slots[0]);
  const __m128i zero = _mm_setzero_si128();
  const int mask = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_load_si128(p), zero))) |
                   _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_load_si128(p + 1), zero)))
                       << 4;
  return mask != 0 ? __builtin_ctz(mask) : -1;
}

inline uint32_t PositionAt(const Bucket& b, int slot) {
  // Relaxed: the writer reads its own stores. Position + 1.
  return b.slots[slot].load(std::memory_order_relaxed);
}

// Adds `delta` to a word only the writer changes: a load and a store, not a locked
// read-modify-write, which would fence and keep one write's cache misses from
// overlapping the next one's. Release: readers that load the word (`away`,
// change_count) see what this writer stored before.
inline void AddWriterOnly(std::atomic<uint32_t>& word, int32_t delta) {
  word.store(word.load(std::memory_order_relaxed) + static_cast<uint32_t>(delta),
             std::memory_order_release);
}

inline void BumpChangeCount(TableLayout& t) {
  // C0: release. Pairs with C1/C2 (lookup.h): a reader that reads the new count sees
  // the key published at its new place before it.
  AddWriterOnly(t.change_count, 1);
}

struct Location {
  uint32_t bucket = 0;  // index among main and overflow buckets
  int slot = -1;
};

// Where `key` is (a writer's search): its position, or -1.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Locate(TableLayout& t, const void* key, uint32_t hash,
                                                   Location* where) {
  const uint32_t p = PrimaryBucket(t, hash);
  const uint16_t tag = TagOf(hash);
  uint32_t position;
  if ((where->slot = SearchSlot(t, BucketAt(t, p), tag, key, &position)) >= 0) {
    where->bucket = p;
    return static_cast<int32_t>(position);
  }
  if (BucketAt(t, p).away.load(std::memory_order_relaxed) != 0) {
    const uint32_t q = Alternative(t, p, tag);
    if ((where->slot = SearchSlot(t, BucketAt(t, q), tag, key, &position)) >= 0) {
      where->bucket = q;
      return static_cast<int32_t>(position);
    }
  }
  uint32_t steps = t.ext_buckets;
  for (uint32_t n = BucketAt(t, p).next.load(std::memory_order_relaxed); n != 0 && steps-- != 0;
       n = BucketAt(t, n - 1).next.load(std::memory_order_relaxed)) {
    if ((where->slot = SearchSlot(t, BucketAt(t, n - 1), tag, key, &position)) >= 0) {
      where->bucket = n - 1;
      return static_cast<int32_t>(position);
    }
  }
  return -1;
}

inline void PushFree(TableLayout& t, uint32_t position) {
  SetState(t, position, State::kFree);
  const uint32_t top = t.free_top.load(std::memory_order_relaxed);
  FreeStack(t)[top] = position;
  // Grow after it arrives: a kill before leaves it off the stack (repair puts it back).
  t.free_top.store(top + 1, std::memory_order_relaxed);
}

// Puts `position` (its entry written) in one of its buckets: the primary, else the
// alternative, else PlaceSlow's displacement or chain. False when there is no room.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool Place(TableLayout& t, uint32_t hash, uint32_t position) {
  const uint32_t p = PrimaryBucket(t, hash);
  const uint16_t tag = TagOf(hash);
  int slot = EmptySlot(BucketAt(t, p));
  if (slot >= 0) {
    Publish(BucketAt(t, p), slot, tag, position);
    return true;
  }
  const uint32_t q = Alternative(t, p, tag);
  slot = EmptySlot(BucketAt(t, q));
  if (slot >= 0) {
    // Counted before it shows (see Move in core.cc).
    AddWriterOnly(BucketAt(t, p).away, 1);
    Publish(BucketAt(t, q), slot, tag, position);
    return true;
  }
  return PlaceSlow(t, hash, position);
}

// Tables without kMultiWriter have one writer at a time (the caller's contract, as
// DPDK's): `writing` is set for the length of each write, so a write that finds it set
// follows one whose writer died, and repairs first. Plain stores: a process's stores
// reach memory in program order on x86 (kill order), and the signal fences keep the
// compiler from moving the write's stores across them.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void BeginSingleWrite(TableLayout& t) {
  // Relaxed: only the one writer reads and writes `writing`.
  if (__builtin_expect(t.writing.load(std::memory_order_relaxed) != 0, 0)) Repair(t);
  t.writing.store(1, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void EndSingleWrite(TableLayout& t) {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t.writing.store(0, std::memory_order_relaxed);
}

// Add (hash::Table::AddWithHash) with the write access held.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t AddExclusive(TableLayout& t, const void* key,
                                                         uint32_t hash, uint64_t data) {
  Location where;
  const int32_t found = Locate(t, key, hash, &where);
  if (found >= 0) {
    // Release: pairs with the reader's acquire of the data.
    Entry(t, found)->data.store(data, std::memory_order_release);
    return found;
  }
  const uint32_t top = t.free_top.load(std::memory_order_relaxed);
  if (top == 0) return kWriteNoSpace;
  const uint32_t position = FreeStack(t)[top - 1];
  // Shrink first: a kill after it leaves the position off the stack and unreferenced;
  // repair finds it free (or reserved) and puts it back.
  t.free_top.store(top - 1, std::memory_order_relaxed);
  KeyEntry* e = Entry(t, position);
  SetState(t, position, State::kReserved);
  KillPointForTest("hash.add.popped");
  std::memcpy(KeyOf(e), key, t.key_length);
  e->hash.store(hash, std::memory_order_relaxed);
  e->data.store(data, std::memory_order_relaxed);
  if (!Place(t, hash, position)) {
    PushFree(t, position);
    return kWriteNoSpace;
  }
  // A kill here: the key is in the table; repair marks it live and counts it.
  KillPointForTest("hash.add.placed");
  AddWriterOnly(t.count, 1);
  SetState(t, position, State::kLive);
  return static_cast<int32_t>(position);
}

// Delete (hash::Table::DeleteWithHash) with the write access held.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t DeleteExclusive(TableLayout& t, const void* key,
                                                            uint32_t hash) {
  Location where;
  const int32_t found = Locate(t, key, hash, &where);
  if (found < 0) return kWriteNotFound;
  const uint32_t p = PrimaryBucket(t, hash);
  Clear(BucketAt(t, where.bucket), where.slot);
  // A kill here: the key is gone; repair frees (or keeps deleted) its position.
  KillPointForTest("hash.delete.cleared");
  if (__builtin_expect(where.bucket >= t.num_buckets, 0)) {
    CompactChain(t, p, where.bucket, where.slot);
  } else if (where.bucket != p) {
    AddWriterOnly(BucketAt(t, p).away, -1);
  }
  AddWriterOnly(t.count, -1);
  if (t.flags & kNoFreeOnDeleteFlag) {
    SetState(t, static_cast<uint32_t>(found), State::kDeleted);
  } else {
    PushFree(t, static_cast<uint32_t>(found));
  }
  return found;
}

}  // namespace keel::hash_internal

#endif  // KEEL_HASH_INTERNAL_WRITE_H_
