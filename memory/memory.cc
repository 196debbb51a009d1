// Control path: setting up the group's memory in the primary, mapping it in
// secondaries, and taking it down. Runs inside eal::Init / eal::Cleanup.
#include "memory/memory.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <numa.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/checksum.h"
#include "base/kill_point.h"
#include "base/log.h"
#include "base/names.h"
#include "base/ofd_lock.h"
#include "base/robust_mutex.h"
#include "base/status.h"
#include "base/units.h"
#include "eal/eal.h"
#include "eal/internal/components.h"
#include "memory/hugepages.h"
#include "memory/internal/header.h"
#include "memory/internal/layout.h"
#include "memory/internal/state.h"

namespace keel::memory_internal {
namespace {

using eal::ProcessType;

// Far from where Linux puts mmap() areas (0x7f...) and PIE executables (0x55...), and
// 1 GiB aligned. A primary that finds it taken tries the next candidate.
#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer lets a program map memory only in its application ranges (x86-64:
// the low 512 GiB, 0x55..., 0x7b... and 0x7e8...): the low range, in steps of 64 GiB.
constexpr uint64_t kDefaultBase = 0x1000000000ULL;
constexpr uint64_t kBaseStep = 1ULL << 36;
constexpr int kBaseCandidates = 7;
#else
// Above AddressSanitizer's shadow (x86-64: 0x00007fff8000-0x10007fff7fff), so programs
// built with and without ASan share groups at the same default; 16 TiB of candidates
// below the PIE range.
constexpr uint64_t kDefaultBase = 0x200000000000ULL;
constexpr uint64_t kBaseStep = 1ULL << 40;
constexpr int kBaseCandidates = 16;
#endif
constexpr uint64_t kDefaultMemoryMb = 256;
// x86-64 user space ends here (47-bit addresses).
constexpr uint64_t kUserAddressEnd = uint64_t{1} << 47;
constexpr char kConfigFile[] = "memory";

State* g_state = nullptr;

using HugeMount = memory::HugetlbfsMount;

// --no-huge segments live on a memory filesystem: shared files there are never written
// back to a disk (/run, the runtime base, is the root disk on some hosts).
std::string ShmDir() { return memory::SharedMemoryDir(); }

// Segment files of `prefix` in `dirs` that no process has mapped (every process that
// maps one holds a read lock) are left by a dead group: removed. Those in use — another
// group of the same prefix under another runtime directory, or a container sharing the
// mount — are left alone.
void RemoveStaleSegments(const std::vector<std::string>& dirs, absl::string_view prefix) {
  for (const memory::SegmentFile& f : memory::SegmentFiles(dirs)) {
    if (f.name.prefix != prefix) continue;
    if (f.in_use) {
      KEEL_LOG(Info, "memory", "%s %s; left alone", Printable(f.path),
               f.unknown.empty()
                   ? absl::StrFormat("is in use by a live group of prefix \"%s\"", prefix)
                   : absl::StrCat("cannot be probed: ", f.unknown));
      continue;
    }
    absl::Status removed = memory::RemoveUnusedSegmentFile(f.path);
    if (removed.ok()) {
      KEEL_LOG(Notice, "memory", "removed stale segment file %s", Printable(f.path));
    } else if (!absl::IsNotFound(removed)) {
      KEEL_LOG(Info, "memory", "%s", removed.message());
    }
  }
}

// The mappings of this process that overlap [addr, addr + len), for error messages.
std::string DescribeMappings(uint64_t addr, uint64_t len) {
  std::ifstream in("/proc/self/maps");
  std::string line;
  std::vector<std::string> found;
  while (std::getline(in, line)) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.empty()) continue;
    std::vector<absl::string_view> range = absl::StrSplit(fields[0], '-');
    uint64_t lo = 0;
    uint64_t hi = 0;
    if (range.size() != 2 || !absl::SimpleHexAtoi(range[0], &lo) ||
        !absl::SimpleHexAtoi(range[1], &hi)) {
      continue;
    }
    if (lo < addr + len && hi > addr) {
      found.push_back(
          absl::StrFormat("0x%x-0x%x %s", lo, hi, fields.size() >= 6 ? fields[5] : "[anonymous]"));
    }
  }
  return found.empty() ? "an unknown mapping" : absl::StrJoin(found, ", ");
}

