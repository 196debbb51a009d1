// Placeholder until the time-source record lands (issue 10, merged from wt-source).
#ifndef KEEL_TIMER_INTERNAL_LAYOUT_H_
#define KEEL_TIMER_INTERNAL_LAYOUT_H_
#include <cstdint>
namespace keel::timer_internal {
inline constexpr uint32_t kLayoutVersion = 1;
}  // namespace keel::timer_internal
#endif  // KEEL_TIMER_INTERNAL_LAYOUT_H_
