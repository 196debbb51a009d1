#include "memory/hugepages.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/names.h"
#include "base/ofd_lock.h"
#include "base/status.h"

namespace keel::memory {
namespace {

uint64_t ReadNumber(const std::string& path) {
  std::ifstream in(path);
  uint64_t value = 0;
  in >> value;
  return value;
}

// The subdirectories "hugepages-NkB" of `dir`, as page sizes in bytes, ascending.
std::vector<uint64_t> PageSizesIn(const std::string& dir) {
  std::vector<uint64_t> sizes;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return sizes;
  while (struct dirent* entry = ::readdir(d)) {
    absl::string_view name = entry->d_name;
    uint64_t kb = 0;
    if (absl::ConsumePrefix(&name, "hugepages-") && absl::ConsumeSuffix(&name, "kB") &&
        absl::SimpleAtoi(name, &kb) && kb > 0) {
      sizes.push_back(kb * 1024);
    }
  }
  ::closedir(d);
  std::sort(sizes.begin(), sizes.end());
  return sizes;
}

// The NUMA nodes under `dir` (node0, node1, ...), ascending.
std::vector<int> NodesIn(const std::string& dir) {
  std::vector<int> nodes;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return nodes;
  while (struct dirent* entry = ::readdir(d)) {
    absl::string_view name = entry->d_name;
    int node = 0;
    if (absl::ConsumePrefix(&name, "node") && absl::SimpleAtoi(name, &node) && node >= 0) {
      nodes.push_back(node);
    }
  }
  ::closedir(d);
  std::sort(nodes.begin(), nodes.end());
  return nodes;
}

HugepageReservation ReadReservation(const std::string& dir, uint64_t page_size, int node) {
  HugepageReservation r;
  r.page_size = page_size;
  r.node = node;
  r.total = ReadNumber(dir + "/nr_hugepages");
  r.free = ReadNumber(dir + "/free_hugepages");
  r.reserved = ReadNumber(dir + "/resv_hugepages");
  r.surplus = ReadNumber(dir + "/surplus_hugepages");
  return r;
}

bool AllDigits(absl::string_view s, bool hex) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [hex](char c) {
    return absl::ascii_isdigit(c) || (hex && c >= 'a' && c <= 'f');
  });
}

// /proc/mounts writes a space, tab, newline and backslash in a path as \040, \011,
// \012 and \134.
std::string DecodeMountPath(absl::string_view field) {
  std::string path;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() &&
        std::all_of(field.begin() + i + 1, field.begin() + i + 4,
                    [](char c) { return c >= '0' && c <= '7'; })) {
      path.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                       (field[i + 3] - '0')));
      i += 3;
    } else {
      path.push_back(field[i]);
    }
  }
  return path;
}

}  // namespace

std::vector<HugetlbfsMount> HugetlbfsMounts() {
  std::vector<HugetlbfsMount> mounts;
  std::ifstream in("/proc/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 4 || fields[2] != "hugetlbfs") continue;
    const std::string path = DecodeMountPath(fields[1]);
    struct statfs fs;
    if (::statfs(path.c_str(), &fs) != 0) continue;
    mounts.push_back({path, static_cast<uint64_t>(fs.f_bsize), fields[3]});
  }
  return mounts;
}

std::string SharedMemoryDir() {
  if (const char* dir = std::getenv("KEEL_SHM_DIR"); dir != nullptr && *dir != '\0') return dir;
  return "/dev/shm";
}

std::vector<HugepageReservation> HugepageReservations(const std::string& sysfs_root) {
  std::vector<HugepageReservation> rows;
  const std::string global = sysfs_root + "/kernel/mm/hugepages";
  for (uint64_t size : PageSizesIn(global)) {
    rows.push_back(
        ReadReservation(absl::StrFormat("%s/hugepages-%dkB", global, size / 1024), size, -1));
  }
  const std::string nodes = sysfs_root + "/devices/system/node";
  for (int node : NodesIn(nodes)) {
    const std::string dir = absl::StrFormat("%s/node%d/hugepages", nodes, node);
    for (uint64_t size : PageSizesIn(dir)) {
      rows.push_back(
          ReadReservation(absl::StrFormat("%s/hugepages-%dkB", dir, size / 1024), size, node));
    }
  }
  return rows;
}