// Reserves [addr, addr + len) without committing memory. False if any of it is taken.
bool ReserveRange(uint64_t addr, uint64_t len) {
  void* got = ::mmap(reinterpret_cast<void*>(addr), len, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (got == MAP_FAILED) return false;
  if (reinterpret_cast<uint64_t>(got) != addr) {  // a kernel without MAP_FIXED_NOREPLACE
    ::munmap(got, len);
    return false;
  }
  return true;
}

// Maps `fd` (`path`, for errors) of length `len` over our reservation at `addr`. For
// hugetlbfs, a shared mapping reserves its hugepages here: a shortage fails now with
// ENOMEM instead of SIGBUS on first touch. Nothing is touched.
absl::Status MapAt(int fd, const std::string& path, uint64_t addr, uint64_t len) {
  void* got = ::mmap(reinterpret_cast<void*>(addr), len, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED, fd, 0);
  if (got == MAP_FAILED) return ErrnoStatus(errno, "cannot map", path);
  return absl::OkStatus();
}

// --prefault: fault in the page tables of [addr, addr + len) now, so no access faults
// later. Never writes data (secondaries prefault memory that others use).
void Prefault(uint64_t addr, uint64_t len, uint64_t page_size) {
  if (::madvise(reinterpret_cast<void*>(addr), len, MADV_POPULATE_WRITE) == 0) return;
  // Kernels before 5.14: a read of every page.
  for (uint64_t p = addr; p < addr + len; p += page_size) {
    (void)*reinterpret_cast<volatile const char*>(p);
  }
}

// The size of `path`'s file system and its free bytes, for messages.
std::string DescribeFilesystem(const std::string& path) {
  struct statfs fs;
  if (::statfs(path.c_str(), &fs) != 0) return path;
  const char* type = fs.f_type == TMPFS_MAGIC       ? "tmpfs"
                     : fs.f_type == HUGETLBFS_MAGIC ? "hugetlbfs"
                                                    : "not a memory file system";
  return absl::StrFormat("%s (%s, %s free of %s)", path, type,
                         FormatMib(static_cast<uint64_t>(fs.f_bavail) * fs.f_bsize),
                         FormatMib(static_cast<uint64_t>(fs.f_blocks) * fs.f_bsize));
}

struct Plan {
  int socket;
  uint64_t bytes;
};

absl::StatusOr<std::vector<Plan>> PlanSockets(const eal::Options& options) {
  std::vector<Plan> plan;
  if (!options.socket_mem_mb.empty()) {
    for (size_t s = 0; s < options.socket_mem_mb.size(); ++s) {
      if (options.socket_mem_mb[s] > 0) {
        plan.push_back({static_cast<int>(s), options.socket_mem_mb[s] << 20});
      }
    }
    if (plan.empty()) {
      return absl::InvalidArgumentError("--socket-mem asks for no memory on any socket");
    }
  } else {
    // -m (or the default) on the NUMA node of the main lcore.
    int socket = 0;
    const auto main = options.lcores.find(options.main_lcore);
    if (main == options.lcores.end()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--main-lcore %u is not one of the process's lcores", options.main_lcore));
    }
    for (unsigned cpu = 0; cpu < eal::kMaxCpus; ++cpu) {
      if (main->second.test(cpu)) {
        if (numa_available() >= 0) socket = std::max(0, numa_node_of_cpu(static_cast<int>(cpu)));
        break;
      }
    }
    const uint64_t mb = options.memory_mb != 0 ? options.memory_mb : kDefaultMemoryMb;
    plan.push_back({socket, mb << 20});
  }
  for (const Plan& p : plan) {
    if (p.socket >= kMaxSockets) {
      return absl::InvalidArgumentError(
          absl::StrFormat("NUMA node %d is beyond the %d keel supports", p.socket, kMaxSockets));
    }
    if (static_cast<size_t>(p.socket) < options.socket_limit_mb.size()) {
      const uint64_t limit = options.socket_limit_mb[p.socket];
      if (limit != 0 && p.bytes > (limit << 20)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "--socket-limit: socket %d is limited to %d MB but %d MB were asked for", p.socket,
            limit, p.bytes >> 20));
      }
    }
  }
  return plan;
}

