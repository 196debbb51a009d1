#include "eal/options.h"

#include <numa.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/names.h"

namespace keel::eal {
namespace {

using LcoreMap = std::map<unsigned, CpuSet>;

// ---------------------------------------------------------------------------------------
// Messages shared by parsing and validation.

// FLAG "VALUE": WHY. The value is escaped (it may come from anywhere) and cut after
// kMaxQuoted characters.
absl::Status BadValue(absl::string_view flag, absl::string_view value, absl::string_view why) {
  constexpr size_t kMaxQuoted = 128;
  return absl::InvalidArgumentError(absl::StrFormat("%s \"%s%s\": %s", flag,
                                                    Printable(value.substr(0, kMaxQuoted)),
                                                    value.size() > kMaxQuoted ? "..." : "", why));
}

// FLAG "VALUE": WHAT NUMBER is out of range (max MAX). `number` is text so that numbers
// too large for any integer type are reported as given.
absl::Status OutOfRange(absl::string_view flag, absl::string_view value, absl::string_view what,
                        absl::string_view number, absl::string_view max) {
  return BadValue(flag, value,
                  absl::StrCat(what, what.empty() ? "" : " ", Printable(number),
                               " is out of range (max ", max, ")"));
}

absl::Status LcoreOutOfRange(absl::string_view flag, absl::string_view value, uint64_t id) {
  return OutOfRange(flag, value, "lcore", absl::StrCat(id), absl::StrCat(kMaxLcores - 1));
}

// "0@0,1@(2-3)": an lcore map in --lcores syntax, for messages about Options built in
// code (an lcore without CPUs shows as "N@()").
std::string FormatLcoreMap(const LcoreMap& lcores) {
  std::vector<std::string> parts;
  for (const auto& [id, cpus] : lcores) {
    parts.push_back(cpus.count() == 1 ? absl::StrCat(id, "@", FormatCpuSet(cpus))
                                      : absl::StrCat(id, "@(", FormatCpuSet(cpus), ")"));
  }
  return absl::StrJoin(parts, ",");
}

std::string FormatMegabytes(const std::vector<uint64_t>& list) { return absl::StrJoin(list, ","); }

bool IsValidLevel(log::Level level) {
  const int n = static_cast<int>(level);
  return n >= static_cast<int>(log::Level::kEmergency) && n <= static_cast<int>(log::Level::kDebug);
}

// "eal:debug", "info"; a level out of range shows as its number.
std::string FormatLogLevel(const std::string& component, log::Level level) {
  const std::string text = IsValidLevel(level) ? std::string(log::LevelName(level))
                                               : absl::StrCat(static_cast<int>(level));
  return component.empty() ? text : absl::StrCat(component, ":", text);
}

std::string FormatSeconds(absl::Duration d) {
  return absl::StrFormat("%g", absl::ToDoubleSeconds(d));
}

// ---------------------------------------------------------------------------------------
// Validation: the rules of every field (options.h), for parsed and built Options alike.

// Where the lcore set came from, for messages: the flag and its value as typed, or
// "--lcores" and the set in its syntax for Options built in code.
struct LcoreSource {
  std::string flag;
  std::string value;
};

LcoreSource SourceOf(const LcoreMap& lcores) { return {"--lcores", FormatLcoreMap(lcores)}; }

absl::Status CheckPresent(absl::string_view flag, absl::string_view value, const CpuSet& cpus,
                          const MachineInfo& machine) {
  const CpuSet missing = cpus & ~machine.present_cpus;
  if (missing.none()) return absl::OkStatus();
  return BadValue(flag, value,
                  absl::StrFormat("CPU %s not present on this machine (present: %s)",
                                  FormatCpuSet(missing), FormatCpuSet(machine.present_cpus)));
}

absl::Status ValidateLcores(const Options& options, const MachineInfo& machine,
                            const LcoreSource& source) {
  const absl::string_view flag = source.flag;
  const absl::string_view value = source.value;
  if (options.lcores.empty()) {
    return BadValue(flag, value, "no lcore (give -l, -c or --lcores, or fill Options::lcores)");
  }
  CpuSet all;
  for (const auto& [id, cpus] : options.lcores) {
    if (id >= kMaxLcores) return LcoreOutOfRange(flag, value, id);
    if (cpus.none()) return BadValue(flag, value, absl::StrFormat("lcore %d has no CPU", id));
    all |= cpus;
  }
  if (absl::Status s = CheckPresent(flag, value, all, machine); !s.ok()) return s;

  const std::string main = absl::StrCat(options.main_lcore);
  if (options.main_lcore >= kMaxLcores) {
    return LcoreOutOfRange("--main-lcore", main, options.main_lcore);
  }
  if (options.lcores.count(options.main_lcore) == 0) {
    std::vector<unsigned> ids;
    for (const auto& [id, cpus] : options.lcores) ids.push_back(id);
    return BadValue(
        "--main-lcore", main,
        absl::StrCat("not one of this process's lcores (", absl::StrJoin(ids, ","), ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateFilePrefix(absl::string_view prefix) {
  constexpr absl::string_view kFlag = "--file-prefix";
  if (prefix.empty() || prefix.size() > kMaxFilePrefixLength) {
    return BadValue(kFlag, prefix,
                    absl::StrFormat("must be 1 to %d characters (it has %d)", kMaxFilePrefixLength,
                                    prefix.size()));
  }
  if (prefix == "." || prefix == "..") {
    return BadValue(kFlag, prefix, "must not be \".\" or \"..\"");
  }
  for (char c : prefix) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') {
      return BadValue(kFlag, prefix, "may only contain letters, digits, '_', '.' and '-'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTimerSource(TimerSource source) {
  switch (source) {
    case TimerSource::kAuto:
    case TimerSource::kTsc:
    case TimerSource::kHpet:
      return absl::OkStatus();
  }
  return BadValue("--timer-source", absl::StrCat(static_cast<int>(source)),
                  "must be tsc, hpet or auto");
}

absl::Status ValidateProcess(const Options& options) {
  switch (options.proc_type) {
    case ProcessType::kPrimary:
    case ProcessType::kSecondary:
    case ProcessType::kAuto:
      break;
    default:
      return BadValue("--proc-type", absl::StrCat(static_cast<int>(options.proc_type)),
                      "must be primary, secondary or auto");
  }
  if ((options.adopt || options.takeover) && options.proc_type == ProcessType::kSecondary) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s makes a primary take a group over; it cannot go with --proc-type secondary",
        options.adopt ? "--adopt" : "--takeover"));
  }
  if (absl::Status s = ValidateFilePrefix(options.file_prefix); !s.ok()) return s;
  // InfiniteDuration() is above kMaxAttachTimeout: refused too.
  if (options.attach_timeout <= absl::ZeroDuration() ||
      options.attach_timeout > kMaxAttachTimeout) {
    return BadValue("--attach-timeout", FormatSeconds(options.attach_timeout),
                    absl::StrFormat("not a number of seconds in (0, %g]",
                                    absl::ToDoubleSeconds(kMaxAttachTimeout)));
  }
  return absl::OkStatus();
}

// One per-node list (--socket-mem or --socket-limit): entries per node, sizes.
absl::Status ValidateSocketList(absl::string_view flag, const std::vector<uint64_t>& list,
                                const MachineInfo& machine) {
  const std::string value = FormatMegabytes(list);
  const int nodes = std::max(machine.numa_nodes, 1);
  if (list.size() > static_cast<size_t>(nodes)) {
    return BadValue(flag, value,
                    absl::StrFormat("%d entries but this machine has %d NUMA node%s", list.size(),
                                    nodes, nodes == 1 ? "" : "s"));
  }
  for (uint64_t mb : list) {
    if (mb > kMaxMemoryMb) {
      return OutOfRange(flag, value, "", absl::StrCat(mb, " MB"),
                        absl::StrCat(kMaxMemoryMb, " MB"));
    }
  }
  return absl::OkStatus();
}

// -m, --socket-mem, --socket-limit.
absl::Status ValidateMemorySizes(const Options& options, const MachineInfo& machine) {
  if (options.memory_mb > kMaxMemoryMb) {
    const std::string mb = absl::StrCat(options.memory_mb);
    return OutOfRange("-m", mb, "", absl::StrCat(mb, " MB"), absl::StrCat(kMaxMemoryMb, " MB"));
  }
  const std::vector<uint64_t>& mem = options.socket_mem_mb;
  const std::vector<uint64_t>& limit = options.socket_limit_mb;
  if (absl::Status s = ValidateSocketList("--socket-mem", mem, machine); !s.ok()) return s;
  if (absl::Status s = ValidateSocketList("--socket-limit", limit, machine); !s.ok()) return s;
  if (!mem.empty() && std::all_of(mem.begin(), mem.end(), [](uint64_t mb) { return mb == 0; })) {
    return BadValue("--socket-mem", FormatMegabytes(mem), "asks for no memory on any NUMA node");
  }
  for (size_t node = 0; node < mem.size() && node < limit.size(); ++node) {
    if (limit[node] != 0 && mem[node] > limit[node]) {  // a limit of 0: no limit
      return BadValue("--socket-mem", FormatMegabytes(mem),
                      absl::StrFormat("%d MB on NUMA node %d is above its --socket-limit of %d MB",
                                      mem[node], node, limit[node]));
    }
  }
  if (options.memory_mb != 0 && !mem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("-m and --socket-mem cannot be used together (-m %d, --socket-mem %s)",
                        options.memory_mb, FormatMegabytes(mem)));
  }
  return absl::OkStatus();
}

// --no-huge and what it excludes, --huge-dir, --base-virtaddr, -n.
absl::Status ValidateMemoryPlacement(const Options& options) {
  const std::vector<uint64_t>& mem = options.socket_mem_mb;
  const std::vector<uint64_t>& limit = options.socket_limit_mb;
  if (options.no_huge) {
    if (!mem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--no-huge and --socket-mem cannot be used together (--socket-mem %s)",
                          FormatMegabytes(mem)));
    }
    if (!limit.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--no-huge and --socket-limit cannot be used together (--socket-limit %s)",
          FormatMegabytes(limit)));
    }
    if (!options.huge_dir.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--no-huge and --huge-dir cannot be used together (--huge-dir \"%s\")",
                          Printable(options.huge_dir)));
    }
  }
  if (!options.huge_dir.empty()) {
    struct stat st;
    if (::stat(options.huge_dir.c_str(), &st) != 0) {
      char buffer[128];
      return BadValue("--huge-dir", options.huge_dir, strerror_r(errno, buffer, sizeof(buffer)));
    }
    if (!S_ISDIR(st.st_mode)) return BadValue("--huge-dir", options.huge_dir, "not a directory");
  }
  if (options.base_virtaddr != 0) {
    const std::string addr = absl::StrFormat("0x%x", options.base_virtaddr);
    if (options.base_virtaddr % 4096 != 0) {
      return BadValue("--base-virtaddr", addr, "not 4 KiB aligned");
    }
    if (options.base_virtaddr >= kMaxBaseVirtaddr) {
      return BadValue("--base-virtaddr", addr, "beyond the 47-bit user address space");
    }
  }
  if (options.memory_channels > kMaxMemoryChannels) {
    const std::string n = absl::StrCat(options.memory_channels);
    return OutOfRange("-n", n, "channel count", n, absl::StrCat(kMaxMemoryChannels));
  }
  return absl::OkStatus();
}

