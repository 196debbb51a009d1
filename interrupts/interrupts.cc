// The interrupts component: the process's interrupt thread (started by eal::Init) and
// the interrupt relay.
//
// The relay's roles:
//   - The primary is the one producer of every mailbox. Its own publishers (any thread)
//     and its interrupt thread (relaying a secondary's events) push under produce_mu.
//   - Each subscribing process consumes its own mailbox on its interrupt thread, woken
//     by its doorbell eventfd (mailbox.h: rung only when it sleeps).
//   - The relay's socket RUNDIR/intr (SOCK_SEQPACKET, 0600; peers must be this uid or
//     root) is served by the primary's interrupt thread. A secondary's first Subscribe
//     or Publish connects: Hello (its token, and its doorbell by SCM_RIGHTS) -> the
//     primary resets the mailbox of the secondary's process slot, publishes its entry
//     and answers Welcome. Afterwards the secondary sends its Publish messages on the
//     same connection (never blocking: a full socket drops and counts), and the
//     connection's end tells the primary the secondary is gone: its entry is freed, its
//     doorbell closed, its mailbox kept for the next process of that slot.
//   - A secondary learns of the primary's death from the EAL's pidfd of the primary (or
//     the connection's end) on its interrupt thread, and delivers kPrimaryExited to its
//     own subscribers. Publishing and first subscriptions then fail with Unavailable.
//   - A primary that adopts the group (eal --adopt) finds the relay table, frees every
//     entry (the dead primary's peers are not its own) and listens on RUNDIR/intr again.
//     A secondary's interrupt thread, while the group has no primary, checks the EAL's
//     primary generation every kAdoptionPoll; once a new primary is ready it delivers
//     what is left in its mailbox, connects again (Hello: the new primary resets the
//     mailbox), sets its subscription bits again and delivers kPrimaryAdopted.
#include "interrupts/interrupts.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "base/kill_point.h"
#include "base/log.h"
#include "base/monotonic.h"
#include "base/names.h"
#include "base/robust_mutex.h"
#include "base/unix_socket.h"
#include "eal/eal.h"
#include "eal/internal/components.h"
#include "eal/internal/identity.h"
#include "interrupts/internal/layout.h"
#include "interrupts/internal/mailbox.h"
#include "memory/memory.h"

