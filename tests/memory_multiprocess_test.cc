// Shared memory across real processes: the same addresses everywhere, memzones and the
// heap from any process, limits, robust locks, ASLR, hugepage files.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"
#include "tests/subprocess.h"

namespace keel {
namespace {

using ::keel::testing::Ask;
using ::keel::testing::Subprocess;
using ::keel::testing::kTimeout;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class MemoryTest : public testing::GroupTest {
 protected:
  MemoryTest() : GroupTest("tests/memory_helper") {}
};

// Hugepages and --no-huge behave the same.
class MemoryModeTest : public MemoryTest, public ::testing::WithParamInterface<bool> {
 protected:
  std::vector<std::string> Mode(std::vector<std::string> args) {
    if (GetParam()) args.push_back("--no-huge");
    return args;
  }
};

TEST_P(MemoryModeTest, PointersStoredInSharedMemoryWorkInEveryProcess) {
  std::unique_ptr<Subprocess> primary = Join(Mode({"-l", "0", "-m", "16"}));
  EXPECT_THAT(ready_line_, HasSubstr(GetParam() ? "hugepages=0" : "hugepages=1"));
  const std::string primary_ready = ready_line_;
  ASSERT_EQ(Ask(primary.get(), "reserve to-secondaries 64"), "RESERVED to-secondaries");
  ASSERT_EQ(Ask(primary.get(), "store-pointer to-secondaries hello-from-the-primary"),
            "STORED to-secondaries");

  std::vector<std::unique_ptr<Subprocess>> secondaries;
  for (int i = 0; i < 3; ++i) {
    secondaries.push_back(Join({"--proc-type=secondary", "--lcores", absl::StrCat(10 + i, "@1")}));
    // Same base address as the primary.
    EXPECT_EQ(ready_line_.substr(ready_line_.find("base=")),
              primary_ready.substr(primary_ready.find("base=")));
    EXPECT_EQ(Ask(secondaries.back().get(), "follow to-secondaries"),
              "FOLLOWED to-secondaries hello-from-the-primary");
  }
  // A secondary writes back: heap block and memzone made by a secondary.
  ASSERT_EQ(Ask(secondaries[1].get(), "reserve reply 64"), "RESERVED reply");
  ASSERT_EQ(Ask(secondaries[1].get(), "store-pointer reply written-by-a-secondary"),
            "STORED reply");
  EXPECT_EQ(Ask(primary.get(), "follow reply"), "FOLLOWED reply written-by-a-secondary");
  EXPECT_EQ(Ask(secondaries[2].get(), "follow reply"), "FOLLOWED reply written-by-a-secondary");
  for (auto& s : secondaries) Quit(s.get());
  Quit(primary.get());
}

INSTANTIATE_TEST_SUITE_P(HugeAndNoHuge, MemoryModeTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "NoHuge" : "Hugepages";
                         });

TEST_F(MemoryTest, HundredSecondariesAttachOneAfterAnotherWithAslrOn) {
  std::ifstream aslr("/proc/sys/kernel/randomize_va_space");
  int randomize = -1;
  aslr >> randomize;
  EXPECT_EQ(randomize, 2) << "this test is meant to run with full ASLR";
  std::unique_ptr<Subprocess> primary = Join({"-l", "0", "-m", "8"});
  ASSERT_EQ(Ask(primary.get(), "reserve greeting 64"), "RESERVED greeting");
  ASSERT_EQ(Ask(primary.get(), "write greeting hi"), "WROTE greeting");
  for (int i = 0; i < 100; ++i) {
    std::unique_ptr<Subprocess> s = Start({"--proc-type=secondary", "--lcores", "5@1"}, {});
    s->Send("read greeting\nquit\n");
    ASSERT_EQ(s->Wait(), 0) << "secondary " << i << ": " << s->Output();
    ASSERT_THAT(s->Output(), HasSubstr("READ greeting hi")) << i;
    ASSERT_THAT(s->Output(), ::testing::Not(HasSubstr("ASLR off"))) << i;
  }
  Quit(primary.get());
}

TEST_F(MemoryTest, MemzonesRaceSafelyAcrossProcesses) {
  std::unique_ptr<Subprocess> primary = Join({"-l", "0", "-m", "16"});
  const std::string before = Ask(primary.get(), "usage");
  std::vector<std::unique_ptr<Subprocess>> racers;
  for (int i = 0; i < 3; ++i) {
    racers.push_back(Join({"--proc-type=secondary", "--lcores", absl::StrCat(20 + i, "@1")}));
  }
  for (int i = 0; i < 3; ++i) racers[i]->Send(absl::StrCat("race r", i, " 3000\n"));
  int total_ok = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string line = testing::Await(racers[i].get(), "RACE", absl::Seconds(60));
    ASSERT_THAT(line, ::testing::MatchesRegex("RACE r[0-9] ok=[0-9]+ exists=[0-9]+")) << line;
    total_ok += std::stoi(line.substr(line.find("ok=") + 3));
    Quit(racers[i].get());
  }
  EXPECT_GT(total_ok, 0);
  // Everything reserved was freed: the heap is back where it started.
  EXPECT_EQ(Ask(primary.get(), "usage"), before);
  Quit(primary.get());
}

