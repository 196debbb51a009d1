#include "eal/options.h"

#include <numa.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace keel::eal {
namespace {

absl::Status BadValue(absl::string_view flag, absl::string_view value,
                      absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrFormat("%s \"%s\": %s", flag, value, why));
}

// Strict unsigned decimal: digits only, no sign, no spaces, value <= max.
bool ParseDecimal(absl::string_view text, uint64_t max, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (!absl::ascii_isdigit(c)) return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) return false;
    value = value * 10 + digit;
  }
  *out = value;
  return true;
}

// "1-3,5" -> {1,2,3,5}. Every id must be < limit. `what` names an id in messages
// ("lcore", "CPU").
absl::StatusOr<std::vector<unsigned>> ParseIdList(absl::string_view flag,
                                                  absl::string_view value,
                                                  absl::string_view list, unsigned limit,
                                                  absl::string_view what) {
  std::vector<unsigned> ids;
  if (list.empty()) return BadValue(flag, value, "empty list");
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    if (item.empty()) return BadValue(flag, value, "empty list element");
    std::vector<absl::string_view> ends = absl::StrSplit(item, '-');
    if (ends.size() > 2) {
      return BadValue(flag, value, absl::StrCat("\"", item, "\" is not N or N-M"));
    }
    uint64_t lo = 0;
    uint64_t hi = 0;
    if (!ParseDecimal(ends[0], UINT32_MAX, &lo)) {
      return BadValue(flag, value,
                      absl::StrCat("\"", ends[0], "\" is not a non-negative ", what, " id"));
    }
    hi = lo;
    if (ends.size() == 2 && !ParseDecimal(ends[1], UINT32_MAX, &hi)) {
      return BadValue(flag, value,
                      absl::StrCat("range \"", item, "\" does not end in a ", what, " id"));
    }
    if (lo > hi) {
      return BadValue(flag, value, absl::StrCat("range \"", item, "\" is descending"));
    }
    if (hi >= limit) {
      return BadValue(flag, value,
                      absl::StrFormat("%s %d is out of range (max %d)", what, hi, limit - 1));
    }
    for (uint64_t id = lo; id <= hi; ++id) ids.push_back(static_cast<unsigned>(id));
  }
  return ids;
}

absl::Status CheckPresent(absl::string_view flag, absl::string_view value,
                          const CpuSet& cpus, const MachineInfo& machine) {
  const CpuSet missing = cpus & ~machine.present_cpus;
  if (missing.none()) return absl::OkStatus();
  return BadValue(flag, value,
                  absl::StrFormat("CPU %s not present on this machine (present: %s)",
                                  FormatCpuSet(missing), FormatCpuSet(machine.present_cpus)));
}

// -l: lcore N runs on CPU N.
absl::StatusOr<std::map<unsigned, CpuSet>> ParseCoreList(absl::string_view value,
                                                         const MachineInfo& machine) {
  absl::StatusOr<std::vector<unsigned>> ids =
      ParseIdList("-l", value, absl::StripAsciiWhitespace(value), kMaxLcores, "lcore");
  if (!ids.ok()) return ids.status();
  std::map<unsigned, CpuSet> lcores;
  CpuSet all;
  for (unsigned id : *ids) {
    lcores[id].set(id);
    all.set(id);
  }
  if (absl::Status s = CheckPresent("-l", value, all, machine); !s.ok()) return s;
  return lcores;
}

// -c: hexadecimal mask, bit N = lcore N on CPU N.
absl::StatusOr<std::map<unsigned, CpuSet>> ParseCoreMask(absl::string_view value,
                                                         const MachineInfo& machine) {
  absl::string_view hex = absl::StripAsciiWhitespace(value);
  if (!absl::ConsumePrefix(&hex, "0x")) absl::ConsumePrefix(&hex, "0X");
  if (hex.empty()) return BadValue("-c", value, "empty mask");
  std::map<unsigned, CpuSet> lcores;
  CpuSet all;
  for (size_t i = 0; i < hex.size(); ++i) {
    const char c = hex[hex.size() - 1 - i];
    if (!absl::ascii_isxdigit(c)) {
      return BadValue("-c", value, absl::StrCat("'", std::string(1, c), "' is not a hex digit"));
    }
    const int nibble = absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
    for (int b = 0; b < 4; ++b) {
      if (!(nibble & (1 << b))) continue;
      const size_t id = i * 4 + b;
      if (id >= kMaxLcores) {
        return BadValue("-c", value,
                        absl::StrFormat("lcore %d is out of range (max %d)", id, kMaxLcores - 1));
      }
      lcores[id].set(id);
      all.set(id);
    }
  }
  if (lcores.empty()) return BadValue("-c", value, "mask selects no lcore");
  if (absl::Status s = CheckPresent("-c", value, all, machine); !s.ok()) return s;
  return lcores;
}

