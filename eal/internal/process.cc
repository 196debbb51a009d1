#include "eal/internal/process.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "base/status.h"

namespace keel::eal_internal {
namespace {

struct flock ByteRange(short type, off_t byte) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  return fl;
}

}  // namespace

absl::Status LockByte(int fd, off_t byte) {
  struct flock fl = ByteRange(F_WRLCK, byte);
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return absl::OkStatus();
  if (errno == EAGAIN || errno == EACCES) {
    return absl::UnavailableError(absl::StrFormat("byte %d is locked by another process", byte));
  }
  return ErrnoStatus(errno, "cannot lock", absl::StrFormat("byte %d of fd %d", byte, fd));
}

void UnlockByte(int fd, off_t byte) {
  struct flock fl = ByteRange(F_UNLCK, byte);
  ::fcntl(fd, F_OFD_SETLK, &fl);
}

bool ByteLockHeld(int probe_fd, off_t byte) {
  struct flock fl = ByteRange(F_WRLCK, byte);
  if (::fcntl(probe_fd, F_OFD_GETLK, &fl) != 0) return true;
  return fl.l_type != F_UNLCK;
}

uint64_t PidNamespaceId() {
  struct stat st;
  if (::stat("/proc/self/ns/pid", &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

absl::StatusOr<int> OpenPidfd(pid_t pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    if (errno == ESRCH) return absl::NotFoundError(absl::StrFormat("process %d is gone", pid));
    return ErrnoStatus(errno, "pidfd_open", absl::StrFormat("pid %d", pid));
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

}  // namespace keel::eal_internal
