#include "eal/options.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "eal/eal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keel::eal {
namespace {

using ::testing::HasSubstr;

// A machine with CPUs 0-7 present, affinity 0-3, two NUMA nodes.
MachineInfo FakeMachine() {
  MachineInfo m;
  for (int i = 0; i < 8; ++i) m.present_cpus.set(i);
  for (int i = 0; i < 4; ++i) m.affinity.set(i);
  m.numa_nodes = 2;
  return m;
}

std::vector<std::string> Args(const std::string& line) {
  return absl::StrSplit(line, ' ', absl::SkipEmpty());
}

absl::StatusOr<Options> Parse(const std::vector<std::string>& args) {
  return ParseOptions(args, FakeMachine());
}

CpuSet Cpus(std::initializer_list<int> ids) {
  CpuSet set;
  for (int id : ids) set.set(id);
  return set;
}

struct RejectCase {
  std::vector<std::string> args;
  std::string message;  // must appear in the error
  // For one option and its value ("-l", "8" or "--x=8"): the error also says -l "8".
  // False where the option itself is what is wrong.
  bool names_value = true;
};

// FLAG "VALUE" for a case of one option and its value; "" for others.
std::string NamedValue(const std::vector<std::string>& args) {
  if (args.size() == 2 && absl::StartsWith(args[0], "-") && !absl::StartsWith(args[1], "--")) {
    return absl::StrCat(args[0], " \"", args[1], "\"");
  }
  if (args.size() == 1 && absl::StartsWith(args[0], "--") &&
      args[0].find('=') != std::string::npos) {
    const size_t eq = args[0].find('=');
    return absl::StrCat(args[0].substr(0, eq), " \"", args[0].substr(eq + 1), "\"");
  }
  return "";
}

void PrintTo(const RejectCase& c, std::ostream* os) { *os << testing::PrintToString(c.args); }

class RejectTest : public testing::TestWithParam<RejectCase> {};

TEST_P(RejectTest, FailsNamingTheFlagAndValue) {
  absl::StatusOr<Options> opts = Parse(GetParam().args);
  ASSERT_FALSE(opts.ok()) << "accepted: " << testing::PrintToString(GetParam().args);
  EXPECT_EQ(opts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(opts.status().message()), HasSubstr(GetParam().message));
  const std::string named = NamedValue(GetParam().args);
  if (GetParam().names_value && !named.empty()) {
    EXPECT_THAT(std::string(opts.status().message()), HasSubstr(named + ": "));
  }
}

// Everything DPDK's test_eal_flags.c rejects for these flags, and more.
INSTANTIATE_TEST_SUITE_P(
    Rejected, RejectTest,
    testing::Values(
        // -l
        RejectCase{{"-l"}, "option -l requires a value"},
        RejectCase{{"-l", " "}, "-l \" \": empty list"},
        RejectCase{{"-l", "1-"}, "-l \"1-\": range \"1-\" does not end"},
        RejectCase{{"-l", "1,"}, "-l \"1,\": empty list element"},
        RejectCase{{"-l", "1#2"}, "-l \"1#2\""}, RejectCase{{"-l", "-5"}, "-l \"-5\""},
        RejectCase{{"-l", "-5-7"}, "-l \"-5-7\""}, RejectCase{{"-l", "1-3-5"}, "is not N or N-M"},
        RejectCase{{"-l", "3-1"}, "descending"},
        RejectCase{{"-l", "8"}, "CPU 8 not present on this machine (present: 0-7)"},
        RejectCase{{"-l", "0-9"}, "CPU 8-9 not present"},
        RejectCase{{"-l", "128"}, "lcore 128 is out of range (max 127)"},
        RejectCase{{"-l", "0,,1"}, "empty list element"}, RejectCase{{"-l", "a"}, "-l \"a\""},
        RejectCase{{"-l", "--"}, "option -l requires a value"},
        // -c
        RejectCase{{"-c"}, "option -c requires a value"},
        RejectCase{{"-c", "error"}, "-c \"error\""},
        RejectCase{{"-c", "0x"}, "-c \"0x\": empty mask"},
        RejectCase{{"-c", "0"}, "mask selects no lcore"},
        RejectCase{{"-c", "0x100"}, "CPU 8 not present"},
        RejectCase{{"-c", "1g"}, "'g' is not a hex digit"},
        RejectCase{{"-c", "0x1000000000000000000000000000000000"}, "out of range"},
        // --lcores
        RejectCase{{"--lcores"}, "option --lcores requires a value"},
        RejectCase{{"--lcores", " "}, "empty map"},
        RejectCase{{"--lcores", "1-3-5"}, "is not N or N-M"},
        RejectCase{{"--lcores", "0-1,#2"}, "--lcores \"0-1,#2\""},
        RejectCase{{"--lcores", "2-"}, "does not end"},
        RejectCase{{"--lcores", "2-,4"}, "does not end"},
        RejectCase{{"--lcores", "2-3,4-"}, "does not end"},
        RejectCase{{"--lcores", "(1-3,4"}, "unbalanced '('"},
        RejectCase{{"--lcores", "1-3,4)"}, "unbalanced ')'"},
        RejectCase{{"--lcores", "((1))"}, "nested parentheses"},
        RejectCase{{"--lcores", "(1-3,4)@(5-7),(1,6)"}, "lcore 1 is mapped twice"},
        RejectCase{{"--lcores", "1@(0,8)"}, "CPU 8 not present"},
        RejectCase{{"--lcores", "1@1024"}, "CPU 1024 is out of range (max 1023)"},
        RejectCase{{"--lcores", "128@0"}, "lcore 128 is out of range"},
        RejectCase{{"--lcores", "1@"}, "empty list"}, RejectCase{{"--lcores", "@1"}, "empty list"},
        RejectCase{{"--lcores", "1@5-6"}, "must be a group"},
        RejectCase{{"--lcores", "1,,2"}, "empty element"},
        RejectCase{{"--lcores", "1(2)"}, "misplaced parenthesis"},
        // Two of -l / -c / --lcores.
        RejectCase{{"-l", "0", "-c", "1"}, "give only one (got -l and -c)"},
        RejectCase{{"-c", "1", "--lcores", "0"}, "give only one (got -c and --lcores)"},
        RejectCase{{"-l", "0-1", "--lcores", "0-1"}, "give only one"},
        RejectCase{{"-l", "0", "-l", "1"}, "give only one (got -l and -l)"},
        // --main-lcore
        RejectCase{{"--main-lcore"}, "option --main-lcore requires a value"},
        RejectCase{{"--main-lcore", "error"}, "--main-lcore \"error\""},
        RejectCase{{"--main-lcore", "1", "-c", "0x1"},
                   "--main-lcore \"1\": not one of this process's lcores (0)"},
        RejectCase{{"--main-lcore", "5"}, "not one of this process's lcores (0,1,2,3)"},
        RejectCase{{"--main-lcore", "-1", "-l", "0"}, "--main-lcore \"-1\""},
        RejectCase{{"--main-lcore", "128"}, "--main-lcore \"128\""},
        // -n
        RejectCase{{"-n"}, "option -n requires a value"}, RejectCase{{"-n", "0"}, "-n \"0\""},
        RejectCase{{"-n", "e"}, "-n \"e\""}, RejectCase{{"-n", "2e"}, "-n \"2e\""},
        RejectCase{{"-n", "-1"}, "-n \"-1\""},
        // --proc-type
        RejectCase{{"--proc-type=ERROR"}, "--proc-type \"ERROR\": must be primary"},
        RejectCase{{"--proc-type"}, "option --proc-type requires a value"},
        RejectCase{{"--proc-type="}, "--proc-type \"\""},
        // --adopt, --takeover
        RejectCase{{"--adopt", "--proc-type=secondary"},
                   "--adopt makes a primary take a group over; it cannot go with --proc-type "
                   "secondary"},
        RejectCase{{"--proc-type=secondary", "--takeover"}, "--takeover makes a primary"},
        // --file-prefix
        RejectCase{{"--file-prefix="}, "--file-prefix \"\": must be 1 to 64 characters"},
        RejectCase{{"--file-prefix", "a/b"}, "--file-prefix \"a/b\": may only contain"},
        RejectCase{{"--file-prefix", "../x"}, "may only contain"},
        RejectCase{{"--file-prefix", ".."}, "must not be \".\" or \"..\""},
        RejectCase{{"--file-prefix", "."}, "must not be"},
        RejectCase{{"--file-prefix", "a b"}, "may only contain"},
        RejectCase{{"--file-prefix", std::string(65, 'x')}, "1 to 64 characters"},
        // -m, --socket-mem, --socket-limit
        RejectCase{{"-m"}, "option -m requires a value"},
        RejectCase{{"-m", "0"}, "-m \"0\": not a positive size"},
        RejectCase{{"-m", "1e3"}, "-m \"1e3\""}, RejectCase{{"-m", "-2"}, "-m \"-2\""},
        RejectCase{{"-m", "2", "--socket-mem=2"},
                   "-m and --socket-mem cannot be used together (-m 2, --socket-mem 2)"},
        RejectCase{{"--socket-mem="}, "--socket-mem \"\": empty list"},
        RejectCase{{"--socket-mem=2,2,2"}, "3 entries but this machine has 2 NUMA nodes"},
        RejectCase{{"--socket-mem=a,b"}, "\"a\" is not a size in megabytes"},
        RejectCase{{"--socket-mem=1e3"}, "\"1e3\" is not a size"},
        RejectCase{{"--socket-mem=2,"}, "\"\" is not a size"},
        RejectCase{{"--socket-mem=,2"}, "\"\" is not a size"},
        RejectCase{{"--socket-mem=,,"}, "is not a size"},
        RejectCase{{"--socket-mem=-1"}, "\"-1\" is not a size"},
        RejectCase{{"--socket-limit=x"}, "--socket-limit \"x\""},
        RejectCase{{"--socket-limit=1,1,1"}, "3 entries"},
        RejectCase{{"--no-huge", "--socket-mem=32"},
                   "--no-huge and --socket-mem cannot be used together (--socket-mem 32)"},
        RejectCase{{"--no-huge", "--socket-limit=32"},
                   "--no-huge and --socket-limit cannot be used together (--socket-limit 32)"},
        // --huge-dir, --no-huge, --base-virtaddr
        RejectCase{{"--huge-dir", "/nonexistent/keel"}, "--huge-dir \"/nonexistent/keel\""},
        RejectCase{{"--huge-dir", "/proc/self/status"}, "not a directory"},
        RejectCase{{"--huge-dir="}, "--huge-dir \"\": empty path"},
        RejectCase{{"--no-huge", "--huge-dir", "/tmp"},
                   "--no-huge and --huge-dir cannot be used together (--huge-dir \"/tmp\")"},
        RejectCase{{"--no-huge=1"}, "option --no-huge takes no value", false},
        RejectCase{{"--base-virtaddr", "xyz"}, "--base-virtaddr \"xyz\": not a hexadecimal"},
        RejectCase{{"--base-virtaddr", "0x"}, "not a hexadecimal"},
        RejectCase{{"--base-virtaddr", "0"}, "must not be 0"},
        RejectCase{{"--base-virtaddr", "0x1001"}, "not 4 KiB aligned"},
        RejectCase{{"--base-virtaddr", "0x800000000000"}, "beyond the 47-bit"},
        RejectCase{{"--base-virtaddr", "0x12345678901234567"}, "not a hexadecimal"},
        // --log-level, --attach-timeout
        RejectCase{{"--log-level", "loud"}, "--log-level \"loud\": log level \"loud\""},
        RejectCase{{"--log-level", "eal:9"}, "--log-level \"eal:9\""},
        RejectCase{{"--log-level", ":debug"}, "component name"},
        RejectCase{{"--log-level", "e/l:debug"}, "component name"},
        RejectCase{{"--attach-timeout", "0"}, "--attach-timeout \"0\""},
        RejectCase{{"--attach-timeout", "-1"}, "--attach-timeout \"-1\""},
        RejectCase{{"--attach-timeout", "soon"}, "--attach-timeout \"soon\""},
        RejectCase{{"--attach-timeout", "inf"}, "--attach-timeout \"inf\""},
        // --timer-source
        RejectCase{{"--timer-source"}, "option --timer-source requires a value"},
        RejectCase{{"--timer-source", "rdtsc"},
                   "--timer-source \"rdtsc\": must be tsc, hpet or auto"},
        RejectCase{{"--timer-source=TSC"}, "--timer-source \"TSC\": must be tsc, hpet or auto"},
        RejectCase{{"--timer-source="}, "--timer-source \"\": must be tsc, hpet or auto"},
        RejectCase{{"--timer-source", "hpet,tsc"}, "--timer-source \"hpet,tsc\""},
        // Unknown options and stray arguments.
        RejectCase{{"--foo"}, "unknown option \"--foo\""},
        RejectCase{{"-x"}, "unknown option \"-x\""},
        RejectCase{{"-r", "2"}, "unknown option \"-r\"", false},
        RejectCase{{"stray"}, "unexpected argument \"stray\""},
        RejectCase{{"-vx"}, "option -v takes no value"},
        // A single-dash spelling of a long option is not a short option with a value.
        RejectCase{{"-no-huge"}, "unknown option \"-no-huge\": did you mean \"--no-huge\"?"},
        RejectCase{{"-lcores", "0"}, "did you mean \"--lcores\"?", false},
        RejectCase{{"-file-prefix=x"}, "did you mean \"--file-prefix\"?"},
        RejectCase{{"-help"}, "did you mean \"--help\"?"},
        // Numbers too large for any type are out of range, naming flag, value and limit.
        RejectCase{{"-l", "99999999999999999999"},
                   "-l \"99999999999999999999\": lcore 99999999999999999999 is out of range "
                   "(max 127)"},
        RejectCase{{"-l", "0-99999999999999999999"},
                   "-l \"0-99999999999999999999\": lcore 99999999999999999999 is out of range "
                   "(max 127)"},
        RejectCase{{"--lcores", "4294967296@0"},
                   "--lcores \"4294967296@0\": lcore 4294967296 is out of range (max 127)"},
        RejectCase{{"--lcores", "0@99999999999999999999"},
                   "--lcores \"0@99999999999999999999\": CPU 99999999999999999999 is out of "
                   "range (max 1023)"},
        RejectCase{{"--main-lcore", "4294967296"},
                   "--main-lcore \"4294967296\": lcore 4294967296 is out of range (max 127)"},
        RejectCase{{"--main-lcore", "200", "-l", "0"},
                   "--main-lcore \"200\": lcore 200 is out of range (max 127)"},
        RejectCase{{"-m", "99999999999999999999"},
                   "-m \"99999999999999999999\": 99999999999999999999 MB is out of range "
                   "(max 134217728 MB)"},
        RejectCase{{"-m", "134217729"},
                   "-m \"134217729\": 134217729 MB is out of range (max 134217728 MB)"},
        RejectCase{{"--socket-mem", "99999999999999999999"},
                   "--socket-mem \"99999999999999999999\": 99999999999999999999 MB is out of "
                   "range (max 134217728 MB)"},
        RejectCase{{"--socket-limit", "1,4294967296000"},
                   "--socket-limit \"1,4294967296000\": 4294967296000 MB is out of range"},
        RejectCase{{"-n", "99999999999999999999"},
                   "-n \"99999999999999999999\": channel count 99999999999999999999 is out of "
                   "range (max 32)"},
        RejectCase{{"-n", "33"}, "-n \"33\": channel count 33 is out of range (max 32)"},
        RejectCase{{"--attach-timeout", "3601"},
                   "--attach-timeout \"3601\": not a number of seconds in (0, 3600]"},
        // An lcore mapped twice onto different CPUs names both mappings.
        RejectCase{{"--lcores", "0@0,0@1"},
                   "--lcores \"0@0,0@1\": lcore 0 is mapped twice: to CPUs 0 and to CPUs 1"},
        RejectCase{{"--lcores", "(0,1),0"}, "lcore 0 is mapped twice: to CPUs 0-1 and to CPUs 0"},
        // No memory anywhere; more memory on a socket than its limit.
        RejectCase{{"--socket-mem", "0,0"},
                   "--socket-mem \"0,0\": asks for no memory on any NUMA node"},
        RejectCase{{"--socket-mem", "0"}, "--socket-mem \"0\": asks for no memory"},
        RejectCase{{"--socket-mem", "128,64", "--socket-limit", "64,0"},
                   "--socket-mem \"128,64\": 128 MB on NUMA node 0 is above its "
                   "--socket-limit of 64 MB"}));

TEST(ParseOptions, DefaultsFollowTheThreadAffinity) {
  absl::StatusOr<Options> opts = Parse({});
  ASSERT_TRUE(opts.ok()) << opts.status();
  ASSERT_EQ(opts->lcores.size(), 4u);  // affinity 0-3
  for (unsigned i = 0; i < 4; ++i) EXPECT_EQ(opts->lcores.at(i), Cpus({static_cast<int>(i)}));
  EXPECT_EQ(opts->main_lcore, 0u);
  EXPECT_EQ(opts->proc_type, ProcessType::kPrimary);
  EXPECT_EQ(opts->file_prefix, "keel");
  EXPECT_EQ(opts->memory_mb, 0u);
  EXPECT_FALSE(opts->no_huge);
  EXPECT_EQ(opts->attach_timeout, absl::Seconds(5));
  EXPECT_TRUE(opts->app_args.empty());
}

TEST(ParseOptions, CoreList) {
  absl::StatusOr<Options> opts = Parse(Args("-l 1-2,5"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.size(), 3u);
  EXPECT_EQ(opts->lcores.at(5), Cpus({5}));
  EXPECT_EQ(opts->main_lcore, 1u);
  // Attached value, duplicates folded.
  opts = Parse(Args("-l0,0,1"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.size(), 2u);
  opts = Parse(Args("-l 0-2,1"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.size(), 3u);
}

// -l and --lcores agree: an lcore named twice onto the same CPUs is folded (DPDK folds
// duplicate ids in -l); onto different CPUs it is refused (see RejectTest).
TEST(ParseOptions, DuplicateLcoresFoldWhenTheyAgree) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"-l", "0,0"},
                                             {"--lcores", "0,0"},
                                             {"--lcores", "0@0,0@0"},
                                             {"--lcores", "0-1,1"},
                                             {"--lcores", "(0,1)@(2,3),1@(2-3)"}}) {
    absl::StatusOr<Options> opts = Parse(args);
    ASSERT_TRUE(opts.ok()) << testing::PrintToString(args) << ": " << opts.status();
    EXPECT_EQ(opts->lcores.count(0), 1u) << testing::PrintToString(args);
  }
  absl::StatusOr<Options> opts = Parse({"--lcores", "(0,1)@(2,3),1@(2-3)"});
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.size(), 2u);
  EXPECT_EQ(opts->lcores.at(1), Cpus({2, 3}));
  opts = Parse({"--lcores", "0,0"});
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.size(), 1u);
  EXPECT_EQ(opts->lcores.at(0), Cpus({0}));
}

