// The mempool's telemetry commands, with DPDK's names (/mempool/list, /mempool/info).
#include "telemetry/telemetry.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "memory/memory.h"
#include "mempool/mempool.h"

namespace keel::mempool {
namespace {

using telemetry::Json;
using telemetry::Params;

absl::StatusOr<Json> List(absl::string_view) {
  absl::StatusOr<std::vector<std::string>> names = memory::ObjectNames("mempool");
  if (!names.ok()) return names.status();
  return Json::Strings(*names);
}

absl::StatusOr<Json> Info(absl::string_view name) {
  absl::StatusOr<Mempool*> pool = Lookup(name);
  if (!pool.ok()) return pool.status();
  const Mempool& p = **pool;
  // In the pool's ring and its lcore caches, as DPDK's avail_count.
  const unsigned avail = p.AvailableCount();
  return Json::Object()
      .Set("name", p.name())
      .Set("flags", absl::StrFormat("0x%x", p.flags()))
      .Set("size", p.Size())
      .Set("cache_size", p.CacheSize())
      .Set("elt_size", p.ElementSize())
      .Set("private_data_size", p.PrivateSize())
      .Set("ops_name", p.ops_name())
      .Set("avail_count", avail)
      .Set("in_use_count", avail > p.Size() ? 0 : p.Size() - avail)
      .Set("address", absl::StrFormat("%p", static_cast<const void*>(&p)));
}

const telemetry::CommandRegistrar kCommands({
    {"/mempool/list", "Returns the names of the group's mempools. Takes no parameters",
     Params::kNone, List},
    {"/mempool/info",
     "Returns a mempool's sizes, backend and free objects. Parameters: string mempool name",
     Params::kRequired, Info},
});

}  // namespace
}  // namespace keel::mempool
