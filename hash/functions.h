// keel hash functions: CRC32C and Jenkins' hash, with the values of DPDK's
// rte_hash_crc() and rte_jhash() for the same bytes, length and init value.
//
// A table names its function ("crc32c", "jhash", or one a process registered); these
// free functions let a caller compute the same hash ahead of time and use the
// *WithHash calls.
//
//   uint32_t h = keel::hash::Crc32c(&key, sizeof(key), 0);
//   table.AddWithHash(&key, h);
//
// Thread-safe, no allocation; they read exactly `length` bytes at `data` (never past
// the end, whatever the alignment).
#ifndef KEEL_HASH_FUNCTIONS_H_
#define KEEL_HASH_FUNCTIONS_H_

#include <cstdint>

#include "hash/internal/crc32c.h"
#include "hash/internal/jhash.h"

namespace keel::hash {

// CRC32C (Castagnoli, reflected, no final inversion) of `length` bytes, started from
// `init`: DPDK's rte_hash_crc(). Uses the SSE4.2 crc32 instruction when the CPU has it
// (checked once, at run time), a table otherwise.
inline uint32_t Crc32c(const void* data, uint32_t length, uint32_t init) {
  return hash_internal::Crc32c(data, length, init);
}

// Bob Jenkins' lookup3 hash as DPDK's rte_jhash() computes it.
inline uint32_t Jhash(const void* data, uint32_t length, uint32_t init) {
  return hash_internal::Jhash(data, length, init);
}

}  // namespace keel::hash

#endif  // KEEL_HASH_FUNCTIONS_H_