bool IsLogComponentName(absl::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '.';
  });
}

absl::Status ValidateLogging(const Options& options) {
  for (const auto& [component, level] : options.log_levels) {
    const std::string value = FormatLogLevel(component, level);
    if (!component.empty() && !IsLogComponentName(component)) {
      return BadValue("--log-level", value, "component name must be [A-Za-z0-9_.]+");
    }
    if (!IsValidLevel(level)) {
      return BadValue("--log-level", value,
                      absl::StrFormat("log level %d is not 1..8", static_cast<int>(level)));
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const Options& options, const MachineInfo& machine,
                      const LcoreSource& source) {
  if (absl::Status s = ValidateLcores(options, machine, source); !s.ok()) return s;
  if (absl::Status s = ValidateProcess(options); !s.ok()) return s;
  if (absl::Status s = ValidateMemorySizes(options, machine); !s.ok()) return s;
  if (absl::Status s = ValidateMemoryPlacement(options); !s.ok()) return s;
  if (absl::Status s = ValidateTimerSource(options.timer_source); !s.ok()) return s;
  return ValidateLogging(options);
}

// ---------------------------------------------------------------------------------------
// Parsing: syntax, one function per option family. A value that fits its field is left
// to the validation above, so both ways in report it alike; the parser refuses only
// what cannot be stored (a number beyond its type, a CPU id beyond CpuSet, seconds a
// Duration would turn into infinity), what would read as "not given" (-m 0, -n 0,
// --huge-dir "") and lcore ids >= kMaxLcores (they also bound the length of a range).
// Its messages use the validation's words.

enum class Decimal { kOk, kNotANumber, kTooLarge };

// Strict unsigned decimal: digits only, no sign, no spaces. kTooLarge when the digits do
// not fit in a uint64_t.
Decimal ParseDecimal(absl::string_view text, uint64_t* out) {
  if (text.empty()) return Decimal::kNotANumber;
  uint64_t value = 0;
  bool overflow = false;
  for (char c : text) {
    if (!absl::ascii_isdigit(c)) return Decimal::kNotANumber;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) overflow = true;
    value = value * 10 + digit;
  }
  if (overflow) return Decimal::kTooLarge;
  *out = value;
  return Decimal::kOk;
}

// An lcore or CPU id (`what`) below `limit`.
absl::StatusOr<unsigned> ParseId(absl::string_view flag, absl::string_view value,
                                 absl::string_view text, unsigned limit, absl::string_view what,
                                 absl::string_view not_a_number) {
  uint64_t id = 0;
  switch (ParseDecimal(text, &id)) {
    case Decimal::kNotANumber:
      return BadValue(flag, value, not_a_number);
    case Decimal::kTooLarge:
      return OutOfRange(flag, value, what, text, absl::StrCat(limit - 1));
    case Decimal::kOk:
      break;
  }
  if (id >= limit) return OutOfRange(flag, value, what, text, absl::StrCat(limit - 1));
  return static_cast<unsigned>(id);
}

// A size in megabytes; its limit (kMaxMemoryMb) is the validation's. `item` is the part
// of `value` being read.
absl::StatusOr<uint64_t> ParseMegabytes(absl::string_view flag, absl::string_view value,
                                        absl::string_view item, absl::string_view not_a_number) {
  uint64_t mb = 0;
  switch (ParseDecimal(item, &mb)) {
    case Decimal::kNotANumber:
      return BadValue(flag, value, not_a_number);
    case Decimal::kTooLarge:
      return OutOfRange(flag, value, "", absl::StrCat(item, " MB"),
                        absl::StrCat(kMaxMemoryMb, " MB"));
    case Decimal::kOk:
      break;
  }
  return mb;
}

// "1-3,5" -> {1,2,3,5}. Every id must be < limit (also what bounds a range's length).
// `what` names an id in messages ("lcore", "CPU").
absl::StatusOr<std::vector<unsigned>> ParseIdList(absl::string_view flag, absl::string_view value,
                                                  absl::string_view list, unsigned limit,
                                                  absl::string_view what) {
  std::vector<unsigned> ids;
  if (list.empty()) return BadValue(flag, value, "empty list");
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    if (item.empty()) return BadValue(flag, value, "empty list element");
    std::vector<absl::string_view> ends = absl::StrSplit(item, '-');
    if (ends.size() > 2) {
      return BadValue(flag, value, absl::StrCat("\"", Printable(item), "\" is not N or N-M"));
    }
    absl::StatusOr<unsigned> lo =
        ParseId(flag, value, ends[0], limit, what,
                absl::StrCat("\"", Printable(ends[0]), "\" is not a non-negative ", what, " id"));
    if (!lo.ok()) return lo.status();
    absl::StatusOr<unsigned> hi = lo;
    if (ends.size() == 2) {
      hi = ParseId(flag, value, ends[1], limit, what,
                   absl::StrCat("range \"", Printable(item), "\" does not end in a ", what, " id"));
      if (!hi.ok()) return hi.status();
    }
    if (*lo > *hi) {
      return BadValue(flag, value, absl::StrCat("range \"", Printable(item), "\" is descending"));
    }
    for (unsigned id = *lo; id <= *hi; ++id) ids.push_back(id);
  }
  return ids;
}

