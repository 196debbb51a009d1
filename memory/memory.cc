// Control path: setting up the group's memory in the primary, mapping it in
// secondaries, and taking it down. Runs inside eal::Init / eal::Cleanup.
#include <fcntl.h>
#include <linux/magic.h>
#include <numa.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <memory>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "base/units.h"
#include "eal/eal.h"
#include "eal/internal/components.h"
#include "base/robust_mutex.h"
#include "memory/internal/layout.h"
#include "memory/internal/state.h"
#include "memory/memory.h"

namespace keel::memory_internal {
namespace {

using eal::ProcessType;

// Far from where Linux puts mmap() areas (0x7f...) and PIE executables (0x55...), and
// 1 GiB aligned. A primary that finds it taken tries the next TiB.
constexpr uint64_t kDefaultBase = 0x100000000000ULL;
constexpr uint64_t kBaseStep = 1ULL << 40;
constexpr int kBaseCandidates = 16;
constexpr uint64_t kDefaultMemoryMb = 256;
constexpr char kConfigFile[] = "memory";

State* g_state = nullptr;

struct HugeMount {
  std::string path;
  uint64_t page_size;
};

std::vector<HugeMount> HugetlbfsMounts() {
  std::vector<HugeMount> mounts;
  std::ifstream in("/proc/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 3 || fields[2] != "hugetlbfs") continue;
    struct statfs fs;
    if (::statfs(fields[1].c_str(), &fs) != 0) continue;
    mounts.push_back({fields[1], static_cast<uint64_t>(fs.f_bsize)});
  }
  return mounts;
}

uint64_t ReadSysfsNumber(const std::string& path) {
  std::ifstream in(path);
  uint64_t value = 0;
  in >> value;
  return value;
}

// Hugepages of `page_size` not yet promised to anyone.
uint64_t AvailableHugepages(uint64_t page_size) {
  const std::string dir =
      absl::StrFormat("/sys/kernel/mm/hugepages/hugepages-%dkB/", page_size / 1024);
  const uint64_t free_pages = ReadSysfsNumber(dir + "free_hugepages");
  const uint64_t reserved = ReadSysfsNumber(dir + "resv_hugepages");
  return free_pages > reserved ? free_pages - reserved : 0;
}

std::string SegmentFileName(absl::string_view prefix, int index) {
  return absl::StrCat("keel.", prefix, ".seg", index);
}

// True for exactly the names SegmentFileName(prefix, N) makes, never another prefix's.
bool IsSegmentFileOf(absl::string_view name, absl::string_view prefix) {
  const std::string head = absl::StrCat("keel.", prefix, ".seg");
  if (!absl::StartsWith(name, head) || name.size() == head.size()) return false;
  const absl::string_view digits = name.substr(head.size());
  return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The primary lock is held and no process of a previous group of this prefix runs (the
// EAL checked): hugepage files of this prefix are stale.
void RemoveStaleSegments(const std::vector<HugeMount>& mounts, absl::string_view prefix) {
  for (const HugeMount& mount : mounts) {
    DIR* dir = ::opendir(mount.path.c_str());
    if (dir == nullptr) continue;
    while (struct dirent* entry = ::readdir(dir)) {
      if (!IsSegmentFileOf(entry->d_name, prefix)) continue;
      const std::string path = absl::StrCat(mount.path, "/", entry->d_name);
      if (::unlink(path.c_str()) == 0) {
        KEEL_LOG(Notice, "memory", "removed stale hugepage file %s", path);
      }
    }
    ::closedir(dir);
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
      found.push_back(absl::StrFormat("0x%x-0x%x %s", lo, hi,
                                      fields.size() >= 6 ? fields[5] : "[anonymous]"));
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

// Maps `path` (length `len`) over our reservation at `addr`.
absl::Status MapFileAt(const std::string& path, int open_flags, uint64_t addr, uint64_t len,
                       bool create) {
  const int fd = ::open(path.c_str(), open_flags | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, create ? "cannot create" : "cannot open", path);
  if (create && ::ftruncate(fd, static_cast<off_t>(len)) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "cannot size", path);
  }
  // For hugetlbfs, a shared mapping reserves its hugepages here: a shortage fails now
  // with ENOMEM instead of SIGBUS on first touch. Nothing is touched or zeroed.
  void* got = ::mmap(reinterpret_cast<void*>(addr), len, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (got == MAP_FAILED) return ErrnoStatus(err, "cannot map", path);
  return absl::OkStatus();
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
    const eal::CpuSet& cpus = options.lcores.at(options.main_lcore);
    for (unsigned cpu = 0; cpu < eal::kMaxCpus; ++cpu) {
      if (cpus.test(cpu)) {
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
      return absl::InvalidArgumentError(absl::StrFormat(
          "--huge-dir \"%s\": not a hugetlbfs mount", options.huge_dir));
    }
    return HugeMount{options.huge_dir, static_cast<uint64_t>(fs.f_bsize)};
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
    const uint64_t available = AvailableHugepages(m.page_size);
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
}

void UnlinkFiles(const MemoryConfig* config, const std::string& runtime_dir) {
  for (uint32_t i = 0; i < config->header.segment_count && i < kMaxSegments; ++i) {
    ::unlink(config->header.segments[i].path);
  }
  ::unlink(absl::StrCat(runtime_dir, "/", kConfigFile).c_str());
}

absl::StatusOr<State*> CreatePrimary(const eal_internal::InitContext& context) {
  const eal::Options& options = context.options;
  absl::StatusOr<std::vector<Plan>> plan = PlanSockets(options);
  if (!plan.ok()) return plan.status();

  const std::vector<HugeMount> mounts = HugetlbfsMounts();
  RemoveStaleSegments(mounts, options.file_prefix);
  HugeMount mount{context.runtime_dir, static_cast<uint64_t>(::sysconf(_SC_PAGESIZE))};
  if (!options.no_huge) {
    absl::StatusOr<HugeMount> chosen = ChooseMount(options, mounts, *plan);
    if (!chosen.ok()) return chosen.status();
    mount = *chosen;
  }

  // Lay out the range: config first, then one segment per socket, each page aligned.
  MemoryHeader header = {};
  header.magic = kMemoryMagic;
  header.layout_version = kLayoutVersion;
  header.config_size = RoundUp(sizeof(MemoryConfig), 4096);
  uint64_t offset = RoundUp(header.config_size, mount.page_size);
  for (const Plan& p : *plan) {
    SegmentRecord& seg = header.segments[header.segment_count];
    const std::string path =
        options.no_huge ? absl::StrCat(context.runtime_dir, "/seg", header.segment_count)
                        : absl::StrCat(mount.path, "/",
                                       SegmentFileName(options.file_prefix, header.segment_count));
    if (path.size() >= sizeof(seg.path)) {
      return absl::InvalidArgumentError(absl::StrFormat("segment path %s is too long", path));
    }
    absl::SNPrintF(seg.path, sizeof(seg.path), "%s", path);
    seg.offset = offset;
    seg.size = RoundUp(p.bytes, mount.page_size);
    seg.page_size = mount.page_size;
    seg.socket = p.socket;
    seg.hugepages = options.no_huge ? 0 : 1;
    header.limit_mb += p.bytes >> 20;
    offset += seg.size;
    ++header.segment_count;
  }
  header.total_size = offset;

  // Reserve the range.
  if (options.base_virtaddr != 0) {
    if (options.base_virtaddr % mount.page_size != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--base-virtaddr 0x%x is not aligned to the %d kB page size", options.base_virtaddr,
          mount.page_size / 1024));
    }
    if (!ReserveRange(options.base_virtaddr, header.total_size)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "--base-virtaddr: [0x%x, 0x%x) is taken by %s", options.base_virtaddr,
          options.base_virtaddr + header.total_size,
          DescribeMappings(options.base_virtaddr, header.total_size)));
    }
    header.base = options.base_virtaddr;
  } else {
    for (int i = 0; i < kBaseCandidates && header.base == 0; ++i) {
      const uint64_t candidate = kDefaultBase + i * kBaseStep;
      if (ReserveRange(candidate, header.total_size)) header.base = candidate;
    }
    if (header.base == 0) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "no free address range of %s from 0x%x on; pass --base-virtaddr",
          FormatMib(header.total_size), kDefaultBase));
    }
  }

