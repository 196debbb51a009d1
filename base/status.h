// absl::Status from a failed system call: errno mapped to the code DPDK's errno maps to
// (see STYLE.md), and a message naming what was tried and on which path.
//
//   if (::open(path.c_str(), O_RDONLY) < 0) return ErrnoStatus(errno, "cannot open", path);
//   // NotFound("cannot open /x: No such file or directory")
#ifndef KEEL_BASE_STATUS_H_
#define KEEL_BASE_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace keel {

// EACCES/EPERM -> PermissionDenied, ENOENT -> NotFound, EEXIST -> AlreadyExists,
// ENOMEM/ENOSPC/EDQUOT -> ResourceExhausted, EINVAL -> InvalidArgument, EAGAIN/EBUSY ->
// Unavailable, else Internal. Message: "WHAT PATH: strerror(err)".
absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path);

}  // namespace keel

#endif  // KEEL_BASE_STATUS_H_
