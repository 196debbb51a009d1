#include "interrupts/event_loop.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "base/status.h"
#include "base/unix_socket.h"

namespace keel::interrupts {
namespace {

constexpr char kComponent[] = "interrupts";
constexpr int kMaxEventsPerWait = 64;
constexpr uint32_t kReadinessEvents = EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP;
// epoll_data of the stop eventfd: no registered source has key 0 (generations start at 1).
constexpr uint64_t kStopKey = 0;

const char* OpName(int op) {
  return op == EPOLL_CTL_ADD ? "ADD" : op == EPOLL_CTL_MOD ? "MOD" : "DEL";
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Start(absl::string_view thread_name) {
  std::unique_ptr<EventLoop> loop(new EventLoop);
  loop->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (loop->epoll_fd_ < 0) {
    return absl::InternalError(absl::StrCat("epoll_create1: ", ErrnoText(errno)));
  }
  loop->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->stop_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", ErrnoText(errno)));
  epoll_event stop = {};
  stop.events = EPOLLIN;
  stop.data.u64 = kStopKey;
  if (::epoll_ctl(loop->epoll_fd_, EPOLL_CTL_ADD, loop->stop_fd_, &stop) != 0) {
    return absl::InternalError(
        absl::StrCat("epoll_ctl(ADD) of the stop eventfd: ", ErrnoText(errno)));
  }
  // The thread blocks every signal: signals sent to the process go to the application's
  // threads, as if this one did not exist.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const int err = pthread_create(&loop->thread_, nullptr, &EventLoop::RunThread, loop.get());
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err != 0) return absl::InternalError(absl::StrCat("pthread_create: ", ErrnoText(err)));
  loop->running_ = true;
  const std::string name(thread_name.substr(0, 15));
  pthread_setname_np(loop->thread_, name.c_str());
  return loop;
}

EventLoop::~EventLoop() {
  if (running_) {
    const uint64_t one = 1;
    // One write cannot overflow the eventfd's counter; EINTR aside it succeeds.
    while (::write(stop_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    pthread_join(thread_, nullptr);
  }
  for (int fd : {epoll_fd_, stop_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

void* EventLoop::RunThread(void* self) {
  static_cast<EventLoop*>(self)->Run();
  return nullptr;
}

bool EventLoop::InLoopThread() const {
  // Relaxed: only the loop thread stores its own tid; any other thread reads either 0 or
  // that tid, and neither equals its own.
  return loop_tid_.load(std::memory_order_relaxed) == ::gettid();
}

absl::Status EventLoop::EpollControl(int op, int fd, uint32_t events, uint64_t key) {
  epoll_event event = {};
  event.events = events;
  event.data.u64 = key;
  if (::epoll_ctl(epoll_fd_, op, fd, &event) == 0) return absl::OkStatus();
  const int err = errno;
  std::string why = absl::StrFormat("fd %d: epoll_ctl(%s)", fd, OpName(op));
  if (err == EPERM) why += " (a regular file or directory cannot be polled)";
  if (err == EBADF) return absl::InvalidArgumentError(absl::StrCat(why, ": ", ErrnoText(err)));
  return ErrnoStatus(err, why, "");
}

absl::Status EventLoop::Register(int fd, Callback callback, void* arg, uint32_t events) {
  if (fd < 0) return absl::InvalidArgumentError(absl::StrFormat("fd %d: not a descriptor", fd));
  if (callback == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat("fd %d: the callback is null", fd));
  }
  if ((events & kReadinessEvents) == 0 ||
      (events & ~(kReadinessEvents | EPOLLHUP | EPOLLERR)) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "fd %d: events 0x%x: give EPOLLIN, EPOLLOUT, EPOLLPRI or EPOLLRDHUP (level-triggered; "
        "no EPOLLET or EPOLLONESHOT)",
        fd, events));
  }
  absl::MutexLock lock(&mu_);
  auto it = sources_.find(fd);
  if (it == sources_.end()) {
    const uint64_t key = (static_cast<uint64_t>(fd) << 32) | next_generation_;
    if (absl::Status s = EpollControl(EPOLL_CTL_ADD, fd, events, key); !s.ok()) return s;
    next_generation_ = next_generation_ == UINT32_MAX ? 1 : next_generation_ + 1;
    it = sources_.emplace(fd, Source{key, events, {}}).first;
  } else {
    Source& source = it->second;
    for (const Entry& e : source.entries) {
      if (e.callback == callback && e.arg == arg) {
        return absl::AlreadyExistsError(
            absl::StrFormat("fd %d: this callback is registered already with arg %p", fd, arg));
      }
    }
    if ((source.events | events) != source.events) {
      if (absl::Status s = EpollControl(EPOLL_CTL_MOD, fd, source.events | events, source.key);
          !s.ok()) {
        return s;
      }
      source.events |= events;
    }
  }
  it->second.entries.push_back(Entry{next_id_++, callback, arg, events});
  ++stats_.callbacks;
  stats_.descriptors = sources_.size();
  return absl::OkStatus();
}

absl::StatusOr<int> EventLoop::Unregister(int fd, Callback callback, void* arg) {
  const bool on_loop = InLoopThread();
  absl::MutexLock lock(&mu_);
  auto it = sources_.find(fd);
  if (it == sources_.end()) {
    return absl::NotFoundError(absl::StrFormat("fd %d: no callback is registered", fd));
  }
  Source& source = it->second;
  std::vector<uint64_t> removed;
  uint32_t remaining_events = 0;
  auto matches = [&](const Entry& e) {
    return (callback == kAnyCallback || e.callback == callback) && (arg == kAnyArg || e.arg == arg);
  };
  for (const Entry& e : source.entries) {
    if (matches(e)) {
      removed.push_back(e.id);
    } else {
      remaining_events |= e.events;
    }
  }
  if (removed.empty()) {
    return absl::NotFoundError(
        absl::StrFormat("fd %d: no registered callback matches (arg %p)", fd, arg));
  }
  if (removed.size() == source.entries.size()) {
    // The descriptor may be closed already (the caller's mistake, but not ours to fail
    // for): epoll forgets closed descriptors by itself, so EBADF and ENOENT are fine.
    epoll_event unused = {};
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, &unused) != 0 && errno != EBADF &&
        errno != ENOENT) {
      KEEL_LOG(Warning, kComponent, "fd %d: epoll_ctl(DEL): %s; its callbacks are removed anyway",
               fd, ErrnoText(errno));
    }
    sources_.erase(it);
  } else {
    source.entries.erase(std::remove_if(source.entries.begin(), source.entries.end(), matches),
                         source.entries.end());
    // The set only narrows; a wider set than needed costs spurious wake-ups, not
    // correctness, so a failed MOD is logged and kept.
    if (remaining_events != source.events) {
      if (EpollControl(EPOLL_CTL_MOD, fd, remaining_events, source.key).ok()) {
        source.events = remaining_events;
      }
    }
  }
  stats_.callbacks -= removed.size();
  stats_.descriptors = sources_.size();
  // Off the loop thread, a callback being removed may be running: wait until it returns.
  // On the loop thread the running callback is the caller (or none runs).
  if (!on_loop) {
    auto not_running = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::find(removed.begin(), removed.end(), running_id_) == removed.end();
    };
    while (!not_running()) idle_.Wait(&mu_);
  }
  return static_cast<int>(removed.size());
}

LoopStats EventLoop::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void EventLoop::Run() {
  // Relaxed: read only by this thread (InLoopThread on any other thread compares with
  // its own tid, which this never equals).
  loop_tid_.store(::gettid(), std::memory_order_relaxed);
  epoll_event events[kMaxEventsPerWait];
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_, events, kMaxEventsPerWait, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      {
        absl::MutexLock lock(&mu_);
        ++stats_.wait_errors;
      }
      KEEL_LOG(Error, kComponent, "epoll_wait: %s; retrying in 10 ms", ErrnoText(errno));
      absl::SleepFor(absl::Milliseconds(10));
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      ++stats_.wakeups;
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kStopKey) return;
    }
    for (int i = 0; i < n; ++i) Dispatch(events[i]);
  }
}