// --lcores: elements "L", "L1-L2", "(list)", each optionally "@CPU" or "@(list)".
// Without '@', "L" and "L1-L2" put each lcore on the CPU of its own number, and a
// group "(list)" puts each of its lcores on all the group's CPUs (DPDK's meaning).
absl::StatusOr<std::map<unsigned, CpuSet>> ParseLcoreMap(absl::string_view value,
                                                         const MachineInfo& machine) {
  constexpr absl::string_view kFlag = "--lcores";
  const absl::string_view text = absl::StripAsciiWhitespace(value);
  if (text.empty()) return BadValue(kFlag, value, "empty map");
  // Split at top-level commas (commas inside parentheses belong to a group).
  std::vector<absl::string_view> elements;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ',';
    if (c == '(') {
      if (++depth > 1) return BadValue(kFlag, value, "nested parentheses");
    } else if (c == ')') {
      if (--depth < 0) return BadValue(kFlag, value, "unbalanced ')'");
    } else if (c == ',' && depth == 0) {
      elements.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (depth != 0) return BadValue(kFlag, value, "unbalanced '('");

  // "(a,b-c)" or "a-b" or "a" -> ids.
  auto parse_set = [&](absl::string_view part, unsigned limit, absl::string_view what,
                       bool allow_range) -> absl::StatusOr<std::vector<unsigned>> {
    if (absl::ConsumePrefix(&part, "(")) {
      if (!absl::ConsumeSuffix(&part, ")")) {
        return BadValue(kFlag, value, absl::StrCat("group \"(", part, "\" is not closed"));
      }
      return ParseIdList(kFlag, value, part, limit, what);
    }
    if (part.find_first_of("()") != absl::string_view::npos) {
      return BadValue(kFlag, value, absl::StrCat("misplaced parenthesis in \"", part, "\""));
    }
    if (!allow_range && part.find(',') == absl::string_view::npos &&
        part.find('-') != absl::string_view::npos) {
      return BadValue(kFlag, value,
                      absl::StrCat("CPU range \"", part, "\" after '@' must be a group \"(", part,
                                   ")\""));
    }
    return ParseIdList(kFlag, value, part, limit, what);
  };

  std::map<unsigned, CpuSet> lcores;
  CpuSet all_cpus;
  auto map_lcore = [&](unsigned id, const CpuSet& cpus) -> absl::Status {
    if (!lcores.emplace(id, cpus).second) {
      return BadValue(kFlag, value, absl::StrFormat("lcore %d is mapped twice", id));
    }
    all_cpus |= cpus;
    return absl::OkStatus();
  };
  for (absl::string_view element : elements) {
    if (element.empty()) return BadValue(kFlag, value, "empty element");
    const size_t at = element.find('@');
    const absl::string_view lhs = element.substr(0, at);
    absl::StatusOr<std::vector<unsigned>> ids = parse_set(lhs, kMaxLcores, "lcore", true);
    if (!ids.ok()) return ids.status();
    CpuSet cpus;
    if (at != absl::string_view::npos) {
      absl::StatusOr<std::vector<unsigned>> cpu_ids =
          parse_set(element.substr(at + 1), kMaxCpus, "CPU", false);
      if (!cpu_ids.ok()) return cpu_ids.status();
      for (unsigned cpu : *cpu_ids) cpus.set(cpu);
    } else if (absl::StartsWith(lhs, "(")) {
      // "(0,6)": every lcore of the group runs on all of the group's CPUs.
      for (unsigned id : *ids) cpus.set(id);
    }
    for (unsigned id : *ids) {
      // "3" or "0-1" without '@': each lcore runs on the CPU of its own number.
      CpuSet own;
      own.set(id);
      if (absl::Status s = map_lcore(id, cpus.any() ? cpus : own); !s.ok()) return s;
    }
  }
  if (absl::Status s = CheckPresent(kFlag, value, all_cpus, machine); !s.ok()) return s;
  return lcores;
}

absl::StatusOr<std::vector<uint64_t>> ParseSocketList(absl::string_view flag,
                                                      absl::string_view value,
                                                      const MachineInfo& machine) {
  const absl::string_view text = absl::StripAsciiWhitespace(value);
  if (text.empty()) return BadValue(flag, value, "empty list");
  std::vector<uint64_t> megabytes;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    uint64_t mb = 0;
    if (!ParseDecimal(item, UINT32_MAX, &mb)) {
      return BadValue(flag, value,
                      absl::StrCat("\"", item, "\" is not a size in megabytes"));
    }
    megabytes.push_back(mb);
  }
  if (megabytes.size() > static_cast<size_t>(machine.numa_nodes)) {
    return BadValue(flag, value,
                    absl::StrFormat("%d entries but this machine has %d NUMA node%s",
                                    megabytes.size(), machine.numa_nodes,
                                    machine.numa_nodes == 1 ? "" : "s"));
  }
  return megabytes;
}

