// Timer sets in the group's shared memory by name: Create / Lookup / Free, and the
// process hooks from the EAL. The sets themselves are //timer:core (core.cc).
#include "timer/timer.h"

#include <string>

#include "absl/strings/str_format.h"
#include "base/names.h"
#include "eal/eal.h"
#include "eal/internal/identity.h"
#include "memory/memory.h"

namespace keel::timer {
namespace {

constexpr char kKind[] = "timer_set";
static_assert(timer_internal::kLcores == eal::kMaxLcores);
static_assert(timer_internal::kTokenBits == eal_internal::kTokenBits);
static_assert(kMaxNameLength == memory::kMaxNameLength);

absl::StatusOr<void*> Registered(absl::string_view name) {
  return memory::LookupObject(kKind, name, timer_internal::kLayoutVersion);
}

}  // namespace

absl::StatusOr<ProcessHooks> GroupHooks() {
  const uint32_t self = eal_internal::SelfToken();
  if (self == 0) return absl::FailedPreconditionError("timer sets need eal::Init first");
  ProcessHooks hooks;
  hooks.self = self;
  hooks.alive = eal_internal::TokenAlive;
  hooks.lcore_owner = eal_internal::LcoreOwnerToken;
  return hooks;
}

absl::StatusOr<TimerSet> Create(SetParams params) {
  absl::StatusOr<ProcessHooks> hooks = GroupHooks();
  if (!hooks.ok()) return hooks.status();
  if (params.hz == 0) params.hz = Hz();
  absl::StatusOr<size_t> bytes = TimerSet::MemorySize(params);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<void*> mem = memory::Allocate(*bytes, 64, params.socket);
  if (!mem.ok()) {
    return absl::Status(mem.status().code(), absl::StrFormat("timer set \"%s\": %s", params.name,
                                                             mem.status().message()));
  }
  absl::StatusOr<TimerSet> set = TimerSet::Init(*mem, params, *hooks);
  if (set.ok()) {
    const absl::Status registered =
        memory::RegisterObject(kKind, params.name, timer_internal::kLayoutVersion, *mem);
    if (registered.ok()) return set;
    set = registered;
  }
  memory::Free(*mem).IgnoreError();
  return set.status();
}

absl::StatusOr<TimerSet> Lookup(absl::string_view name) {
  absl::StatusOr<ProcessHooks> hooks = GroupHooks();
  if (!hooks.ok()) return hooks.status();
  absl::StatusOr<void*> obj = Registered(name);
  if (!obj.ok()) return obj.status();
  absl::StatusOr<TimerSet> set = TimerSet::Attach(*obj, *hooks);
  if (!set.ok()) return set.status();
  if (set->hz() != Hz()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "timer set \"%s\" was made for a %d Hz clock; this group's clock runs at %d Hz",
        Printable(name), set->hz(), Hz()));
  }
  return set;
}

absl::Status Free(TimerSet set) {
  if (!set.valid() || !memory::Contains(set.layout())) {
    return absl::InvalidArgumentError("not a timer set in the group's shared memory");
  }
  const std::string name = set.name();
  absl::StatusOr<void*> registered = Registered(name);
  if (!registered.ok() || *registered != static_cast<void*>(set.layout())) {
    return absl::InvalidArgumentError(
        absl::StrFormat("timer set \"%s\" at %p was not made by timer::Create", name,
                        static_cast<void*>(set.layout())));
  }
  if (const size_t busy = set.Busy(); busy != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "timer set \"%s\" has %d pending, running or arming timers; stop them first "
        "(TimerSet::StopAll)",
        name, busy));
  }
  if (absl::Status s = memory::UnregisterObject(kKind, name); !s.ok()) return s;
  set.layout()->magic = 0;
  return memory::Free(set.layout());
}

}  // namespace keel::timer