absl::StatusOr<HugeMount> ChooseMount(const eal::Options& options,
                                      const std::vector<HugeMount>& mounts,
                                      const std::vector<Plan>& plan) {
  uint64_t total = 0;
  for (const Plan& p : plan) total += p.bytes;
  if (!options.huge_dir.empty()) {
    struct statfs fs;
    if (::statfs(options.huge_dir.c_str(), &fs) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--huge-dir \"%s\": %s", options.huge_dir, std::strerror(errno)));
    }
    if (fs.f_type != HUGETLBFS_MAGIC) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--huge-dir \"%s\": not a hugetlbfs mount", options.huge_dir));
    }
    return HugeMount{options.huge_dir, static_cast<uint64_t>(fs.f_bsize), ""};
  }
  if (mounts.empty()) {
    return absl::FailedPreconditionError(
        "no hugetlbfs is mounted: mount one and reserve hugepages (tools/setup --hugepages "
        "N does both), or run with --no-huge");
  }
  std::vector<HugeMount> by_size = mounts;
  std::sort(by_size.begin(), by_size.end(),
            [](const HugeMount& a, const HugeMount& b) { return a.page_size > b.page_size; });
  std::vector<std::string> seen;
  for (const HugeMount& m : by_size) {
    uint64_t pages = 0;
    for (const Plan& p : plan) pages += RoundUp(p.bytes, m.page_size) / m.page_size;
    const uint64_t available = memory::AvailableHugepages(m.page_size);
    if (available >= pages) return m;
    seen.push_back(absl::StrFormat("%d of %d x %d kB pages available at %s", available, pages,
                                   m.page_size / 1024, m.path));
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "not enough hugepages for %s (%s): reserve more (tools/setup --hugepages N, or "
      "/proc/sys/vm/nr_hugepages) or use --no-huge",
      FormatMib(total), absl::StrJoin(seen, "; ")));
}

void Unmap(State* state) {
  if (state->base != nullptr) ::munmap(state->base, state->total_size);
  for (int fd : state->segment_fds) ::close(fd);
  state->segment_fds.clear();
}

void UnlinkFiles(const MemoryConfig* config, const std::string& runtime_dir) {
  for (uint32_t i = 0; i < config->header.segment_count && i < kMaxSegments; ++i) {
    ::unlink(config->header.segments[i].path);
  }
  ::unlink(absl::StrCat(runtime_dir, "/", kConfigFile).c_str());
}

uint64_t RandomGroupId() {
  uint64_t id = 0;
  while (id == 0) {
    if (::getrandom(&id, sizeof(id), 0) != sizeof(id)) {
      id = static_cast<uint64_t>(::getpid()) << 32 ^ static_cast<uint64_t>(::time(nullptr));
    }
  }
  return id;
}

// The primary's layout of the range: config first, then one segment per socket, each
// aligned to the page size. Segment files are named, not created.
absl::StatusOr<MemoryHeader> PlanLayout(const eal::Options& options, const std::vector<Plan>& plan,
                                        const std::string& dir, uint64_t page_size) {
  MemoryHeader header = {};
  header.magic = kMemoryMagic;
  header.layout_version = kLayoutVersion;
  header.group_id = RandomGroupId();
  header.config_size = RoundUp(sizeof(MemoryConfig), 4096);
  uint64_t offset = RoundUp(header.config_size, page_size);
  for (const Plan& p : plan) {
    if (header.segment_count == kMaxSegments) {
      return absl::InvalidArgumentError(
          absl::StrFormat("memory on more than %d NUMA nodes", kMaxSegments));
    }
    SegmentRecord& seg = header.segments[header.segment_count];
    const std::string path = absl::StrCat(
        dir, "/",
        memory::SegmentFileName(options.file_prefix, header.group_id, header.segment_count));
    if (path.size() >= sizeof(seg.path)) {
      return absl::InvalidArgumentError(absl::StrFormat("segment path %s is too long", path));
    }
    CopyName(seg.path, path);
    seg.offset = offset;
    seg.size = RoundUp(p.bytes, page_size);
    seg.page_size = page_size;
    seg.socket = p.socket;
    seg.hugepages = options.no_huge ? 0 : 1;
    header.limit_mb += p.bytes >> 20;
    offset += seg.size;
    ++header.segment_count;
  }
  header.total_size = offset;
  return header;
}

