// The CRC32C slicing tables (built at compile time) and the run-time SSE4.2 check.
#include "hash/functions.h"

#include <cstdint>

namespace keel::hash_internal {
namespace {

constexpr uint32_t kCastagnoliReflected = 0x82f63b78;

constexpr Crc32cTables MakeCrc32cTables() {
  Crc32cTables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (crc & 1 ? kCastagnoliReflected : 0);
    t.slice[0][b] = crc;
  }
  // One more zero byte after slice[k - 1][b].
  for (int k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      const uint32_t prev = t.slice[k - 1][b];
      t.slice[k][b] = (prev >> 8) ^ t.slice[0][prev & 0xff];
    }
  }
  return t;
}

bool CpuHasSse42() {
#if defined(__x86_64__)
  // Needed when run before libgcc's own constructor.
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

}  // namespace

constexpr Crc32cTables kCrc32cTables = MakeCrc32cTables();
static_assert(kCrc32cTables.slice[0][1] == 0xf26b8303, "CRC32C table: DPDK's first entry");

const bool kHasSse42 = CpuHasSse42();

}  // namespace keel::hash_internal