// -l: lcore N runs on CPU N. An id named twice is one lcore (DPDK folds them).
absl::StatusOr<LcoreMap> ParseCoreList(absl::string_view value) {
  absl::StatusOr<std::vector<unsigned>> ids =
      ParseIdList("-l", value, absl::StripAsciiWhitespace(value), kMaxLcores, "lcore");
  if (!ids.ok()) return ids.status();
  LcoreMap lcores;
  for (unsigned id : *ids) lcores[id].set(id);
  return lcores;
}

// -c: hexadecimal mask, bit N = lcore N on CPU N.
absl::StatusOr<LcoreMap> ParseCoreMask(absl::string_view value) {
  absl::string_view hex = absl::StripAsciiWhitespace(value);
  if (!absl::ConsumePrefix(&hex, "0x")) absl::ConsumePrefix(&hex, "0X");
  if (hex.empty()) return BadValue("-c", value, "empty mask");
  LcoreMap lcores;
  for (size_t i = 0; i < hex.size(); ++i) {
    const char c = hex[hex.size() - 1 - i];
    if (!absl::ascii_isxdigit(c)) {
      return BadValue("-c", value,
                      absl::StrCat("'", Printable(std::string(1, c)), "' is not a hex digit"));
    }
    const int nibble = absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
    for (int b = 0; b < 4; ++b) {
      if (!(nibble & (1 << b))) continue;
      const uint64_t id = uint64_t{i} * 4 + b;
      if (id >= kMaxLcores) return LcoreOutOfRange("-c", value, id);
      lcores[id].set(id);
    }
  }
  if (lcores.empty()) return BadValue("-c", value, "mask selects no lcore");
  return lcores;
}

