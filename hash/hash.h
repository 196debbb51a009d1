// keel hash: a cuckoo hash table in shared memory, with DPDK's rte_hash semantics, that
// every process of a group and every binary can use.
//
// Keys are fixed-length byte strings; each has a position, stable in [0, entries) while
// the key is present (an index into the caller's own arrays, as in DPDK), and a 64-bit
// value kept beside it. The table stores no pointer: its hash function is stored by
// name ("crc32c", "jhash", or one registered with RegisterFunction in each process) and
// the full hash of every key is kept with it, so a process that cannot compute the
// function still uses the *WithHash calls, iteration and positions.
//
//   keel::hash::Params p;
//   p.name = "flows";
//   p.entries = 1 << 20;
//   p.key_length = 16;
//   keel::hash::Table flows = *keel::hash::Create(p);            // in one process
//   int32_t pos = flows.Add(&key);                               // >= 0, or an error
//   keel::hash::Table same = *keel::hash::Lookup("flows");       // in another process
//   if (same.Lookup(&key) == pos) { ... }
//
// Two targets, one header (this one):
//   //hash:core  the Table class and its fast paths, MemorySize + Init + Attach (a table
//                in memory the caller provides), RegisterFunction. No EAL, no memory
//                component.
//   //hash       adds Create / Lookup / LookupHashesOnly / Free (tables in the group's
//                shared memory, by name) and registers the layout version with the EAL.
//
// Concurrency. With kMultiWriter, writes (Add*, Delete*, FreeKeyWithPosition, Reset,
// Verify) from any threads and processes serialize on the table's robust lock;
// without it, as in DPDK, one write at a time (any thread or process: the caller
// serializes them) and no lock is taken. Either way a writer killed at any instruction
// is repaired by the next write (Verify() checks every invariant). Lookups take no
// lock and never wait for a writer. With kLockFreeReaders they may run while writers
// add, delete and displace keys, and never miss a key present throughout; without it,
// as in DPDK, lookups may run beside each other but not beside writes.
#ifndef KEEL_HASH_HASH_H_
#define KEEL_HASH_HASH_H_

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/version.h"
#include "hash/functions.h"
#include "hash/internal/layout.h"
#include "hash/internal/lookup.h"
#include "hash/internal/write.h"

namespace keel::hash {

inline constexpr Version kVersion = {0, 1, 0};

// Creation flags (DPDK's RTE_HASH_EXTRA_FLAGS_*).
enum Flags : uint32_t {
  // Writes from several threads or processes at once (MULTI_WRITER_ADD): each write
  // takes the table's robust lock (a locked instruction, so a write's cache misses no
  // longer overlap the next one's). Without it writes take no lock and must not overlap.
  kMultiWriter = 1u << 0,
  // Lookups concurrent with writes (RW_CONCURRENCY_LF). Needs kNoFreeOnDelete: a reader
  // may still be reading a deleted key's position.
  kLockFreeReaders = 1u << 1,
  // Overflow buckets (EXT_TABLE): Add never fails for space while Count() < entries.
  // Without them Add can fail with kNoSpace once the cuckoo search finds no room, which
  // with keel's sizing (at least `entries` bucket slots) does not happen below about 90 %
  // of entries for random keys.
  kExtendableBuckets = 1u << 2,
  // Delete leaves the key's position reserved until FreeKeyWithPosition
  // (NO_FREE_ON_DEL), so a reader holding it can finish.
  kNoFreeOnDelete = 1u << 3,
};

// The names of the Flags in `flags` ("multi_writer", "lock_free_readers",
// "extendable_buckets", "no_free_on_delete"), unknown bits in hex: for reports.
std::vector<std::string> FlagNames(uint32_t flags);

inline constexpr uint32_t kMaxKeyLength = 1024;
inline constexpr uint32_t kMaxEntries = 1u << 30;
inline constexpr size_t kMaxNameLength = 63;
inline constexpr size_t kMaxFunctionNameLength = 31;
inline constexpr unsigned kMaxBulk = 64;
// Any NUMA node (memory::kSocketAny).
inline constexpr int kSocketAny = -1;

// Fast-path results: a position >= 0, or one of these negative values (DPDK's).
inline constexpr int32_t kNotFound = -ENOENT;  // the key is not in the table
inline constexpr int32_t kNoSpace = -ENOSPC;   // no free position, or no room found
inline constexpr int32_t kInvalid = -EINVAL;   // a bad argument, or no function to hash

// A hash function: DPDK's rte_hash_function.
using Function = uint32_t (*)(const void* key, uint32_t length, uint32_t init);

// Makes `function` known as `name` in this process, for tables that name it. Tables
// created elsewhere are checked against it at Lookup/Attach. Thread-safe; process-local.
// InvalidArgument: empty name or longer than kMaxFunctionNameLength, a built-in name,
// null function; AlreadyExists: `name` is registered with another function.
absl::Status RegisterFunction(absl::string_view name, Function function);

struct Params {
  absl::string_view name;                 // 1..kMaxNameLength printable characters
  uint32_t entries = 0;                   // positions: 1..kMaxEntries
  uint32_t key_length = 0;                // bytes: 1..kMaxKeyLength
  absl::string_view function = "crc32c";  // "crc32c", "jhash" or a registered name
  uint32_t init_value = 0;                // the hash function's seed
  int socket = kSocketAny;                // Create only
  uint32_t flags = 0;                     // Flags
};

// A process-local handle to a table (cheap to copy): the table's shared memory and this
// process's hash function for it. Default-constructed, it refers to no table.
//
// Fast-path calls never allocate and never return a Status. Lookups are wait-free but
// for retries while writers move keys.
class Table {
 public:
  Table() = default;

