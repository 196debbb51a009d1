// The ring's core: sizing, Init on caller memory, and the non-inline queries. No EAL,
// no memory component: //ring:core depends on //base and Abseil alone.
#include "ring/internal/core.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "base/names.h"
#include "base/units.h"
#include "ring/ring.h"

namespace keel::ring {
namespace {

using ring_internal::Pos;
using ring_internal::RingLayout;
using ring_internal::Sync;

constexpr size_t kMaxNameLength = ring_internal::kNameSize - 1;
constexpr uint32_t kAllFlags = kSingleProducer | kSingleConsumer | kExactSize | kProducerRts |
                               kConsumerRts | kProducerHts | kConsumerHts;

struct Geometry {
  uint32_t size;
  uint32_t capacity;
};

absl::Status Invalid(absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrFormat("ring \"%s\": %s", name, why));
}

int Bits(uint32_t v) { return __builtin_popcount(v); }

absl::StatusOr<Geometry> Validate(absl::string_view name, uint32_t count, uint32_t flags,
                                  uint32_t elem_size) {
  if (absl::Status s = CheckNameLength("ring", name, kMaxNameLength); !s.ok()) return s;
  if ((flags & ~kAllFlags) != 0) {
    return Invalid(name, absl::StrFormat("unknown flags 0x%x", flags & ~kAllFlags));
  }
  if (Bits(flags & (kSingleProducer | kProducerRts | kProducerHts)) > 1) {
    return Invalid(name, "choose at most one of kSingleProducer, kProducerRts, kProducerHts");
  }
  if (Bits(flags & (kSingleConsumer | kConsumerRts | kConsumerHts)) > 1) {
    return Invalid(name, "choose at most one of kSingleConsumer, kConsumerRts, kConsumerHts");
  }
  if (elem_size == 0 || elem_size % 4 != 0) {
    return Invalid(name,
                   absl::StrFormat("element size %d is not a positive multiple of 4", elem_size));
  }
  if (count == 0 || count > kMaxCount) {
    return Invalid(name, absl::StrFormat("count %d is not in 1..%d", count, kMaxCount));
  }
  Geometry g;
  if (flags & kExactSize) {
    // The next power of two above count: one slot always stays empty.
    g.size = 1;
    while (g.size <= count) g.size <<= 1;
    g.capacity = count;
  } else {
    if ((count & (count - 1)) != 0) {
      return Invalid(name,
                     absl::StrFormat("count %d is not a power of two (or pass kExactSize)", count));
    }
    if (count < 2) return Invalid(name, "count 1 leaves no usable slot (capacity is count-1)");
    g.size = count;
    g.capacity = count - 1;
  }
  if (static_cast<uint64_t>(g.size) * elem_size > (uint64_t{1} << 40)) {
    return Invalid(name, absl::StrFormat("%d slots of %d bytes is too large", g.size, elem_size));
  }
  return g;
}

uint32_t SideSync(uint32_t flags, uint32_t single, uint32_t rts, uint32_t hts) {
  if (flags & single) return static_cast<uint32_t>(Sync::kSingle);
  if (flags & rts) return static_cast<uint32_t>(Sync::kRts);
  if (flags & hts) return static_cast<uint32_t>(Sync::kHts);
  return static_cast<uint32_t>(Sync::kMulti);
}

const char* SyncName(uint32_t sync) {
  switch (static_cast<Sync>(sync)) {
    case Sync::kMulti:
      return "multi";
    case Sync::kSingle:
      return "single";
    case Sync::kRts:
      return "rts";
    case Sync::kHts:
      return "hts";
  }
  return "?";
}

}  // namespace

}  // namespace keel::ring

namespace keel::ring_internal {

absl::StatusOr<size_t> CheckedSize(absl::string_view name, uint32_t count, uint32_t flags,
                                   uint32_t elem_size) {
  absl::StatusOr<ring::Geometry> g = ring::Validate(name, count, flags, elem_size);
  if (!g.ok()) return g.status();
  return sizeof(RingLayout) + RoundUp(static_cast<uint64_t>(g->size) * elem_size, 128);
}

bool IsRing(const ring::Ring* ring) {
  return reinterpret_cast<const RingLayout*>(ring)->magic == kRingMagic;
}

}  // namespace keel::ring_internal

