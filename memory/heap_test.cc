// The shared heap's allocator on a local buffer (no EAL, no processes).
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "memory/internal/heap.h"

namespace keel::memory_internal {
namespace {

class HeapTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kStart = 4096;
  static constexpr uint64_t kSize = 1 << 20;

  void SetUp() override {
    buffer_ = static_cast<char*>(std::aligned_alloc(4096, kStart + kSize));
    ASSERT_TRUE(HeapInit(&heap_, buffer_, kStart, kSize, 0).ok());
  }
  void TearDown() override { std::free(buffer_); }

  void* Alloc(uint64_t size, uint64_t align = 64) {
    void* p = HeapAllocLocked(&heap_, buffer_, size, align);
    EXPECT_TRUE(HeapCheckLocked(&heap_, buffer_));
    return p;
  }
  bool Free(void* p) {
    const bool ok = HeapFreeLocked(&heap_, buffer_, p);
    EXPECT_TRUE(HeapCheckLocked(&heap_, buffer_));
    return ok;
  }

  HeapHeader heap_;
  char* buffer_ = nullptr;
};

TEST_F(HeapTest, StartsAsOneFreeBlock) {
  EXPECT_TRUE(HeapCheckLocked(&heap_, buffer_));
  EXPECT_EQ(heap_.free_bytes, kSize);
  EXPECT_EQ(HeapLargestFreeLocked(&heap_, buffer_), kSize - kBlockHeaderSize);
}

TEST_F(HeapTest, AllocationsAreDisjointAlignedAndWritable) {
  std::vector<std::pair<char*, uint64_t>> blocks;
  for (uint64_t size : {1, 63, 64, 65, 1000, 4096, 12345}) {
    char* p = static_cast<char*>(Alloc(size));
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    std::memset(p, 0xab, size);
    for (const auto& [q, qsize] : blocks) {
      EXPECT_TRUE(p + size <= q || q + qsize <= p) << "overlap";
    }
    blocks.emplace_back(p, size);
  }
  EXPECT_EQ(heap_.busy_blocks, blocks.size());
}

TEST_F(HeapTest, HonoursLargeAlignments) {
  for (uint64_t align : {128, 256, 4096, 65536}) {
    void* p = Alloc(100, align);
    ASSERT_NE(p, nullptr) << align;
    EXPECT_EQ((static_cast<char*>(p) - buffer_) % align, 0) << align;
  }
}

TEST_F(HeapTest, FreeingEverythingCoalescesBackToOneBlock) {
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) blocks.push_back(Alloc(1000 + i * 37, i % 3 ? 64 : 512));
  // Free in an interleaved order to exercise merges on both sides.
  for (size_t i = 0; i < blocks.size(); i += 2) ASSERT_TRUE(Free(blocks[i]));
  for (size_t i = 1; i < blocks.size(); i += 2) ASSERT_TRUE(Free(blocks[i]));
  EXPECT_EQ(heap_.free_bytes, kSize);
  EXPECT_EQ(heap_.busy_blocks, 0u);
  EXPECT_EQ(HeapLargestFreeLocked(&heap_, buffer_), kSize - kBlockHeaderSize);
}

TEST_F(HeapTest, RefusesDoubleFreeAndForeignPointers) {
  void* a = Alloc(100);
  void* b = Alloc(100);
  ASSERT_TRUE(Free(a));
  EXPECT_FALSE(Free(a));
  EXPECT_FALSE(Free(static_cast<char*>(b) + 64));  // inside a block
  int local = 0;
  EXPECT_FALSE(Free(&local));
  ASSERT_TRUE(Free(b));
  EXPECT_FALSE(Free(b));  // merged into its neighbour: no longer a block start
}

TEST_F(HeapTest, ExhaustionReturnsNullAndLosesNothing) {
  EXPECT_EQ(Alloc(kSize), nullptr);
  void* big = Alloc(kSize - kBlockHeaderSize);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(Alloc(1), nullptr);
  EXPECT_EQ(heap_.free_bytes, 0u);
  ASSERT_TRUE(Free(big));
  EXPECT_EQ(heap_.free_bytes, kSize);
}

TEST_F(HeapTest, RandomWorkloadKeepsEveryInvariant) {
  std::mt19937_64 rng(42);
  std::map<char*, std::pair<uint64_t, uint8_t>> live;  // ptr -> (size, fill byte)
  for (int step = 0; step < 20000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      const uint64_t size = 1 + rng() % 5000;
      const uint64_t align = uint64_t{64} << (rng() % 5);
      char* p = static_cast<char*>(HeapAllocLocked(&heap_, buffer_, size, align));
      if (p == nullptr) continue;
      ASSERT_EQ((p - buffer_) % align, 0);
      const uint8_t fill = static_cast<uint8_t>(rng());
      std::memset(p, fill, size);
      live[p] = {size, fill};
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      // The block still holds what its owner wrote: nobody else touched it.
      for (uint64_t i = 0; i < it->second.first; ++i) {
        ASSERT_EQ(static_cast<uint8_t>(it->first[i]), it->second.second);
      }
      ASSERT_TRUE(HeapFreeLocked(&heap_, buffer_, it->first));
      live.erase(it);
    }
    if (step % 1000 == 0) {
      ASSERT_TRUE(HeapCheckLocked(&heap_, buffer_)) << step;
    }
  }
  for (const auto& [p, info] : live) ASSERT_TRUE(HeapFreeLocked(&heap_, buffer_, p));
  EXPECT_TRUE(HeapCheckLocked(&heap_, buffer_));
  EXPECT_EQ(heap_.free_bytes, kSize);
}

TEST_F(HeapTest, RebuildRepairsWhatADeadHolderLeft) {
  void* a = Alloc(1000);
  void* b = Alloc(1000);
  void* c = Alloc(1000);
  ASSERT_TRUE(Free(b));
  // A holder died mid-Free(a): a is marked free but not on a list, counters stale, and
  // b (free, listed) is now a free neighbour not yet merged.
  reinterpret_cast<BlockHeader*>(static_cast<char*>(a) - kBlockHeaderSize)->state = kBlockFree;
  heap_.free_heads[3] = 0xdead;  // garbage in a derived field
  EXPECT_FALSE(HeapCheckLocked(&heap_, buffer_));
  HeapRebuildLocked(&heap_, buffer_);
  EXPECT_TRUE(HeapCheckLocked(&heap_, buffer_));
  EXPECT_EQ(heap_.busy_blocks, 1u);
  ASSERT_TRUE(Free(c));
  EXPECT_EQ(heap_.free_bytes, kSize);
}

}  // namespace
}  // namespace keel::memory_internal
