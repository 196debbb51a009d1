// What keel's benchmarks that run DPDK beside keel share (a benchmark dependency only):
// memory for the measured structures and DPDK's EAL, set up alike for both sides.
//
//   std::string how;
//   void* mem = keel::bench::MapBenchMemory(bytes, &how);   // 2 MiB pages if possible
//   if (!keel::bench::InitDpdkEal({.lcores = "0", .hugepages = 64}, &how)) return 1;
//   ...
//   keel::bench::UnmapBenchMemory();
#ifndef KEEL_TOOLS_BENCH_DPDK_PEER_H_
#define KEEL_TOOLS_BENCH_DPDK_PEER_H_

#include <cstddef>
#include <string>

namespace keel::bench {

inline constexpr size_t kHugePage = size_t{2} << 20;

// `bytes` of zeroed memory: 2 MiB hugetlb pages when the machine has them free, else
// ordinary pages aligned on 2 MiB with transparent hugepages asked for (madvise). *how
// says which. nullptr when even the ordinary mmap fails. Not thread-safe.
void* MapBenchMemory(size_t bytes, std::string* how);
// Unmaps everything MapBenchMemory returned.
void UnmapBenchMemory();

struct DpdkEal {
  const char* lcores = "0";      // -l
  long hugepages = 64;           // 2 MiB pages wanted (-m hugepages * 2)
  const char* prefix = "bench";  // --file-prefix PREFIX-PID
  // A DPDK group that secondaries join (multi-process benchmarks): --file-prefix PREFIX
  // as given, hugepage files kept (secondaries map them; the primary's
  // rte_eal_cleanup removes them), hugepages required.
  bool multi_process = false;
  bool secondary = false;  // with multi_process: --proc-type=secondary, no -m
};
// rte_eal_init with --no-pci --no-telemetry --log-level=error, on 2 MiB hugepages (their
// files unlinked at once) when `eal.hugepages` of them are free, else --no-huge with twice
// the memory. *how says which; false (with the reason on stderr) when init fails.
bool InitDpdkEal(const DpdkEal& eal, std::string* how);
// rte_eal_cleanup, then (a primary's: the group is over) the EAL's runtime directory,
// which DPDK leaves behind (/var/run/dpdk/PREFIX as root).
void CleanupDpdkEal();

// benchmark::Initialize with keel's defaults before the command line's flags (which
// override them): cases and repetitions interleaved at random, so a slow spell of the
// machine does not fall on one case or one side only, and three runs of each, for a
// median and the spread. False after printing an unrecognized flag.
bool InitBenchmark(int argc, char** argv);

}  // namespace keel::bench

#endif  // KEEL_TOOLS_BENCH_DPDK_PEER_H_