// Splits a --lcores value at top-level commas (commas inside parentheses belong to a
// group).
absl::StatusOr<std::vector<absl::string_view>> SplitLcoreMap(absl::string_view value,
                                                             absl::string_view text) {
  constexpr absl::string_view kFlag = "--lcores";
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
  return elements;
}

// One side of a --lcores element: "(a,b-c)", "a-b" (lcores only) or "a".
absl::StatusOr<std::vector<unsigned>> ParseLcoreMapSet(absl::string_view value,
                                                       absl::string_view part, unsigned limit,
                                                       absl::string_view what, bool allow_range) {
  constexpr absl::string_view kFlag = "--lcores";
  if (absl::ConsumePrefix(&part, "(")) {
    if (!absl::ConsumeSuffix(&part, ")")) {
      return BadValue(kFlag, value, absl::StrCat("group \"(", Printable(part), "\" is not closed"));
    }
    return ParseIdList(kFlag, value, part, limit, what);
  }
  if (part.find_first_of("()") != absl::string_view::npos) {
    return BadValue(kFlag, value,
                    absl::StrCat("misplaced parenthesis in \"", Printable(part), "\""));
  }
  if (!allow_range && part.find('-') != absl::string_view::npos) {
    return BadValue(kFlag, value,
                    absl::StrCat("CPU range \"", Printable(part),
                                 "\" after '@' must be a group \"(", Printable(part), ")\""));
  }
  return ParseIdList(kFlag, value, part, limit, what);
}