  // --- Writes (kMultiWriter: take the table's lock; else one at a time) ---
  // Adds `key` (key_length bytes) with `data`, or, when present, replaces its data.
  // Returns its position, or kNoSpace, or kInvalid (no function in this process: see
  // LookupHashesOnly; or kMultiWriter's lock could not be taken: the error is logged).
  int32_t Add(const void* key, uint64_t data = 0) const;
  // The same with `hash`, which must be the table's function of `key` (Hash()).
  int32_t AddWithHash(const void* key, uint32_t hash, uint64_t data = 0) const;
  // Removes `key`; returns the position it had, or kNotFound. With kNoFreeOnDelete the
  // position stays reserved until FreeKeyWithPosition.
  int32_t Delete(const void* key) const;
  int32_t DeleteWithHash(const void* key, uint32_t hash) const;
  // Returns a deleted key's position to the free ones (kNoFreeOnDelete tables). 0, or
  // kInvalid when `position` is not a deleted, not yet freed position.
  int32_t FreeKeyWithPosition(int32_t position) const;
  // Removes every key. Not concurrent with lookups.
  void Reset() const;

  // --- Lookups (no lock) ---
  // The key's position, or kNotFound (kInvalid: no function; see LookupHashesOnly).
  int32_t Lookup(const void* key) const;
  int32_t LookupWithHash(const void* key, uint32_t hash) const;
  // The same, and the key's data into *data when found.
  int32_t LookupData(const void* key, uint64_t* data) const;
  int32_t LookupWithHashData(const void* key, uint32_t hash, uint64_t* data) const;
  // Up to kMaxBulk keys at once. Returns the hit mask (bit i: keys[i] found);
  // positions[i] is the position or kNotFound (data[i] is written for hits only). More
  // than kMaxBulk keys: returns 0 and every position is kInvalid.
  uint64_t LookupBulk(const void* const* keys, unsigned n, int32_t* positions) const;
  uint64_t LookupBulkWithHash(const void* const* keys, const uint32_t* hashes, unsigned n,
                              int32_t* positions) const;
  uint64_t LookupBulkData(const void* const* keys, unsigned n, uint64_t* data) const;
  uint64_t LookupBulkWithHashData(const void* const* keys, const uint32_t* hashes, unsigned n,
                                  uint64_t* data) const;

  // The key at `position`, or nullptr when no key is there.
  const void* GetKeyWithPosition(int32_t position) const;
  // Iteration in position order: start with *next = 0; each call returns the next
  // present key's position (and its key, data, when asked) or kNotFound at the end.
  int32_t Iterate(const void** key, uint64_t* data, uint32_t* next) const;
  uint32_t Count() const;

  // The table's function of `key`. Only for handles that CanHash(): without the
  // function it logs and returns 0.
  uint32_t Hash(const void* key) const;
  // True when this process can compute the table's function (Lookup, not
  // LookupHashesOnly).
  bool CanHash() const { return function_id_ != kNoFunction; }

