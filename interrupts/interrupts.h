// keel interrupts: an interrupt thread in every process, and the interrupt relay that
// carries events between the processes of a group.
//
// When a program links //interrupts, eal::Init starts the process's interrupt thread (an
// EventLoop, event_loop.h): RegisterCallback runs a callback there whenever a descriptor
// is ready. The relay sits on top of it: named event types, published by any process to
// one process or to every subscriber, delivered through a mailbox per subscriber in
// shared memory whose doorbell is an eventfd. Publishing never blocks: a full mailbox
// drops the event and counts it, and its subscriber sees the gap in the sequence.
//
//   void OnLink(const keel::interrupts::Event& e, void*) { ... e.payload ... }
//   keel::interrupts::Subscribe("link", OnLink, nullptr);         // in any process
//   keel::interrupts::Publish("link", &state, sizeof(state));      // in any process
//   keel::interrupts::RelayFd(link_fd, "link");    // each readiness of link_fd, relayed
//   keel::interrupts::Subscribe(keel::interrupts::kPrimaryExited, OnPrimaryGone, nullptr);
//
// Event callbacks run on the subscriber's interrupt thread (the contract of
// event_loop.h: one at a time, keep them short, they may call anything here but
// eal::Cleanup, which must run on another thread).
#ifndef KEEL_INTERRUPTS_INTERRUPTS_H_
#define KEEL_INTERRUPTS_INTERRUPTS_H_

#include <sys/epoll.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/version.h"
#include "interrupts/event_loop.h"

