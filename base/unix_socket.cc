#include "base/unix_socket.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace keel {
namespace {

// The most descriptors one message carries (Linux's SCM_MAX_FD is 253).
constexpr size_t kMaxFdsPerMessage = 16;

// The socket address of DIR/FILE. When that path does not fit in sun_path (a long
// $KEEL_RUNTIME_DIR), it is reached as /proc/self/fd/N/FILE through *dir_fd, a descriptor
// of DIR the caller closes after bind() or connect().
absl::StatusOr<sockaddr_un> SocketAddress(const std::string& dir, absl::string_view file,
                                          int* dir_fd) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::string path = absl::StrCat(dir, "/", file);
  if (path.size() >= sizeof(addr.sun_path)) {
    *dir_fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dir_fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrFormat("cannot open %s: %s", dir, ErrnoText(errno)));
    }
    path = absl::StrFormat("/proc/self/fd/%d/%s", *dir_fd, file);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// bind() or connect() of `fd` to DIR/FILE; the errno is kept across the cleanup.
int BindOrConnect(bool bind, int fd, const sockaddr_un& addr, int dir_fd) {
  const auto* a = reinterpret_cast<const sockaddr*>(&addr);
  const int rc = bind ? ::bind(fd, a, sizeof(addr)) : ::connect(fd, a, sizeof(addr));
  const int err = errno;
  if (dir_fd >= 0) ::close(dir_fd);
  errno = err;
  return rc;
}

}  // namespace

std::string ErrnoText(int err) { return absl::StrFormat("%s (errno %d)", std::strerror(err), err); }

absl::StatusOr<int> ListenSeqpacket(const std::string& dir, absl::string_view file, int backlog) {
  const std::string path = absl::StrCat(dir, "/", file);
  auto fail = [&](absl::string_view what, int err) {
    return absl::FailedPreconditionError(absl::StrFormat("%s %s: %s", what, path, ErrnoText(err)));
  };
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail("cannot create the socket", errno);
  int dir_fd = -1;
  absl::StatusOr<sockaddr_un> addr = SocketAddress(dir, file, &dir_fd);
  if (!addr.ok()) {
    ::close(fd);
    return addr.status();
  }
  if (BindOrConnect(/*bind=*/true, fd, *addr, dir_fd) != 0) {
    const int err = errno;
    ::close(fd);
    return fail("cannot bind", err);
  }
  // Before listen(): nobody can connect while the mode is still the umask's.
  const char* step = ::chmod(path.c_str(), 0600) != 0 ? "cannot chmod"
                     : ::listen(fd, backlog) != 0     ? "cannot listen on"
                                                      : nullptr;
  if (step != nullptr) {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return fail(step, err);
  }
  return fd;
}

absl::StatusOr<int> ConnectSeqpacket(const std::string& dir, absl::string_view file,
                                     absl::Duration timeout) {
  const std::string path = absl::StrCat(dir, "/", file);
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot create a socket for %s: %s", path, ErrnoText(errno)));
  }
  // Bound connect() (a full backlog makes it wait) and later blocking calls.
  const timeval tv = absl::ToTimeval(timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int dir_fd = -1;
  absl::StatusOr<sockaddr_un> addr = SocketAddress(dir, file, &dir_fd);
  if (!addr.ok()) {
    ::close(fd);
    return addr.status();
  }
  if (BindOrConnect(/*bind=*/false, fd, *addr, dir_fd) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot connect to %s: %s", path, ErrnoText(err)));
  }
  return fd;
}

absl::StatusOr<ucred> PeerCredentials(int fd) {
  ucred peer = {};
  socklen_t length = sizeof(peer);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the peer's credentials: ", ErrnoText(errno)));
  }
  return peer;
}

bool TrustedUid(uid_t uid) { return uid == ::geteuid() || uid == 0; }

ssize_t SendWithFds(int fd, const void* data, size_t size, absl::Span<const int> fds, int flags) {
  if (fds.size() > kMaxFdsPerMessage) {
    errno = EINVAL;
    return -1;
  }
  iovec iov = {const_cast<void*>(data), size};
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFdsPerMessage * sizeof(int))] = {};
  msghdr header = {};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  if (!fds.empty()) {
    header.msg_control = control;
    header.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* rights = CMSG_FIRSTHDR(&header);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(rights), fds.data(), fds.size() * sizeof(int));
  }
  return ::sendmsg(fd, &header, flags | MSG_NOSIGNAL);
}

Received ReceiveWithFds(int fd, void* data, size_t size, size_t max_fds, int flags) {
  Received got;
  iovec iov = {data, size};
  // Room for more than max_fds: those beyond it are closed here, never leaked.
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFdsPerMessage * sizeof(int))] = {};
  msghdr header = {};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  header.msg_control = control;
  header.msg_controllen = sizeof(control);
  got.bytes = ::recvmsg(fd, &header, flags | MSG_CMSG_CLOEXEC);
  if (got.bytes < 0) {
    got.error = errno;
    return got;
  }
  got.truncated = (header.msg_flags & MSG_TRUNC) != 0;
  got.fds_truncated = (header.msg_flags & MSG_CTRUNC) != 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (got.fds.size() < max_fds) {
        got.fds.push_back(received);
      } else {
        ::close(received);
        got.fds_truncated = true;
      }
    }
  }
  return got;
}

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
}

}  // namespace keel
