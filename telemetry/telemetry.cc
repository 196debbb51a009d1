#include "telemetry/telemetry.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace keel::telemetry {
namespace {

// The built-in commands: answered by Execute itself (they report the registry and the
// server's identity), listed and described like any other.
enum class Builtin { kNone, kList, kInfo, kHelp };

struct Entry {
  std::string help;
  Params params = Params::kNone;
  Handler handler;
  Builtin builtin = Builtin::kNone;
};

struct Registry {
  absl::Mutex mu;
  std::map<std::string, Entry, std::less<>> commands ABSL_GUARDED_BY(mu);

  Registry() {
    absl::MutexLock lock(&mu);
    commands["/"] = {"Returns the list of commands. Takes no parameters", Params::kNone, nullptr,
                     Builtin::kList};
    commands["/info"] = {"Returns the version, pid and max_output_len. Takes no parameters",
                         Params::kNone, nullptr, Builtin::kInfo};
    commands["/help"] = {"Returns help text for a command. Parameters: string command",
                         Params::kRequired, nullptr, Builtin::kHelp};
  }
};

Registry& GetRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

absl::Status ValidateName(absl::string_view name) {
  if (name.empty() || name[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("telemetry command ", JsonQuote(name), ": must start with \"/\""));
  }
  if (name.size() > kMaxCommandLength) {
    return absl::InvalidArgumentError(
        absl::StrFormat("telemetry command %s: %d characters, at most %d", JsonQuote(name),
                        name.size(), kMaxCommandLength));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '/') {
      return absl::InvalidArgumentError(
          absl::StrFormat("telemetry command %s: character %s is not one of [A-Za-z0-9_/]",
                          JsonQuote(name), JsonQuote(absl::string_view(&c, 1))));
    }
  }
  return absl::OkStatus();
}

// {"KEY":VALUE}.
std::string Reply(absl::string_view key, const Json& value) {
  std::string out = "{";
  out += JsonQuote(key);
  out += ':';
  value.AppendTo(&out);
  out += '}';
  return out;
}

// {"KEY":null,"error":"WHY"}, shortened (the message first, then the key) to fit `max`.
std::string ErrorReply(absl::string_view key, absl::string_view why, size_t max) {
  std::string out = absl::StrCat("{", JsonQuote(key), ":null,\"error\":", JsonQuote(why), "}");
  if (out.size() <= max) return out;
  out = absl::StrCat("{", JsonQuote(key), ":null,\"error\":\"reply too long\"}");
  if (out.size() <= max) return out;
  return "{\"error\":\"reply too long\"}";
}

}  // namespace

absl::Status RegisterCommand(Command command) {
  if (absl::Status s = ValidateName(command.name); !s.ok()) return s;
  if (!command.handler) {
    return absl::InvalidArgumentError(
        absl::StrCat("telemetry command ", JsonQuote(command.name), ": no handler"));
  }
  if (command.help.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("telemetry command ", JsonQuote(command.name), ": no help text"));
  }
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  auto [it, inserted] = r.commands.try_emplace(command.name);
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat("telemetry command ", JsonQuote(command.name), ": already registered"));
  }
  it->second = {std::move(command.help), command.params, std::move(command.handler),
                Builtin::kNone};
  return absl::OkStatus();
}

CommandRegistrar::CommandRegistrar(std::vector<Command> commands) {
  for (Command& command : commands) {
    const absl::Status s = RegisterCommand(std::move(command));
    if (!s.ok()) {
      std::fprintf(stderr, "keel: %s\n", s.ToString().c_str());
      std::abort();
    }
  }
}

std::vector<std::string> CommandNames() {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  std::vector<std::string> names;
  for (const auto& [name, entry] : r.commands) names.push_back(name);
  return names;
}

std::string Greeting(const Identity& identity) {
  Json greeting = Json::Object();
  greeting.Set("version", identity.version)
      .Set("pid", static_cast<int64_t>(getpid()))
      .Set("max_output_len", identity.max_output_len);
  return greeting.Dump();
}

std::string Execute(absl::string_view request, const Identity& identity) {
  const size_t max = identity.max_output_len;
  const size_t comma = request.find(',');
  const absl::string_view name = request.substr(0, comma);
  const absl::string_view params =
      comma == absl::string_view::npos ? absl::string_view() : request.substr(comma + 1);
  if (request.size() > kMaxRequestLength) {
    return ErrorReply(
        name.substr(0, kMaxCommandLength + 1),
        absl::StrFormat("request of %d bytes, at most %d", request.size(), kMaxRequestLength), max);
  }
  if (name.empty() || name[0] != '/') {
    return ErrorReply(name, "a command starts with \"/\"; \"/\" lists the commands", max);
  }

  Entry entry;
  {
    Registry& r = GetRegistry();
    absl::MutexLock lock(&r.mu);
    auto it = r.commands.find(name);
    if (it == r.commands.end()) {
      return ErrorReply(name, "unknown command; \"/\" lists the commands", max);
    }
    entry = it->second;
  }
  if (entry.params == Params::kNone && !params.empty()) {
    return ErrorReply(name, absl::StrCat("takes no parameters (given ", JsonQuote(params), ")"),
                      max);
  }
  if (entry.params == Params::kRequired && params.empty()) {
    return ErrorReply(name, absl::StrCat("needs a parameter: ", entry.help), max);
  }

  absl::StatusOr<Json> value;
  switch (entry.builtin) {
    case Builtin::kList: {
      Json list = Json::Array();
      for (const std::string& n : CommandNames()) list.Push(n);
      value = std::move(list);
      break;
    }
    case Builtin::kInfo: {
      Json info = Json::Object();
      info.Set("version", identity.version)
          .Set("pid", static_cast<int64_t>(getpid()))
          .Set("max_output_len", identity.max_output_len);
      value = std::move(info);
      break;
    }
    case Builtin::kHelp: {
      Registry& r = GetRegistry();
      absl::MutexLock lock(&r.mu);
      auto it = r.commands.find(params);
      if (it == r.commands.end()) {
        value = absl::NotFoundError(
            absl::StrCat("unknown command ", JsonQuote(params), "; \"/\" lists the commands"));
      } else {
        value = Json::Object().Set(params, it->second.help);
      }
      break;
    }
    case Builtin::kNone:
      value = entry.handler(params);
      break;
  }
  if (!value.ok()) return ErrorReply(name, value.status().message(), max);
  std::string reply = Reply(name, *value);
  if (reply.size() > max) {
    return ErrorReply(name,
                      absl::StrFormat("reply of %d bytes exceeds max_output_len %d; ask for less",
                                      reply.size(), max),
                      max);
  }
  return reply;
}

absl::StatusOr<uint64_t> ParseIndex(absl::string_view params, absl::string_view what,
                                    uint64_t max) {
  uint64_t value = 0;
  const bool digits = !params.empty() && params.size() <= 20 &&
                      std::all_of(params.begin(), params.end(), absl::ascii_isdigit);
  if (!digits || !absl::SimpleAtoi(params, &value) || value > max) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %s: not a number in 0..%d", what, JsonQuote(params), max));
  }
  return value;
}

}  // namespace keel::telemetry
