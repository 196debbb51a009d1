#include "base/kill_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"

namespace keel {
namespace base_internal {
namespace {

// The armed point. Written before arming (g_kill_point_armed's release), read after.
std::string& ArmedName() {
  static std::string* name = new std::string;
  return *name;
}
std::atomic<uint64_t> g_remaining{0};

void Arm(absl::string_view name, uint64_t nth) {
  g_kill_point_armed.store(false, std::memory_order_relaxed);
  ArmedName().assign(name.data(), name.size());
  // Relaxed: see KillPointForTest (arming precedes the code under test).
  g_remaining.store(nth == 0 ? 1 : nth, std::memory_order_relaxed);
  g_kill_point_armed.store(!name.empty(), std::memory_order_release);
}

// KEEL_KILL_POINT=NAME[@N], read once at start-up.
[[maybe_unused]] const bool g_from_env = [] {
  const char* spec = std::getenv("KEEL_KILL_POINT");
  if (spec == nullptr || *spec == '\0') return false;
  absl::string_view text(spec);
  uint64_t nth = 1;
  if (const size_t at = text.rfind('@'); at != absl::string_view::npos) {
    if (!absl::SimpleAtoi(text.substr(at + 1), &nth) || nth == 0) {
      std::fprintf(stderr,
                   "keel: KEEL_KILL_POINT=%s: the count after '@' must be a positive "
                   "number; kill point not armed\n",
                   spec);
      return false;
    }
    text = text.substr(0, at);
  }
  Arm(text, nth);
  return true;
}();

}  // namespace

std::atomic<bool> g_kill_point_armed{false};

void HitKillPoint(const char* name) {
  if (ArmedName() != name) return;
  // Relaxed: a counter; only its own value matters.
  if (g_remaining.fetch_sub(1, std::memory_order_relaxed) == 1) {
    ::kill(::getpid(), SIGKILL);
    ::pause();  // SIGKILL is delivered before kill() returns to a single thread; be sure
  }
}

}  // namespace base_internal

void SetKillPointForTest(absl::string_view name, uint64_t nth) { base_internal::Arm(name, nth); }

}  // namespace keel