  // Checks every invariant of the table; a write (repairing first if a writer died): each key in
  // one of its two buckets (or its bucket's overflow chain) once, tags, counts, free positions and
  // overflow buckets all accounted for. DataLoss names the first violation.
  absl::Status Verify() const;

  // What the table is.
  std::string name() const;
  std::string function() const;
  uint32_t entries() const;
  uint32_t key_length() const;
  uint32_t init_value() const;
  uint32_t flags() const;
  // Bytes of memory the table occupies.
  size_t memory_size() const;
  bool valid() const { return t_ != nullptr; }
  hash_internal::TableLayout* layout() const { return t_; }

 private:
  friend absl::StatusOr<Table> Init(void* mem, const Params& params);
  friend absl::StatusOr<Table> Attach(void* mem);
  friend absl::StatusOr<Table> AttachHashesOnly(void* mem);
  static constexpr uint32_t kNoFunction = 0xffffffff;

  uint32_t HashOf(const void* key) const;
  // kMultiWriter writes: under the table's lock (core.cc).
  int32_t AddLocked(const void* key, uint32_t hash, uint64_t data) const;
  int32_t DeleteLocked(const void* key, uint32_t hash) const;
  int32_t Find(const void* key, uint32_t hash, uint64_t* data) const;
  // Bulk lookups of at most this many keys run inline (BulkInline), larger ones through
  // Bulk's software pipeline.
  static constexpr unsigned kInlineBulk = 2;
  uint64_t BulkInline(const void* const* keys, const uint32_t* hashes, unsigned n,
                      int32_t* positions, uint64_t* data) const;
  uint64_t Bulk(const void* const* keys, const uint32_t* hashes, unsigned n, int32_t* positions,
                uint64_t* data) const;

