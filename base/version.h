// keel::Version: the semantic version every component carries in its public header.
//
// Each component is versioned on its own (keel::eal::kVersion, keel::ring::kVersion,
// ...). The version says what the API promises; the separate *layout* version of a
// component (its internal/layout.h) says what its shared-memory structures look like,
// and that is what processes of one group must agree on.
//
//   std::cout << keel::ToString(keel::eal::kVersion);   // "0.1.0"
#ifndef KEEL_BASE_VERSION_H_
#define KEEL_BASE_VERSION_H_

#include <string>

#include "absl/strings/str_format.h"

namespace keel {

struct Version {
  int major;
  int minor;
  int patch;
};

inline std::string ToString(Version v) {
  return absl::StrFormat("%d.%d.%d", v.major, v.minor, v.patch);
}

}  // namespace keel

#endif  // KEEL_BASE_VERSION_H_
