// Shared memory across real processes: the same addresses everywhere, memzones and the
// heap from any process, limits, robust locks, ASLR, hugepage files.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"
#include "tests/subprocess.h"

namespace keel {
namespace {

using ::keel::testing::Ask;
using ::keel::testing::kTimeout;
using ::keel::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class MemoryTest : public testing::GroupTest {
 protected:
  MemoryTest() : GroupTest("tests/memory_helper") {}
  bool NeedsHugepages() const override { return true; }
};

// Hugepages and --no-huge behave the same.
class MemoryModeTest : public MemoryTest, public ::testing::WithParamInterface<bool> {
 protected:
  bool NeedsHugepages() const override { return !GetParam(); }
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

// The primary SIGKILLed holding the names lock; a new primary adopts the group: it maps
// the segments at the same address, repairs the lock, its objects and the secondary's
// are shared as before, and its clean exit removes the group's files.
TEST_P(MemoryModeTest, AnAdoptingPrimaryMapsTheGroupAtItsAddressAndOwnsItsFiles) {
  std::unique_ptr<Subprocess> dead = Join(Mode({"-l", "0", "-m", "16"}));
  const std::string dead_ready = ready_line_;
  ASSERT_EQ(Ask(dead.get(), "reserve first 64"), "RESERVED first");
  ASSERT_EQ(Ask(dead.get(), "store-pointer first from-the-first-primary"), "STORED first");
  std::unique_ptr<Subprocess> secondary = Join({"--proc-type=secondary", "--lcores", "3@1"});
  dead->Send("hold-names-lock 600000\n");
  ASSERT_TRUE(dead->WaitForOutput("HOLDING", kTimeout)) << dead->Output();
  dead->Kill(SIGKILL);
  dead->Wait();

  std::unique_ptr<Subprocess> adopter = Join(Mode({"-l", "0", "-m", "16", "--adopt"}));
  EXPECT_EQ(ready_line_.substr(ready_line_.find("base=")),
            dead_ready.substr(dead_ready.find("base=")));
  EXPECT_EQ(Ask(adopter.get(), "follow first"), "FOLLOWED first from-the-first-primary");
  ASSERT_EQ(Ask(adopter.get(), "reserve second 64"), "RESERVED second");
  EXPECT_THAT(adopter->Output() + secondary->Output(),
              HasSubstr("recovering the shared memory names lock from a process that died"));
  ASSERT_EQ(Ask(adopter.get(), "store-pointer second from-the-adopter"), "STORED second");
  EXPECT_EQ(Ask(secondary.get(), "follow second"), "FOLLOWED second from-the-adopter");
  ASSERT_EQ(Ask(secondary.get(), "reserve third 64"), "RESERVED third");
  ASSERT_EQ(Ask(secondary.get(), "store-pointer third from-the-secondary"), "STORED third");
  EXPECT_EQ(Ask(adopter.get(), "follow third"), "FOLLOWED third from-the-secondary");
  EXPECT_FALSE(testing::SegmentFiles(prefix_).empty());

  Quit(secondary.get());
  Quit(adopter.get());
  EXPECT_TRUE(testing::SegmentFiles(prefix_).empty());
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

// A new primary of another memory layout is refused, naming the component and both
// versions, and touches nothing: the secondary goes on, and a compatible one adopts.
TEST_F(MemoryTest, AnAdopterOfAnotherMemoryLayoutIsRefused) {
  std::unique_ptr<Subprocess> dead = Join({"-l", "0", "-m", "16"});
  ASSERT_EQ(Ask(dead.get(), "reserve kept 64"), "RESERVED kept");
  ASSERT_EQ(Ask(dead.get(), "write kept still-here"), "WROTE kept");
  std::unique_ptr<Subprocess> secondary = Join({"--proc-type=secondary", "--lcores", "3@1"});
  dead->Kill(SIGKILL);
  dead->Wait();
  testing::SpawnOptions other;
  other.env = {"KEEL_TEST_LAYOUT=memory=99"};
  const std::string refused = JoinFails({"-l", "0", "-m", "16", "--adopt"}, {}, other);
  EXPECT_THAT(refused, HasSubstr("component \"memory\": group"));
  EXPECT_THAT(refused, HasSubstr("this process has layout version 99"));
  EXPECT_THAT(refused, ::testing::ContainsRegex("uses shared-layout version [0-9]+ \\(memory "));
  EXPECT_EQ(Ask(secondary.get(), "read kept"), "READ kept still-here");
  std::unique_ptr<Subprocess> adopter = Join({"-l", "0", "-m", "16", "--adopt"});
  EXPECT_EQ(Ask(adopter.get(), "read kept"), "READ kept still-here");
  Quit(secondary.get());
  Quit(adopter.get());
}

INSTANTIATE_TEST_SUITE_P(HugeAndNoHuge, MemoryModeTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "NoHuge" : "Hugepages";
                         });

TEST_F(MemoryTest, HundredSecondariesAttachOneAfterAnotherWithAslrOn) {
  std::ifstream aslr("/proc/sys/kernel/randomize_va_space");
  int randomize = -1;
  aslr >> randomize;
  if (randomize != 2) {
    GTEST_SKIP() << "this test needs full ASLR (kernel.randomize_va_space=2, here " << randomize
                 << ")";
  }
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

TEST_F(MemoryTest, NamesLockIsRecoveredAfterItsHolderIsKilled) {
  std::unique_ptr<Subprocess> primary = Join({"-l", "0", "-m", "8"});
  ASSERT_EQ(Ask(primary.get(), "reserve before 64"), "RESERVED before");
  std::unique_ptr<Subprocess> holder = Join({"--proc-type=secondary", "--lcores", "3@1"});
  holder->Send("hold-names-lock 600000\n");
  ASSERT_TRUE(holder->WaitForOutput("HOLDING", kTimeout)) << holder->Output();
  holder->Kill(SIGKILL);
  holder->Wait();
  ASSERT_EQ(Ask(primary.get(), "reserve after 64"), "RESERVED after");
  EXPECT_THAT(primary->Output(),
              HasSubstr("recovering the shared memory names lock from a process that died"));
  EXPECT_EQ(Ask(primary.get(), "read before"), "READ before ");
  Quit(primary.get());
}

TEST_F(MemoryTest, HeapLockIsRecoveredAfterItsHolderIsKilled) {
  std::unique_ptr<Subprocess> primary = Join({"-l", "0", "-m", "8"});
  std::unique_ptr<Subprocess> holder = Join({"--proc-type=secondary", "--lcores", "3@1"});
  holder->Send("hold-heap-lock 600000\n");
  ASSERT_TRUE(holder->WaitForOutput("HOLDING", kTimeout)) << holder->Output();
  holder->Kill(SIGKILL);
  holder->Wait();
  EXPECT_THAT(Ask(primary.get(), "alloc 4096"), StartsWith("ALLOC 0x"));
  EXPECT_THAT(primary->Output(),
              HasSubstr("recovering the shared memory heap lock from a process that died"));
  ASSERT_EQ(Ask(primary.get(), "reserve after 64"), "RESERVED after");
  Quit(primary.get());
}

TEST_P(MemoryModeTest, StaleSegmentFilesAreRemovedAndOtherPrefixesLeftAlone) {
  const std::string dir = GetParam() ? "/dev/shm" : "/dev/hugepages";
  const std::string other = absl::StrCat(dir, "/keel.", prefix_, "x.0123456789abcdef.seg0");
  { std::ofstream(other) << ""; }
  ASSERT_TRUE(std::filesystem::exists(other));

  // A primary killed just after creating its segment file (a kill point) ...
  testing::SpawnOptions dies_there;
  dies_there.env = {"KEEL_KILL_POINT=memory.create.segment_locked"};
  std::unique_ptr<Subprocess> dead = Start(Mode({"-l", "0", "-m", "8"}), {}, dies_there);
  EXPECT_EQ(dead->Wait(), 128 + SIGKILL) << dead->Output();
  std::vector<std::string> ours = testing::SegmentFiles(prefix_);
  ASSERT_EQ(ours.size(), 1u);
  // ... leaves it empty: the next primary, starting at once, cannot tell it from one a
  // live primary is creating, and leaves it ...
  EXPECT_EQ(std::filesystem::file_size(ours[0]), 0u);
  std::unique_ptr<Subprocess> early = Join(Mode({"-l", "0", "-m", "8"}));
  Quit(early.get());
  ASSERT_TRUE(std::filesystem::exists(ours[0]));
  // ... and once it is older, the next removes it, as it does the file of one killed
  // while running.
  std::filesystem::last_write_time(
      ours[0], std::filesystem::file_time_type::clock::now() - std::chrono::minutes(1));
  std::unique_ptr<Subprocess> half = Join(Mode({"-l", "0", "-m", "8"}));
  EXPECT_THAT(half->Output(), HasSubstr("removed stale segment file " + ours[0]));
  half->Kill(SIGKILL);
  half->Wait();
  ours = testing::SegmentFiles(prefix_);
  ASSERT_EQ(ours.size(), 1u);
  ASSERT_TRUE(std::filesystem::exists(ours[0])) << "a killed primary cannot clean up";

  std::unique_ptr<Subprocess> next = Join(Mode({"-l", "0", "-m", "8"}));
  EXPECT_THAT(next->Output(), HasSubstr("removed stale segment file " + ours[0]));
  EXPECT_FALSE(std::filesystem::exists(ours[0]));
  Quit(next.get());
  EXPECT_TRUE(testing::SegmentFiles(prefix_).empty()) << "a clean shutdown leaves no file";
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
  // A page inside the group's range, wherever the primary put it.
  uint64_t base = 0;
  const size_t at = ready_line_.find("base=0x");
  ASSERT_NE(at, std::string::npos) << ready_line_;
  ASSERT_TRUE(
      absl::SimpleHexAtoi(ready_line_.substr(at + 7, ready_line_.find(' ', at) - at - 7), &base))
      << ready_line_;
  const uint64_t inside = base + (2 << 20);
  const std::string inside_hex = absl::StrFormat("%x", inside);

  // Something sits in the range once: the secondary re-executes itself with ASLR off.
  std::unique_ptr<Subprocess> s =
      Join({"--proc-type=secondary", "--lcores", "4@1"}, {"--occupy-once", inside_hex});
  EXPECT_EQ(Ask(s.get(), "read z"), "READ z shared");
  EXPECT_THAT(s->Output(), HasSubstr("running this process again with ASLR off"));
  Quit(s.get());

  // Something sits there whatever happens: a clear error naming the mapping.
  const std::string out =
      JoinFails({"--proc-type=secondary", "--lcores", "4@1"}, {"--occupy-always", inside_hex});
  EXPECT_THAT(out, HasSubstr("cannot map group"));
  EXPECT_THAT(
      out, HasSubstr(absl::StrFormat("this process already has 0x%x-0x%x", inside, inside + 4096)));
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
  int free_pages = 0;
  std::ifstream("/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages") >> free_pages;
  if (free_pages < 1) GTEST_SKIP() << "the 1 GiB page is in use (another copy of this test?)";
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

// Two groups of one prefix under two runtime directories (two KEEL_RUNTIME_DIR values,
// or two containers sharing /dev/hugepages) are two groups: neither removes the other's
// segment files, and each secondary reads its own group's memory.
TEST_P(MemoryModeTest, TwinGroupsOfOnePrefixUnderTwoRuntimeDirectoriesStayApart) {
  const std::string base = std::filesystem::temp_directory_path() / ("keel-twin-" + prefix_);
  testing::SpawnOptions in_a;
  in_a.env = {"KEEL_RUNTIME_DIR=" + base + "/a"};
  testing::SpawnOptions in_b;
  in_b.env = {"KEEL_RUNTIME_DIR=" + base + "/b"};

  std::unique_ptr<Subprocess> a = Join(Mode({"-l", "0", "-m", "8"}), {}, in_a);
  ASSERT_EQ(Ask(a.get(), "reserve twin 64"), "RESERVED twin");
  ASSERT_EQ(Ask(a.get(), "write twin group-a"), "WROTE twin");
  std::unique_ptr<Subprocess> b = Join(Mode({"-l", "0", "-m", "8"}), {}, in_b);
  EXPECT_THAT(b->Output(), Not(HasSubstr("removed stale")));
  ASSERT_EQ(Ask(b.get(), "reserve twin 64"), "RESERVED twin");
  ASSERT_EQ(Ask(b.get(), "write twin group-b"), "WROTE twin");
  EXPECT_EQ(testing::SegmentFiles(prefix_).size(), 2u);

  std::unique_ptr<Subprocess> reader_a =
      Join({"--proc-type=secondary", "--lcores", "2@1"}, {}, in_a);
  EXPECT_EQ(Ask(reader_a.get(), "read twin"), "READ twin group-a");
  std::unique_ptr<Subprocess> reader_b =
      Join({"--proc-type=secondary", "--lcores", "2@1"}, {}, in_b);
  EXPECT_EQ(Ask(reader_b.get(), "read twin"), "READ twin group-b");
  for (Subprocess* p : {reader_a.get(), reader_b.get(), a.get(), b.get()}) Quit(p);
  EXPECT_TRUE(testing::SegmentFiles(prefix_).empty());
  std::filesystem::remove_all(base);
}

// --no-huge memory lives on /dev/shm and is reserved at init (not a sparse file).
TEST_F(MemoryTest, NoHugeMemoryIsReservedOnAMemoryFilesystem) {
  std::unique_ptr<Subprocess> primary = Join({"-l", "0", "-m", "16", "--no-huge"});
  const std::vector<std::string> files = testing::SegmentFiles(prefix_);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(files[0], "/dev/shm/")) << files[0];
  struct stat st;
  ASSERT_EQ(::stat(files[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 16 << 20);
  EXPECT_GE(static_cast<int64_t>(st.st_blocks) * 512, 16 << 20) << "the file is sparse";
  Quit(primary.get());
}

// Running out of room for --no-huge memory is an init error naming the size and the
// file system, not a SIGBUS at first touch.
TEST_F(MemoryTest, NoHugeReservationFailureIsAnInitError) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  char dir[] = "/tmp/keel-small-shm-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  ASSERT_EQ(::mount("tmpfs", dir, "tmpfs", 0, "size=8m"), 0) << strerror(errno);
  testing::SpawnOptions small;
  small.env = {absl::StrCat("KEEL_SHM_DIR=", dir)};
  const std::string out = JoinFails({"-l", "0", "-m", "32", "--no-huge"}, {}, small);
  EXPECT_THAT(out, HasSubstr("RESOURCE_EXHAUSTED: cannot reserve 32.0 MiB of shared memory for "
                             "--no-huge in "));
  EXPECT_THAT(out, HasSubstr(absl::StrCat(dir, " (tmpfs, ")));
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "a failed init leaves its file behind";
  // It fits: the same file system serves a smaller group.
  std::unique_ptr<Subprocess> fits = Join({"-l", "0", "-m", "4", "--no-huge"}, {}, small);
  Quit(fits.get());
  ASSERT_EQ(::umount(dir), 0);
  ::rmdir(dir);
}

// The resident size of `pid`'s mapping of `file`, in kB (smaps: Rss, plus the
// *_Hugetlb lines, where hugetlbfs pages are counted).
int64_t ResidentKb(pid_t pid, const std::string& file) {
  std::ifstream smaps(absl::StrCat("/proc/", pid, "/smaps"));
  std::string line;
  bool in_file = false;
  int64_t kb = 0;
  while (std::getline(smaps, line)) {
    const size_t colon = line.find(':');
    const bool field = colon != std::string::npos && colon < line.find(' ');
    if (!field) {
      in_file = absl::EndsWith(line, file);
      continue;
    }
    if (in_file && (absl::StartsWith(line, "Rss:") || absl::StartsWith(line, "Shared_Hugetlb:") ||
                    absl::StartsWith(line, "Private_Hugetlb:"))) {
      kb += std::stoll(line.substr(colon + 1));
    }
  }
  return kb;
}

// --prefault touches every page at init (in the primary and in a secondary); without it
// nothing is touched.
TEST_P(MemoryModeTest, PrefaultMapsEveryPageAtInit) {
  std::unique_ptr<Subprocess> lazy = Join(Mode({"-l", "0", "-m", "16"}));
  std::vector<std::string> files = testing::SegmentFiles(prefix_);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_LT(ResidentKb(lazy->pid(), files[0]), 8 << 10);
  Quit(lazy.get());

  std::unique_ptr<Subprocess> primary = Join(Mode({"-l", "0", "-m", "16", "--prefault"}));
  files = testing::SegmentFiles(prefix_);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(ResidentKb(primary->pid(), files[0]), 16 << 10);
  std::unique_ptr<Subprocess> secondary =
      Join({"--proc-type=secondary", "--lcores", "2@1", "--prefault"});
  EXPECT_EQ(ResidentKb(secondary->pid(), files[0]), 16 << 10);
  Quit(secondary.get());
  Quit(primary.get());
}

TEST_F(MemoryTest, BaseAddressRangePastTheUserAddressSpaceIsRefused) {
  const std::string out =
      JoinFails({"-l", "0", "-m", "64", "--no-huge", "--base-virtaddr", "0x7ffffc000000"});
  EXPECT_THAT(out, HasSubstr("--base-virtaddr 0x7ffffc000000: the group's 64.3 MiB would end at "
                             "0x800000"));
  EXPECT_THAT(out, HasSubstr("past the end of the 47-bit user address space (0x800000000000)"));
}

// A secondary attaching to a group whose RUNDIR/memory is truncated, zeroed or
// overwritten refuses with a clear, printable error, opens no path from the damaged
// file, and never crashes.
TEST_P(MemoryModeTest, DamagedMemoryFileIsRefusedClearly) {
  std::unique_ptr<Subprocess> primary = Join(Mode({"-l", "0", "-m", "8"}));
  const std::string path = absl::StrCat(dir_, "/memory");
  std::string original;
  {
    std::ifstream in(path, std::ios::binary);
    original.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(bytes.size())), 0);
    ::close(fd);
  };
  auto attach = [&](const std::string& damaged) {
    write(damaged);
    std::unique_ptr<Subprocess> s = Start({"--proc-type=secondary", "--lcores", "2@1"}, {});
    const int rc = s->Wait();
    write(original);
    EXPECT_EQ(rc, 2) << s->Output();
    EXPECT_TRUE(testing::IsPrintable(s->Output())) << s->Output();
    return s->Output();
  };
  EXPECT_THAT(attach(original.substr(0, 64)), HasSubstr("is not a keel memory config"));
  EXPECT_THAT(attach(std::string(original.size(), '\0')), HasSubstr("is not a keel memory config"));
  std::string longer = original + std::string(4096, 'x');
  EXPECT_THAT(attach(longer), HasSubstr("is damaged"));
  // A segment path pointed elsewhere: refused by the checksum, never opened.
  std::string moved = original;
  const size_t at = moved.find("/keel.");
  ASSERT_NE(at, std::string::npos);
  moved.replace(at - 1, 5, "/../\x1b");
  EXPECT_THAT(attach(moved), HasSubstr("header checksum does not match"));
  // Random bytes in the header (its first 1856 bytes: sizeof(MemoryHeader)).
  std::mt19937 random(1201);
  for (int round = 0; round < 20; ++round) {
    std::string damaged = original;
    for (int n = 0; n < 3; ++n) damaged[random() % 1856] = static_cast<char>(random());
    EXPECT_THAT(attach(damaged), HasSubstr("INIT-FAILED")) << "round " << round;
  }
  // The group is unharmed once the file is back.
  std::unique_ptr<Subprocess> s = Join({"--proc-type=secondary", "--lcores", "2@1"});
  Quit(s.get());
  Quit(primary.get());
}

}  // namespace
}  // namespace keel
