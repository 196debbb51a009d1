#include "base/log.h"

#include <unistd.h>

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace keel::log {
namespace {

struct LogState {
  absl::Mutex mu;
  Level global ABSL_GUARDED_BY(mu) = Level::kNotice;
  absl::flat_hash_map<std::string, Level> per_component ABSL_GUARDED_BY(mu);
  bool timestamps ABSL_GUARDED_BY(mu) = false;
};

LogState& State() {
  static LogState* state = new LogState;
  return *state;
}

constexpr absl::string_view kLevelNames[] = {"emerg",   "alert",  "crit", "err",
                                             "warning", "notice", "info", "debug"};

}  // namespace

absl::string_view LevelName(Level level) {
  const int n = static_cast<int>(level);
  return n >= 1 && n <= 8 ? kLevelNames[n - 1] : "level?";
}

absl::StatusOr<Level> ParseLevel(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (int i = 0; i < 8; ++i) {
    if (lower == kLevelNames[i]) return static_cast<Level>(i + 1);
  }
  if (lower == "error") return Level::kError;
  if (lower == "warn") return Level::kWarning;
  int number = 0;
  if (!lower.empty() && absl::ascii_isdigit(lower[0]) && absl::SimpleAtoi(lower, &number) &&
      number >= 1 && number <= 8) {
    return static_cast<Level>(number);
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "log level \"%s\" is not one of emerg, alert, crit, err, warning, notice, info, "
      "debug or 1..8",
      text));
}

void SetLevel(Level level) {
  LogState& s = State();
  absl::MutexLock lock(&s.mu);
  s.global = level;
  s.per_component.clear();
}

void SetLevel(absl::string_view component, Level level) {
  LogState& s = State();
  absl::MutexLock lock(&s.mu);
  s.per_component[component] = level;
}

Level GetLevel(absl::string_view component) {
  LogState& s = State();
  absl::MutexLock lock(&s.mu);
  auto it = s.per_component.find(component);
  return it == s.per_component.end() ? s.global : it->second;
}

void SetTimestamps(bool on) {
  LogState& s = State();
  absl::MutexLock lock(&s.mu);
  s.timestamps = on;
}

bool Enabled(absl::string_view component, Level level) {
  return static_cast<int>(level) <= static_cast<int>(GetLevel(component));
}

void Write(absl::string_view component, Level level, absl::string_view message) {
  bool timestamps;
  {
    LogState& s = State();
    absl::MutexLock lock(&s.mu);
    timestamps = s.timestamps;
  }
  std::string line;
  if (timestamps) {
    absl::StrAppend(&line,
                    absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ ", absl::Now(), absl::UTCTimeZone()));
  }
  absl::StrAppend(&line, component, ": ", absl::AsciiStrToUpper(LevelName(level)), ": ", message,
                  "\n");
  // One write(2) per line so lines of concurrent processes do not interleave.
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

}  // namespace keel::log
