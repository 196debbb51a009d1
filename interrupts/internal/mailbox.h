// A subscriber's mailbox (layout.h's Mailbox): a bounded single-producer
// single-consumer ring of fixed-size records, and the doorbell protocol that wakes the
// consumer only when it sleeps.
//
// Producer (the primary; its publishers hold one process-local mutex):
//   Push writes the record, publishes `tail` (P1), then reads `sleeping` (P2, after a
//   full fence). When the consumer sleeps, Push clears `sleeping` and the caller rings
//   the doorbell (writes 1 to the subscriber's eventfd).
// Consumer (the subscriber's interrupt thread):
//   drains records up to `tail` (C1 pairs with P1), releases them (C2: `head`), then
//   PrepareToSleep stores `sleeping` = 1 and, after a full fence, reads `tail` again:
//   if nothing arrived it returns to epoll_wait on the doorbell, else it drains on.
// No lost wake-up (Dekker, both sides fence between their store and their load):
//   Producer: tail = t+1; fence; sees sleeping == 0      -> rings nothing
//   Consumer: sleeping = 1; fence; must then see tail == t+1 -> drains on
//   Either the producer sees sleeping == 1 (and rings) or the consumer sees the record.
// A full mailbox drops the event and counts it (`dropped`); `next_sequence` still
// moves, so the consumer sees the gap in the records' sequences.
//
// Crash order. A producer killed anywhere in Push leaves the record unpublished (tail is
// stored after the record's bytes): the event is lost as a gap, never torn. Killed
// between the two stores of a drop, a gap is not counted in `dropped`. The consumer's
// death ends the mailbox: the primary reclaims it.
#ifndef KEEL_INTERRUPTS_INTERNAL_MAILBOX_H_
#define KEEL_INTERRUPTS_INTERNAL_MAILBOX_H_

#include <atomic>
#include <cstdint>
#include <cstring>

#include "base/kill_point.h"
#include "interrupts/internal/layout.h"

namespace keel::interrupts_internal {

// Gives the mailbox at `m` (MailboxBytes(capacity) bytes, 64-byte aligned) to the
// subscriber `owner_token`, empty, its consumer asleep (the first event rings). Only
// while no consumer reads it and no producer writes it: the primary, before it
// publishes the subscriber's entry.
inline void ResetMailbox(Mailbox* m, uint32_t capacity, uint32_t owner_token) {
  m->layout_version = kLayoutVersion;
  m->capacity = capacity;
  m->record_size = kRecordSize;
  m->owner_token = owner_token;
  // Relaxed: the mailbox is published to its consumer by the entry's state (release) and
  // the handshake on the relay's socket, after all of these.
  m->tail.store(0, std::memory_order_relaxed);
  m->next_sequence.store(0, std::memory_order_relaxed);
  m->dropped.store(0, std::memory_order_relaxed);
  m->doorbells.store(0, std::memory_order_relaxed);
  m->head.store(0, std::memory_order_relaxed);
  m->sleeping.store(1, std::memory_order_relaxed);
  m->magic = kMailboxMagic;
}

// Capacities are the caller's own copy (kMailboxCapacity for the relay), never read back
// from shared memory: any process of the group could overwrite the mailbox's fields, and a
// damaged capacity must not turn into a write past the mailbox.

enum class PushResult {
  kQueued,        // the consumer is awake: it will see the record
  kQueuedAsleep,  // the consumer slept: ring its doorbell
  kDropped,       // the mailbox was full: counted, the sequence moved on
};

// The producer. `capacity` is a power of two; `length` <= kMaxPayload (the caller checks).
inline PushResult Push(Mailbox* m, uint32_t capacity, uint32_t type, int32_t source_pid,
                       uint64_t timestamp_ns, const void* payload, uint32_t length) {
  // Relaxed: only the producer writes tail and next_sequence.
  const uint64_t tail = m->tail.load(std::memory_order_relaxed);
  const uint64_t sequence = m->next_sequence.load(std::memory_order_relaxed);
  // Acquire: pairs with C2 (the consumer's release of head): the slots below head are
  // read and may be overwritten.
  const uint64_t head = m->head.load(std::memory_order_acquire);
  // A head past the tail (damage: only the consumer writes it) counts as full: the drop
  // is counted, nothing is written.
  if (tail - head >= capacity) {
    // Relaxed: counters; the consumer sees the gap in the next record's sequence, which
    // P1 publishes.
    m->next_sequence.store(sequence + 1, std::memory_order_relaxed);
    m->dropped.store(m->dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return PushResult::kDropped;
  }
  Record& r = m->records[tail & (capacity - 1)];
  r.sequence = sequence;
  r.timestamp_ns = timestamp_ns;
  r.type = type;
  r.source_pid = source_pid;
  r.length = length;
  std::memcpy(r.payload, payload, length);
  // Relaxed: published with the record by P1.
  m->next_sequence.store(sequence + 1, std::memory_order_relaxed);
  KillPointForTest("interrupts.push.before_tail");  // a kill here: a gap, nothing torn
  // P1: release-store of tail. Pairs with C1: a consumer that sees tail + 1 sees the
  // record's bytes.
  m->tail.store(tail + 1, std::memory_order_release);
  // P2: the full fence between our store of tail and our load of sleeping (see the top).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (m->sleeping.load(std::memory_order_relaxed) == 0) return PushResult::kQueued;
  // One doorbell per sleep: of two producers' pushes (one after the other, under the
  // primary's mutex) only the first finds sleeping == 1. The exchange is an RMW so a
  // concurrent PrepareToSleep's store is ordered with it.
  if (m->sleeping.exchange(0, std::memory_order_relaxed) == 0) return PushResult::kQueued;
  // A producer killed here, before its caller rings, leaves a consumer asleep with
  // sleeping == 0, which later pushes take for awake: a producer that takes over (issue
  // 15) rings every doorbell once.
  m->doorbells.store(m->doorbells.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return PushResult::kQueuedAsleep;
}

// The consumer: the number of records published and not yet consumed at `head` (the
// consumer's own count), or more than the capacity when the mailbox is damaged.
inline uint64_t Available(const Mailbox* m, uint64_t head) {
  // C1: acquire-load of tail. Pairs with P1: the records below tail are written.
  return m->tail.load(std::memory_order_acquire) - head;
}

inline const Record& RecordAt(const Mailbox* m, uint32_t capacity, uint64_t index) {
  return m->records[index & (capacity - 1)];
}

// The consumer: records below `head` are consumed; their slots may be reused.
inline void Consume(Mailbox* m, uint64_t head) {
  // C2: release-store of head. Pairs with the producer's acquire-load of head: our reads
  // of the slots below head are done before the producer overwrites them.
  m->head.store(head, std::memory_order_release);
}

// The consumer, with every record below `head` consumed: true when the mailbox is empty
// and it may wait for the doorbell; false when records arrived meanwhile (it stays
// awake and drains them).
inline bool PrepareToSleep(Mailbox* m, uint64_t head) {
  // Relaxed store, then the full fence of the protocol (see the top).
  m->sleeping.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (m->tail.load(std::memory_order_relaxed) == head) return true;
  // Relaxed: a producer that meanwhile found sleeping == 1 rang an extra doorbell; the
  // next wake-up finds the records consumed, which costs a read, not an event.
  m->sleeping.store(0, std::memory_order_relaxed);
  return false;
}

}  // namespace keel::interrupts_internal

#endif  // KEEL_INTERRUPTS_INTERNAL_MAILBOX_H_
