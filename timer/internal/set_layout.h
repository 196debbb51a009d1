// A timer set as it lives in shared memory (or in memory the caller provides).
//
// Shared-memory rules (STYLE.md): standard layout, trivially copyable apart from the
// robust mutex, always-lock-free 32/64-bit atomics, no pointers (offsets from the set's
// start, indices), kLayoutVersion checked at Attach. Everything read back is bounded.
//
// [SetHeader][timers: capacity TimerRecord][wheels: kMaxLcores Wheel]
// [notify bits: kMaxLcores x notify_words][summary bits: kMaxLcores x summary_words]
// [chunk meta: chunk_count ChunkMeta][chunks: chunk_count Chunk]
// [free timers: capacity uint32][free chunks: chunk_count uint32]
//
// The truth is in the timer records: each one's `state` word says whether it is pending,
// for which lcore, and in which generation. Each lcore's wheel is an index over the
// records pending on that lcore, written only by the process that owns the lcore: it
// holds entries {expiry, timer, generation} in chunks hung from the wheel's slots, and
// an entry whose generation is no longer its timer's is stale and dropped when met (stop
// and re-arm never search a wheel: they only change the timer's state). A process killed
// in the middle of a wheel update leaves a wheel that the next owner of the lcore id
// rebuilds from the records (Adopt in core.cc), so no kill corrupts a timer.
//
// Arms and stops from another lcore or process never touch the target's wheel: they
// change the record's state by compare-and-swap, set the timer's bit in the target's
// notification bitmap, and the owner inserts the entry at its next Manage.
#ifndef KEEL_TIMER_INTERNAL_SET_LAYOUT_H_
#define KEEL_TIMER_INTERNAL_SET_LAYOUT_H_

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "timer/internal/layout.h"

namespace keel::timer_internal {

inline constexpr uint64_t kSetMagic = 0x73726d746c65656bULL;  // "keeltmrs"
inline constexpr int kNameSize = 64;
inline constexpr unsigned kLcores = 128;  // eal::kMaxLcores; checked in timer.cc
inline constexpr unsigned kNoLcore = 0xff;
inline constexpr uint32_t kMaxCallbacks = 256;
inline constexpr int kCallbackNameSize = 48;
// A wheel level has 64 slots; levels cover the 64-bit tick space above the granule.
inline constexpr int kSlotBits = 6;
inline constexpr int kSlots = 1 << kSlotBits;
inline constexpr int kMaxLevels = 11;  // ceil(64 / 6)
inline constexpr int kChunkEntries = 16;

// --- The state word ------------------------------------------------------------------
// bits 0-1 status, 2-9 lcore (kNoLcore: never armed), 10-31 holder (the process token
// of a kConfig's writer), 32-63 generation. Every arm takes a new generation; the
// entries of older generations are stale.
enum Status : uint64_t {
  kStopped = 0,
  kPending = 1,  // armed for `lcore`; its entry is (or will be) in that lcore's wheel
  kRunning = 2,  // its callback runs on `lcore` now
  kConfig = 3,   // `holder` is writing its parameters (for `lcore`, generation `gen`)
};
inline constexpr uint32_t kTokenBits = 22;
inline constexpr uint32_t kTokenMask = (1u << kTokenBits) - 1;

constexpr uint64_t MakeState(Status status, unsigned lcore, uint32_t holder, uint32_t gen) {
  return uint64_t{status} | (uint64_t{lcore & 0xff} << 2) | (uint64_t{holder & kTokenMask} << 10) |
         (uint64_t{gen} << 32);
}
constexpr Status StatusOf(uint64_t s) { return static_cast<Status>(s & 3); }
constexpr unsigned LcoreOf(uint64_t s) { return static_cast<unsigned>((s >> 2) & 0xff); }
constexpr uint32_t HolderOf(uint64_t s) { return static_cast<uint32_t>(s >> 10) & kTokenMask; }
constexpr uint32_t GenOf(uint64_t s) { return static_cast<uint32_t>(s >> 32); }

// TimerRecord::flags.
inline constexpr uint32_t kSkipLate = 1;  // a late periodic timer skips missed periods

// One timer. The parameters are written by whoever holds the record in kConfig, and read
// by the owner of the lcore after it observed the kPending that followed (S1 in
// core.cc); relaxed atomics, since the state word orders them.
struct alignas(64) TimerRecord {
  std::atomic<uint64_t> state;
  std::atomic<uint64_t> expiry;  // absolute, in ticks of the group's clock
  std::atomic<uint64_t> period;  // 0: single
  std::atomic<uint64_t> arg;
  std::atomic<uint32_t> callback;  // id in SetHeader::callbacks
  std::atomic<uint32_t> flags;
  // Periods a late Manage skipped or ran late, since the last arm (the owner writes).
  std::atomic<uint64_t> missed;
  uint32_t allocated;  // 1 while handed out by NewTimer; guarded by SetHeader::lock
  uint32_t reserved0;
  uint64_t reserved1;
};
static_assert(sizeof(TimerRecord) == 64);

// One wheel entry: the timer `timer` of generation `gen` expires at `expiry`.
struct Entry {
  uint64_t expiry;
  uint32_t timer;
  uint32_t gen;
};
static_assert(sizeof(Entry) == 16);

struct alignas(64) Chunk {
  Entry entries[kChunkEntries];
};
static_assert(sizeof(Chunk) == 256);

// Chunks are owned by the set's pool or by one lcore's wheel (owner = lcore + 1), which
// hangs them from its slots and keeps spares on its free list. A new owner of the lcore
// finds the wheel's chunks by `owner`, whatever state the wheel was left in.
struct ChunkMeta {
  uint32_t next;  // index + 1 of the next chunk of a slot or free list; 0 = none
  uint16_t reserved;
  uint16_t owner;
};
static_assert(sizeof(ChunkMeta) == 8);

// A slot's chunks: every one full but the tail, which holds `count` entries (kept here,
// on the wheel's lines, so an append reads no chunk header).
struct SlotList {
  uint32_t head;  // chunk index + 1; 0 = empty
  uint32_t tail;
  uint32_t count;
  uint32_t reserved;
};

// One lcore's wheel. Written by the process that owns the lcore (`owner`), apart from
// the second line, which other processes write to notify it.
struct alignas(64) Wheel {
  // Line 0: everything the idle Manage reads.
  // Manage does nothing before `next_due` (a lower bound on the next expiry, the next
  // cascade or the next sweep).
  uint64_t next_due;
  // Token of the process managing this wheel; 0 = none yet. Written by that process
  // (Adopt); read by others (Stats, the Sync calls' dead-owner check) relaxed: a token
  // read late names a process that owned the lcore, and they recheck.
  std::atomic<uint32_t> owner;
  uint32_t reserved0;
  uint64_t cur;  // the granule Manage reached: every entry of an earlier one has run
  uint64_t next_sweep;
  uint32_t free_head;  // spare chunks: index + 1
  uint32_t free_count;
  uint64_t reserved[3];

