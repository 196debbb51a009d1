// keel ring: a fixed-size lock-free FIFO in shared memory, with DPDK's semantics.
//
// The ring is what processes of a group talk through. Create it in one process, Lookup
// it by name in another; the Ring* is valid in every process of the group. Producers
// and consumers can each be single-threaded, multi-threaded (compare-and-swap), RTS
// ("relaxed tail sync": tolerates preempted threads, e.g. overcommitted cores or VMs)
// or HTS ("head-tail sync": one operation at a time, which also allows peek and
// zero-copy).
//
//   absl::StatusOr<keel::ring::Ring*> r = keel::ring::Create("PRI_2_SEC", 1024,
//                                                           keel::memory::kSocketAny, 0);
//   void* msg = ...;
//   (*r)->Enqueue(msg);                                 // in the primary
//   keel::ring::Ring* same = *keel::ring::Lookup("PRI_2_SEC");   // in a secondary
//   void* got;
//   if (same->Dequeue(&got)) { ... }
//
// Fast-path calls (enqueue, dequeue, peek, counts) never allocate, never block except
// to wait for a concurrent operation of the same side to finish, and return counts.
//
// Two targets, one header (this one):
//   //ring:core  the Ring class and every fast path, MemorySize + Init (a ring in
//                memory the caller provides: a MAP_SHARED mapping before fork, a
//                hugepage of its own), TypedRing<T> over a Ring*, CheckElementSize.
//                Depends on //base and Abseil only: no EAL, no memory component.
//   //ring       adds Create / Lookup / Free (rings in the group's shared memory, by
//                name), TypedRing<T>::Create / Lookup, and registers the ring's layout
//                version with the EAL. Depends on //ring:core, //eal, //memory.
// A program linking only //ring:core that calls Create, Lookup or Free fails to link.
//
//   size_t bytes = *keel::ring::MemorySize(1024, keel::ring::kSingleProducer, 8);
//   void* mem = std::aligned_alloc(128, bytes);     // or any memory the caller shares
//   keel::ring::Ring* own = *keel::ring::Init(mem, "mine", 1024,
//                                             keel::ring::kSingleProducer);
#ifndef KEEL_RING_RING_H_
#define KEEL_RING_RING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/check.h"
#include "base/version.h"
#include "ring/internal/headtail.h"
#include "ring/internal/layout.h"

