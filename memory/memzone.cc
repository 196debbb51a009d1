// The shared heap API, memzones and the named-object registry.
#include <numa.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/names.h"
#include "base/robust_mutex.h"
#include "base/units.h"
#include "memory/internal/heap.h"
#include "memory/internal/layout.h"
#include "memory/internal/state.h"
#include "memory/memory.h"

namespace keel::memory {
namespace {

using memory_internal::CurrentState;
using memory_internal::kHeapLockName;
using memory_internal::kNamesLockName;
using memory_internal::HeapHeader;
using memory_internal::kMaxMemzones;
using memory_internal::kMaxObjects;
using memory_internal::kMaxSockets;
using memory_internal::MemoryConfig;
using memory_internal::MemzoneRecord;
using memory_internal::ObjectRecord;
using memory_internal::State;

absl::Status NotInitialized() {
  return absl::FailedPreconditionError(
      "keel memory is not initialized: call eal::Init in a program that links //memory");
}

// A record's fields are written before in_use flips to 1; see layout.h.
void Publish(uint32_t* in_use) {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  *in_use = 1;
}

void* AllocateLocked(State* state, HeapHeader* heap, size_t size, size_t align) {
  RobustLock lock(&heap->lock, kHeapLockName,
                  [&] { memory_internal::HeapRebuildLocked(heap, state->base); });
  if (!lock.ok()) return nullptr;  // logged by RobustLock
  return memory_internal::HeapAllocLocked(heap, state->base, size, align);
}

// Allocates on `socket`, or on any socket (local first) for kSocketAny.
absl::StatusOr<void*> AllocateFrom(State* state, size_t size, size_t align, int socket) {
  if (!IsPowerOfTwo(align)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("alignment %d is not a power of two", align));
  }
  MemoryConfig* config = state->config;
  std::vector<int> order;
  if (socket != kSocketAny) {
    if (socket < 0 || socket >= kMaxSockets || config->heaps[socket].size == 0) {
      std::vector<int> with_memory;
      for (int s = 0; s < kMaxSockets; ++s) {
        if (config->heaps[s].size != 0) with_memory.push_back(s);
      }
      return absl::InvalidArgumentError(
          absl::StrFormat("socket %d has no memory in this group (sockets with memory: %s)",
                          socket, absl::StrJoin(with_memory, ",")));
    }
    order.push_back(socket);
  } else {
    const int cpu = sched_getcpu();
    const int local = (cpu >= 0 && numa_available() >= 0) ? numa_node_of_cpu(cpu) : 0;
    if (local >= 0 && local < kMaxSockets && config->heaps[local].size != 0) {
      order.push_back(local);
    }
    for (int s = 0; s < kMaxSockets; ++s) {
      if (s != local && config->heaps[s].size != 0) order.push_back(s);
    }
  }
  for (int s : order) {
    if (void* p = AllocateLocked(state, &config->heaps[s], size, align)) return p;
  }
  std::vector<std::string> why;
  for (int s : order) {
    HeapHeader* heap = &config->heaps[s];
    RobustLock lock(&heap->lock, kHeapLockName,
                    [&] { memory_internal::HeapRebuildLocked(heap, state->base); });
    if (!lock.ok()) return lock.status();
    why.push_back(absl::StrFormat(
        "socket %d has %s free of %s, largest free block %s", s, FormatMib(heap->free_bytes),
        FormatMib(heap->size), FormatMib(memory_internal::HeapLargestFreeLocked(heap, state->base))));
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "cannot allocate %s (%d bytes, alignment %d): %s (the group has %d MB: -m/--socket-mem)",
      FormatMib(size), size, align, absl::StrJoin(why, "; "), config->header.limit_mb));
}

MemzoneRecord* FindMemzoneLocked(MemoryConfig* config, absl::string_view name) {
  for (MemzoneRecord& z : config->memzones) {
    if (z.in_use && NameOf(z.name) == name) return &z;
  }
  return nullptr;
}

