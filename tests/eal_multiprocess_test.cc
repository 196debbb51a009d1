// The EAL process model with real processes: every test starts eal_helper processes
// in a group of its own (a unique --file-prefix) and checks what each saw.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
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

using ::keel::testing::SpawnOptions;
using ::keel::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kStartTimeout = absl::Seconds(20);

class EalMultiProcessTest : public testing::GroupTest {
 protected:
  EalMultiProcessTest() : GroupTest("tests/eal_helper") {}

  // Starts a primary that holds on to the group until told to quit.
  std::unique_ptr<Subprocess> StartPrimary(const std::vector<std::string>& eal_args = {"-l", "0"}) {
    std::unique_ptr<Subprocess> p = Start(eal_args, {"hold"});
    EXPECT_TRUE(p->WaitForOutput("READY", kStartTimeout)) << p->Output();
    EXPECT_THAT(p->Output(), HasSubstr("type=primary"));
    return p;
  }

  // Runs a process to completion and returns its exit code; its output in *output.
  int Run(const std::vector<std::string>& eal_args, const std::vector<std::string>& command,
          std::string* output) {
    std::unique_ptr<Subprocess> p = Start(eal_args, command);
    const int rc = p->Wait();
    *output = p->Output();
    return rc;
  }

  static void Quit(Subprocess* p) {
    p->Send("quit\n");
    EXPECT_EQ(p->Wait(), 0) << p->Output();
    EXPECT_THAT(p->Output(), HasSubstr("BYE"));
  }

  // A primary with `eal_args` that must adopt the group, once it is READY.
  std::unique_ptr<Subprocess> StartAdopter(const std::vector<std::string>& eal_args) {
    std::unique_ptr<Subprocess> p = Start(eal_args, {"hold"});
    EXPECT_TRUE(p->WaitForOutput("READY", kStartTimeout)) << p->Output();
    EXPECT_THAT(p->Output(), HasSubstr("type=primary adopted"));
    return p;
  }

  // A secondary (holding, on lcore 1) whose primary was SIGKILLed; the dead primary in
  // *dead (for its pid).
  std::unique_ptr<Subprocess> OrphanedSecondary(std::unique_ptr<Subprocess>* dead) {
    *dead = StartPrimary();
    std::unique_ptr<Subprocess> secondary = Start({"--proc-type=secondary", "-l", "1"}, {"hold"});
    EXPECT_TRUE(secondary->WaitForOutput("READY", kStartTimeout)) << secondary->Output();
    (*dead)->Kill(SIGKILL);
    (*dead)->Wait();
    return secondary;
  }
};