// --lcores: elements "L", "L1-L2", "(list)", each optionally "@CPU" or "@(list)".
// Without '@', "L" and "L1-L2" put each lcore on the CPU of its own number, and a
// group "(list)" puts each of its lcores on all the group's CPUs (DPDK's meaning). An
// lcore named twice onto the same CPUs is one lcore, as in -l; onto other CPUs it is
// refused (DPDK silently keeps the last mapping).
absl::StatusOr<LcoreMap> ParseLcoreMap(absl::string_view value) {
  constexpr absl::string_view kFlag = "--lcores";
  const absl::string_view text = absl::StripAsciiWhitespace(value);
  if (text.empty()) return BadValue(kFlag, value, "empty map");
  absl::StatusOr<std::vector<absl::string_view>> elements = SplitLcoreMap(value, text);
  if (!elements.ok()) return elements.status();

  LcoreMap lcores;
  for (absl::string_view element : *elements) {
    if (element.empty()) return BadValue(kFlag, value, "empty element");
    const size_t at = element.find('@');
    const absl::string_view lhs = element.substr(0, at);
    absl::StatusOr<std::vector<unsigned>> ids =
        ParseLcoreMapSet(value, lhs, kMaxLcores, "lcore", true);
    if (!ids.ok()) return ids.status();
    CpuSet cpus;
    if (at != absl::string_view::npos) {
      absl::StatusOr<std::vector<unsigned>> cpu_ids =
          ParseLcoreMapSet(value, element.substr(at + 1), kMaxCpus, "CPU", false);
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
      const CpuSet& mapped = cpus.any() ? cpus : own;
      auto [it, inserted] = lcores.emplace(id, mapped);
      if (!inserted && it->second != mapped) {
        return BadValue(kFlag, value,
                        absl::StrFormat("lcore %d is mapped twice: to CPUs %s and to CPUs %s", id,
                                        FormatCpuSet(it->second), FormatCpuSet(mapped)));
      }
    }
  }
  return lcores;
}

absl::StatusOr<std::vector<uint64_t>> ParseSocketList(absl::string_view flag,
                                                      absl::string_view value) {
  const absl::string_view text = absl::StripAsciiWhitespace(value);
  if (text.empty()) return BadValue(flag, value, "empty list");
  std::vector<uint64_t> megabytes;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    absl::StatusOr<uint64_t> mb = ParseMegabytes(
        flag, value, item, absl::StrCat("\"", Printable(item), "\" is not a size in megabytes"));
    if (!mb.ok()) return mb.status();
    megabytes.push_back(*mb);
  }
  return megabytes;
}

enum class Flag {
  kCoreList,
  kCoreMask,
  kLcores,
  kMainLcore,  // lcores
  kProcType,
  kAdopt,
  kTakeover,
  kFilePrefix,
  kAttachTimeout,  // the process and its group
  kMemory,
  kSocketMem,
  kSocketLimit,
  kHugeDir,
  kNoHuge,
  kPrefault,
  kBaseVirtaddr,  // memory
  kChannels,
  kLogLevel,
  kLogTimestamp,  // logging
  kTimerSource,   // timer
  kTelemetry,
  kNoTelemetry,  // telemetry
  kHelp,
  kVersion,  // information
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
    {"--adopt", Flag::kAdopt, false},
    {"--takeover", Flag::kTakeover, false},
    {"--file-prefix", Flag::kFilePrefix, true},
    {"--attach-timeout", Flag::kAttachTimeout, true},
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
    {"--timer-source", Flag::kTimerSource, true},
    {"--telemetry", Flag::kTelemetry, false},
    {"--no-telemetry", Flag::kNoTelemetry, false},
    {"-h", Flag::kHelp, false},
    {"--help", Flag::kHelp, false},
    {"-v", Flag::kVersion, false},
};

const FlagSpec* FindFlag(absl::string_view name) {
  for (const FlagSpec& spec : kFlags) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

// One option of the command line and its value ("" for a flag without one).
struct Arg {
  const FlagSpec* spec;
  std::string value;
};

// Reads the option at args[*i] (and its value, advancing *i past it when separate).
// "--name=value", "--name value", "-xVALUE", "-x VALUE". A single dash before a long
// option's name ("-no-huge") is refused, not read as "-n o-huge".
absl::StatusOr<Arg> ReadArg(absl::Span<const std::string> args, size_t* i) {
  const std::string& arg = args[*i];
  absl::string_view name = arg;
  std::optional<std::string> value;
  if (absl::StartsWith(arg, "--")) {
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      name = absl::string_view(arg).substr(0, eq);
      value = arg.substr(eq + 1);
    }
  } else if (arg.size() >= 2 && arg[0] == '-') {
    if (arg.size() > 2) {
      const std::string as_long = absl::StrCat("-", arg.substr(0, arg.find('=')));
      if (FindFlag(as_long) != nullptr) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "unknown option \"%s\": did you mean \"%s\"?", Printable(arg), as_long));
      }
      value = arg.substr(2);
    }
    name = absl::string_view(arg).substr(0, 2);
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unexpected argument \"%s\": application arguments go after \"--\"", Printable(arg)));
  }
  const FlagSpec* spec = FindFlag(name);
  if (spec == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown option \"%s\" (-h lists the options)", Printable(arg)));
  }
  if (!spec->takes_value && value.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option %s takes no value (got \"%s\")", spec->name, Printable(arg)));
  }
  if (spec->takes_value && !value.has_value()) {
    if (*i + 1 >= args.size() || args[*i + 1] == "--") {
      return absl::InvalidArgumentError(absl::StrFormat("option %s requires a value", spec->name));
    }
    value = args[++*i];
  }
  return Arg{spec, value.value_or("")};
}

// What the command line said beyond Options itself.
struct CommandLine {
  std::vector<absl::string_view> lcore_flags;  // which of -l/-c/--lcores were given
  LcoreSource lcore_source;                    // the last of them and its value
  bool main_lcore_given = false;
};

