// keel memory: the group's shared memory, at the same address in every process.
//
// When a program links //memory, eal::Init sets it up: the primary reserves one
// address range for the group and maps hugepage-backed segments into it (ordinary
// shared files with --no-huge); every secondary maps the same files at the same
// addresses, so a pointer into shared memory is valid in every process of the group.
// On top of it: a shared heap (Allocate/Free), named memzones, and a registry of named
// objects that other components (ring, mempool, ...) use so Lookup works everywhere.
//
// Everything here belongs to the group, not to the process that created it: it stays
// until freed (by any process) or until the group ends.
//
//   keel::memory::Memzone zone = *keel::memory::ReserveMemzone("stats", 4096);
//   auto* counters = static_cast<uint64_t*>(zone.addr);       // in the primary
//   auto* same = static_cast<uint64_t*>(keel::memory::LookupMemzone("stats")->addr);
//
// All functions are thread-safe and process-safe (robust cross-process locks; a
// process killed while holding one does not wedge the others). They are control-path
// calls: they take a lock. Before eal::Init they fail with FailedPrecondition.
#ifndef KEEL_MEMORY_MEMORY_H_
#define KEEL_MEMORY_MEMORY_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/version.h"

namespace keel::memory {

inline constexpr Version kVersion = {0, 1, 0};

// Any NUMA node: the caller's own node first, then the others.
inline constexpr int kSocketAny = -1;
inline constexpr size_t kMaxNameLength = 63;

// --- Shared heap ---------------------------------------------------------------------
// `size` bytes aligned to `align` (a power of two; at least 64 is used) on `socket`.
// Usable from every process at the same address. No round trip to the primary.
// Errors: InvalidArgument (align not a power of two, socket without memory),
// ResourceExhausted (not enough memory: the message gives the sizes).
absl::StatusOr<void*> Allocate(size_t size, size_t align = 64, int socket = kSocketAny);
// Frees memory from Allocate, from any process. InvalidArgument for a pointer that is
// not a live allocation (double free, foreign pointer); nothing changes then.
absl::Status Free(void* ptr);

// --- Memzones ----------------------------------------------------------------------
struct Memzone {
  std::string name;
  void* addr = nullptr;
  size_t size = 0;
  int socket = 0;
  size_t align = 0;
};
// Reserves a named zone. Errors: InvalidArgument (empty name or longer than 63, align
// not a power of two), AlreadyExists (the name is taken), ResourceExhausted (no
// memory, or the memzone table is full).
absl::StatusOr<Memzone> ReserveMemzone(absl::string_view name, size_t size,
                                       int socket = kSocketAny, size_t align = 64);
// NotFound for an unknown name.
absl::StatusOr<Memzone> LookupMemzone(absl::string_view name);
// Frees a zone (from any process). NotFound for an unknown name.
absl::Status FreeMemzone(absl::string_view name);
// Every zone, by name.
std::vector<Memzone> Memzones();

// --- Named objects (DPDK's tailqs) -------------------------------------------------
// Components register the objects they create in shared memory so any process can
// find them by name. Names are unique across kinds.
struct Object {
  std::string name;
  std::string kind;
  uint32_t layout_version = 0;
  void* addr = nullptr;
  pid_t creator_pid = 0;
};
// Errors: InvalidArgument (bad name or kind, addr outside shared memory),
// AlreadyExists, ResourceExhausted (registry full).
absl::Status RegisterObject(absl::string_view kind, absl::string_view name,
                            uint32_t layout_version, void* addr);
// NotFound for an unknown name; FailedPrecondition when the object is of another kind
// or layout version (the message names both).
absl::StatusOr<void*> LookupObject(absl::string_view kind, absl::string_view name,
                                   uint32_t layout_version);
// NotFound / FailedPrecondition as LookupObject.
absl::Status UnregisterObject(absl::string_view kind, absl::string_view name);
std::vector<Object> Objects();
// The names of the objects of `kind` ("ring", "mempool", ...), sorted. FailedPrecondition
// before eal::Init.
absl::StatusOr<std::vector<std::string>> ObjectNames(absl::string_view kind);

// --- What the group has ------------------------------------------------------------
struct Segment {
  std::string file;
  void* addr = nullptr;
  size_t size = 0;
  size_t page_size = 0;
  int socket = 0;
  bool hugepages = false;
};
std::vector<Segment> Segments();

struct SocketUsage {
  int socket = 0;
  size_t total = 0;          // heap bytes on this node
  size_t free = 0;
  size_t largest_free = 0;   // the largest single allocation that would fit now
  size_t allocations = 0;
};
std::vector<SocketUsage> Usage();

// True when `p` points into the group's shared memory.
bool Contains(const void* p);
bool Initialized();

// Test hook: takes socket `socket`'s heap lock, calls `on_held` (so a test knows the
// lock is held), and holds it for `hold` (a test kills the process meanwhile).
absl::Status HoldHeapLockForTest(int socket, absl::Duration hold,
                                 const std::function<void()>& on_held);
// The same for the lock of the memzone and object names.
absl::Status HoldNamesLockForTest(absl::Duration hold, const std::function<void()>& on_held);

}  // namespace keel::memory

#endif  // KEEL_MEMORY_MEMORY_H_
