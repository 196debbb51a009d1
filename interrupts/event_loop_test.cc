#include "interrupts/event_loop.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/eventually.h"

namespace keel::interrupts {
namespace {

using ::keel::testing::Eventually;

int NewEventFd() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  return fd;
}

void Signal(int fd) {
  const uint64_t one = 1;
  ASSERT_EQ(::write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
}

uint64_t Drain(int fd) {
  uint64_t n = 0;
  return ::read(fd, &n, sizeof(n)) == sizeof(n) ? n : 0;
}

std::unique_ptr<EventLoop> StartLoop() {
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Start("test-intr");
  EXPECT_TRUE(loop.ok()) << loop.status();
  return loop.ok() ? *std::move(loop) : nullptr;
}

struct Counter {
  EventLoop* loop = nullptr;
  std::atomic<int> calls{0};
  std::atomic<uint64_t> total{0};
  std::atomic<bool> on_loop_thread{true};
};

void CountAndDrain(int fd, uint32_t events, void* arg) {
  auto* c = static_cast<Counter*>(arg);
  if (!c->loop->InLoopThread()) c->on_loop_thread = false;
  c->total += Drain(fd);
  ++c->calls;
}

TEST(EventLoopTest, RunsCallbacksOnItsThread) {
  std::unique_ptr<EventLoop> loop = StartLoop();
  Counter counter;
  counter.loop = loop.get();
  const int fd = NewEventFd();
  ASSERT_TRUE(loop->Register(fd, &CountAndDrain, &counter).ok());
  EXPECT_FALSE(loop->InLoopThread());
  for (int i = 0; i < 100; ++i) {
    Signal(fd);
    ASSERT_TRUE(Eventually([&] { return counter.total == static_cast<uint64_t>(i + 1); }));
  }
  EXPECT_TRUE(counter.on_loop_thread);
  EXPECT_EQ(loop->Stats().descriptors, 1u);
  EXPECT_EQ(*loop->Unregister(fd, kAnyCallback, kAnyArg), 1);
  Signal(fd);
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(counter.total, 100u) << "a callback ran after Unregister returned";
  EXPECT_EQ(loop->Stats().descriptors, 0u);
  ::close(fd);
}

struct Ordered {
  std::vector<int> order;
  std::atomic<int> calls{0};
};
void First(int fd, uint32_t, void* arg) { static_cast<Ordered*>(arg)->order.push_back(1); }
void Second(int fd, uint32_t, void* arg) {
  auto* o = static_cast<Ordered*>(arg);
  o->order.push_back(2);
  Drain(fd);
  ++o->calls;
}

TEST(EventLoopTest, CallbacksOfOneDescriptorRunInRegistrationOrder) {
  std::unique_ptr<EventLoop> loop = StartLoop();
  Ordered o;
  const int fd = NewEventFd();
  ASSERT_TRUE(loop->Register(fd, &First, &o).ok());
  ASSERT_TRUE(loop->Register(fd, &Second, &o).ok());
  Signal(fd);
  ASSERT_TRUE(Eventually([&] { return o.calls == 1; }));
  loop.reset();
  EXPECT_EQ(o.order, (std::vector<int>{1, 2}));
  ::close(fd);
}

TEST(EventLoopTest, RefusesBadRegistrationsAndChangesNothing) {
  std::unique_ptr<EventLoop> loop = StartLoop();
  Counter counter;
  counter.loop = loop.get();
  const int fd = NewEventFd();
  ASSERT_TRUE(loop->Register(fd, &CountAndDrain, &counter).ok());

  absl::Status again = loop->Register(fd, &CountAndDrain, &counter);
  EXPECT_TRUE(absl::IsAlreadyExists(again)) << again;
  EXPECT_TRUE(absl::IsInvalidArgument(loop->Register(-1, &CountAndDrain, nullptr)));
  EXPECT_TRUE(absl::IsInvalidArgument(loop->Register(fd, nullptr, nullptr)));
  absl::Status et = loop->Register(fd, &First, nullptr, EPOLLIN | EPOLLET);
  EXPECT_TRUE(absl::IsInvalidArgument(et)) << et;
  EXPECT_NE(et.message().find("EPOLLET"), std::string::npos) << et;

  // A regular file cannot be polled: epoll says EPERM, and the message says why.
  char path[] = "/tmp/keel-event-loop-XXXXXX";
  const int file = ::mkstemp(path);
  ASSERT_GE(file, 0);
  ::unlink(path);
  absl::Status regular = loop->Register(file, &First, nullptr);
  EXPECT_TRUE(absl::IsPermissionDenied(regular)) << regular;
  EXPECT_NE(regular.message().find("regular file"), std::string::npos) << regular;
  ::close(file);
  // A closed descriptor.
  const int closed = NewEventFd();
  ::close(closed);
  absl::Status bad = loop->Register(closed, &First, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;

  EXPECT_TRUE(absl::IsNotFound(loop->Unregister(fd, &First, kAnyArg).status()));
  EXPECT_TRUE(absl::IsNotFound(loop->Unregister(fd + 1000, kAnyCallback, kAnyArg).status()));
  EXPECT_EQ(loop->Stats().callbacks, 1u);
  // The registration that was there still works.
  Signal(fd);
  ASSERT_TRUE(Eventually([&] { return counter.total == 1; }));
  ::close(fd);
}

struct Blocking {
  absl::Notification started;
  std::atomic<bool> finished{false};
};
void SlowCallback(int fd, uint32_t, void* arg) {
  auto* b = static_cast<Blocking*>(arg);
  Drain(fd);
  b->started.Notify();
  absl::SleepFor(absl::Milliseconds(100));
  b->finished = true;
}

TEST(EventLoopTest, UnregisterWaitsForTheRunningCallback) {
  std::unique_ptr<EventLoop> loop = StartLoop();
  Blocking b;
  const int fd = NewEventFd();
  ASSERT_TRUE(loop->Register(fd, &SlowCallback, &b).ok());
  Signal(fd);
  b.started.WaitForNotification();
  EXPECT_EQ(*loop->Unregister(fd, &SlowCallback, &b), 1);
  EXPECT_TRUE(b.finished) << "Unregister returned while its callback was running";
  ::close(fd);
}

struct SelfRemoving {
  EventLoop* loop;
  std::atomic<int> calls{0};
  absl::StatusOr<int> result = 0;
};
void RemoveSelf(int fd, uint32_t, void* arg) {
  auto* r = static_cast<SelfRemoving*>(arg);
  // Does not wait for itself (it would never return), and does not drain the eventfd:
  // were it still registered, it would run again at once.
  absl::StatusOr<int> result = r->loop->Unregister(fd, &RemoveSelf, arg);
  // The result before the count (a seq_cst increment the test waits for): the test reads
  // `result` once it sees the call (TSan found the test reading it while it was written).
  if (r->calls == 0) r->result = std::move(result);
  ++r->calls;
}

TEST(EventLoopTest, UnregisterFromInsideTheCallback) {
  std::unique_ptr<EventLoop> loop = StartLoop();
  SelfRemoving r{loop.get()};
  const int fd = NewEventFd();
  ASSERT_TRUE(loop->Register(fd, &RemoveSelf, &r).ok());
  Signal(fd);
  ASSERT_TRUE(Eventually([&] { return r.calls >= 1; }));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(r.calls, 1);
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_EQ(*r.result, 1);
  EXPECT_EQ(loop->Stats().descriptors, 0u);
  ::close(fd);
}

// Two ready eventfds, registered while the loop is held in a callback of a third: the
// next epoll batch reports both. Whichever callback runs first unregisters and closes the
// other, then registers a new eventfd (which gets the closed one's number) that is not
// ready. The other's report in the same batch is stale and must reach nobody.
struct Swap {
  EventLoop* loop;
  int fds[2];
  std::atomic<int> first_calls{0};
  std::atomic<int> stale_calls{0};
  int survivor = -1;
  int replacement = -1;
};
void Stale(int, uint32_t, void* arg) { ++static_cast<Swap*>(arg)->stale_calls; }
void SwapOther(int fd, uint32_t, void* arg) {
  auto* s = static_cast<Swap*>(arg);
  Drain(fd);
  if (s->first_calls++ > 0) return;
  s->survivor = fd;
  const int other = fd == s->fds[0] ? s->fds[1] : s->fds[0];
  (void)s->loop->Unregister(other, kAnyCallback, kAnyArg);
  ::close(other);
  s->replacement = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  (void)s->loop->Register(s->replacement, &Stale, arg);
}
struct Hold {
  absl::Notification entered;
  absl::Notification release;
};
void HoldLoop(int fd, uint32_t, void* arg) {
  auto* h = static_cast<Hold*>(arg);
  Drain(fd);
  h->entered.Notify();
  h->release.WaitForNotification();
}

TEST(EventLoopTest, StaleReportsOfAReusedDescriptorNumberReachNobody) {
  for (int round = 0; round < 20; ++round) {
    std::unique_ptr<EventLoop> loop = StartLoop();
    Hold hold;
    const int holder = NewEventFd();
    ASSERT_TRUE(loop->Register(holder, &HoldLoop, &hold).ok());
    Signal(holder);
    hold.entered.WaitForNotification();  // the loop is inside HoldLoop
    Swap s{loop.get(), {NewEventFd(), NewEventFd()}};
    Signal(s.fds[0]);
    Signal(s.fds[1]);
    ASSERT_TRUE(loop->Register(s.fds[0], &SwapOther, &s).ok());
    ASSERT_TRUE(loop->Register(s.fds[1], &SwapOther, &s).ok());
    hold.release.Notify();
    ASSERT_TRUE(Eventually([&] { return s.first_calls >= 1; }));
    absl::SleepFor(absl::Milliseconds(2));
    loop.reset();
    EXPECT_EQ(s.first_calls, 1);
    EXPECT_EQ(s.stale_calls, 0) << "round " << round;
    EXPECT_EQ(s.replacement == s.fds[0] || s.replacement == s.fds[1], true)
        << "the new eventfd did not reuse the closed number: the case was not exercised";
    ::close(s.survivor);
    ::close(s.replacement);
    ::close(holder);
  }
}

struct Ticks {
  std::atomic<uint64_t> expirations{0};
};
void OnTimer(int fd, uint32_t, void* arg) { static_cast<Ticks*>(arg)->expirations += Drain(fd); }

TEST(EventLoopTest, TimerfdSignalfdAndSocketsWork) {
  std::unique_ptr<EventLoop> loop = StartLoop();
  // A periodic timerfd, every millisecond.
  const int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  ASSERT_GE(tfd, 0);
  itimerspec spec = {{0, 1'000'000}, {0, 1'000'000}};
  ASSERT_EQ(::timerfd_settime(tfd, 0, &spec, nullptr), 0);
  Ticks ticks;
  ASSERT_TRUE(loop->Register(tfd, &OnTimer, &ticks).ok());
  ASSERT_TRUE(Eventually([&] { return ticks.expirations >= 20; }));
  ASSERT_TRUE(loop->Unregister(tfd, kAnyCallback, kAnyArg).ok());
  ::close(tfd);

  // A signalfd: SIGUSR1 blocked in this thread (the loop's thread blocks every signal),
  // delivered to the descriptor.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &mask, nullptr), 0);
  const int sfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  ASSERT_GE(sfd, 0);
  std::atomic<int> signals{0};
  ASSERT_TRUE(loop->Register(
                      sfd,
                      [](int fd, uint32_t, void* arg) {
                        signalfd_siginfo info;
                        while (::read(fd, &info, sizeof(info)) == sizeof(info)) {
                          if (info.ssi_signo == SIGUSR1) ++*static_cast<std::atomic<int>*>(arg);
                        }
                      },
                      &signals)
                  .ok());
  ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
  ASSERT_TRUE(Eventually([&] { return signals == 1; }));
  ASSERT_TRUE(loop->Unregister(sfd, kAnyCallback, kAnyArg).ok());
  ::close(sfd);

  // A socket pair: data, then the peer's close (EPOLLHUP/EPOLLRDHUP).
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, pair), 0);
  struct Peer {
    EventLoop* loop;
    std::atomic<int> messages{0};
    std::atomic<bool> hung_up{false};
  } peer{loop.get()};
  ASSERT_TRUE(loop->Register(
                      pair[0],
                      [](int fd, uint32_t events, void* arg) {
                        auto* p = static_cast<Peer*>(arg);
                        char buffer[64];
                        ssize_t n;
                        while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) ++p->messages;
                        if (n == 0 || (events & EPOLLHUP) != 0) {
                          p->hung_up = true;
                          (void)p->loop->Unregister(fd, kAnyCallback, kAnyArg);
                        }
                      },
                      &peer, EPOLLIN | EPOLLRDHUP)
                  .ok());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(::send(pair[1], "x", 1, 0), 1);
  ASSERT_TRUE(Eventually([&] { return peer.messages == 10; }));
  ::close(pair[1]);
  ASSERT_TRUE(Eventually([&] { return peer.hung_up.load(); }));
  EXPECT_EQ(loop->Stats().descriptors, 0u);
  ::close(pair[0]);
}

