#include "interrupts/internal/mailbox.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace keel::interrupts_internal {
namespace {

struct Freer {
  void operator()(void* p) const { std::free(p); }
};

// A mailbox on caller memory, as the relay places one in a memzone.
std::unique_ptr<Mailbox, Freer> NewMailbox(uint32_t capacity) {
  void* p = std::aligned_alloc(64, MailboxBytes(capacity));
  std::memset(p, 0xa5, MailboxBytes(capacity));  // the reset must not depend on zeroes
  auto* m = static_cast<Mailbox*>(p);
  ResetMailbox(m, capacity, /*owner_token=*/7);
  return std::unique_ptr<Mailbox, Freer>(m);
}

PushResult PushValue(Mailbox* m, uint64_t value) {
  return Push(m, m->capacity, /*type=*/3, /*source_pid=*/42, /*timestamp_ns=*/value, &value,
              sizeof(value));
}

TEST(MailboxTest, FifoWithSequencesAndTheFirstPushRings) {
  auto m = NewMailbox(8);
  EXPECT_EQ(PushValue(m.get(), 100), PushResult::kQueuedAsleep) << "a fresh mailbox sleeps";
  EXPECT_EQ(PushValue(m.get(), 101), PushResult::kQueued) << "rung once per sleep";
  uint64_t head = 0;
  ASSERT_EQ(Available(m.get(), head), 2u);
  for (uint64_t i = 0; i < 2; ++i) {
    const Record& r = RecordAt(m.get(), m->capacity, head);
    EXPECT_EQ(r.sequence, i);
    EXPECT_EQ(r.type, 3u);
    EXPECT_EQ(r.source_pid, 42);
    ASSERT_EQ(r.length, sizeof(uint64_t));
    uint64_t v;
    std::memcpy(&v, r.payload, sizeof(v));
    EXPECT_EQ(v, 100 + i);
    Consume(m.get(), ++head);
  }
  EXPECT_TRUE(PrepareToSleep(m.get(), head));
  EXPECT_EQ(PushValue(m.get(), 102), PushResult::kQueuedAsleep);
  EXPECT_EQ(m->doorbells.load(), 2u);
}

TEST(MailboxTest, AFullMailboxDropsCountsAndLeavesAGap) {
  auto m = NewMailbox(4);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_NE(PushValue(m.get(), i), PushResult::kDropped);
  for (uint64_t i = 4; i < 10; ++i) EXPECT_EQ(PushValue(m.get(), i), PushResult::kDropped);
  EXPECT_EQ(m->dropped.load(), 6u);
  uint64_t head = 0;
  ASSERT_EQ(Available(m.get(), head), 4u);
  head += 4;
  Consume(m.get(), head);
  ASSERT_EQ(PushValue(m.get(), 10), PushResult::kQueued);
  const Record& r = RecordAt(m.get(), m->capacity, head);
  EXPECT_EQ(r.sequence, 10u) << "the six dropped events are the gap 4..9";
}

TEST(MailboxTest, PrepareToSleepSeesARecordThatArrived) {
  auto m = NewMailbox(4);
  uint64_t head = 0;
  ASSERT_TRUE(PrepareToSleep(m.get(), head));
  m->sleeping.store(0);  // as if a push had woken it
  PushValue(m.get(), 1);
  EXPECT_FALSE(PrepareToSleep(m.get(), head)) << "a record is there: stay awake";
  EXPECT_EQ(m->sleeping.load(), 0u);
}

// One producer thread, one consumer thread that sleeps on an eventfd exactly as the
// relay's consumer does: every record arrives once, in order, and no wake-up is lost
// (a lost one would leave the consumer asleep with records queued: the test's poll
// timeout catches it).
TEST(MailboxTest, NoLostWakeUpsAndNoLostRecordsUnderStress) {
  constexpr uint64_t kEvents = 2'000'000;
  auto m = NewMailbox(64);
  const int doorbell = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(doorbell, 0);
  std::atomic<bool> stuck{false};
  std::atomic<bool> consumer_done{false};
  std::thread consumer([&] {
    struct Done {
      std::atomic<bool>* done;
      ~Done() { *done = true; }
    } done{&consumer_done};
    uint64_t head = 0;
    uint64_t expected = 0;
    while (expected < kEvents) {
      const uint64_t n = Available(m.get(), head);
      if (n == 0) {
        if (!PrepareToSleep(m.get(), head)) continue;
        pollfd p = {doorbell, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) {
          stuck = true;
          return;
        }
        uint64_t count;
        if (::read(doorbell, &count, sizeof(count)) != sizeof(count)) continue;
        continue;
      }
      ASSERT_LE(n, 64u);
      for (uint64_t i = 0; i < n; ++i) {
        const Record& r = RecordAt(m.get(), 64, head + i);
        uint64_t v;
        std::memcpy(&v, r.payload, sizeof(v));
        // Every event was queued (the producer retries when full): no gaps.
        ASSERT_EQ(r.sequence, v);
        ASSERT_EQ(v, expected);
        ++expected;
      }
      head += n;
      Consume(m.get(), head);
    }
  });
  uint64_t drops = 0;
  for (uint64_t v = 0; v < kEvents && !consumer_done;) {
    // A retry reuses the value: the test's sequence is its own count of queued events,
    // so the mailbox's sequence (which counts drops too) is corrected below.
    const uint64_t before = m->next_sequence.load();
    const PushResult r = Push(m.get(), 64, 0, 0, 0, &v, sizeof(v));
    if (r == PushResult::kDropped) {
      ++drops;
      m->next_sequence.store(before);  // undo: this test wants gap-free sequences
      m->dropped.store(m->dropped.load() - 1);
      std::this_thread::yield();
      continue;
    }
    if (r == PushResult::kQueuedAsleep) {
      const uint64_t one = 1;
      ASSERT_EQ(::write(doorbell, &one, sizeof(one)), 8);
    }
    ++v;
  }
  consumer.join();
  ASSERT_FALSE(stuck) << "the consumer slept with records queued: a lost wake-up";
  ASSERT_EQ(m->tail.load(), kEvents) << "the consumer failed (see above)";
  EXPECT_EQ(m->dropped.load(), 0u);
  ::close(doorbell);
}

}  // namespace
}  // namespace keel::interrupts_internal
