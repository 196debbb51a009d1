// Fixed-size names in shared memory: copying in, reading back, validating.
//
// Shared structs keep names as NUL-padded char arrays (no std::string in shared memory).
// A name read back is bounded by the array, never trusted to be terminated.
//
//   char name[32];
//   CopyName(name, "PRI_2_SEC");
//   absl::string_view n = NameOf(name);   // "PRI_2_SEC"
#ifndef KEEL_BASE_NAMES_H_
#define KEEL_BASE_NAMES_H_

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace keel {

// Copies up to N-1 bytes of src and zero-fills the rest of dst.
template <size_t N>
void CopyName(char (&dst)[N], absl::string_view src) {
  std::memset(dst, 0, N);
  // An empty view may have a null data(): memcpy from null is undefined even for 0
  // bytes (UBSan found one: the interrupt relay copying an empty name).
  if (!src.empty()) std::memcpy(dst, src.data(), std::min(src.size(), N - 1));
}

// The name in `name`, up to its first NUL or its end.
template <size_t N>
absl::string_view NameOf(const char (&name)[N]) {
  return absl::string_view(name, strnlen(name, N));
}

// InvalidArgument unless `name` has 1..max_length characters:
//   ring name "" must be 1 to 63 characters (it has 0)
absl::Status CheckNameLength(absl::string_view what, absl::string_view name, size_t max_length);

// `text` with every byte outside printable ASCII (and '"', '\\') escaped as \xNN: for
// messages quoting strings read from shared files, which are untrusted.
std::string Printable(absl::string_view text);

}  // namespace keel

#endif  // KEEL_BASE_NAMES_H_
