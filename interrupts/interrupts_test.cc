// The interrupt thread and the relay in one process (in-process eal::Init as the primary,
// --no-huge): callbacks on the interrupt thread, events published to this process's own
// mailbox, a full mailbox, relayed descriptors, and the errors. Across processes:
// tests/interrupts_multiprocess_test.cc.
#include "interrupts/interrupts.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "eal/eal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/eventually.h"

namespace keel::interrupts {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using ::keel::testing::Eventually;

void Signal(int fd, uint64_t n = 1) { ASSERT_EQ(::write(fd, &n, sizeof(n)), 8); }

class InterruptsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> args = {"--no-huge", "-m", "64", "--file-prefix",
                                     absl::StrCat("t.intr_test.", getpid(), ".", ++tests_)};
    absl::StatusOr<eal::Options> options = eal::ParseOptions(args);
    ASSERT_TRUE(options.ok()) << options.status();
    const auto first = *options->lcores.begin();
    options->lcores = {first};
    options->main_lcore = first.first;
    ASSERT_TRUE(eal::Init(*options).ok());
  }
  void TearDown() override {
    if (eal::Initialized()) {
      EXPECT_TRUE(eal::Cleanup().ok());
    }
  }
  static inline int tests_ = 0;
};

// What a subscriber saw.
struct Seen {
  absl::Mutex mu;
  std::vector<std::string> payloads;
  std::vector<uint64_t> sequences;
  std::vector<uint64_t> dropped_before;
  std::vector<pid_t> sources;
  std::vector<std::string> types;
  std::atomic<int> count{0};
  std::atomic<bool> on_interrupt_thread{true};
};
void Record(const Event& e, void* arg) {
  auto* s = static_cast<Seen*>(arg);
  if (!InInterruptThread()) s->on_interrupt_thread = false;
  absl::MutexLock lock(&s->mu);
  s->payloads.emplace_back(reinterpret_cast<const char*>(e.payload.data()), e.payload.size());
  s->sequences.push_back(e.sequence);
  s->dropped_before.push_back(e.dropped_before);
  s->sources.push_back(e.source_pid);
  s->types.emplace_back(e.type);
  ++s->count;
}

TEST_F(InterruptsTest, CallbacksRunOnTheInterruptThreadTheEalStarted) {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct Calls {
    std::atomic<int> n{0};
    std::atomic<bool> on_thread{true};
  } calls;
  ASSERT_TRUE(RegisterCallback(
                  fd,
                  [](int fd, uint32_t, void* arg) {
                    auto* c = static_cast<Calls*>(arg);
                    uint64_t v;
                    if (::read(fd, &v, sizeof(v)) != sizeof(v)) return;
                    if (!InInterruptThread()) c->on_thread = false;
                    ++c->n;
                  },
                  &calls)
                  .ok());
  EXPECT_FALSE(InInterruptThread());
  Signal(fd);
  ASSERT_TRUE(Eventually([&] { return calls.n == 1; }));
  EXPECT_TRUE(calls.on_thread);
  EXPECT_EQ(*UnregisterCallback(fd), 1);
  ASSERT_TRUE(eal::Cleanup().ok());
  absl::Status after = RegisterCallback(
      fd, [](int, uint32_t, void*) {}, nullptr);
  EXPECT_TRUE(absl::IsFailedPrecondition(after)) << after;
  EXPECT_TRUE(absl::IsFailedPrecondition(Publish("x", "", 0)));
  ::close(fd);
}

TEST_F(InterruptsTest, PublishedEventsArriveInOrderWithTheirPayloads) {
  Seen seen;
  ASSERT_TRUE(Subscribe("ping", Record, &seen).ok());
  // Payloads of every length 0..kMaxPayload, each byte derived from its index.
  constexpr int kEvents = static_cast<int>(kMaxPayload) + 1;
  std::vector<std::string> sent;
  for (int i = 0; i < kEvents; ++i) {
    std::string p(static_cast<size_t>(i), '\0');
    for (int j = 0; j < i; ++j) p[j] = static_cast<char>(i * 31 + j);
    sent.push_back(p);
    ASSERT_TRUE(Publish("ping", p.data(), p.size()).ok());
    if (i % 100 == 99) {
      ASSERT_TRUE(Eventually([&] { return seen.count == i + 1; }));
    }
  }
  ASSERT_TRUE(Eventually([&] { return seen.count == kEvents; }));
  absl::MutexLock lock(&seen.mu);
  EXPECT_EQ(seen.payloads, sent);
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(seen.sequences[i], static_cast<uint64_t>(i));
    EXPECT_EQ(seen.dropped_before[i], 0u);
    EXPECT_EQ(seen.sources[i], ::getpid());
    EXPECT_EQ(seen.types[i], "ping");
  }
  EXPECT_TRUE(seen.on_interrupt_thread);
}

