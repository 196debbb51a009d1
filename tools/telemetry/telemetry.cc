// telemetry: a client for keel's (and DPDK's) telemetry v2 sockets.
//
//   telemetry [-f PREFIX] [-i N | --pid PID] [COMMAND...]   one reply per COMMAND, or
//                                                          commands from stdin, one a line
//   telemetry [-f PREFIX] -l                               the group's sockets and their pids
//   telemetry --dir DIR ...                                a directory instead of PREFIX's
//
// -f names the group (default "keel"); its runtime directory is found as every keel
// process finds it. The primary's socket is the default; -i N picks the secondary at
// "dpdk_telemetry.v2:N", --pid the socket whose greeting names PID. Each reply is
// printed as the JSON it is, one line per reply. Interactive on a terminal (a "--> "
// prompt; "quit" or end of input leaves).
#include "telemetry/telemetry.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/unix_socket.h"
#include "eal/eal.h"
#include "telemetry/server.h"

namespace {

namespace telemetry = keel::telemetry;

constexpr char kUsage[] =
    "usage: telemetry [-f PREFIX | --dir DIR] [-i N | --pid PID] [COMMAND...]\n"
    "       telemetry [-f PREFIX | --dir DIR] -l\n";

class Connection {
 public:
  static absl::StatusOr<Connection> Open(const std::string& dir, const std::string& file) {
    absl::StatusOr<int> fd = keel::ConnectSeqpacket(dir, file, absl::Seconds(5));
    if (!fd.ok()) return fd.status();
    Connection c(*fd);
    absl::StatusOr<std::string> greeting = c.Read(telemetry::kMaxOutputLength);
    if (!greeting.ok()) return greeting.status();
    c.greeting_ = *greeting;
    // The greeting's max_output_len sizes every later read (the protocol's rule).
    const size_t at = greeting->find("\"max_output_len\":");
    size_t max = 0;
    if (at != std::string::npos &&
        absl::SimpleAtoi(absl::StripSuffix(greeting->substr(at + 17), "}"), &max) && max > 0) {
      c.max_output_len_ = max;
    }
    return c;
  }
  Connection(Connection&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        greeting_(std::move(other.greeting_)),
        max_output_len_(other.max_output_len_) {}
  ~Connection() {
    if (fd_ >= 0) close(fd_);
  }

  const std::string& greeting() const { return greeting_; }
  // The pid the greeting names, 0 if none.
  long Pid() const {
    const size_t at = greeting_.find("\"pid\":");
    long pid = 0;
    if (at == std::string::npos) return 0;
    const std::string rest = greeting_.substr(at + 6);
    return absl::SimpleAtoi(rest.substr(0, rest.find(',')), &pid) ? pid : 0;
  }

  absl::StatusOr<std::string> Ask(const std::string& request) {
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
      return absl::UnavailableError(absl::StrCat("send: ", keel::ErrnoText(errno)));
    }
    return Read(max_output_len_);
  }

 private:
  explicit Connection(int fd) : fd_(fd) {}
  absl::StatusOr<std::string> Read(size_t max) {
    std::string buf(max + 1, '\0');
    const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) return absl::UnavailableError(absl::StrCat("recv: ", keel::ErrnoText(errno)));
    if (n == 0) return absl::UnavailableError("the process closed the connection");
    buf.resize(n);
    return buf;
  }

  int fd_;
  std::string greeting_;
  size_t max_output_len_ = telemetry::kMaxOutputLength;
};

// The telemetry sockets in `dir`, the primary's first.
std::vector<std::string> Sockets(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename();
    if (absl::StartsWith(name, telemetry::kSocketName) && entry.is_socket(ec)) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return names;
}

std::string ProgramOf(long pid) {
  std::ifstream comm(absl::StrCat("/proc/", pid, "/comm"));
  std::string name;
  std::getline(comm, name);
  return name.empty() ? "?" : name;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "telemetry: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string prefix = "keel", dir, instance;
  long pid = 0;
  bool list = false;
  std::vector<std::string> commands;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if ((arg == "-f" || arg == "--file-prefix") && has_value) {
      prefix = argv[++i];
    } else if (arg == "--dir" && has_value) {
      dir = argv[++i];
    } else if ((arg == "-i" || arg == "--instance") && has_value) {
      instance = argv[++i];
      int n = 0;
      if (!absl::SimpleAtoi(instance, &n) || n < 0) {
        return Fail(
            absl::StrCat("-i \"", instance, "\": not an instance number (0 is the primary)"));
      }
    } else if (arg == "--pid" && has_value) {
      if (!absl::SimpleAtoi(argv[++i], &pid) || pid <= 0) {
        return Fail(absl::StrCat("--pid \"", argv[i], "\": not a pid"));
      }
    } else if (arg == "-l" || arg == "--list") {
      list = true;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (absl::StartsWith(arg, "/")) {
      commands.push_back(arg);
    } else {
      std::fputs(kUsage, stderr);
      return Fail(absl::StrCat("unknown argument \"", arg, "\" (a command starts with \"/\")"));
    }
  }
  if (dir.empty()) dir = keel::eal::RuntimeDirectoryFor(prefix);

  if (list) {
    const std::vector<std::string> sockets = Sockets(dir);
    if (sockets.empty()) return Fail(absl::StrCat("no telemetry socket in ", dir));
    for (const std::string& name : sockets) {
      absl::StatusOr<Connection> c = Connection::Open(dir, name);
      if (c.ok()) {
        std::printf("%s  pid %ld  %s\n", name.c_str(), c->Pid(), ProgramOf(c->Pid()).c_str());
      } else {
        std::printf("%s  not answering (its process has exited)\n", name.c_str());
      }
    }
    return 0;
  }

  std::optional<Connection> connection;
  if (pid != 0) {
    for (const std::string& name : Sockets(dir)) {
      absl::StatusOr<Connection> c = Connection::Open(dir, name);
      if (c.ok() && c->Pid() == pid) {
        connection.emplace(*std::move(c));
        break;
      }
    }
    if (!connection)
      return Fail(absl::StrCat("no telemetry socket in ", dir, " is pid ", pid, "'s"));
  } else {
    const std::string name = instance.empty() || instance == "0"
                                 ? telemetry::SocketName(0)
                                 : absl::StrCat(telemetry::kSocketName, ":", instance);
    absl::StatusOr<Connection> c = Connection::Open(dir, name);
    if (!c.ok()) {
      return Fail(absl::StrCat(c.status().message(), " (telemetry -l lists the sockets there)"));
    }
    connection.emplace(*std::move(c));
  }

  auto ask = [&](const std::string& request) {
    absl::StatusOr<std::string> reply = connection->Ask(request);
    if (!reply.ok()) return Fail(std::string(reply.status().message()));
    std::printf("%s\n", reply->c_str());
    std::fflush(stdout);
    return 0;
  };
  if (!commands.empty()) {
    for (const std::string& command : commands) {
      if (int rc = ask(command); rc != 0) return rc;
    }
    return 0;
  }
  const bool tty = isatty(STDIN_FILENO);
  if (tty) std::printf("%s\n", connection->greeting().c_str());
  std::string line;
  while (true) {
    if (tty) {
      std::printf("--> ");
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    const std::string request(absl::StripAsciiWhitespace(line));
    if (request == "quit") break;
    if (request.empty()) continue;
    if (int rc = ask(request); rc != 0) return rc;
  }
  return 0;
}
