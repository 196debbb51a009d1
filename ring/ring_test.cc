// Functional cases (DPDK's test_ring.c, in keel's words) for every mode and element
// sizes 4, 8, 16 and 20, on caller-provided memory: no EAL.
#include "ring/ring.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ring/ring_testing.h"

namespace keel::ring {
namespace {

using ::testing::HasSubstr;
using testing::LocalRing;

// Elements of `size` bytes whose every 4-byte word holds the element's number.
std::vector<uint32_t> Elements(uint32_t first, unsigned n, uint32_t size) {
  std::vector<uint32_t> words;
  for (unsigned i = 0; i < n; ++i) {
    for (uint32_t w = 0; w < size / 4; ++w) words.push_back(first + i);
  }
  return words;
}

TEST(RingValidation, RejectsBadArguments) {
  struct Case {
    uint32_t count, flags, elem_size;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {100, 0, 8, "ring \"r\": count 100 is not a power of two"},
           {0, 0, 8, "count 0 is not in 1..2147483647"},
           {0x80000000u, 0, 8, "count 2147483648 is not in 1..2147483647"},
           {1, 0, 8, "count 1 leaves no usable slot"},
           {16, 0, 6, "element size 6 is not a positive multiple of 4"},
           {16, 0, 0, "element size 0"},
           {16, kSingleProducer | kProducerRts, 8, "at most one of kSingleProducer"},
           {16, kProducerHts | kProducerRts, 8, "at most one of kSingleProducer"},
           {16, kConsumerHts | kSingleConsumer, 8, "at most one of kSingleConsumer"},
           {16, 1u << 12, 8, "unknown flags 0x1000"},
       }) {
    alignas(128) static char mem[1 << 12];
    absl::StatusOr<Ring*> r = Init(mem, "r", c.count, c.flags, c.elem_size);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
  }
  alignas(128) static char mem[1 << 12];
  EXPECT_THAT(std::string(Init(mem + 8, "r", 16, 0, 8).status().message()),
              HasSubstr("is not 128-byte aligned"));
  EXPECT_THAT(std::string(Init(mem, std::string(64, 'n'), 16, 0, 8).status().message()),
              HasSubstr("ring name \"" + std::string(64, 'n') +
                        "\" must be 1 to 63 characters (it has 64)"));
}

TEST(RingValidation, CapacityAndSize) {
  LocalRing pow2(16, 0, 8);
  EXPECT_EQ(pow2->Size(), 16u);
  EXPECT_EQ(pow2->Capacity(), 15u);
  LocalRing exact(10, kExactSize, 8);
  EXPECT_EQ(exact->Size(), 16u);
  EXPECT_EQ(exact->Capacity(), 10u);
  LocalRing exact_pow2(16, kExactSize, 8);
  EXPECT_EQ(exact_pow2->Size(), 32u);
  EXPECT_EQ(exact_pow2->Capacity(), 16u);
  EXPECT_TRUE(MemorySize(kMaxCount, kExactSize, 4).ok());
}

// (producer flags, consumer flags, element size)
using ModeParam = std::tuple<uint32_t, uint32_t, uint32_t>;

class RingModeTest : public ::testing::TestWithParam<ModeParam> {
 protected:
  uint32_t flags() const { return std::get<0>(GetParam()) | std::get<1>(GetParam()); }
  uint32_t esize() const { return std::get<2>(GetParam()); }
};

TEST_P(RingModeTest, FullEmptyAndTheReportedCounts) {
  LocalRing r(64, flags() | kExactSize, esize());  // capacity 64 exactly
  const uint32_t cap = r->Capacity();
  ASSERT_EQ(cap, 64u);
  std::vector<uint32_t> in = Elements(0, cap + 1, esize());
  unsigned free_space = 999;
  unsigned available = 999;

  EXPECT_TRUE(r->Empty());
  EXPECT_EQ(r->DequeueBulkElem(in.data(), 1, &available), 0u);  // empty
  EXPECT_EQ(available, 0u);

  EXPECT_EQ(r->EnqueueBulkElem(in.data(), 10, &free_space), 10u);
  EXPECT_EQ(free_space, cap - 10);
  EXPECT_EQ(r->Count(), 10u);
  // Bulk: all or nothing.
  EXPECT_EQ(r->EnqueueBulkElem(in.data(), cap, &free_space), 0u);
  EXPECT_EQ(free_space, cap - 10);  // written on failure too
  EXPECT_EQ(r->Count(), 10u);
  // Burst: as many as fit.
  EXPECT_EQ(r->EnqueueBurstElem(in.data() + 10 * esize() / 4, cap, &free_space), cap - 10);
  EXPECT_EQ(free_space, 0u);
  EXPECT_TRUE(r->Full());
  EXPECT_EQ(r->FreeCount(), 0u);
  EXPECT_EQ(r->EnqueueBurstElem(in.data(), 1, &free_space), 0u);

  std::vector<uint32_t> out(in.size());
  EXPECT_EQ(r->DequeueBulkElem(out.data(), cap + 1, &available), 0u);
  EXPECT_EQ(available, cap);
  EXPECT_EQ(r->DequeueBulkElem(out.data(), 5, &available), 5u);
  EXPECT_EQ(available, cap - 5);
  EXPECT_EQ(r->DequeueBurstElem(out.data() + 5 * esize() / 4, cap, &available), cap - 5);
  EXPECT_EQ(available, 0u);
  // FIFO: what came out is what went in, in order.
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + cap * esize() / 4, in.begin()));
  EXPECT_TRUE(r->Empty());
}