// Reserves the address range for `header` (sets header->base).
absl::Status ReserveBase(const eal::Options& options, uint64_t page_size, MemoryHeader* header) {
  if (options.base_virtaddr == 0) {
    for (int i = 0; i < kBaseCandidates; ++i) {
      const uint64_t candidate = kDefaultBase + i * kBaseStep;
      if (ReserveRange(candidate, header->total_size)) {
        header->base = candidate;
        return absl::OkStatus();
      }
    }
    return absl::ResourceExhaustedError(
        absl::StrFormat("no free address range of %s from 0x%x on; pass --base-virtaddr",
                        FormatMib(header->total_size), kDefaultBase));
  }
  const uint64_t base = options.base_virtaddr;
  if (base % page_size != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--base-virtaddr 0x%x is not aligned to the %d kB page size", base, page_size / 1024));
  }
  if (base >= kUserAddressEnd || header->total_size > kUserAddressEnd - base) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--base-virtaddr 0x%x: the group's %s would end at 0x%x, past the end of the 47-bit "
        "user address space (0x%x)",
        base, FormatMib(header->total_size), base + header->total_size, kUserAddressEnd));
  }
  if (!ReserveRange(base, header->total_size)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("--base-virtaddr: [0x%x, 0x%x) is taken by %s", base,
                        base + header->total_size, DescribeMappings(base, header->total_size)));
  }
  header->base = base;
  return absl::OkStatus();
}

// Creates segment `seg`'s file with its read lock (held for the process's life),
// reserves its memory and maps it. Returns the open fd.
absl::StatusOr<int> CreateSegment(const SegmentRecord& seg, uint64_t base) {
  const std::string path = seg.path;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "cannot create", path);
  auto fail = [&](absl::Status status) {
    ::close(fd);
    ::unlink(path.c_str());
    return status;
  };
  // Until this lock the file is named and unlocked, but empty and new: cleaners
  // (RemoveUnusedSegmentFile) leave such a file alone, so none takes it for dead.
  if (absl::Status s = TryLock(fd, LockType::kShared); !s.ok()) {
    return fail(absl::Status(s.code(), absl::StrCat(path, ": ", s.message())));
  }
  // A kill from here on leaves a file nobody holds locked: the next primary of the
  // prefix removes it as stale (an empty one once kSegmentCreationGraceSeconds old).
  KillPointForTest("memory.create.segment_locked");
  if (::ftruncate(fd, static_cast<off_t>(seg.size)) != 0) {
    return fail(ErrnoStatus(errno, "cannot size", path));
  }
  if (!seg.hugepages) {
    // A real reservation: running out shows here, not as SIGBUS at first touch.
    if (const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(seg.size)); err != 0) {
      return fail(err == ENOSPC || err == ENOMEM
                      ? absl::ResourceExhaustedError(absl::StrFormat(
                            "cannot reserve %s of shared memory for --no-huge in %s; free "
                            "space there, ask for less (-m) or set KEEL_SHM_DIR",
                            FormatMib(seg.size), DescribeFilesystem(ShmDir())))
                      : ErrnoStatus(err, "cannot reserve memory for", path));
    }
  }
  absl::Status mapped = MapAt(fd, path, base + seg.offset, seg.size);
  if (absl::IsResourceExhausted(mapped) && seg.hugepages) {
    mapped = absl::ResourceExhaustedError(absl::StrFormat(
        "%s: the kernel cannot reserve %d hugepages of %d kB (%d available); reserve "
        "more (tools/setup --hugepages N) or use --no-huge",
        path, seg.size / seg.page_size, seg.page_size / 1024,
        memory::AvailableHugepages(seg.page_size)));
  }
  if (!mapped.ok()) return fail(mapped);
  return fd;
}