  auto state = std::make_unique<State>();
  state->base = reinterpret_cast<char*>(header.base);
  state->total_size = header.total_size;
  state->primary = true;
  const std::string config_path = absl::StrCat(context.runtime_dir, "/", kConfigFile);
  std::vector<std::string> created;
  auto fail = [&](absl::Status status) {
    Unmap(state.get());
    for (const std::string& path : created) ::unlink(path.c_str());
    return status;
  };
  if (absl::Status s = MapFileAt(config_path, O_RDWR | O_CREAT | O_EXCL, header.base,
                                 header.config_size, /*create=*/true);
      !s.ok()) {
    return fail(s);
  }
  created.push_back(config_path);
  for (uint32_t i = 0; i < header.segment_count; ++i) {
    const SegmentRecord& seg = header.segments[i];
    absl::Status s = MapFileAt(seg.path, O_RDWR | O_CREAT | O_EXCL, header.base + seg.offset,
                               seg.size, /*create=*/true);
    if (s.ok() || absl::IsAlreadyExists(s)) created.push_back(seg.path);
    if (absl::IsResourceExhausted(s) && seg.hugepages) {
      s = absl::ResourceExhaustedError(absl::StrFormat(
          "%s: the kernel cannot reserve %d hugepages of %d kB (%d available); reserve "
          "more (tools/setup --hugepages N) or use --no-huge",
          seg.path, seg.size / seg.page_size, seg.page_size / 1024,
          AvailableHugepages(seg.page_size)));
    }
    if (!s.ok()) return fail(s);
    if (numa_available() >= 0 && numa_num_configured_nodes() > 1) {
      numa_tonode_memory(reinterpret_cast<void*>(header.base + seg.offset), seg.size, seg.socket);
    }
  }

