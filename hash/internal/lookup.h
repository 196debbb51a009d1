// The lookup fast path, inline: tag matching, key comparison by length, single and bulk
// lookups. Included by hash.h; namespace keel::hash_internal but for Table's members.
//
// Readers take no lock. A writer that moves a key (displacement, chain compaction)
// first publishes it at its new place, then bumps change_count (C0, release), then
// clears the old place (release). A lookup reads change_count (C1, acquire) before it
// searches and again (C2) after a miss; when it changed, it searches again:
//   Reader: C1 -> search P (the key already cleared there) -> search Q (not yet there)?
//   Impossible without a change: the clear in P follows C0, and C0 follows the
//   key's publication in Q. If C1 read the count before C0, C2 reads it after (the
//   clear it saw in P follows C0), so they differ and the reader retries; if C1 read
//   it after C0, the key is visible in Q.
// A dead writer leaves change_count alone, so no reader waits for it. A hit needs no
// check: the key compared equal at a published position.
#ifndef KEEL_HASH_INTERNAL_LOOKUP_H_
#define KEEL_HASH_INTERNAL_LOOKUP_H_

#include <emmintrin.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "absl/base/attributes.h"
#include "hash/internal/layout.h"

namespace keel::hash_internal {

inline bool Equal16(const void* a, const void* b) {
  const __m128i x = _mm_loadu_si128(static_cast<const __m128i*>(a));
  const __m128i y = _mm_loadu_si128(static_cast<const __m128i*>(b));
  return _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) == 0xffff;
}

// `p`, its provenance hidden from the compiler (no instruction): inlined into a caller
// whose key is, say, a uint64_t, the branches for other lengths must not be read as
// reads past that object (-Warray-bounds), since the table's length decides.
inline const void* Opaque(const void* p) {
  asm("" : "+r"(p));
  return p;
}

// Compares two keys of `length` bytes: 16 bytes (the usual flow key) in one vector
// compare, 8 in one word, other multiples of 16 vector by vector, the rest by memcmp.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool KeyEqual(const void* a, const void* b, uint32_t length) {
  a = Opaque(a);
  b = Opaque(b);
  if (length == 16) return Equal16(a, b);
  if (length == 8) {
    uint64_t x, y;
    std::memcpy(&x, a, 8);
    std::memcpy(&y, b, 8);
    return x == y;
  }
  if (length % 16 == 0) {
    const char* p = static_cast<const char*>(a);
    const char* q = static_cast<const char*>(b);
    for (uint32_t off = 0; off < length; off += 16) {
      if (!Equal16(p + off, q + off)) return false;
    }
    return true;
  }
  return std::memcmp(a, b, length) == 0;
}

// Bit 2*i set when slot i's tag is `tag` (slots that are empty may match: the caller
// checks the position).
inline uint32_t MatchTags(const Bucket& b, uint16_t tag) {
  // Relaxed: two atomic loads of the tag words (one 16-byte load of them would be a
  // non-atomic read racing the writers' stores, which TSan reports). A torn view between
  // the two only makes a slot match or miss that the position check and the retry (C2)
  // settle.
  const __m128i tags =
      _mm_set_epi64x(static_cast<long long>(b.tags[1].load(std::memory_order_relaxed)),
                     static_cast<long long>(b.tags[0].load(std::memory_order_relaxed)));
  const __m128i want = _mm_set1_epi16(static_cast<short>(tag));
  return static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi16(tags, want))) & 0x5555u;
}

// The slot of bucket `b` that holds `key`, or -1; its position into *position.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int SearchSlot(const TableLayout& t, const Bucket& b,
                                                   uint16_t tag, const void* key,
                                                   uint32_t* position) {
  for (uint32_t m = MatchTags(b, tag); m != 0; m &= m - 1) {
    const int slot = __builtin_ctz(m) >> 1;
    // A1: acquire. Pairs with the writer's release store of the slot (P0 in write.h):
    // the key, hash and data at the position are visible.
    const uint32_t s = b.slots[slot].load(std::memory_order_acquire);
    if (s != 0 && KeyEqual(KeyOf(Entry(t, s - 1)), key, t.key_length)) {
      *position = s - 1;
      return slot;
    }
  }
  return -1;
}