absl::Status ValidateFilePrefix(absl::string_view value) {
  if (value.empty() || value.size() > 64) {
    return BadValue("--file-prefix", value, "must be 1 to 64 characters");
  }
  if (value == "." || value == "..") {
    return BadValue("--file-prefix", value, "must not be \".\" or \"..\"");
  }
  for (char c : value) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') {
      return BadValue("--file-prefix", value,
                      "may only contain letters, digits, '_', '.' and '-'");
    }
  }
  return absl::OkStatus();
}

enum class Flag {
  kCoreList, kCoreMask, kLcores, kMainLcore, kProcType, kFilePrefix, kMemory,
  kSocketMem, kSocketLimit, kHugeDir, kNoHuge, kPrefault, kBaseVirtaddr, kChannels, kLogLevel,
  kLogTimestamp, kAttachTimeout, kHelp, kVersion,
};

struct FlagSpec {
  absl::string_view name;
  Flag flag;
  bool takes_value;
};

constexpr FlagSpec kFlags[] = {
    {"-l", Flag::kCoreList, true},
    {"-c", Flag::kCoreMask, true},
    {"--lcores", Flag::kLcores, true},
    {"--main-lcore", Flag::kMainLcore, true},
    {"--proc-type", Flag::kProcType, true},
    {"--file-prefix", Flag::kFilePrefix, true},
    {"-m", Flag::kMemory, true},
    {"--socket-mem", Flag::kSocketMem, true},
    {"--socket-limit", Flag::kSocketLimit, true},
    {"--huge-dir", Flag::kHugeDir, true},
    {"--no-huge", Flag::kNoHuge, false},
    {"--prefault", Flag::kPrefault, false},
    {"--base-virtaddr", Flag::kBaseVirtaddr, true},
    {"-n", Flag::kChannels, true},
    {"--log-level", Flag::kLogLevel, true},
    {"--log-timestamp", Flag::kLogTimestamp, false},
    {"--attach-timeout", Flag::kAttachTimeout, true},
    {"-h", Flag::kHelp, false},
    {"--help", Flag::kHelp, false},
    {"-v", Flag::kVersion, false},
};

// Reads a CPU list file such as /sys/devices/system/cpu/present ("0-3,6").
CpuSet ReadCpuListFile(const char* path) {
  CpuSet cpus;
  std::ifstream in(path);
  std::string text;
  if (!std::getline(in, text)) return cpus;
  absl::StatusOr<std::vector<unsigned>> ids = ParseIdList(
      path, text, absl::StripAsciiWhitespace(text), kMaxCpus, "CPU");
  if (ids.ok()) {
    for (unsigned id : *ids) cpus.set(id);
  }
  return cpus;
}

}  // namespace