TEST_F(EalMultiProcessTest, PrimaryAndSecondarySeeEachOther) {
  std::unique_ptr<Subprocess> primary = StartPrimary({"-l", "0"});
  std::string out;
  ASSERT_EQ(Run({"--proc-type=secondary", "--lcores", "7@1"}, {"once"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("type=secondary"));
  EXPECT_THAT(out,
              HasSubstr(absl::StrFormat("PROC pid=%d type=primary lcores=0\n", primary->pid())));
  EXPECT_THAT(out, HasSubstr("type=secondary lcores=7 self"));
  EXPECT_THAT(out, HasSubstr("COMPONENT eal layout=4"));

  // The primary now sees only itself: the secondary unregistered on Cleanup.
  primary->Send("describe\n");
  ASSERT_TRUE(primary->WaitForOutput("END", kStartTimeout));
  EXPECT_THAT(primary->Output(), Not(HasSubstr("type=secondary")));
  Quit(primary.get());
  EXPECT_FALSE(std::filesystem::exists(dir_)) << "primary shutdown leaves " << dir_;
}

TEST_F(EalMultiProcessTest, AutoIsPrimaryWhenAloneAndSecondaryOtherwise) {
  std::unique_ptr<Subprocess> first = Start({"--proc-type=auto", "-l", "0"}, {"hold"});
  ASSERT_TRUE(first->WaitForOutput("READY", kStartTimeout)) << first->Output();
  EXPECT_THAT(first->Output(), HasSubstr("type=primary"));
  std::string out;
  ASSERT_EQ(Run({"--proc-type=auto", "-l", "1"}, {"once"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("READY"));
  EXPECT_THAT(out, HasSubstr("type=secondary"));
  Quit(first.get());
}

TEST_F(EalMultiProcessTest, SecondPrimaryIsRefused) {
  std::unique_ptr<Subprocess> primary = StartPrimary();
  std::string out;
  EXPECT_EQ(Run({"--proc-type=primary", "-l", "1"}, {"once"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrFormat("a primary process (pid %d) is already running",
                                             primary->pid())));
  Quit(primary.get());
}

TEST_F(EalMultiProcessTest, SecondaryWithoutPrimaryFailsFast) {
  const absl::Time start = absl::Now();
  std::string out;
  EXPECT_EQ(Run({"--proc-type=secondary", "--attach-timeout", "60"}, {"once"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(out, HasSubstr("no primary process is running"));
  // It does not sit out the 60 s attach timeout.
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
}

TEST_F(EalMultiProcessTest, SecondaryWithAnotherLayoutVersionIsRefused) {
  std::unique_ptr<Subprocess> primary = StartPrimary();
  std::string out;
  EXPECT_EQ(Run({"--proc-type=secondary", "-l", "1"}, {"once", "--layout", "eal=999"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(out, HasSubstr("component \"eal\""));
  EXPECT_THAT(out, HasSubstr("uses shared-layout version 4, this process has layout version 999"));
  Quit(primary.get());
}

TEST_F(EalMultiProcessTest, LcoreOverlapIsRefusedUntilTheOwnerIsKilled) {
  std::unique_ptr<Subprocess> primary = StartPrimary({"-l", "0"});
  std::string out;
  EXPECT_EQ(Run({"--proc-type=secondary", "-l", "0"}, {"once"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrFormat("lcore 0 is already used by primary process %d",
                                             primary->pid())));

  std::unique_ptr<Subprocess> owner = Start({"--proc-type=secondary", "--lcores", "5@1"}, {"hold"});
  ASSERT_TRUE(owner->WaitForOutput("READY", kStartTimeout)) << owner->Output();
  EXPECT_EQ(Run({"--proc-type=secondary", "--lcores", "(4-5)@0"}, {"once"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrFormat("lcore 5 is already used by secondary process %d",
                                             owner->pid())));

  owner->Kill(SIGKILL);
  EXPECT_EQ(owner->Wait(), 128 + SIGKILL);
  ASSERT_EQ(Run({"--proc-type=secondary", "--lcores", "(4-5)@0"}, {"once"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("lcores=4,5 self"));
  EXPECT_THAT(out, Not(HasSubstr(absl::StrFormat("pid=%d", owner->pid()))));
  Quit(primary.get());
}

TEST_F(EalMultiProcessTest, CleanExitReleasesLcores) {
  std::unique_ptr<Subprocess> primary = StartPrimary({"-l", "0"});
  std::string out;
  ASSERT_EQ(Run({"--proc-type=secondary", "--lcores", "9@1"}, {"once"}, &out), 0) << out;
  ASSERT_EQ(Run({"--proc-type=secondary", "--lcores", "9@1"}, {"once"}, &out), 0) << out;
  Quit(primary.get());
}

TEST_F(EalMultiProcessTest, SecondaryObservesPrimarySigkill) {
  std::unique_ptr<Subprocess> primary = StartPrimary();
  std::unique_ptr<Subprocess> watcher =
      Start({"--proc-type=secondary", "-l", "1"}, {"watch-primary"});
  ASSERT_TRUE(watcher->WaitForOutput("READY", kStartTimeout)) << watcher->Output();
  primary->Kill(SIGKILL);
  ASSERT_TRUE(watcher->WaitForOutput("PRIMARY-EXITED", absl::Seconds(20))) << watcher->Output();
  EXPECT_THAT(watcher->Output(), HasSubstr("PRIMARY-EXITED ready=1 alive=0"));
  EXPECT_EQ(watcher->Wait(), 0) << watcher->Output();
}

TEST_F(EalMultiProcessTest, NewPrimaryCleansStaleStateOfADeadOne) {
  std::unique_ptr<Subprocess> dead = StartPrimary();
  dead->Kill(SIGKILL);
  dead->Wait();
  ASSERT_TRUE(Exists("config"));

  std::string out;
  EXPECT_EQ(Run({"--proc-type=secondary", "-l", "1"}, {"once"}, &out), 2) << out;
  EXPECT_THAT(
      out, HasSubstr(absl::StrFormat(
               "no primary process is running (the last one, pid %d, has exited)", dead->pid())));

  std::unique_ptr<Subprocess> next = StartPrimary();
  EXPECT_THAT(next->Output(), HasSubstr(absl::StrFormat(
                                  "removing the stale state of primary pid %d", dead->pid())));
  ASSERT_EQ(Run({"--proc-type=secondary", "-l", "1"}, {"once"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrFormat("PROC pid=%d type=primary", next->pid())));
  Quit(next.get());
}

TEST_F(EalMultiProcessTest, NewPrimaryWaitsForSecondariesOfTheDeadOne) {
  std::unique_ptr<Subprocess> dead = StartPrimary();
  std::unique_ptr<Subprocess> orphan = Start({"--proc-type=secondary", "-l", "1"}, {"hold"});
  ASSERT_TRUE(orphan->WaitForOutput("READY", kStartTimeout)) << orphan->Output();
  dead->Kill(SIGKILL);
  dead->Wait();

  std::string out;
  EXPECT_EQ(Run({"-l", "0"}, {"once"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrFormat("processes %d (", orphan->pid())));
  EXPECT_THAT(out,
              HasSubstr("start this primary with --adopt (or --proc-type=auto) to take them over"));

  Quit(orphan.get());
  ASSERT_EQ(Run({"-l", "0"}, {"once"}, &out), 0) << out;
}

// The primary SIGKILLed while a secondary runs; a new primary adopts the group.
TEST_F(EalMultiProcessTest, AdoptingPrimaryTakesOverALiveGroup) {
  std::unique_ptr<Subprocess> dead;
  std::unique_ptr<Subprocess> secondary = OrphanedSecondary(&dead);
  secondary->Send("alive\n");
  ASSERT_TRUE(secondary->WaitForOutput("PRIMARY-ALIVE 0 generation=1", kStartTimeout))
      << secondary->Output();

  std::unique_ptr<Subprocess> adopter = StartAdopter({"-l", "0", "--adopt"});
  EXPECT_THAT(adopter->Output(),
              HasSubstr(absl::StrFormat("adopted the group of dead primary pid %d", dead->pid())));
  secondary->Send("alive\n");
  ASSERT_TRUE(secondary->WaitForOutput("PRIMARY-ALIVE 1 generation=2", kStartTimeout))
      << secondary->Output();
  secondary->Send("describe\n");
  ASSERT_TRUE(secondary->WaitForOutput(
      absl::StrFormat("PROC pid=%d type=primary lcores=0\n", adopter->pid()), kStartTimeout))
      << secondary->Output();
  EXPECT_THAT(secondary->Output(), Not(HasSubstr(absl::StrFormat("pid=%d", dead->pid()))));
  adopter->Send("describe\n");
  ASSERT_TRUE(adopter->WaitForOutput(
      absl::StrFormat("PROC pid=%d type=secondary lcores=1\n", secondary->pid()), kStartTimeout))
      << adopter->Output();

  // The lcore of the dead primary was reclaimed for the adopter, and a new secondary
  // attaches to the adopted group.
  std::string out;
  ASSERT_EQ(Run({"--proc-type=secondary", "--lcores", "2@0"}, {"once"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrFormat("PROC pid=%d type=primary", adopter->pid())));

  Quit(secondary.get());
  Quit(adopter.get());
  // The adopter owned the group: its clean exit removed the runtime directory.
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

TEST_F(EalMultiProcessTest, AutoAdoptsAGroupWhosePrimaryDied) {
  std::unique_ptr<Subprocess> dead;
  std::unique_ptr<Subprocess> secondary = OrphanedSecondary(&dead);
  std::unique_ptr<Subprocess> adopter = StartAdopter({"--proc-type=auto", "-l", "0"});
  Quit(secondary.get());
  Quit(adopter.get());
}

TEST_F(EalMultiProcessTest, AdoptionOfAnotherLayoutVersionIsRefusedAndLeavesTheGroupAlone) {
  std::unique_ptr<Subprocess> dead;
  std::unique_ptr<Subprocess> secondary = OrphanedSecondary(&dead);

  std::string out;
  EXPECT_EQ(Run({"-l", "0", "--adopt"}, {"once", "--layout", "eal=999"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("component \"eal\": group"));
  EXPECT_THAT(out, HasSubstr("uses shared-layout version 4, this process has layout version 999"));
  // Nothing was touched: the secondary lives on, and a compatible primary adopts.
  secondary->Send("alive\n");
  ASSERT_TRUE(secondary->WaitForOutput("PRIMARY-ALIVE 0 generation=1", kStartTimeout))
      << secondary->Output();
  std::unique_ptr<Subprocess> adopter = StartAdopter({"-l", "0", "--adopt"});
  Quit(secondary.get());
  Quit(adopter.get());
}

TEST_F(EalMultiProcessTest, AnAdopterKilledBeforeItIsPublishedLeavesTheGroupAdoptable) {
  std::unique_ptr<Subprocess> dead;
  std::unique_ptr<Subprocess> secondary = OrphanedSecondary(&dead);

  SpawnOptions kill;
  kill.env = {"KEEL_KILL_POINT=eal.adopt.before_publish"};
  std::unique_ptr<Subprocess> killed = Start({"-l", "0", "--adopt"}, {"hold"}, kill);
  killed->Wait();
  EXPECT_THAT(killed->Output(), Not(HasSubstr("READY")));

  std::unique_ptr<Subprocess> adopter = StartAdopter({"-l", "0", "--adopt"});
  secondary->Send("alive\n");
  ASSERT_TRUE(secondary->WaitForOutput("PRIMARY-ALIVE 1 generation=2", kStartTimeout))
      << secondary->Output();
  adopter->Send("describe\n");
  ASSERT_TRUE(adopter->WaitForOutput("END", kStartTimeout)) << adopter->Output();
  // The killed adopter's slot was reaped: two processes, the adopter and the secondary.
  EXPECT_THAT(adopter->Output(), Not(HasSubstr(absl::StrFormat("pid=%d", killed->pid()))));
  Quit(secondary.get());
  Quit(adopter.get());
}

// A planned takeover: the running primary hands its group over to the one that asks.
TEST_F(EalMultiProcessTest, TakeoverAsksTheRunningPrimaryToHandTheGroupOver) {
  std::unique_ptr<Subprocess> old = Start({"-l", "0"}, {"hand-over"});
  ASSERT_TRUE(old->WaitForOutput("READY", kStartTimeout)) << old->Output();
  std::unique_ptr<Subprocess> secondary = Start({"--proc-type=secondary", "-l", "1"}, {"hold"});
  ASSERT_TRUE(secondary->WaitForOutput("READY", kStartTimeout)) << secondary->Output();

  std::unique_ptr<Subprocess> next = StartAdopter({"-l", "0", "--takeover"});
  EXPECT_EQ(old->Wait(), 0) << old->Output();
  EXPECT_THAT(old->Output(),
              HasSubstr(absl::StrFormat("hands the group over to pid %d", next->pid())));
  EXPECT_THAT(old->Output(), HasSubstr("HANDED-OVER"));
  secondary->Send("alive\n");
  ASSERT_TRUE(secondary->WaitForOutput("PRIMARY-ALIVE 1 generation=2", kStartTimeout))
      << secondary->Output();
  Quit(secondary.get());
  Quit(next.get());
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

// A primary alone hands over too: the group (its shared state) is adopted, not started
// anew, though no secondary runs.
TEST_F(EalMultiProcessTest, TakeoverOfALonePrimaryKeepsItsGroup) {
  std::unique_ptr<Subprocess> old = Start({"-l", "0"}, {"hand-over"});
  ASSERT_TRUE(old->WaitForOutput("READY", kStartTimeout)) << old->Output();
  std::unique_ptr<Subprocess> next = StartAdopter({"-l", "0", "--takeover"});
  EXPECT_EQ(old->Wait(), 0) << old->Output();
  Quit(next.get());
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

// Secondaries that start while one primary hands the group over to the next wait for
// the next one instead of failing, whatever moment they come.
TEST_F(EalMultiProcessTest, ASecondaryAttachingDuringAHandOverWaitsForTheNextPrimary) {
  std::unique_ptr<Subprocess> primary = Start({"-l", "0"}, {"hand-over"});
  ASSERT_TRUE(primary->WaitForOutput("READY", kStartTimeout)) << primary->Output();
  for (int round = 0; round < 10; ++round) {
    std::unique_ptr<Subprocess> next = Start({"-l", "0", "--takeover"}, {"hand-over"});
    std::unique_ptr<Subprocess> secondary =
        Start({"--proc-type=secondary", "--lcores", absl::StrCat(1 + round % 2, "@1")}, {"once"});
    EXPECT_EQ(secondary->Wait(), 0) << "round " << round << ": " << secondary->Output();
    ASSERT_TRUE(next->WaitForOutput("READY", kStartTimeout)) << next->Output();
    EXPECT_EQ(primary->Wait(), 0) << primary->Output();
    primary = std::move(next);
  }
  Quit(primary.get());
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

TEST_F(EalMultiProcessTest, TakeoverOfAPrimaryThatDoesNotHandOverTimesOut) {
  std::unique_ptr<Subprocess> running = StartPrimary();  // never reads its requests
  std::string out;
  EXPECT_EQ(Run({"-l", "1", "--takeover", "--attach-timeout", "0.3"}, {"once"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrFormat(
                       "--takeover: the primary (pid %d) of file prefix \"%s\" did not hand its "
                       "group over within 300ms",
                       running->pid(), prefix_)));
  // Without a running primary, --takeover starts (or adopts) a group.
  Quit(running.get());
  ASSERT_EQ(Run({"-l", "0", "--takeover"}, {"once"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("type=primary"));
}

// 100 kills and adoptions in a row, a secondary holding on throughout: each adopter
// takes over, the generation counts them, and the last one's exit leaves nothing.
TEST_F(EalMultiProcessTest, HundredKillsAndAdoptions) {
  std::unique_ptr<Subprocess> primary;
  std::unique_ptr<Subprocess> secondary = OrphanedSecondary(&primary);
  for (int generation = 2; generation <= 101; ++generation) {
    primary = Start({"-l", "0", "--adopt"}, {"hold"});
    ASSERT_TRUE(primary->WaitForOutput("READY", kStartTimeout)) << primary->Output();
    ASSERT_THAT(primary->Output(), HasSubstr("type=primary adopted")) << generation;
    secondary->Send("alive\n");
    ASSERT_TRUE(secondary->WaitForOutput(
        absl::StrFormat("PRIMARY-ALIVE 1 generation=%d\n", generation), kStartTimeout))
        << secondary->Output();
    if (generation == 101) break;
    primary->Kill(SIGKILL);
    primary->Wait();
  }
  secondary->Send("describe\n");
  ASSERT_TRUE(secondary->WaitForOutput(
      absl::StrFormat("PROC pid=%d type=primary lcores=0\n", primary->pid()), kStartTimeout))
      << secondary->Output();
  Quit(secondary.get());
  Quit(primary.get());
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

// Adoption racing the exit of the last secondaries: the new primary either adopts a
// group that empties under it or starts a new one; either way it ends up alone in a
// consistent group and leaves nothing behind.
TEST_F(EalMultiProcessTest, AdoptionRacingTheSecondariesExit) {
  for (int round = 0; round < 5; ++round) {
    std::unique_ptr<Subprocess> dead = StartPrimary();
    std::vector<std::unique_ptr<Subprocess>> secondaries;
    for (int i = 1; i <= 3; ++i) {
      secondaries.push_back(
          Start({"--proc-type=secondary", "--lcores", absl::StrCat(i, "@1")}, {"hold"}));
      ASSERT_TRUE(secondaries.back()->WaitForOutput("READY", kStartTimeout))
          << secondaries.back()->Output();
    }
    dead->Kill(SIGKILL);
    dead->Wait();
    std::unique_ptr<Subprocess> adopter = Start({"-l", "0", "--adopt"}, {"hold"});
    for (auto& s : secondaries) s->Send("quit\n");
    ASSERT_TRUE(adopter->WaitForOutput("READY", kStartTimeout)) << adopter->Output();
    for (auto& s : secondaries) EXPECT_EQ(s->Wait(), 0) << s->Output();
    adopter->Send("describe\n");
    ASSERT_TRUE(adopter->WaitForOutput("END", kStartTimeout)) << adopter->Output();
    EXPECT_THAT(adopter->Output(), Not(HasSubstr("type=secondary")));
    Quit(adopter.get());
    EXPECT_FALSE(std::filesystem::exists(dir_)) << "round " << round;
  }
}

TEST_F(EalMultiProcessTest, PrefixesAreIndependent) {
  std::unique_ptr<Subprocess> primary_a = StartPrimary({"-l", "0"});
  // Same lcore, other group: allowed.
  const std::string other_prefix = prefix_ + ".b";
  std::unique_ptr<Subprocess> primary_b =
      Subprocess::Start({helper_, "--file-prefix", other_prefix, "-l", "0", "--", "hold"});
  ASSERT_TRUE(primary_b->WaitForOutput("READY", kStartTimeout)) << primary_b->Output();
  EXPECT_THAT(primary_b->Output(), HasSubstr("type=primary"));

  std::unique_ptr<Subprocess> secondary_b = Subprocess::Start(
      {helper_, "--file-prefix", other_prefix, "--proc-type=secondary", "-l", "1", "--", "once"});
  EXPECT_EQ(secondary_b->Wait(), 0) << secondary_b->Output();
  EXPECT_THAT(secondary_b->Output(),
              HasSubstr(absl::StrFormat("PROC pid=%d type=primary", primary_b->pid())));
  EXPECT_THAT(secondary_b->Output(), Not(HasSubstr(absl::StrFormat("pid=%d", primary_a->pid()))));
  Quit(primary_b.get());
  Quit(primary_a.get());
}

TEST_F(EalMultiProcessTest, RuntimeFilesArePrivate) {
  std::unique_ptr<Subprocess> primary = StartPrimary();
  struct stat st;
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0) << dir_;
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  for (const char* file : {"config", "lock"}) {
    const std::string path = absl::StrCat(dir_, "/", file);
    ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << path;
  }
  Quit(primary.get());
}

TEST_F(EalMultiProcessTest, AnotherUserCannotAttach) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a process as nobody";
  std::unique_ptr<Subprocess> primary = StartPrimary();
  // A copy of the helper that nobody may execute (bazel's output tree is under /root).
  char tmpl[] = "/tmp/keel-nobody-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string copy = absl::StrCat(tmpl, "/eal_helper");
  std::filesystem::copy_file(helper_, copy);
  ::chmod(tmpl, 0755);
  ::chmod(copy.c_str(), 0755);

  SpawnOptions as_nobody;
  as_nobody.uid = 65534;
  // Point nobody at root's runtime directories: the permissions must stop it.
  as_nobody.env = {absl::StrCat("KEEL_RUNTIME_DIR=", testing::RuntimeBase())};
  std::unique_ptr<Subprocess> intruder =
      Start({"--proc-type=secondary", "-l", "1"}, {"once"}, as_nobody, copy);
  EXPECT_EQ(intruder->Wait(), 2) << intruder->Output();
  EXPECT_THAT(intruder->Output(), HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(intruder->Output(), HasSubstr("Permission denied"));
  std::filesystem::remove_all(tmpl);

  // The group is unharmed.
  std::string out;
  EXPECT_EQ(Run({"--proc-type=secondary", "-l", "1"}, {"once"}, &out), 0) << out;
  Quit(primary.get());
}

TEST_F(EalMultiProcessTest, SecondaryWaitsForThePrimaryToFinishInit) {
  std::unique_ptr<Subprocess> primary = Start({"-l", "0"}, {"hold", "--init-delay-ms", "1500"});
  const absl::Time deadline = absl::Now() + kStartTimeout;
  while (!Exists("config") && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(Exists("config"));

  std::string out;
  EXPECT_EQ(Run({"--proc-type=secondary", "-l", "1", "--attach-timeout", "0.2"}, {"once"}, &out),
            2);
  EXPECT_THAT(out, HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_THAT(
      out, HasSubstr(absl::StrFormat("waiting for primary pid %d to finish init", primary->pid())));

  ASSERT_EQ(Run({"--proc-type=secondary", "-l", "1", "--attach-timeout", "30"}, {"once"}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("type=secondary"));
  Quit(primary.get());
}

TEST_F(EalMultiProcessTest, PrimaryDyingDuringInitIsReported) {
  std::unique_ptr<Subprocess> primary = Start({"-l", "0"}, {"hold", "--init-delay-ms", "60000"});
  const absl::Time deadline = absl::Now() + kStartTimeout;
  while (!Exists("config") && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(Exists("config"));

  std::unique_ptr<Subprocess> secondary = Start(
      {"--proc-type=secondary", "-l", "1", "--attach-timeout", "60", "--log-level", "eal:debug"},
      {"once"});
  // The secondary says when it starts waiting for this primary: kill it then.
  ASSERT_TRUE(secondary->WaitForOutput(
      absl::StrFormat("waiting for primary pid %d to finish init", primary->pid()), kStartTimeout))
      << secondary->Output();
  primary->Kill(SIGKILL);
  EXPECT_EQ(secondary->Wait(absl::Seconds(30)), 2) << secondary->Output();
  EXPECT_THAT(secondary->Output(),
              HasSubstr(absl::StrFormat(
                  "a primary died during init (the last one recorded is pid %d)", primary->pid())));
}

TEST_F(EalMultiProcessTest, WorkerLcoresRunPinnedAndReturnResults) {
  std::string out;
  ASSERT_EQ(Run({"--lcores", "3@0,4@1"}, {"lcores"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("RAN lcore=3 pinned=1"));
  EXPECT_THAT(out, HasSubstr("RAN lcore=4 pinned=1"));
  EXPECT_THAT(out, HasSubstr("WAIT lcore=4 result=104"));
  EXPECT_THAT(out, Not(HasSubstr("WAIT lcore=3")));  // the main lcore is not a worker
}

TEST_F(EalMultiProcessTest, VersionFlagListsComponents) {
  std::string out;
  ASSERT_EQ(Run({"-v", "-l", "0"}, {"once"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("eal 0.1.0 (layout 4)"));
}

TEST_F(EalMultiProcessTest, HelpPrintsUsageAndJoinsNothing) {
  std::string out;
  EXPECT_EQ(Run({"-h"}, {"once"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("Usage:"));
  EXPECT_THAT(out, HasSubstr("CANCELLED"));
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

TEST_F(EalMultiProcessTest, BadOptionFailsNamingIt) {
  std::string out;
  EXPECT_EQ(Run({"-l", "1#2"}, {"once"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("INVALID_ARGUMENT: -l \"1#2\""));
}

// Processes of one group in different PID namespaces (containers sharing the runtime
// directory) see each other alive: liveness is a lock, not a /proc lookup of a pid.
TEST_F(EalMultiProcessTest, SecondaryInItsOwnPidNamespaceAttachesAndStaysAlive) {
  if (::geteuid() != 0) GTEST_SKIP() << "unshare --pid needs root";
  if (!std::filesystem::exists("/usr/bin/unshare")) GTEST_SKIP() << "no /usr/bin/unshare";
  std::unique_ptr<Subprocess> primary = StartPrimary({"-l", "0"});
  std::unique_ptr<Subprocess> contained =
      Subprocess::Start({"/usr/bin/unshare", "--pid", "--fork", helper_, "--file-prefix", prefix_,
                         "--proc-type=secondary", "--lcores", "9@1", "--", "hold"});
  ASSERT_TRUE(contained->WaitForOutput("READY", kStartTimeout)) << contained->Output();
  contained->Send("alive\n");
  ASSERT_TRUE(contained->WaitForOutput("PRIMARY-ALIVE 1", kStartTimeout)) << contained->Output();

  // Another process, in the primary's namespace, sees the contained one (its pid is 1
  // there, which names another process here) and does not reap it.
  std::string out;
  ASSERT_EQ(Run({"--proc-type=secondary", "--lcores", "10@1"}, {"once"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("type=secondary lcores=9\n"));
  // Its lcore stays taken.
  ASSERT_EQ(Run({"--proc-type=secondary", "--lcores", "9@1"}, {"once"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("lcore 9 is already used by secondary process"));

  // The primary's death reaches it by the lock too.
  primary->Kill(SIGKILL);
  primary->Wait();
  contained->Send("alive\n");
  ASSERT_TRUE(contained->WaitForOutput("PRIMARY-ALIVE 0", kStartTimeout)) << contained->Output();
  contained->Send("quit\n");
  EXPECT_EQ(contained->Wait(), 0) << contained->Output();
}

// A primary that forks after Init and exits leaves its child holding the group's files:
// the group is alive as long as that child is, whatever the primary's pid says.
TEST_F(EalMultiProcessTest, APrimarysForkedChildKeepsTheGroupAlive) {
  std::unique_ptr<Subprocess> primary = StartPrimary({"-l", "0"});
  primary->Send("fork-exit\n");
  ASSERT_EQ(primary->Wait(), 0) << primary->Output();
  const std::string forked = primary->Output().substr(primary->Output().find("FORKED child="));
  const pid_t child = std::stoi(forked.substr(13));
  ASSERT_GT(child, 0);

  std::string out;
  EXPECT_EQ(Run({"--proc-type=secondary", "-l", "1", "--attach-timeout", "2"}, {"once"}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("type=secondary"));
  // And a second primary is refused while the child lives.
  EXPECT_EQ(Run({"-l", "1"}, {"once"}, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("a primary process (pid"));

  ::kill(child, SIGKILL);
  // The child is not ours to reap (its parent exited): it is gone once the lock is free.
  const absl::Time deadline = absl::Now() + kStartTimeout;
  int rc = -1;
  while (absl::Now() < deadline &&
         (rc = Run({"--proc-type=secondary", "-l", "1", "--attach-timeout", "0.2"}, {"once"},
                   &out)) == 0) {
  }
  EXPECT_EQ(rc, 2) << out;
  EXPECT_THAT(out, HasSubstr("no primary process is running"));
}

// A process killed while holding the group's config lock wedges nobody: the next
// locker recovers it, reaps the dead process and goes on.
TEST_F(EalMultiProcessTest, ConfigLockIsRecoveredAfterItsHolderIsKilled) {
  std::unique_ptr<Subprocess> primary = StartPrimary({"-l", "0"});
  std::unique_ptr<Subprocess> holder =
      Start({"--proc-type=secondary", "--lcores", "5@1"}, {"hold"});
  ASSERT_TRUE(holder->WaitForOutput("READY", kStartTimeout)) << holder->Output();
  holder->Send("hold-config-lock 600000\n");
  ASSERT_TRUE(holder->WaitForOutput("HOLDING", kStartTimeout)) << holder->Output();
  holder->Kill(SIGKILL);
  holder->Wait();
  std::string out;
  ASSERT_EQ(Run({"--proc-type=secondary", "--lcores", "5@1"}, {"once"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("recovering the shared eal config lock from a process that died"));
  EXPECT_THAT(out, Not(HasSubstr("lcores=5\nPROC")));
  Quit(primary.get());
}

// A process killed at any step of joining or leaving leaves the group consistent: its
// slot is reaped, its lcores are free for the next process. Kill points (debug builds)
// stop it exactly there.
TEST_F(EalMultiProcessTest, AProcessKilledWhileJoiningOrLeavingLeavesNoTrace) {
  std::unique_ptr<Subprocess> primary = StartPrimary({"-l", "0"});
  for (const char* point :
       {"eal.register.byte_locked", "eal.register.in_use", "eal.leave.lcores_released"}) {
    SpawnOptions dies_there;
    dies_there.env = {absl::StrCat("KEEL_KILL_POINT=", point)};
    std::unique_ptr<Subprocess> victim =
        Start({"--proc-type=secondary", "--lcores", "5@1"}, {"once"}, dies_there);
    EXPECT_EQ(victim->Wait(), 128 + SIGKILL) << point << ": " << victim->Output();
    std::string out;
    ASSERT_EQ(Run({"--proc-type=secondary", "--lcores", "5@1"}, {"once"}, &out), 0)
        << point << ": " << out;
    EXPECT_THAT(out, HasSubstr(absl::StrFormat("PROC pid=%d type=primary lcores=0\nPROC pid=",
                                               primary->pid())))
        << point;
    EXPECT_THAT(out, HasSubstr("type=secondary lcores=5 self\nCOMPONENT")) << point;
  }
  Quit(primary.get());
}

// Damaged runtime files: a process attaching refuses with a clear, printable error and
// never crashes (exit 2 is the helper's Init failure; a crash is 128+signal).
class CorruptConfigTest : public EalMultiProcessTest {
 protected:
  // Saves RUNDIR/config, lets `damage` change it, tries to attach, restores the file.
  std::string AttachToDamaged(const std::function<void(std::string*)>& damage) {
    const std::string path = absl::StrCat(dir_, "/config");
    std::string original;
    {
      std::ifstream in(path, std::ios::binary);
      original.assign(std::istreambuf_iterator<char>(in), {});
    }
    std::string damaged = original;
    damage(&damaged);
    WriteInPlace(path, damaged);
    std::string out;
    const int rc =
        Run({"--proc-type=secondary", "-l", "1", "--attach-timeout", "0.3"}, {"once"}, &out);
    WriteInPlace(path, original);
    EXPECT_TRUE(rc == 0 || rc == 2) << "exit " << rc << ": " << out;
    EXPECT_TRUE(testing::IsPrintable(out)) << out;
    return out;
  }

  // Rewrites the file's bytes in place (the primary keeps the same inode mapped).
  static void WriteInPlace(const std::string& path, const std::string& bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(bytes.size())), 0);
    ::close(fd);
  }
};

TEST_F(CorruptConfigTest, TruncatedZeroedOrOverwrittenConfigIsRefusedClearly) {
  std::unique_ptr<Subprocess> primary = StartPrimary({"-l", "0"});
  EXPECT_THAT(AttachToDamaged([](std::string* f) { f->resize(100); }),
              HasSubstr("the file is damaged"));
  EXPECT_THAT(AttachToDamaged([](std::string* f) { f->assign(f->size(), '\0'); }),
              HasSubstr("is not a keel shared config"));
  // The fingerprint overwritten with control characters and bytes above 0x7f.
  EXPECT_THAT(AttachToDamaged([](std::string* f) {
                for (size_t i = 48; i < 80; ++i) (*f)[i] = static_cast<char>(0x1b + i * 7);
              }),
              HasSubstr("the header checksum does not match"));
  // Random bytes anywhere in the header (magic, version, pids, fingerprint, prefix).
  std::mt19937 random(20261201);
  for (int round = 0; round < 30; ++round) {
    const std::string out = AttachToDamaged([&](std::string* f) {
      for (int n = 0; n < 4; ++n) (*f)[random() % 240] = static_cast<char>(random());
    });
    EXPECT_THAT(out, HasSubstr("INIT-FAILED")) << "round " << round;
  }
  // The config lock's word (glibc: the mutex's first int, at offset 240, right after the
  // 240-byte header of layout.h) names a thread that does not exist: not covered by the
  // checksum, it is an error after the lock's patience, not a hang.
  EXPECT_THAT(AttachToDamaged([](std::string* f) {
                const int garbage = 0x1a5a5a5a;
                std::memcpy(f->data() + 240, &garbage, sizeof(garbage));
              }),
              HasSubstr("the shared eal config lock was not released within 10s"));
  // The group is unharmed once the file is back.
  std::string out;
  EXPECT_EQ(Run({"--proc-type=secondary", "-l", "1"}, {"once"}, &out), 0) << out;
  Quit(primary.get());
}

}  // namespace
}  // namespace keel