namespace keel::interrupts {
namespace {

using eal::ProcessType;
using namespace keel::interrupts_internal;  // NOLINT: the component's own layout

constexpr char kComponent[] = "interrupts";
constexpr char kTypesLock[] = "interrupt relay's type table lock";
// Local type ids of kPrimaryExited and kPrimaryAdopted (not in the shared table).
constexpr uint32_t kPrimaryExitedId = kMaxTypes;
constexpr uint32_t kPrimaryAdoptedId = kMaxTypes + 1;
// How often a secondary whose primary died looks for one that adopted the group.
constexpr absl::Duration kAdoptionPoll = absl::Milliseconds(1);
// Records one doorbell callback handles before it yields to the loop's other descriptors;
// messages one relay connection's callback handles likewise.
constexpr int kDrainBatch = 256;
// The longest busy-poll window SetBusyPoll accepts.
constexpr absl::Duration kMaxBusyPoll = absl::Milliseconds(10);

static_assert(interrupts::kMaxPayload == interrupts_internal::kMaxPayload);
static_assert(interrupts::kMaxTypes == interrupts_internal::kMaxTypes);
static_assert(interrupts::kMaxTypeName + 1 == kTypeNameSize);

// --- Messages on the relay's socket ----------------------------------------------------
constexpr uint32_t kMessageMagic = 0x6b6c7472;  // "rtlk"
enum MessageKind : uint32_t { kHello = 1, kWelcome = 2, kPublishMessage = 3 };

struct MessageHeader {
  uint32_t magic;  // kMessageMagic
  uint32_t layout_version;
  uint32_t kind;  // MessageKind
  uint32_t reserved;
};
// Secondary -> primary, carrying the doorbell eventfd.
struct HelloMessage {
  MessageHeader header;
  uint32_t token;  // the secondary's process token
  int32_t pid;     // as it sees itself (the primary records the kernel's SO_PEERCRED pid)
};
// Primary -> secondary.
struct WelcomeMessage {
  MessageHeader header;
  int32_t code;  // absl::StatusCode; 0: the mailbox of `slot` is the secondary's
  int32_t slot;
  char error[200];  // why not, NUL-terminated
};
// Secondary -> primary: one event, `length` payload bytes after the fixed part.
struct PublishHeader {
  MessageHeader header;
  uint32_t type;
  int32_t to;  // pid, or kBroadcast
  uint64_t timestamp_ns;
  uint32_t length;
  uint32_t reserved;
};
constexpr size_t kMaxPublishMessage = sizeof(PublishHeader) + kMaxPayload;

MessageHeader Header(MessageKind kind) { return {kMessageMagic, kLayoutVersion, kind, 0}; }
bool ValidHeader(const MessageHeader& h, MessageKind kind) {
  return h.magic == kMessageMagic && h.layout_version == kLayoutVersion && h.kind == kind;
}

std::string MailboxMemzone(int slot) { return absl::StrCat(kMailboxMemzonePrefix, slot); }

void RingDoorbell(int fd) {
  const uint64_t one = 1;
  // Never blocks: the eventfd is non-blocking, and its counter cannot reach the maximum
  // (the consumer reads it at every wake-up). A failure (EBADF) loses nothing the
  // consumer cannot find: it drains the whole mailbox whenever it wakes.
  while (::write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

// --- Process state ---------------------------------------------------------------------

// One subscriber as the primary's producer sees it (by process-table slot).
struct Peer {
  int doorbell_fd = -1;  // -1: no subscriber in this slot
  Mailbox* mailbox = nullptr;
  pid_t pid = 0;
  uint32_t token = 0;
  int connection_fd = -1;  // -1 for the primary's own mailbox
};

struct State;

// A connection to the primary's relay socket (the callback's arg; primary's loop thread).
struct Connection {
  State* state = nullptr;
  int fd = -1;
  pid_t pid = 0;  // SO_PEERCRED
  int slot = -1;  // set once welcomed
  uint32_t token = 0;
};

struct Subscription {
  SubscriptionId id;
  uint32_t type;
  EventCallback callback;
  void* arg;
  // The mailbox's next sequence when it subscribed: older records, queued for another
  // subscription of the type, are not this one's.
  uint64_t from_sequence;
  // kPrimaryExited: delivered already (PrimaryGone and a late watcher's one-shot may
  // both find a subscription made at the moment of the death).
  bool told;
};

struct Relayed {
  State* state;
  int fd;
  uint32_t type;
  RelayReader reader;
  void* arg;
};

struct State {
  ProcessType type = ProcessType::kPrimary;
  std::string runtime_dir;
  std::string prefix;
  absl::Duration attach_timeout;
  uint32_t self_token = 0;
  int self_slot = -1;
  std::unique_ptr<EventLoop> loop;
  RelayTable* table = nullptr;  // null: the group has no relay (its primary lacks it)

  // Type names -> ids, cached (the shared table is the truth).
  absl::Mutex types_mu;
  absl::flat_hash_map<std::string, uint32_t> type_ids ABSL_GUARDED_BY(types_mu);

  // This process's subscriptions.
  absl::Mutex subs_mu;
  absl::CondVar subs_idle;
  std::vector<Subscription> subs ABSL_GUARDED_BY(subs_mu);  // in id order
  SubscriptionId next_sub ABSL_GUARDED_BY(subs_mu) = 1;
  SubscriptionId running_sub ABSL_GUARDED_BY(subs_mu) = 0;

  // This process's mailbox, as its consumer (the interrupt thread alone reads and
  // advances head/expected once it is set; set under connect_mu before the doorbell is
  // registered).
  absl::Mutex connect_mu;
  Mailbox* mailbox = nullptr;
  int doorbell_fd = -1;
  uint64_t head = 0;
  uint64_t expected_sequence = 0;
  // SetBusyPoll's window, in nanoseconds (0: sleep as soon as the mailbox is empty).
  std::atomic<int64_t> busy_poll_ns{0};
  // Secondary: the connection to the primary's relay.
  // Stored once (release) after the connection is registered; read by publishers
  // (acquire): a publisher that sees it sees the connection's mailbox set up.
  std::atomic<int> relay_fd{-1};
  // Set by the interrupt thread (PrimaryGone's exchange), cleared when a primary adopted
  // the group (Adopted, under connect_mu); read anywhere (a flag: seq_cst, it orders
  // nothing else).
  std::atomic<bool> primary_gone{false};
  std::atomic<pid_t> primary_pid{0};  // for messages
  // Secondary, the interrupt thread's once Init returned: the primary's pidfd it watches
  // (-1: none), the generation of the primary it last saw, and the timerfd that looks
  // for an adopting primary (-1: not armed).
  int primary_exit_fd = -1;
  uint32_t primary_generation = 0;
  int adoption_timer_fd = -1;
  // Relay connections to dead primaries, shut down but open: a publisher may still hold
  // the number (freed at cleanup).
  std::vector<int> retired_relay_fds ABSL_GUARDED_BY(connect_mu);

  // Primary: the producer.
  int listen_fd = -1;
  absl::Mutex produce_mu;
  Peer peers[kMaxSubscribers] ABSL_GUARDED_BY(produce_mu);
  uint64_t active_slots ABSL_GUARDED_BY(produce_mu) = 0;  // bit s: peers[s] has a doorbell
  // Open connections to the relay's socket (the loop thread's; freed at cleanup).
  absl::flat_hash_set<Connection*> connections ABSL_GUARDED_BY(produce_mu);

  absl::Mutex relayed_mu;
  absl::flat_hash_map<int, std::unique_ptr<Relayed>> relayed ABSL_GUARDED_BY(relayed_mu);
};
State* g_state = nullptr;

absl::Status NotInitialized() {
  return absl::FailedPreconditionError("interrupts: eal::Init was not called (or Cleanup was)");
}

absl::Status NoRelay(const State& s) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "interrupts: group \"%s\" has no interrupt relay (its primary is built without "
      "//interrupts)",
      s.prefix));
}

// The table's type count, bounded: shared memory is untrusted.
uint32_t TypeCount(const RelayTable& t) {
  // Acquire: pairs with TypeId's release: the names below the count are written.
  return std::min<uint32_t>(t.type_count.load(std::memory_order_acquire), kMaxTypes);
}

// `type` < TypeCount() or kPrimaryExitedId (the callers check).
absl::string_view TypeName(const State& s, uint32_t type) {
  if (type == kPrimaryExitedId) return kPrimaryExited;
  if (type == kPrimaryAdoptedId) return kPrimaryAdopted;
  return NameOf(s.table->types[type].name);
}

// --- Delivery to this process's callbacks (interrupt thread) --------------------------------

// Runs the callbacks of `type` (only that of subscription `only`, when not 0) that are
// due `event`, one at a time, each looked up again under the lock (Unsubscribe may run
// meanwhile, from the callbacks too).
void DeliverLocal(State& s, uint32_t type, const Event& event, SubscriptionId only = 0) {
  SubscriptionId last = 0;
  for (;;) {
    Subscription sub;
    {
      absl::MutexLock lock(&s.subs_mu);
      s.running_sub = 0;
      s.subs_idle.SignalAll();
      auto next =
          std::upper_bound(s.subs.begin(), s.subs.end(), last,
                           [](SubscriptionId id, const Subscription& x) { return id < x.id; });
      while (next != s.subs.end() && (next->type != type || (only != 0 && next->id != only) ||
                                      (type < kMaxTypes && event.sequence < next->from_sequence) ||
                                      (type == kPrimaryExitedId && next->told))) {
        ++next;
      }
      if (next == s.subs.end()) return;
      next->told = true;
      sub = *next;
      last = sub.id;
      s.running_sub = sub.id;
    }
    sub.callback(event, sub.arg);
  }
}

// The doorbell's callback: drains the mailbox (mailbox.h, the consumer).
void OnDoorbell(int fd, uint32_t, void* arg) {
  State& s = *static_cast<State*>(arg);
  uint64_t count;
  // Non-blocking: EAGAIN when a wake-up came from a producer that found us awake.
  while (::read(fd, &count, sizeof(count)) < 0 && errno == EINTR) {
  }
  Mailbox* m = s.mailbox;
  for (int handled = 0;;) {
    uint64_t available = Available(m, s.head);
    if (available > kMailboxCapacity) {
      KEEL_LOG(Error, kComponent,
               "this process's mailbox is damaged (tail - head = %d, capacity %u): its %d "
               "records are skipped",
               available, kMailboxCapacity, available);
      s.head += available;
      Consume(m, s.head);
      available = 0;
    }
    if (available == 0) {
      // SetBusyPoll: watch the mailbox a while before sleeping (no doorbell, no wake-up
      // when the next event comes within the window). Relaxed: a setting.
      const int64_t window = s.busy_poll_ns.load(std::memory_order_relaxed);
      if (window > 0) {
        const uint64_t until = MonotonicNs() + static_cast<uint64_t>(window);
        while (Available(m, s.head) == 0 && MonotonicNs() < until) {
          for (int i = 0; i < 64 && Available(m, s.head) == 0; ++i) __builtin_ia32_pause();
        }
        if (Available(m, s.head) != 0) continue;
      }
      if (PrepareToSleep(m, s.head)) return;
      continue;
    }
    if (handled >= kDrainBatch) {
      // Let the loop's other descriptors run; come back at once.
      RingDoorbell(fd);
      return;
    }
    const Record& r = RecordAt(m, kMailboxCapacity, s.head);
    const uint32_t type = r.type;
    const uint32_t length = std::min<uint32_t>(r.length, kMaxPayload);
    Event event;
    event.sequence = r.sequence;
    event.dropped_before = r.sequence > s.expected_sequence ? r.sequence - s.expected_sequence : 0;
    event.source_pid = r.source_pid;
    event.timestamp_ns = static_cast<int64_t>(r.timestamp_ns);
    event.payload = absl::MakeConstSpan(r.payload, length);
    s.expected_sequence = r.sequence + 1;
    if (type < TypeCount(*s.table)) {
      event.type = TypeName(s, type);
      DeliverLocal(s, type, event);
    }
    // After the callbacks: the record's slot is ours until then.
    Consume(m, ++s.head);
    ++handled;
  }
}

// kPrimaryExited or kPrimaryAdopted (`type`) to this process's watchers (`only` one, when
// not 0); the payload is the primary's pid.
void DeliverPrimaryEvent(State& s, uint32_t type, SubscriptionId only) {
  const int32_t pid = s.primary_pid.load();
  Event event;
  event.type = TypeName(s, type);
  event.source_pid = pid;
  event.timestamp_ns = static_cast<int64_t>(MonotonicNs());
  event.payload = absl::MakeConstSpan(reinterpret_cast<const unsigned char*>(&pid), sizeof(pid));
  DeliverLocal(s, type, event, only);
}

void WatchForAdoption(State& s);
void OnPrimaryExit(int fd, uint32_t, void* arg);

// The interrupt thread's (every caller is a loop callback).
void PrimaryGone(State& s, const char* how) {
  if (s.primary_gone.exchange(true)) return;
  if (s.primary_exit_fd >= 0) {
    // Learnt from the connection: the pidfd is not watched any more (the EAL owns it).
    s.loop->Unregister(s.primary_exit_fd, &OnPrimaryExit, &s).IgnoreError();
    s.primary_exit_fd = -1;
  }
  KEEL_LOG(Warning, kComponent,
           "the primary (pid %d) exited (%s): events are no longer relayed until a primary "
           "adopts the group",
           s.primary_pid.load(), how);
  DeliverPrimaryEvent(s, kPrimaryExitedId, 0);
  WatchForAdoption(s);
}

// A watcher that subscribed after the primary's death hears of it too, from the
// interrupt thread like the others: a one-shot eventfd.
struct LateWatcher {
  State* state;
  SubscriptionId id;
};
void OnLateWatcher(int fd, uint32_t, void* arg) {
  auto* w = static_cast<LateWatcher*>(arg);
  w->state->loop->Unregister(fd, &OnLateWatcher, arg).IgnoreError();
  ::close(fd);
  DeliverPrimaryEvent(*w->state, kPrimaryExitedId, w->id);
  delete w;
}
void TellLateWatcher(State& s, SubscriptionId id) {
  const int fd = ::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);  // readable at once
  if (fd < 0) {
    KEEL_LOG(Error, kComponent, "kPrimaryExited for a late watcher: eventfd: %s", ErrnoText(errno));
    return;
  }
  auto* w = new LateWatcher{&s, id};
  if (absl::Status r = s.loop->Register(fd, &OnLateWatcher, w); !r.ok()) {
    KEEL_LOG(Error, kComponent, "kPrimaryExited for a late watcher: %s", r.message());
    ::close(fd);
    delete w;
  }
}