absl::StatusOr<State*> CreatePrimary(const eal_internal::InitContext& context) {
  const eal::Options& options = context.options;
  absl::StatusOr<std::vector<Plan>> plan = PlanSockets(options);
  if (!plan.ok()) return plan.status();

  const std::vector<HugeMount> mounts = memory::HugetlbfsMounts();
  std::vector<std::string> segment_dirs = {ShmDir()};
  for (const HugeMount& m : mounts) segment_dirs.push_back(m.path);
  RemoveStaleSegments(segment_dirs, options.file_prefix);
  HugeMount mount{ShmDir(), static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)), ""};
  if (options.no_huge) {
    struct stat st;
    if (::stat(mount.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "--no-huge keeps shared memory in %s, which is not a directory here; mount a tmpfs "
          "there or set KEEL_SHM_DIR",
          mount.path));
    }
  } else {
    absl::StatusOr<HugeMount> chosen = ChooseMount(options, mounts, *plan);
    if (!chosen.ok()) return chosen.status();
    mount = *chosen;
  }

  absl::StatusOr<MemoryHeader> header = PlanLayout(options, *plan, mount.path, mount.page_size);
  if (!header.ok()) return header.status();
  if (absl::Status s = ReserveBase(options, mount.page_size, &*header); !s.ok()) return s;

  auto state = std::make_unique<State>();
  state->base = reinterpret_cast<char*>(header->base);
  state->total_size = header->total_size;
  const std::string config_path = absl::StrCat(context.runtime_dir, "/", kConfigFile);
  std::vector<std::string> created;
  auto fail = [&](absl::Status status) {
    Unmap(state.get());
    for (const std::string& path : created) ::unlink(path.c_str());
    return status;
  };
  const int config_fd = ::open(config_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (config_fd < 0) return fail(ErrnoStatus(errno, "cannot create", config_path));
  created.push_back(config_path);
  state->segment_fds.push_back(config_fd);
  if (::ftruncate(config_fd, static_cast<off_t>(header->config_size)) != 0) {
    return fail(ErrnoStatus(errno, "cannot size", config_path));
  }
  if (absl::Status s = MapAt(config_fd, config_path, header->base, header->config_size); !s.ok()) {
    return fail(s);
  }
  for (uint32_t i = 0; i < header->segment_count; ++i) {
    const SegmentRecord& seg = header->segments[i];
    absl::StatusOr<int> fd = CreateSegment(seg, header->base);
    if (!fd.ok()) return fail(fd.status());
    created.push_back(seg.path);
    state->segment_fds.push_back(*fd);
    if (numa_available() >= 0 && numa_num_configured_nodes() > 1) {
      numa_tonode_memory(reinterpret_cast<void*>(header->base + seg.offset), seg.size, seg.socket);
    }
    if (options.prefault) Prefault(header->base + seg.offset, seg.size, seg.page_size);
  }

  header->checksum = HeaderChecksum(*header);
  MemoryConfig* config = reinterpret_cast<MemoryConfig*>(header->base);
  config->header = *header;
  if (absl::Status s = InitRobustMutex(&config->names_lock, kNamesLockName); !s.ok()) {
    return fail(s);
  }
  for (uint32_t i = 0; i < header->segment_count; ++i) {
    const SegmentRecord& seg = header->segments[i];
    if (absl::Status s =
            HeapInit(&config->heaps[seg.socket], state->base, seg.offset, seg.size, seg.socket);
        !s.ok()) {
      return fail(s);
    }
  }
  state->config = config;
  KEEL_LOG(Info, "memory", "%s of %s at 0x%x in %d segment(s) of %d kB pages in %s%s",
           FormatMib(header->limit_mb << 20), options.no_huge ? "shared memory" : "hugepage memory",
           header->base, header->segment_count, mount.page_size / 1024, mount.path,
           options.prefault ? ", prefaulted" : "");
  return state.release();
}

