// KEEL_DCHECK: a fast-path contract checked in debug builds only.
//
// The fast paths (enqueue, get, lookup) never return a Status; a caller breaking their
// contract (finishing more than it started, say) is a bug in the caller. Debug builds
// report it and abort at the call; optimized builds (NDEBUG) compile the check away,
// evaluating nothing.
//
//   KEEL_DCHECK(n <= reserved, "EnqueueFinish(%u) after a Start of %u", n, reserved);
#ifndef KEEL_BASE_CHECK_H_
#define KEEL_BASE_CHECK_H_

namespace keel::base_internal {
[[noreturn]] void DcheckFailed(const char* file, int line, const char* condition,
                               const char* format, ...) __attribute__((format(printf, 4, 5)));
}  // namespace keel::base_internal

#ifdef NDEBUG
#define KEEL_DCHECK(condition, ...) \
  do {                              \
  } while (false && (condition))
#else
#define KEEL_DCHECK(condition, ...)                                                     \
  do {                                                                                  \
    if (__builtin_expect(!(condition), 0)) {                                            \
      ::keel::base_internal::DcheckFailed(__FILE__, __LINE__, #condition, __VA_ARGS__); \
    }                                                                                   \
  } while (false)
#endif

#endif  // KEEL_BASE_CHECK_H_
