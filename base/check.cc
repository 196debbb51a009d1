#include "base/check.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace keel::base_internal {

void DcheckFailed(const char* file, int line, const char* condition, const char* format, ...) {
  std::fprintf(stderr, "%s:%d: KEEL_DCHECK(%s) failed: ", file, line, condition);
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace keel::base_internal
