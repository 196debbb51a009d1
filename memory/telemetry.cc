// The memory component's telemetry commands. DPDK's names for the heaps and memzones
// (/eal/heap_list, /eal/heap_info, /eal/memzone_list, /eal/memzone_info), keel's for
// what DPDK 22.11 does not report (/memory/segments, /memory/objects).
#include "telemetry/telemetry.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "memory/memory.h"

namespace keel::memory {
namespace {

using telemetry::Json;
using telemetry::Params;

std::string Address(const void* p) { return absl::StrFormat("%p", p); }

absl::Status NotInitialized() {
  return absl::FailedPreconditionError("memory is not initialized (eal::Init has not run)");
}

// Heaps are per NUMA node; a heap's id is its node.
absl::StatusOr<Json> HeapList(absl::string_view) {
  if (!Initialized()) return NotInitialized();
  Json list = Json::Array();
  for (const SocketUsage& u : Usage()) list.Push(u.socket);
  return list;
}

absl::StatusOr<Json> HeapInfo(absl::string_view params) {
  if (!Initialized()) return NotInitialized();
  absl::StatusOr<uint64_t> id = telemetry::ParseIndex(params, "heap", 1u << 16);
  if (!id.ok()) return id.status();
  for (const SocketUsage& u : Usage()) {
    if (static_cast<uint64_t>(u.socket) != *id) continue;
    return Json::Object()
        .Set("Heap_id", u.socket)
        .Set("Name", absl::StrFormat("socket_%d", u.socket))
        .Set("Heap_size", u.total)
        .Set("Free_size", u.free)
        .Set("Alloc_size", u.total - u.free)
        .Set("Greatest_free_size", u.largest_free)
        .Set("Alloc_count", u.allocations);
  }
  return absl::NotFoundError(
      absl::StrFormat("heap %d: the group has no memory on node %d", *id, *id));
}

absl::StatusOr<Json> MemzoneList(absl::string_view) {
  if (!Initialized()) return NotInitialized();
  Json list = Json::Array();
  const std::vector<Memzone> zones = Memzones();
  for (size_t i = 0; i < zones.size(); ++i) list.Push(i);
  return list;
}

// By index into /eal/memzone_list (DPDK's), or by name.
absl::StatusOr<Json> MemzoneInfo(absl::string_view params) {
  if (!Initialized()) return NotInitialized();
  const std::vector<Memzone> zones = Memzones();
  const bool by_index = std::all_of(params.begin(), params.end(), absl::ascii_isdigit);
  for (size_t i = 0; i < zones.size(); ++i) {
    const Memzone& z = zones[i];
    if (by_index ? params != absl::StrCat(i) : params != z.name) continue;
    return Json::Object()
        .Set("Zone", i)
        .Set("Name", z.name)
        .Set("Length", z.size)
        .Set("Address", Address(z.addr))
        .Set("Socket", z.socket)
        .Set("Alignment", z.align);
  }
  return absl::NotFoundError(absl::StrFormat("memzone %s: none (%d memzones)",
                                             telemetry::JsonQuote(params), zones.size()));
}

absl::StatusOr<Json> SegmentList(absl::string_view) {
  if (!Initialized()) return NotInitialized();
  Json list = Json::Array();
  for (const Segment& s : Segments()) {
    list.Push(Json::Object()
                  .Set("address", Address(s.addr))
                  .Set("size", s.size)
                  .Set("page_size", s.page_size)
                  .Set("socket", s.socket)
                  .Set("hugepages", s.hugepages)
                  .Set("file", s.file));
  }
  return list;
}

absl::StatusOr<Json> ObjectList(absl::string_view) {
  if (!Initialized()) return NotInitialized();
  Json list = Json::Array();
  for (const Object& o : Objects()) {
    list.Push(Json::Object()
                  .Set("name", o.name)
                  .Set("kind", o.kind)
                  .Set("layout", o.layout_version)
                  .Set("address", Address(o.addr))
                  .Set("creator_pid", static_cast<int64_t>(o.creator_pid)));
  }
  return list;
}

const telemetry::CommandRegistrar kCommands({
    {"/eal/heap_list", "Returns the heap ids (one per NUMA node). Takes no parameters",
     Params::kNone, HeapList},
    {"/eal/heap_info", "Returns a heap's size, free and allocated bytes. Parameters: int heap_id",
     Params::kRequired, HeapInfo},
    {"/eal/memzone_list", "Returns the memzone indices. Takes no parameters", Params::kNone,
     MemzoneList},
    {"/eal/memzone_info",
     "Returns a memzone's name, address, size and socket. Parameters: int index, or a name",
     Params::kRequired, MemzoneInfo},
    {"/memory/segments",
     "Returns the group's memory segments: address, size, page size, file. Takes no parameters",
     Params::kNone, SegmentList},
    {"/memory/objects",
     "Returns the group's named objects: rings, mempools, hash tables... Takes no parameters",
     Params::kNone, ObjectList},
});

}  // namespace
}  // namespace keel::memory
