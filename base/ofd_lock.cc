#include "base/ofd_lock.h"

#include <fcntl.h>

#include <cerrno>

#include "absl/strings/str_format.h"
#include "base/status.h"

namespace keel {
namespace {

struct flock Range(short type, off_t start, off_t len) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fl;
}

}  // namespace

absl::Status TryLock(int fd, LockType type, off_t start, off_t len) {
  struct flock fl = Range(type == LockType::kShared ? F_RDLCK : F_WRLCK, start, len);
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return absl::OkStatus();
  const std::string what = absl::StrFormat("bytes %d+%d of fd %d", start, len, fd);
  if (errno == EAGAIN || errno == EACCES) {
    return absl::UnavailableError(absl::StrFormat("%s are locked by another open file", what));
  }
  return ErrnoStatus(errno, "cannot lock", what);
}

bool LockHeld(int probe_fd, off_t start, off_t len) {
  // An exclusive lock conflicts with every other lock: GETLK reports any.
  struct flock fl = Range(F_WRLCK, start, len);
  if (::fcntl(probe_fd, F_OFD_GETLK, &fl) != 0) return true;
  return fl.l_type != F_UNLCK;
}

}  // namespace keel