void OnPrimaryExit(int fd, uint32_t, void* arg) {
  State& s = *static_cast<State*>(arg);
  s.loop->Unregister(fd, &OnPrimaryExit, arg).IgnoreError();  // one-shot; the EAL owns fd
  if (fd != s.primary_exit_fd) return;                        // an earlier primary's
  s.primary_exit_fd = -1;
  PrimaryGone(s, "its pidfd");
}

// Watches the EAL's pidfd of the current primary (none in another PID namespace).
absl::Status WatchPrimary(State& s) {
  const int fd = eal::PrimaryExitFd();
  if (fd < 0) return absl::OkStatus();
  s.primary_exit_fd = fd;  // before: the callback may run at once
  absl::Status r = s.loop->Register(fd, &OnPrimaryExit, &s);
  if (!r.ok()) s.primary_exit_fd = -1;
  return r;
}

// A secondary's connection to the relay: the primary sends nothing after Welcome, so
// readiness means it closed (it exited).
void OnRelayConnection(int fd, uint32_t events, void* arg) {
  State& s = *static_cast<State*>(arg);
  char byte;
  const ssize_t n = ::recv(fd, &byte, sizeof(byte), MSG_DONTWAIT);
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR) && (events & EPOLLHUP) == 0)) return;
  s.loop->Unregister(fd, &OnRelayConnection, arg).IgnoreError();
  PrimaryGone(s, "the relay's connection closed");
}

// --- The type table ---------------------------------------------------------------------

absl::Status CheckTypeName(absl::string_view name) {
  if (name == kPrimaryExited || name == kPrimaryAdopted) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "event type \"%s\" is delivered by keel itself; it cannot be registered or published",
        name));
  }
  return CheckNameLength("event type", name, kMaxTypeName);
}

// The id of `name` in the shared table, or -1.
int FindType(const RelayTable& t, absl::string_view name) {
  const uint32_t count = TypeCount(t);
  for (uint32_t i = 0; i < count; ++i) {
    if (NameOf(t.types[i].name) == name) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<uint32_t> TypeId(State& s, absl::string_view name) {
  {
    absl::MutexLock lock(&s.types_mu);
    auto it = s.type_ids.find(name);
    if (it != s.type_ids.end()) return it->second;
  }
  if (absl::Status c = CheckTypeName(name); !c.ok()) return c;
  RelayTable& t = *s.table;
  int id = FindType(t, name);
  if (id < 0) {
    // A dead holder left at worst a name past the count: nothing to repair.
    RobustLock lock(&t.types_lock, kTypesLock, [] {});
    if (!lock.ok()) return lock.status();
    id = FindType(t, name);
    if (id < 0) {
      // Relaxed: written only under the lock; bounded (shared memory is untrusted).
      const uint32_t count =
          std::min<uint32_t>(t.type_count.load(std::memory_order_relaxed), kMaxTypes);
      if (count >= kMaxTypes) {
        return absl::ResourceExhaustedError(absl::StrFormat(
            "event type \"%s\": the group has %d types already, the most it can have",
            Printable(name), kMaxTypes));
      }
      CopyName(t.types[count].name, name);
      KillPointForTest("interrupts.type.before_count");  // a kill here leaves an unused slot
      // Release: pairs with FindType's acquire: the name is written before it counts.
      t.type_count.store(count + 1, std::memory_order_release);
      id = static_cast<int>(count);
    }
  }
  absl::MutexLock lock(&s.types_mu);
  s.type_ids.emplace(std::string(name), static_cast<uint32_t>(id));
  return static_cast<uint32_t>(id);
}

// --- The producer (primary) ------------------------------------------------------------------

// Pushes one event to every peer that subscribes to `type` (or to `to` alone).
absl::Status Deliver(State& s, uint32_t type, pid_t source_pid, uint64_t timestamp_ns,
                     const void* payload, uint32_t length, pid_t to)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.produce_mu) {
  const uint64_t bit = uint64_t{1} << type;
  bool found = false;
  bool dropped = false;
  for (uint64_t slots = s.active_slots; slots != 0; slots &= slots - 1) {
    const int slot = __builtin_ctzll(slots);
    Peer& p = s.peers[slot];
    if (to != kBroadcast && p.pid != to) continue;
    // Relaxed: a subscription is seen from the next event on; Subscribe returning
    // happens before any Publish the caller orders after it.
    if ((s.table->subscribers[slot].subscriptions.load(std::memory_order_relaxed) & bit) == 0) {
      continue;
    }
    found = true;
    switch (Push(p.mailbox, kMailboxCapacity, type, source_pid, timestamp_ns, payload, length)) {
      case PushResult::kQueuedAsleep:
        RingDoorbell(p.doorbell_fd);
        break;
      case PushResult::kDropped:
        dropped = true;
        break;
      case PushResult::kQueued:
        break;
    }
  }
  if (to == kBroadcast) return absl::OkStatus();
  if (!found) {
    return absl::NotFoundError(absl::StrFormat(
        "event type \"%s\": process %d does not subscribe to it", TypeName(s, type), to));
  }
  if (dropped) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "event type \"%s\": the mailbox of process %d is full; the event is dropped (counted)",
        TypeName(s, type), to));
  }
  return absl::OkStatus();
}

// Frees slot's peer and its entry (primary). The mailbox memory stays for the slot's next
// process.
void ReclaimPeer(State& s, int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.produce_mu) {
  Peer& p = s.peers[slot];
  // First the entry, so no tool lists a subscriber whose doorbell is closed.
  // Release: pairs with DescribeRelay's acquire.
  s.table->subscribers[slot].state.store(kEntryFree, std::memory_order_release);
  if (p.doorbell_fd >= 0) ::close(p.doorbell_fd);
  s.active_slots &= ~(uint64_t{1} << slot);
  p = Peer{};
}

// The memory of `slot`'s mailbox (primary), found or reserved. Takes the memzone lock,
// never produce_mu: publishers do not wait for it.
absl::StatusOr<Mailbox*> MailboxMemory(int slot, pid_t pid) {
  const std::string name = MailboxMemzone(slot);
  const size_t bytes = MailboxBytes(kMailboxCapacity);
  absl::StatusOr<memory::Memzone> zone = memory::LookupMemzone(name);
  if (!zone.ok() && absl::IsNotFound(zone.status())) {
    zone = memory::ReserveMemzone(name, bytes, memory::kSocketAny, 64);
  }
  if (!zone.ok()) {
    return absl::Status(
        zone.status().code(),
        absl::StrFormat("interrupts: the mailbox of process %d: %s", pid, zone.status().message()));
  }
  if (zone->size < bytes) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "interrupts: memzone \"%s\" has %d bytes, a mailbox needs %d", name, zone->size, bytes));
  }
  return static_cast<Mailbox*>(zone->addr);
}

