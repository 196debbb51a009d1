// The hash table as it lives in shared memory (or in memory the caller provides).
//
// Shared-memory rules (STYLE.md): standard layout, trivially copyable apart from the
// robust mutex, always-lock-free 32/64-bit atomics, no pointers (offsets from the
// table's start), kLayoutVersion checked at Attach. Lookups read the first line of the
// header and the buckets; writers keep their own state on other lines.
//
// [TableLayout][buckets: num_buckets main, then ext_buckets overflow][keys: entries
//  KeyEntry of key_stride bytes][free positions: entries uint32][free overflow
//  buckets: ext_buckets uint32][position states: 2 bits each]
//
// A key's hash h picks its primary bucket P = h & bucket_mask and its tag h >> 16; its
// alternative bucket is Alternative(P, tag) (and P = Alternative(alternative, tag)). A
// key lives in P, in its alternative, or in an overflow bucket of P's chain. Each main
// bucket counts the keys of which it is the primary bucket that live in their
// alternative (`away`): a lookup missing in P reads the alternative only when `away` is
// not 0, so most misses read one line (Cuckoo++'s filter, exact).
#ifndef KEEL_HASH_INTERNAL_LAYOUT_H_
#define KEEL_HASH_INTERNAL_LAYOUT_H_

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace keel::hash_internal {

// Bump on any change to the structs in this file.
inline constexpr uint32_t kLayoutVersion = 1;  // unreleased: no older layout to refuse
inline constexpr uint64_t kHashMagic = 0x687361686c65656bULL;  // "keelhash"
inline constexpr int kNameSize = 64;
inline constexpr int kFunctionNameSize = 32;
inline constexpr int kBucketEntries = 8;
// Values of the creator's function on fixed probe keys, checked at Attach.
inline constexpr int kProbes = 4;

enum class FunctionId : uint32_t { kCrc32c = 0, kJhash = 1, kUser = 2 };

// hash::kNoFreeOnDelete, for the inline write paths (write.h).
inline constexpr uint32_t kNoFreeOnDeleteFlag = 1u << 3;

// One cache line: the tags of its 8 slots, their positions, the overflow chain.
struct alignas(64) Bucket {
  // Tags of slots 0..7, 16 bits each (slot i in bits 16*(i%4) of word i/4). A hint:
  // lookups compare 8 at once, then confirm with the key itself.
  std::atomic<uint64_t> tags[2];
  // Position + 1 of the key in each slot; 0 = empty.
  std::atomic<uint32_t> slots[kBucketEntries];
  // Main buckets: keys whose primary bucket this is that live in their alternative.
  std::atomic<uint32_t> away;
  // Index + 1 of the next overflow bucket of the chain (main or overflow buckets); 0 =
  // none.
  std::atomic<uint32_t> next;
  uint32_t reserved[2];
};
static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

// Position states, kept with each key: what a repair needs to know of a position no
// bucket references.
enum class State : uint32_t {
  kFree = 0,      // on the free stack (or about to be, after a kill: repair puts it)
  kReserved = 1,  // taken by an Add that has not published it yet
  kLive = 2,      // in a bucket (or being removed from one)
  kDeleted = 3,   // deleted, waiting for FreeKeyWithPosition (kNoFreeOnDelete)
};

// A key's record at its position; the key's bytes follow (key_stride in all). Written
// by Add before the position is published, not by Delete: a delete writes no line of
// the key store.
struct KeyEntry {
  std::atomic<uint64_t> data;
  // The key's full hash: no call but hashing a new key needs the function.
  std::atomic<uint32_t> hash;
  uint32_t reserved;
};
static_assert(sizeof(KeyEntry) == 16);

// Position states, 2 bits each, 16 positions to a word of their own array (a quarter
// byte per position, so the writes of a delete stay in cache): what a repair needs to
// know of a position no bucket references, and what GetKeyWithPosition and Iterate
// read.
inline constexpr int kStatesPerWord = 16;

struct alignas(64) TableLayout {
  // --- Line 0..: fixed at Init, read by every call ---
  uint64_t magic;
  uint32_t layout_version;
  uint32_t flags;
  uint32_t entries;
  uint32_t key_length;
  uint32_t key_stride;
  uint32_t num_buckets;  // main buckets, a power of two >= 2
  uint32_t bucket_mask;
  uint32_t ext_buckets;  // overflow buckets (kExtendableBuckets), else 0
  uint32_t function_id;  // FunctionId
  uint32_t init_value;
  uint64_t buckets_offset;
  uint64_t keys_offset;
  uint64_t free_offset;
  uint64_t ext_free_offset;
  uint64_t states_offset;
  uint64_t total_size;
  char name[kNameSize];
  char function[kFunctionNameSize];
  uint32_t probe_values[kProbes];

  // --- Bumped by a writer before it removes a key from the place it moved it from
  // (displacement, chain compaction, unlinking an overflow bucket): a lookup that
  // missed re-reads it and retries when it changed. Its own line: writers that add
  // without moving leave it alone, so readers keep it cached.
  alignas(64) std::atomic<uint32_t> change_count;

  // --- Writers' line: under `lock` (kMultiWriter), else the one writer's ---
  alignas(64) pthread_mutex_t lock;
  std::atomic<uint32_t> count;     // keys present (read without the lock by Count())
  std::atomic<uint32_t> free_top;  // free positions on the stack
  std::atomic<uint32_t> ext_free_top;
  std::atomic<uint32_t> repairs;  // times a writer's death was repaired
  std::atomic<uint32_t> writing;  // tables without kMultiWriter: 1 during a write
};
static_assert(std::is_standard_layout_v<TableLayout>);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

inline constexpr uint32_t PrimaryBucket(const TableLayout& t, uint32_t hash) {
  return hash & t.bucket_mask;
}
inline constexpr uint16_t TagOf(uint32_t hash) { return static_cast<uint16_t>(hash >> 16); }
// The other bucket of a key with `tag` in `bucket`: an involution, never `bucket`
// itself (the xor's low bit is set and there are at least two buckets).
inline constexpr uint32_t Alternative(const TableLayout& t, uint32_t bucket, uint16_t tag) {
  return (bucket ^ ((uint32_t{tag} * 0x9e3779b1u) | 1u)) & t.bucket_mask;
}

inline Bucket* Buckets(TableLayout& t) {
  return reinterpret_cast<Bucket*>(reinterpret_cast<char*>(&t) + t.buckets_offset);
}
inline const Bucket* Buckets(const TableLayout& t) {
  return reinterpret_cast<const Bucket*>(reinterpret_cast<const char*>(&t) + t.buckets_offset);
}
inline KeyEntry* Entry(TableLayout& t, uint32_t position) {
  return reinterpret_cast<KeyEntry*>(reinterpret_cast<char*>(&t) + t.keys_offset +
                                     size_t{position} * t.key_stride);
}
inline const KeyEntry* Entry(const TableLayout& t, uint32_t position) {
  return reinterpret_cast<const KeyEntry*>(reinterpret_cast<const char*>(&t) + t.keys_offset +
                                           size_t{position} * t.key_stride);
}
inline const void* KeyOf(const KeyEntry* e) { return e + 1; }
inline void* KeyOf(KeyEntry* e) { return e + 1; }
inline uint32_t* FreeStack(TableLayout& t) {
  return reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(&t) + t.free_offset);
}
inline uint32_t* ExtFreeStack(TableLayout& t) {
  return reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(&t) + t.ext_free_offset);
}

