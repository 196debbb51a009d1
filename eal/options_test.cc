#include "eal/options.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
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
};

class RejectTest : public testing::TestWithParam<RejectCase> {};

TEST_P(RejectTest, FailsNamingTheFlagAndValue) {
  absl::StatusOr<Options> opts = Parse(GetParam().args);
  ASSERT_FALSE(opts.ok()) << "accepted: " << testing::PrintToString(GetParam().args);
  EXPECT_EQ(opts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(opts.status().message()), HasSubstr(GetParam().message));
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
        RejectCase{{"-l", "1#2"}, "-l \"1#2\""},
        RejectCase{{"-l", "-5"}, "-l \"-5\""},
        RejectCase{{"-l", "-5-7"}, "-l \"-5-7\""},
        RejectCase{{"-l", "1-3-5"}, "is not N or N-M"},
        RejectCase{{"-l", "3-1"}, "descending"},
        RejectCase{{"-l", "8"}, "CPU 8 not present on this machine (present: 0-7)"},
        RejectCase{{"-l", "0-9"}, "CPU 8-9 not present"},
        RejectCase{{"-l", "128"}, "lcore 128 is out of range (max 127)"},
        RejectCase{{"-l", "0,,1"}, "empty list element"},
        RejectCase{{"-l", "a"}, "-l \"a\""},
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
        RejectCase{{"--lcores", "1@"}, "empty list"},
        RejectCase{{"--lcores", "@1"}, "empty list"},
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
        RejectCase{{"-n"}, "option -n requires a value"},
        RejectCase{{"-n", "0"}, "-n \"0\""},
        RejectCase{{"-n", "e"}, "-n \"e\""},
        RejectCase{{"-n", "2e"}, "-n \"2e\""},
        RejectCase{{"-n", "-1"}, "-n \"-1\""},
        // --proc-type
        RejectCase{{"--proc-type=ERROR"}, "--proc-type \"ERROR\": must be primary"},
        RejectCase{{"--proc-type"}, "option --proc-type requires a value"},
        RejectCase{{"--proc-type="}, "--proc-type \"\""},
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
        RejectCase{{"-m", "1e3"}, "-m \"1e3\""},
        RejectCase{{"-m", "-2"}, "-m \"-2\""},
        RejectCase{{"-m", "2", "--socket-mem=2"}, "-m and --socket-mem cannot be used together"},
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
                   "--no-huge and --socket-mem cannot be used together"},
        RejectCase{{"--no-huge", "--socket-limit=32"},
                   "--no-huge and --socket-limit cannot be used together"},
        // --huge-dir, --no-huge, --base-virtaddr
        RejectCase{{"--huge-dir", "/nonexistent/keel"}, "--huge-dir \"/nonexistent/keel\""},
        RejectCase{{"--huge-dir", "/proc/self/status"}, "not a directory"},
        RejectCase{{"--huge-dir="}, "--huge-dir \"\": empty path"},
        RejectCase{{"--no-huge", "--huge-dir", "/tmp"},
                   "--no-huge and --huge-dir cannot be used together"},
        RejectCase{{"--no-huge=1"}, "option --no-huge takes no value"},
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
        // Unknown options and stray arguments.
        RejectCase{{"--foo"}, "unknown option \"--foo\""},
        RejectCase{{"-x"}, "unknown option \"-x\""},
        RejectCase{{"-r", "2"}, "unknown option \"-r\""},
        RejectCase{{"stray"}, "unexpected argument \"stray\""},
        RejectCase{{"-vx"}, "option -v takes no value"}));

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

TEST(ParseOptions, EveryOtherFlag) {
  absl::StatusOr<Options> opts = Parse(
      {"--proc-type=auto", "--file-prefix", "grp_1.a-b", "-m", "1024", "--socket-limit",
       "512,0", "--base-virtaddr", "0x100000000", "-n", "4", "--log-level", "debug",
       "--log-level=ring:3", "--log-timestamp", "--attach-timeout", "0.5", "-v", "--huge-dir",
       "/tmp", "--", "-p", "--stay", "3"});
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

TEST(ParseOptions, LaterProcTypeWins) {
  absl::StatusOr<Options> opts = Parse(Args("--proc-type auto --proc-type secondary"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->proc_type, ProcessType::kSecondary);
}

TEST(ParseOptions, OptionsAfterDoubleDashBelongToTheApplication) {
  absl::StatusOr<Options> opts = Parse(Args("-l 0 -- -l 7 --bogus"));
  ASSERT_TRUE(opts.ok()) << opts.status();
  EXPECT_EQ(opts->lcores.size(), 1u);
  EXPECT_EQ(opts->app_args, (std::vector<std::string>{"-l", "7", "--bogus"}));
}

TEST(ParseOptions, LogLevelNamesAndNumbers) {
  for (const auto& [text, level] : std::vector<std::pair<std::string, log::Level>>{
           {"emerg", log::Level::kEmergency}, {"ERR", log::Level::kError},
           {"error", log::Level::kError},     {"warn", log::Level::kWarning},
           {"8", log::Level::kDebug},         {"notice", log::Level::kNotice}}) {
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

}  // namespace
}  // namespace keel::eal