TEST_F(InterruptsTest, TypesAreRegisteredOnceAndBadInputIsRefused) {
  absl::StatusOr<EventType> a = RegisterType("alpha");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(RegisterType("alpha")->id, a->id);
  EXPECT_NE(RegisterType("beta")->id, a->id);

  absl::Status empty = RegisterType("").status();
  EXPECT_TRUE(absl::IsInvalidArgument(empty)) << empty;
  absl::Status longer = RegisterType(std::string(kMaxTypeName + 1, 'x')).status();
  EXPECT_TRUE(absl::IsInvalidArgument(longer)) << longer;
  absl::Status reserved = Publish(kPrimaryExited, "", 0);
  EXPECT_TRUE(absl::IsInvalidArgument(reserved)) << reserved;
  EXPECT_THAT(reserved.message(), HasSubstr("keel itself"));

  const std::string big(kMaxPayload + 1, 'x');
  absl::Status too_big = Publish("alpha", big.data(), big.size());
  EXPECT_TRUE(absl::IsInvalidArgument(too_big)) << too_big;
  EXPECT_THAT(too_big.message(), HasSubstr("481 bytes"));
  EXPECT_TRUE(absl::IsInvalidArgument(Publish(EventType{kMaxTypes - 1}, "", 0)));

  // Unicast to a process that does not subscribe.
  absl::Status nobody = Publish("alpha", "x", 1, ::getpid());
  EXPECT_TRUE(absl::IsNotFound(nobody)) << nobody;
  EXPECT_THAT(nobody.message(), HasSubstr("does not subscribe"));
  EXPECT_TRUE(Publish("alpha", "x", 1).ok()) << "a broadcast to nobody is fine";

  EXPECT_TRUE(absl::IsInvalidArgument(Subscribe("alpha", nullptr, nullptr).status()));
  EXPECT_TRUE(absl::IsNotFound(Unsubscribe(12345)));

  // The table fills at kMaxTypes; what is there stays usable.
  for (int i = 0;; ++i) {
    absl::StatusOr<EventType> t = RegisterType(absl::StrCat("type", i));
    if (!t.ok()) {
      EXPECT_TRUE(absl::IsResourceExhausted(t.status())) << t.status();
      break;
    }
    ASSERT_LT(i, kMaxTypes);
  }
  EXPECT_EQ(RegisterType("alpha")->id, a->id);
  absl::StatusOr<RelayInfo> info = DescribeRelay();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->types.size(), static_cast<size_t>(kMaxTypes));
}

TEST_F(InterruptsTest, AFullMailboxDropsCountsAndTheSubscriberSeesTheGap) {
  // The subscriber's callback blocks on the first event: the mailbox fills behind it.
  struct Blocked {
    absl::Notification entered;
    absl::Notification release;
    Seen seen;
  } b;
  ASSERT_TRUE(Subscribe(
                  "burst",
                  [](const Event& e, void* arg) {
                    auto* b = static_cast<Blocked*>(arg);
                    if (e.sequence == 0) {
                      b->entered.Notify();
                      b->release.WaitForNotification();
                    }
                    Record(e, &b->seen);
                  },
                  &b)
                  .ok());
  constexpr int kPublished = 2000;
  ASSERT_TRUE(Publish("burst", "e", 1).ok());
  b.entered.WaitForNotification();
  for (int i = 1; i < kPublished; ++i) {
    ASSERT_TRUE(Publish("burst", "e", 1).ok()) << "a broadcast never fails for a full mailbox";
  }
  // Unicast says so.
  absl::Status full = Publish("burst", "e", 1, ::getpid());
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  absl::StatusOr<RelayInfo> info = DescribeRelay();
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->subscribers.size(), 1u);
  const SubscriberInfo& self = info->subscribers[0];
  EXPECT_EQ(self.pid, ::getpid());
  EXPECT_THAT(self.types, ElementsAre("burst"));
  const uint64_t capacity = self.capacity;
  ASSERT_GT(capacity, 0u);
  EXPECT_EQ(self.depth, capacity);
  EXPECT_EQ(self.published, static_cast<uint64_t>(kPublished + 1));
  EXPECT_EQ(self.dropped, kPublished + 1 - capacity);
  b.release.Notify();
  ASSERT_TRUE(Eventually([&] { return b.seen.count == static_cast<int>(capacity); }));
  ASSERT_TRUE(Publish("burst", "last", 4).ok());
  ASSERT_TRUE(Eventually([&] { return b.seen.count == static_cast<int>(capacity) + 1; }));
  absl::MutexLock lock(&b.seen.mu);
  for (uint64_t i = 0; i < capacity; ++i) EXPECT_EQ(b.seen.sequences[i], i);
  EXPECT_EQ(b.seen.sequences.back(), static_cast<uint64_t>(kPublished + 1));
  EXPECT_EQ(b.seen.dropped_before.back(), kPublished + 1 - capacity);
  EXPECT_EQ(b.seen.payloads.back(), "last");
}