namespace keel::ring {

absl::StatusOr<size_t> MemorySize(uint32_t count, uint32_t flags, uint32_t elem_size) {
  return ring_internal::CheckedSize("(size query)", count, flags, elem_size);
}

absl::StatusOr<Ring*> Init(void* mem, absl::string_view name, uint32_t count, uint32_t flags,
                           uint32_t elem_size) {
  absl::StatusOr<Geometry> g = Validate(name, count, flags, elem_size);
  if (!g.ok()) return g.status();
  if (mem == nullptr || reinterpret_cast<uintptr_t>(mem) % alignof(RingLayout) != 0) {
    return Invalid(name,
                   absl::StrFormat("memory %p is not %d-byte aligned", mem, alignof(RingLayout)));
  }
  std::memset(mem, 0, sizeof(RingLayout));
  auto* r = static_cast<RingLayout*>(mem);
  r->layout_version = ring_internal::kLayoutVersion;
  r->flags = flags;
  r->size = g->size;
  r->mask = g->size - 1;
  r->capacity = g->capacity;
  r->elem_size = elem_size;
  CopyName(r->name, name);
  r->prod.sync = SideSync(flags, kSingleProducer, kProducerRts, kProducerHts);
  r->cons.sync = SideSync(flags, kSingleConsumer, kConsumerRts, kConsumerHts);
  r->prod.htd_max = r->cons.htd_max = std::max<uint32_t>(1, g->capacity / 8);
  r->magic = ring_internal::kRingMagic;
  return reinterpret_cast<Ring*>(mem);
}

absl::Status CheckElementSize(const Ring* ring, size_t size) {
  if (ring->ElementSize() == size) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrFormat("ring \"%s\" holds %d-byte elements, not %d-byte ones", ring->name(),
                      ring->ElementSize(), size));
}

unsigned Ring::Count() const {
  // Relaxed: a snapshot; each tail is only ever read as a number here.
  const uint32_t prod = Pos(r_.prod.tail.load(std::memory_order_relaxed));
  const uint32_t cons = Pos(r_.cons.tail.load(std::memory_order_relaxed));
  const uint32_t count = (prod - cons) & r_.mask;
  return count > r_.capacity ? r_.capacity : count;
}

absl::string_view Ring::name() const { return NameOf(r_.name); }

void Ring::Reset() {
  // Heads (with their hints, layout.h), tails, debug records: 0. Not thread-safe.
  for (ring_internal::HeadTail* side : {&r_.prod, &r_.cons}) {
    side->head.store(0, std::memory_order_relaxed);
    side->tail.store(0, std::memory_order_relaxed);
    side->started.store(0, std::memory_order_relaxed);
  }
}

std::string Ring::Dump() const {
  auto side = [](const ring_internal::HeadTail& s) {
    // Relaxed: a snapshot.
    const uint64_t head = s.head.load(std::memory_order_relaxed);
    const uint64_t tail = s.tail.load(std::memory_order_relaxed);
    uint32_t head_pos = Pos(head);
    // HTS keeps its head in the tail word.
    if (s.sync == static_cast<uint32_t>(Sync::kHts)) head_pos = ring_internal::Aux(tail);
    return absl::StrFormat("%s head=%u tail=%u", SyncName(s.sync), head_pos, Pos(tail));
  };
  return absl::StrFormat(
      "ring \"%s\" at %p: flags=0x%x size=%u capacity=%u elem_size=%u used=%u free=%u\n"
      "  producer: %s\n  consumer: %s\n",
      name(), static_cast<const void*>(this), r_.flags, r_.size, r_.capacity, r_.elem_size, Count(),
      FreeCount(), side(r_.prod), side(r_.cons));
}

unsigned Ring::Start(bool producer, unsigned n, ring_internal::Behavior behavior, void* out,
                     ZeroCopy* zc, unsigned* entries) {
  if (zc != nullptr) *zc = ZeroCopy{};
  if (!ring_internal::CanPeek(producer ? r_.prod : r_.cons)) {
    if (entries != nullptr) *entries = 0;
    return 0;
  }
  uint32_t head;
  const unsigned moved = producer
                             ? ring_internal::StartMove<true>(r_, n, behavior, &head, entries)
                             : ring_internal::StartMove<false>(r_, n, behavior, &head, entries);
  if (moved == 0) return 0;
  if (out != nullptr) ring_internal::CopyFromSlots<0>(r_, head, out, moved);
  if (zc != nullptr) {
    const uint32_t idx = head & r_.mask;
    zc->ptr1 = ring_internal::Slots(r_) + static_cast<size_t>(idx) * r_.elem_size;
    zc->n1 = idx + moved <= r_.size ? moved : r_.size - idx;
    zc->ptr2 = zc->n1 < moved ? ring_internal::Slots(r_) : nullptr;
  }
  return moved;
}

}  // namespace keel::ring
