// The hash table's telemetry commands (DPDK 22.11 has none for hash).
#include "telemetry/telemetry.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hash/hash.h"
#include "memory/memory.h"

namespace keel::hash {
namespace {

using telemetry::Json;
using telemetry::Params;

absl::StatusOr<Json> List(absl::string_view) {
  absl::StatusOr<std::vector<std::string>> names = memory::ObjectNames("hash");
  if (!names.ok()) return names.status();
  return Json::Strings(*names);
}

// Read with LookupHashesOnly: a table whose function this process lacks still reports.
absl::StatusOr<Json> Info(absl::string_view name) {
  absl::StatusOr<Table> table = LookupHashesOnly(name);
  if (!table.ok()) return table.status();
  const Table& t = *table;
  const uint32_t used = t.Count();
  return Json::Object()
      .Set("name", t.name())
      .Set("function", t.function())
      .Set("entries", t.entries())
      .Set("used", used)
      .Set("occupancy", t.entries() == 0 ? 0.0 : static_cast<double>(used) / t.entries())
      .Set("key_length", t.key_length())
      .Set("init_value", t.init_value())
      .Set("flags", Json::Strings(FlagNames(t.flags())))
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
