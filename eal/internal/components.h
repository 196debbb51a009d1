// The components linked into this process (process-local).
//
// Each component registers its name, API version and shared-layout version once, from
// a static initializer in its control-path .cc:
//
//   const eal_internal::ComponentRegistrar kRegistrar({"ring", ring::kVersion,
//                                                      ring_internal::kLayoutVersion});
//
// The EAL records these in the group's shared config: the first process of a group that
// brings a component fixes its layout version, and every later process must match it.
// `-v` prints the list.
#ifndef KEEL_EAL_INTERNAL_COMPONENTS_H_
#define KEEL_EAL_INTERNAL_COMPONENTS_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "eal/version.h"

namespace keel::eal_internal {

struct ComponentInfo {
  const char* name;  // a string literal, at most 31 characters
  Version version;
  uint32_t layout_version;
};

// Thread-safe; called before main() by ComponentRegistrar.
void RegisterComponent(const ComponentInfo& info);

// The registered components sorted by name, with any ForTest overrides applied.
std::vector<ComponentInfo> RegisteredComponents();

// Makes this process claim `layout_version` for component `name` (to test refusal).
void SetLayoutVersionForTest(absl::string_view name, uint32_t layout_version);

struct ComponentRegistrar {
  explicit ComponentRegistrar(const ComponentInfo& info) { RegisterComponent(info); }
};

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_COMPONENTS_H_
