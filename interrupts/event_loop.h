// An interrupt thread: one epoll thread that runs callbacks when file descriptors become
// ready. eal::Init starts one per process (interrupts.h); this class is that thread on
// its own, for programs without the EAL and for tests.
//
//   std::unique_ptr<EventLoop> loop = *EventLoop::Start("my-intr");
//   int efd = eventfd(0, EFD_NONBLOCK);
//   loop->Register(efd, [](int fd, uint32_t, void*) { uint64_t n; read(fd, &n, 8); }, nullptr);
//   ...
//   loop->Unregister(efd, kAnyCallback, kAnyArg);   // the callback no longer runs
//
// Any pollable descriptor works: eventfd, timerfd, signalfd, sockets, pipes, device fds
// (UIO, VFIO eventfds). Regular files cannot be polled (epoll refuses them: the error
// says so).
//
// Callback contract:
//   - Callbacks run on the loop's thread, one at a time, in the order epoll reports their
//     descriptors; several callbacks of one descriptor run in registration order.
//   - `events` is what epoll reported (EPOLLIN, EPOLLHUP, EPOLLERR, ...). Descriptors are
//     level-triggered: a callback that does not consume what made its descriptor ready
//     (read the eventfd, accept the connection) is called again at once. EPOLLHUP and
//     EPOLLERR are always reported: unregister a descriptor that reports them for good.
//   - A callback may block, but everything else on this thread waits meanwhile (other
//     descriptors, the interrupt relay's deliveries): keep it short, hand long work to a
//     worker.
//   - A callback may call Register and Unregister, on its own descriptor too: an
//     Unregister from inside the callback it removes takes effect at once and does not
//     wait (DPDK's rte_intr_callback_unregister_pending, without a second function).
//   - The loop's thread blocks every signal, so signals go to the application's threads.
#ifndef KEEL_INTERRUPTS_EVENT_LOOP_H_
#define KEEL_INTERRUPTS_EVENT_LOOP_H_

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace keel::interrupts {

// Called on the loop's thread when `fd` is ready; `events` as epoll reported them.
using Callback = void (*)(int fd, uint32_t events, void* arg);

// Wildcards for Unregister.
inline const Callback kAnyCallback = nullptr;
inline void* const kAnyArg = reinterpret_cast<void*>(~uintptr_t{0});

struct LoopStats {
  uint64_t wakeups = 0;  // epoll_wait returns with at least one descriptor ready
  uint64_t callbacks_run = 0;
  uint64_t wait_errors = 0;  // epoll_wait failures other than EINTR (logged)
  size_t descriptors = 0;    // registered now
  size_t callbacks = 0;      // registered now
};

class EventLoop {
 public:
  // Creates the epoll set and starts the thread, named `thread_name` (at most 15
  // characters are kept). Internal with the errno when epoll, eventfd or the thread
  // cannot be created.
  static absl::StatusOr<std::unique_ptr<EventLoop>> Start(absl::string_view thread_name);

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  // Stops the thread (waiting for a running callback to return) and closes the epoll
  // set. Registered descriptors are not closed: they are the caller's. Must not be called
  // on the loop's thread.
  ~EventLoop();

  // Runs `callback(fd, events, arg)` on the loop's thread whenever `fd` is ready for
  // `events` (EPOLLIN by default; EPOLLHUP and EPOLLERR always). Thread-safe; one
  // epoll_ctl (ADD for a new descriptor, MOD when `events` widens its set, none
  // otherwise). Errors: InvalidArgument (negative fd, null callback, events without
  // EPOLLIN/EPOLLOUT/EPOLLPRI/EPOLLRDHUP), AlreadyExists (this fd, callback and arg are
  // registered), and epoll_ctl's refusal with its errno (PermissionDenied for a regular
  // file, InvalidArgument for EBADF); nothing changes then.
  absl::Status Register(int fd, Callback callback, void* arg, uint32_t events = EPOLLIN);

  // Removes the callbacks of `fd` that match `callback` and `arg` (kAnyCallback and
  // kAnyArg match all) and returns how many. Thread-safe. On return none of them runs
  // again, and none is running, except when called on the loop's thread (from a
  // callback): then it returns at once, the running callback finishes. The last removal
  // of a descriptor is one epoll_ctl(DEL). NotFound when nothing matched.
  absl::StatusOr<int> Unregister(int fd, Callback callback, void* arg);

  // True on the loop's thread (inside a callback).
  bool InLoopThread() const;

  LoopStats Stats() const;

 private:
  struct Entry {
    uint64_t id;
    Callback callback;
    void* arg;
    uint32_t events;
  };
  struct Source {
    uint64_t key;     // epoll_data: (fd << 32) | generation: stale reports are told apart
    uint32_t events;  // the union registered with epoll
    std::vector<Entry> entries;
  };

  EventLoop() = default;
  static void* RunThread(void* self);
  void Run();
  void Dispatch(const epoll_event& event);
  absl::Status EpollControl(int op, int fd, uint32_t events, uint64_t key);

  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: readable once the destructor asks the thread to stop
  pthread_t thread_{};
  bool running_ = false;
  // The loop thread's kernel tid, stored by the thread before it runs any callback.
  std::atomic<pid_t> loop_tid_{0};

  mutable absl::Mutex mu_;
  absl::CondVar idle_;  // signalled when running_id_ goes back to 0
  absl::flat_hash_map<int, Source> sources_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint32_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t running_id_ ABSL_GUARDED_BY(mu_) = 0;  // the entry whose callback runs now
  LoopStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keel::interrupts

#endif  // KEEL_INTERRUPTS_EVENT_LOOP_H_
