#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "base/version.h"
#include "gtest/gtest.h"
#include "ring/ring.h"

namespace {

TEST(RingCoreTest, ARingOnOurOwnMemoryKeepsOrder) {
  const uint32_t flags = keel::ring::kSingleProducer | keel::ring::kSingleConsumer;
  absl::StatusOr<size_t> bytes = keel::ring::MemorySize(64, flags);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const size_t rounded = (*bytes + 127) / 128 * 128;  // aligned_alloc wants a multiple
  std::unique_ptr<void, decltype(&std::free)> mem(std::aligned_alloc(128, rounded), &std::free);
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

// A dependant can read the component's version at compile time and print it.
TEST(RingCoreTest, TheVersionIsVisibleToDependants) {
  constexpr keel::Version v = keel::ring::kVersion;
  static_assert(v.major >= 0 && v.minor >= 0 && v.patch >= 0);
  EXPECT_EQ(keel::ToString(v), std::to_string(v.major) + "." + std::to_string(v.minor) + "." +
                                   std::to_string(v.patch));
}

}  // namespace