absl::string_view ProcessTypeName(ProcessType type) {
  switch (type) {
    case ProcessType::kPrimary:
      return "primary";
    case ProcessType::kSecondary:
      return "secondary";
    case ProcessType::kAuto:
      return "auto";
  }
  return "unknown";
}

MachineInfo MachineInfo::Current() {
  MachineInfo machine;
  machine.present_cpus = ReadCpuListFile("/sys/devices/system/cpu/present");
  if (machine.present_cpus.none()) {
    const long n = sysconf(_SC_NPROCESSORS_CONF);
    for (long i = 0; i < n && i < static_cast<long>(kMaxCpus); ++i) machine.present_cpus.set(i);
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (unsigned cpu = 0; cpu < kMaxCpus && cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) machine.affinity.set(cpu);
    }
  } else {
    machine.affinity = machine.present_cpus;
  }
  machine.numa_nodes = numa_available() < 0 ? 1 : std::max(1, numa_num_configured_nodes());
  return machine;
}

std::string FormatCpuSet(const CpuSet& cpus) {
  std::vector<std::string> ranges;
  for (size_t i = 0; i < cpus.size(); ++i) {
    if (!cpus.test(i)) continue;
    size_t j = i;
    while (j + 1 < cpus.size() && cpus.test(j + 1)) ++j;
    ranges.push_back(i == j ? absl::StrCat(i) : absl::StrCat(i, "-", j));
    i = j;
  }
  return absl::StrJoin(ranges, ",");
}

absl::StatusOr<Options> ParseOptions(absl::Span<const std::string> args) {
  return ParseOptions(args, MachineInfo::Current());
}

