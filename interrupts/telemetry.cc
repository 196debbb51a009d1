// The interrupt relay's telemetry commands: event types, subscribers, mailbox depths and
// drops.
#include "telemetry/telemetry.h"

#include <string>

#include "absl/status/statusor.h"
#include "interrupts/interrupts.h"

namespace keel::interrupts {
namespace {

using telemetry::Json;
using telemetry::Params;

absl::StatusOr<Json> Types(absl::string_view) {
  absl::StatusOr<RelayInfo> relay = DescribeRelay();
  if (!relay.ok()) return relay.status();
  return Json::Strings(relay->types);
}

absl::StatusOr<Json> Relay(absl::string_view) {
  absl::StatusOr<RelayInfo> relay = DescribeRelay();
  if (!relay.ok()) return relay.status();
  Json subscribers = Json::Array();
  for (const SubscriberInfo& sub : relay->subscribers) {
    subscribers.Push(Json::Object()
                         .Set("pid", static_cast<int64_t>(sub.pid))
                         .Set("types", Json::Strings(sub.types))
                         .Set("depth", sub.depth)
                         .Set("capacity", sub.capacity)
                         .Set("published", sub.published)
                         .Set("dropped", sub.dropped)
                         .Set("doorbells", sub.doorbells)
                         .Set("publish_drops", sub.publish_drops));
  }
  return Json::Object()
      .Set("primary_pid", static_cast<int64_t>(relay->primary_pid))
      .Set("types", Json::Strings(relay->types))
      .Set("undelivered", relay->undelivered)
      .Set("subscribers", std::move(subscribers));
}

const telemetry::CommandRegistrar kCommands({
    {"/interrupts/types", "Returns the group's event types. Takes no parameters", Params::kNone,
     Types},
    {"/interrupts/relay",
     "Returns the relay: types, and per subscriber mailbox depth, drops. Takes no parameters",
     Params::kNone, Relay},
});

}  // namespace
}  // namespace keel::interrupts
