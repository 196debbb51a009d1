// keel's CRC32C (both paths and the dispatcher) and jhash against DPDK: the vectors of
// DPDK's test_hash_functions.c, random keys against Debian's libdpdk, and keys that end
// at an unreadable page.
#include "hash/functions.h"

#include <rte_hash_crc.h>
#include <rte_jhash.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace keel::hash {
namespace {

using CrcFunction = uint32_t (*)(const void*, uint32_t, uint32_t);

// DPDK's test_hash_functions.c: key i is bytes 0..n-1 for n = kVectorLengths[i].
constexpr uint32_t kVectorLengths[] = {1, 2, 4, 8, 16, 32, 48, 64, 9, 13, 37, 40};
constexpr int kVectorCount = sizeof(kVectorLengths) / sizeof(kVectorLengths[0]);
constexpr uint32_t kJhashInit0[kVectorCount] = {0x8ba9414b, 0xdf0d39c9, 0xe4cf1d42, 0xd4ccb93c,
                                                0x5e84eafc, 0x21362cfe, 0x2f4775ab, 0x9ff036cc,
                                                0xeca51474, 0xbc9d6816, 0x12926a31, 0x1c9fa888};
constexpr uint32_t kJhashInitDeadbeef[kVectorCount] = {
    0x5c62c303, 0x1b8cf784, 0x8270ac65, 0x05fa6668, 0x762df861, 0xda088f2f,
    0x59614cd4, 0x7a94f690, 0xdc1e4993, 0x30825494, 0x91d0e462, 0x768087fc};
constexpr uint32_t kCrcInit0[kVectorCount] = {0x00000000, 0xf26b8303, 0x91545164, 0x06040eb1,
                                              0x9bb99201, 0xcc4c4fe4, 0x14a90993, 0xf8a5dd8c,
                                              0xcaa1ad0b, 0x7ac1e03e, 0x43f44466, 0x4a11475e};
constexpr uint32_t kCrcInitDeadbeef[kVectorCount] = {
    0xbdfd3980, 0x70204542, 0x98cd4c70, 0xd52c702f, 0x41fc0e1c, 0x3905f65c,
    0x94bff47f, 0x1bab102d, 0xf4a2c645, 0xbf441539, 0x789c104f, 0x53028d3e};

std::vector<unsigned char> CountingKey(uint32_t n) {
  std::vector<unsigned char> key(n);
  for (uint32_t i = 0; i < n; ++i) key[i] = static_cast<unsigned char>(i);
  return key;
}

void ExpectVectors(CrcFunction f, const uint32_t (&init0)[kVectorCount],
                   const uint32_t (&init_deadbeef)[kVectorCount]) {
  for (int i = 0; i < kVectorCount; ++i) {
    const std::vector<unsigned char> key = CountingKey(kVectorLengths[i]);
    EXPECT_EQ(f(key.data(), key.size(), 0), init0[i]) << "length " << key.size() << ", init 0";
    EXPECT_EQ(f(key.data(), key.size(), 0xdeadbeef), init_deadbeef[i])
        << "length " << key.size() << ", init 0xdeadbeef";
  }
}

#define KEEL_SKIP_WITHOUT_SSE42()                                                 \
  do {                                                                            \
    if (!hash_internal::Crc32cUsesHardware()) GTEST_SKIP() << "CPU lacks SSE4.2"; \
  } while (0)

TEST(Crc32cDispatch, UsesHardwareExactlyWhenTheCpuHasSse42) {
#if defined(__x86_64__)
  EXPECT_EQ(hash_internal::Crc32cUsesHardware(),
            static_cast<bool>(__builtin_cpu_supports("sse4.2")));
#else
  EXPECT_FALSE(hash_internal::Crc32cUsesHardware());
#endif
}

TEST(Crc32cVectors, HardwarePathGivesDpdkValues) {
#if defined(__x86_64__)
  KEEL_SKIP_WITHOUT_SSE42();
  ExpectVectors(hash_internal::Crc32cHardware, kCrcInit0, kCrcInitDeadbeef);
#else
  GTEST_SKIP() << "no SSE4.2 path off x86-64";
#endif
}

TEST(Crc32cVectors, TablePathGivesDpdkValues) {
  ExpectVectors(hash_internal::Crc32cTable, kCrcInit0, kCrcInitDeadbeef);
}

TEST(Crc32cVectors, DispatchGivesDpdkValues) { ExpectVectors(Crc32c, kCrcInit0, kCrcInitDeadbeef); }

TEST(JhashVectors, GivesDpdkValues) { ExpectVectors(Jhash, kJhashInit0, kJhashInitDeadbeef); }

// Every length 0..256 at every misalignment 0..7, random bytes and init.
constexpr uint32_t kMaxRandomLength = 256;
constexpr uint32_t kMisalignments = 8;

template <typename Check>
void ForRandomKeys(Check check) {
  std::mt19937 rng(20221100);
  // Slack after the key: DPDK's jhash may read up to 3 bytes past it.
  alignas(8) unsigned char buffer[kMisalignments + kMaxRandomLength + 8];
  for (uint32_t length = 0; length <= kMaxRandomLength; ++length) {
    for (uint32_t offset = 0; offset < kMisalignments; ++offset) {
      for (unsigned char& byte : buffer) byte = static_cast<unsigned char>(rng());
      const uint32_t init = rng();
      check(buffer + offset, length, init);
    }
  }
}

TEST(Crc32cRandom, EveryPathEqualsRteHashCrcAtEveryLengthAndAlignment) {
  ForRandomKeys([](const unsigned char* key, uint32_t length, uint32_t init) {
    const uint32_t expected = rte_hash_crc(key, length, init);
    EXPECT_EQ(hash_internal::Crc32cTable(key, length, init), expected)
        << "table, length " << length << ", address " << static_cast<const void*>(key);
#if defined(__x86_64__)
    if (hash_internal::Crc32cUsesHardware()) {
      EXPECT_EQ(hash_internal::Crc32cHardware(key, length, init), expected)
          << "hardware, length " << length << ", address " << static_cast<const void*>(key);
    }
#endif
    EXPECT_EQ(Crc32c(key, length, init), expected)
        << "dispatch, length " << length << ", address " << static_cast<const void*>(key);
  });
}

TEST(JhashRandom, EqualsRteJhashAtEveryLengthAndAlignment) {
  ForRandomKeys([](const unsigned char* key, uint32_t length, uint32_t init) {
    EXPECT_EQ(Jhash(key, length, init), rte_jhash(key, length, init))
        << "length " << length << ", address " << static_cast<const void*>(key);
  });
}

// A readable page of random bytes followed by a PROT_NONE page.
class KeyAtPageEnd : public ::testing::Test {
 protected:
  static constexpr uint32_t kMaxLength = 64;

