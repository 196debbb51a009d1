// Bob Jenkins' lookup3 hashlittle() as DPDK's rte_jhash() computes it: state starts at
// 0xdeadbeef + length + init, 12-byte blocks are mixed while more than 12 bytes remain,
// the last 1..12 bytes are zero-padded to three words and finalised; length 0 returns
// the start state unmixed. Unlike DPDK, reads only the key's bytes (DPDK loads the last
// word whole and masks it). Not for users: include hash/functions.h.
#ifndef KEEL_HASH_INTERNAL_JHASH_H_
#define KEEL_HASH_INTERNAL_JHASH_H_

#include <cstdint>
#include <cstring>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "keel's hash functions assume a little-endian host, as DPDK's values do"
#endif

namespace keel::hash_internal {

inline uint32_t JhashRotate(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

// Unaligned-safe little-endian word load.
inline uint32_t JhashLoad32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void JhashMix(uint32_t& a, uint32_t& b, uint32_t& c) {
  a -= c;
  a ^= JhashRotate(c, 4);
  c += b;
  b -= a;
  b ^= JhashRotate(a, 6);
  a += c;
  c -= b;
  c ^= JhashRotate(b, 8);
  b += a;
  a -= c;
  a ^= JhashRotate(c, 16);
  c += b;
  b -= a;
  b ^= JhashRotate(a, 19);
  a += c;
  c -= b;
  c ^= JhashRotate(b, 4);
  b += a;
}

inline void JhashFinal(uint32_t& a, uint32_t& b, uint32_t& c) {
  c ^= b;
  c -= JhashRotate(b, 14);
  a ^= c;
  a -= JhashRotate(c, 11);
  b ^= a;
  b -= JhashRotate(a, 25);
  c ^= b;
  c -= JhashRotate(b, 16);
  a ^= c;
  a -= JhashRotate(c, 4);
  b ^= a;
  b -= JhashRotate(a, 14);
  c ^= b;
  c -= JhashRotate(b, 24);
}

inline uint32_t Jhash(const void* data, uint32_t length, uint32_t init) {
  const unsigned char* k = static_cast<const unsigned char*>(data);
  uint32_t a = 0xdeadbeef + length + init;
  uint32_t b = a;
  uint32_t c = a;
  for (; length > 12; length -= 12, k += 12) {
    a += JhashLoad32(k);
    b += JhashLoad32(k + 4);
    c += JhashLoad32(k + 8);
    JhashMix(a, b, c);
  }
  if (length == 0) return c;
  // The last 1..12 bytes, zero-padded: what DPDK's masked word loads add.
  unsigned char tail[12] = {};
  std::memcpy(tail, k, length);
  a += JhashLoad32(tail);
  b += JhashLoad32(tail + 4);
  c += JhashLoad32(tail + 8);
  JhashFinal(a, b, c);
  return c;
}

}  // namespace keel::hash_internal

#endif  // KEEL_HASH_INTERNAL_JHASH_H_
