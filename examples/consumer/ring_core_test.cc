#include <cstdint>
#include <cstdlib>
#include <memory>

#include "gtest/gtest.h"
#include "ring/ring.h"

namespace {

TEST(RingCoreTest, ARingOnOurOwnMemoryKeepsOrder) {
  const uint32_t flags = keel::ring::kSingleProducer | keel::ring::kSingleConsumer;
  absl::StatusOr<size_t> bytes = keel::ring::MemorySize(64, flags);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  std::unique_ptr<void, decltype(&std::free)> mem(std::aligned_alloc(128, *bytes), &std::free);
  absl::StatusOr<keel::ring::Ring*> ring = keel::ring::Init(mem.get(), "own", 64, flags);
  ASSERT_TRUE(ring.ok()) << ring.status();
  for (uintptr_t i = 1; i <= 63; ++i) EXPECT_TRUE((*ring)->Enqueue(reinterpret_cast<void*>(i)));
  EXPECT_FALSE((*ring)->Enqueue(nullptr)) << "capacity is count - 1";
  for (uintptr_t i = 1; i <= 63; ++i) {
    void* got = nullptr;
    ASSERT_TRUE((*ring)->Dequeue(&got));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got), i);
  }
}

TEST(RingCoreTest, TheVersionIsVisibleToDependants) {
  static_assert(keel::ring::kVersion.major == 0, "keel's ring is pre-1.0");
  EXPECT_EQ(keel::ToString(keel::ring::kVersion), "0.1.0");
}

}  // namespace