  void SetUp() override {
    page_size_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* p =
        mmap(nullptr, 2 * page_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED) << "mmap of 2 pages: " << strerror(errno);
    pages_ = static_cast<unsigned char*>(p);
    std::mt19937 rng(64);
    for (size_t i = 0; i < page_size_; ++i) pages_[i] = static_cast<unsigned char>(rng());
    ASSERT_EQ(mprotect(pages_ + page_size_, page_size_, PROT_NONE), 0)
        << "mprotect: " << strerror(errno);
  }

  void TearDown() override {
    if (pages_ != nullptr) munmap(pages_, 2 * page_size_);
  }

  // The `length` bytes that end where the guard page starts.
  const unsigned char* KeyEndingAtGuard(uint32_t length) const {
    return pages_ + page_size_ - length;
  }

  // f on keys of every length 0..kMaxLength ending at the guard equals `reference` on a
  // copy (a read past the end faults instead).
  void ExpectReadsOnlyTheKey(CrcFunction f, CrcFunction reference) const {
    for (uint32_t length = 0; length <= kMaxLength; ++length) {
      const unsigned char* key = KeyEndingAtGuard(length);
      std::vector<unsigned char> copy(key, key + length);
      copy.resize(length + 8);  // DPDK's jhash may read past the copy's end.
      EXPECT_EQ(f(key, length, length), reference(copy.data(), length, length))
          << "length " << length;
    }
  }

  size_t page_size_ = 0;
  unsigned char* pages_ = nullptr;
};

uint32_t RteHashCrc(const void* data, uint32_t length, uint32_t init) {
  return rte_hash_crc(data, length, init);
}

uint32_t RteJhash(const void* data, uint32_t length, uint32_t init) {
  return rte_jhash(data, length, init);
}

using KeyAtPageEndDeathTest = KeyAtPageEnd;

// Shows the guard works: the tests below would catch a read past the end.
TEST_F(KeyAtPageEndDeathTest, ReadingTheGuardPageFaults) {
  const volatile unsigned char* guard = KeyEndingAtGuard(0);
  EXPECT_DEATH(static_cast<void>(*guard), "");
}

TEST_F(KeyAtPageEnd, Crc32cHardwareReadsOnlyTheKey) {
#if defined(__x86_64__)
  KEEL_SKIP_WITHOUT_SSE42();
  ExpectReadsOnlyTheKey(hash_internal::Crc32cHardware, RteHashCrc);
#else
  GTEST_SKIP() << "no SSE4.2 path off x86-64";
#endif
}

TEST_F(KeyAtPageEnd, Crc32cTableReadsOnlyTheKey) {
  ExpectReadsOnlyTheKey(hash_internal::Crc32cTable, RteHashCrc);
}

TEST_F(KeyAtPageEnd, Crc32cDispatchReadsOnlyTheKey) { ExpectReadsOnlyTheKey(Crc32c, RteHashCrc); }

TEST_F(KeyAtPageEnd, JhashReadsOnlyTheKey) { ExpectReadsOnlyTheKey(Jhash, RteJhash); }

}  // namespace
}  // namespace keel::hash