absl::StatusOr<Options> ParseOptions(absl::Span<const std::string> args,
                                     const MachineInfo& machine) {
  Options opts;
  std::vector<absl::string_view> lcore_flags;  // which of -l/-c/--lcores were given
  std::optional<unsigned> main_lcore;
  bool memory_given = false;

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      opts.app_args.assign(args.begin() + i + 1, args.end());
      break;
    }
    absl::string_view name = arg;
    std::optional<std::string> value;
    if (absl::StartsWith(arg, "--")) {
      const size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        name = absl::string_view(arg).substr(0, eq);
        value = arg.substr(eq + 1);
      }
    } else if (arg.size() >= 2 && arg[0] == '-') {
      name = absl::string_view(arg).substr(0, 2);
      if (arg.size() > 2) value = arg.substr(2);
    } else {
      return absl::InvalidArgumentError(absl::StrFormat(
          "unexpected argument \"%s\": application arguments go after \"--\"", arg));
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& candidate : kFlags) {
      if (candidate.name == name) spec = &candidate;
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrFormat("unknown option \"%s\" (-h lists the options)", arg));
    }
    if (!spec->takes_value && value.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("option %s takes no value (got \"%s\")", spec->name, arg));
    }
    if (spec->takes_value && !value.has_value()) {
      if (i + 1 >= args.size() || args[i + 1] == "--") {
        return absl::InvalidArgumentError(
            absl::StrFormat("option %s requires a value", spec->name));
      }
      value = args[++i];
    }
    const std::string v = value.value_or("");
    const absl::string_view trimmed = absl::StripAsciiWhitespace(v);

    switch (spec->flag) {
      case Flag::kCoreList:
      case Flag::kCoreMask:
      case Flag::kLcores: {
        lcore_flags.push_back(spec->name);
        if (lcore_flags.size() > 1) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "-l, -c and --lcores select the lcores; give only one (got %s)",
              absl::StrJoin(lcore_flags, " and ")));
        }
        absl::StatusOr<std::map<unsigned, CpuSet>> lcores =
            spec->flag == Flag::kCoreList   ? ParseCoreList(v, machine)
            : spec->flag == Flag::kCoreMask ? ParseCoreMask(v, machine)
                                            : ParseLcoreMap(v, machine);
        if (!lcores.ok()) return lcores.status();
        opts.lcores = *std::move(lcores);
        break;
      }
      case Flag::kMainLcore: {
        uint64_t id = 0;
        if (!ParseDecimal(trimmed, UINT32_MAX, &id) || id >= kMaxLcores) {
          return BadValue("--main-lcore", v,
                          absl::StrFormat("not an lcore id 0..%d", kMaxLcores - 1));
        }
        main_lcore = static_cast<unsigned>(id);
        break;
      }
      case Flag::kProcType:
        if (trimmed == "primary") {
          opts.proc_type = ProcessType::kPrimary;
        } else if (trimmed == "secondary") {
          opts.proc_type = ProcessType::kSecondary;
        } else if (trimmed == "auto") {
          opts.proc_type = ProcessType::kAuto;
        } else {
          return BadValue("--proc-type", v, "must be primary, secondary or auto");
        }
        break;
      case Flag::kFilePrefix:
        if (absl::Status s = ValidateFilePrefix(v); !s.ok()) return s;
        opts.file_prefix = v;
        break;
      case Flag::kMemory: {
        uint64_t mb = 0;
        if (!ParseDecimal(trimmed, UINT32_MAX, &mb) || mb == 0) {
          return BadValue("-m", v, "not a positive size in megabytes");
        }
        opts.memory_mb = mb;
        memory_given = true;
        break;
      }
      case Flag::kSocketMem:
      case Flag::kSocketLimit: {
        absl::StatusOr<std::vector<uint64_t>> list = ParseSocketList(spec->name, v, machine);
        if (!list.ok()) return list.status();
        (spec->flag == Flag::kSocketMem ? opts.socket_mem_mb : opts.socket_limit_mb) =
            *std::move(list);
        break;
      }
      case Flag::kHugeDir: {
        if (v.empty()) return BadValue("--huge-dir", v, "empty path");
        struct stat st;
        if (::stat(v.c_str(), &st) != 0) {
          return BadValue("--huge-dir", v, std::strerror(errno));
        }
        if (!S_ISDIR(st.st_mode)) return BadValue("--huge-dir", v, "not a directory");
        opts.huge_dir = v;
        break;
      }
      case Flag::kPrefault:
        opts.prefault = true;
        break;
      case Flag::kNoHuge:
        opts.no_huge = true;
        break;
      case Flag::kBaseVirtaddr: {
        absl::string_view hex = trimmed;
        if (!absl::ConsumePrefix(&hex, "0x")) absl::ConsumePrefix(&hex, "0X");
        uint64_t addr = 0;
        if (hex.empty() || hex.size() > 16 ||
            !std::all_of(hex.begin(), hex.end(), absl::ascii_isxdigit) ||
            !absl::SimpleHexAtoi(hex, &addr)) {
          return BadValue("--base-virtaddr", v, "not a hexadecimal address");
        }
        if (addr == 0) return BadValue("--base-virtaddr", v, "must not be 0");
        if (addr % 4096 != 0) return BadValue("--base-virtaddr", v, "not 4 KiB aligned");
        if (addr >= (uint64_t{1} << 47)) {
          return BadValue("--base-virtaddr", v, "beyond the 47-bit user address space");
        }
        opts.base_virtaddr = addr;
        break;
      }
      case Flag::kChannels: {
        uint64_t n = 0;
        if (!ParseDecimal(trimmed, UINT32_MAX, &n) || n == 0) {
          return BadValue("-n", v, "not a positive number of memory channels");
        }
        opts.memory_channels = static_cast<unsigned>(n);
        break;
      }
      case Flag::kLogLevel: {
        std::string component;
        absl::string_view level_text = trimmed;
        const size_t colon = trimmed.rfind(':');
        if (colon != absl::string_view::npos) {
          component = std::string(trimmed.substr(0, colon));
          level_text = trimmed.substr(colon + 1);
          if (component.empty() ||
              !std::all_of(component.begin(), component.end(), [](char c) {
                return absl::ascii_isalnum(c) || c == '_' || c == '.';
              })) {
            return BadValue("--log-level", v, "component name must be [A-Za-z0-9_.]+");
          }
        }
        absl::StatusOr<log::Level> level = log::ParseLevel(level_text);
        if (!level.ok()) return BadValue("--log-level", v, level.status().message());
        opts.log_levels.emplace_back(std::move(component), *level);
        break;
      }
      case Flag::kLogTimestamp:
        opts.log_timestamp = true;
        break;
      case Flag::kAttachTimeout: {
        double seconds = 0;
        if (trimmed.empty() || !absl::ascii_isdigit(trimmed[0]) ||
            !absl::SimpleAtod(trimmed, &seconds) || !(seconds > 0) || seconds > 3600) {
          return BadValue("--attach-timeout", v, "not a number of seconds in (0, 3600]");
        }
        opts.attach_timeout = absl::Seconds(seconds);
        break;
      }
      case Flag::kHelp:
        opts.help = true;
        break;
      case Flag::kVersion:
        opts.print_version = true;
        break;
    }
  }

  if (lcore_flags.empty()) {
    // Default: the calling thread's affinity, lcore N on CPU N.
    for (unsigned cpu = 0; cpu < kMaxLcores; ++cpu) {
      if (machine.affinity.test(cpu)) opts.lcores[cpu].set(cpu);
    }
    if (opts.lcores.empty()) {
      return absl::InvalidArgumentError(
          "the calling thread's CPU affinity has no CPU below 128; give -l or --lcores");
    }
  }
  opts.main_lcore = main_lcore.value_or(opts.lcores.begin()->first);
  if (opts.lcores.count(opts.main_lcore) == 0) {
    std::vector<unsigned> ids;
    for (const auto& [id, cpus] : opts.lcores) ids.push_back(id);
    return BadValue("--main-lcore", absl::StrCat(opts.main_lcore),
                    absl::StrCat("not one of this process's lcores (", absl::StrJoin(ids, ","),
                                 ")"));
  }
  if (memory_given && !opts.socket_mem_mb.empty()) {
    return absl::InvalidArgumentError("-m and --socket-mem cannot be used together");
  }
  if (opts.no_huge && !opts.socket_mem_mb.empty()) {
    return absl::InvalidArgumentError("--no-huge and --socket-mem cannot be used together");
  }
  if (opts.no_huge && !opts.socket_limit_mb.empty()) {
    return absl::InvalidArgumentError("--no-huge and --socket-limit cannot be used together");
  }
  if (opts.no_huge && !opts.huge_dir.empty()) {
    return absl::InvalidArgumentError("--no-huge and --huge-dir cannot be used together");
  }
  return opts;
}