// --socket-limit 0 keeps DPDK's meaning: no limit on that NUMA node.
TEST(ParseOptions, SocketLimitZeroMeansNoLimit) {
  absl::StatusOr<Options> opts = Parse(Args("--socket-limit 0,64 --socket-mem 4096,64"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->socket_limit_mb, (std::vector<uint64_t>{0, 64}));
  EXPECT_EQ(opts->socket_mem_mb, (std::vector<uint64_t>{4096, 64}));
  opts = Parse(Args("--socket-limit 0"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->socket_limit_mb, (std::vector<uint64_t>{0}));
  // One node without memory is fine as long as another has some.
  opts = Parse(Args("--socket-mem 0,64"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->socket_mem_mb, (std::vector<uint64_t>{0, 64}));
}

TEST(Usage, SaysWhatZeroMeansAndFitsATerminal) {
  const std::string usage = Usage("prog");
  EXPECT_THAT(usage, HasSubstr("memory limit per NUMA node, 0 = no limit on that node"));
  EXPECT_THAT(usage, HasSubstr("--timer-source SRC      tsc, hpet or auto"));
  EXPECT_THAT(usage, HasSubstr("memory per NUMA node, 0 = none on that node, but some\n"
                               "                          node must get memory"));
  for (absl::string_view line : absl::StrSplit(usage, '\n')) {
    EXPECT_LE(line.size(), 80u) << line;
  }
}

// A short option keeps its glued value when no long option is spelt that way.
TEST(ParseOptions, GluedShortValuesStillWork) {
  absl::StatusOr<Options> opts = Parse(Args("-l0-1 -n4 -m64 -c3"));
  ASSERT_FALSE(opts.ok());  // -l and -c
  opts = Parse(Args("-l0-1 -n4 -m64"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.size(), 2u);
  EXPECT_EQ(opts->memory_channels, 4u);
  EXPECT_EQ(opts->memory_mb, 64u);
}

TEST(ParseOptions, CoreMask) {
  absl::StatusOr<Options> opts = Parse(Args("-c 0xA"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  ASSERT_EQ(opts->lcores.size(), 2u);
  EXPECT_EQ(opts->lcores.at(1), Cpus({1}));
  EXPECT_EQ(opts->lcores.at(3), Cpus({3}));
  opts = Parse(Args("-c f0"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.size(), 4u);
  EXPECT_EQ(opts->main_lcore, 4u);
}

TEST(ParseOptions, LcoreMapFromDpdkTests) {
  // DPDK's own "valid" example maps lcore 0 twice and silently keeps the last mapping;
  // keel refuses the ambiguity.
  absl::StatusOr<Options> opts = Parse({"--lcores", "0-1,2@(5-7),(3-5)@(0,2),(0,6),7"});
  ASSERT_FALSE(opts.ok());
  EXPECT_THAT(std::string(opts.status().message()), HasSubstr("lcore 0 is mapped twice"));

  opts = Parse({"--lcores", "0-1,2@(5-7),(3-5)@(0,2),(6),7"});
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.size(), 8u);
  EXPECT_EQ(opts->lcores.at(0), Cpus({0}));
  EXPECT_EQ(opts->lcores.at(1), Cpus({1}));
  EXPECT_EQ(opts->lcores.at(2), Cpus({5, 6, 7}));
  EXPECT_EQ(opts->lcores.at(4), Cpus({0, 2}));
  EXPECT_EQ(opts->lcores.at(6), Cpus({6}));
  EXPECT_EQ(opts->lcores.at(7), Cpus({7}));
}

TEST(ParseOptions, LcoreMapShapes) {
  absl::StatusOr<Options> opts = Parse({"--lcores", "2@0,3@1"});
  ASSERT_TRUE(opts.ok()) << opts.status();
  ASSERT_EQ(opts->lcores.size(), 2u);
  EXPECT_EQ(opts->lcores.at(2), Cpus({0}));
  EXPECT_EQ(opts->lcores.at(3), Cpus({1}));
  EXPECT_EQ(opts->main_lcore, 2u);

  opts = Parse({"--lcores", "(4-5)@1"});
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.at(4), Cpus({1}));
  EXPECT_EQ(opts->lcores.at(5), Cpus({1}));

  opts = Parse({"--lcores=(10,20)@(0-1,3)", "--main-lcore=20"});
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.at(10), Cpus({0, 1, 3}));
  EXPECT_EQ(opts->main_lcore, 20u);

  // Without '@', each lcore of a group runs on the group's CPUs.
  opts = Parse({"--lcores", "(0,6),7"});
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.at(0), Cpus({0, 6}));
  EXPECT_EQ(opts->lcores.at(6), Cpus({0, 6}));
  EXPECT_EQ(opts->lcores.at(7), Cpus({7}));
}

TEST(ParseOptions, TimerSource) {
  absl::StatusOr<Options> opts = Parse({});
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->timer_source, TimerSource::kAuto);
  for (const auto& [text, source] :
       std::vector<std::pair<std::string, TimerSource>>{{"tsc", TimerSource::kTsc},
                                                        {"hpet", TimerSource::kHpet},
                                                        {"auto", TimerSource::kAuto}}) {
    opts = Parse({"--timer-source", text});
    ASSERT_TRUE(opts.ok()) << text << ": " << opts.status();
    EXPECT_EQ(opts->timer_source, source) << text;
    EXPECT_EQ(TimerSourceName(source), text);
    opts = Parse({"--timer-source=" + text});  // attached value
    ASSERT_TRUE(opts.ok()) << text << ": " << opts.status();
    EXPECT_EQ(opts->timer_source, source) << text;
  }
  // The last one given wins, as for the other single-valued options.
  opts = Parse(Args("--timer-source hpet --timer-source tsc"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->timer_source, TimerSource::kTsc);
  EXPECT_EQ(TimerSourceName(static_cast<TimerSource>(7)), "unknown");
}

TEST(ParseOptions, EveryOtherFlag) {
  absl::StatusOr<Options> opts = Parse({"--proc-type=auto",
                                        "--file-prefix",
                                        "grp_1.a-b",
                                        "-m",
                                        "1024",
                                        "--socket-limit",
                                        "512,0",
                                        "--base-virtaddr",
                                        "0x100000000",
                                        "-n",
                                        "4",
                                        "--log-level",
                                        "debug",
                                        "--log-level=ring:3",
                                        "--log-timestamp",
                                        "--attach-timeout",
                                        "0.5",
                                        "-v",
                                        "--huge-dir",
                                        "/tmp",
                                        "--",
                                        "-p",
                                        "--stay",
                                        "3"});
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->proc_type, ProcessType::kAuto);
  EXPECT_EQ(opts->file_prefix, "grp_1.a-b");
  EXPECT_EQ(opts->memory_mb, 1024u);
  EXPECT_EQ(opts->socket_limit_mb, (std::vector<uint64_t>{512, 0}));
  EXPECT_EQ(opts->base_virtaddr, 0x100000000u);
  EXPECT_EQ(opts->memory_channels, 4u);
  ASSERT_EQ(opts->log_levels.size(), 2u);
  EXPECT_EQ(opts->log_levels[0], (std::pair<std::string, log::Level>{"", log::Level::kDebug}));
  EXPECT_EQ(opts->log_levels[1],
            (std::pair<std::string, log::Level>{"ring", log::Level::kCritical}));
  EXPECT_TRUE(opts->log_timestamp);
  EXPECT_EQ(opts->attach_timeout, absl::Milliseconds(500));
  EXPECT_TRUE(opts->print_version);
  EXPECT_EQ(opts->huge_dir, "/tmp");
  EXPECT_EQ(opts->app_args, (std::vector<std::string>{"-p", "--stay", "3"}));

  opts = Parse(Args("--proc-type secondary --socket-mem 64,64 -h"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->proc_type, ProcessType::kSecondary);
  EXPECT_EQ(opts->socket_mem_mb, (std::vector<uint64_t>{64, 64}));
  EXPECT_TRUE(opts->help);

  opts = Parse(Args("--no-huge -m 32 --proc-type primary"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_TRUE(opts->no_huge);
  EXPECT_EQ(opts->memory_mb, 32u);
}

TEST(ParseOptions, TelemetryIsOnUnlessRefused) {
  EXPECT_TRUE(Parse({})->telemetry);
  EXPECT_FALSE(Parse({"--no-telemetry"})->telemetry);
  EXPECT_TRUE(Parse({"--no-telemetry", "--telemetry"})->telemetry);  // the last one wins
  absl::StatusOr<Options> valued = Parse({"--no-telemetry=1"});
  ASSERT_FALSE(valued.ok());
  EXPECT_THAT(valued.status().message(), HasSubstr("--no-telemetry"));
}

TEST(ParseOptions, LaterProcTypeWins) {
  absl::StatusOr<Options> opts = Parse(Args("--proc-type auto --proc-type secondary"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->proc_type, ProcessType::kSecondary);
}

TEST(ParseOptions, AdoptAndTakeoverAreFlagsOfAPrimary) {
  absl::StatusOr<Options> opts = Parse(Args("--adopt --proc-type auto"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_TRUE(opts->adopt);
  EXPECT_FALSE(opts->takeover);
  opts = Parse(Args("--takeover"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_TRUE(opts->takeover);
  EXPECT_FALSE(opts->adopt);
  EXPECT_FALSE(Parse(Args("-l 0")).value().adopt);
}

TEST(ParseOptions, OptionsAfterDoubleDashBelongToTheApplication) {
  absl::StatusOr<Options> opts = Parse(Args("-l 0 -- -l 7 --bogus"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.size(), 1u);
  EXPECT_EQ(opts->app_args, (std::vector<std::string>{"-l", "7", "--bogus"}));
}

TEST(ParseOptions, LogLevelNamesAndNumbers) {
  for (const auto& [text, level] :
       std::vector<std::pair<std::string, log::Level>>{{"emerg", log::Level::kEmergency},
                                                       {"ERR", log::Level::kError},
                                                       {"error", log::Level::kError},
                                                       {"warn", log::Level::kWarning},
                                                       {"8", log::Level::kDebug},
                                                       {"notice", log::Level::kNotice}}) {
    absl::StatusOr<Options> opts = Parse({"--log-level", "mempool:" + text});
    ASSERT_TRUE(opts.ok()) << text << ": " << opts.status();
    EXPECT_EQ(opts->log_levels[0].second, level) << text;
  }
}

TEST(FormatCpuSet, Ranges) {
  EXPECT_EQ(FormatCpuSet(Cpus({0, 1, 2, 5, 7, 8})), "0-2,5,7-8");
  EXPECT_EQ(FormatCpuSet(CpuSet()), "");
}

TEST(MachineInfo, CurrentSeesThisMachine) {
  const MachineInfo m = MachineInfo::Current();
  EXPECT_TRUE(m.present_cpus.test(0));
  EXPECT_TRUE(m.affinity.any());
  EXPECT_EQ((m.affinity & ~m.present_cpus).count(), 0u);
  EXPECT_GE(m.numa_nodes, 1);
}

// Options built in code go through the same rules as the command line: each case starts
// from options valid on `machine` and breaks one rule.
struct CodeCase {
  std::string name;
  std::function<void(Options&, const MachineInfo&)> mutate;
  std::string message;  // must appear in the error
};

unsigned FirstCpu(const CpuSet& cpus) {
  for (unsigned cpu = 0; cpu < kMaxCpus; ++cpu) {
    if (cpus.test(cpu)) return cpu;
  }
  return 0;
}

// lcore 0 on the first CPU of the machine's affinity, under `prefix`; nothing else given.
Options ValidOptions(const MachineInfo& machine, const std::string& prefix) {
  Options options;
  options.lcores[0].set(FirstCpu(machine.affinity & machine.present_cpus));
  options.main_lcore = 0;
  options.file_prefix = prefix;
  return options;
}

std::vector<uint64_t> Entries(int count, uint64_t mb) {
  return std::vector<uint64_t>(static_cast<size_t>(count), mb);
}

const std::vector<CodeCase>& CodeCases() {
  using M = const MachineInfo&;
  static const auto* cases = new std::vector<CodeCase>{
      // The lcore set.
      {"LcoreIdAtTheLimit", [](Options& o, M m) { o.lcores[128] = o.lcores[0]; },
       "lcore 128 is out of range (max 127)"},
      {"LcoreId200", [](Options& o, M m) { o.lcores[200] = o.lcores[0]; },
       "lcore 200 is out of range (max 127)"},
      {"MainLcore200",
       [](Options& o, M m) {
         o.lcores[200] = o.lcores[0];
         o.main_lcore = 200;
       },
       "lcore 200 is out of range (max 127)"},
      {"MainLcoreOutsideTheSet", [](Options& o, M m) { o.main_lcore = 5; },
       "--main-lcore \"5\": not one of this process's lcores (0)"},
      {"EmptyLcoreSet", [](Options& o, M m) { o.lcores.clear(); }, "--lcores \"\": no lcore"},
      {"LcoreWithoutCpu", [](Options& o, M m) { o.lcores[0].reset(); }, "lcore 0 has no CPU"},
      {"CpuNotPresent",
       [](Options& o, M m) {
         o.lcores[0].reset();
         o.lcores[0].set(FirstCpu(~m.present_cpus));
       },
       "not present on this machine"},
      // The file prefix names a directory under the runtime base: one path component.
      {"PrefixClimbsOutOfTheBase", [](Options& o, M m) { o.file_prefix = "a/../../b"; },
       "--file-prefix \"a/../../b\": may only contain letters, digits, '_', '.' and '-'"},
      {"PrefixDotDot", [](Options& o, M m) { o.file_prefix = ".."; },
       "--file-prefix \"..\": must not be \".\" or \"..\""},
      {"PrefixDot", [](Options& o, M m) { o.file_prefix = "."; }, "--file-prefix \".\": must not"},
      {"PrefixEmpty", [](Options& o, M m) { o.file_prefix = ""; },
       "--file-prefix \"\": must be 1 to 64 characters"},
      {"PrefixTooLong", [](Options& o, M m) { o.file_prefix = std::string(65, 'x'); },
       "must be 1 to 64 characters"},
      {"PrefixWithSlash", [](Options& o, M m) { o.file_prefix = "a/b"; },
       "--file-prefix \"a/b\": may only contain"},
      {"PrefixWithNewline", [](Options& o, M m) { o.file_prefix = "a\nb"; },
       "--file-prefix \"a\\x0ab\": may only contain"},
      {"ProcTypeOutOfRange", [](Options& o, M m) { o.proc_type = static_cast<ProcessType>(7); },
       "--proc-type \"7\": must be primary, secondary or auto"},
      // Memory.
      {"MemoryTooLarge", [](Options& o, M m) { o.memory_mb = uint64_t{1} << 40; },
       "-m \"1099511627776\": 1099511627776 MB is out of range (max 134217728 MB)"},
      {"MemoryWithSocketMem",
       [](Options& o, M m) {
         o.memory_mb = 64;
         o.socket_mem_mb = {64};
       },
       "-m and --socket-mem cannot be used together"},
      {"SocketMemNowhere", [](Options& o, M m) { o.socket_mem_mb = Entries(m.numa_nodes, 0); },
       "asks for no memory on any NUMA node"},
      {"SocketMemMoreEntriesThanNodes",
       [](Options& o, M m) { o.socket_mem_mb = Entries(m.numa_nodes + 1, 1); },
       "entries but this machine has"},
      {"SocketLimitMoreEntriesThanNodes",
       [](Options& o, M m) { o.socket_limit_mb = Entries(m.numa_nodes + 1, 1); },
       "--socket-limit \""},
      {"SocketMemTooLarge", [](Options& o, M m) { o.socket_mem_mb = {uint64_t{1} << 40}; },
       "--socket-mem \"1099511627776\": 1099511627776 MB is out of range"},
      {"SocketLimitTooLarge", [](Options& o, M m) { o.socket_limit_mb = {uint64_t{1} << 40}; },
       "--socket-limit \"1099511627776\": 1099511627776 MB is out of range"},
      {"SocketMemAboveItsLimit",
       [](Options& o, M m) {
         o.socket_mem_mb = {128};
         o.socket_limit_mb = {64};
       },
       "--socket-mem \"128\": 128 MB on NUMA node 0 is above its --socket-limit of 64 MB"},
      {"NoHugeWithSocketMem",
       [](Options& o, M m) {
         o.no_huge = true;
         o.socket_mem_mb = {64};
       },
       "--no-huge and --socket-mem cannot be used together"},
      {"NoHugeWithSocketLimit",
       [](Options& o, M m) {
         o.no_huge = true;
         o.socket_limit_mb = {64};
       },
       "--no-huge and --socket-limit cannot be used together"},
      {"NoHugeWithHugeDir",
       [](Options& o, M m) {
         o.no_huge = true;
         o.huge_dir = "/tmp";
       },
       "--no-huge and --huge-dir cannot be used together"},
      {"HugeDirMissing", [](Options& o, M m) { o.huge_dir = "/nonexistent/keel"; },
       "--huge-dir \"/nonexistent/keel\": No such file or directory"},
      {"HugeDirNotADirectory", [](Options& o, M m) { o.huge_dir = "/proc/self/status"; },
       "--huge-dir \"/proc/self/status\": not a directory"},
      {"BaseVirtaddrUnaligned", [](Options& o, M m) { o.base_virtaddr = 0x1001; },
       "--base-virtaddr \"0x1001\": not 4 KiB aligned"},
      {"BaseVirtaddrAbove47Bits", [](Options& o, M m) { o.base_virtaddr = uint64_t{1} << 47; },
       "--base-virtaddr \"0x800000000000\": beyond the 47-bit user address space"},
      {"MemoryChannelsTooMany", [](Options& o, M m) { o.memory_channels = 33; },
       "-n \"33\": channel count 33 is out of range (max 32)"},
      // Logging and attach.
      {"LogComponentName",
       [](Options& o, M m) {
         o.log_levels = {{"e/l", log::Level::kDebug}};
       },
       "--log-level \"e/l:debug\": component name must be [A-Za-z0-9_.]+"},
      {"LogLevelAboveDebug",
       [](Options& o, M m) {
         o.log_levels = {{"", static_cast<log::Level>(9)}};
       },
       "--log-level \"9\": log level 9 is not 1..8"},
      {"LogLevelZero",
       [](Options& o, M m) {
         o.log_levels = {{"eal", static_cast<log::Level>(0)}};
       },
       "--log-level \"eal:0\": log level 0 is not 1..8"},
      {"AttachTimeoutZero", [](Options& o, M m) { o.attach_timeout = absl::ZeroDuration(); },
       "--attach-timeout \"0\": not a number of seconds in (0, 3600]"},
      {"AttachTimeoutNegative", [](Options& o, M m) { o.attach_timeout = absl::Seconds(-1); },
       "--attach-timeout \"-1\": not a number of seconds in (0, 3600]"},
      {"AttachTimeoutInfinite",
       [](Options& o, M m) { o.attach_timeout = absl::InfiniteDuration(); },
       "--attach-timeout \"inf\": not a number of seconds in (0, 3600]"},
      {"AttachTimeoutAboveAnHour", [](Options& o, M m) { o.attach_timeout = absl::Seconds(3601); },
       "--attach-timeout \"3601\": not a number of seconds in (0, 3600]"},
      {"TimerSourceOutOfRange",
       [](Options& o, M m) { o.timer_source = static_cast<TimerSource>(7); },
       "--timer-source \"7\": must be tsc, hpet or auto"},
  };
  return *cases;
}

// KEEL_RUNTIME_DIR points the runtime base at ROOT/base, a directory of this test alone.
class RuntimeRoot : public testing::Environment {
 public:
  static const std::string& Path() { return path_; }
  static std::string Base() { return path_ + "/base"; }

  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/keel-options-XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
    ASSERT_EQ(setenv("KEEL_RUNTIME_DIR", Base().c_str(), 1), 0);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

 private:
  static std::string path_;
};
std::string RuntimeRoot::path_;
testing::Environment* const kRuntimeRoot = testing::AddGlobalTestEnvironment(new RuntimeRoot);

// Every path under the runtime root.
std::set<std::string> Tree() {
  std::set<std::string> paths;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(RuntimeRoot::Path(), error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    paths.insert(it->path().string());
  }
  return paths;
}

std::string CasePrefix(const std::string& name) {
  return absl::StrCat("t.options.", getpid(), ".", name);
}

void PrintTo(const CodeCase& c, std::ostream* os) { *os << c.name; }

class CodeOptionsTest : public testing::TestWithParam<CodeCase> {};

TEST_P(CodeOptionsTest, ValidateOptionsRefuses) {
  const MachineInfo machine = FakeMachine();
  Options options = ValidOptions(machine, CasePrefix(GetParam().name));
  ASSERT_TRUE(ValidateOptions(options, machine).ok());
  GetParam().mutate(options, machine);
  const absl::Status status = ValidateOptions(options, machine);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(GetParam().message));
}

TEST_P(CodeOptionsTest, InitRefusesBeforeCreatingAnything) {
  const MachineInfo machine = MachineInfo::Current();
  Options options = ValidOptions(machine, CasePrefix(GetParam().name));
  GetParam().mutate(options, machine);
  if (GetParam().name == "CpuNotPresent" && machine.present_cpus.all()) {
    GTEST_SKIP() << "every CPU id below " << kMaxCpus << " is present";
  }
  const std::set<std::string> before = Tree();
  const absl::Status status = Init(options);
  if (status.ok()) {
    ADD_FAILURE() << "Init accepted the options";
    EXPECT_TRUE(Cleanup().ok());
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(GetParam().message));
  EXPECT_EQ(Tree(), before) << "Init created files before refusing the options";
  // RuntimeDir(prefix); for "", "." and ".." it names the base or its parent, which the
  // tree comparison above covers.
  if (options.file_prefix != "" && options.file_prefix != "." && options.file_prefix != "..") {
    EXPECT_FALSE(std::filesystem::exists(RuntimeRoot::Base() + "/" + options.file_prefix));
  }
  EXPECT_FALSE(std::filesystem::exists(RuntimeRoot::Path() + "/b"));  // "a/../../b"
}

INSTANTIATE_TEST_SUITE_P(Refused, CodeOptionsTest, testing::ValuesIn(CodeCases()),
                         [](const testing::TestParamInfo<CodeCase>& info) {
                           return info.param.name;
                         });

// Messages about Options built in code show the lcore set in --lcores syntax.
TEST(ValidateOptions, NamesTheLcoreSetInLcoresSyntax) {
  const MachineInfo machine = FakeMachine();
  Options options = ValidOptions(machine, "x");
  options.lcores[200] = Cpus({1, 2});
  absl::Status status = ValidateOptions(options, machine);
  EXPECT_EQ(status.message(), "--lcores \"0@0,200@(1-2)\": lcore 200 is out of range (max 127)");
  options.lcores.erase(200);
  options.lcores[3] = Cpus({9});
  status = ValidateOptions(options, machine);
  EXPECT_EQ(status.message(),
            "--lcores \"0@0,3@9\": CPU 9 not present on this machine (present: 0-7)");
  options.lcores.clear();
  status = ValidateOptions(options, machine);
  EXPECT_EQ(status.message(),
            "--lcores \"\": no lcore (give -l, -c or --lcores, or fill Options::lcores)");
}

// Values quoted in messages are bounded: a runaway string is cut.
TEST(ValidateOptions, CutsLongValues) {
  Options options = ValidOptions(FakeMachine(), std::string(100000, 'p'));
  const absl::Status status = ValidateOptions(options, FakeMachine());
  EXPECT_EQ(status.message(), absl::StrCat("--file-prefix \"", std::string(128, 'p'),
                                           "...\": must be 1 to 64 characters (it has 100000)"));
}

// What the parser accepts, the validation accepts: both ways in agree.
TEST(ValidateOptions, AcceptsWhatTheParserAccepts) {
  for (const std::string& line :
       {std::string(""), std::string("-l 0-3 --main-lcore 2"), std::string("-c 0xf0"),
        std::string("--lcores (0,1)@(2,3),1@(2-3),5@7"),
        std::string("--socket-mem 0,64 --socket-limit 0,64 --huge-dir /tmp"),
        std::string("--no-huge -m 32 --base-virtaddr 0x7fff00000000 -n 32"),
        std::string("--log-level eal:debug --log-level 3 --attach-timeout 3600"),
        std::string("--file-prefix ") + std::string(64, 'p')}) {
    absl::StatusOr<Options> opts = Parse(Args(line));
    ASSERT_TRUE(opts.ok()) << line << ": " << opts.status();
    EXPECT_TRUE(ValidateOptions(*opts, FakeMachine()).ok()) << line;
  }
}

// The parser reports the flag the user typed and its value as typed.
TEST(ParseOptions, ValidationMessagesNameTheFlagGiven) {
  absl::StatusOr<Options> opts = Parse(Args("-l 0-9"));
  EXPECT_EQ(opts.status().message(),
            "-l \"0-9\": CPU 8-9 not present on this machine (present: 0-7)");
  opts = Parse(Args("-c 0x300"));
  EXPECT_EQ(opts.status().message(),
            "-c \"0x300\": CPU 8-9 not present on this machine (present: 0-7)");
  opts = Parse({"--lcores", "1@(0,8)"});
  EXPECT_EQ(opts.status().message(),
            "--lcores \"1@(0,8)\": CPU 8 not present on this machine (present: 0-7)");
}

// The control for the cases above: the options they start from join a group.
TEST(InitFromOptions, ValidOptionsBuiltInCodeJoin) {
  const Options options = ValidOptions(MachineInfo::Current(), CasePrefix("Valid"));
  ASSERT_TRUE(Init(options).ok());
  EXPECT_TRUE(std::filesystem::is_directory(RuntimeRoot::Base() + "/" + options.file_prefix));
  EXPECT_TRUE(Cleanup().ok());
}

}  // namespace
}  // namespace keel::eal
