// End to end: the helloworld sample app and procinfo, as the demo runs them.
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
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
  EXPECT_THAT(
      primary->Output(),
      HasSubstr(absl::StrFormat("hello from lcore 0 (primary process, pid %d)", primary->pid())));

  std::unique_ptr<Subprocess> secondary = Subprocess::Start(
      {hello, "--proc-type=secondary", "--lcores", "1@1", "--file-prefix", prefix});
  EXPECT_EQ(secondary->Wait(), 0) << secondary->Output();
  EXPECT_THAT(secondary->Output(),
              HasSubstr(absl::StrFormat("hello from lcore 1 (secondary process, pid %d)",
                                        secondary->pid())));
  EXPECT_THAT(secondary->Output(),
              HasSubstr(absl::StrFormat("pid %d, primary, lcores 0", primary->pid())));
  // The secondary read what the primary wrote into the memzone, and wrote back.
  EXPECT_THAT(secondary->Output(),
              HasSubstr(absl::StrFormat("\"greetings from the primary, pid %d\"", primary->pid())));

  std::unique_ptr<Subprocess> text = Subprocess::Start({procinfo, "--file-prefix", prefix});
  EXPECT_EQ(text->Wait(), 0) << text->Output();
  EXPECT_THAT(text->Output(), HasSubstr(absl::StrFormat("primary pid %d", primary->pid())));
  EXPECT_THAT(text->Output(), HasSubstr("(this procinfo)"));
  EXPECT_THAT(text->Output(), HasSubstr("eal          0.1.0      4"));
  EXPECT_THAT(text->Output(), HasSubstr("memory       0.1.0      2"));
  EXPECT_THAT(text->Output(), ::testing::ContainsRegex("/dev/hugepages/keel\\." + prefix +
                                                       "\\.[0-9a-f]{16}\\.seg0"));
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
  EXPECT_THAT(primary->Output(), HasSubstr(absl::StrFormat(
                                     "primary read the reply: \"hello back from secondary pid %d\"",
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

// The numbers N of the lines "Received 'TAG N'" in `output`, each as often as it appears.
std::multiset<int> Received(const std::string& output, absl::string_view tag) {
  std::multiset<int> got;
  const std::string needle = absl::StrCat("Received '", tag);
  for (size_t at = output.find(needle); at != std::string::npos; at = output.find(needle, at + 1)) {
    got.insert(std::atoi(output.c_str() + at + needle.size()));
  }
  return got;
}

// simple_mp in group `prefix` (--no-huge -m 32) with `args`.
std::unique_ptr<Subprocess> StartSimpleMp(const std::string& prefix,
                                          std::vector<std::string> args) {
  const std::vector<std::string> eal = {RunfilePath("examples/simple_mp/simple_mp"),
                                        "--no-huge",
                                        "-m",
                                        "32",
                                        "--file-prefix",
                                        prefix};
  args.insert(args.begin(), eal.begin(), eal.end());
  return Subprocess::Start(args);
}

int Count(const std::string& output, const std::string& needle) {
  int n = 0;
  for (size_t at = output.find(needle); at != std::string::npos; at = output.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// Hot restart with the sample: the primary SIGKILLed in the middle of a secondary's
// stream of messages, a new primary adopting the group, and the stream going on.
TEST(Examples, SimpleMpTrafficGoesOnWhenANewPrimaryAdoptsTheGroup) {
  const std::string procinfo = RunfilePath("tools/procinfo/procinfo");
  const std::string prefix = testing::UniquePrefix();
  auto start = [&](std::vector<std::string> args) {
    std::unique_ptr<Subprocess> p = StartSimpleMp(prefix, std::move(args));
    EXPECT_TRUE(p->WaitForOutput("ready", absl::Seconds(20))) << p->Output();
    return p;
  };
  std::unique_ptr<Subprocess> dead = start({"-l", "0-1"});
  std::unique_ptr<Subprocess> secondary =
      start({"--proc-type=secondary", "--lcores", "2@0,3@1", "--", "--stay"});

  // 200 messages in batches of 20; the primary is killed after the 7th batch, and the
  // last 60 wait in the ring (63 places) for the next primary.
  constexpr int kMessages = 200;
  for (int batch = 0; batch < 10; ++batch) {
    std::string lines;
    for (int i = batch * 20; i < (batch + 1) * 20; ++i) absl::StrAppend(&lines, "send a", i, "\n");
    secondary->Send(lines);
    absl::SleepFor(absl::Milliseconds(5));
    if (batch == 6) {
      ASSERT_TRUE(dead->WaitForOutput("Received 'a", absl::Seconds(10))) << dead->Output();
      dead->Kill(SIGKILL);
      dead->Wait();
      ASSERT_TRUE(
          secondary->WaitForOutput("waiting for a primary to adopt the group", absl::Seconds(10)))
          << secondary->Output();
    }
  }

  std::unique_ptr<Subprocess> adopter = start({"-l", "0-1", "--adopt"});
  ASSERT_TRUE(secondary->WaitForOutput(
      absl::StrFormat("primary process %d adopted the group", adopter->pid()), absl::Seconds(10)))
      << secondary->Output();
  // Both ways work with the new primary.
  std::string lines;
  for (int i = 0; i < 20; ++i) absl::StrAppend(&lines, "send b", i, "\n");
  secondary->Send(lines);
  adopter->Send("send c0\n");
  ASSERT_TRUE(adopter->WaitForOutput("Received 'b19'", absl::Seconds(10))) << adopter->Output();
  ASSERT_TRUE(secondary->WaitForOutput("Received 'c0'", absl::Seconds(10))) << secondary->Output();
  EXPECT_EQ(Received(adopter->Output(), "b").size(), 20u) << adopter->Output();

  // Every message was received once, or was refused at the sender (counted in its
  // output), or was in the dead primary's hands: its worker takes one at a time.
  std::multiset<int> got = Received(dead->Output(), "a");
  const std::multiset<int> after = Received(adopter->Output(), "a");
  got.insert(after.begin(), after.end());
  for (int n : got) EXPECT_EQ(got.count(n), 1u) << "message a" << n << " received twice";
  const int refused = Count(secondary->Output(), "message discarded");
  const int lost = kMessages - static_cast<int>(got.size()) - refused;
  EXPECT_GE(lost, 0);
  EXPECT_LE(lost, 1) << "received " << got.size() << ", refused " << refused;
  EXPECT_GT(after.size(), 0u) << "the adopter received none of the stream";

  std::unique_ptr<Subprocess> info = Subprocess::Start({procinfo, "--file-prefix", prefix});
  EXPECT_EQ(info->Wait(), 0) << info->Output();
  EXPECT_THAT(info->Output(),
              HasSubstr(absl::StrFormat("primary pid %d (generation 2)", adopter->pid())));

  secondary->Send("quit\n");
  EXPECT_EQ(secondary->Wait(), 0) << secondary->Output();
  adopter->CloseStdin();
  EXPECT_EQ(adopter->Wait(), 0) << adopter->Output();
  EXPECT_THAT(adopter->Output(), HasSubstr("clean shutdown"));
  // The adopter owned the group: nothing of it is left.
  EXPECT_FALSE(std::filesystem::exists(absl::StrCat(testing::RuntimeBase(), "/", prefix)));
  EXPECT_TRUE(testing::SegmentFiles(prefix).empty());
}

// A planned upgrade with the sample: a new primary started with --takeover while a
// secondary streams messages to the running one; the old one hands the group over and
// not one message is lost.
TEST(Examples, SimpleMpPlannedTakeoverLosesNoMessage) {
  const std::string prefix = testing::UniquePrefix();
  auto start = [&](std::vector<std::string> args) { return StartSimpleMp(prefix, args); };
  std::unique_ptr<Subprocess> old = start({"-l", "0-1"});
  ASSERT_TRUE(old->WaitForOutput("ready", absl::Seconds(20))) << old->Output();
  std::unique_ptr<Subprocess> secondary =
      start({"--proc-type=secondary", "--lcores", "2@0,3@1", "--", "--stay"});
  ASSERT_TRUE(secondary->WaitForOutput("ready", absl::Seconds(20))) << secondary->Output();

  constexpr int kMessages = 200;
  std::unique_ptr<Subprocess> next;
  for (int batch = 0; batch < kMessages / 5; ++batch) {
    std::string lines;
    for (int i = batch * 5; i < (batch + 1) * 5; ++i) absl::StrAppend(&lines, "send a", i, "\n");
    secondary->Send(lines);
    absl::SleepFor(absl::Milliseconds(10));
    if (batch == 10) next = start({"-l", "0-1", "--takeover"});
  }
  ASSERT_TRUE(next->WaitForOutput("ready", absl::Seconds(20))) << next->Output();
  EXPECT_EQ(old->Wait(), 0) << old->Output();
  EXPECT_THAT(old->Output(), HasSubstr("another primary asks for the group; handing it over"));
  EXPECT_THAT(old->Output(), HasSubstr("handed the group over"));
  ASSERT_TRUE(secondary->WaitForOutput(
      absl::StrFormat("primary process %d adopted the group", next->pid()), absl::Seconds(10)))
      << secondary->Output();

  // Every message sent is received exactly once, by one primary or the other.
  const int refused = Count(secondary->Output(), "message discarded");
  std::multiset<int> got;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    absl::SleepFor(absl::Milliseconds(20));
    got = Received(old->Output(), "a");
    const std::multiset<int> after = Received(next->Output(), "a");
    got.insert(after.begin(), after.end());
  } while (static_cast<int>(got.size()) + refused < kMessages && absl::Now() < deadline);
  for (int n : got) EXPECT_EQ(got.count(n), 1u) << "message a" << n << " received twice";
  EXPECT_EQ(static_cast<int>(got.size()), kMessages - refused)
      << "lost " << kMessages - refused - static_cast<int>(got.size()) << " (refused " << refused
      << ")";
  EXPECT_GT(Received(next->Output(), "a").size(), 0u);

  secondary->Send("quit\n");
  EXPECT_EQ(secondary->Wait(), 0) << secondary->Output();
  next->CloseStdin();
  EXPECT_EQ(next->Wait(), 0) << next->Output();
  EXPECT_FALSE(std::filesystem::exists(absl::StrCat(testing::RuntimeBase(), "/", prefix)));
  EXPECT_TRUE(testing::SegmentFiles(prefix).empty());
}

TEST(Examples, ProcinfoWithoutAGroupFailsClearly) {
  std::unique_ptr<Subprocess> p = Subprocess::Start(
      {RunfilePath("tools/procinfo/procinfo"), "--file-prefix", testing::UniquePrefix()});
  EXPECT_EQ(p->Wait(), 1);
  EXPECT_THAT(p->Output(), HasSubstr("no primary process is running"));
}

}  // namespace
}  // namespace keel