struct Unsubscriber {
  SubscriptionId id = 0;
  std::atomic<int> calls{0};
  absl::Status result;
};

TEST_F(InterruptsTest, UnsubscribeFromInsideTheCallback) {
  Unsubscriber u;
  absl::StatusOr<SubscriptionId> id = Subscribe(
      "once",
      [](const Event&, void* arg) {
        auto* u = static_cast<Unsubscriber*>(arg);
        ++u->calls;
        u->result = Unsubscribe(u->id);
      },
      &u);
  ASSERT_TRUE(id.ok());
  u.id = *id;
  Seen after;
  ASSERT_TRUE(Subscribe("once", Record, &after).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Publish("once", "x", 1).ok());
  ASSERT_TRUE(Eventually([&] { return after.count == 5; }));
  EXPECT_EQ(u.calls, 1);
  EXPECT_TRUE(u.result.ok()) << u.result;
}

TEST_F(InterruptsTest, UnsubscribeWaitsForTheRunningCallback) {
  struct Slow {
    absl::Notification entered;
    std::atomic<bool> finished{false};
  } slow;
  absl::StatusOr<SubscriptionId> id = Subscribe(
      "slow",
      [](const Event&, void* arg) {
        auto* s = static_cast<Slow*>(arg);
        s->entered.Notify();
        absl::SleepFor(absl::Milliseconds(100));
        s->finished = true;
      },
      &slow);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(Publish("slow", "", 0).ok());
  slow.entered.WaitForNotification();
  ASSERT_TRUE(Unsubscribe(*id).ok());
  EXPECT_TRUE(slow.finished) << "Unsubscribe returned while its callback ran";
  absl::StatusOr<RelayInfo> info = DescribeRelay();
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->subscribers.size(), 1u);
  EXPECT_TRUE(info->subscribers[0].types.empty()) << "its subscription bit is cleared";
}

TEST_F(InterruptsTest, ARelayedDescriptorPublishesWhatItReads) {
  Seen seen;
  ASSERT_TRUE(Subscribe("link", Record, &seen).ok());
  // The "link": an eventfd toggled with the link state as its counter (1 up, 2 down).
  const int link = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_TRUE(RelayFd(link, "link").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(RelayFd(link, "link")));
  for (uint64_t state : {1, 2, 1}) {
    const int before = seen.count;
    Signal(link, state);
    ASSERT_TRUE(Eventually([&] { return seen.count == before + 1; }));
  }
  ASSERT_TRUE(UnrelayFd(link).ok());
  EXPECT_TRUE(absl::IsNotFound(UnrelayFd(link)));
  Signal(link, 1);
  absl::SleepFor(absl::Milliseconds(20));
  {
    absl::MutexLock lock(&seen.mu);
    ASSERT_EQ(seen.payloads.size(), 3u);
    const uint64_t want[] = {1, 2, 1};
    for (int i = 0; i < 3; ++i) {
      uint64_t v;
      ASSERT_EQ(seen.payloads[i].size(), sizeof(v));
      std::memcpy(&v, seen.payloads[i].data(), sizeof(v));
      EXPECT_EQ(v, want[i]);
    }
  }
  // A reader of its own: the payload is what it returns.
  uint64_t drained;
  ASSERT_EQ(::read(link, &drained, sizeof(drained)), 8);
  ASSERT_TRUE(RelayFd(
                  link, "link",
                  [](int fd, void* buffer, size_t capacity, void*) -> ssize_t {
                    uint64_t v;
                    if (::read(fd, &v, sizeof(v)) != sizeof(v)) return 0;
                    const char* text = v == 1 ? "up" : "down";
                    std::memcpy(buffer, text, std::strlen(text));
                    return static_cast<ssize_t>(std::strlen(text));
                  },
                  nullptr)
                  .ok());
  Signal(link, 2);
  ASSERT_TRUE(Eventually([&] { return seen.count == 4; }));
  absl::MutexLock lock(&seen.mu);
  EXPECT_EQ(seen.payloads.back(), "down");
  ::close(link);
}

