// End to end: the helloworld sample app and procinfo, as the demo runs them.
#include <signal.h>

#include <filesystem>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"
#include "tests/subprocess.h"

namespace keel {
namespace {

using ::keel::testing::RunfilePath;
using ::keel::testing::Subprocess;
using ::testing::HasSubstr;

TEST(Examples, HelloworldPrimarySecondaryAndProcinfo) {
  if (std::optional<std::string> why = testing::MissingHugepages()) GTEST_SKIP() << *why;
  const std::string hello = RunfilePath("examples/helloworld/helloworld");
  const std::string procinfo = RunfilePath("tools/procinfo/procinfo");
  const std::string prefix = testing::UniquePrefix();

  std::unique_ptr<Subprocess> primary = Subprocess::Start(
      {hello, "-l", "0", "-m", "16", "--file-prefix", prefix, "--", "--stay", "60"});
  ASSERT_TRUE(primary->WaitForOutput("staying up", absl::Seconds(20))) << primary->Output();
  EXPECT_THAT(primary->Output(),
              HasSubstr(absl::StrFormat("hello from lcore 0 (primary process, pid %d)",
                                        primary->pid())));

  std::unique_ptr<Subprocess> secondary = Subprocess::Start(
      {hello, "--proc-type=secondary", "--lcores", "1@1", "--file-prefix", prefix});
  EXPECT_EQ(secondary->Wait(), 0) << secondary->Output();
  EXPECT_THAT(secondary->Output(),
              HasSubstr(absl::StrFormat("hello from lcore 1 (secondary process, pid %d)",
                                        secondary->pid())));
  EXPECT_THAT(secondary->Output(), HasSubstr(absl::StrFormat("pid %d, primary, lcores 0",
                                                             primary->pid())));
  // The secondary read what the primary wrote into the memzone, and wrote back.
  EXPECT_THAT(secondary->Output(),
              HasSubstr(absl::StrFormat("\"greetings from the primary, pid %d\"",
                                        primary->pid())));

  std::unique_ptr<Subprocess> text = Subprocess::Start({procinfo, "--file-prefix", prefix});
  EXPECT_EQ(text->Wait(), 0) << text->Output();
  EXPECT_THAT(text->Output(), HasSubstr(absl::StrFormat("primary pid %d", primary->pid())));
  EXPECT_THAT(text->Output(), HasSubstr("(this procinfo)"));
  EXPECT_THAT(text->Output(), HasSubstr("eal          0.1.0      4"));
  EXPECT_THAT(text->Output(), HasSubstr("memory       0.1.0      2"));
  EXPECT_THAT(text->Output(),
              ::testing::ContainsRegex("/dev/hugepages/keel\\." + prefix + "\\.[0-9a-f]{16}\\.seg0"));
  EXPECT_THAT(text->Output(), ::testing::ContainsRegex("helloworld +0x[0-9a-f]+ +512 "));

  std::unique_ptr<Subprocess> json =
      Subprocess::Start({procinfo, "--file-prefix", prefix, "--", "--json"});
  EXPECT_EQ(json->Wait(), 0) << json->Output();
  EXPECT_THAT(json->Output(),
              HasSubstr(absl::StrFormat("{\"pid\": %d, \"type\": \"primary\", \"program\": "
                                        "\"helloworld\", \"lcores\": [0]",
                                        primary->pid())));
  EXPECT_THAT(json->Output(),
              HasSubstr("\"components\": [{\"name\": \"eal\", \"version\": \"0.1.0\", "
                        "\"layout\": 4}, {\"name\": \"memory\""));
  EXPECT_THAT(json->Output(), HasSubstr("\"memzones\": [{\"name\": \"helloworld\""));
  EXPECT_THAT(json->Output(), HasSubstr("\"page_size\": 2097152, \"socket\": 0"));

  primary->Kill(SIGINT);
  EXPECT_EQ(primary->Wait(), 0) << primary->Output();
  EXPECT_THAT(primary->Output(),
              HasSubstr(absl::StrFormat("primary read the reply: \"hello back from secondary pid %d\"",
                                        secondary->pid())));
  EXPECT_THAT(primary->Output(), HasSubstr("clean shutdown"));
}

// simple_mp as the README runs it: messages both ways, help, bad input, clean quit.
TEST(Examples, SimpleMpExchangesMessagesBothWays) {
  if (std::optional<std::string> why = testing::MissingHugepages()) GTEST_SKIP() << *why;
  const std::string simple_mp = RunfilePath("examples/simple_mp/simple_mp");
  const std::string prefix = testing::UniquePrefix();
  std::unique_ptr<Subprocess> primary =
      Subprocess::Start({simple_mp, "-l", "0-1", "-m", "32", "--file-prefix", prefix});
  ASSERT_TRUE(primary->WaitForOutput("ready", absl::Seconds(20))) << primary->Output();
  std::unique_ptr<Subprocess> secondary = Subprocess::Start(
      {simple_mp, "--proc-type=secondary", "--lcores", "2@0,3@1", "--file-prefix", prefix});
  ASSERT_TRUE(secondary->WaitForOutput("ready", absl::Seconds(20))) << secondary->Output();
  EXPECT_THAT(secondary->Output(), HasSubstr("rings \"SEC_2_PRI\" (send) and \"PRI_2_SEC\""));

  primary->Send("send hello secondary\n");
  EXPECT_TRUE(secondary->WaitForOutput("core 3: Received 'hello secondary'", absl::Seconds(10)))
      << secondary->Output();
  secondary->Send("send hello primary\nsend and again\n");
  EXPECT_TRUE(primary->WaitForOutput("core 1: Received 'and again'", absl::Seconds(10)))
      << primary->Output();
  EXPECT_THAT(primary->Output(), HasSubstr("core 1: Received 'hello primary'"));
  // A message longer than a buffer (64 bytes) is cut, not overrun, and the sender says so.
  primary->Send(absl::StrCat("send ", std::string(100, 'x'), "\n"));
  EXPECT_TRUE(primary->WaitForOutput("message cut to 63 bytes", absl::Seconds(10)));
  EXPECT_TRUE(secondary->WaitForOutput(absl::StrCat("Received '", std::string(63, 'x'), "'"),
                                       absl::Seconds(10)))
      << secondary->Output();

  secondary->Send("help\nsend\nfrobnicate\n");
  EXPECT_TRUE(secondary->WaitForOutput("unknown command \"frobnicate\"", absl::Seconds(10)));
  EXPECT_THAT(secondary->Output(), HasSubstr("send needs some text"));
  EXPECT_THAT(secondary->Output(), HasSubstr("  quit        leave"));

  secondary->Send("quit\n");
  EXPECT_EQ(secondary->Wait(), 0) << secondary->Output();
  EXPECT_THAT(secondary->Output(), HasSubstr("clean shutdown"));
  primary->CloseStdin();  // end of input quits too
  EXPECT_EQ(primary->Wait(), 0) << primary->Output();
  EXPECT_THAT(primary->Output(), HasSubstr("clean shutdown"));
}

TEST(Examples, SimpleMpSecondaryLeavesWhenThePrimaryExits) {
  const std::string simple_mp = RunfilePath("examples/simple_mp/simple_mp");
  const std::string prefix = testing::UniquePrefix();
  std::unique_ptr<Subprocess> primary =
      Subprocess::Start({simple_mp, "-l", "0", "--no-huge", "-m", "32", "--file-prefix", prefix});
  ASSERT_TRUE(primary->WaitForOutput("ready", absl::Seconds(20))) << primary->Output();
  std::unique_ptr<Subprocess> secondary = Subprocess::Start(
      {simple_mp, "--proc-type=secondary", "--lcores", "1@1", "--file-prefix", prefix});
  ASSERT_TRUE(secondary->WaitForOutput("ready", absl::Seconds(20))) << secondary->Output();
  primary->Kill(SIGKILL);
  EXPECT_EQ(secondary->Wait(absl::Seconds(10)), 0) << secondary->Output();
  EXPECT_THAT(secondary->Output(), HasSubstr("the primary process exited; leaving"));
  // The killed primary could not remove its group's files.
  std::error_code ec;
  std::filesystem::remove_all(absl::StrCat(testing::RuntimeBase(), "/", prefix), ec);
  for (const std::string& file : testing::SegmentFiles(prefix)) std::filesystem::remove(file, ec);
}

TEST(Examples, ProcinfoWithoutAGroupFailsClearly) {
  std::unique_ptr<Subprocess> p = Subprocess::Start(
      {RunfilePath("tools/procinfo/procinfo"), "--file-prefix", testing::UniquePrefix()});
  EXPECT_EQ(p->Wait(), 1);
  EXPECT_THAT(p->Output(), HasSubstr("no primary process is running"));
}

}  // namespace
}  // namespace keel
