// The ring's telemetry commands, with DPDK's names (DPDK 23.11's /ring/list and
// /ring/info).
#include "telemetry/telemetry.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "memory/memory.h"
#include "ring/ring.h"

namespace keel::ring {
namespace {

using telemetry::Json;
using telemetry::Params;

const char* ProducerType(uint32_t flags) {
  if (flags & kSingleProducer) return "SP";
  if (flags & kProducerRts) return "MP_RTS";
  if (flags & kProducerHts) return "MP_HTS";
  return "MP";
}

const char* ConsumerType(uint32_t flags) {
  if (flags & kSingleConsumer) return "SC";
  if (flags & kConsumerRts) return "MC_RTS";
  if (flags & kConsumerHts) return "MC_HTS";
  return "MC";
}

absl::StatusOr<Json> List(absl::string_view) {
  absl::StatusOr<std::vector<std::string>> names = memory::ObjectNames("ring");
  if (!names.ok()) return names.status();
  return Json::Strings(*names);
}

absl::StatusOr<Json> Info(absl::string_view name) {
  absl::StatusOr<Ring*> ring = Lookup(name);
  if (!ring.ok()) return ring.status();
  const Ring& r = **ring;
  const unsigned used = r.Count();
  return Json::Object()
      .Set("name", r.name())
      .Set("flags", absl::StrFormat("0x%x", r.flags()))
      .Set("producer_type", ProducerType(r.flags()))
      .Set("consumer_type", ConsumerType(r.flags()))
      .Set("size", r.Size())
      .Set("mask", r.Size() - 1)
      .Set("capacity", r.Capacity())
      .Set("elem_size", r.ElementSize())
      .Set("used_count", used)
      .Set("free_count", used > r.Capacity() ? 0 : r.Capacity() - used)
      .Set("address", absl::StrFormat("%p", static_cast<const void*>(&r)));
}

const telemetry::CommandRegistrar kCommands({
    {"/ring/list", "Returns the names of the group's rings. Takes no parameters", Params::kNone,
     List},
    {"/ring/info", "Returns a ring's type, size, capacity and use. Parameters: string ring name",
     Params::kRequired, Info},
});

}  // namespace
}  // namespace keel::ring