// Gives `slot` the mailbox `m` (MailboxMemory's), fresh, for `token` and publishes its
// entry (primary).
void OpenMailbox(State& s, int slot, Mailbox* m, uint32_t token, pid_t pid, int doorbell_fd,
                 int connection_fd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.produce_mu) {
  if (s.peers[slot].doorbell_fd >= 0) {
    // The slot's previous process is gone (the EAL gave its slot to `token`), and its
    // connection's end is not handled yet: reclaim it now.
    ReclaimPeer(s, slot);
  }
  ResetMailbox(m, kMailboxCapacity, token);
  SubscriberEntry& e = s.table->subscribers[slot];
  e.token = token;
  e.pid = pid;
  e.connected_ns = MonotonicNs();
  // Relaxed: published by the state's release below.
  e.subscriptions.store(0, std::memory_order_relaxed);
  e.publish_drops.store(0, std::memory_order_relaxed);
  KillPointForTest("interrupts.entry.before_state");  // a kill here leaves the entry free
  // Release: pairs with the acquire of readers (DescribeRelay, the subscriber): the
  // entry's fields and the mailbox's reset are written.
  e.state.store(kEntryActive, std::memory_order_release);
  s.peers[slot] = Peer{doorbell_fd, m, pid, token, connection_fd};
  s.active_slots |= uint64_t{1} << slot;
}

void CloseConnection(State& s, Connection* c) {
  s.loop->Unregister(c->fd, kAnyCallback, kAnyArg).IgnoreError();
  {
    absl::MutexLock lock(&s.produce_mu);
    if (c->slot >= 0 && s.peers[c->slot].connection_fd == c->fd &&
        s.peers[c->slot].token == c->token) {
      ReclaimPeer(s, c->slot);
      KEEL_LOG(Debug, kComponent, "subscriber %d left; its mailbox is reclaimed", c->pid);
    }
    s.connections.erase(c);
  }
  ::close(c->fd);
  delete c;
}

void SendWelcome(int fd, absl::Status status, int slot) {
  WelcomeMessage w = {};
  w.header = Header(kWelcome);
  w.code = static_cast<int32_t>(status.code());
  w.slot = slot;
  CopyName(w.error, status.message());
  // Never blocks: a peer that does not read its Welcome only loses it.
  SendWithFds(fd, &w, sizeof(w), {}, MSG_DONTWAIT);
}

absl::Status Welcome(State& s, Connection* c, const HelloMessage& hello, int doorbell_fd) {
  if (!eal_internal::TokenAlive(hello.token)) {
    return absl::PermissionDeniedError(
        absl::StrFormat("process %d: token 0x%x is not a live process of group \"%s\"", c->pid,
                        hello.token, s.prefix));
  }
  const int slot = eal_internal::TokenSlot(hello.token);
  if (slot == s.self_slot) {
    return absl::PermissionDeniedError(
        absl::StrFormat("process %d: token 0x%x is the primary's own", c->pid, hello.token));
  }
  absl::StatusOr<Mailbox*> m = MailboxMemory(slot, c->pid);
  if (!m.ok()) return m.status();
  absl::MutexLock lock(&s.produce_mu);
  if (s.peers[slot].token == hello.token) {
    // A second Hello for a connected process: never reset a mailbox its consumer reads.
    return absl::AlreadyExistsError(
        absl::StrFormat("process %d: token 0x%x is connected already (pid %d)", c->pid, hello.token,
                        s.peers[slot].pid));
  }
  OpenMailbox(s, slot, *m, hello.token, c->pid, doorbell_fd, c->fd);
  c->slot = slot;
  c->token = hello.token;
  return absl::OkStatus();
}

// A Publish message `got` into `buffer` from connection `c`: checked, then delivered.
void RelayPublish(State& s, const Connection& c, const unsigned char* buffer, const Received& got) {
  PublishHeader p = {};
  if (static_cast<size_t>(got.bytes) >= sizeof(p)) std::memcpy(&p, buffer, sizeof(p));
  if (static_cast<size_t>(got.bytes) < sizeof(p) || got.truncated ||
      !ValidHeader(p.header, kPublishMessage) || p.length > kMaxPayload ||
      sizeof(p) + p.length != static_cast<size_t>(got.bytes) || p.type >= TypeCount(*s.table)) {
    KEEL_LOG(Warning, kComponent, "relay: process %d sent a bad message (%d bytes); ignored", c.pid,
             got.bytes);
    return;
  }
  absl::MutexLock lock(&s.produce_mu);
  if (absl::IsNotFound(
          Deliver(s, p.type, c.pid, p.timestamp_ns, buffer + sizeof(p), p.length, p.to))) {
    // Relaxed: a counter.
    s.table->undelivered.fetch_add(1, std::memory_order_relaxed);
  }
}

// A message on a connection to the relay's socket (primary's interrupt thread).
void OnConnection(int fd, uint32_t events, void* arg) {
  auto* c = static_cast<Connection*>(arg);
  State& s = *c->state;
  // Level-triggered: what is left after a batch calls this again after the loop's other
  // descriptors had their turn.
  for (int handled = 0; handled < kDrainBatch; ++handled) {
    alignas(8) unsigned char buffer[kMaxPublishMessage];
    Received got = ReceiveWithFds(fd, buffer, sizeof(buffer), c->slot < 0 ? 1 : 0, MSG_DONTWAIT);
    if (got.bytes < 0 && (got.error == EAGAIN || got.error == EINTR)) {
      if ((events & (EPOLLHUP | EPOLLERR)) == 0) return;
      got.bytes = 0;  // hung up with nothing left to read
    }
    if (got.bytes <= 0) {
      CloseConnection(s, c);
      return;
    }
    if (c->slot < 0) {
      // The first message: Hello with the doorbell.
      HelloMessage hello = {};
      if (got.bytes == sizeof(hello)) std::memcpy(&hello, buffer, sizeof(hello));
      absl::Status status;
      if (got.bytes != sizeof(hello) || !ValidHeader(hello.header, kHello) || got.fds.size() != 1) {
        status = absl::InvalidArgumentError(absl::StrFormat(
            "process %d sent %d bytes and %d fds, not a keel relay Hello of layout version %u",
            c->pid, got.bytes, got.fds.size(), kLayoutVersion));
      } else {
        status = Welcome(s, c, hello, got.fds[0]);
      }
      SendWelcome(fd, status, c->slot);
      if (!status.ok()) {
        KEEL_LOG(Warning, kComponent, "relay: refused process %d: %s", c->pid, status.message());
        CloseAll(got.fds);
        CloseConnection(s, c);
        return;
      }
      KEEL_LOG(Debug, kComponent, "relay: process %d subscribed (slot %d)", c->pid, c->slot);
      continue;
    }
    CloseAll(got.fds);
    RelayPublish(s, *c, buffer, got);
  }
}

void OnListen(int fd, uint32_t, void* arg) {
  State& s = *static_cast<State*>(arg);
  for (;;) {
    const int connection = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (connection < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        KEEL_LOG(Warning, kComponent, "relay: accept: %s", ErrnoText(errno));
      }
      return;
    }
    absl::StatusOr<ucred> peer = PeerCredentials(connection);
    if (!peer.ok() || !TrustedUid(peer->uid)) {
      KEEL_LOG(Warning, kComponent, "relay: refused a peer (%s)",
               peer.ok() ? absl::StrFormat("pid %d of uid %u: not this uid %u, nor root", peer->pid,
                                           peer->uid, ::geteuid())
                         : std::string(peer.status().message()));
      ::close(connection);
      continue;
    }
    auto* c = new Connection{&s, connection, peer->pid, -1, 0};
    {
      absl::MutexLock lock(&s.produce_mu);
      s.connections.insert(c);
    }
    if (absl::Status r = s.loop->Register(connection, &OnConnection, c, EPOLLIN | EPOLLRDHUP);
        !r.ok()) {
      KEEL_LOG(Warning, kComponent, "relay: %s", r.message());
      CloseConnection(s, c);
    }
  }
}

// --- This process's mailbox -----------------------------------------------------------------

// Registers the doorbell with the loop once the mailbox is this process's.
absl::Status StartConsuming(State& s, Mailbox* m, int doorbell_fd) {
  s.head = 0;
  s.expected_sequence = 0;
  s.doorbell_fd = doorbell_fd;
  // The mailbox is empty and asleep (ResetMailbox): OnDoorbell runs only after a push,
  // which comes after the subscription bits, which come after this.
  s.mailbox = m;
  absl::Status r = s.loop->Register(doorbell_fd, &OnDoorbell, &s);
  if (!r.ok()) {
    s.mailbox = nullptr;
    s.doorbell_fd = -1;
  }
  return r;
}