  MemoryConfig* config = reinterpret_cast<MemoryConfig*>(header.base);
  config->header = header;
  InitRobustMutex(&config->names_lock);
  for (uint32_t i = 0; i < header.segment_count; ++i) {
    const SegmentRecord& seg = header.segments[i];
    HeapInit(&config->heaps[seg.socket], state->base, seg.offset, seg.size, seg.socket);
  }
  state->config = config;
  KEEL_LOG(Info, "memory", "%s of %s at 0x%x in %d segment(s) of %d kB pages",
           FormatMib(header.limit_mb << 20), options.no_huge ? "shared memory" : "hugepage memory",
           header.base, header.segment_count, mount.page_size / 1024);
  return state.release();
}

absl::StatusOr<State*> AttachSecondary(const eal_internal::InitContext& context) {
  const std::string config_path = absl::StrCat(context.runtime_dir, "/", kConfigFile);
  const int fd = ::open(config_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the primary of group \"%s\" has no shared memory (%s: %s); is it built without "
        "//memory?",
        context.options.file_prefix, config_path, std::strerror(errno)));
  }
  MemoryHeader header;
  const ssize_t n = ::pread(fd, &header, sizeof(header), 0);
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof(header)) || header.magic != kMemoryMagic) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s is not a keel memory config", config_path));
  }
  if (header.layout_version != kLayoutVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "component \"memory\": group \"%s\" uses shared-layout version %u, this process has "
        "layout version %u",
        context.options.file_prefix, header.layout_version, kLayoutVersion));
  }
  if (!ReserveRange(header.base, header.total_size)) {
    return eal_internal::ReexecWithoutAslr(absl::StrFormat(
        "cannot map group \"%s\"'s memory at [0x%x, 0x%x): this process already has %s there "
        "(start the primary with another --base-virtaddr)",
        context.options.file_prefix, header.base, header.base + header.total_size,
        DescribeMappings(header.base, header.total_size)));
  }
  auto state = std::make_unique<State>();
  state->base = reinterpret_cast<char*>(header.base);
  state->total_size = header.total_size;
  if (absl::Status s = MapFileAt(config_path, O_RDWR, header.base, header.config_size, false);
      !s.ok()) {
    Unmap(state.get());
    return s;
  }
  for (uint32_t i = 0; i < header.segment_count && i < kMaxSegments; ++i) {
    const SegmentRecord& seg = header.segments[i];
    if (absl::Status s = MapFileAt(seg.path, O_RDWR, header.base + seg.offset, seg.size, false);
        !s.ok()) {
      Unmap(state.get());
      return s;
    }
  }
  state->config = reinterpret_cast<MemoryConfig*>(header.base);
  return state.release();
}

absl::Status InitMemory(const eal_internal::InitContext& context) {
  absl::StatusOr<State*> state = context.type == ProcessType::kPrimary
                                     ? CreatePrimary(context)
                                     : AttachSecondary(context);
  if (!state.ok()) return state.status();
  g_state = *state;
  g_state->runtime_dir = context.runtime_dir;
  return absl::OkStatus();
}

void CleanupMemory(ProcessType type) {
  if (g_state == nullptr) return;
  if (g_state->primary) UnlinkFiles(g_state->config, g_state->runtime_dir);
  Unmap(g_state);
  delete g_state;
  g_state = nullptr;
}

const eal_internal::ComponentRegistrar kRegistrar({"memory", memory::kVersion, kLayoutVersion,
                                                   /*init_order=*/10, InitMemory,
                                                   CleanupMemory});

}  // namespace

State* CurrentState() { return g_state; }

}  // namespace keel::memory_internal