// The counts are exact after the other side has moved too, not a stale lower bound:
// the producer must see the slots the consumer freed, the consumer the elements the
// producer added since each last looked.
TEST_P(RingModeTest, ReportedCountsFollowTheOtherSide) {
  LocalRing r(16, flags(), esize());  // capacity 15
  std::vector<uint32_t> in = Elements(0, 15, esize());
  std::vector<uint32_t> out(in.size());
  unsigned free_space = 999;
  unsigned available = 999;
  ASSERT_EQ(r->EnqueueBulkElem(in.data(), 10, &free_space), 10u);
  EXPECT_EQ(free_space, 5u);
  ASSERT_EQ(r->DequeueBulkElem(out.data(), 10, &available), 10u);
  EXPECT_EQ(available, 0u);
  ASSERT_EQ(r->EnqueueBulkElem(in.data(), 1, &free_space), 1u);
  EXPECT_EQ(free_space, 14u) << "the consumer freed 10 slots";
  ASSERT_EQ(r->EnqueueBurstElem(in.data(), 3, &free_space), 3u);
  EXPECT_EQ(free_space, 11u);
  ASSERT_EQ(r->DequeueBulkElem(out.data(), 2, &available), 2u);
  EXPECT_EQ(available, 2u);
  ASSERT_EQ(r->EnqueueBulkElem(in.data(), 5, &free_space), 5u);
  EXPECT_EQ(free_space, 8u) << "the consumer freed 2 more slots";
  ASSERT_EQ(r->DequeueBurstElem(out.data(), 1, &available), 1u);
  EXPECT_EQ(available, 6u) << "the producer added 5 elements";
  EXPECT_EQ(r->Count(), 6u);
}

TEST_P(RingModeTest, WrapsAroundManyTimesInOrder) {
  LocalRing r(32, flags(), esize());
  uint32_t next_in = 0;
  uint32_t next_out = 0;
  for (int round = 0; round < 500; ++round) {
    const unsigned n = 1 + round % 23;
    std::vector<uint32_t> in = Elements(next_in, n, esize());
    const unsigned put = r->EnqueueBurstElem(in.data(), n);
    next_in += put;
    std::vector<uint32_t> out(32 * esize() / 4);
    const unsigned got = r->DequeueBurstElem(out.data(), 1 + (round * 7) % 19);
    for (unsigned i = 0; i < got * esize() / 4; ++i) {
      ASSERT_EQ(out[i], next_out + i / (esize() / 4)) << "round " << round;
    }
    next_out += got;
    ASSERT_EQ(r->Count(), next_in - next_out);
  }
}