// Opens segment `seg`, checks it is the file the primary made (size; hugetlbfs when it
// says so), takes its read lock and maps it.
absl::StatusOr<int> AttachSegment(const SegmentRecord& seg, uint64_t base, bool prefault) {
  const std::string path = seg.path;
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus(errno, "cannot open", path);
  auto fail = [fd](absl::Status status) {
    ::close(fd);
    return status;
  };
  struct stat st;
  struct statfs fs;
  if (::fstat(fd, &st) != 0 || ::fstatfs(fd, &fs) != 0) {
    return fail(ErrnoStatus(errno, "cannot stat", path));
  }
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) < seg.size ||
      (seg.hugepages != 0) != (fs.f_type == HUGETLBFS_MAGIC)) {
    return fail(absl::FailedPreconditionError(
        absl::StrFormat("%s is not the segment the primary made (%d bytes, %s)", path, st.st_size,
                        fs.f_type == HUGETLBFS_MAGIC ? "hugetlbfs" : "not hugetlbfs")));
  }
  if (absl::Status s = TryLock(fd, LockType::kShared); !s.ok()) {
    return fail(absl::Status(s.code(), absl::StrCat(path, ": ", s.message())));
  }
  if (absl::Status s = MapAt(fd, path, base + seg.offset, seg.size); !s.ok()) return fail(s);
  if (prefault) Prefault(base + seg.offset, seg.size, seg.page_size);
  return fd;
}

absl::StatusOr<State*> AttachSecondary(const eal_internal::InitContext& context) {
  const std::string& prefix = context.options.file_prefix;
  const std::string config_path = absl::StrCat(context.runtime_dir, "/", kConfigFile);
  const int config_fd = ::open(config_path.c_str(), O_RDWR | O_CLOEXEC);
  if (config_fd < 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the primary of group \"%s\" has no shared memory (%s: %s); is it built without "
        "//memory?",
        prefix, config_path, std::strerror(errno)));
  }
  auto state = std::make_unique<State>();
  state->segment_fds.push_back(config_fd);
  absl::StatusOr<MemoryHeader> read = ReadHeader(config_fd, config_path, prefix);
  if (!read.ok()) {
    Unmap(state.get());
    return read.status();
  }
  const MemoryHeader& header = *read;
  if (!ReserveRange(header.base, header.total_size)) {
    Unmap(state.get());
    return eal_internal::ReexecWithoutAslr(absl::StrFormat(
        "cannot map group \"%s\"'s memory at [0x%x, 0x%x): this process already has %s there "
        "(start the primary with another --base-virtaddr)",
        prefix, header.base, header.base + header.total_size,
        DescribeMappings(header.base, header.total_size)));
  }
  state->base = reinterpret_cast<char*>(header.base);
  state->total_size = header.total_size;
  if (absl::Status s = MapAt(config_fd, config_path, header.base, header.config_size); !s.ok()) {
    Unmap(state.get());
    return s;
  }
  for (uint32_t i = 0; i < header.segment_count; ++i) {
    absl::StatusOr<int> fd =
        AttachSegment(header.segments[i], header.base, context.options.prefault);
    if (!fd.ok()) {
      Unmap(state.get());
      return fd.status();
    }
    state->segment_fds.push_back(*fd);
  }
  state->config = reinterpret_cast<MemoryConfig*>(header.base);
  return state.release();
}

absl::Status InitMemory(const eal_internal::InitContext& context) {
  // An adopting primary maps the group's memory as a secondary does, at the same
  // address; the heaps' and the registry's locks are robust, so whatever the dead
  // primary left mid-update is repaired by the next process that takes them. It then
  // owns the files: it removes them when it ends the group.
  const bool create = context.type == ProcessType::kPrimary && !context.adopting;
  absl::StatusOr<State*> state = create ? CreatePrimary(context) : AttachSecondary(context);
  if (!state.ok()) return state.status();
  g_state = *state;
  g_state->runtime_dir = context.runtime_dir;
  return absl::OkStatus();
}

