// The interrupt relay's shared state: the relay table in the memzone kRelayMemzone and
// one mailbox per subscribing process in the memzones kMailboxMemzonePrefix + slot, all in
// the group's shared memory (//memory), mapped by every process that links //interrupts.
//
// Shared-memory rules (STYLE.md, as in eal/internal/layout.h):
// - Only standard-layout structs whose plain fields are trivially copyable;
//   static_assert'ed below.
// - Atomics are std::atomic<uint32_t|uint64_t> and always lock-free.
// - No pointers to process-local things, no function pointers, no vtables, no
//   std::string, no absl::Mutex. Names are fixed char arrays, NUL-padded.
// - The table and every mailbox carry kLayoutVersion; the EAL refuses a process of
//   another version when it joins, and the table repeats it for tools.
// - Everything read back is untrusted: names with NameOf and escaped in messages, a
//   mailbox's capacity, record size and indices checked before use, a record's length
//   bounded by kMaxPayload.
//
// Who writes what:
// - RelayTable header: the primary, once, during eal::Init, `magic` last (published by
//   the EAL's ready flag, eal/internal/layout.h I0).
// - Event types: any process, under `types_lock` (robust). A name is written, then
//   `type_count` grows (release): a kill before that leaves an unused slot that the next
//   registration overwrites, never a half-named type.
// - SubscriberEntry: its fields by the primary alone (the relay's socket thread), when
//   a subscriber connects and when it goes; `state` last on connect (release), first on
//   reclaim. `subscriptions` and `publish_drops` by the subscriber.
// - Mailbox: the producer cache line by the primary alone (its publishing threads take
//   one process-local mutex: one producer at a time), the consumer line by the
//   subscriber's interrupt thread alone. See mailbox.h for the protocol.
//
// Issue 15 (a new primary adopting a live group): nothing here is the old primary's
// alone. The table and the mailboxes stay where they are; a new primary takes over as
// producer from `tail` and `next_sequence` as they are (a kill mid-push leaves an
// unpublished record, not a torn one), rebuilds the doorbells and the connections when
// the subscribers reconnect to its socket, and rings every doorbell once (a producer
// killed between clearing `sleeping` and ringing left its consumer asleep; mailbox.h).
#ifndef KEEL_INTERRUPTS_INTERNAL_LAYOUT_H_
#define KEEL_INTERRUPTS_INTERNAL_LAYOUT_H_

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace keel::interrupts_internal {

// Bump on any change to the structs in this file.
inline constexpr uint32_t kLayoutVersion = 1;  // unreleased: no older layout to refuse
inline constexpr uint64_t kRelayMagic = 0x3179616c65727469ULL;    // "itrelay1"
inline constexpr uint64_t kMailboxMagic = 0x31786f626c69616dULL;  // "mailbox1"
inline constexpr char kRelayMemzone[] = "keel.interrupts";
inline constexpr char kMailboxMemzonePrefix[] = "keel.intr.mailbox.";
// The relay's socket in the group's runtime directory.
inline constexpr char kSocketFile[] = "intr";

inline constexpr int kMaxTypes = 64;        // one bit each in SubscriberEntry::subscriptions
inline constexpr int kTypeNameSize = 32;    // 31 characters and the NUL
inline constexpr int kMaxSubscribers = 64;  // one entry per process-table slot
inline constexpr uint32_t kRecordSize = 512;
inline constexpr uint32_t kRecordHeaderSize = 32;
inline constexpr uint32_t kMaxPayload = kRecordSize - kRecordHeaderSize;  // 480 bytes
inline constexpr uint32_t kMailboxCapacity = 512;                         // records

struct TypeEntry {
  char name[kTypeNameSize];
};

// SubscriberEntry::state.
enum EntryState : uint32_t { kEntryFree = 0, kEntryActive = 1 };

struct alignas(64) SubscriberEntry {
  std::atomic<uint32_t> state;  // EntryState: kEntryActive is published last
  uint32_t token;               // the subscriber's process token (eal identity.h)
  int32_t pid;                  // its pid, as its PID namespace sees it
  uint32_t reserved;
  // Bit t: the subscriber has a callback for type t. The subscriber sets and clears its
  // bits; publishers read them.
  std::atomic<uint64_t> subscriptions;
  uint64_t connected_ns;  // CLOCK_MONOTONIC when the primary accepted it
  // The subscriber's own count of its Publishes the relay's socket refused (full).
  std::atomic<uint64_t> publish_drops;
};

struct alignas(64) RelayTable {
  uint64_t magic;           // kRelayMagic; written last by the primary
  uint32_t layout_version;  // kLayoutVersion
  int32_t primary_pid;
  pthread_mutex_t types_lock;  // robust, process-shared: guards types[] and type_count
  // Secondaries' unicast events the relay could not deliver (the target does not
  // subscribe); the primary's relay thread alone adds to it.
  std::atomic<uint64_t> undelivered;
  alignas(64) std::atomic<uint32_t> type_count;
  TypeEntry types[kMaxTypes];
  SubscriberEntry subscribers[kMaxSubscribers];  // by process-table slot
};

// One record of a mailbox: a fixed-size slot.
struct alignas(64) Record {
  uint64_t sequence;      // of the mailbox's events, dropped ones included: a gap = drops
  uint64_t timestamp_ns;  // CLOCK_MONOTONIC when published
  uint32_t type;          // index into RelayTable::types
  int32_t source_pid;     // the publisher (as the primary's PID namespace sees it)
  uint32_t length;        // payload bytes, <= kMaxPayload
  uint32_t reserved;
  unsigned char payload[kMaxPayload];
};

// A bounded single-producer single-consumer ring of Records with a doorbell protocol
// (mailbox.h). `head` and `tail` count records since the mailbox was reset; slot i is
// records[i % capacity].
struct alignas(64) Mailbox {
  uint64_t magic;  // kMailboxMagic
  uint32_t layout_version;
  uint32_t capacity;     // records, a power of two
  uint32_t record_size;  // kRecordSize
  uint32_t owner_token;  // the subscriber this mailbox was last reset for
  // Producer line: the primary's.
  alignas(64) std::atomic<uint64_t> tail;  // records published
  std::atomic<uint64_t> next_sequence;     // sequence of the next event, queued or dropped
  std::atomic<uint64_t> dropped;           // events not queued: the mailbox was full
  std::atomic<uint64_t> doorbells;         // eventfd writes (the consumer was asleep)
  // Consumer line: the subscriber's interrupt thread's.
  alignas(64) std::atomic<uint64_t> head;  // records consumed
  std::atomic<uint32_t> sleeping;          // 1: the consumer waits for the doorbell
  uint32_t reserved;
  alignas(64) Record records[];  // capacity of them
};

inline constexpr size_t MailboxBytes(uint32_t capacity) {
  return sizeof(Mailbox) + size_t{capacity} * sizeof(Record);
}

static_assert(std::is_standard_layout_v<RelayTable>);
static_assert(std::is_standard_layout_v<SubscriberEntry>);
static_assert(std::is_standard_layout_v<Mailbox>);
static_assert(std::is_trivially_copyable_v<Record>);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(Record) == kRecordSize);
static_assert(offsetof(Record, payload) == kRecordHeaderSize);
static_assert(offsetof(RelayTable, magic) == 0);
static_assert(offsetof(Mailbox, tail) % 64 == 0 && offsetof(Mailbox, head) % 64 == 0);
static_assert(offsetof(Mailbox, records) % 64 == 0);
static_assert((kMailboxCapacity & (kMailboxCapacity - 1)) == 0);
static_assert(kMaxTypes == 64, "subscriptions is one 64-bit word");

}  // namespace keel::interrupts_internal

#endif  // KEEL_INTERRUPTS_INTERNAL_LAYOUT_H_
