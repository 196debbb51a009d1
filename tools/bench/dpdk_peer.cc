#include "tools/bench/dpdk_peer.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"

namespace keel::bench {
namespace {

struct Mapping {
  void* p = nullptr;
  size_t bytes = 0;
};
std::vector<Mapping>& Mappings() {
  static auto* mappings = new std::vector<Mapping>;
  return *mappings;
}

// The mount point of a hugetlbfs of 2 MiB pages, or "".
std::string HugeDir2M() {
  std::ifstream mounts("/proc/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string dev, dir, type, options;
    fields >> dev >> dir >> type >> options;
    if (type != "hugetlbfs") continue;
    if (options.find("pagesize=2M") != std::string::npos ||
        options.find("pagesize=") == std::string::npos) {
      return dir;
    }
  }
  return "";
}

long ReadLong(const char* path) {
  std::ifstream f(path);
  long v = -1;
  f >> v;
  return v;
}

}  // namespace

void* MapBenchMemory(size_t bytes, std::string* how) {
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), -1, 0);
  if (p != MAP_FAILED) {
    *how = "MAP_HUGETLB, 2 MiB pages";
    Mappings().push_back({p, rounded});
    return p;
  }
  const int hugetlb_errno = errno;
  // Over-map by a page to align on 2 MiB, so THP can back all of it.
  const size_t over = rounded + kHugePage;
  void* q = mmap(nullptr, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (q == MAP_FAILED) return nullptr;
  Mappings().push_back({q, over});
  char* aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(q) + kHugePage - 1) /
                                          kHugePage * kHugePage);
  const bool thp = madvise(aligned, rounded, MADV_HUGEPAGE) == 0;
  *how = absl::StrFormat("no hugetlb pages (mmap MAP_HUGETLB: %s); ordinary pages, %s",
                         std::strerror(hugetlb_errno),
                         thp ? "madvise(MADV_HUGEPAGE) for THP" : "madvise(MADV_HUGEPAGE) failed");
  return aligned;
}

void UnmapBenchMemory() {
  for (const Mapping& m : Mappings()) munmap(m.p, m.bytes);
  Mappings().clear();
}

bool InitDpdkEal(const DpdkEal& eal, std::string* how) {
  const std::string huge_dir = HugeDir2M();
  const long free_pages = ReadLong("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  const long resv_pages = ReadLong("/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages");
  const bool huge = !huge_dir.empty() && free_pages - resv_pages >= eal.hugepages;
  std::vector<std::string> args = {
      "bench",          "-l",
      eal.lcores,       "--no-pci",
      "--no-telemetry", "--log-level=error",
      "--file-prefix",  eal.multi_process ? eal.prefix : absl::StrCat(eal.prefix, "-", getpid())};
  const std::string huge_mb = absl::StrCat(eal.hugepages * 2);
  const std::string plain_mb = absl::StrCat(eal.hugepages * 4);
  if (eal.multi_process) {
    if (huge_dir.empty()) {
      std::fprintf(stderr, "DPDK multi-process needs a 2 MiB hugetlbfs mount; none is mounted\n");
      return false;
    }
    args.insert(args.end(), {"--huge-dir", huge_dir});
    if (eal.secondary) {
      args.push_back("--proc-type=secondary");
      *how = absl::StrFormat("EAL secondary on 2 MiB hugepages in %s", huge_dir);
    } else {
      args.insert(args.end(), {"--proc-type=primary", "-m", huge_mb});
      *how = absl::StrFormat("EAL primary on 2 MiB hugepages in %s, -m %s", huge_dir, huge_mb);
    }
  } else if (huge) {
    args.insert(args.end(), {"-m", huge_mb, "--huge-dir", huge_dir, "--huge-unlink=always"});
    *how = absl::StrFormat("EAL on 2 MiB hugepages in %s, -m %s", huge_dir, huge_mb);
  } else {
    args.insert(args.end(), {"--no-huge", "-m", plain_mb});
    *how = absl::StrFormat(
        "EAL --no-huge -m %s, 4 KiB pages (2 MiB hugetlbfs: %s, %ld free unreserved pages, "
        "%ld needed)",
        plain_mb, huge_dir.empty() ? "not mounted" : huge_dir, free_pages - resv_pages,
        eal.hugepages);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
    std::fprintf(stderr, "rte_eal_init (%s) failed: %s\n", how->c_str(), rte_strerror(rte_errno));
    return false;
  }
  return true;
}

void CleanupDpdkEal() {
  const std::string dir = rte_eal_get_runtime_dir();
  const bool primary = rte_eal_process_type() == RTE_PROC_PRIMARY;
  rte_eal_cleanup();
  std::error_code ignored;
  if (primary && !dir.empty()) std::filesystem::remove_all(dir, ignored);
}

bool InitBenchmark(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  static char repetitions[] = "--benchmark_repetitions=3";
  args.insert(args.begin() + 1, {interleave, repetitions});
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  return !benchmark::ReportUnrecognizedArguments(count, args.data());
}

}  // namespace keel::bench