std::string Usage(absl::string_view program) {
  return absl::StrFormat(
      "Usage: %s [EAL options] -- [application options]\n"
      "\n"
      "EAL options (DPDK's spelling and meaning):\n"
      "  -l LIST                 lcores of this process, lcore N on CPU N (\"0-3,6\")\n"
      "  -c MASK                 hexadecimal lcore mask, lcore N on CPU N\n"
      "  --lcores MAP            lcore ids onto CPUs: \"2@0,3@1\", \"(4-5)@(0,1)\", \"0-1\"\n"
      "                          (at most one of -l, -c, --lcores; default: this thread's\n"
      "                          CPU affinity)\n"
      "  --main-lcore N          the lcore that runs main(); default the lowest\n"
      "  --proc-type TYPE        primary (default), secondary, or auto\n"
      "  --file-prefix NAME      names the process group (default \"keel\")\n"
      "  --attach-timeout SEC    how long a secondary waits for the primary (default 5)\n"
      "  -m MB                   memory limit in megabytes\n"
      "  --socket-mem MB,MB..    memory per NUMA node (not with -m or --no-huge)\n"
      "  --socket-limit MB,MB..  memory limit per NUMA node (not with --no-huge)\n"
      "  --huge-dir DIR          hugetlbfs mount to use\n"
      "  --no-huge               ordinary shared memory instead of hugepages\n"
      "  --prefault              touch every page of shared memory at init\n"
      "  --base-virtaddr HEX     base address of the group's shared memory\n"
      "  -n N                    memory channels (accepted for compatibility)\n"
      "  --log-level [COMP:]LVL  log level, globally or per component (emerg..debug, 1..8)\n"
      "  --log-timestamp         prefix log lines with a UTC timestamp\n"
      "  -h, --help              print this help\n"
      "  -v                      print the version of every keel component\n",
      program);
}

}  // namespace keel::eal
