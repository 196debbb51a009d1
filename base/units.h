// Small arithmetic and formatting helpers for sizes.
//
//   RoundUp(5000, 4096) == 8192;  FormatMib(3 << 20) == "3.0 MiB"
#ifndef KEEL_BASE_UNITS_H_
#define KEEL_BASE_UNITS_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"

namespace keel {

// The smallest multiple of `align` (> 0, any value) that is >= value.
constexpr uint64_t RoundUp(uint64_t value, uint64_t align) {
  return (value + align - 1) / align * align;
}

constexpr bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// "1.5 MiB".
inline std::string FormatMib(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / 1048576.0);
}

}  // namespace keel

#endif  // KEEL_BASE_UNITS_H_