void CleanupMemory(ProcessType, bool ends_group) {
  if (g_state == nullptr) return;
  // Only a primary ends the group: it owns the files (an adopter too).
  if (ends_group) UnlinkFiles(g_state->config, g_state->runtime_dir);
  Unmap(g_state);
  delete g_state;
  g_state = nullptr;
}

const eal_internal::ComponentRegistrar kRegistrar({"memory", memory::kVersion, kLayoutVersion,
                                                   /*init_order=*/10, InitMemory, CleanupMemory});

}  // namespace

uint64_t HeaderChecksum(MemoryHeader header) {
  header.checksum = 0;
  return Fnv1a64(&header, sizeof(header));
}

absl::Status ValidateHeader(const MemoryHeader& h, const std::string& path,
                            absl::string_view prefix) {
  auto bad = [&](const std::string& what) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is damaged (%s); stop the group's processes and start it again", path, what));
  };
  if (h.checksum != HeaderChecksum(h)) {
    return bad("its header checksum does not match: it was changed after the primary wrote it");
  }
  if (h.segment_count == 0 || h.segment_count > kMaxSegments) {
    return bad(absl::StrFormat("%u segments", h.segment_count));
  }
  if (h.base == 0 || h.base % 4096 != 0 || h.base >= kUserAddressEnd ||
      h.total_size > kUserAddressEnd - h.base) {
    return bad(absl::StrFormat("range 0x%x + 0x%x", h.base, h.total_size));
  }
  if (h.config_size != RoundUp(sizeof(MemoryConfig), 4096)) {
    return bad(absl::StrFormat("config size %u", h.config_size));
  }
  uint64_t end = h.config_size;
  for (uint32_t i = 0; i < h.segment_count; ++i) {
    const SegmentRecord& seg = h.segments[i];
    if (!IsPowerOfTwo(seg.page_size) || seg.page_size < 4096 || seg.size == 0 ||
        seg.offset % seg.page_size != 0 || seg.size % seg.page_size != 0 || seg.offset < end ||
        seg.offset > h.total_size || seg.size > h.total_size - seg.offset || seg.socket < 0 ||
        seg.socket >= kMaxSockets) {
      return bad(absl::StrFormat("segment %u: offset 0x%x size 0x%x page size %u socket %d", i,
                                 seg.offset, seg.size, seg.page_size, seg.socket));
    }
    end = seg.offset + seg.size;
    const absl::string_view seg_path = NameOf(seg.path);
    const size_t slash = seg_path.rfind('/');
    if (seg_path.size() == sizeof(seg.path) || slash == absl::string_view::npos ||
        seg_path.substr(slash + 1) != memory::SegmentFileName(prefix, h.group_id, i)) {
      return bad(absl::StrFormat("segment %u is \"%s\", not this group's segment file", i,
                                 Printable(seg_path)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<MemoryHeader> ReadHeader(int fd, const std::string& path, absl::string_view prefix) {
  MemoryHeader header;
  struct stat st;
  const ssize_t n = ::pread(fd, &header, sizeof(header), 0);
  if (n != static_cast<ssize_t>(sizeof(header)) || header.magic != kMemoryMagic ||
      ::fstat(fd, &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s is not a keel memory config (%d bytes read, magic %s)", path, n,
                        n >= 8 ? absl::StrFormat("0x%016x", header.magic) : "missing"));
  }
  if (header.layout_version != kLayoutVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "component \"memory\": group \"%s\" uses shared-layout version %u, this process has "
        "layout version %u",
        prefix, header.layout_version, kLayoutVersion));
  }
  if (absl::Status valid = ValidateHeader(header, path, prefix); !valid.ok()) return valid;
  if (static_cast<uint64_t>(st.st_size) != header.config_size) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is damaged (%d bytes, the header says %d)", path, st.st_size, header.config_size));
  }
  return header;
}

State* CurrentState() { return g_state; }

}  // namespace keel::memory_internal