// The mailbox of this process, opened on first use (primary: locally; secondary: over
// the relay's socket).
absl::Status EnsureMailbox(State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.connect_mu) {
  if (s.mailbox != nullptr) return absl::OkStatus();
  if (s.type == ProcessType::kSecondary && s.primary_gone.load()) {
    return absl::UnavailableError(absl::StrFormat(
        "interrupts: the primary (pid %d) of group \"%s\" exited: the relay is gone until a "
        "primary adopts the group",
        s.primary_pid.load(), s.prefix));
  }
  const int doorbell = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (doorbell < 0) return absl::InternalError(absl::StrCat("eventfd: ", ErrnoText(errno)));
  if (s.type == ProcessType::kPrimary) {
    absl::StatusOr<Mailbox*> m = MailboxMemory(s.self_slot, ::getpid());
    if (!m.ok()) {
      ::close(doorbell);
      return m.status();
    }
    {
      absl::MutexLock lock(&s.produce_mu);
      OpenMailbox(s, s.self_slot, *m, s.self_token, ::getpid(), doorbell, -1);
    }
    absl::Status r = StartConsuming(s, *m, doorbell);
    if (!r.ok()) {
      absl::MutexLock lock(&s.produce_mu);
      ReclaimPeer(s, s.self_slot);  // closes the doorbell
    }
    return r;
  }

  auto unavailable = [&](absl::string_view why) {
    return absl::UnavailableError(
        absl::StrFormat("interrupts: cannot join the relay of group \"%s\" at %s/%s: %s", s.prefix,
                        s.runtime_dir, kSocketFile, why));
  };
  absl::StatusOr<int> fd = ConnectSeqpacket(s.runtime_dir, kSocketFile, s.attach_timeout);
  if (!fd.ok()) {
    ::close(doorbell);
    return unavailable(fd.status().message());
  }
  auto fail = [&](absl::Status status) {
    ::close(*fd);
    ::close(doorbell);
    return status;
  };
  absl::StatusOr<ucred> peer = PeerCredentials(*fd);
  if (!peer.ok()) return fail(unavailable(peer.status().message()));
  if (!TrustedUid(peer->uid)) {
    return fail(unavailable(absl::StrFormat(
        "it runs as uid %u, not as this process's uid %u nor root", peer->uid, ::geteuid())));
  }
  HelloMessage hello = {Header(kHello), s.self_token, ::getpid()};
  if (SendWithFds(*fd, &hello, sizeof(hello), {doorbell}, 0) != sizeof(hello)) {
    return fail(unavailable(absl::StrCat("cannot send Hello: ", ErrnoText(errno))));
  }
  WelcomeMessage w = {};
  // Blocking, bounded by SO_RCVTIMEO (--attach-timeout).
  Received got = ReceiveWithFds(*fd, &w, sizeof(w), 0, 0);
  if (got.bytes < 0) {
    return fail(unavailable(got.error == EAGAIN
                                ? absl::StrFormat("no answer within %s (--attach-timeout)",
                                                  absl::FormatDuration(s.attach_timeout))
                                : absl::StrCat("cannot receive: ", ErrnoText(got.error))));
  }
  w.error[sizeof(w.error) - 1] = '\0';
  if (got.bytes != sizeof(w) || !ValidHeader(w.header, kWelcome)) {
    return fail(unavailable(absl::StrFormat("it answered %d bytes, not a Welcome", got.bytes)));
  }
  if (w.code != 0) {
    return fail(absl::Status(
        static_cast<absl::StatusCode>(w.code),
        absl::StrCat("interrupts: the relay refused this process: ", Printable(w.error))));
  }
  if (w.slot != s.self_slot) {
    return fail(
        unavailable(absl::StrFormat("it gave slot %d, this process has %d", w.slot, s.self_slot)));
  }
  absl::StatusOr<memory::Memzone> zone = memory::LookupMemzone(MailboxMemzone(w.slot));
  if (!zone.ok()) return fail(unavailable(zone.status().message()));
  auto* m = static_cast<Mailbox*>(zone->addr);
  if (zone->size < MailboxBytes(kMailboxCapacity) || m->magic != kMailboxMagic ||
      m->layout_version != kLayoutVersion || m->capacity != kMailboxCapacity ||
      m->record_size != kRecordSize || m->owner_token != s.self_token) {
    return fail(unavailable(
        absl::StrFormat("memzone \"%s\" is not this process's mailbox", MailboxMemzone(w.slot))));
  }
  if (absl::Status r = s.loop->Register(*fd, &OnRelayConnection, &s, EPOLLIN | EPOLLRDHUP);
      !r.ok()) {
    return fail(r);
  }
  if (absl::Status r = StartConsuming(s, m, doorbell); !r.ok()) {
    s.loop->Unregister(*fd, &OnRelayConnection, &s).IgnoreError();
    s.mailbox = nullptr;
    return fail(r);
  }
  // A connection after an earlier one (to a primary that died): the subscriptions made
  // then are this mailbox's too, counted from its first sequence. Under subs_mu: an
  // Unsubscribe clears its bit before or after this.
  {
    absl::MutexLock lock(&s.subs_mu);
    uint64_t bits = 0;
    for (Subscription& sub : s.subs) {
      if (sub.type >= kMaxTypes) continue;
      bits |= uint64_t{1} << sub.type;
      sub.from_sequence = 0;
    }
    // Relaxed: as in Subscribe.
    s.table->subscribers[s.self_slot].subscriptions.fetch_or(bits, std::memory_order_relaxed);
  }
  // Release: pairs with RelayConnection's acquire.
  s.relay_fd.store(*fd, std::memory_order_release);
  return absl::OkStatus();
}

// A secondary's connection for publishing (its mailbox comes with it).
absl::StatusOr<int> RelayConnection(State& s) {
  // Acquire: pairs with EnsureMailbox's release.
  const int fd = s.relay_fd.load(std::memory_order_acquire);
  if (fd >= 0) return fd;
  absl::MutexLock lock(&s.connect_mu);
  if (absl::Status e = EnsureMailbox(s); !e.ok()) return e;
  // Relaxed: stored by this thread or under connect_mu, which we hold.
  return s.relay_fd.load(std::memory_order_relaxed);
}

// --- Adoption (secondary's interrupt thread) -------------------------------------------------

// Undoes EnsureMailbox's connection to a dead primary: the next EnsureMailbox connects
// to the new one.
void DropRelayLocked(State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.connect_mu) {
  if (s.doorbell_fd >= 0) {
    s.loop->Unregister(s.doorbell_fd, &OnDoorbell, &s).IgnoreError();
    ::close(s.doorbell_fd);
    s.doorbell_fd = -1;
  }
  s.mailbox = nullptr;
  // Relaxed: stored under connect_mu, which we hold; publishers that loaded the old
  // number find it shut down (Unavailable) and come here for the new one.
  const int fd = s.relay_fd.exchange(-1, std::memory_order_relaxed);
  if (fd >= 0) {
    s.loop->Unregister(fd, &OnRelayConnection, &s).IgnoreError();
    ::shutdown(fd, SHUT_RDWR);
    s.retired_relay_fds.push_back(fd);
  }
}