// -l, -c, --lcores, --main-lcore.
absl::Status ParseLcoreFlag(const Arg& arg, Options* opts, CommandLine* cl) {
  const absl::string_view v = arg.value;
  if (arg.spec->flag == Flag::kMainLcore) {
    const absl::string_view text = absl::StripAsciiWhitespace(v);
    uint64_t id = 0;
    switch (ParseDecimal(text, &id)) {
      case Decimal::kNotANumber:
        return BadValue("--main-lcore", v,
                        absl::StrFormat("not an lcore id 0..%d", kMaxLcores - 1));
      case Decimal::kTooLarge:
        return OutOfRange("--main-lcore", v, "lcore", text, absl::StrCat(kMaxLcores - 1));
      case Decimal::kOk:
        break;
    }
    // Beyond unsigned it cannot be stored; below, the validation reports it.
    if (id > UINT32_MAX) return LcoreOutOfRange("--main-lcore", v, id);
    opts->main_lcore = static_cast<unsigned>(id);
    cl->main_lcore_given = true;
    return absl::OkStatus();
  }
  cl->lcore_flags.push_back(arg.spec->name);
  if (cl->lcore_flags.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("-l, -c and --lcores select the lcores; give only one (got %s)",
                        absl::StrJoin(cl->lcore_flags, " and ")));
  }
  absl::StatusOr<LcoreMap> lcores = arg.spec->flag == Flag::kCoreList   ? ParseCoreList(v)
                                    : arg.spec->flag == Flag::kCoreMask ? ParseCoreMask(v)
                                                                        : ParseLcoreMap(v);
  if (!lcores.ok()) return lcores.status();
  opts->lcores = *std::move(lcores);
  cl->lcore_source = {std::string(arg.spec->name), arg.value};
  return absl::OkStatus();
}

// --proc-type, --adopt, --takeover, --file-prefix, --attach-timeout.
absl::Status ParseProcessFlag(const Arg& arg, Options* opts) {
  const absl::string_view v = arg.value;
  const absl::string_view trimmed = absl::StripAsciiWhitespace(v);
  switch (arg.spec->flag) {
    case Flag::kProcType:
      if (trimmed == "primary") {
        opts->proc_type = ProcessType::kPrimary;
      } else if (trimmed == "secondary") {
        opts->proc_type = ProcessType::kSecondary;
      } else if (trimmed == "auto") {
        opts->proc_type = ProcessType::kAuto;
      } else {
        return BadValue("--proc-type", v, "must be primary, secondary or auto");
      }
      return absl::OkStatus();
    case Flag::kAdopt:
      opts->adopt = true;
      return absl::OkStatus();
    case Flag::kTakeover:
      opts->takeover = true;
      return absl::OkStatus();
    case Flag::kFilePrefix:
      // Checked as given (no trimming): the validation reports it.
      opts->file_prefix = arg.value;
      return absl::OkStatus();
    case Flag::kAttachTimeout: {
      double seconds = 0;
      if (trimmed.empty() || !absl::ascii_isdigit(trimmed[0]) ||
          !absl::SimpleAtod(trimmed, &seconds) || !std::isfinite(seconds) ||
          seconds > absl::ToDoubleSeconds(kMaxAttachTimeout)) {
        return BadValue("--attach-timeout", v,
                        absl::StrFormat("not a number of seconds in (0, %g]",
                                        absl::ToDoubleSeconds(kMaxAttachTimeout)));
      }
      opts->attach_timeout = absl::Seconds(seconds);  // 0 is left to the validation
      return absl::OkStatus();
    }
    default:
      return absl::InternalError(absl::StrCat("not a process option: ", arg.spec->name));
  }
}

// --base-virtaddr HEX: up to 16 hex digits, "0x" optional, not 0 (0 = not given).
absl::Status ParseBaseVirtaddr(absl::string_view v, uint64_t* out) {
  absl::string_view hex = absl::StripAsciiWhitespace(v);
  if (!absl::ConsumePrefix(&hex, "0x")) absl::ConsumePrefix(&hex, "0X");
  uint64_t addr = 0;
  if (hex.empty() || hex.size() > 16 ||
      !std::all_of(hex.begin(), hex.end(), absl::ascii_isxdigit) ||
      !absl::SimpleHexAtoi(hex, &addr)) {
    return BadValue("--base-virtaddr", v, "not a hexadecimal address");
  }
  if (addr == 0) return BadValue("--base-virtaddr", v, "must not be 0");
  *out = addr;
  return absl::OkStatus();
}

// -n N: N > 0 (0 = not given); the limit is the validation's.
absl::Status ParseChannels(absl::string_view v, unsigned* out) {
  const absl::string_view text = absl::StripAsciiWhitespace(v);
  uint64_t n = 0;
  switch (ParseDecimal(text, &n)) {
    case Decimal::kNotANumber:
      return BadValue("-n", v, "not a positive number of memory channels");
    case Decimal::kTooLarge:
      return OutOfRange("-n", v, "channel count", text, absl::StrCat(kMaxMemoryChannels));
    case Decimal::kOk:
      break;
  }
  if (n == 0) return BadValue("-n", v, "not a positive number of memory channels");
  if (n > UINT32_MAX) {
    return OutOfRange("-n", v, "channel count", text, absl::StrCat(kMaxMemoryChannels));
  }
  *out = static_cast<unsigned>(n);
  return absl::OkStatus();
}