// The position of `key` in bucket `b`, or -1; *data when found (and data not null).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t SearchBucket(const TableLayout& t, const Bucket& b,
                                                         uint16_t tag, const void* key,
                                                         uint64_t* data) {
  uint32_t position;
  if (SearchSlot(t, b, tag, key, &position) < 0) return -1;
  // Acquire: pairs with the release store of an Add replacing the data.
  if (data != nullptr) *data = Entry(t, position)->data.load(std::memory_order_acquire);
  return static_cast<int32_t>(position);
}

// The rest of Find after a miss in the primary bucket (out of line: most lookups end
// in the primary): the alternative when P has keys away, P's overflow chain, and the
// retry while writers move keys (C2). `before`: the count as C1 read it.
ABSL_ATTRIBUTE_NOINLINE inline int32_t FindBeyondPrimary(const TableLayout& t, const void* key,
                                                         uint32_t hash, uint64_t* data,
                                                         uint32_t before) {
  const Bucket* buckets = Buckets(t);
  const uint32_t p = PrimaryBucket(t, hash);
  const uint16_t tag = TagOf(hash);
  for (;;) {
    const Bucket& b = buckets[p];
    // Acquire: pairs with the writer's release increment of `away` before it publishes a
    // key in its alternative bucket.
    if (b.away.load(std::memory_order_acquire) != 0) {
      const int32_t pos = SearchBucket(t, buckets[Alternative(t, p, tag)], tag, key, data);
      if (pos >= 0) return pos;
    }
    // Acquire: pairs with the release store that links an overflow bucket after filling
    // its first slot. The bound stops a walk on a chain a dead writer left looped
    // (repair fixes it).
    uint32_t steps = t.ext_buckets;
    for (uint32_t n = b.next.load(std::memory_order_acquire); n != 0 && steps-- != 0;
         n = buckets[n - 1].next.load(std::memory_order_acquire)) {
      const int32_t pos = SearchBucket(t, buckets[n - 1], tag, key, data);
      if (pos >= 0) return pos;
    }
    // C2: the searches above stay before this load.
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint32_t after = t.change_count.load(std::memory_order_acquire);
    if (after == before) return -1;
    before = after;
    const int32_t pos = SearchBucket(t, b, tag, key, data);
    if (pos >= 0) return pos;
  }
}

// The full lookup of a key with its hash: P, then (FindBeyondPrimary) its alternative
// when P has keys away, then P's overflow chain; retried while writers move keys (C1,
// C2).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Find(const TableLayout& t, const void* key,
                                                 uint32_t hash, uint64_t* data) {
  // C1: acquire. Pairs with C0: a key moved before this bump is visible at its new place.
  const uint32_t before = t.change_count.load(std::memory_order_acquire);
  const Bucket& b = Buckets(t)[PrimaryBucket(t, hash)];
  const int32_t pos = SearchBucket(t, b, TagOf(hash), key, data);
  if (pos >= 0) return pos;
  // Most misses end here: no key away, no chain, no writer moved a key meanwhile (C2).
  // Acquire: as in FindBeyondPrimary.
  if ((b.away.load(std::memory_order_acquire) | b.next.load(std::memory_order_acquire)) == 0) {
    std::atomic_thread_fence(std::memory_order_acquire);
    if (t.change_count.load(std::memory_order_acquire) == before) return -1;
  }
  return FindBeyondPrimary(t, key, hash, data, before);
}

inline void Prefetch(const void* p) { __builtin_prefetch(p, 0, 3); }

}  // namespace keel::hash_internal

#endif  // KEEL_HASH_INTERNAL_LOOKUP_H_
