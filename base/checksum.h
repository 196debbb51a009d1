// A 64-bit FNV-1a checksum, for headers of shared files that are written once and must
// be refused when changed afterwards (not a defence against an attacker: the files are
// 0600 — against truncation, overwrites and stray writes).
//
//   header.checksum = 0;
//   header.checksum = Fnv1a64(&header, sizeof(header));
#ifndef KEEL_BASE_CHECKSUM_H_
#define KEEL_BASE_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

namespace keel {

inline uint64_t Fnv1a64(const void* data, size_t size, uint64_t hash = 0xcbf29ce484222325ULL) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace keel

#endif  // KEEL_BASE_CHECKSUM_H_