TEST_P(RingModeTest, SingleElementCallsAndReset) {
  LocalRing r(4, flags(), esize());  // capacity 3
  // Pointer rings have single-element calls of their own; other sizes move one element
  // with the element calls.
  auto enqueue_one = [&](uint32_t value, unsigned* free_space = nullptr) {
    if (esize() == 8) {
      return r->Enqueue(reinterpret_cast<void*>(uintptr_t{value}), free_space);
    }
    return r->EnqueueBulkElem(Elements(value, 1, esize()).data(), 1, free_space) == 1;
  };
  auto dequeue_one = [&](uint32_t* value) {
    if (esize() == 8) {
      void* out = nullptr;
      if (!r->Dequeue(&out)) return false;
      *value = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(out));
      return true;
    }
    std::vector<uint32_t> out(esize() / 4);
    if (r->DequeueBulkElem(out.data(), 1) != 1) return false;
    *value = out[0];
    return true;
  };
  EXPECT_TRUE(enqueue_one(11));
  EXPECT_TRUE(enqueue_one(12));
  unsigned free_space = 9;
  EXPECT_TRUE(enqueue_one(13, &free_space));
  EXPECT_EQ(free_space, 0u);
  EXPECT_FALSE(enqueue_one(14));  // DPDK's -ENOBUFS
  uint32_t out = 0;
  EXPECT_TRUE(dequeue_one(&out));
  EXPECT_EQ(out, 11u);
  r->Reset();
  EXPECT_TRUE(r->Empty());
  EXPECT_FALSE(dequeue_one(&out));  // DPDK's -ENOENT
  EXPECT_THAT(r->Dump(), HasSubstr("ring \"test\""));
}

std::string ModeName(const ::testing::TestParamInfo<ModeParam>& info) {
  auto side = [](uint32_t f) -> std::string {
    if (f & (kSingleProducer | kSingleConsumer)) return "S";
    if (f & (kProducerRts | kConsumerRts)) return "Rts";
    if (f & (kProducerHts | kConsumerHts)) return "Hts";
    return "M";
  };
  return absl::StrCat(side(std::get<0>(info.param)), "p", side(std::get<1>(info.param)), "c",
                      std::get<2>(info.param));
}

INSTANTIATE_TEST_SUITE_P(
    AllModes, RingModeTest,
    ::testing::Combine(::testing::Values(0u, kSingleProducer, kProducerRts, kProducerHts),
                       ::testing::Values(0u, kSingleConsumer, kConsumerRts, kConsumerHts),
                       ::testing::Values(4u, 8u, 16u, 20u)),
    ModeName);

TEST(RingExplicit, SpMpScMcVariants) {
  LocalRing r(8, 0, 8);
  int values[8];
  void* objs[8];
  for (int i = 0; i < 8; ++i) objs[i] = &values[i];
  void* out[8];
  EXPECT_EQ(r->SpEnqueueBulk(objs, 2), 2u);   // o0 o1
  EXPECT_EQ(r->MpEnqueueBurst(objs, 8), 5u);  // o0 o1 o0 o1 o2 o3 o4 (capacity 7)
  EXPECT_EQ(r->MpEnqueueBulk(objs, 1), 0u);
  EXPECT_EQ(r->ScDequeueBulk(out, 3), 3u);   // o0 o1 o0
  EXPECT_EQ(r->McDequeueBurst(out, 8), 4u);  // o1 o2 o3 o4
  EXPECT_EQ(out[0], objs[1]);
  EXPECT_EQ(out[3], objs[4]);
  EXPECT_EQ(r->McDequeueBulk(out, 1), 0u);
  EXPECT_EQ(r->ScDequeueBurst(out, 1), 0u);
  EXPECT_EQ(r->SpEnqueueBurst(objs, 1), 1u);
}

