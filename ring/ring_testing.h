// Test support for rings: a ring in heap memory a test owns, the back-off a test
// thread uses when the ring is full or empty, and a small deterministic random source. For the ring's own tests and tests/.
#ifndef KEEL_RING_RING_TESTING_H_
#define KEEL_RING_RING_TESTING_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ring/ring.h"

namespace keel::ring::testing {

// A ring on caller-provided (heap) memory: no EAL.
class LocalRing {
 public:
  LocalRing(uint32_t count, uint32_t flags, uint32_t elem_size) {
    absl::StatusOr<size_t> bytes = MemorySize(count, flags, elem_size);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    mem_.reset(std::aligned_alloc(128, (*bytes + 127) / 128 * 128));
    absl::StatusOr<Ring*> r = Init(mem_.get(), "test", count, flags, elem_size);
    EXPECT_TRUE(r.ok()) << r.status();
    ring_ = *r;
  }
  Ring* operator->() const { return ring_; }
  Ring* get() const { return ring_; }

 private:
  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, FreeDeleter> mem_;
  Ring* ring_ = nullptr;
};

// When the ring is full (producer) or empty (consumer): yield a few times, then sleep,
// so that the CPU goes to a thread or process that can make progress (the tests run
// more threads than the machine has CPUs).
class Backoff {
 public:
  void Failed() {
    if (++failures_ < 8) {
      std::this_thread::yield();
    } else {
      absl::SleepFor(absl::Microseconds(50));
    }
  }
  void Moved() { failures_ = 0; }

 private:
  int failures_ = 0;
};

// xorshift64*: small, deterministic, one per thread.
class Random {
 public:
  explicit Random(uint64_t seed) : state_((seed + 1) * 0x9E3779B97F4A7C15ULL | 1) {}
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1DULL;
  }
  unsigned Between(unsigned lo, unsigned hi) { return lo + Next() % (hi - lo + 1); }
  bool OneIn(unsigned n) { return Next() % n == 0; }

 private:
  uint64_t state_;
};

}  // namespace keel::ring::testing

#endif  // KEEL_RING_RING_TESTING_H_
