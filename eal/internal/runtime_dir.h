// Where a process group keeps its runtime files: one private directory per prefix.
//
//   base: $KEEL_RUNTIME_DIR if set, else /var/run/keel as root, else
//         $XDG_RUNTIME_DIR/keel, else /tmp/keel-UID
//   dir:  BASE/PREFIX, mode 0700; files in it are 0600.
#ifndef KEEL_EAL_INTERNAL_RUNTIME_DIR_H_
#define KEEL_EAL_INTERNAL_RUNTIME_DIR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace keel::eal_internal {

std::string RuntimeBaseDir();
std::string RuntimeDir(absl::string_view prefix);

// Creates `dir` (and missing parents, mode 0700). An existing `dir` must be a directory
// owned by this user; its mode is set to 0700. PermissionDenied / FailedPrecondition
// name the path otherwise.
absl::Status MakePrivateDir(const std::string& dir);

// Removes every file in `dir` except `keep`. Never recurses.
absl::Status RemoveFilesExcept(const std::string& dir, absl::string_view keep);

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_RUNTIME_DIR_H_