inline std::atomic<uint32_t>* States(TableLayout& t) {
  return reinterpret_cast<std::atomic<uint32_t>*>(reinterpret_cast<char*>(&t) + t.states_offset);
}
inline const std::atomic<uint32_t>* States(const TableLayout& t) {
  return reinterpret_cast<const std::atomic<uint32_t>*>(reinterpret_cast<const char*>(&t) +
                                                        t.states_offset);
}
inline State StateOf(const TableLayout& t, uint32_t position, std::memory_order order) {
  const uint32_t word = States(t)[position / kStatesPerWord].load(order);
  return static_cast<State>((word >> (2 * (position % kStatesPerWord))) & 3);
}
// Writers only (the lock holder, or the one writer): a load and a store. Release: pairs
// with the acquire in GetKeyWithPosition and Iterate.
inline void SetState(TableLayout& t, uint32_t position, State state) {
  std::atomic<uint32_t>& w = States(t)[position / kStatesPerWord];
  const int shift = 2 * (position % kStatesPerWord);
  w.store((w.load(std::memory_order_relaxed) & ~(3u << shift)) |
              (static_cast<uint32_t>(state) << shift),
          std::memory_order_release);
}

inline uint16_t TagAt(const Bucket& b, int slot) {
  // Relaxed: a hint; the slot's position (acquire) and the key decide.
  return static_cast<uint16_t>(b.tags[slot / 4].load(std::memory_order_relaxed) >>
                               (16 * (slot % 4)));
}

}  // namespace keel::hash_internal

#endif  // KEEL_HASH_INTERNAL_LAYOUT_H_