uint64_t AvailableHugepages(uint64_t page_size) {
  const std::string dir =
      absl::StrFormat("/sys/kernel/mm/hugepages/hugepages-%dkB", page_size / 1024);
  const HugepageReservation r = ReadReservation(dir, page_size, -1);
  return r.free > r.reserved ? r.free - r.reserved : 0;
}

std::string SegmentFileName(absl::string_view prefix, uint64_t group_id, int index) {
  return absl::StrFormat("keel.%s.%016x.seg%d", prefix, group_id, index);
}

std::optional<SegmentName> ParseSegmentFileName(absl::string_view name) {
  const size_t seg = name.rfind(".seg");
  if (seg == absl::string_view::npos) return std::nullopt;
  SegmentName parsed;
  const absl::string_view digits = name.substr(seg + 4);
  if (!AllDigits(digits, false) || (digits.size() > 1 && digits[0] == '0') ||
      !absl::SimpleAtoi(digits, &parsed.index)) {
    return std::nullopt;
  }
  absl::string_view head = name.substr(0, seg);  // keel.PREFIX.GROUP
  if (head.size() < 17 || head[head.size() - 17] != '.') return std::nullopt;
  const absl::string_view group = head.substr(head.size() - 16);
  if (!AllDigits(group, true) || !absl::SimpleHexAtoi(group, &parsed.group_id)) {
    return std::nullopt;
  }
  head.remove_suffix(17);
  if (!absl::ConsumePrefix(&head, "keel.") || head.empty()) return std::nullopt;
  parsed.prefix = std::string(head);
  return parsed;
}

std::vector<SegmentFile> SegmentFiles(const std::vector<std::string>& dirs) {
  std::vector<std::string> where = dirs;
  if (where.empty()) {
    for (const HugetlbfsMount& m : HugetlbfsMounts()) where.push_back(m.path);
    where.push_back(SharedMemoryDir());
  }
  std::vector<SegmentFile> files;
  for (const std::string& dir_path : where) {
    DIR* dir = ::opendir(dir_path.c_str());
    if (dir == nullptr) continue;
    std::vector<SegmentFile> here;
    while (struct dirent* entry = ::readdir(dir)) {
      std::optional<SegmentName> name = ParseSegmentFileName(entry->d_name);
      if (!name) continue;
      SegmentFile f;
      f.path = absl::StrCat(dir_path, "/", entry->d_name);
      f.name = std::move(*name);
      f.in_use = true;
      // Read-only and no lock taken: only asks (LockHeld), never disturbs a live group.
      const int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
      if (fd < 0) {
        f.unknown = std::strerror(errno);
      } else {
        struct stat st;
        if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
          f.bytes = static_cast<uint64_t>(st.st_size);
          f.in_use = LockHeld(fd);
        } else {
          f.unknown = "not a regular file";
        }
        ::close(fd);
      }
      here.push_back(std::move(f));
    }
    ::closedir(dir);
    std::sort(here.begin(), here.end(),
              [](const SegmentFile& a, const SegmentFile& b) { return a.path < b.path; });
    files.insert(files.end(), here.begin(), here.end());
  }
  return files;
}

absl::Status RemoveUnusedSegmentFile(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (!ParseSegmentFileName(base)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "\"%s\" is not a keel segment file (keel.PREFIX.GROUP.segN)", Printable(path)));
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno, "cannot open", Printable(path));
  // Asked before locking: our write lock would make the creating primary's read lock
  // fail. A file sized by its primary is already locked by it.
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size == 0 &&
      ::time(nullptr) - st.st_mtime < kSegmentCreationGraceSeconds) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is empty and new: a primary may be creating it; left alone", Printable(path)));
  }
  absl::Status status = TryLock(fd, LockType::kExclusive);
  if (absl::IsUnavailable(status)) {
    status = absl::FailedPreconditionError(
        absl::StrFormat("%s is mapped by a live process of group \"%s\"; left alone",
                        Printable(path), Printable(ParseSegmentFileName(base)->prefix)));
  } else if (status.ok() && ::unlink(path.c_str()) != 0) {
    status = ErrnoStatus(errno, "cannot remove", Printable(path));
  }
  ::close(fd);
  return status;
}

}  // namespace keel::memory