  hash_internal::TableLayout* t_ = nullptr;
  Function function_ = nullptr;         // user functions only
  uint32_t function_id_ = kNoFunction;  // hash_internal::FunctionId, or kNoFunction
};

// --- Caller-provided memory (//hash:core) ---
// Bytes for a table of these parameters. InvalidArgument names the bad parameter.
absl::StatusOr<size_t> MemorySize(const Params& params);
// Builds an empty table at `mem` (MemorySize bytes, 64-byte aligned); `mem` must stay
// mapped as long as the table is used. Share the memory to share the table (Attach it
// in other processes). Errors: InvalidArgument (bad parameter or alignment, unknown or
// unusable function combination), NotFound (a function name not registered here).
absl::StatusOr<Table> Init(void* mem, const Params& params);
// A handle to the table at `mem` built by Init (in any process). FailedPrecondition
// when `mem` holds no table, another layout version, or a function this process lacks
// or computes differently (the message names the function and both values).
absl::StatusOr<Table> Attach(void* mem);
// As Attach, without the function check: the handle hashes nothing (Add, Lookup,
// Delete by key alone return kInvalid); the *WithHash calls, positions, Iterate work.
absl::StatusOr<Table> AttachHashesOnly(void* mem);

// --- The group's shared memory, by name (//hash) ---
// Creates a table in the group's shared memory and registers it under params.name.
// Errors: as Init, and AlreadyExists (the name is taken), ResourceExhausted (memory),
// FailedPrecondition (before eal::Init).
absl::StatusOr<Table> Create(const Params& params);
// Finds a table by name, from any process. NotFound; FailedPrecondition as Attach.
absl::StatusOr<Table> Lookup(absl::string_view name);
// As AttachHashesOnly, by name.
absl::StatusOr<Table> LookupHashesOnly(absl::string_view name);
// Frees a table made by Create, from any process. No handle to it may be used after.
// InvalidArgument when it was not made by Create.
absl::Status Free(const Table& table);

// --- Inline fast paths ---

static_assert(kNoFreeOnDelete == hash_internal::kNoFreeOnDeleteFlag);
static_assert(kNotFound == hash_internal::kWriteNotFound);
static_assert(kNoSpace == hash_internal::kWriteNoSpace);

// Writes: a kMultiWriter table's under its lock, out of line; another's inline, marked
// for repair after a kill (write.h).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Table::AddWithHash(const void* key, uint32_t hash,
                                                               uint64_t data) const {
  if (t_->flags & kMultiWriter) return AddLocked(key, hash, data);
  hash_internal::BeginSingleWrite(*t_);
  const int32_t result = hash_internal::AddExclusive(*t_, key, hash, data);
  hash_internal::EndSingleWrite(*t_);
  return result;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Table::Add(const void* key, uint64_t data) const {
  if (!CanHash()) return kInvalid;
  return AddWithHash(key, HashOf(key), data);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Table::DeleteWithHash(const void* key,
                                                                  uint32_t hash) const {
  if (t_->flags & kMultiWriter) return DeleteLocked(key, hash);
  hash_internal::BeginSingleWrite(*t_);
  const int32_t result = hash_internal::DeleteExclusive(*t_, key, hash);
  hash_internal::EndSingleWrite(*t_);
  return result;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Table::Delete(const void* key) const {
  if (!CanHash()) return kInvalid;
  return DeleteWithHash(key, HashOf(key));
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t Table::HashOf(const void* key) const {
  switch (static_cast<hash_internal::FunctionId>(function_id_)) {
    case hash_internal::FunctionId::kCrc32c:
      return Crc32c(key, t_->key_length, t_->init_value);
    case hash_internal::FunctionId::kJhash:
      return Jhash(key, t_->key_length, t_->init_value);
    case hash_internal::FunctionId::kUser:
      return function_(key, t_->key_length, t_->init_value);
  }
  return 0;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Table::Find(const void* key, uint32_t hash,
                                                        uint64_t* data) const {
  const int32_t pos = hash_internal::Find(*t_, key, hash, data);
  return pos >= 0 ? pos : kNotFound;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Table::LookupWithHash(const void* key,
                                                                  uint32_t hash) const {
  return Find(key, hash, nullptr);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Table::LookupWithHashData(const void* key,
                                                                      uint32_t hash,
                                                                      uint64_t* data) const {
  return Find(key, hash, data);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Table::Lookup(const void* key) const {
  if (!CanHash()) return kInvalid;
  return Find(key, HashOf(key), nullptr);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline int32_t Table::LookupData(const void* key,
                                                              uint64_t* data) const {
  if (!CanHash()) return kInvalid;
  return Find(key, HashOf(key), data);
}

// A few keys: one lookup after the other, inline, which the CPU overlaps as it overlaps a
// caller's loop of single lookups (a pipeline has nothing to hide at this size).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t Table::BulkInline(const void* const* keys,
                                                               const uint32_t* hashes, unsigned n,
                                                               int32_t* positions,
                                                               uint64_t* data) const {
  if (hashes == nullptr && !CanHash()) return Bulk(keys, hashes, n, positions, data);
  uint64_t hits = 0;
  for (unsigned i = 0; i < n; ++i) {
    const int32_t pos =
        hash_internal::Find(*t_, keys[i], hashes != nullptr ? hashes[i] : HashOf(keys[i]),
                            data != nullptr ? &data[i] : nullptr);
    hits |= uint64_t{pos >= 0} << i;
    if (positions != nullptr) positions[i] = pos >= 0 ? pos : kNotFound;
  }
  return hits;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t Table::LookupBulk(const void* const* keys, unsigned n,
                                                               int32_t* positions) const {
  if (n <= kInlineBulk) return BulkInline(keys, nullptr, n, positions, nullptr);
  return Bulk(keys, nullptr, n, positions, nullptr);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t Table::LookupBulkWithHash(const void* const* keys,
                                                                       const uint32_t* hashes,
                                                                       unsigned n,
                                                                       int32_t* positions) const {
  if (n <= kInlineBulk) return BulkInline(keys, hashes, n, positions, nullptr);
  return Bulk(keys, hashes, n, positions, nullptr);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t Table::LookupBulkData(const void* const* keys,
                                                                   unsigned n,
                                                                   uint64_t* data) const {
  if (n <= kInlineBulk) return BulkInline(keys, nullptr, n, nullptr, data);
  return Bulk(keys, nullptr, n, nullptr, data);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t Table::LookupBulkWithHashData(const void* const* keys,
                                                                           const uint32_t* hashes,
                                                                           unsigned n,
                                                                           uint64_t* data) const {
  if (n <= kInlineBulk) return BulkInline(keys, hashes, n, nullptr, data);
  return Bulk(keys, hashes, n, nullptr, data);
}

}  // namespace keel::hash

#endif  // KEEL_HASH_HASH_H_