// A primary adopted the group and finished init (the interrupt thread).
void Adopted(State& s) {
  s.primary_generation = eal::PrimaryGeneration();
  if (s.table != nullptr) {
    // Relaxed: written by the adopter before its MarkReady, which PrimaryAlive's acquire
    // (our caller's) saw.
    s.primary_pid.store(__atomic_load_n(&s.table->primary_pid, __ATOMIC_RELAXED));
  } else if (absl::StatusOr<eal::GroupInfo> group = eal::DescribeGroup(); group.ok()) {
    s.primary_pid.store(group->primary_pid);
  }
  // What the dead primary queued and we have not consumed yet is delivered first: the
  // new primary resets the mailbox when we connect.
  if (s.mailbox != nullptr) {
    while (Available(s.mailbox, s.head) != 0) OnDoorbell(s.doorbell_fd, 0, &s);
  }
  absl::Status connected;
  {
    absl::MutexLock lock(&s.connect_mu);
    bool subscribed = false;
    {
      absl::MutexLock subs(&s.subs_mu);
      for (const Subscription& sub : s.subs) subscribed |= sub.type < kMaxTypes;
    }
    const bool was_connected = s.mailbox != nullptr;
    DropRelayLocked(s);
    s.primary_gone.store(false);
    // Connected before, subscribed, or no pidfd to learn of the next death from: connect
    // now.
    if (s.table != nullptr && (was_connected || subscribed || eal::PrimaryExitFd() < 0)) {
      connected = EnsureMailbox(s);
    }
    // (EnsureMailbox gave the subscriptions to the new mailbox.)
    absl::MutexLock subs(&s.subs_mu);
    for (Subscription& sub : s.subs) sub.told = false;  // the next death is news again
  }
  if (absl::Status w = WatchPrimary(s); !w.ok()) {
    KEEL_LOG(Error, kComponent, "cannot watch the new primary's pidfd: %s", w.message());
  }
  if (!connected.ok()) {
    KEEL_LOG(Error, kComponent,
             "primary pid %d adopted the group, but this process cannot join its relay (%s): "
             "its subscriptions get no events until it connects again (its next Subscribe or "
             "Publish)",
             s.primary_pid.load(), connected.message());
  } else {
    KEEL_LOG(Notice, kComponent, "primary pid %d adopted the group: events are relayed again",
             s.primary_pid.load());
  }
  DeliverPrimaryEvent(s, kPrimaryAdoptedId, 0);
}

void OnAdoptionTimer(int fd, uint32_t, void* arg) {
  State& s = *static_cast<State*>(arg);
  uint64_t expirations;
  while (::read(fd, &expirations, sizeof(expirations)) < 0 && errno == EINTR) {
  }
  if (eal::PrimaryGeneration() == s.primary_generation || !eal::PrimaryAlive()) return;
  s.loop->Unregister(fd, &OnAdoptionTimer, &s).IgnoreError();
  ::close(fd);
  s.adoption_timer_fd = -1;
  Adopted(s);
}

void WatchForAdoption(State& s) {
  if (s.adoption_timer_fd >= 0) return;
  const int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  itimerspec every = {};
  every.it_interval = absl::ToTimespec(kAdoptionPoll);
  every.it_value = every.it_interval;
  if (fd < 0 || ::timerfd_settime(fd, 0, &every, nullptr) != 0 ||
      !s.loop->Register(fd, &OnAdoptionTimer, &s).ok()) {
    KEEL_LOG(Error, kComponent,
             "cannot watch for a primary adopting the group (%s): this process will not "
             "rejoin a relay",
             ErrnoText(errno));
    if (fd >= 0) ::close(fd);
    return;
  }
  s.adoption_timer_fd = fd;
}

// --- Relayed descriptors ------------------------------------------------------------------

void OnRelayed(int fd, uint32_t events, void* arg) {
  // A copy: the reader may call UnrelayFd(fd), which frees *arg.
  const Relayed r = *static_cast<Relayed*>(arg);
  unsigned char buffer[kMaxPayload];
  ssize_t n;
  if (r.reader != nullptr) {
    n = r.reader(fd, buffer, sizeof(buffer), r.arg);
  } else {
    n = ::read(fd, buffer, sizeof(uint64_t));
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && (events & (EPOLLHUP | EPOLLERR)) == 0) {
      return;
    }
  }
  if (n < 0 || (n == 0 && (events & (EPOLLHUP | EPOLLERR)) != 0)) {
    KEEL_LOG(Error, kComponent, "relayed fd %d (event type \"%s\") failed (%s); no longer relayed",
             fd, TypeName(*r.state, r.type), n < 0 ? ErrnoText(errno) : "hung up");
    // The map entry stays until UnrelayFd; RelayFd(fd) may replace it.
    r.state->loop->Unregister(fd, kAnyCallback, arg).IgnoreError();
    return;
  }
  if (n == 0) return;
  const absl::Status p = Publish(EventType{r.type}, buffer, std::min<size_t>(n, kMaxPayload));
  if (!p.ok()) KEEL_LOG(Warning, kComponent, "relayed fd %d: %s", fd, p.message());
}

// --- EAL hooks ---------------------------------------------------------------------------

// The group's relay table, as a secondary or an adopting primary finds it: null when the
// group has none (NotFound from the memzone registry), checked otherwise.
absl::StatusOr<RelayTable*> FindTable(const State& s) {
  absl::StatusOr<memory::Memzone> zone = memory::LookupMemzone(kRelayMemzone);
  if (!zone.ok() && absl::IsNotFound(zone.status())) return nullptr;
  if (!zone.ok()) return zone.status();
  const auto* t = static_cast<const RelayTable*>(zone->addr);
  if (zone->size < sizeof(RelayTable) || t->magic != kRelayMagic) {
    return absl::FailedPreconditionError(
        absl::StrFormat("interrupts: memzone \"%s\" of group \"%s\" is not a relay table",
                        kRelayMemzone, s.prefix));
  }
  if (t->layout_version != kLayoutVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "component \"interrupts\": group \"%s\" uses shared-layout version %u, this process "
        "has layout version %u (interrupts %s)",
        s.prefix, t->layout_version, kLayoutVersion, ToString(kVersion)));
  }
  return static_cast<RelayTable*>(zone->addr);
}

// The relay's socket, listened on by the primary's interrupt thread.
absl::Status Listen(State& s) {
  // A stale socket of a dead primary of this prefix (the EAL allowed this primary in).
  ::unlink(absl::StrCat(s.runtime_dir, "/", kSocketFile).c_str());
  absl::StatusOr<int> listen_fd = ListenSeqpacket(s.runtime_dir, kSocketFile);
  if (!listen_fd.ok()) {
    return absl::Status(listen_fd.status().code(), absl::StrCat("interrupts: the relay's socket: ",
                                                                listen_fd.status().message()));
  }
  s.listen_fd = *listen_fd;
  return s.loop->Register(s.listen_fd, &OnListen, &s);
}

absl::Status InitPrimary(State& s) {
  absl::StatusOr<memory::Memzone> zone =
      memory::ReserveMemzone(kRelayMemzone, sizeof(RelayTable), memory::kSocketAny, 64);
  if (!zone.ok()) {
    return absl::Status(
        zone.status().code(),
        absl::StrCat("interrupts: cannot reserve the relay table: ", zone.status().message()));
  }
  auto* t = new (zone->addr) RelayTable();
  if (absl::Status m = InitRobustMutex(&t->types_lock, kTypesLock); !m.ok()) return m;
  t->layout_version = kLayoutVersion;
  t->primary_pid = ::getpid();
  // Last: secondaries read the table after the EAL's ready flag, which publishes it.
  t->magic = kRelayMagic;
  s.table = t;
  return Listen(s);
}

// A primary adopting a live group: the table (types, counters) stays; the dead primary's
// subscribers are not this one's peers until they connect again (Adopted), so their
// entries are freed. A push the dead primary left half done is in a mailbox that the
// subscriber's Hello resets. The types lock is robust; a dead holder left at worst a
// name past the count.
absl::Status InitAdopting(State& s) {
  absl::StatusOr<RelayTable*> found = FindTable(s);
  if (!found.ok()) return found.status();
  if (*found == nullptr) return InitPrimary(s);  // the dead primary had no relay
  RelayTable* t = *found;
  for (SubscriberEntry& e : t->subscribers) {
    // Release: as ReclaimPeer's.
    e.state.store(kEntryFree, std::memory_order_release);
  }
  // Relaxed: secondaries read it after our MarkReady (Adopted).
  __atomic_store_n(&t->primary_pid, ::getpid(), __ATOMIC_RELAXED);
  s.table = t;
  return Listen(s);
}