TEST_F(InterruptsTest, ABusyPollingSubscriberNeedsFewDoorbells) {
  EXPECT_TRUE(absl::IsInvalidArgument(SetBusyPoll(absl::Milliseconds(11))));
  EXPECT_TRUE(absl::IsInvalidArgument(SetBusyPoll(-absl::Nanoseconds(1))));
  Seen seen;
  ASSERT_TRUE(Subscribe("poll", Record, &seen).ok());
  auto doorbells = [] { return DescribeRelay()->subscribers.at(0).doorbells; };
  // Sleeping (the default): an event after the subscriber slept rings.
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(Publish("poll", "x", 1).ok());
    ASSERT_TRUE(Eventually([&] { return seen.count == i; }));
    absl::SleepFor(absl::Milliseconds(1));
  }
  const uint64_t sleeping = doorbells();
  EXPECT_GE(sleeping, 15u) << "most of 20 events spaced 1 ms apart found the subscriber asleep";
  // Watching its mailbox for 10 ms after each event: events 0.2 ms apart need no
  // doorbell (some may, when this thread is descheduled for longer than the window).
  ASSERT_TRUE(SetBusyPoll(absl::Milliseconds(10)).ok());
  for (int i = 21; i <= 40; ++i) {
    ASSERT_TRUE(Publish("poll", "x", 1).ok());
    ASSERT_TRUE(Eventually([&] { return seen.count == i; }));
    absl::SleepFor(absl::Microseconds(200));
  }
  EXPECT_LE(doorbells() - sleeping, 10u);
  ASSERT_TRUE(SetBusyPoll(absl::ZeroDuration()).ok());
}

// A second subscription to a type gets only what is published after it subscribed, not
// the records already queued for the first.
TEST_F(InterruptsTest, ASecondSubscriptionGetsNoEventQueuedBeforeIt) {
  struct First {
    absl::Notification entered;
    absl::Notification release;
    std::atomic<int> count{0};
  } first;
  ASSERT_TRUE(Subscribe(
                  "t",
                  [](const Event& e, void* arg) {
                    auto* f = static_cast<First*>(arg);
                    if (f->count++ == 0) {
                      f->entered.Notify();
                      f->release.WaitForNotification();
                    }
                  },
                  &first)
                  .ok());
  ASSERT_TRUE(Publish("t", "0", 1).ok());
  first.entered.WaitForNotification();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Publish("t", "q", 1).ok());  // queued behind it
  Seen second;
  ASSERT_TRUE(Subscribe("t", Record, &second).ok());
  first.release.Notify();
  ASSERT_TRUE(Eventually([&] { return first.count == 11; }));
  EXPECT_EQ(second.count, 0) << "events queued before it subscribed";
  ASSERT_TRUE(Publish("t", "after", 5).ok());
  ASSERT_TRUE(Eventually([&] { return second.count == 1; }));
  absl::MutexLock lock(&second.mu);
  EXPECT_EQ(second.payloads[0], "after");
}

// A relayed fd's reader may stop its own relay, and a failed one may be relayed again.
TEST_F(InterruptsTest, AReaderMayUnrelayItsOwnDescriptor) {
  Seen seen;
  ASSERT_TRUE(Subscribe("dev", Record, &seen).ok());
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  static int relayed_fd;
  relayed_fd = fd;
  ASSERT_TRUE(RelayFd(
                  fd, "dev",
                  [](int fd, void* buffer, size_t, void*) -> ssize_t {
                    uint64_t v;
                    if (::read(fd, &v, sizeof(v)) != sizeof(v)) return 0;
                    (void)UnrelayFd(relayed_fd);  // frees the relay while it runs
                    std::memcpy(buffer, &v, sizeof(v));
                    return sizeof(v);
                  },
                  nullptr)
                  .ok());
  Signal(fd, 5);
  ASSERT_TRUE(Eventually([&] { return seen.count == 1; }));
  EXPECT_TRUE(absl::IsNotFound(UnrelayFd(fd)));
  // A reader that fails unregisters itself; RelayFd then takes the fd again.
  ASSERT_TRUE(RelayFd(
                  fd, "dev", [](int, void*, size_t, void*) -> ssize_t { return -1; }, nullptr)
                  .ok());
  Signal(fd, 1);
  // Until the failed reader has unregistered itself, RelayFd says AlreadyExists (and
  // leaves the relay as it was); then it replaces it.
  ASSERT_TRUE(Eventually([&] { return RelayFd(fd, "dev").ok(); })) << "replaces the failed relay";
  ASSERT_TRUE(Eventually([&] { return seen.count == 2; }));
  ASSERT_TRUE(UnrelayFd(fd).ok());
  ::close(fd);
}

TEST_F(InterruptsTest, ThePrimaryReceivesNoPrimaryExitedEvent) {
  Seen seen;
  ASSERT_TRUE(Subscribe(kPrimaryExited, Record, &seen).ok());
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(seen.count, 0);
}

}  // namespace
}  // namespace keel::interrupts