  // Line 1: written by any process.
  // N0: notification flag; see Notify() in core.cc.
  alignas(64) std::atomic<uint64_t> notify;
  // Entries made stale by stops and re-arms from other lcores (a compaction hint).
  std::atomic<uint64_t> remote_stale;

  // Line 2: counters the owner writes and tools read (relaxed).
  alignas(64) std::atomic<uint64_t> ran;   // callbacks run
  std::atomic<uint64_t> missing_callback;  // expiries whose callback this process lacks
  std::atomic<uint64_t> missed_periods;    // periods skipped or run late
  std::atomic<uint64_t> no_space;          // entries that found no free chunk
  std::atomic<uint64_t> adoptions;         // times a new owner rebuilt the wheel
  std::atomic<uint64_t> entries;           // entries in the slots (stale included)
  // Callbacks the owner's process has: bit i of callbacks_known = callback id i, for ids
  // below callbacks_seen, while callbacks_token is the lcore's owner. K0: the owner
  // writes the bits, then callbacks_seen, then callbacks_token (release); an arm from
  // elsewhere reads them in the other order (acquire) and refuses only what is known.
  std::atomic<uint32_t> callbacks_token;
  std::atomic<uint32_t> callbacks_seen;
  std::atomic<uint64_t> callbacks_known[kMaxCallbacks / 64];

  // Owner-only from here.
  alignas(64) uint64_t stale;   // entries this owner made stale
  uint64_t remote_stale_seen;   // remote_stale at the last compaction
  uint64_t bitmap[kMaxLevels];  // bit s of level k: slots[k][s] is not empty
  SlotList slots[kMaxLevels][kSlots];
};

struct alignas(64) SetHeader {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t capacity;
  uint32_t granule_shift;  // a level-0 slot spans 2^granule_shift ticks
  uint32_t levels;
  uint32_t chunk_count;
  uint32_t notify_words;   // per lcore: one bit per timer
  uint32_t summary_words;  // per lcore: one bit per notify word
  uint32_t reserved0;
  uint64_t hz;  // the clock the set was made for
  // Random, per Init: tells a process's cached view of an old set at this address from
  // the new one.
  uint64_t nonce;
  uint64_t total_size;
  uint64_t timers_offset;
  uint64_t wheels_offset;
  uint64_t notify_offset;
  uint64_t summary_offset;
  uint64_t chunk_meta_offset;
  uint64_t chunks_offset;
  uint64_t free_timers_offset;
  uint64_t free_chunks_offset;
  char name[kNameSize];

  // Robust, process-shared. Guards the free stacks, `allocated` and the callback names.
  alignas(64) pthread_mutex_t lock;
  uint32_t free_timers;  // entries on the free timer stack
  uint32_t free_chunks;  // entries on the free chunk stack
  // Names of callback ids 0..callback_count-1; a name never changes once published.
  // C0: release-store of callback_count after the name is written; pairs with the
  // acquire-load of readers that resolve ids without the lock.
  std::atomic<uint32_t> callback_count;
  uint32_t reserved1;
  char callbacks[kMaxCallbacks][kCallbackNameSize];
};

static_assert(std::is_standard_layout_v<SetHeader>);
static_assert(std::is_standard_layout_v<Wheel>);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

}  // namespace keel::timer_internal

#endif  // KEEL_TIMER_INTERNAL_SET_LAYOUT_H_
