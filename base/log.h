// Leveled, per-component logging to stderr.
//
// Levels are DPDK's (1 = emergency ... 8 = debug). Each component logs under its own
// name ("eal", "memory", "ring", ...) and has its own threshold; components without one
// use the global threshold (default: notice). The EAL sets thresholds from
// `--log-level [COMPONENT:]LEVEL` and timestamps from `--log-timestamp`.
//
//   KEEL_LOG(Notice, "eal", "primary process %d ready", getpid());
//   keel::log::SetLevel("ring", keel::log::Level::kDebug);
//
// Logging is for the control path: it formats a string and takes a process-local lock.
// All functions are thread-safe.
#ifndef KEEL_BASE_LOG_H_
#define KEEL_BASE_LOG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace keel::log {

enum class Level : int {
  kEmergency = 1,
  kAlert = 2,
  kCritical = 3,
  kError = 4,
  kWarning = 5,
  kNotice = 6,
  kInfo = 7,
  kDebug = 8,
};

// "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug".
absl::string_view LevelName(Level level);

// Accepts a level name above (also "error", "warn", any case) or its number 1..8.
// InvalidArgument names the text otherwise.
absl::StatusOr<Level> ParseLevel(absl::string_view text);

// Sets the global threshold, used by every component without its own.
void SetLevel(Level level);
// Sets the threshold of one component.
void SetLevel(absl::string_view component, Level level);
// The threshold that applies to `component`.
Level GetLevel(absl::string_view component);
// Prefix each line with an RFC 3339 UTC timestamp (off by default).
void SetTimestamps(bool on);

// True when a message of `level` from `component` would be written.
bool Enabled(absl::string_view component, Level level);
// Writes one line "[TIME ]component: LEVEL: message" to stderr with one write(2).
void Write(absl::string_view component, Level level, absl::string_view message);

}  // namespace keel::log

// KEEL_LOG(Warning, "eal", "format %d", value): formats only when enabled.
#define KEEL_LOG(level, component, ...)                                    \
  do {                                                                     \
    if (::keel::log::Enabled((component), ::keel::log::Level::k##level)) { \
      ::keel::log::Write((component), ::keel::log::Level::k##level,        \
                         ::absl::StrFormat(__VA_ARGS__));                  \
    }                                                                      \
  } while (0)

#endif  // KEEL_BASE_LOG_H_