// An explicit single-thread call on a multi-thread side, after multi-thread traffic, must
// see the real free space: the head and hint it reads are the multi-thread calls'.
TEST(RingExplicit, SpAfterMpTrafficSeesTheRealFreeSpace) {
  LocalRing r(8, 0, 8);  // capacity 7
  void* objs[8] = {};
  void* out[8];
  ASSERT_EQ(r->MpEnqueueBulk(objs, 7), 7u);
  ASSERT_EQ(r->McDequeueBulk(out, 7), 7u);
  ASSERT_EQ(r->MpEnqueueBulk(objs, 3), 3u);
  unsigned free_space = 99;
  EXPECT_EQ(r->SpEnqueueBulk(objs, 7), 0u);  // only 4 free
  EXPECT_EQ(r->SpEnqueueBulk(objs, 4, &free_space), 4u);
  EXPECT_EQ(free_space, 0u);
  EXPECT_EQ(r->Count(), 7u);
  EXPECT_EQ(r->MpEnqueueBulk(objs, 1), 0u);
  EXPECT_EQ(r->ScDequeueBurst(out, 8), 7u);
  EXPECT_TRUE(r->Empty());
}

// Mp/Mc calls on a single-thread side (DPDK code ported as it is) and the side's own
// calls after them: the head and its hint (the cached bound of the other side's tail)
// must cover what the Mp calls moved, or the next single-thread enqueue would overwrite
// unread slots.
TEST(RingExplicit, MpMcOnSingleSidesThenTheSidesOwnCalls) {
  LocalRing r(8, kSingleProducer | kSingleConsumer, 8);  // capacity 7
  void* objs[8];
  for (uintptr_t i = 0; i < 8; ++i) objs[i] = reinterpret_cast<void*>(i + 1);
  void* out[8];
  ASSERT_EQ(r->EnqueueBulk(objs, 7), 7u);
  ASSERT_EQ(r->DequeueBulk(out, 7), 7u);
  unsigned free_space = 99;
  ASSERT_EQ(r->MpEnqueueBulk(objs, 7, &free_space), 7u);
  EXPECT_EQ(free_space, 0u);
  EXPECT_EQ(r->EnqueueBulk(objs, 1), 0u) << "the ring is full";
  EXPECT_EQ(r->SpEnqueueBurst(objs, 1), 0u) << "the ring is full";
  unsigned available = 99;
  ASSERT_EQ(r->McDequeueBurst(out, 8, &available), 7u);
  EXPECT_EQ(available, 0u);
  EXPECT_EQ(out[6], objs[6]);
  EXPECT_EQ(r->DequeueBurst(out, 1), 0u) << "the ring is empty";
  EXPECT_EQ(r->McDequeueBurst(out, 1), 0u);
  ASSERT_EQ(r->EnqueueBulk(objs, 3), 3u);
  ASSERT_EQ(r->MpEnqueueBurst(objs + 3, 8), 4u);
  ASSERT_EQ(r->McDequeueBulk(out, 2), 2u);
  ASSERT_EQ(r->DequeueBulk(out + 2, 5), 5u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(out[i], objs[i]);
  EXPECT_TRUE(r->Empty());
  EXPECT_THAT(r->Dump(), HasSubstr("single head=21 tail=21"));
}

// RTS and HTS sides keep their own words: explicit calls run the side's own algorithm,
// and a Finish without a Start changes nothing on rings that cannot peek.
TEST(RingExplicit, RtsAndHtsSidesRunTheirOwnAlgorithm) {
  for (uint32_t flags : {kProducerRts | kConsumerRts, kProducerHts | kConsumerHts}) {
    LocalRing r(16, flags, 8);
    void* objs[4] = {&objs[0], &objs[1], &objs[2], &objs[3]};
    void* out[4];
    EXPECT_EQ(r->SpEnqueueBulk(objs, 2), 2u);
    EXPECT_EQ(r->MpEnqueueBulk(objs + 2, 2), 2u);
    EXPECT_EQ(r->ScDequeueBulk(out, 1), 1u);
    EXPECT_EQ(r->McDequeueBulk(out + 1, 3), 3u);
    EXPECT_EQ(out[3], objs[3]);
    if (flags & kProducerRts) {
      r->EnqueueFinish(objs, 0);
      r->DequeueFinish(0);
    }
    EXPECT_EQ(r->EnqueueBulk(objs, 4), 4u);  // the side still moves
    EXPECT_EQ(r->DequeueBulk(out, 4), 4u);
    EXPECT_TRUE(r->Empty());
  }
}

// White-box: each side keeps the other side's tail as last read in its own head word
// (the hint, H0-H2 in internal/headtail.h) and reads the other side's line only when the
// hint does not cover a call or the caller asks for the count; single-thread and
// multi-thread sides alike.
class RingHintTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RingHintTest, EachSideKeepsTheOtherSidesTailInItsHeadWord) {
  LocalRing r(16, GetParam(), 8);  // capacity 15
  const auto* layout = reinterpret_cast<const ring_internal::RingLayout*>(r.get());
  auto hint = [](const ring_internal::HeadTail& side) {
    return ring_internal::Aux(side.head.load());
  };
  auto head = [](const ring_internal::HeadTail& side) {
    return ring_internal::Pos(side.head.load());
  };
  uintptr_t next_in = 1;
  uintptr_t next_out = 1;
  auto put = [&](unsigned n) {
    void* objs[16];
    for (unsigned i = 0; i < n; ++i) objs[i] = reinterpret_cast<void*>(next_in++);
    ASSERT_EQ(r->EnqueueBulk(objs, n), n);
  };
  auto take = [&](unsigned n, unsigned* available = nullptr) {
    void* out[16];
    ASSERT_EQ(r->DequeueBulk(out, n, available), n);
    for (unsigned i = 0; i < n; ++i) EXPECT_EQ(out[i], reinterpret_cast<void*>(next_out++));
  };
  put(10);  // reads the consumer's tail (0): hint 0 + 15
  EXPECT_EQ(hint(layout->prod), 15u);
  EXPECT_EQ(head(layout->prod), 10u);
  take(1);  // reads the producer's tail (10)
  EXPECT_EQ(hint(layout->cons), 10u);
  put(5);  // covered by the hint: 15 - 10 = 5
  EXPECT_EQ(hint(layout->prod), 15u);
  take(9);  // covered by the hint: 10 - 1 = 9, the 5 new ones not seen yet
  EXPECT_EQ(hint(layout->cons), 10u);
  EXPECT_EQ(head(layout->cons), 10u);
  unsigned available = 99;
  take(5, &available);  // a count is asked for: the real tail
  EXPECT_EQ(available, 0u);
  EXPECT_EQ(hint(layout->cons), 15u);
  put(1);  // not covered (15 - 15 = 0): reads the consumer's tail (15), hint 30
  EXPECT_EQ(hint(layout->prod), 30u);
  take(1);
  EXPECT_TRUE(r->Empty());
  r->Reset();
  EXPECT_EQ(layout->prod.head.load(), 0u);
  put(15);  // hint 0 after Reset: read again
  EXPECT_EQ(hint(layout->prod), 15u);
  EXPECT_EQ(r->EnqueueBurst(nullptr, 0), 0u);
  take(15);
}