absl::Status InitSecondary(State& s) {
  absl::StatusOr<RelayTable*> found = FindTable(s);
  if (!found.ok()) return found.status();
  s.table = *found;
  if (s.table == nullptr) {
    KEEL_LOG(Info, kComponent,
             "group \"%s\" has no interrupt relay (its primary is built without //interrupts): "
             "this process has its interrupt thread, and no relay",
             s.prefix);
  }
  if (s.primary_exit_fd >= 0) {
    const int fd = s.primary_exit_fd;  // the callback may clear it at once
    return s.loop->Register(fd, &OnPrimaryExit, &s);
  }
  // No pidfd (the primary runs in another PID namespace): the relay's connection is how
  // this process learns of the primary's death, so connect now.
  if (s.table == nullptr) {
    KEEL_LOG(Warning, kComponent,
             "no pidfd of the primary and no relay: kPrimaryExited will not be delivered");
    return absl::OkStatus();
  }
  absl::MutexLock lock(&s.connect_mu);
  return EnsureMailbox(s);
}

void CleanupInterrupts(ProcessType type, bool ends_group);

absl::Status InitInterrupts(const eal_internal::InitContext& context) {
  auto state = std::make_unique<State>();
  State& s = *state;
  s.type = context.type;
  s.runtime_dir = context.runtime_dir;
  s.prefix = context.options.file_prefix;
  s.attach_timeout = context.options.attach_timeout;
  s.self_token = context.token;
  s.self_slot = eal_internal::TokenSlot(s.self_token);
  s.primary_pid = context.primary_pid;
  s.primary_generation = context.primary_generation;
  if (context.type == ProcessType::kSecondary) s.primary_exit_fd = context.primary_exit_fd;
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Start("keel-intr");
  if (!loop.ok()) {
    return absl::Status(loop.status().code(), absl::StrCat("interrupts: the interrupt thread: ",
                                                           loop.status().message()));
  }
  s.loop = *std::move(loop);
  g_state = state.release();
  const absl::Status status = context.type == ProcessType::kSecondary ? InitSecondary(s)
                              : context.adopting                      ? InitAdopting(s)
                                                                      : InitPrimary(s);
  if (!status.ok()) CleanupInterrupts(context.type, !context.adopting);
  return status;
}

// Hand-over (the loop is stopped): the Publish messages secondaries sent and the relay
// has not read yet go into the mailboxes, so none is lost with the connection.
void DrainConnections(State& s) {
  std::vector<Connection*> connections;
  {
    absl::MutexLock lock(&s.produce_mu);
    connections.assign(s.connections.begin(), s.connections.end());
  }
  for (Connection* c : connections) {
    if (c->slot < 0) continue;
    // From here a secondary's send fails (EPIPE: Unavailable) instead of being taken and
    // dropped; what is queued can still be read.
    ::shutdown(c->fd, SHUT_RD);
    for (;;) {
      alignas(8) unsigned char buffer[kMaxPublishMessage];
      Received got = ReceiveWithFds(c->fd, buffer, sizeof(buffer), 0, MSG_DONTWAIT);
      if (got.bytes <= 0) break;
      CloseAll(got.fds);
      RelayPublish(s, *c, buffer, got);
    }
  }
}

void CleanupInterrupts(ProcessType type, bool ends_group) {
  State* s = g_state;
  if (s == nullptr) return;
  if (s->loop->InLoopThread()) {
    // eal::Cleanup from an interrupt callback: the thread cannot stop itself and return
    // into a loop that no longer exists. Everything is left as it is (a leak until exit).
    KEEL_LOG(Error, kComponent,
             "eal::Cleanup was called from an interrupt callback: the interrupt thread and the "
             "relay are left running; call it from another thread");
    g_state = nullptr;
    return;
  }
  s->loop.reset();  // first: no callback runs after this
  g_state = nullptr;
  if (type == ProcessType::kPrimary) {
    if (!ends_group && s->table != nullptr) DrainConnections(*s);
    if (s->listen_fd >= 0) {
      ::close(s->listen_fd);
      ::unlink(absl::StrCat(s->runtime_dir, "/", kSocketFile).c_str());
    }
    absl::MutexLock lock(&s->produce_mu);
    for (int slot = 0; slot < kMaxSubscribers; ++slot) {
      if (s->peers[slot].doorbell_fd >= 0) ReclaimPeer(*s, slot);
    }
    // Each secondary sees its connection close: the primary exited.
    for (Connection* c : s->connections) {
      ::close(c->fd);
      delete c;
    }
    s->connections.clear();
  } else {
    // Closing the connection tells the primary this process left: it reclaims the mailbox.
    // Relaxed: no other thread of the component runs now.
    const int fd = s->relay_fd.load(std::memory_order_relaxed);
    if (fd >= 0) ::close(fd);
    absl::MutexLock lock(&s->connect_mu);
    for (int retired : s->retired_relay_fds) ::close(retired);
    if (s->adoption_timer_fd >= 0) ::close(s->adoption_timer_fd);
  }
  if (s->doorbell_fd >= 0 && type == ProcessType::kSecondary) ::close(s->doorbell_fd);
  delete s;
}

const eal_internal::ComponentRegistrar kRegistrar({"interrupts", kVersion, kLayoutVersion,
                                                   /*init_order=*/30, InitInterrupts,
                                                   CleanupInterrupts});

}  // namespace

// --- Public API ----------------------------------------------------------------------------

absl::Status RegisterCallback(int fd, Callback callback, void* arg, uint32_t events) {
  if (g_state == nullptr) return NotInitialized();
  return g_state->loop->Register(fd, callback, arg, events);
}

absl::StatusOr<int> UnregisterCallback(int fd, Callback callback, void* arg) {
  if (g_state == nullptr) return NotInitialized();
  return g_state->loop->Unregister(fd, callback, arg);
}

bool InInterruptThread() { return g_state != nullptr && g_state->loop->InLoopThread(); }