// -m, --socket-mem, --socket-limit, --huge-dir, --no-huge, --base-virtaddr, -n.
absl::Status ParseMemoryFlag(const Arg& arg, Options* opts) {
  const absl::string_view v = arg.value;
  const absl::string_view trimmed = absl::StripAsciiWhitespace(v);
  switch (arg.spec->flag) {
    case Flag::kMemory: {
      absl::StatusOr<uint64_t> mb =
          ParseMegabytes("-m", v, trimmed, "not a positive size in megabytes");
      if (!mb.ok()) return mb.status();
      // 0 means "not given" in Options, so it is refused here.
      if (*mb == 0) return BadValue("-m", v, "not a positive size in megabytes");
      opts->memory_mb = *mb;
      return absl::OkStatus();
    }
    case Flag::kSocketMem:
    case Flag::kSocketLimit: {
      absl::StatusOr<std::vector<uint64_t>> list = ParseSocketList(arg.spec->name, v);
      if (!list.ok()) return list.status();
      (arg.spec->flag == Flag::kSocketMem ? opts->socket_mem_mb : opts->socket_limit_mb) =
          *std::move(list);
      return absl::OkStatus();
    }
    case Flag::kHugeDir:
      // Empty means "not given" in Options, so it is refused here; the validation checks
      // that the directory exists.
      if (v.empty()) return BadValue("--huge-dir", v, "empty path");
      opts->huge_dir = arg.value;
      return absl::OkStatus();
    case Flag::kNoHuge:
      opts->no_huge = true;
      return absl::OkStatus();
    case Flag::kPrefault:
      opts->prefault = true;
      return absl::OkStatus();
    case Flag::kBaseVirtaddr:
      return ParseBaseVirtaddr(v, &opts->base_virtaddr);
    case Flag::kChannels:
      return ParseChannels(v, &opts->memory_channels);
    default:
      return absl::InternalError(absl::StrCat("not a memory option: ", arg.spec->name));
  }
}

// --log-level [COMPONENT:]LEVEL, --log-timestamp.
absl::Status ParseLogFlag(const Arg& arg, Options* opts) {
  if (arg.spec->flag == Flag::kLogTimestamp) {
    opts->log_timestamp = true;
    return absl::OkStatus();
  }
  const absl::string_view v = arg.value;
  const absl::string_view trimmed = absl::StripAsciiWhitespace(v);
  std::string component;
  absl::string_view level_text = trimmed;
  const size_t colon = trimmed.rfind(':');
  if (colon != absl::string_view::npos) {
    component = std::string(trimmed.substr(0, colon));
    level_text = trimmed.substr(colon + 1);
    // Checked here too, to quote the value as typed: an empty component would read as
    // the global level.
    if (!IsLogComponentName(component)) {
      return BadValue("--log-level", v, "component name must be [A-Za-z0-9_.]+");
    }
  }
  absl::StatusOr<log::Level> level = log::ParseLevel(level_text);
  if (!level.ok()) return BadValue("--log-level", v, level.status().message());
  opts->log_levels.emplace_back(std::move(component), *level);
  return absl::OkStatus();
}

// --timer-source tsc|hpet|auto.
absl::Status ParseTimerSource(absl::string_view v, TimerSource* out) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(v);
  if (trimmed == "tsc") {
    *out = TimerSource::kTsc;
  } else if (trimmed == "hpet") {
    *out = TimerSource::kHpet;
  } else if (trimmed == "auto") {
    *out = TimerSource::kAuto;
  } else {
    return BadValue("--timer-source", v, "must be tsc, hpet or auto");
  }
  return absl::OkStatus();
}

absl::Status ParseFlag(const Arg& arg, Options* opts, CommandLine* cl) {
  switch (arg.spec->flag) {
    case Flag::kCoreList:
    case Flag::kCoreMask:
    case Flag::kLcores:
    case Flag::kMainLcore:
      return ParseLcoreFlag(arg, opts, cl);
    case Flag::kProcType:
    case Flag::kAdopt:
    case Flag::kTakeover:
    case Flag::kFilePrefix:
    case Flag::kAttachTimeout:
      return ParseProcessFlag(arg, opts);
    case Flag::kMemory:
    case Flag::kSocketMem:
    case Flag::kSocketLimit:
    case Flag::kHugeDir:
    case Flag::kNoHuge:
    case Flag::kPrefault:
    case Flag::kBaseVirtaddr:
    case Flag::kChannels:
      return ParseMemoryFlag(arg, opts);
    case Flag::kLogLevel:
    case Flag::kLogTimestamp:
      return ParseLogFlag(arg, opts);
    case Flag::kTimerSource:
      return ParseTimerSource(arg.value, &opts->timer_source);
    case Flag::kTelemetry:
    case Flag::kNoTelemetry:
      opts->telemetry = arg.spec->flag == Flag::kTelemetry;
      return absl::OkStatus();
    case Flag::kHelp:
      opts->help = true;
      return absl::OkStatus();
    case Flag::kVersion:
      opts->print_version = true;
      return absl::OkStatus();
  }
  return absl::InternalError(absl::StrCat("unhandled option ", arg.spec->name));
}

