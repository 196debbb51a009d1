// Fuzz target: the header of a group's memory config (RUNDIR/memory) as a secondary
// reads it (ReadHeader) before mapping anything. Input: one byte of flags, then the
// file's first bytes.
//   bit 0: rewrite the checksum to match, so the checks past it are reached;
//   bit 1: size the file as the header says (else it is as long as the input).
// Whatever the bytes, ReadHeader returns; a header it accepts describes only what the
// secondary can map safely: segments in order, inside the group's range, page-aligned,
// each named as this group's segment file.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fuzz/inputs.h"
#include "memory/hugepages.h"
#include "memory/internal/header.h"
#include "memory/internal/layout.h"

namespace {

using keel::fuzz::Check;

using keel::memory_internal::MemoryHeader;

constexpr char kPrefix[] = "fuzz";  // the corpus comes from a group of this prefix
constexpr uint64_t kMaxFileSize = uint64_t{64} << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 1 + sizeof(MemoryHeader) + 4096) return -1;
  const uint8_t flags = data[0];
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((flags & 1) != 0 && file.size() >= sizeof(MemoryHeader)) {
    MemoryHeader h;
    std::memcpy(&h, file.data(), sizeof(h));
    h.checksum = keel::memory_internal::HeaderChecksum(h);
    std::memcpy(file.data(), &h, sizeof(h));
  }
  const int fd = memfd_create("fuzz-memory-config", MFD_CLOEXEC);
  Check(fd >= 0);
  Check(write(fd, file.data(), file.size()) == static_cast<ssize_t>(file.size()));
  if ((flags & 2) != 0 && file.size() >= sizeof(MemoryHeader)) {
    MemoryHeader h;
    std::memcpy(&h, file.data(), sizeof(h));
    if (h.config_size <= kMaxFileSize) Check(ftruncate(fd, h.config_size) == 0);
  }
  const absl::StatusOr<MemoryHeader> header =
      keel::memory_internal::ReadHeader(fd, "RUNDIR/memory", kPrefix);
  close(fd);
  if (!header.ok()) {
    Check(header.status().message().find("RUNDIR/memory") != std::string::npos ||
          header.status().message().find("layout version") != std::string::npos);
    return 0;
  }
  const MemoryHeader& h = *header;
  Check(h.segment_count >= 1 && h.segment_count <= keel::memory_internal::kMaxSegments);
  Check(h.base != 0 && h.base % 4096 == 0 && h.total_size <= (uint64_t{1} << 47) - h.base);
  uint64_t end = h.config_size;
  for (uint32_t i = 0; i < h.segment_count; ++i) {
    const keel::memory_internal::SegmentRecord& seg = h.segments[i];
    Check(seg.page_size >= 4096 && (seg.page_size & (seg.page_size - 1)) == 0);
    Check(seg.offset >= end && seg.offset % seg.page_size == 0 && seg.size != 0 &&
          seg.size % seg.page_size == 0 && seg.size <= h.total_size - seg.offset);
    end = seg.offset + seg.size;
    const size_t length = strnlen(seg.path, sizeof(seg.path));
    Check(length < sizeof(seg.path));
    const std::string path(seg.path, length);
    Check(path.substr(path.rfind('/') + 1) ==
          keel::memory::SegmentFileName(kPrefix, h.group_id, i));
  }
  return 0;
}
