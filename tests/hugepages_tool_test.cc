// tools/hugepages against real groups: a private hugetlbfs mount it makes for a
// non-root user, keel groups on it listed alive or dead, --clean removing only the dead
// group's files, and bad input refused with the reason.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"

namespace keel::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uid_t kNobody = 65534;

// Runs tools/hugepages with `args`; its exit code, and its output in *out.
int Tool(const std::vector<std::string>& args, std::string* out) {
  std::vector<std::string> argv = {RunfilePath("tools/hugepages/hugepages")};
  argv.insert(argv.end(), args.begin(), args.end());
  std::unique_ptr<Subprocess> p = Subprocess::Start(argv);
  if (p == nullptr) return -1;
  const int code = p->Wait();
  *out = p->Output();
  return code;
}

// The JSON object of the file of group `prefix` segment 0 in `json` (the tool's
// --json output), or "" when there is none.
std::string FileEntry(const std::string& json, const std::string& prefix) {
  const size_t at = json.find(absl::StrCat("\"prefix\":\"", prefix, "\""));
  if (at == std::string::npos) return "";
  const size_t open = json.rfind('{', at);
  return json.substr(open, json.find('}', at) - open + 1);
}

class HugepagesToolTest : public GroupTest {
 protected:
  HugepagesToolTest() : GroupTest("tests/memory_helper") {}
  bool NeedsHugepages() const override { return true; }

  void SetUp() override {
    GroupTest::SetUp();
    if (IsSkipped()) return;
    if (::geteuid() != 0) GTEST_SKIP() << "mounting hugetlbfs needs root";
    // Under /tmp, not the test's tmpdir: nobody must reach the mount (/root is 0700).
    char tmpl[] = "/tmp/keel-hugepages-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_tmp_ = tmpl;
    ::chmod(tmpl, 0755);
    mount_ = dir_tmp_ + "/mnt";
  }

  void TearDown() override {
    if (!mount_.empty()) {
      std::string out;
      Tool({"--unmount", "--directory", mount_}, &out);  // left mounted if a step failed
    }
    if (!dir_tmp_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_tmp_, ec);
    }
    GroupTest::TearDown();
  }

  std::string dir_tmp_;
  std::string mount_;
};

TEST_F(HugepagesToolTest, MountsForAUserListsGroupsAliveOrDeadAndCleansOnlyTheDead) {
  std::string out;
  ASSERT_EQ(Tool({"--mount", "--directory", mount_, "--pagesize", "2M", "--uid",
                  absl::StrCat(kNobody), "--gid", absl::StrCat(kNobody), "--mode", "0770"},
                 &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("hugetlbfs mounted on ", mount_)));
  struct stat st;
  ASSERT_EQ(::stat(mount_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kNobody);
  EXPECT_EQ(st.st_mode & 07777, 0770u);
  EXPECT_EQ(Tool({"--mount", "--directory", mount_}, &out), 1);
  EXPECT_THAT(out, HasSubstr("already a hugetlbfs mount"));

  // nobody runs a keel group on the mount (a copy of the helper it may execute).
  const std::string copy = dir_tmp_ + "/memory_helper";
  std::filesystem::copy_file(helper_, copy);
  ::chmod(copy.c_str(), 0755);
  SpawnOptions as_nobody;
  as_nobody.uid = kNobody;
  as_nobody.env = {absl::StrCat("KEEL_RUNTIME_DIR=", dir_tmp_, "/run")};
  ::mkdir((dir_tmp_ + "/run").c_str(), 0755);
  ::chmod((dir_tmp_ + "/run").c_str(), 01777);  // like /tmp: nobody makes its dir there
  const std::string nobody_prefix = prefix_ + "-nobody";
  ASSERT_EQ(::getenv("KEEL_RUNTIME_DIR"), nullptr) << "the helper's own is set below";
  std::unique_ptr<Subprocess> dead = Subprocess::Start(
      {copy, "--file-prefix", nobody_prefix, "-l", "0", "-m", "8", "--huge-dir", mount_, "--"},
      as_nobody);
  ASSERT_NE(dead, nullptr);
  ASSERT_TRUE(dead->WaitForOutput("READY", kTimeout)) << dead->Output();
  std::unique_ptr<Subprocess> alive = Start({"-l", "1", "-m", "8", "--huge-dir", mount_}, {});
  ASSERT_TRUE(alive->WaitForOutput("READY", kTimeout)) << alive->Output();

  ASSERT_EQ(Tool({"--json", "--files-dir", mount_}, &out), 0) << out;
  EXPECT_THAT(FileEntry(out, nobody_prefix), HasSubstr("\"alive\":true")) << out;
  EXPECT_THAT(FileEntry(out, prefix_), HasSubstr("\"alive\":true")) << out;
  EXPECT_THAT(FileEntry(out, prefix_), HasSubstr("\"bytes\":8388608")) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("\"path\":\"", mount_, "\"")));

  // SIGKILL leaves nobody's segment file behind, mapped by no one.
  dead->Kill(SIGKILL);
  dead->Wait();
  ASSERT_EQ(Tool({"--files-dir", mount_}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("dead  ", nobody_prefix)));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("alive ", prefix_, " ")));

  // Another dead group's file (as a killed primary leaves it): --prefix spares it.
  const std::string other = absl::StrCat(mount_, "/keel.", prefix_, "-other.00000000000000aa.seg0");
  std::ofstream{other};
  std::filesystem::resize_file(other, 2 << 20);  // an empty new file may be being created
  ASSERT_TRUE(std::filesystem::exists(other));

  ASSERT_EQ(Tool({"--clean", "--prefix", nobody_prefix, "--json", "--files-dir", mount_}, &out), 0)
      << out;
  const size_t removed_at = out.find("\"removed\"");
  const size_t kept_at = out.find("\"kept\"");
  ASSERT_NE(removed_at, std::string::npos) << out;
  ASSERT_NE(kept_at, std::string::npos) << out;
  EXPECT_THAT(FileEntry(out.substr(removed_at, kept_at - removed_at), nobody_prefix),
              HasSubstr("\"alive\":false"))
      << out;
  EXPECT_TRUE(std::filesystem::exists(other)) << "another prefix's file, not asked for";
  ASSERT_EQ(Tool({"--json", "--files-dir", mount_}, &out), 0) << out;
  EXPECT_EQ(FileEntry(out, nobody_prefix), "") << out;

  // Without --prefix: every dead file goes, the live group's stays.
  ASSERT_EQ(Tool({"--clean", "--files-dir", mount_}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("removed ", other)));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("kept ", mount_, "/keel.", prefix_, ".")));
  EXPECT_FALSE(std::filesystem::exists(other));
  ASSERT_EQ(Tool({"--json", "--files-dir", mount_}, &out), 0) << out;
  EXPECT_THAT(FileEntry(out, prefix_), HasSubstr("\"alive\":true")) << out;

  // A mount a live group maps cannot go; once the group leaves, it can.
  EXPECT_EQ(Tool({"--unmount", "--directory", mount_}, &out), 1);
  EXPECT_THAT(out, HasSubstr(absl::StrCat("cannot unmount ", mount_)));
  Quit(alive.get());
  ASSERT_EQ(Tool({"--unmount", "--directory", mount_}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("unmounted ", mount_)));
  ASSERT_EQ(Tool({"--json"}, &out), 0) << out;
  EXPECT_THAT(out, Not(HasSubstr(absl::StrCat("\"path\":\"", mount_, "\""))));
}