void EventLoop::Dispatch(const epoll_event& event) {
  const int fd = static_cast<int>(event.data.u64 >> 32);
  // The callbacks of fd, one at a time, each looked up again under the lock before it
  // runs: an earlier callback of this batch may have removed it, or removed the whole
  // descriptor and registered another with the same number (its key differs).
  uint64_t last_id = 0;
  for (;;) {
    Entry entry;
    {
      absl::MutexLock lock(&mu_);
      running_id_ = 0;
      idle_.SignalAll();
      auto it = sources_.find(fd);
      if (it == sources_.end() || it->second.key != event.data.u64) return;
      const std::vector<Entry>& entries = it->second.entries;
      // Entries are in id order: the next to run is the first after the last that ran.
      auto next = std::upper_bound(entries.begin(), entries.end(), last_id,
                                   [](uint64_t id, const Entry& e) { return id < e.id; });
      // An entry registered for EPOLLOUT alone is not called for EPOLLIN, and so on;
      // EPOLLHUP and EPOLLERR reach every entry.
      while (next != entries.end() && (next->events & event.events & (kReadinessEvents)) == 0 &&
             (event.events & (EPOLLHUP | EPOLLERR)) == 0) {
        ++next;
      }
      if (next == entries.end()) return;
      entry = *next;
      last_id = entry.id;
      running_id_ = entry.id;
      ++stats_.callbacks_run;
    }
    entry.callback(fd, event.events, entry.arg);
  }
}

}  // namespace keel::interrupts
