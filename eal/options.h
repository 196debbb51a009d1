// EAL command-line options: DPDK's spelling and meaning, parsed into keel::eal::Options.
//
// eal::Init() calls ParseOptions() itself; it is public so tools and tests can parse
// (and then adjust) options before calling Init(const Options&).
//
//   std::vector<std::string> args = {"-l", "0-1", "--file-prefix", "demo", "--", "-x"};
//   absl::StatusOr<keel::eal::Options> opts = keel::eal::ParseOptions(args);
//   // opts->lcores == {0: {0}, 1: {1}}, opts->app_args == {"-x"}
#ifndef KEEL_EAL_OPTIONS_H_
#define KEEL_EAL_OPTIONS_H_

#include <bitset>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/log.h"

namespace keel::eal {

// lcore ids are 0..kMaxLcores-1 (DPDK's RTE_MAX_LCORE); CPU ids are 0..kMaxCpus-1.
inline constexpr unsigned kMaxLcores = 128;
inline constexpr unsigned kMaxCpus = 1024;
using CpuSet = std::bitset<kMaxCpus>;

enum class ProcessType { kPrimary, kSecondary, kAuto };
absl::string_view ProcessTypeName(ProcessType type);  // "primary", "secondary", "auto"

// What option validation needs to know of the machine. Tests pass their own.
struct MachineInfo {
  CpuSet present_cpus;   // /sys/devices/system/cpu/present
  CpuSet affinity;       // the calling thread's CPU affinity
  int numa_nodes = 1;    // libnuma's configured node count
  static MachineInfo Current();
};

struct Options {
  // lcore id -> the CPUs its thread may run on. Filled from -l, -c or --lcores, or from
  // the calling thread's affinity (lcore N on CPU N) when none is given.
  std::map<unsigned, CpuSet> lcores;
  unsigned main_lcore = 0;                          // --main-lcore; default lowest lcore
  ProcessType proc_type = ProcessType::kPrimary;   // --proc-type
  std::string file_prefix = "keel";                // --file-prefix
  uint64_t memory_mb = 0;                          // -m; 0 = not given
  std::vector<uint64_t> socket_mem_mb;             // --socket-mem, per NUMA node
  std::vector<uint64_t> socket_limit_mb;           // --socket-limit, per NUMA node
  std::string huge_dir;                            // --huge-dir; empty = not given
  bool no_huge = false;                            // --no-huge
  bool prefault = false;                           // --prefault: touch every page at init
  uint64_t base_virtaddr = 0;                      // --base-virtaddr; 0 = not given
  unsigned memory_channels = 0;                    // -n; 0 = not given
  // --log-level, in command-line order; an empty component means the global level.
  std::vector<std::pair<std::string, log::Level>> log_levels;
  bool log_timestamp = false;                      // --log-timestamp
  absl::Duration attach_timeout = absl::Seconds(5);  // --attach-timeout SECONDS
  bool help = false;                               // -h, --help
  bool print_version = false;                      // -v
  // Set by tools (procinfo) that attach as a secondary without taking any lcore; not a
  // command-line option.
  bool claim_lcores = true;
  std::vector<std::string> app_args;               // everything after "--"
};

// Parses EAL arguments (argv without the program name). Stops at "--"; what follows
// goes to Options::app_args. InvalidArgument names the flag and the value on any
// invalid value or combination. Thread-safe; reads nothing but `machine`, except that
// --huge-dir is checked to be an existing directory.
absl::StatusOr<Options> ParseOptions(absl::Span<const std::string> args,
                                     const MachineInfo& machine);
absl::StatusOr<Options> ParseOptions(absl::Span<const std::string> args);

// The usage text printed by -h.
std::string Usage(absl::string_view program);

// "0-3,8,10-11".
std::string FormatCpuSet(const CpuSet& cpus);

}  // namespace keel::eal

#endif  // KEEL_EAL_OPTIONS_H_