// Reservations go through sysfs; a fake tree shows what is written where and what a
// kernel without the size or node answers.
TEST(HugepagesToolArgsTest, ReservesPerSizeAndNodeInSysfs) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string root = absl::StrCat(tmp ? tmp : "/tmp", "/sysfs.", ::getpid());
  const std::string global = root + "/kernel/mm/hugepages/hugepages-2048kB";
  const std::string node1 = root + "/devices/system/node/node1/hugepages/hugepages-2048kB";
  const std::string giant = root + "/kernel/mm/hugepages/hugepages-1048576kB";
  for (const std::string& dir : {global, node1}) {
    std::filesystem::create_directories(dir);
    for (const char* f : {"nr_hugepages", "free_hugepages", "surplus_hugepages"}) {
      std::ofstream(dir + "/" + f) << "0\n";
    }
  }
  std::string out;
  ASSERT_EQ(Tool({"--sysfs-root", root, "--reserve", "64", "--pagesize", "2048kB"}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("64 pages of 2M reserved"));
  int pages = 0;
  std::ifstream(global + "/nr_hugepages") >> pages;
  EXPECT_EQ(pages, 64);

  ASSERT_EQ(
      Tool({"--sysfs-root", root, "--reserve", "8", "-p", "2M", "--node", "1", "--show"}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("8 pages of 2M reserved on node 1"));
  EXPECT_THAT(out, ContainsRegex("all +2M +64 "));
  EXPECT_THAT(out, ContainsRegex("\n1 +2M +8 "));

  ASSERT_EQ(Tool({"--sysfs-root", root, "--clear", "-p", "2M", "--node", "1"}, &out), 0) << out;
  std::ifstream(node1 + "/nr_hugepages") >> pages;
  EXPECT_EQ(pages, 0);

  // --clear without --pagesize clears every size, as dpdk-hugepages.py's does.
  std::filesystem::create_directories(giant);
  std::ofstream(giant + "/nr_hugepages") << "2\n";
  ASSERT_EQ(Tool({"--sysfs-root", root, "--clear"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("0 pages of 2M reserved"));
  EXPECT_THAT(out, HasSubstr("0 pages of 1G reserved"));
  std::ifstream(giant + "/nr_hugepages") >> pages;
  EXPECT_EQ(pages, 0);
  std::filesystem::remove_all(giant);

  EXPECT_EQ(Tool({"--sysfs-root", root, "--reserve", "1", "-p", "2M", "--node", "3"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("no 2M pages on node 3"));
  EXPECT_EQ(Tool({"--sysfs-root", root, "--reserve", "1", "-p", "1G"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("this kernel has no 1G pages"));
  std::filesystem::remove_all(root);
}

TEST(HugepagesToolArgsTest, RefusesBadInputNamingIt) {
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--pagesize", "3M", "--reserve", "1"}, "--pagesize \"3M\": not a page size"},
      {{"--reserve", "many"}, "--reserve \"many\": not a number of pages"},
      {{"--reserve"}, "--reserve needs a value"},
      {{"--node", "-1", "--reserve", "1"}, "--node \"-1\": not a node"},
      {{"--node", "0"}, "--node says where to reserve"},
      {{"--mount", "--mode", "0999"}, "--mode \"0999\": not an octal mode"},
      {{"--mount", "--uid", "no-such-user-here"}, "--uid \"no-such-user-here\": no such user"},
      {{"--uid", "0"}, "add --mount"},
      {{"--mount", "--unmount"}, "choose one"},
      {{"--prefix", "x"}, "add --clean"},
      {{"--frobnicate"}, "unknown option \"--frobnicate\""},
  };
  for (const auto& [args, why] : cases) {
    std::string out;
    EXPECT_EQ(Tool(args, &out), 2) << out;
    EXPECT_THAT(out, HasSubstr(why));
    EXPECT_THAT(out, HasSubstr("usage: hugepages"));
  }
}

}  // namespace
}  // namespace keel::testing
