// keel::telemetry: commands that report a process's state as JSON, served over DPDK's
// telemetry v2 protocol so DPDK's clients (dpdk-telemetry.py, telegraf) work unchanged.
//
// Each component registers its own commands, from its own folder; this library knows
// none of them. The EAL serves every process's commands on a socket in the group's
// runtime directory (see telemetry/README.md and telemetry/server.h).
//
//   const keel::telemetry::CommandRegistrar kCommands({
//       {"/ring/list", "Returns the names of the group's rings. Takes no parameters",
//        keel::telemetry::Params::kNone,
//        [](absl::string_view) -> absl::StatusOr<Json> { return RingNames(); }},
//   });
//
//   std::string reply = keel::telemetry::Execute("/ring/list");  // {"/ring/list":[...]}
//
// A request is a command, optionally followed by "," and its parameters
// ("/ring/info,PRI_2_SEC"). Every request gets exactly one reply, a JSON object keyed by
// the command. When the command fails (unknown, bad parameters, a handler's error, a
// reply longer than max_output_len) the value is null, as DPDK's, and keel adds an
// "error" member saying why: {"/ring/info":null,"error":"ring \"X\": not found"}.
#ifndef KEEL_TELEMETRY_TELEMETRY_H_
#define KEEL_TELEMETRY_TELEMETRY_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/version.h"
#include "telemetry/json.h"

namespace keel::telemetry {

inline constexpr Version kVersion = {0, 1, 0};

// DPDK's limits: a command name is at most 55 characters (MAX_CMD_LEN 56 with its NUL),
// a request at most 1024 bytes, a reply at most 16 KiB.
inline constexpr size_t kMaxCommandLength = 55;
inline constexpr size_t kMaxRequestLength = 1024;
inline constexpr size_t kMaxOutputLength = 16 * 1024;

enum class Params {
  kNone,      // a request with parameters is refused
  kRequired,  // a request without them is refused
  kOptional,
};

// Runs in the telemetry server's thread (or the caller of Execute): must be thread-safe
// and should not block for long. `params` is what follows the first ","; empty if none.
// An error's message becomes the reply's "error".
using Handler = std::function<absl::StatusOr<Json>(absl::string_view params)>;

struct Command {
  std::string name;  // "/" then [A-Za-z0-9_/], at most kMaxCommandLength characters
  std::string help;  // one line, shown by "/help,NAME"
  Params params = Params::kNone;
  Handler handler;
};

// Adds a command to this process (thread-safe, any time). InvalidArgument names a bad
// name or a missing handler or help; AlreadyExists a name registered before (the
// built-in "/", "/info" and "/help" included).
absl::Status RegisterCommand(Command command);

// Registers a component's commands from a static initializer; a refusal is a
// programming error and aborts.
struct CommandRegistrar {
  explicit CommandRegistrar(std::vector<Command> commands);
};

// Every command's name, sorted (the built-ins included).
std::vector<std::string> CommandNames();

// What "/info" and the server's greeting report.
struct Identity {
  std::string version = "keel";  // the EAL sets "keel X.Y.Z"
  size_t max_output_len = kMaxOutputLength;
};

// The reply to one request, as the server sends it: never longer than
// identity.max_output_len (a longer reply is replaced by an error reply). Thread-safe.
std::string Execute(absl::string_view request, const Identity& identity = Identity());

// The greeting a client reads on connect:
// {"version":"keel X.Y.Z","pid":PID,"max_output_len":16384}.
std::string Greeting(const Identity& identity);

// Helpers for handlers.
// The decimal in `params` (0..max), or InvalidArgument naming `what` and the text.
absl::StatusOr<uint64_t> ParseIndex(absl::string_view params, absl::string_view what, uint64_t max);

}  // namespace keel::telemetry

#endif  // KEEL_TELEMETRY_TELEMETRY_H_
