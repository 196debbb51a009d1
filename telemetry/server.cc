#include "telemetry/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/log.h"
#include "base/unix_socket.h"

namespace keel::telemetry {
namespace {

struct Client {
  int fd = -1;
  std::string held;  // a reply the client's socket had no room for; empty if none
};

// Sends `reply` without blocking. True when it went (or the client is gone, which the
// next poll reports); false when the socket is full and the reply must wait.
bool TrySend(Client& c, const std::string& reply, bool* gone) {
  const ssize_t n = send(c.fd, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n >= 0) return true;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
  *gone = true;  // EPIPE, ECONNRESET: the client left
  return true;
}

}  // namespace

std::string SocketName(int instance) {
  return instance == 0 ? std::string(kSocketName) : absl::StrCat(kSocketName, ":", instance);
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const std::string& dir,
                                                      absl::string_view file,
                                                      ServerOptions options) {
  if (options.identity.max_output_len < 64) {
    return absl::InvalidArgumentError(absl::StrFormat("telemetry max_output_len %d: at least 64",
                                                      options.identity.max_output_len));
  }
  if (options.max_clients < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("telemetry max_clients %d: at least 1", options.max_clients));
  }
  std::string path = absl::StrCat(dir, "/", file);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  absl::StatusOr<int> listener = ListenSeqpacket(dir, file);
  if (!listener.ok()) return listener.status();
  const int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    const int err = errno;
    close(*listener);
    unlink(path.c_str());
    return absl::ResourceExhaustedError(absl::StrCat("telemetry: eventfd: ", ErrnoText(err)));
  }
  std::unique_ptr<Server> server(new Server(std::move(path), *listener, stop_fd, options));
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  return server;
}

Server::Server(std::string path, int listen_fd, int stop_fd, ServerOptions options)
    : path_(std::move(path)), listen_fd_(listen_fd), stop_fd_(stop_fd), options_(options) {}

Server::~Server() {
  const uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) != sizeof(one)) {
    KEEL_LOG(Error, "telemetry", "cannot stop the server of %s: %s", path_, ErrnoText(errno));
  }
  if (thread_.joinable()) thread_.join();
  unlink(path_.c_str());
  close(listen_fd_);
  close(stop_fd_);
}

ServerStats Server::Stats() const {
  ServerStats s;
  s.clients = clients_.load(std::memory_order_relaxed);
  s.accepted = accepted_.load(std::memory_order_relaxed);
  s.refused = refused_.load(std::memory_order_relaxed);
  s.requests = requests_.load(std::memory_order_relaxed);
  s.held = held_.load(std::memory_order_relaxed);
  return s;
}

void Server::Run() {
  const std::string greeting = Greeting(options_.identity);
  std::vector<Client> clients;
  std::vector<pollfd> fds;
  // One byte more than the longest request, to see (MSG_TRUNC) that one was longer.
  std::string request(kMaxRequestLength + 1, '\0');
  for (;;) {
    fds.assign({{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}});
    for (const Client& c : clients) {
      // A client with a held reply is not read until that reply has gone.
      fds.push_back({c.fd, static_cast<short>(c.held.empty() ? POLLIN : POLLOUT), 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno != EINTR) KEEL_LOG(Error, "telemetry", "poll: %s", ErrnoText(errno));
      continue;
    }
    if (fds[0].revents != 0) break;

    std::vector<bool> gone(clients.size(), false);
    for (size_t i = 0; i < clients.size(); ++i) {
      Client& c = clients[i];
      const short revents = fds[i + 2].revents;
      if (revents == 0) continue;
      bool left = false;
      if (!c.held.empty()) {
        if (revents & (POLLERR | POLLHUP)) {
          left = true;
        } else if (TrySend(c, c.held, &left)) {
          c.held.clear();
        }
      } else {
        // MSG_TRUNC: the result is the message's real length even when longer.
        const ssize_t n = recv(c.fd, request.data(), request.size(), MSG_DONTWAIT | MSG_TRUNC);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          left = true;  // closed (or reset) by the client
        } else if (n > 0) {
          requests_.fetch_add(1, std::memory_order_relaxed);
          // A longer request is refused by Execute, which sees its length.
          std::string text = request.substr(0, std::min<size_t>(n, request.size()));
          if (static_cast<size_t>(n) > kMaxRequestLength) text.resize(n, ' ');
          std::string reply = Execute(text, options_.identity);
          if (!TrySend(c, reply, &left)) {
            c.held = std::move(reply);
            held_.fetch_add(1, std::memory_order_relaxed);
          }
        }
      }
      gone[i] = left;
    }
    for (size_t i = clients.size(); i-- > 0;) {
      if (!gone[i]) continue;
      close(clients[i].fd);
      clients.erase(clients.begin() + i);
    }

    if (fds[1].revents & POLLIN) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        if (static_cast<int>(clients.size()) >= options_.max_clients) {
          // Counted before the close: a client that sees its connection closed then
          // sees it counted (the close is a system call after the store; found by a test
          // run under ASan, whose slower server thread lost the race).
          refused_.fetch_add(1, std::memory_order_relaxed);
          close(fd);
        } else {
          accepted_.fetch_add(1, std::memory_order_relaxed);
          Client c{fd, {}};
          bool left = false;
          if (!TrySend(c, greeting, &left)) c.held = greeting;
          if (left) {
            close(fd);
          } else {
            clients.push_back(std::move(c));
          }
        }
      }
    }
    clients_.store(clients.size(), std::memory_order_relaxed);
  }
  for (const Client& c : clients) close(c.fd);
  clients_.store(0, std::memory_order_relaxed);
}

}  // namespace keel::telemetry