// Without -l/-c/--lcores: the calling thread's affinity, lcore N on CPU N. Without
// --main-lcore: the lowest lcore.
absl::Status FillDefaults(const MachineInfo& machine, CommandLine* cl, Options* opts) {
  if (cl->lcore_flags.empty()) {
    for (unsigned cpu = 0; cpu < kMaxLcores; ++cpu) {
      if (machine.affinity.test(cpu)) opts->lcores[cpu].set(cpu);
    }
    if (opts->lcores.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "the calling thread's CPU affinity (%s) has no CPU below %d; give -l or --lcores",
          FormatCpuSet(machine.affinity), kMaxLcores));
    }
    cl->lcore_source = SourceOf(opts->lcores);
  }
  if (!cl->main_lcore_given) opts->main_lcore = opts->lcores.begin()->first;
  return absl::OkStatus();
}

// Reads a CPU list file such as /sys/devices/system/cpu/present ("0-3,6").
CpuSet ReadCpuListFile(const char* path) {
  CpuSet cpus;
  std::ifstream in(path);
  std::string text;
  if (!std::getline(in, text)) return cpus;
  absl::StatusOr<std::vector<unsigned>> ids =
      ParseIdList(path, text, absl::StripAsciiWhitespace(text), kMaxCpus, "CPU");
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

absl::string_view TimerSourceName(TimerSource source) {
  switch (source) {
    case TimerSource::kAuto:
      return "auto";
    case TimerSource::kTsc:
      return "tsc";
    case TimerSource::kHpet:
      return "hpet";
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

absl::Status ValidateOptions(const Options& options, const MachineInfo& machine) {
  return Validate(options, machine, SourceOf(options.lcores));
}

absl::StatusOr<Options> ParseOptions(absl::Span<const std::string> args) {
  return ParseOptions(args, MachineInfo::Current());
}

absl::StatusOr<Options> ParseOptions(absl::Span<const std::string> args,
                                     const MachineInfo& machine) {
  Options opts;
  CommandLine cl;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      opts.app_args.assign(args.begin() + i + 1, args.end());
      break;
    }
    absl::StatusOr<Arg> arg = ReadArg(args, &i);
    if (!arg.ok()) return arg.status();
    if (absl::Status s = ParseFlag(*arg, &opts, &cl); !s.ok()) return s;
  }
  if (absl::Status s = FillDefaults(machine, &cl, &opts); !s.ok()) return s;
  if (absl::Status s = Validate(opts, machine, cl.lcore_source); !s.ok()) return s;
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
      "                          (at most one of -l, -c, --lcores; lcore ids 0..%d;\n"
      "                          default: this thread's CPU affinity)\n"
      "  --main-lcore N          the lcore that runs main(); default the lowest\n"
      "  --proc-type TYPE        primary (default), secondary, or auto (auto also\n"
      "                          adopts a group whose primary died)\n"
      "  --adopt                 as a primary, take over the group of a primary that\n"
      "                          died while its secondaries run (else start a new one)\n"
      "  --takeover              as a primary, ask the running primary to hand its\n"
      "                          group over (a planned upgrade), then adopt it\n"
      "  --file-prefix NAME      names the process group (default \"keel\");\n"
      "                          [A-Za-z0-9_.-], 1..%d characters, not \".\" or \"..\"\n"
      "  --attach-timeout SEC    how long a secondary waits for the primary\n"
      "                          (default 5, at most %g)\n"
      "  -m MB                   memory limit in megabytes\n"
      "  --socket-mem MB,MB..    memory per NUMA node, 0 = none on that node, but some\n"
      "                          node must get memory (not with -m or --no-huge)\n"
      "  --socket-limit MB,MB..  memory limit per NUMA node, 0 = no limit on that node\n"
      "                          (not with --no-huge)\n"
      "  --huge-dir DIR          hugetlbfs mount to use\n"
      "  --no-huge               ordinary shared memory instead of hugepages\n"
      "  --prefault              touch every page of shared memory at init\n"
      "  --base-virtaddr HEX     base address of the group's shared memory (4 KiB\n"
      "                          aligned, below 2^47)\n"
      "  -n N                    memory channels, 1..%d (accepted for compatibility)\n"
      "  --log-level [COMP:]LVL  log level, globally or per component\n"
      "                          (emerg..debug or 1..8)\n"
      "  --log-timestamp         prefix log lines with a UTC timestamp\n"
      "  --timer-source SRC      tsc, hpet or auto (default: the HPET when /dev/hpet\n"
      "                          opens, else the TSC); the primary chooses for all\n"
      "  --no-telemetry          serve no telemetry socket (--telemetry: serve one, the\n"
      "                          default)\n"
      "  -h, --help              print this help\n"
      "  -v                      print the version of every keel component\n",
      program, kMaxLcores - 1, kMaxFilePrefixLength, absl::ToDoubleSeconds(kMaxAttachTimeout),
      kMaxMemoryChannels);
}

}  // namespace keel::eal
