// EAL command-line options: DPDK's spelling and meaning, parsed into keel::eal::Options.
//
// eal::Init() calls ParseOptions() itself; it is public so tools and tests can parse
// (and then adjust) options before calling Init(const Options&). Every way in runs the
// same rules: ParseOptions ends with ValidateOptions(), and Init(const Options&) runs it
// before touching anything, so Options built or changed in code are held to exactly what
// the command line is.
//
//   std::vector<std::string> args = {"-l", "0-1", "--file-prefix", "demo", "--", "-x"};
//   absl::StatusOr<keel::eal::Options> opts = keel::eal::ParseOptions(args);
//   // opts->lcores == {0: {0}, 1: {1}}, opts->app_args == {"-x"}
//   opts->file_prefix = "demo2";
//   absl::Status valid = keel::eal::ValidateOptions(*opts, keel::eal::MachineInfo::Current());
#ifndef KEEL_EAL_OPTIONS_H_
#define KEEL_EAL_OPTIONS_H_

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
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

// Limits of the other options (ValidateOptions refuses values beyond them).
inline constexpr uint64_t kMaxMemoryMb = uint64_t{1} << 27;      // 128 TiB: the 47-bit user space
inline constexpr unsigned kMaxMemoryChannels = 32;               // -n
inline constexpr uint64_t kMaxBaseVirtaddr = uint64_t{1} << 47;  // --base-virtaddr, exclusive
inline constexpr size_t kMaxFilePrefixLength = 64;
inline constexpr absl::Duration kMaxAttachTimeout = absl::Hours(1);

enum class ProcessType { kPrimary, kSecondary, kAuto };
absl::string_view ProcessTypeName(ProcessType type);  // "primary", "secondary", "auto"

// --timer-source: the clock behind keel::timer::Cycles() for the whole group (the
// primary chooses; see timer/README.md). kAuto: the HPET when /dev/hpet opens and maps,
// else the TSC.
enum class TimerSource { kAuto, kTsc, kHpet };
absl::string_view TimerSourceName(TimerSource source);  // "auto", "tsc", "hpet"

// What option validation needs to know of the machine. Tests pass their own.
struct MachineInfo {
  CpuSet present_cpus;  // /sys/devices/system/cpu/present
  CpuSet affinity;      // the calling thread's CPU affinity
  int numa_nodes = 1;   // libnuma's configured node count
  static MachineInfo Current();
};

// Every field holds what ValidateOptions() accepts; "not given" values are noted.
struct Options {
  // lcore id -> the CPUs its thread may run on. Filled from -l, -c or --lcores, or from
  // the calling thread's affinity (lcore N on CPU N) when none is given. Never empty;
  // ids < kMaxLcores; each lcore has at least one CPU, and every CPU is present.
  std::map<unsigned, CpuSet> lcores;
  unsigned main_lcore = 0;                        // --main-lcore; one of `lcores`
  ProcessType proc_type = ProcessType::kPrimary;  // --proc-type
  // --adopt: a primary (or kAuto) whose prefix has a group whose primary died while
  // processes of it still run takes that group over instead of refusing; kAuto does so
  // unasked. Not with kSecondary.
  bool adopt = false;
  // --takeover: a primary (or kAuto) whose prefix has a running primary asks it to hand
  // the group over (planned upgrade), waits for that (bounded by attach_timeout), then
  // adopts the group. Without a running primary it acts as --adopt. Not with kSecondary.
  bool takeover = false;
  // --file-prefix: one directory name under the runtime base, [A-Za-z0-9_.-], 1 to
  // kMaxFilePrefixLength characters, not "." or "..".
  std::string file_prefix = "keel";
  uint64_t memory_mb = 0;  // -m; 0 = not given; <= kMaxMemoryMb
  // --socket-mem, per NUMA node (at most one entry per node, each <= kMaxMemoryMb). 0 on a
  // node = no memory there, but at least one node must get some. Empty = not given.
  std::vector<uint64_t> socket_mem_mb;
  // --socket-limit, per NUMA node, as --socket-mem. 0 on a node = no limit there (DPDK's
  // meaning). Empty = not given.
  std::vector<uint64_t> socket_limit_mb;
  std::string huge_dir;   // --huge-dir; empty = not given
  bool no_huge = false;   // --no-huge
  bool prefault = false;  // --prefault: touch every page at init
  // --base-virtaddr; 0 = not given; 4 KiB aligned, below kMaxBaseVirtaddr.
  uint64_t base_virtaddr = 0;
  unsigned memory_channels = 0;  // -n; 0 = not given; <= kMaxMemoryChannels
  // --log-level, in command-line order; an empty component means the global level, any
  // other is [A-Za-z0-9_.]+.
  std::vector<std::pair<std::string, log::Level>> log_levels;
  bool log_timestamp = false;  // --log-timestamp
  // --attach-timeout SECONDS: in (0, kMaxAttachTimeout].
  absl::Duration attach_timeout = absl::Seconds(5);
  // --timer-source tsc|hpet|auto. A primary resolves it; a secondary follows the group
  // with kAuto and is refused (by //timer's init) when it names another source.
  TimerSource timer_source = TimerSource::kAuto;
  // --no-telemetry: no telemetry socket for this process (--telemetry, DPDK's default,
  // is accepted too). Read by //telemetry.
  bool telemetry = true;
  bool help = false;           // -h, --help
  bool print_version = false;  // -v
  // Set by tools (procinfo) that attach as a secondary without taking any lcore; not a
  // command-line option. `lcores` and `main_lcore` must still be valid.
  bool claim_lcores = true;
  std::vector<std::string> app_args;  // everything after "--"
};

// Parses EAL arguments (argv without the program name). Stops at "--"; what follows
// goes to Options::app_args. Ends with ValidateOptions(). InvalidArgument names the flag
// and the value on any invalid value or combination. Thread-safe; reads nothing but
// `machine`, except that --huge-dir is checked to be an existing directory.
absl::StatusOr<Options> ParseOptions(absl::Span<const std::string> args,
                                     const MachineInfo& machine);
absl::StatusOr<Options> ParseOptions(absl::Span<const std::string> args);

// The rules every Options must meet, however it was made (see the field comments): the
// ones ParseOptions applies, for Options built or changed in code. InvalidArgument
// names the command-line flag of the field and its value, e.g.
//   --file-prefix "a/../b": may only contain letters, digits, '_', '.' and '-'
// Thread-safe; never throws; reads nothing but `machine`, except that a non-empty
// huge_dir is checked to be an existing directory (stat).
absl::Status ValidateOptions(const Options& options, const MachineInfo& machine);

// The usage text printed by -h.
std::string Usage(absl::string_view program);

// "0-3,8,10-11".
std::string FormatCpuSet(const CpuSet& cpus);

}  // namespace keel::eal

#endif  // KEEL_EAL_OPTIONS_H_
