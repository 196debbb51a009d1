// Unix SOCK_SEQPACKET sockets in a group's runtime directory, with peer credentials and
// file descriptors passed by SCM_RIGHTS: what keel's fd servers (the HPET's, the
// interrupt relay's) share.
//
//   absl::StatusOr<int> listener = ListenSeqpacket(dir, "relay");      // 0600, non-blocking
//   absl::StatusOr<int> peer = ConnectSeqpacket(dir, "relay", absl::Seconds(1));
//   SendWithFds(*peer, &hello, sizeof(hello), {event_fd}, MSG_DONTWAIT);
//   Received got = ReceiveWithFds(connection, &hello, sizeof(hello), 1, 0);
//
// Every call is thread-safe (it touches only the descriptors it is given) and never
// aborts; each failure is reported with the socket's path or the errno.
#ifndef KEEL_BASE_UNIX_SOCKET_H_
#define KEEL_BASE_UNIX_SOCKET_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace keel {

// "No such file or directory (errno 2)".
std::string ErrnoText(int err);

// Binds DIR/FILE as a SOCK_SEQPACKET socket (non-blocking, close-on-exec), sets its mode
// to 0600 before anyone can connect, and listens. A path too long for sun_path is
// reached through /proc/self/fd. FailedPrecondition names the path and the errno (an
// existing DIR/FILE included: the caller removes stale sockets first).
absl::StatusOr<int> ListenSeqpacket(const std::string& dir, absl::string_view file,
                                    int backlog = 64);

// Connects to DIR/FILE (close-on-exec, blocking). `timeout` bounds connect() and later
// blocking sends and receives (SO_SNDTIMEO, SO_RCVTIMEO). FailedPrecondition names the
// path and the errno.
absl::StatusOr<int> ConnectSeqpacket(const std::string& dir, absl::string_view file,
                                     absl::Duration timeout);

// The peer of a connected unix socket (SO_PEERCRED: its pid in this PID namespace, uid,
// gid). FailedPrecondition with the errno when the kernel does not say.
absl::StatusOr<ucred> PeerCredentials(int fd);

// True when a peer of `uid` may share this process's group: this process's effective
// uid, or root.
bool TrustedUid(uid_t uid);

// One message of `size` bytes carrying `fds` (SCM_RIGHTS; none when empty). `flags` are
// sendmsg()'s (MSG_NOSIGNAL is always added). Returns sendmsg()'s result: the bytes sent,
// or -1 with errno set.
ssize_t SendWithFds(int fd, const void* data, size_t size, absl::Span<const int> fds, int flags);

struct Received {
  ssize_t bytes = -1;          // recvmsg()'s result: 0 is an orderly close by the peer
  int error = 0;               // errno when bytes < 0
  bool truncated = false;      // the message was longer than the buffer (MSG_TRUNC)
  bool fds_truncated = false;  // more fds arrived than max_fds (MSG_CTRUNC; extra closed)
  std::vector<int> fds;        // close-on-exec; the caller owns (and closes) them
};
// Receives one message into data[0, size) and up to `max_fds` descriptors. `flags` are
// recvmsg()'s (MSG_CMSG_CLOEXEC is always added).
Received ReceiveWithFds(int fd, void* data, size_t size, size_t max_fds, int flags);

// Closes every descriptor of `fds`.
void CloseAll(const std::vector<int>& fds);

}  // namespace keel

#endif  // KEEL_BASE_UNIX_SOCKET_H_
