// The timer component's telemetry commands: the group's clock and its timer sets.
#include "telemetry/telemetry.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "memory/memory.h"
#include "timer/timer.h"

namespace keel::timer {
namespace {

using telemetry::Json;
using telemetry::Params;

absl::StatusOr<Json> Clock(absl::string_view) {
  const SourceInfo clock = CurrentSourceInfo();
  return Json::Object()
      .Set("source", SourceName(clock.source))
      .Set("hz", clock.hz)
      .Set("why", clock.why);
}

absl::StatusOr<Json> List(absl::string_view) {
  absl::StatusOr<std::vector<std::string>> names = memory::ObjectNames("timer_set");
  if (!names.ok()) return names.status();
  return Json::Strings(*names);
}

absl::StatusOr<Json> Info(absl::string_view name) {
  absl::StatusOr<TimerSet> set = Lookup(name);
  if (!set.ok()) return set.status();
  Json lcores = Json::Array();
  uint64_t pending = 0;
  for (const LcoreStats& st : set->Stats()) {
    pending += st.pending;
    lcores.Push(Json::Object()
                    .Set("lcore", st.lcore)
                    .Set("pending", st.pending)
                    .Set("ran", st.ran)
                    .Set("missing_callback", st.missing_callback)
                    .Set("missed_periods", st.missed_periods)
                    .Set("no_space", st.no_space)
                    .Set("adoptions", st.adoptions)
                    .Set("wheel_entries", st.entries));
  }
  return Json::Object()
      .Set("name", set->name())
      .Set("capacity", set->capacity())
      .Set("pending", pending)
      .Set("lcores", std::move(lcores));
}

const telemetry::CommandRegistrar kCommands({
    {"/timer/clock", "Returns the group's clock: source, hz, why. Takes no parameters",
     Params::kNone, Clock},
    {"/timer/list", "Returns the names of the group's timer sets. Takes no parameters",
     Params::kNone, List},
    {"/timer/info",
     "Returns a timer set's capacity and per-lcore pending and run counts. Parameters: string "
     "name",
     Params::kRequired, Info},
});

}  // namespace
}  // namespace keel::timer
