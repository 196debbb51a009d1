// What //ring (ring.cc: Create / Lookup / Free) takes from //ring:core (core.cc) besides
// the public API. Not for users.
#ifndef KEEL_RING_INTERNAL_CORE_H_
#define KEEL_RING_INTERNAL_CORE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keel::ring {
class Ring;
}  // namespace keel::ring

namespace keel::ring_internal {

// Bytes a ring needs (MemorySize), after checking the arguments as Init does: the
// message names `name`. InvalidArgument.
absl::StatusOr<size_t> CheckedSize(absl::string_view name, uint32_t count, uint32_t flags,
                                   uint32_t elem_size);

// True for memory Init made a ring of (its magic), and not since Free.
bool IsRing(const ring::Ring* ring);

}  // namespace keel::ring_internal

#endif  // KEEL_RING_INTERNAL_CORE_H_