TEST_F(MemoryTest, MemzoneErrors) {
  std::unique_ptr<Subprocess> primary = Join({"-l", "0", "-m", "8"});
  ASSERT_EQ(Ask(primary.get(), "reserve dup 64"), "RESERVED dup");
  EXPECT_THAT(Ask(primary.get(), "reserve dup 64"),
              HasSubstr("ALREADY_EXISTS: memzone \"dup\" already exists"));
  EXPECT_THAT(Ask(primary.get(), "read missing"), HasSubstr("NOT_FOUND: no memzone \"missing\""));
  EXPECT_THAT(Ask(primary.get(), "free missing"), HasSubstr("NOT_FOUND"));
  EXPECT_THAT(Ask(primary.get(), "reserve " + std::string(64, 'n') + " 8"),
              HasSubstr("INVALID_ARGUMENT: memzone name"));
  EXPECT_EQ(Ask(primary.get(), "reserve " + std::string(63, 'n') + " 8"),
            "RESERVED " + std::string(63, 'n'));
  EXPECT_EQ(Ask(primary.get(), "free dup"), "FREED dup");
  EXPECT_EQ(Ask(primary.get(), "reserve dup 64"), "RESERVED dup");
  Quit(primary.get());
}

TEST_F(MemoryTest, LimitsAreHard) {
  std::unique_ptr<Subprocess> primary = Join({"-l", "0", "-m", "8"});
  const std::string answer = Ask(primary.get(), "reserve big 16777216");
  EXPECT_THAT(answer, HasSubstr("RESOURCE_EXHAUSTED: memzone \"big\": cannot allocate 16.0 MiB"));
  EXPECT_THAT(answer, HasSubstr("of 8.0 MiB"));
  EXPECT_THAT(answer, HasSubstr("the group has 8 MB"));
  // Nothing was lost: the whole 8 MB minus headers is still there.
  EXPECT_EQ(Ask(primary.get(), "reserve fits 8000000"), "RESERVED fits");
  EXPECT_THAT(Ask(primary.get(), "alloc 1000000"), HasSubstr("RESOURCE_EXHAUSTED"));
  Quit(primary.get());

  EXPECT_THAT(JoinFails({"-l", "0", "-m", "64", "--socket-limit", "32"}),
              HasSubstr("--socket-limit: socket 0 is limited to 32 MB but 64 MB were asked for"));
  EXPECT_THAT(JoinFails({"-l", "0", "-m", "4000000"}), HasSubstr("not enough hugepages"));
}

TEST_F(MemoryTest, HeapLockIsRecoveredAfterItsHolderIsKilled) {
  std::unique_ptr<Subprocess> primary = Join({"-l", "0", "-m", "8"});
  std::unique_ptr<Subprocess> holder = Join({"--proc-type=secondary", "--lcores", "3@1"});
  holder->Send("hold-heap-lock 600000\n");
  ASSERT_TRUE(holder->WaitForOutput("HOLDING", kTimeout)) << holder->Output();
  holder->Kill(SIGKILL);
  holder->Wait();
  EXPECT_THAT(Ask(primary.get(), "alloc 4096"), StartsWith("ALLOC 0x"));
  EXPECT_THAT(primary->Output(), HasSubstr("recovering the shared memory heap lock from a process that died"));
  ASSERT_EQ(Ask(primary.get(), "reserve after 64"), "RESERVED after");
  Quit(primary.get());
}

// The files in `dir` of this test's prefix (keel.PREFIX.GROUP.segN), any group.
std::vector<std::string> SegmentFiles(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> found;
  const std::string head = "keel." + prefix + ".";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename();
    if (absl::StartsWith(name, head) && name.find('.', head.size()) == head.size() + 16) {
      found.push_back(entry.path());
    }
  }
  return found;
}