ObjectRecord* FindObjectLocked(MemoryConfig* config, absl::string_view name) {
  for (ObjectRecord& o : config->objects) {
    if (o.in_use && NameOf(o.name) == name) return &o;
  }
  return nullptr;
}

Memzone ToMemzone(const State* state, const MemzoneRecord& z) {
  return Memzone{std::string(NameOf(z.name)), state->base + z.offset, z.size, z.socket,
                 z.align};
}

absl::Status CheckObject(const ObjectRecord& o, absl::string_view kind,
                         uint32_t layout_version) {
  if (NameOf(o.kind) != kind) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "object \"%s\" is a %s, not a %s", NameOf(o.name), NameOf(o.kind), kind));
  }
  if (o.layout_version != layout_version) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s \"%s\" has layout version %u, this process has layout version %u", kind,
        NameOf(o.name), o.layout_version, layout_version));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<void*> Allocate(size_t size, size_t align, int socket) {
  State* state = CurrentState();
  if (state == nullptr) return NotInitialized();
  return AllocateFrom(state, size, align, socket);
}

absl::Status Free(void* ptr) {
  State* state = CurrentState();
  if (state == nullptr) return NotInitialized();
  for (HeapHeader& heap : state->config->heaps) {
    if (heap.size == 0 || !memory_internal::HeapContains(&heap, state->base, ptr)) continue;
    RobustLock lock(&heap.lock, kHeapLockName,
                    [&] { memory_internal::HeapRebuildLocked(&heap, state->base); });
    if (!lock.ok()) return lock.status();
    if (memory_internal::HeapFreeLocked(&heap, state->base, ptr)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrFormat(
        "pointer %p is not a live allocation of the shared heap (freed twice?)", ptr));
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("pointer %p is not in the group's shared heap", ptr));
}

absl::StatusOr<Memzone> ReserveMemzone(absl::string_view name, size_t size, int socket,
                                       size_t align) {
  State* state = CurrentState();
  if (state == nullptr) return NotInitialized();
  if (absl::Status s = CheckNameLength("memzone", name, kMaxNameLength); !s.ok()) return s;
  MemoryConfig* config = state->config;
  RobustLock lock(&config->names_lock, kNamesLockName);
  if (!lock.ok()) return lock.status();
  if (FindMemzoneLocked(config, name) != nullptr) {
    return absl::AlreadyExistsError(absl::StrFormat("memzone \"%s\" already exists", name));
  }
  MemzoneRecord* slot = nullptr;
  for (MemzoneRecord& z : config->memzones) {
    if (!z.in_use) {
      slot = &z;
      break;
    }
  }
  if (slot == nullptr) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "memzone \"%s\": the memzone table is full (%d zones)", name, kMaxMemzones));
  }
  absl::StatusOr<void*> addr = AllocateFrom(state, size, align, socket);
  if (!addr.ok()) {
    return absl::Status(addr.status().code(),
                        absl::StrFormat("memzone \"%s\": %s", name, addr.status().message()));
  }
  CopyName(slot->name, name);
  slot->offset = static_cast<uint64_t>(static_cast<char*>(*addr) - state->base);
  slot->size = size;
  slot->align = std::max<size_t>(align, 64);
  slot->socket = -1;
  for (const HeapHeader& heap : config->heaps) {
    if (heap.size != 0 && memory_internal::HeapContains(&heap, state->base, *addr)) {
      slot->socket = heap.socket;
    }
  }
  Publish(&slot->in_use);
  return ToMemzone(state, *slot);
}

absl::StatusOr<Memzone> LookupMemzone(absl::string_view name) {
  State* state = CurrentState();
  if (state == nullptr) return NotInitialized();
  RobustLock lock(&state->config->names_lock, kNamesLockName);
  if (!lock.ok()) return lock.status();
  const MemzoneRecord* z = FindMemzoneLocked(state->config, name);
  if (z == nullptr) return absl::NotFoundError(absl::StrFormat("no memzone \"%s\"", name));
  return ToMemzone(state, *z);
}

