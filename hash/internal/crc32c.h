// CRC32C as DPDK's rte_hash_crc() computes it: Castagnoli polynomial, reflected, no
// initial or final inversion; 8 bytes at a time, then 4, 2, 1. Two paths that give the
// same values: the SSE4.2 crc32 instruction, and slicing-by-8 tables (functions.cc).
// Crc32c picks one at run time. Not for users: include hash/functions.h.
#ifndef KEEL_HASH_INTERNAL_CRC32C_H_
#define KEEL_HASH_INTERNAL_CRC32C_H_

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "keel's hash functions assume a little-endian host, as DPDK's values do"
#endif

namespace keel::hash_internal {

// slice[k][b]: CRC of byte b followed by k zero bytes. slice[0] is the bytewise table.
struct Crc32cTables {
  uint32_t slice[8][256];
};
extern const Crc32cTables kCrc32cTables;

// __builtin_cpu_supports("sse4.2"), set by functions.cc's static initialiser. Reads
// false before that (another TU's initialiser): the table path, same values.
extern const bool kHasSse42;

// Unaligned-safe load of sizeof(T) bytes.
template <typename T>
inline T Crc32cLoad(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline uint32_t Crc32cTable(const void* data, uint32_t length, uint32_t init) {
  const auto& t = kCrc32cTables.slice;
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint32_t crc = init;
  for (; length >= 8; length -= 8, p += 8) {
    const uint64_t w = Crc32cLoad<uint64_t>(p);
    const uint32_t lo = crc ^ static_cast<uint32_t>(w);
    const uint32_t hi = static_cast<uint32_t>(w >> 32);
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
  }
  if (length & 4) {
    crc ^= Crc32cLoad<uint32_t>(p);
    crc = t[3][crc & 0xff] ^ t[2][(crc >> 8) & 0xff] ^ t[1][(crc >> 16) & 0xff] ^ t[0][crc >> 24];
    p += 4;
  }
  if (length & 2) {
    crc ^= Crc32cLoad<uint16_t>(p);
    crc = t[1][crc & 0xff] ^ t[0][(crc >> 8) & 0xff] ^ (crc >> 16);
    p += 2;
  }
  if (length & 1) crc = t[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)

// Only call when kHasSse42 (SIGILL otherwise).
__attribute__((target("sse4.2"))) inline uint32_t Crc32cHardware(const void* data, uint32_t length,
                                                                 uint32_t init) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint64_t crc64 = init;
  for (; length >= 8; length -= 8, p += 8) crc64 = _mm_crc32_u64(crc64, Crc32cLoad<uint64_t>(p));
  uint32_t crc = static_cast<uint32_t>(crc64);
  if (length & 4) {
    crc = _mm_crc32_u32(crc, Crc32cLoad<uint32_t>(p));
    p += 4;
  }
  if (length & 2) {
    crc = _mm_crc32_u16(crc, Crc32cLoad<uint16_t>(p));
    p += 2;
  }
  if (length & 1) crc = _mm_crc32_u8(crc, *p);
  return crc;
}

#endif  // __x86_64__

// True when Crc32c takes the hardware path.
inline bool Crc32cUsesHardware() { return kHasSse42; }

inline uint32_t Crc32c(const void* data, uint32_t length, uint32_t init) {
#if defined(__x86_64__)
  if (__builtin_expect(kHasSse42, true)) return Crc32cHardware(data, length, init);
#endif
  return Crc32cTable(data, length, init);
}

}  // namespace keel::hash_internal

#endif  // KEEL_HASH_INTERNAL_CRC32C_H_