TEST_P(MemoryModeTest, StaleSegmentFilesAreRemovedAndOtherPrefixesLeftAlone) {
  const std::string dir = GetParam() ? "/dev/shm" : "/dev/hugepages";
  const std::string other = absl::StrCat(dir, "/keel.", prefix_, "x.0123456789abcdef.seg0");
  { std::ofstream(other) << ""; }
  ASSERT_TRUE(std::filesystem::exists(other));

  std::unique_ptr<Subprocess> dead = Join(Mode({"-l", "0", "-m", "8"}));
  const std::vector<std::string> ours = SegmentFiles(dir, prefix_);
  ASSERT_EQ(ours.size(), 1u);
  dead->Kill(SIGKILL);
  dead->Wait();
  ASSERT_TRUE(std::filesystem::exists(ours[0])) << "a killed primary cannot clean up";

  std::unique_ptr<Subprocess> next = Join(Mode({"-l", "0", "-m", "8"}));
  EXPECT_THAT(next->Output(), HasSubstr("removed stale segment file " + ours[0]));
  EXPECT_FALSE(std::filesystem::exists(ours[0]));
  Quit(next.get());
  EXPECT_TRUE(SegmentFiles(dir, prefix_).empty()) << "a clean shutdown leaves no file";
  EXPECT_FALSE(std::filesystem::exists(dir_));
  EXPECT_TRUE(std::filesystem::exists(other)) << "another prefix's file was touched";
  std::filesystem::remove(other);
}

TEST_F(MemoryTest, HugeDirMustBeAHugetlbfsMount) {
  EXPECT_THAT(JoinFails({"-l", "0", "-m", "8", "--huge-dir", "/tmp"}),
              HasSubstr("--huge-dir \"/tmp\": not a hugetlbfs mount"));
  EXPECT_THAT(JoinFails({"-l", "0", "-m", "8", "--huge-dir", "/nonexistent"}),
              HasSubstr("--huge-dir \"/nonexistent\""));
  std::unique_ptr<Subprocess> ok = Join({"-l", "0", "-m", "8", "--huge-dir", "/dev/hugepages"});
  Quit(ok.get());
}

TEST_F(MemoryTest, SecondaryRecoversWhenItsAddressRangeIsTaken) {
  std::unique_ptr<Subprocess> primary = Join({"-l", "0", "-m", "8"});
  ASSERT_EQ(Ask(primary.get(), "reserve z 64"), "RESERVED z");
  ASSERT_EQ(Ask(primary.get(), "write z shared"), "WROTE z");

  // Something sits in the range once: the secondary re-executes itself with ASLR off.
  std::unique_ptr<Subprocess> s = Join({"--proc-type=secondary", "--lcores", "4@1"},
                                       {"--occupy-base"});
  EXPECT_EQ(Ask(s.get(), "read z"), "READ z shared");
  EXPECT_THAT(s->Output(), HasSubstr("running this process again with ASLR off"));
  Quit(s.get());

  // Something sits there whatever happens: a clear error naming the mapping.
  const std::string out =
      JoinFails({"--proc-type=secondary", "--lcores", "4@1"}, {"--occupy-always"});
  EXPECT_THAT(out, HasSubstr("cannot map group"));
  EXPECT_THAT(out, HasSubstr("this process already has 0x100000400000-0x100000401000"));
  Quit(primary.get());
}

TEST_F(MemoryTest, OneGigabytePagesWhenTheMachineHasThem) {
  const std::string nr = "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages";
  if (!std::filesystem::exists(nr)) GTEST_SKIP() << "this kernel has no 1 GiB pages";
  if (::geteuid() != 0) GTEST_SKIP() << "reserving 1 GiB pages needs root";
  int before = 0;
  std::ifstream(nr) >> before;
  if (before < 1) std::ofstream(nr) << 1;
  int now = 0;
  std::ifstream(nr) >> now;
  if (now < 1) GTEST_SKIP() << "the kernel could not reserve a 1 GiB page (fragmented memory)";
  char dir[] = "/tmp/keel-1g-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  ASSERT_EQ(::mount("nodev", dir, "hugetlbfs", 0, "pagesize=1G"), 0) << strerror(errno);

  std::unique_ptr<Subprocess> primary = Join({"-l", "0", "-m", "64", "--huge-dir", dir});
  EXPECT_THAT(ready_line_, HasSubstr("page_size=1073741824 hugepages=1"));
  ASSERT_EQ(Ask(primary.get(), "reserve g 64"), "RESERVED g");
  ASSERT_EQ(Ask(primary.get(), "write g gigantic"), "WROTE g");
  std::unique_ptr<Subprocess> s = Join({"--proc-type=secondary", "--lcores", "4@1"});
  EXPECT_EQ(Ask(s.get(), "read g"), "READ g gigantic");
  Quit(s.get());
  Quit(primary.get());

  ::umount(dir);
  ::rmdir(dir);
  std::ofstream(nr) << before;
}

}  // namespace
}  // namespace keel