namespace keel::ring {

inline constexpr Version kVersion = {0, 1, 0};

// Creation flags (DPDK's RING_F_*). At most one producer mode and one consumer mode;
// the default is multi-producer / multi-consumer.
enum Flags : uint32_t {
  kSingleProducer = 1u << 0,  // RING_F_SP_ENQ
  kSingleConsumer = 1u << 1,  // RING_F_SC_DEQ
  kExactSize = 1u << 2,       // RING_F_EXACT_SZ: capacity is exactly count
  kProducerRts = 1u << 3,     // RING_F_MP_RTS_ENQ
  kConsumerRts = 1u << 4,     // RING_F_MC_RTS_DEQ
  kProducerHts = 1u << 5,     // RING_F_MP_HTS_ENQ
  kConsumerHts = 1u << 6,     // RING_F_MC_HTS_DEQ
};

inline constexpr uint32_t kMaxCount = ring_internal::kMaxCount;

// Regions of a zero-copy operation: n1 elements at ptr1, the rest at ptr2 (nullptr
// when everything is contiguous).
struct ZeroCopy {
  void* ptr1 = nullptr;
  unsigned n1 = 0;
  void* ptr2 = nullptr;
};

// The ring itself: this object is the shared-memory structure (standard layout, no
// pointers), so a Ring* means the same ring in every process of the group.
//
// Bulk calls move all n elements or none; burst calls move as many as they can. Both
// return the number moved and, when asked, write the free space (enqueue) or the
// entries left (dequeue) after the call, on success and failure alike. The generic
// calls follow the ring's modes. The Sp/Mp/Sc/Mc variants are DPDK's:
//   - MpEnqueue* / McDequeue* are multi-thread and multi-process safe on any ring,
//     whatever its flags (DPDK's rte_ring_mp_enqueue_* on a ring created with
//     RING_F_SP_ENQ): threads may call them concurrently with each other. On a side
//     created single-thread they must not overlap that side's single-thread calls
//     (generic, Sp/Sc, peek, zero copy), which assume no other thread moves the side,
//     as in DPDK. Single-thread and multi-thread sides keep the same words (the head
//     with its hint, internal/layout.h), so either algorithm runs on either side.
//   - SpEnqueue* / ScDequeue* are for one thread at a time on that side (any other
//     thread of the side must be quiescent), on any ring.
// On RTS and HTS sides all four run the side's own (multi-thread safe) algorithm.
class Ring {
 public:
  Ring() = delete;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // --- Pointer elements (rings of element size 8, the default) ---------------------
  KEEL_RING_ALWAYS_INLINE unsigned EnqueueBulk(void* const* objs, unsigned n,
                                               unsigned* free_space = nullptr) {
    return ring_internal::EnqueueAny<8>(r_, objs, n, ring_internal::Behavior::kFixed, free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned EnqueueBurst(void* const* objs, unsigned n,
                                                unsigned* free_space = nullptr) {
    return ring_internal::EnqueueAny<8>(r_, objs, n, ring_internal::Behavior::kVariable,
                                        free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned DequeueBulk(void** objs, unsigned n,
                                               unsigned* available = nullptr) {
    return ring_internal::DequeueAny<8>(r_, objs, n, ring_internal::Behavior::kFixed, available);
  }
  KEEL_RING_ALWAYS_INLINE unsigned DequeueBurst(void** objs, unsigned n,
                                                unsigned* available = nullptr) {
    return ring_internal::DequeueAny<8>(r_, objs, n, ring_internal::Behavior::kVariable, available);
  }
  // One element. False when the ring is full (DPDK: -ENOBUFS) / empty (-ENOENT).
  KEEL_RING_ALWAYS_INLINE bool Enqueue(void* obj, unsigned* free_space = nullptr) {
    return EnqueueBulk(&obj, 1, free_space) == 1;
  }
  KEEL_RING_ALWAYS_INLINE bool Dequeue(void** obj, unsigned* available = nullptr) {
    return DequeueBulk(obj, 1, available) == 1;
  }

  KEEL_RING_ALWAYS_INLINE unsigned SpEnqueueBulk(void* const* objs, unsigned n,
                                                 unsigned* free_space = nullptr) {
    return Explicit<true, ring_internal::Sync::kSingle>(objs, n, true, free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned MpEnqueueBulk(void* const* objs, unsigned n,
                                                 unsigned* free_space = nullptr) {
    return Explicit<true, ring_internal::Sync::kMulti>(objs, n, true, free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned SpEnqueueBurst(void* const* objs, unsigned n,
                                                  unsigned* free_space = nullptr) {
    return Explicit<true, ring_internal::Sync::kSingle>(objs, n, false, free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned MpEnqueueBurst(void* const* objs, unsigned n,
                                                  unsigned* free_space = nullptr) {
    return Explicit<true, ring_internal::Sync::kMulti>(objs, n, false, free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned ScDequeueBulk(void** objs, unsigned n,
                                                 unsigned* available = nullptr) {
    return Explicit<false, ring_internal::Sync::kSingle>(objs, n, true, available);
  }
  KEEL_RING_ALWAYS_INLINE unsigned McDequeueBulk(void** objs, unsigned n,
                                                 unsigned* available = nullptr) {
    return Explicit<false, ring_internal::Sync::kMulti>(objs, n, true, available);
  }
  KEEL_RING_ALWAYS_INLINE unsigned ScDequeueBurst(void** objs, unsigned n,
                                                  unsigned* available = nullptr) {
    return Explicit<false, ring_internal::Sync::kSingle>(objs, n, false, available);
  }
  KEEL_RING_ALWAYS_INLINE unsigned McDequeueBurst(void** objs, unsigned n,
                                                  unsigned* available = nullptr) {
    return Explicit<false, ring_internal::Sync::kMulti>(objs, n, false, available);
  }

  // --- Elements of the ring's element size (objs: n * ElementSize() bytes) ----------
  KEEL_RING_ALWAYS_INLINE unsigned EnqueueBulkElem(const void* objs, unsigned n,
                                                   unsigned* free_space = nullptr) {
    return ring_internal::EnqueueAny<0>(r_, objs, n, ring_internal::Behavior::kFixed, free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned EnqueueBurstElem(const void* objs, unsigned n,
                                                    unsigned* free_space = nullptr) {
    return ring_internal::EnqueueAny<0>(r_, objs, n, ring_internal::Behavior::kVariable,
                                        free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned DequeueBulkElem(void* objs, unsigned n,
                                                   unsigned* available = nullptr) {
    return ring_internal::DequeueAny<0>(r_, objs, n, ring_internal::Behavior::kFixed, available);
  }
  KEEL_RING_ALWAYS_INLINE unsigned DequeueBurstElem(void* objs, unsigned n,
                                                    unsigned* available = nullptr) {
    return ring_internal::DequeueAny<0>(r_, objs, n, ring_internal::Behavior::kVariable, available);
  }

  // --- Peek (single-thread or HTS side; returns 0 on other rings) -----------------
  // EnqueueStart reserves slots; EnqueueFinish writes n <= reserved elements and
  // publishes them. DequeueStart copies elements out without consuming them;
  // DequeueFinish consumes the first n <= started. Call Finish (with 0 to give
  // everything back) only after a Start that returned more than 0: on an HTS side a
  // Finish without its own Start would end another thread's operation. On rings that
  // cannot peek, Finish does nothing. Debug builds check (KEEL_DCHECK, abort with the
  // ring's name): a Finish of more than its Start returned, or without a Start; a
  // second Start on a single-thread side before the first is finished; a zero-copy
  // Start without a ZeroCopy. Every fast-path call checks, in debug builds, that its
  // buffer is not null (n > 0) and that pointer (void*) and TypedRing<T> calls match
  // the ring's element size (8, sizeof(T)).
  KEEL_RING_ALWAYS_INLINE unsigned EnqueueBulkStart(unsigned n, unsigned* free_space = nullptr) {
    return Start(true, n, ring_internal::Behavior::kFixed, nullptr, nullptr, free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned EnqueueBurstStart(unsigned n, unsigned* free_space = nullptr) {
    return Start(true, n, ring_internal::Behavior::kVariable, nullptr, nullptr, free_space);
  }
  KEEL_RING_ALWAYS_INLINE void EnqueueFinish(const void* objs, unsigned n) {
    if (!ring_internal::CanPeek(r_.prod)) return;  // Start returned 0
    ring_internal::CheckFinish(r_, r_.prod, n, "EnqueueFinish");
    KEEL_DCHECK(objs != nullptr || n == 0, "ring \"%s\": EnqueueFinish(%u) from a null buffer",
                r_.name, n);
    ring_internal::CopyToSlots<0>(
        r_, ring_internal::Pos(r_.prod.tail.load(std::memory_order_relaxed)), objs, n);
    ring_internal::FinishMove(r_.prod, n);
  }
  KEEL_RING_ALWAYS_INLINE unsigned DequeueBulkStart(void* objs, unsigned n,
                                                    unsigned* available = nullptr) {
    return Start(false, n, ring_internal::Behavior::kFixed, objs, nullptr, available);
  }
  KEEL_RING_ALWAYS_INLINE unsigned DequeueBurstStart(void* objs, unsigned n,
                                                     unsigned* available = nullptr) {
    return Start(false, n, ring_internal::Behavior::kVariable, objs, nullptr, available);
  }
  KEEL_RING_ALWAYS_INLINE void DequeueFinish(unsigned n) {
    ring_internal::CheckFinish(r_, r_.cons, n, "DequeueFinish");
    ring_internal::FinishMove(r_.cons, n);
  }

  // --- Zero copy (single-thread or HTS side): work in the slots directly -----------
  KEEL_RING_ALWAYS_INLINE unsigned EnqueueZcBulkStart(unsigned n, ZeroCopy* zc,
                                                      unsigned* free_space = nullptr) {
    KEEL_DCHECK(zc != nullptr, "ring \"%s\": EnqueueZcBulkStart without a ZeroCopy", r_.name);
    return Start(true, n, ring_internal::Behavior::kFixed, nullptr, zc, free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned EnqueueZcBurstStart(unsigned n, ZeroCopy* zc,
                                                       unsigned* free_space = nullptr) {
    KEEL_DCHECK(zc != nullptr, "ring \"%s\": EnqueueZcBurstStart without a ZeroCopy", r_.name);
    return Start(true, n, ring_internal::Behavior::kVariable, nullptr, zc, free_space);
  }
  KEEL_RING_ALWAYS_INLINE void EnqueueZcFinish(unsigned n) {
    ring_internal::CheckFinish(r_, r_.prod, n, "EnqueueZcFinish");
    ring_internal::FinishMove(r_.prod, n);
  }
  KEEL_RING_ALWAYS_INLINE unsigned DequeueZcBulkStart(unsigned n, ZeroCopy* zc,
                                                      unsigned* available = nullptr) {
    KEEL_DCHECK(zc != nullptr, "ring \"%s\": DequeueZcBulkStart without a ZeroCopy", r_.name);
    return Start(false, n, ring_internal::Behavior::kFixed, nullptr, zc, available);
  }
  KEEL_RING_ALWAYS_INLINE unsigned DequeueZcBurstStart(unsigned n, ZeroCopy* zc,
                                                       unsigned* available = nullptr) {
    KEEL_DCHECK(zc != nullptr, "ring \"%s\": DequeueZcBurstStart without a ZeroCopy", r_.name);
    return Start(false, n, ring_internal::Behavior::kVariable, nullptr, zc, available);
  }
  KEEL_RING_ALWAYS_INLINE void DequeueZcFinish(unsigned n) {
    ring_internal::CheckFinish(r_, r_.cons, n, "DequeueZcFinish");
    ring_internal::FinishMove(r_.cons, n);
  }

  // --- State (a snapshot; exact only when no operation runs) ------------------------
  unsigned Count() const;
  unsigned FreeCount() const { return r_.capacity - Count(); }
  bool Empty() const { return Count() == 0; }
  bool Full() const { return FreeCount() == 0; }
  unsigned Capacity() const { return r_.capacity; }
  unsigned Size() const { return r_.size; }
  unsigned ElementSize() const { return r_.elem_size; }
  uint32_t flags() const { return r_.flags; }
  absl::string_view name() const;
  // Empties the ring. Not thread-safe: no other operation may run.
  void Reset();
  // A human-readable description of the ring's state.
  std::string Dump() const;

 private:
  friend absl::StatusOr<Ring*> Init(void*, absl::string_view, uint32_t, uint32_t, uint32_t);
  template <typename T>
  friend class TypedRing;

  template <bool kProducer, ring_internal::Sync kSync, typename Objs>
  KEEL_RING_ALWAYS_INLINE unsigned Explicit(Objs objs, unsigned n, bool bulk, unsigned* out) {
    const auto behavior =
        bulk ? ring_internal::Behavior::kFixed : ring_internal::Behavior::kVariable;
    using ring_internal::Sync;
    ring_internal::CheckCall<8>(r_, objs, n,
                                kSync == Sync::kSingle ? (kProducer ? "SpEnqueue" : "ScDequeue")
                                                       : (kProducer ? "MpEnqueue" : "McDequeue"));
    // Single-thread and multi-thread sides keep the same words (layout.h: the head with
    // its hint, equal to the tail whenever no call runs), so Sp/Sc run the
    // single-thread algorithm and Mp/Mc the compare-and-swap one on either. RTS and HTS
    // sides keep their own words: they run their own algorithm.
    const uint32_t side = kProducer ? r_.prod.sync : r_.cons.sync;
    if (__builtin_expect(
            side == static_cast<uint32_t>(Sync::kRts) || side == static_cast<uint32_t>(Sync::kHts),
            0)) {
      if constexpr (kProducer) {
        return ring_internal::EnqueueAny<8>(r_, objs, n, behavior, out);
      } else {
        return ring_internal::DequeueAny<8>(r_, objs, n, behavior, out);
      }
    }
    if constexpr (kProducer) {
      return ring_internal::Enqueue<kSync, 8>(r_, objs, n, behavior, out);
    } else {
      return ring_internal::Dequeue<kSync, 8>(r_, objs, n, behavior, out);
    }
  }

  unsigned Start(bool producer, unsigned n, ring_internal::Behavior behavior, void* out,
                 ZeroCopy* zc, unsigned* entries);

  ring_internal::RingLayout r_;
};

static_assert(std::is_standard_layout_v<Ring>);

// Bytes a ring of `count` elements of `elem_size` bytes needs (for Init).
// InvalidArgument as Create.
absl::StatusOr<size_t> MemorySize(uint32_t count, uint32_t flags, uint32_t elem_size = 8);

// Builds a ring in `mem` (MemorySize bytes, 128-byte aligned) without the EAL: a ring
// shared by the caller's own means (e.g. a MAP_SHARED mapping before fork).
// InvalidArgument as Create, or for misaligned memory.
absl::StatusOr<Ring*> Init(void* mem, absl::string_view name, uint32_t count, uint32_t flags,
                           uint32_t elem_size = 8);

// --- //ring only (the group's shared memory; needs the EAL) -----------------------
// Creates a ring in the group's shared memory, registered under `name` so any process
// can Lookup it. Any process, secondaries included. count: a power of two up to 2^31-1
// (capacity count-1), or with kExactSize any count up to that (capacity count).
// elem_size: a multiple of 4. Errors: InvalidArgument (count, flags, element size, name;
// the message names the ring and the value), AlreadyExists (the name is taken),
// ResourceExhausted (no memory), FailedPrecondition (no EAL/memory).
absl::StatusOr<Ring*> Create(absl::string_view name, uint32_t count, int socket, uint32_t flags,
                             uint32_t elem_size = 8);
// NotFound for an unknown name; FailedPrecondition when the name is another kind of
// object or a ring of another layout version.
absl::StatusOr<Ring*> Lookup(absl::string_view name);
// Unregisters and frees a ring Create made, from any process. The caller ensures no
// process uses it any more. InvalidArgument for a ring Create did not make.
absl::Status Free(Ring* ring);

// A ring of T (trivially copyable, size a multiple of 4). Create and Lookup check the
// element size.
template <typename T>
class TypedRing {
  static_assert(std::is_trivially_copyable_v<T>, "ring elements are copied bytewise");
  static_assert(sizeof(T) % 4 == 0, "ring elements are a multiple of 4 bytes");

 public:
  static absl::StatusOr<TypedRing> Create(absl::string_view name, uint32_t count, int socket,
                                          uint32_t flags) {
    absl::StatusOr<Ring*> r = ring::Create(name, count, socket, flags, sizeof(T));
    if (!r.ok()) return r.status();
    return TypedRing(*r);
  }
  static absl::StatusOr<TypedRing> Lookup(absl::string_view name);
  explicit TypedRing(Ring* ring) : ring_(ring) {}

  KEEL_RING_ALWAYS_INLINE unsigned EnqueueBulk(const T* objs, unsigned n,
                                               unsigned* free_space = nullptr) {
    return ring_internal::EnqueueAny<sizeof(T)>(ring_->r_, objs, n, ring_internal::Behavior::kFixed,
                                                free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned EnqueueBurst(const T* objs, unsigned n,
                                                unsigned* free_space = nullptr) {
    return ring_internal::EnqueueAny<sizeof(T)>(ring_->r_, objs, n,
                                                ring_internal::Behavior::kVariable, free_space);
  }
  KEEL_RING_ALWAYS_INLINE unsigned DequeueBulk(T* objs, unsigned n, unsigned* available = nullptr) {
    return ring_internal::DequeueAny<sizeof(T)>(ring_->r_, objs, n, ring_internal::Behavior::kFixed,
                                                available);
  }
  KEEL_RING_ALWAYS_INLINE unsigned DequeueBurst(T* objs, unsigned n,
                                                unsigned* available = nullptr) {
    return ring_internal::DequeueAny<sizeof(T)>(ring_->r_, objs, n,
                                                ring_internal::Behavior::kVariable, available);
  }
  KEEL_RING_ALWAYS_INLINE bool Enqueue(const T& obj) { return EnqueueBulk(&obj, 1) == 1; }
  KEEL_RING_ALWAYS_INLINE bool Dequeue(T* obj) { return DequeueBulk(obj, 1) == 1; }
  Ring* ring() const { return ring_; }

 private:
  Ring* ring_;
};

// Checks a ring's element size against T (for TypedRing::Lookup).
absl::Status CheckElementSize(const Ring* ring, size_t size);

template <typename T>
absl::StatusOr<TypedRing<T>> TypedRing<T>::Lookup(absl::string_view name) {
  absl::StatusOr<Ring*> r = ring::Lookup(name);
  if (!r.ok()) return r.status();
  if (absl::Status s = CheckElementSize(*r, sizeof(T)); !s.ok()) return s;
  return TypedRing(*r);
}

}  // namespace keel::ring

#endif  // KEEL_RING_RING_H_
