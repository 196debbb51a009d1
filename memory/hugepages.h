// The machine's hugepages as keel sees them, without joining a group: hugetlbfs mounts,
// reservations per page size and NUMA node, and keel's segment files
// (keel.PREFIX.GROUP.segN) with whether any process still maps them. The memory
// component sets up groups with these; tools/hugepages shows and cleans with them.
//
//   for (const keel::memory::SegmentFile& f : keel::memory::SegmentFiles({})) {
//     if (!f.in_use) (void)keel::memory::RemoveUnusedSegmentFile(f.path);
//   }
//
// Needs no EAL, touches no group; thread-compatible.
#ifndef KEEL_MEMORY_HUGEPAGES_H_
#define KEEL_MEMORY_HUGEPAGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace keel::memory {

struct HugetlbfsMount {
  std::string path;
  uint64_t page_size = 0;  // bytes
  std::string options;     // as /proc/mounts has them ("rw,relatime,pagesize=2M,...")
};

// Every hugetlbfs mount, in /proc/mounts order (its octal escapes, e.g. "\040" for a
// space, decoded).
std::vector<HugetlbfsMount> HugetlbfsMounts();

// Where --no-huge groups keep their segment files: $KEEL_SHM_DIR, else /dev/shm.
std::string SharedMemoryDir();

// The pages of one size, machine-wide (node -1) or on one NUMA node, as the kernel counts
// them under `sysfs_root` (normally "/sys").
struct HugepageReservation {
  uint64_t page_size = 0;  // bytes
  int node = -1;
  uint64_t total = 0;     // nr_hugepages
  uint64_t free = 0;      // free_hugepages
  uint64_t reserved = 0;  // resv_hugepages: promised to mappings, not yet touched (the
                          // kernel counts it machine-wide only: always 0 in node rows)
  uint64_t surplus = 0;   // surplus_hugepages
};

// Machine-wide rows first (by page size), then per node (by node, then page size).
// Nodes appear only where the kernel has NUMA nodes; node rows have no resv count.
std::vector<HugepageReservation> HugepageReservations(const std::string& sysfs_root = "/sys");

// Pages of `page_size` bytes neither in use nor promised to a mapping.
uint64_t AvailableHugepages(uint64_t page_size);

// "keel.PREFIX.GROUP.segN": GROUP is the group id as 16 hex digits.
std::string SegmentFileName(absl::string_view prefix, uint64_t group_id, int index);

struct SegmentName {
  std::string prefix;
  uint64_t group_id = 0;
  int index = 0;
};
// The parts of a name SegmentFileName makes, or nullopt for any other name (upper-case
// hex, an index with leading zeros, ...). Prefixes may hold dots: the name is read from
// its end.
std::optional<SegmentName> ParseSegmentFileName(absl::string_view name);

struct SegmentFile {
  std::string path;
  SegmentName name;
  uint64_t bytes = 0;   // the file's size
  bool in_use = false;  // some process maps it (holds its OFD read lock)
  // Why in_use could not be asked (the file cannot be opened by this user, or is not a
  // regular file); in_use is then true: nothing live is taken for dead.
  std::string unknown;
};

// keel's segment files in `dirs` (when `dirs` is empty: every hugetlbfs mount and
// SharedMemoryDir()), by directory then name. A directory that cannot be read is skipped.
std::vector<SegmentFile> SegmentFiles(const std::vector<std::string>& dirs);

// Removes segment file `path` if no process maps it, deciding under a write lock: a
// process attaching meanwhile fails to take its read lock. An empty file modified less
// than kSegmentCreationGraceSeconds ago is left alone too: a primary creates a segment
// empty and takes its read lock right after, before sizing it (a primary killed in
// between leaves an empty file, removed once older). FailedPrecondition when a process maps it
// (or it may be being created), InvalidArgument when the name is not a segment file's,
// otherwise the open/unlink error (NotFound: someone removed it first).
inline constexpr int kSegmentCreationGraceSeconds = 10;
absl::Status RemoveUnusedSegmentFile(const std::string& path);

}  // namespace keel::memory

#endif  // KEEL_MEMORY_HUGEPAGES_H_