INSTANTIATE_TEST_SUITE_P(SingleAndMulti, RingHintTest,
                         ::testing::Values(kSingleProducer | kSingleConsumer, 0u),
                         [](const ::testing::TestParamInfo<uint32_t>& info) {
                           return std::string(info.param != 0 ? "Single" : "Multi");
                         });

class RingPeekTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RingPeekTest, PeekStartFinish) {
  LocalRing r(16, GetParam(), 8);  // capacity 15
  std::vector<uint64_t> in = {1, 2, 3, 4, 5, 6};
  unsigned free_space = 0;
  ASSERT_EQ(r->EnqueueBulkStart(6, &free_space), 6u);
  EXPECT_EQ(free_space, 9u);
  EXPECT_EQ(r->Count(), 0u);       // reserved, not published
  r->EnqueueFinish(in.data(), 4);  // publish 4, give 2 back
  EXPECT_EQ(r->Count(), 4u);

  uint64_t out[8] = {};
  unsigned available = 0;
  ASSERT_EQ(r->DequeueBulkStart(out, 3, &available), 3u);
  EXPECT_EQ(available, 1u);
  EXPECT_EQ(out[0], 1u);
  EXPECT_EQ(out[2], 3u);
  r->DequeueFinish(1);  // consume only the first
  EXPECT_EQ(r->Count(), 3u);
  ASSERT_EQ(r->DequeueBurstStart(out, 8), 3u);
  EXPECT_EQ(out[0], 2u);
  r->DequeueFinish(3);
  EXPECT_TRUE(r->Empty());
}