absl::Status FreeMemzone(absl::string_view name) {
  State* state = CurrentState();
  if (state == nullptr) return NotInitialized();
  RobustLock lock(&state->config->names_lock, kNamesLockName);
  if (!lock.ok()) return lock.status();
  MemzoneRecord* z = FindMemzoneLocked(state->config, name);
  if (z == nullptr) return absl::NotFoundError(absl::StrFormat("no memzone \"%s\"", name));
  z->in_use = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return Free(state->base + z->offset);
}

std::vector<Memzone> Memzones() {
  std::vector<Memzone> zones;
  State* state = CurrentState();
  if (state == nullptr) return zones;
  RobustLock lock(&state->config->names_lock, kNamesLockName);
  if (!lock.ok()) return zones;  // logged by RobustLock
  for (const MemzoneRecord& z : state->config->memzones) {
    if (z.in_use) zones.push_back(ToMemzone(state, z));
  }
  std::sort(zones.begin(), zones.end(),
            [](const Memzone& a, const Memzone& b) { return a.name < b.name; });
  return zones;
}

absl::Status RegisterObject(absl::string_view kind, absl::string_view name,
                            uint32_t layout_version, void* addr) {
  State* state = CurrentState();
  if (state == nullptr) return NotInitialized();
  if (absl::Status s = CheckNameLength("object", name, kMaxNameLength); !s.ok()) return s;
  if (kind.empty() || kind.size() >= memory_internal::kKindSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "object kind \"%s\" must be 1 to %d characters", kind, memory_internal::kKindSize - 1));
  }
  if (!Contains(addr)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s \"%s\": %p is not in the group's shared memory", kind, name, addr));
  }
  MemoryConfig* config = state->config;
  RobustLock lock(&config->names_lock, kNamesLockName);
  if (!lock.ok()) return lock.status();
  if (const ObjectRecord* o = FindObjectLocked(config, name)) {
    return absl::AlreadyExistsError(
        absl::StrFormat("object \"%s\" already exists (a %s)", name, NameOf(o->kind)));
  }
  for (ObjectRecord& o : config->objects) {
    if (o.in_use) continue;
    CopyName(o.name, name);
    CopyName(o.kind, kind);
    o.offset = static_cast<uint64_t>(static_cast<char*>(addr) - state->base);
    o.layout_version = layout_version;
    o.creator_pid = getpid();
    Publish(&o.in_use);
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "%s \"%s\": the object registry is full (%d objects)", kind, name, kMaxObjects));
}

absl::StatusOr<void*> LookupObject(absl::string_view kind, absl::string_view name,
                                   uint32_t layout_version) {
  State* state = CurrentState();
  if (state == nullptr) return NotInitialized();
  RobustLock lock(&state->config->names_lock, kNamesLockName);
  if (!lock.ok()) return lock.status();
  const ObjectRecord* o = FindObjectLocked(state->config, name);
  if (o == nullptr) return absl::NotFoundError(absl::StrFormat("no %s \"%s\"", kind, name));
  if (absl::Status s = CheckObject(*o, kind, layout_version); !s.ok()) return s;
  return static_cast<void*>(state->base + o->offset);
}

absl::Status UnregisterObject(absl::string_view kind, absl::string_view name) {
  State* state = CurrentState();
  if (state == nullptr) return NotInitialized();
  RobustLock lock(&state->config->names_lock, kNamesLockName);
  if (!lock.ok()) return lock.status();
  ObjectRecord* o = FindObjectLocked(state->config, name);
  if (o == nullptr) return absl::NotFoundError(absl::StrFormat("no %s \"%s\"", kind, name));
  if (NameOf(o->kind) != kind) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "object \"%s\" is a %s, not a %s", name, NameOf(o->kind), kind));
  }
  o->in_use = 0;
  return absl::OkStatus();
}