TEST(EventLoopTest, HundredsOfDescriptorsFromManyThreads) {
  std::unique_ptr<EventLoop> loop = StartLoop();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100;  // 400 descriptors: well under a 1024 RLIMIT_NOFILE
  Counter counter;
  counter.loop = loop.get();
  std::vector<int> fds(kThreads * kPerThread);
  for (int& fd : fds) fd = NewEventFd();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t * kPerThread; i < (t + 1) * kPerThread; ++i) {
        ASSERT_TRUE(loop->Register(fds[i], &CountAndDrain, &counter).ok());
        Signal(fds[i]);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(Eventually([&] { return counter.total == fds.size(); }));
  EXPECT_EQ(loop->Stats().descriptors, fds.size());
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t * kPerThread; i < (t + 1) * kPerThread; ++i) {
        ASSERT_EQ(*loop->Unregister(fds[i], kAnyCallback, kAnyArg), 1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(loop->Stats().descriptors, 0u);
  EXPECT_EQ(loop->Stats().callbacks, 0u);
  for (int fd : fds) ::close(fd);
}

TEST(EventLoopTest, StopsWithCallbacksRegistered) {
  Counter counter;
  const int fd = NewEventFd();
  {
    std::unique_ptr<EventLoop> loop = StartLoop();
    counter.loop = loop.get();
    ASSERT_TRUE(loop->Register(fd, &CountAndDrain, &counter).ok());
  }
  // The descriptor is the caller's: still open.
  EXPECT_EQ(::fcntl(fd, F_GETFD), FD_CLOEXEC);
  ::close(fd);
}

}  // namespace
}  // namespace keel::interrupts