TEST_P(RingPeekTest, ZeroCopyAcrossTheWrap) {
  LocalRing r(8, GetParam(), 8);  // capacity 7
  uint64_t scratch[8];
  // Move the positions to 6 so 4 slots wrap: 2 at the end, 2 at the start.
  ASSERT_EQ(r->EnqueueBulkElem(scratch, 6), 6u);
  ASSERT_EQ(r->DequeueBulkElem(scratch, 6), 6u);
  ZeroCopy zc;
  ASSERT_EQ(r->EnqueueZcBulkStart(4, &zc), 4u);
  EXPECT_EQ(zc.n1, 2u);
  ASSERT_NE(zc.ptr2, nullptr);
  static_cast<uint64_t*>(zc.ptr1)[0] = 10;
  static_cast<uint64_t*>(zc.ptr1)[1] = 11;
  static_cast<uint64_t*>(zc.ptr2)[0] = 12;
  static_cast<uint64_t*>(zc.ptr2)[1] = 13;
  r->EnqueueZcFinish(4);
  ASSERT_EQ(r->DequeueZcBurstStart(8, &zc), 4u);
  EXPECT_EQ(static_cast<uint64_t*>(zc.ptr1)[0], 10u);
  EXPECT_EQ(static_cast<uint64_t*>(zc.ptr2)[1], 13u);
  r->DequeueZcFinish(4);
  EXPECT_TRUE(r->Empty());
}

TEST_P(RingPeekTest, PeekCountsFollowTheOtherSide) {
  LocalRing r(16, GetParam(), 8);  // capacity 15
  uint64_t scratch[15] = {};
  ASSERT_EQ(r->EnqueueBulkElem(scratch, 10), 10u);
  ASSERT_EQ(r->DequeueBulkElem(scratch, 8), 8u);
  unsigned free_space = 0;
  ASSERT_EQ(r->EnqueueBulkStart(1, &free_space), 1u);
  EXPECT_EQ(free_space, 12u) << "2 used, 1 reserved";
  r->EnqueueFinish(scratch, 1);
  ASSERT_EQ(r->EnqueueBulkElem(scratch, 4), 4u);
  unsigned available = 0;
  ASSERT_EQ(r->DequeueBulkStart(scratch, 1, &available), 1u);
  EXPECT_EQ(available, 6u) << "7 used, 1 peeked";
  r->DequeueFinish(1);
  ZeroCopy zc;
  ASSERT_EQ(r->DequeueZcBurstStart(2, &zc, &available), 2u);
  EXPECT_EQ(available, 4u);
  r->DequeueZcFinish(2);
  ASSERT_EQ(r->EnqueueZcBulkStart(1, &zc, &free_space), 1u);
  EXPECT_EQ(free_space, 10u) << "4 used, 1 reserved";
  r->EnqueueZcFinish(1);
}