namespace keel::interrupts {

inline constexpr Version kVersion = {0, 1, 0};

// --- The interrupt thread -----------------------------------------------------------
// EventLoop::Register / Unregister / InLoopThread on this process's interrupt thread
// (see event_loop.h for the contract and the errors). FailedPrecondition before
// eal::Init and after eal::Cleanup.
absl::Status RegisterCallback(int fd, Callback callback, void* arg, uint32_t events = EPOLLIN);
absl::StatusOr<int> UnregisterCallback(int fd, Callback callback = kAnyCallback,
                                       void* arg = kAnyArg);
bool InInterruptThread();

// --- The relay ------------------------------------------------------------------
// The most payload bytes an event carries (DPDK's rte_mp messages carry 256).
inline constexpr size_t kMaxPayload = 480;
// Event type names: 1 to kMaxTypeName characters; at most kMaxTypes per group.
inline constexpr size_t kMaxTypeName = 31;
inline constexpr int kMaxTypes = 64;
// Publish's `to` for every subscriber of the type.
inline constexpr pid_t kBroadcast = 0;

// Delivered in a secondary, from its own interrupt thread, when the primary exits
// (SIGKILL included; from the EAL's pidfd of the primary, or the relay's connection
// closing when no pidfd could be had). Payload: the primary's pid, an int32. Publishing
// it is refused.
inline constexpr char kPrimaryExited[] = "keel.primary_exited";
// Delivered in a secondary, from its own interrupt thread, when a primary that adopted
// the group (eal --adopt) has finished its init and this process has joined its relay
// again: its subscriptions get events again. Until then Publish, and a Subscribe that
// must connect, fail with Unavailable. Payload: the new primary's pid, an int32.
// Publishing it is refused.
inline constexpr char kPrimaryAdopted[] = "keel.primary_adopted";

struct Event {
  absl::string_view type;
  // This subscriber's count of the events published to it, from 0, dropped ones
  // included: `dropped_before` events were lost to a full mailbox just before this one.
  uint64_t sequence = 0;
  uint64_t dropped_before = 0;
  pid_t source_pid = 0;      // the publishing process, as the primary's PID namespace sees it
  int64_t timestamp_ns = 0;  // CLOCK_MONOTONIC at Publish (comparable across the host)
  absl::Span<const unsigned char> payload;  // valid during the callback only
};
using EventCallback = void (*)(const Event& event, void* arg);

// A type registered in the group (the same handle in every process).
struct EventType {
  uint32_t id = 0;
};

// The group's handle for `name`, registering it on first use; any process. Idempotent:
// every process gets the same handle for a name. Errors: InvalidArgument (empty, longer
// than kMaxTypeName, or kPrimaryExited), ResourceExhausted (kMaxTypes types exist),
// FailedPrecondition (before eal::Init, or a primary built without //interrupts).
absl::StatusOr<EventType> RegisterType(absl::string_view name);

using SubscriptionId = uint64_t;

// Runs `callback(event, arg)` on this process's interrupt thread for each event of
// `type` published after Subscribe returns. Thread-safe, any process. The first
// Subscribe or Publish of a secondary connects it to the relay (a round trip to the
// primary, bounded by --attach-timeout: its mailbox and doorbell); later ones touch only
// shared memory. A subscription to kPrimaryExited made after the primary's death gets
// the event at once. Errors: those of RegisterType; InvalidArgument for a null callback;
// Unavailable when the primary is gone or does not answer within --attach-timeout.
absl::StatusOr<SubscriptionId> Subscribe(absl::string_view type, EventCallback callback, void* arg);
// On return the callback does not run again and is not running, except when called from
// an event callback (on the interrupt thread): the running callback finishes. NotFound
// for an unknown id.
absl::Status Unsubscribe(SubscriptionId id);

// Publishes `size` bytes (at most kMaxPayload) as an event of `type` to every subscriber
// of it (kBroadcast) or to the process `to` alone. Thread-safe; never waits for a
// subscriber; allocates nothing once the type is registered.
//   In the primary the event is in the subscribers' mailboxes on return: a full mailbox
//   drops it (counted; its subscriber sees the gap). A secondary sends the event to the
//   primary's relay (a non-blocking send; its first Publish connects, see Subscribe),
//   which does the same; a secondary's unicast to a process that does not subscribe is
//   dropped there and counted (RelayInfo::undelivered), since its Publish has returned.
// Errors: InvalidArgument (size, type), NotFound (primary, unicast: `to` subscribes to
// no such type), ResourceExhausted (primary, unicast: its mailbox is full; secondary:
// the relay's socket is full; the event is dropped and counted), Unavailable (the
// primary is gone).
absl::Status Publish(EventType type, const void* payload, size_t size, pid_t to = kBroadcast);
absl::Status Publish(absl::string_view type, const void* payload, size_t size,
                     pid_t to = kBroadcast);

// Reads `fd` when it is ready (called on the interrupt thread); returns the bytes of the
// event to relay (at most `capacity`), 0 to relay nothing this time, or -1 when the fd
// failed (logged; the fd is unregistered).
using RelayReader = ssize_t (*)(int fd, void* buffer, size_t capacity, void* arg);

// Marks `fd` relayed: each time it is ready, `reader` reads it (by default an 8-byte
// read(), what an eventfd or a VFIO interrupt eventfd gives; a UIO device gives 4) and
// what it read is published as an event of `type` to every subscriber. Any process;
// usually the primary, for a device's interrupt (a link status change). Errors: those
// of RegisterType and RegisterCallback.
absl::Status RelayFd(int fd, absl::string_view type, RelayReader reader = nullptr,
                     void* arg = nullptr);
// Stops relaying `fd` (it is not closed). NotFound when it is not relayed.
absl::Status UnrelayFd(int fd);

// After this process's mailbox empties, its interrupt thread watches it for `window`
// before it sleeps: an event published meanwhile needs no doorbell and no wake-up (on
// this 2-vCPU VM a cross-CPU wake-up costs tens of microseconds; a watched mailbox a
// fraction of one). The thread spins meanwhile, a CPU's worth, and serves no other
// descriptor: for latency-critical subscribers on CPUs of their own. 0 (the default)
// sleeps at once. InvalidArgument outside [0, 10 ms].
absl::Status SetBusyPoll(absl::Duration window);

// --- What the relay holds (procinfo) ------------------------------------------------
struct SubscriberInfo {
  pid_t pid = 0;
  std::vector<std::string> types;  // subscribed, by name
  uint64_t depth = 0;              // records queued and not yet read
  uint64_t capacity = 0;
  uint64_t published = 0;  // events addressed to it, dropped ones included
  uint64_t dropped = 0;
  uint64_t doorbells = 0;      // wake-ups it needed
  uint64_t publish_drops = 0;  // its own Publishes the relay's socket refused (full)
};
struct RelayInfo {
  pid_t primary_pid = 0;
  // Secondaries' unicast events to a process that does not subscribe (the relay drops
  // them; the secondary's Publish returned OK before the relay knew).
  uint64_t undelivered = 0;
  std::vector<std::string> types;  // registered, by id
  std::vector<SubscriberInfo> subscribers;
};
// A snapshot read from shared memory (no lock, no round trip). FailedPrecondition
// before eal::Init, or when the group has no relay.
absl::StatusOr<RelayInfo> DescribeRelay();

}  // namespace keel::interrupts

#endif  // KEEL_INTERRUPTS_INTERRUPTS_H_
