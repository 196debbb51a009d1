// A short soak under the suite's sanitizers (tools/soak/run runs long ones), and a check
// that its audit catches what it is there to catch.
#include "tests/soak.h"

#include <cstdio>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace keel::soak {
namespace {

using ::testing::HasSubstr;

Options ShortSoak() {
  Options options;
  options.worker = testing::RunfilePath("tests/soak_worker");
  options.file_prefix = testing::UniquePrefix();
  options.no_huge = HugepagesScarce();
  options.secondaries = 3;
  return options;
}

TEST(SoakTest, KillsLoseOnlyWhatTheDeadHeld) {
  Options options = ShortSoak();
  options.cycles = 30;
  options.primary_kill_every = 10;
  Figures figures;
  const absl::Status status = soak::Run(options, &figures);
  std::printf("%s: %s\n", options.no_huge ? "--no-huge" : "hugepages", figures.Summary().c_str());
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(figures.cycles, 30u);
  EXPECT_EQ(figures.primary_kills, 3u);
  EXPECT_EQ(figures.secondary_kills, 27u);
  EXPECT_EQ(figures.generations, 4u);
  EXPECT_GT(figures.objects_moved, 0u);
}

// Every third kill is the primary's, and a new primary adopts the group each time: the
// secondaries never stop, and only what the dead held is lost.
TEST(SoakTest, AdoptedGroupsLoseOnlyWhatTheDeadHeld) {
  Options options = ShortSoak();
  options.cycles = 30;
  options.primary_kill_every = 3;
  options.adopt = true;
  Figures figures;
  const absl::Status status = soak::Run(options, &figures);
  std::printf("adopt, %s: %s\n", options.no_huge ? "--no-huge" : "hugepages",
              figures.Summary().c_str());
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(figures.cycles, 30u);
  EXPECT_EQ(figures.primary_kills, 10u);
  EXPECT_EQ(figures.adoptions, 10u);
  EXPECT_EQ(figures.generations, 1u);
  EXPECT_GT(figures.objects_moved, 0u);
}

TEST(SoakTest, AuditFindsAnObjectALiveProcessHides) {
  Options options = ShortSoak();
  options.cycles = 10;
  options.primary_kill_every = 0;
  options.inject = Options::Fault::kHide;
  Figures figures;
  const absl::Status status = soak::Run(options, &figures);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), HasSubstr("reports")) << status;
  EXPECT_GT(figures.injected_cycle, 0u);
  EXPECT_EQ(figures.cycles, figures.injected_cycle) << "the audit that saw the fault fails";
}

TEST(SoakTest, AuditFindsAnObjectLostFromARingNoDeadProcessUsed) {
  Options options = ShortSoak();
  options.cycles = 10;
  options.primary_kill_every = 0;
  options.inject = Options::Fault::kDrop;
  Figures figures;
  const absl::Status status = soak::Run(options, &figures);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), HasSubstr("no process that uses it died")) << status;
  EXPECT_GT(figures.injected_cycle, 0u);
  EXPECT_EQ(figures.cycles, figures.injected_cycle) << "the audit that saw the fault fails";
}

}  // namespace
}  // namespace keel::soak