INSTANTIATE_TEST_SUITE_P(SingleAndHts, RingPeekTest,
                         ::testing::Values(kSingleProducer | kSingleConsumer,
                                           kProducerHts | kConsumerHts));

TEST(RingPeek, RefusedOnMultiAndRtsRings) {
  for (uint32_t flags : {0u, kProducerRts | kConsumerRts}) {
    LocalRing r(16, flags, 8);
    unsigned free_space = 7;
    EXPECT_EQ(r->EnqueueBulkStart(1, &free_space), 0u);
    EXPECT_EQ(free_space, 0u);
    ZeroCopy zc;
    EXPECT_EQ(r->DequeueZcBulkStart(1, &zc), 0u);
    EXPECT_EQ(zc.ptr1, nullptr);
  }
}

struct Pair {
  uint32_t a;
  uint32_t b;
  uint64_t c;
};

TEST(TypedRing, CopiesWholeElements) {
  LocalRing r(8, 0, sizeof(Pair));
  TypedRing<Pair> typed(r.get());
  EXPECT_TRUE(typed.Enqueue({1, 2, 3}));
  Pair in[2] = {{4, 5, 6}, {7, 8, 9}};
  EXPECT_EQ(typed.EnqueueBulk(in, 2), 2u);
  Pair out[3];
  EXPECT_EQ(typed.DequeueBurst(out, 3), 3u);
  EXPECT_EQ(out[0].c, 3u);
  EXPECT_EQ(out[2].a, 7u);
  EXPECT_TRUE(CheckElementSize(r.get(), sizeof(Pair)).ok());
  EXPECT_THAT(std::string(CheckElementSize(r.get(), 8).message()),
              HasSubstr("holds 16-byte elements, not 8-byte ones"));
}

// --- Fast-path contracts: debug builds abort with the ring's name (KEEL_DCHECK) ---------
#ifndef NDEBUG
class RingContractDeathTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RingContractDeathTest, FinishMoreThanStarted) {
  LocalRing r(16, GetParam(), 8);
  uint64_t in[8] = {};
  uint64_t out[8];
  ASSERT_EQ(r->EnqueueBulkStart(2), 2u);
  EXPECT_DEATH(r->EnqueueFinish(in, 3),
               "ring \"test\": EnqueueFinish\\(3\\) with 2 slots started: a Finish needs its own "
               "Start and finishes at most");
  r->EnqueueFinish(in, 2);
  ASSERT_EQ(r->DequeueBulkStart(out, 1), 1u);
  EXPECT_DEATH(r->DequeueFinish(2), "DequeueFinish\\(2\\) with 1 slots started");
  r->DequeueFinish(1);
  ZeroCopy zc;
  ASSERT_EQ(r->EnqueueZcBurstStart(4, &zc), 4u);
  EXPECT_DEATH(r->EnqueueZcFinish(5), "EnqueueZcFinish\\(5\\) with 4 slots started");
  r->EnqueueZcFinish(4);
  ASSERT_EQ(r->DequeueZcBulkStart(3, &zc), 3u);
  EXPECT_DEATH(r->DequeueZcFinish(4), "DequeueZcFinish\\(4\\) with 3 slots started");
  r->DequeueZcFinish(3);
  EXPECT_EQ(r->Count(), 2u);
}

TEST_P(RingContractDeathTest, FinishWithoutStart) {
  LocalRing r(16, GetParam(), 8);
  uint64_t in[8] = {};
  EXPECT_DEATH(r->EnqueueFinish(in, 1), "EnqueueFinish\\(1\\) with 0 slots started");
  EXPECT_DEATH(r->DequeueFinish(1), "DequeueFinish\\(1\\) with 0 slots started");
  EXPECT_DEATH(r->EnqueueZcFinish(1), "EnqueueZcFinish\\(1\\) with 0 slots started");
  // After a finished Start there is none open either.
  ASSERT_EQ(r->EnqueueBulkStart(2), 2u);
  r->EnqueueFinish(in, 2);
  EXPECT_DEATH(r->EnqueueFinish(in, 1), "EnqueueFinish\\(1\\) with 0 slots started");
  r->EnqueueFinish(in, 0);  // giving back nothing is harmless
  EXPECT_EQ(r->Count(), 2u);
}

