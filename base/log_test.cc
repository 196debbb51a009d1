#include "base/log.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keel::log {
namespace {

using ::testing::HasSubstr;

TEST(Log, ParseLevelAcceptsNamesAndNumbers) {
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("WARNING"), Level::kWarning);
  EXPECT_EQ(*ParseLevel("1"), Level::kEmergency);
  EXPECT_FALSE(ParseLevel("0").ok());
  EXPECT_FALSE(ParseLevel("").ok());
  EXPECT_FALSE(ParseLevel("+3").ok());
  EXPECT_THAT(std::string(ParseLevel("chatty").status().message()), HasSubstr("\"chatty\""));
}

TEST(Log, ComponentLevelsOverrideTheGlobalOne) {
  SetLevel(Level::kWarning);
  SetLevel("ring", Level::kDebug);
  EXPECT_TRUE(Enabled("ring", Level::kDebug));
  EXPECT_FALSE(Enabled("eal", Level::kInfo));
  EXPECT_TRUE(Enabled("eal", Level::kWarning));
  EXPECT_EQ(GetLevel("mempool"), Level::kWarning);
  // A new global level resets the per-component ones.
  SetLevel(Level::kNotice);
  EXPECT_FALSE(Enabled("ring", Level::kDebug));
}

TEST(Log, WritesOneLinePerMessageToStderr) {
  SetLevel(Level::kNotice);
  SetTimestamps(false);
  testing::internal::CaptureStderr();
  KEEL_LOG(Notice, "eal", "value %d", 42);
  KEEL_LOG(Debug, "eal", "hidden %d", 1);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "eal: NOTICE: value 42\n");

  SetTimestamps(true);
  testing::internal::CaptureStderr();
  KEEL_LOG(Error, "ring", "x");
  const std::string line = testing::internal::GetCapturedStderr();
  SetTimestamps(false);
  EXPECT_THAT(line, testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z ring: ERR: x\n"));
}

}  // namespace
}  // namespace keel::log
