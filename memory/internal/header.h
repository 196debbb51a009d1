// RUNDIR/memory's header as a secondary reads it: untrusted input, checked in full
// before anything is mapped from it. The attach path (memory.cc) and its fuzzer
// (memory/config_fuzzer.cc) share these.
#ifndef KEEL_MEMORY_INTERNAL_HEADER_H_
#define KEEL_MEMORY_INTERNAL_HEADER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "memory/internal/layout.h"

namespace keel::memory_internal {

// FNV-1a of `header` with its checksum field taken as zero.
uint64_t HeaderChecksum(MemoryHeader header);

// What a secondary checks of a header read from `path` before mapping anything: the
// file is as the primary wrote it (checksum), and every offset, size and path is one
// this group's primary (of `prefix`) could have written. FailedPrecondition naming the
// file and the bad field.
absl::Status ValidateHeader(const MemoryHeader& h, const std::string& path,
                            absl::string_view prefix);

// Reads the header of the memory config open as `fd` (`path` names it in errors) and
// checks it: a keel memory config of this layout version, ValidateHeader, and a file
// of the size the header gives. FailedPrecondition otherwise. Reads only; thread-safe.
absl::StatusOr<MemoryHeader> ReadHeader(int fd, const std::string& path, absl::string_view prefix);

}  // namespace keel::memory_internal

#endif  // KEEL_MEMORY_INTERNAL_HEADER_H_
