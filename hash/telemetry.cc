// The hash table's telemetry commands (DPDK 22.11 has none for hash).
#include "telemetry/telemetry.h"

#include <string>

#include "absl/status/statusor.h"
#include "hash/hash.h"
#include "memory/memory.h"

namespace keel::hash {
namespace {

using telemetry::Json;
using telemetry::Params;

absl::StatusOr<Json> List(absl::string_view) {
  if (!memory::Initialized()) {
    return absl::FailedPreconditionError("memory is not initialized (eal::Init has not run)");
  }
  Json list = Json::Array();
  for (const memory::Object& o : memory::Objects()) {
    if (o.kind == "hash") list.Push(o.name);
  }
  return list;
}

// Read with LookupHashesOnly: a table whose function this process lacks still reports.
absl::StatusOr<Json> Info(absl::string_view name) {
  absl::StatusOr<Table> table = LookupHashesOnly(name);
  if (!table.ok()) return table.status();
  const Table& t = *table;
  const uint32_t used = t.Count();
  Json flags = Json::Array();
  for (const std::string& f : FlagNames(t.flags())) flags.Push(f);
  return Json::Object()
      .Set("name", t.name())
      .Set("function", t.function())
      .Set("entries", t.entries())
      .Set("used", used)
      .Set("occupancy", t.entries() == 0 ? 0.0 : static_cast<double>(used) / t.entries())
      .Set("key_length", t.key_length())
      .Set("init_value", t.init_value())
      .Set("flags", std::move(flags))
      .Set("memory_size", t.memory_size());
}

const telemetry::CommandRegistrar kCommands({
    {"/hash/list", "Returns the names of the group's hash tables. Takes no parameters",
     Params::kNone, List},
    {"/hash/info",
     "Returns a hash table's function, entries, occupancy, flags. Parameters: string name",
     Params::kRequired, Info},
});

}  // namespace
}  // namespace keel::hash
