#include "memory/hugepages.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/ofd_lock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keel::memory {
namespace {

using ::testing::HasSubstr;

// A fresh directory of the test's own.
std::string FreshDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", name, ".", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(SegmentFileNameTest, RoundTripsAndReadsThePrefixFromTheEnd) {
  EXPECT_EQ(SegmentFileName("app", 0x0123456789abcdefULL, 2), "keel.app.0123456789abcdef.seg2");
  std::optional<SegmentName> parsed =
      ParseSegmentFileName(SegmentFileName("a.b.c", 0xfedcba9876543210ULL, 17));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->prefix, "a.b.c");
  EXPECT_EQ(parsed->group_id, 0xfedcba9876543210ULL);
  EXPECT_EQ(parsed->index, 17);
}

TEST(SegmentFileNameTest, RefusesEveryOtherName) {
  for (const char* name : {
           "keel.app.0123456789abcdef.seg",             // no index
           "keel.app.0123456789abcdef.seg1a",           // index not a number
           "keel.app.0123456789abcdef.seg-1",           // negative
           "keel.app.0123456789abcdef.seg99999999999",  // overflows
           "keel.app.0123456789abcde.seg0",             // 15 hex digits
           "keel.app.0123456789abcdeg.seg0",            // not hex
           "keel.app.0123456789ABCDEF.seg0",            // upper-case hex: never made
           "keel.app.0123456789abcdef.seg01",           // a leading zero: never made
           "keel.app0123456789abcdef.seg0",             // no dot before the group
           "keel..0123456789abcdef.seg0",               // empty prefix
           "kell.app.0123456789abcdef.seg0",            // not keel's
           "keel.0123456789abcdef.seg0",                // no prefix at all
           "rtemap_0",
           "",
       }) {
    EXPECT_FALSE(ParseSegmentFileName(name).has_value()) << name;
  }
}

TEST(SegmentFilesTest, ListsKeelFilesWithWhetherAProcessMapsThem) {
  const std::string dir = FreshDir("segment_files");
  const std::string live = absl::StrCat(dir, "/", SegmentFileName("live", 1, 0));
  const std::string dead0 = absl::StrCat(dir, "/", SegmentFileName("dead", 2, 0));
  const std::string dead1 = absl::StrCat(dir, "/", SegmentFileName("dead", 2, 1));
  WriteFile(live, "0123456789");
  WriteFile(dead0, "abc");
  WriteFile(dead1, "");
  WriteFile(dir + "/rtemap_0", "not ours");
  // A process mapping a segment holds a read lock on it; another open file of this
  // process probes like another process would.
  const int holder = ::open(live.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(holder, 0);
  ASSERT_TRUE(TryLock(holder, LockType::kShared).ok());

  const std::vector<SegmentFile> files = SegmentFiles({dir, dir + "/missing"});
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].path, dead0);
  EXPECT_EQ(files[0].name.prefix, "dead");
  EXPECT_EQ(files[0].name.group_id, 2u);
  EXPECT_EQ(files[0].bytes, 3u);
  EXPECT_FALSE(files[0].in_use);
  EXPECT_EQ(files[1].path, dead1);
  EXPECT_EQ(files[1].name.index, 1);
  EXPECT_FALSE(files[1].in_use);
  EXPECT_EQ(files[2].path, live);
  EXPECT_EQ(files[2].bytes, 10u);
  EXPECT_TRUE(files[2].in_use);

  ::close(holder);
  EXPECT_FALSE(SegmentFiles({dir})[2].in_use) << "the lock went with its last descriptor";
}

TEST(SegmentFilesTest, RemovesOnlyFilesNoProcessMaps) {
  const std::string dir = FreshDir("remove_unused");
  const std::string live = absl::StrCat(dir, "/", SegmentFileName("live", 1, 0));
  const std::string dead = absl::StrCat(dir, "/", SegmentFileName("dead", 2, 0));
  WriteFile(live, "x");
  WriteFile(dead, "x");
  WriteFile(dir + "/rtemap_0", "x");
  const int holder = ::open(live.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(holder, 0);
  ASSERT_TRUE(TryLock(holder, LockType::kShared).ok());

  EXPECT_TRUE(RemoveUnusedSegmentFile(dead).ok());
  EXPECT_FALSE(std::filesystem::exists(dead));

  const absl::Status in_use = RemoveUnusedSegmentFile(live);
  EXPECT_TRUE(absl::IsFailedPrecondition(in_use)) << in_use;
  EXPECT_THAT(in_use.message(), HasSubstr("\"live\""));
  EXPECT_TRUE(std::filesystem::exists(live));

  const absl::Status not_ours = RemoveUnusedSegmentFile(dir + "/rtemap_0");
  EXPECT_TRUE(absl::IsInvalidArgument(not_ours)) << not_ours;
  EXPECT_TRUE(std::filesystem::exists(dir + "/rtemap_0"));

  EXPECT_TRUE(absl::IsNotFound(RemoveUnusedSegmentFile(dead))) << "already gone";
  ::close(holder);
}

TEST(HugepageReservationsTest, ReadsEverySizeMachineWideThenPerNode) {
  const std::string root = FreshDir("sysfs");
  auto size_dir = [&](const std::string& parent, const std::string& kb, uint64_t nr, uint64_t free,
                      uint64_t resv, uint64_t surplus) {
    const std::string dir = absl::StrCat(root, parent, "/hugepages-", kb, "kB");
    std::filesystem::create_directories(dir);
    WriteFile(dir + "/nr_hugepages", absl::StrCat(nr, "\n"));
    WriteFile(dir + "/free_hugepages", absl::StrCat(free, "\n"));
    WriteFile(dir + "/surplus_hugepages", absl::StrCat(surplus, "\n"));
    if (resv != 0) WriteFile(dir + "/resv_hugepages", absl::StrCat(resv, "\n"));
  };
  size_dir("/kernel/mm/hugepages", "1048576", 2, 1, 0, 0);
  size_dir("/kernel/mm/hugepages", "2048", 512, 400, 16, 3);
  size_dir("/devices/system/node/node1/hugepages", "2048", 256, 250, 0, 1);
  size_dir("/devices/system/node/node0/hugepages", "2048", 256, 150, 0, 2);
  std::filesystem::create_directories(root + "/devices/system/node/possible_not_a_node");

  const std::vector<HugepageReservation> rows = HugepageReservations(root);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].page_size, 2048u * 1024);
  EXPECT_EQ(rows[0].node, -1);
  EXPECT_EQ(rows[0].total, 512u);
  EXPECT_EQ(rows[0].free, 400u);
  EXPECT_EQ(rows[0].reserved, 16u);
  EXPECT_EQ(rows[0].surplus, 3u);
  EXPECT_EQ(rows[1].page_size, 1024u * 1024 * 1024);
  EXPECT_EQ(rows[1].total, 2u);
  EXPECT_EQ(rows[2].node, 0);
  EXPECT_EQ(rows[2].free, 150u);
  EXPECT_EQ(rows[3].node, 1);
  EXPECT_EQ(rows[3].surplus, 1u);
}

TEST(HugepageReservationsTest, NoHugepageSupportIsNoRows) {
  EXPECT_TRUE(HugepageReservations(FreshDir("empty_sysfs")).empty());
}

}  // namespace
}  // namespace keel::memory
