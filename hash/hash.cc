// Control path through the group's shared memory: Create / Lookup / Free by name, and
// the table's registration with the EAL. The rest is //hash:core (core.cc).
#include "hash/hash.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "eal/internal/components.h"
#include "memory/memory.h"

namespace keel::hash {
namespace {

constexpr char kKind[] = "hash";
static_assert(kMaxNameLength == memory::kMaxNameLength,
              "a table's name must fit the memory component's object names");
static_assert(kSocketAny == memory::kSocketAny);

const eal_internal::ComponentRegistrar kRegistrar({"hash", kVersion,
                                                   hash_internal::kLayoutVersion});

absl::StatusOr<void*> Registered(absl::string_view name) {
  return memory::LookupObject(kKind, name, hash_internal::kLayoutVersion);
}

}  // namespace

absl::StatusOr<Table> Create(const Params& params) {
  absl::StatusOr<size_t> bytes = MemorySize(params);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<void*> mem =
      memory::Allocate(*bytes, alignof(hash_internal::TableLayout), params.socket);
  if (!mem.ok()) {
    return absl::Status(mem.status().code(),
                        absl::StrFormat("hash \"%s\": %s", params.name, mem.status().message()));
  }
  absl::StatusOr<Table> table = Init(*mem, params);
  if (table.ok()) {
    const absl::Status registered =
        memory::RegisterObject(kKind, params.name, hash_internal::kLayoutVersion, *mem);
    if (registered.ok()) return table;
    table = registered;
  }
  memory::Free(*mem).IgnoreError();
  return table.status();
}

absl::StatusOr<Table> Lookup(absl::string_view name) {
  absl::StatusOr<void*> obj = Registered(name);
  if (!obj.ok()) return obj.status();
  return Attach(*obj);
}

absl::StatusOr<Table> LookupHashesOnly(absl::string_view name) {
  absl::StatusOr<void*> obj = Registered(name);
  if (!obj.ok()) return obj.status();
  return AttachHashesOnly(*obj);
}

absl::Status Free(const Table& table) {
  hash_internal::TableLayout* t = table.layout();
  if (t == nullptr || !memory::Contains(t) || !AttachHashesOnly(t).ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%p is not a hash table in the group's shared memory", t));
  }
  const std::string name = table.name();
  absl::StatusOr<void*> registered = Registered(name);
  if (!registered.ok() || *registered != static_cast<void*>(t)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("hash \"%s\" at %p was not made by hash::Create", name, t));
  }
  if (absl::Status s = memory::UnregisterObject(kKind, name); !s.ok()) return s;
  t->magic = 0;
  return memory::Free(t);
}

}  // namespace keel::hash
