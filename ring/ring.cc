// Control path through the group's shared memory: Create / Lookup / Free, by name,
// and the ring's registration with the EAL. The rest is //ring:core (core.cc).
#include "ring/ring.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "eal/internal/components.h"
#include "memory/memory.h"
#include "ring/internal/core.h"

namespace keel::ring {
namespace {

constexpr char kKind[] = "ring";
static_assert(ring_internal::kNameSize - 1 == memory::kMaxNameLength,
              "a ring's name must fit the memory component's object names");

const eal_internal::ComponentRegistrar kRegistrar({"ring", kVersion,
                                                   ring_internal::kLayoutVersion});

}  // namespace

absl::StatusOr<Ring*> Create(absl::string_view name, uint32_t count, int socket, uint32_t flags,
                             uint32_t elem_size) {
  absl::StatusOr<size_t> bytes = ring_internal::CheckedSize(name, count, flags, elem_size);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<void*> mem = memory::Allocate(*bytes, alignof(ring_internal::RingLayout), socket);
  if (!mem.ok()) {
    return absl::Status(mem.status().code(),
                        absl::StrFormat("ring \"%s\": %s", name, mem.status().message()));
  }
  absl::StatusOr<Ring*> ring = Init(*mem, name, count, flags, elem_size);
  if (ring.ok()) {
    const absl::Status registered =
        memory::RegisterObject(kKind, name, ring_internal::kLayoutVersion, *mem);
    if (registered.ok()) return ring;
    ring = registered;
  }
  memory::Free(*mem).IgnoreError();
  return ring.status();
}

absl::StatusOr<Ring*> Lookup(absl::string_view name) {
  absl::StatusOr<void*> obj = memory::LookupObject(kKind, name, ring_internal::kLayoutVersion);
  if (!obj.ok()) return obj.status();
  return static_cast<Ring*>(*obj);
}

absl::Status Free(Ring* ring) {
  if (ring == nullptr || !memory::Contains(ring) || !ring_internal::IsRing(ring)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%p is not a ring in the group's shared memory", ring));
  }
  const std::string name(ring->name());
  absl::StatusOr<void*> registered =
      memory::LookupObject(kKind, name, ring_internal::kLayoutVersion);
  if (!registered.ok() || *registered != static_cast<void*>(ring)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ring \"%s\" at %p was not made by ring::Create", name, ring));
  }
  if (absl::Status s = memory::UnregisterObject(kKind, name); !s.ok()) return s;
  reinterpret_cast<ring_internal::RingLayout*>(ring)->magic = 0;
  return memory::Free(ring);
}

}  // namespace keel::ring