std::vector<Object> Objects() {
  std::vector<Object> objects;
  State* state = CurrentState();
  if (state == nullptr) return objects;
  RobustLock lock(&state->config->names_lock, kNamesLockName);
  if (!lock.ok()) return objects;  // logged by RobustLock
  for (const ObjectRecord& o : state->config->objects) {
    if (!o.in_use) continue;
    objects.push_back(Object{std::string(NameOf(o.name)), std::string(NameOf(o.kind)),
                             o.layout_version, state->base + o.offset, o.creator_pid});
  }
  std::sort(objects.begin(), objects.end(),
            [](const Object& a, const Object& b) { return a.name < b.name; });
  return objects;
}

absl::StatusOr<std::vector<std::string>> ObjectNames(absl::string_view kind) {
  if (CurrentState() == nullptr) {
    return absl::FailedPreconditionError("memory is not initialized (eal::Init has not run)");
  }
  std::vector<std::string> names;
  for (Object& o : Objects()) {
    if (o.kind == kind) names.push_back(std::move(o.name));
  }
  return names;
}

std::vector<Segment> Segments() {
  std::vector<Segment> segments;
  State* state = CurrentState();
  if (state == nullptr) return segments;
  const memory_internal::MemoryHeader& h = state->config->header;
  for (uint32_t i = 0; i < h.segment_count; ++i) {
    const memory_internal::SegmentRecord& s = h.segments[i];
    segments.push_back(Segment{std::string(NameOf(s.path)), state->base + s.offset, s.size,
                               s.page_size, s.socket, s.hugepages != 0});
  }
  return segments;
}

std::vector<SocketUsage> Usage() {
  std::vector<SocketUsage> usage;
  State* state = CurrentState();
  if (state == nullptr) return usage;
  for (HeapHeader& heap : state->config->heaps) {
    if (heap.size == 0) continue;
    RobustLock lock(&heap.lock, kHeapLockName,
                    [&] { memory_internal::HeapRebuildLocked(&heap, state->base); });
    if (!lock.ok()) continue;  // logged by RobustLock
    usage.push_back(SocketUsage{heap.socket, heap.size, heap.free_bytes,
                                memory_internal::HeapLargestFreeLocked(&heap, state->base),
                                heap.busy_blocks});
  }
  return usage;
}

bool Contains(const void* p) {
  const State* state = CurrentState();
  if (state == nullptr) return false;
  const char* c = static_cast<const char*>(p);
  return c >= state->base && c < state->base + state->total_size;
}

bool Initialized() { return CurrentState() != nullptr; }

absl::Status HoldHeapLockForTest(int socket, absl::Duration hold,
                                 const std::function<void()>& on_held) {
  State* state = CurrentState();
  if (state == nullptr) return NotInitialized();
  if (socket < 0 || socket >= kMaxSockets || state->config->heaps[socket].size == 0) {
    return absl::InvalidArgumentError(absl::StrFormat("socket %d has no memory", socket));
  }
  HeapHeader* heap = &state->config->heaps[socket];
  RobustLock lock(&heap->lock, kHeapLockName,
                  [&] { memory_internal::HeapRebuildLocked(heap, state->base); });
  if (!lock.ok()) return lock.status();
  on_held();
  absl::SleepFor(hold);
  return absl::OkStatus();
}

absl::Status HoldNamesLockForTest(absl::Duration hold, const std::function<void()>& on_held) {
  State* state = CurrentState();
  if (state == nullptr) return NotInitialized();
  RobustLock lock(&state->config->names_lock, kNamesLockName);
  if (!lock.ok()) return lock.status();
  on_held();
  absl::SleepFor(hold);
  return absl::OkStatus();
}

}  // namespace keel::memory
