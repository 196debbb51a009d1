#include "eal/internal/process.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace keel::eal_internal {

absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid) {
  char path[64];
  absl::SNPrintF(path, sizeof(path), "/proc/%d/stat", pid);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrFormat("process %d is gone", pid));
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return absl::NotFoundError(absl::StrFormat("process %d is gone", pid));
  // "pid (comm) state ppid ..." where comm may contain spaces and parentheses: the
  // fields we want follow the last ')'.
  const absl::string_view stat(buf, static_cast<size_t>(n));
  const size_t close_paren = stat.rfind(')');
  if (close_paren == absl::string_view::npos) {
    return absl::InternalError(absl::StrFormat("%s: unexpected format", path));
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(stat.substr(close_paren + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  if (fields.size() < 20) {
    return absl::InternalError(absl::StrFormat("%s: unexpected format", path));
  }
  if (fields[0] == "Z" || fields[0] == "X") {
    return absl::NotFoundError(absl::StrFormat("process %d has exited", pid));
  }
  uint64_t start_time = 0;
  if (!absl::SimpleAtoi(fields[19], &start_time)) {
    return absl::InternalError(absl::StrFormat("%s: unexpected start time", path));
  }
  return start_time;
}

bool IsAlive(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  absl::StatusOr<uint64_t> now = ProcessStartTime(pid);
  return now.ok() && *now == start_time;
}

absl::StatusOr<int> OpenPidfd(pid_t pid, uint64_t start_time) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    if (errno == ESRCH) return absl::NotFoundError(absl::StrFormat("process %d is gone", pid));
    return absl::InternalError(
        absl::StrFormat("pidfd_open(%d): %s", pid, std::strerror(errno)));
  }
  // The pid could have been reused between the caller reading it and pidfd_open; the
  // start time, read after the pidfd pins the pid, tells.
  if (!IsAlive(pid, start_time)) {
    ::close(fd);
    return absl::NotFoundError(absl::StrFormat("process %d is gone", pid));
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

}  // namespace keel::eal_internal
