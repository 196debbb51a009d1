// keel::telemetry::Server: serves this process's telemetry commands on a unix socket,
// speaking DPDK's telemetry v2 protocol.
//
//   absl::StatusOr<std::unique_ptr<Server>> server =
//       Server::Start(runtime_dir, "dpdk_telemetry.v2", {.version = "keel 0.1.0"});
//
// The socket is SOCK_SEQPACKET, mode 0600 in the caller's directory. A client reads a
// greeting on connect (Greeting()), then sends one request per message and reads one
// reply per request (Execute()). One thread serves every client without ever blocking
// on one: a client that sends requests and never reads gets its next reply held until
// it reads, and meanwhile its further requests wait in its socket; the others are
// served as usual. More than `max_clients` at once: the newest is closed at once, as
// DPDK does.
//
// The EAL starts one in every process (eal::Init; --no-telemetry says not to), so an
// application rarely creates one itself.
#ifndef KEEL_TELEMETRY_SERVER_H_
#define KEEL_TELEMETRY_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "telemetry/telemetry.h"

namespace keel::telemetry {

// DPDK's socket names: the primary's, and a secondary's with ":INSTANCE" appended
// (dpdk-telemetry.py -i INSTANCE).
inline constexpr char kSocketName[] = "dpdk_telemetry.v2";
std::string SocketName(int instance);  // kSocketName for 0, else "dpdk_telemetry.v2:N"

struct ServerOptions {
  Identity identity;
  int max_clients = 32;
};

struct ServerStats {
  uint64_t clients = 0;   // connected now
  uint64_t accepted = 0;  // since Start
  uint64_t refused = 0;   // closed at once: max_clients were connected
  uint64_t requests = 0;
  uint64_t held = 0;  // replies that had to wait for their client to read
};

class Server {
 public:
  // Listens on DIR/FILE, replacing a socket file left there (the caller owns the name),
  // and starts the serving thread. FailedPrecondition names the path and the errno;
  // InvalidArgument a max_output_len below 64 or max_clients below 1.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const std::string& dir,
                                                       absl::string_view file,
                                                       ServerOptions options = {});
  // Stops the thread, closes every client and removes the socket file.
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const std::string& path() const { return path_; }
  // Thread-safe.
  ServerStats Stats() const;

 private:
  Server(std::string path, int listen_fd, int stop_fd, ServerOptions options);
  void Run();

  const std::string path_;
  const int listen_fd_;
  const int stop_fd_;  // an eventfd: written by the destructor
  const ServerOptions options_;
  // Relaxed: statistics, written by the serving thread only.
  std::atomic<uint64_t> clients_{0}, accepted_{0}, refused_{0}, requests_{0}, held_{0};
  std::thread thread_;
};

}  // namespace keel::telemetry

#endif  // KEEL_TELEMETRY_SERVER_H_