TEST_P(RingContractDeathTest, ZeroCopyStartWithoutZeroCopy) {
  LocalRing r(16, GetParam(), 8);
  EXPECT_DEATH(r->EnqueueZcBulkStart(1, nullptr),
               "ring \"test\": EnqueueZcBulkStart without a ZeroCopy");
  EXPECT_DEATH(r->DequeueZcBurstStart(1, nullptr), "DequeueZcBurstStart without a ZeroCopy");
}

INSTANTIATE_TEST_SUITE_P(SingleAndHts, RingContractDeathTest,
                         ::testing::Values(kSingleProducer | kSingleConsumer,
                                           kProducerHts | kConsumerHts),
                         [](const ::testing::TestParamInfo<uint32_t>& info) {
                           return std::string(info.param & kSingleProducer ? "Single" : "Hts");
                         });

TEST(RingContractDeathTest, SecondStartOnASingleThreadSide) {
  LocalRing r(16, kSingleProducer | kSingleConsumer, 8);
  uint64_t out[4];
  ASSERT_EQ(r->EnqueueBulkStart(2), 2u);
  EXPECT_DEATH(r->EnqueueBurstStart(1),
               "ring \"test\": an enqueue Start while the previous Start is not finished");
  uint64_t in[2] = {1, 2};
  r->EnqueueFinish(in, 2);
  ASSERT_EQ(r->DequeueBulkStart(out, 1), 1u);
  EXPECT_DEATH(r->DequeueBulkStart(out, 1), "a dequeue Start while the previous Start");
  r->DequeueFinish(0);
}

TEST(RingContractDeathTest, ElementSizeOfTheCall) {
  LocalRing r16(8, 0, 16);
  void* objs[2] = {};
  EXPECT_DEATH(r16->EnqueueBulk(objs, 1),
               "ring \"test\": enqueue of 8-byte elements on a ring of 16-byte elements");
  EXPECT_DEATH(r16->DequeueBurst(objs, 1), "dequeue of 8-byte elements on a ring of 16-byte");
  EXPECT_DEATH(r16->MpEnqueueBulk(objs, 1), "MpEnqueue of 8-byte elements on a ring of 16-byte");
  EXPECT_DEATH(r16->ScDequeueBurst(objs, 1), "ScDequeue of 8-byte elements on a ring of 16-byte");
  LocalRing r4(8, kSingleProducer, 4);
  EXPECT_DEATH(r4->MpEnqueueBurst(objs, 1), "MpEnqueue of 8-byte elements on a ring of 4-byte");
  TypedRing<Pair> typed(r4.get());
  Pair pair = {1, 2, 3};
  EXPECT_DEATH(typed.Enqueue(pair), "enqueue of 16-byte elements on a ring of 4-byte elements");
  EXPECT_DEATH(typed.Dequeue(&pair), "dequeue of 16-byte elements on a ring of 4-byte elements");
  EXPECT_TRUE(r16->Empty());
  EXPECT_TRUE(r4->Empty());
}

TEST(RingContractDeathTest, NullBuffer) {
  LocalRing r(8, 0, 8);
  EXPECT_DEATH(r->EnqueueBurst(nullptr, 2), "ring \"test\": enqueue of 2 elements from a null");
  EXPECT_DEATH(r->DequeueBulkElem(nullptr, 1), "dequeue of 1 elements from a null buffer");
  EXPECT_EQ(r->EnqueueBurst(nullptr, 0), 0u);  // nothing to move: no buffer needed
}
#else
TEST(RingContractDeathTest, CompiledOut) {
  GTEST_SKIP() << "KEEL_DCHECK is compiled out in optimized builds (NDEBUG)";
}
#endif  // NDEBUG

}  // namespace
}  // namespace keel::ring