absl::Status SetBusyPoll(absl::Duration window) {
  if (g_state == nullptr) return NotInitialized();
  if (window < absl::ZeroDuration() || window > kMaxBusyPoll) {
    return absl::InvalidArgumentError(absl::StrFormat("busy-poll window %s: give 0 to %s",
                                                      absl::FormatDuration(window),
                                                      absl::FormatDuration(kMaxBusyPoll)));
  }
  // Relaxed: a setting, read at the next empty mailbox.
  g_state->busy_poll_ns.store(absl::ToInt64Nanoseconds(window), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<EventType> RegisterType(absl::string_view name) {
  if (g_state == nullptr) return NotInitialized();
  if (g_state->table == nullptr) return NoRelay(*g_state);
  absl::StatusOr<uint32_t> id = TypeId(*g_state, name);
  if (!id.ok()) return id.status();
  return EventType{*id};
}

absl::StatusOr<SubscriptionId> Subscribe(absl::string_view type, EventCallback callback,
                                         void* arg) {
  if (g_state == nullptr) return NotInitialized();
  State& s = *g_state;
  if (callback == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("event type \"%s\": the callback is null", Printable(type)));
  }
  auto add = [&](uint32_t id, uint64_t from_sequence) {
    absl::MutexLock lock(&s.subs_mu);
    const SubscriptionId sub = s.next_sub++;
    s.subs.push_back(Subscription{sub, id, callback, arg, from_sequence, false});
    return sub;
  };
  if (type == kPrimaryExited || type == kPrimaryAdopted) {
    const bool exited = type == kPrimaryExited;
    const SubscriptionId sub = add(exited ? kPrimaryExitedId : kPrimaryAdoptedId, 0);
    if (exited && s.primary_gone.load()) TellLateWatcher(s, sub);
    return sub;
  }
  if (s.table == nullptr) return NoRelay(s);
  absl::StatusOr<uint32_t> id = TypeId(s, type);
  if (!id.ok()) return id.status();
  // connect_mu until the bit is set: a reconnection (EnsureMailbox, which gives every
  // subscription the new mailbox's sequences and bits) comes before or after all of it.
  absl::MutexLock lock(&s.connect_mu);
  if (absl::Status e = EnsureMailbox(s); !e.ok()) return e;
  // Relaxed: the producer's counter; records pushed before this read (queued for
  // another subscription of the type) have smaller sequences and are not ours.
  const SubscriptionId sub = add(*id, s.mailbox->next_sequence.load(std::memory_order_relaxed));
  // After the callback is in place: the first event that sees the bit finds it.
  // Relaxed: the RMW is seen by the producer's next Deliver; see Deliver.
  s.table->subscribers[s.self_slot].subscriptions.fetch_or(uint64_t{1} << *id,
                                                           std::memory_order_relaxed);
  return sub;
}

absl::Status Unsubscribe(SubscriptionId id) {
  if (g_state == nullptr) return NotInitialized();
  State& s = *g_state;
  const bool on_loop = s.loop->InLoopThread();
  absl::MutexLock lock(&s.subs_mu);
  auto it = std::find_if(s.subs.begin(), s.subs.end(),
                         [id](const Subscription& x) { return x.id == id; });
  if (it == s.subs.end()) {
    return absl::NotFoundError(absl::StrFormat("subscription %d: no such subscription", id));
  }
  const uint32_t type = it->type;
  s.subs.erase(it);
  const bool last = std::none_of(s.subs.begin(), s.subs.end(),
                                 [type](const Subscription& x) { return x.type == type; });
  if (last && type < kMaxTypes) {
    // Relaxed: as in Subscribe; events already queued for the type find no callback.
    s.table->subscribers[s.self_slot].subscriptions.fetch_and(~(uint64_t{1} << type),
                                                              std::memory_order_relaxed);
  }
  if (!on_loop) {
    while (s.running_sub == id) s.subs_idle.Wait(&s.subs_mu);
  }
  return absl::OkStatus();
}

absl::Status Publish(EventType type, const void* payload, size_t size, pid_t to) {
  if (g_state == nullptr) return NotInitialized();
  State& s = *g_state;
  if (s.table == nullptr) return NoRelay(s);
  if (type.id >= TypeCount(*s.table)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("event type %d: not a registered type", type.id));
  }
  if (size > kMaxPayload) {
    return absl::InvalidArgumentError(
        absl::StrFormat("event type \"%s\": a payload of %d bytes; at most %d",
                        TypeName(s, type.id), size, kMaxPayload));
  }
  const uint64_t now = MonotonicNs();
  if (s.type == ProcessType::kPrimary) {
    absl::MutexLock lock(&s.produce_mu);
    return Deliver(s, type.id, ::getpid(), now, payload, static_cast<uint32_t>(size), to);
  }
  absl::StatusOr<int> fd = RelayConnection(s);
  if (!fd.ok()) return fd.status();
  alignas(8) unsigned char buffer[kMaxPublishMessage];
  PublishHeader header = {Header(kPublishMessage),     type.id, to, now,
                          static_cast<uint32_t>(size), 0};
  std::memcpy(buffer, &header, sizeof(header));
  if (size > 0) std::memcpy(buffer + sizeof(header), payload, size);
  const ssize_t sent = SendWithFds(*fd, buffer, sizeof(header) + size, {}, MSG_DONTWAIT);
  if (sent == static_cast<ssize_t>(sizeof(header) + size)) return absl::OkStatus();
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    // Relaxed: a counter (procinfo reads it).
    s.table->subscribers[s.self_slot].publish_drops.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrFormat(
        "event type \"%s\": the relay's socket is full (the primary is not keeping up); "
        "the event is dropped (counted)",
        TypeName(s, type.id)));
  }
  return absl::UnavailableError(absl::StrFormat(
      "event type \"%s\": the relay's connection to the primary (pid %d) failed: %s",
      TypeName(s, type.id), s.primary_pid.load(), ErrnoText(errno)));
}

absl::Status Publish(absl::string_view type, const void* payload, size_t size, pid_t to) {
  absl::StatusOr<EventType> t = RegisterType(type);
  if (!t.ok()) return t.status();
  return Publish(*t, payload, size, to);
}

absl::Status RelayFd(int fd, absl::string_view type, RelayReader reader, void* arg) {
  absl::StatusOr<EventType> t = RegisterType(type);
  if (!t.ok()) return t.status();
  State& s = *g_state;
  if (s.type == ProcessType::kSecondary) {
    // Connect now, on the caller's thread, not from the interrupt thread's first relay.
    absl::StatusOr<int> connected = RelayConnection(s);
    if (!connected.ok()) return connected.status();
  }
  std::unique_ptr<Relayed> stale;  // freed after the lock, as UnrelayFd does
  absl::MutexLock lock(&s.relayed_mu);
  auto it = s.relayed.find(fd);
  if (it != s.relayed.end()) {
    // Relayed already, unless its reader failed and unregistered it (then replaced).
    if (s.loop->Unregister(fd, &OnRelayed, it->second.get()).ok()) {
      // It was live: put it back as it was.
      if (absl::Status r = s.loop->Register(fd, &OnRelayed, it->second.get()); !r.ok()) return r;
      return absl::AlreadyExistsError(absl::StrFormat("fd %d is relayed already", fd));
    }
    stale = std::move(it->second);
    s.relayed.erase(it);
  }
  auto relayed = std::make_unique<Relayed>(Relayed{&s, fd, t->id, reader, arg});
  if (absl::Status r = s.loop->Register(fd, &OnRelayed, relayed.get()); !r.ok()) return r;
  s.relayed.emplace(fd, std::move(relayed));
  return absl::OkStatus();
}

absl::Status UnrelayFd(int fd) {
  if (g_state == nullptr) return NotInitialized();
  State& s = *g_state;
  std::unique_ptr<Relayed> relayed;
  {
    absl::MutexLock lock(&s.relayed_mu);
    auto it = s.relayed.find(fd);
    if (it == s.relayed.end()) {
      return absl::NotFoundError(absl::StrFormat("fd %d is not relayed", fd));
    }
    relayed = std::move(it->second);
    s.relayed.erase(it);
  }
  // Outside relayed_mu: Unregister waits for a running OnRelayed, whose reader may call
  // RelayFd or UnrelayFd. NotFound when OnRelayed unregistered it after a failure.
  s.loop->Unregister(fd, &OnRelayed, relayed.get()).IgnoreError();
  return absl::OkStatus();
}

absl::StatusOr<RelayInfo> DescribeRelay() {
  if (g_state == nullptr) return NotInitialized();
  const State& s = *g_state;
  if (s.table == nullptr) return NoRelay(s);
  const RelayTable& t = *s.table;
  RelayInfo info;
  info.primary_pid = __atomic_load_n(&t.primary_pid, __ATOMIC_RELAXED);
  // Relaxed: a counter.
  info.undelivered = t.undelivered.load(std::memory_order_relaxed);
  const uint32_t count = TypeCount(t);
  for (uint32_t i = 0; i < count; ++i) info.types.push_back(Printable(NameOf(t.types[i].name)));
  for (int slot = 0; slot < kMaxSubscribers; ++slot) {
    const SubscriberEntry& e = t.subscribers[slot];
    // Acquire: pairs with OpenMailbox's release: the entry's fields are written.
    if (e.state.load(std::memory_order_acquire) != kEntryActive) continue;
    SubscriberInfo sub;
    sub.pid = e.pid;
    // Relaxed: a counter.
    sub.publish_drops = e.publish_drops.load(std::memory_order_relaxed);
    const uint64_t bits = e.subscriptions.load(std::memory_order_relaxed);
    for (uint32_t i = 0; i < count; ++i) {
      if ((bits >> i) & 1) sub.types.push_back(info.types[i]);
    }
    absl::StatusOr<memory::Memzone> zone = memory::LookupMemzone(MailboxMemzone(slot));
    if (zone.ok() && zone->size >= sizeof(Mailbox)) {
      const auto* m = static_cast<const Mailbox*>(zone->addr);
      // Relaxed: a snapshot for display.
      const uint64_t tail = m->tail.load(std::memory_order_relaxed);
      const uint64_t head = m->head.load(std::memory_order_relaxed);
      sub.depth = tail >= head ? tail - head : 0;
      sub.capacity = m->capacity;
      sub.published = m->next_sequence.load(std::memory_order_relaxed);
      sub.dropped = m->dropped.load(std::memory_order_relaxed);
      sub.doorbells = m->doorbells.load(std::memory_order_relaxed);
    }
    info.subscribers.push_back(std::move(sub));
  }
  return info;
}

}  // namespace keel::interrupts
