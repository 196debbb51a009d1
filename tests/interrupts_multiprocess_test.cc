// The interrupt relay across real processes: every test starts interrupts_helper
// processes in a group of its own (--no-huge unless said): a primary on lcore 0 and
// secondaries on lcores of their own. Payloads carry their publisher's count and a
// pattern, so each subscriber reports how many events arrived, how many its mailbox
// dropped, and whether any was damaged or out of order.
#include <signal.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"
#include "tests/subprocess.h"

namespace keel {
namespace {

using ::keel::testing::Ask;
using ::keel::testing::AwaitAnswer;
using ::keel::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The value of `key=` in a helper's answer line, or -1.
int64_t Field(const std::string& line, const std::string& key) {
  for (absl::string_view word : absl::StrSplit(line, ' ')) {
    if (absl::ConsumePrefix(&word, key + "=")) {
      int64_t v;
      if (absl::SimpleAtoi(word, &v)) return v;
    }
  }
  return -1;
}

std::string PidOf(const Subprocess& p) { return absl::StrCat(p.pid()); }

testing::SpawnOptions KillAt(const std::string& point) {
  testing::SpawnOptions options;
  options.env = {"KEEL_KILL_POINT=" + point};
  return options;
}

class RelayTest : public testing::GroupTest {
 protected:
  RelayTest() : GroupTest("tests/interrupts_helper") {}

  virtual std::vector<std::string> MemoryArgs() const { return {"-m", "64", "--no-huge"}; }

  std::unique_ptr<Subprocess> Primary(const testing::SpawnOptions& options = {}) {
    std::vector<std::string> args = {"-l", "0"};
    for (const std::string& a : MemoryArgs()) args.push_back(a);
    return Join(args, {}, options);
  }
  // A secondary on lcore `lcore` (on CPU lcore % 2).
  std::unique_ptr<Subprocess> Secondary(unsigned lcore, const testing::SpawnOptions& options = {}) {
    return Join({"--proc-type", "secondary", "--lcores", absl::StrCat(lcore, "@", lcore % 2)}, {},
                options);
  }
  static void Subscribe(Subprocess* p, const std::string& type) {
    ASSERT_EQ(Ask(p, "subscribe " + type), "SUBSCRIBED " + type) << p->Output();
  }
};

TEST_F(RelayTest, BroadcastAndUnicastArriveWholeAndInOrder) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> a = Secondary(1);
  std::unique_ptr<Subprocess> b = Secondary(2);
  Subscribe(a.get(), "data");
  Subscribe(b.get(), "data");
  Subscribe(primary.get(), "data");
  // Broadcast from the primary, 400 at a time (below a mailbox's 512: nothing drops).
  for (int round = 1; round <= 5; ++round) {
    EXPECT_THAT(Ask(primary.get(), "publish data 400 256"), StartsWith("PUBLISHED ok=400 full=0"));
    for (Subprocess* p : {a.get(), b.get(), primary.get()}) {
      const std::string got = Ask(p, absl::StrCat("await data ", 400 * round));
      EXPECT_EQ(Field(got, "n"), 400 * round) << got;
    }
  }
  // Unicast to a alone, payloads of the largest size.
  EXPECT_THAT(Ask(primary.get(), "publish data 300 480 " + PidOf(*a)),
              StartsWith("PUBLISHED ok=300 full=0"));
  // Secondaries publish too: b to a (unicast), then b to everyone.
  EXPECT_THAT(Ask(b.get(), "publish data 100 64 " + PidOf(*a)), StartsWith("PUBLISHED ok=100"));
  EXPECT_THAT(Ask(b.get(), "publish data 50 16"), StartsWith("PUBLISHED ok=50"));
  const std::string got_a = Ask(a.get(), "await data 2450");
  const std::string got_b = Ask(b.get(), "await data 2050");
  const std::string got_p = Ask(primary.get(), "await data 2050");
  for (const std::string& got : {got_a, got_b, got_p}) {
    EXPECT_EQ(Field(got, "bad"), 0) << got;
    EXPECT_EQ(Field(got, "disorder"), 0) << got;
    EXPECT_EQ(Field(got, "dropped"), 0) << got;
  }
  EXPECT_EQ(Field(got_a, "n"), 2450) << got_a;
  EXPECT_THAT(got_a, HasSubstr(absl::StrCat(primary->pid(), ":2300")));
  EXPECT_THAT(got_a, HasSubstr(absl::StrCat(b->pid(), ":150")));
  EXPECT_EQ(Field(got_b, "n"), 2050) << "b got no unicast meant for a: " << got_b;
  EXPECT_EQ(Field(got_p, "n"), 2050) << got_p;
  // A secondary's unicast to a process that does not subscribe: Publish returned before
  // the relay knew; the relay counts it.
  std::unique_ptr<Subprocess> idle = Secondary(3);
  EXPECT_THAT(Ask(b.get(), "publish data 3 16 " + PidOf(*idle)), StartsWith("PUBLISHED ok=3"));
  const std::string relay = AwaitAnswer(primary.get(), "describe", " undelivered=3 ");
  EXPECT_EQ(Field(relay, "undelivered"), 3) << relay;
  EXPECT_EQ(Field(Ask(b.get(), "received data"), "n"), 2050);
  EXPECT_EQ(Field(Ask(a.get(), "received data"), "n"), 2450);
  Quit(idle.get());
  Quit(a.get());
  Quit(b.get());
  Quit(primary.get());
}

TEST_F(RelayTest, ASubscriberThatNeverReadsCostsThePublisherNothing) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> stopped = Secondary(1);
  std::unique_ptr<Subprocess> reader = Secondary(2);
  Subscribe(stopped.get(), "flood");
  Subscribe(reader.get(), "flood");
  // The subscriber stops reading altogether (its interrupt thread too).
  ASSERT_TRUE(StopProcess(stopped.get()));
  const std::string published = Ask(primary.get(), "publish flood 1000000 64");
  EXPECT_THAT(published, StartsWith("PUBLISHED ok=1000000 full=0 failed=0"));
  std::printf("1M events with one stopped subscriber: %s\n", published.c_str());
  const std::string relay = Ask(primary.get(), "describe");
  // stopped: its mailbox full (512 queued), the rest dropped and counted.
  EXPECT_THAT(relay, HasSubstr(absl::StrCat(stopped->pid(), ":512:999488:flood")));
  stopped->Kill(SIGCONT);
  const std::string got = Ask(stopped.get(), "await flood 512");
  EXPECT_EQ(Field(got, "n"), 512) << got;
  EXPECT_EQ(Field(got, "bad"), 0) << got;
  // The next event shows the gap.
  EXPECT_THAT(Ask(primary.get(), "publish flood 1 64"), StartsWith("PUBLISHED ok=1 "));
  const std::string after = Ask(stopped.get(), "await flood 513");
  EXPECT_EQ(Field(after, "dropped"), 999488) << after;
  EXPECT_EQ(Field(after, "disorder"), 0) << after;
  // The reader lost only what its own pace lost (its mailbox's count), and every event
  // it got is whole: once its mailbox is empty, received + dropped = published.
  const std::string entry = absl::StrCat(" ", reader->pid(), ":0:");
  const std::string described = absl::StrReplaceAll(
      AwaitAnswer(
          primary.get(), "describe",
          [&](const std::string& answer) {
            return absl::StrContains(absl::StrReplaceAll(answer, {{"=", " "}, {",", " "}}), entry);
          }),
      {{"=", " "}, {",", " "}});
  std::string dropped_text = described.substr(described.find(entry) + entry.size());
  dropped_text = dropped_text.substr(0, dropped_text.find(':'));
  int64_t reader_dropped = -1;
  ASSERT_TRUE(absl::SimpleAtoi(dropped_text, &reader_dropped)) << described;
  const std::string read = Ask(reader.get(), "received flood");
  EXPECT_EQ(Field(read, "bad"), 0) << read;
  EXPECT_EQ(Field(read, "disorder"), 0) << read;
  EXPECT_EQ(Field(read, "n") + reader_dropped, 1000001) << read << " / " << described;
  Quit(stopped.get());
  Quit(reader.get());
  Quit(primary.get());
}

TEST_F(RelayTest, AKilledSubscriberIsReclaimedAndThePublisherGoesOn) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> victim = Secondary(1);
  std::unique_ptr<Subprocess> survivor = Secondary(2);
  Subscribe(victim.get(), "data");
  Subscribe(survivor.get(), "data");
  EXPECT_THAT(Ask(primary.get(), "publish data 100 64"), StartsWith("PUBLISHED ok=100"));
  EXPECT_EQ(Field(Ask(victim.get(), "await data 100"), "n"), 100);
  const pid_t victim_pid = victim->pid();
  victim->Kill(SIGKILL);
  victim->Wait();
  // Its connection's end reaches the primary's interrupt thread: the entry goes.
  const std::string relay = AwaitAnswer(primary.get(), "describe", [&](const std::string& answer) {
    return !absl::StrContains(answer, absl::StrCat(victim_pid, ":"));
  });
  EXPECT_THAT(relay, ::testing::Not(HasSubstr(absl::StrCat(victim_pid, ":")))) << relay;
  EXPECT_THAT(relay, HasSubstr(absl::StrCat(survivor->pid(), ":")));
  EXPECT_THAT(Ask(primary.get(), "publish data 100 64"), StartsWith("PUBLISHED ok=100 full=0"));
  const std::string unicast = Ask(primary.get(), absl::StrCat("publish data 1 64 ", victim_pid));
  EXPECT_THAT(unicast, HasSubstr("failed=1")) << unicast;
  EXPECT_THAT(unicast, HasSubstr("NOT_FOUND")) << unicast;
  EXPECT_EQ(Field(Ask(survivor.get(), "await data 200"), "n"), 200);
  // A new process (on the dead one's lcore, maybe its slot) subscribes and receives.
  std::unique_ptr<Subprocess> next = Secondary(1);
  Subscribe(next.get(), "data");
  EXPECT_THAT(Ask(primary.get(), "publish data 10 64"), StartsWith("PUBLISHED ok=10 "));
  const std::string got = Ask(next.get(), "await data 10");
  EXPECT_EQ(Field(got, "n"), 10) << got;
  EXPECT_EQ(Field(got, "dropped"), 0) << got;
  Quit(next.get());
  Quit(survivor.get());
  Quit(primary.get());
}

TEST_F(RelayTest, ALateSubscriberGetsWhatIsPublishedAfterItSubscribed) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> early = Secondary(1);
  Subscribe(early.get(), "news");
  EXPECT_THAT(Ask(primary.get(), "publish news 100 32"), StartsWith("PUBLISHED ok=100"));
  std::unique_ptr<Subprocess> late = Secondary(2);
  Subscribe(late.get(), "news");
  EXPECT_THAT(Ask(primary.get(), "publish news 50 32"), StartsWith("PUBLISHED ok=50"));
  EXPECT_EQ(Field(Ask(early.get(), "await news 150"), "n"), 150);
  const std::string got = Ask(late.get(), "await news 50");
  EXPECT_EQ(Field(got, "n"), 50) << got;
  EXPECT_EQ(Field(got, "dropped"), 0) << "nothing before it subscribed counts as lost: " << got;
  // Unsubscribed, it gets nothing more; the early one goes on.
  EXPECT_EQ(Ask(late.get(), "unsubscribe news"), "UNSUBSCRIBED news");
  EXPECT_THAT(Ask(primary.get(), "publish news 20 32"), StartsWith("PUBLISHED ok=20"));
  EXPECT_EQ(Field(Ask(early.get(), "await news 170"), "n"), 170);
  EXPECT_EQ(Field(Ask(late.get(), "received news"), "n"), 50);
  // The primary no longer pushes to it: its entry lists no type, its mailbox is empty.
  EXPECT_THAT(Ask(primary.get(), "describe") + ",", HasSubstr(absl::StrCat(late->pid(), ":0:0:,")));
  Quit(late.get());
  Quit(early.get());
  Quit(primary.get());
}

TEST_F(RelayTest, ThePrimarysDeathReachesEverySecondary) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> a = Secondary(1);
  std::unique_ptr<Subprocess> b = Secondary(2);
  EXPECT_EQ(Ask(a.get(), "watch-primary"), "WATCHING");
  Subscribe(b.get(), "data");  // b is connected to the relay, a is not
  EXPECT_EQ(Ask(b.get(), "watch-primary"), "WATCHING");
  const pid_t primary_pid = primary->pid();
  primary->Kill(SIGKILL);
  primary->Wait();
  for (Subprocess* p : {a.get(), b.get()}) {
    const std::string seen = AwaitAnswer(p, "primary-exited", "n=1 ");
    EXPECT_EQ(seen, absl::StrCat("PRIMARY-EXITED n=1 pid=", primary_pid));
  }
  // The relay is gone: publishing says so instead of hanging.
  const std::string published = Ask(b.get(), "publish data 1 16");
  EXPECT_THAT(published, HasSubstr("failed=1")) << published;
  EXPECT_THAT(published, HasSubstr("UNAVAILABLE")) << published;
  // A watcher that subscribes after the death hears of it too.
  EXPECT_EQ(Ask(a.get(), "watch-primary"), "WATCHING");
  const std::string late = AwaitAnswer(a.get(), "primary-exited", "n=2 ");
  EXPECT_EQ(late, absl::StrCat("PRIMARY-EXITED n=2 pid=", primary_pid));
  Quit(a.get());
  Quit(b.get());
}

// The primary SIGKILLed, a new one adopting the group: every secondary hears of both,
// rejoins the relay, and events flow both ways again; the adopter's death is news too.
TEST_F(RelayTest, SecondariesRejoinTheRelayOfAnAdoptingPrimary) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> a = Secondary(1);
  std::unique_ptr<Subprocess> b = Secondary(2);
  Subscribe(a.get(), "data");  // a is connected to the relay, b is not
  for (Subprocess* p : {a.get(), b.get()}) {
    EXPECT_EQ(Ask(p, "watch-primary"), "WATCHING");
    EXPECT_EQ(Ask(p, "watch-adoption"), "WATCHING");
  }
  primary->Kill(SIGKILL);
  primary->Wait();
  for (Subprocess* p : {a.get(), b.get()}) AwaitAnswer(p, "primary-exited", "n=1 ");
  // In between, publishing fails fast.
  const std::string orphaned = Ask(a.get(), "publish data 1 16");
  EXPECT_THAT(orphaned, HasSubstr("UNAVAILABLE")) << orphaned;

  std::vector<std::string> args = {"-l", "0", "--adopt"};
  for (const std::string& m : MemoryArgs()) args.push_back(m);
  std::unique_ptr<Subprocess> adopter = Join(args);
  for (Subprocess* p : {a.get(), b.get()}) {
    EXPECT_EQ(AwaitAnswer(p, "primary-adopted", "n=1 "),
              absl::StrCat("PRIMARY-ADOPTED n=1 pid=", adopter->pid()));
  }
  // The adopter to a (its subscription carried over), and b and a to the adopter.
  const std::string sent = Ask(adopter.get(), "publish data 100 64");
  EXPECT_THAT(sent, HasSubstr("ok=100")) << sent;
  const std::string got = AwaitAnswer(a.get(), "await data 100", "n=100 ");
  EXPECT_THAT(got, HasSubstr("dropped=0 bad=0 disorder=0")) << got;
  Subscribe(adopter.get(), "data");
  for (Subprocess* p : {a.get(), b.get()}) {
    const std::string published = Ask(p, "publish data 10 32");
    EXPECT_THAT(published, HasSubstr("ok=10")) << published;
  }
  const std::string at_adopter = AwaitAnswer(adopter.get(), "await data 20", "n=20 ");
  EXPECT_THAT(at_adopter, HasSubstr("bad=0")) << at_adopter;

  const pid_t adopter_pid = adopter->pid();
  adopter->Kill(SIGKILL);
  adopter->Wait();
  for (Subprocess* p : {a.get(), b.get()}) {
    EXPECT_EQ(AwaitAnswer(p, "primary-exited", "n=2 "),
              absl::StrCat("PRIMARY-EXITED n=2 pid=", adopter_pid));
  }
  Quit(a.get());
  Quit(b.get());
}

TEST_F(RelayTest, ARelayedDescriptorReachesEverySubscriber) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::vector<std::unique_ptr<Subprocess>> secondaries;
  for (unsigned lcore = 1; lcore <= 3; ++lcore) {
    secondaries.push_back(Secondary(lcore));
    ASSERT_EQ(Ask(secondaries.back().get(), "subscribe link"), "SUBSCRIBED link");
  }
  // The "link": an eventfd the primary relays; each toggle is one event.
  EXPECT_THAT(Ask(primary.get(), "relay link"), StartsWith("RELAYING fd="));
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(Ask(primary.get(), absl::StrCat("toggle ", i % 2 + 1)), "TOGGLED");
    for (auto& s : secondaries) {
      // The relayed payload is the eventfd's 8 bytes, not the helper's format: "bad".
      const std::string got = Ask(s.get(), absl::StrCat("await link ", i));
      EXPECT_EQ(Field(got, "n"), i) << got;
      EXPECT_EQ(Field(got, "bad"), i) << got;
    }
  }
  for (auto& s : secondaries) Quit(s.get());
  Quit(primary.get());
}

TEST_F(RelayTest, AProcessKilledInsideTheTypeTableLeavesItUsable) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> dying = Secondary(1, KillAt("interrupts.type.before_count"));
  std::unique_ptr<Subprocess> other = Secondary(2);
  // dying writes the name "ghost", dies holding the table's robust lock, before it counts.
  dying->Send("subscribe ghost\n");
  EXPECT_EQ(dying->Wait(), 128 + SIGKILL) << dying->Output();
  Subscribe(other.get(), "alive");
  EXPECT_THAT(Ask(primary.get(), "describe"), HasSubstr("types=1 "));
  EXPECT_THAT(Ask(primary.get(), "publish alive 5 16"), StartsWith("PUBLISHED ok=5"));
  EXPECT_EQ(Field(Ask(other.get(), "await alive 5"), "n"), 5);
  Quit(other.get());
  Quit(primary.get());
}

TEST_F(RelayTest, APrimaryKilledMidPushLeavesAGapNotATornEvent) {
  std::unique_ptr<Subprocess> primary = Primary(KillAt("interrupts.push.before_tail@300"));
  std::unique_ptr<Subprocess> s = Secondary(1);
  Subscribe(s.get(), "data");
  EXPECT_EQ(Ask(s.get(), "watch-primary"), "WATCHING");
  primary->Send("publish data 400 480\n");
  EXPECT_EQ(primary->Wait(), 128 + SIGKILL) << primary->Output();
  const std::string seen = AwaitAnswer(s.get(), "primary-exited", "n=1 ");
  EXPECT_EQ(Field(seen, "n"), 1) << seen;
  const std::string got = Ask(s.get(), "await data 299");
  EXPECT_EQ(Field(got, "n"), 299) << "the 300th push never published: " << got;
  EXPECT_EQ(Field(got, "bad"), 0) << got;
  Quit(s.get());
}

// procinfo shows the relay: its types, and per subscriber its mailbox's depth and drops.
TEST_F(RelayTest, ProcinfoShowsSubscribersDepthsAndDrops) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> stopped = Secondary(1);
  Subscribe(stopped.get(), "link");
  Subscribe(stopped.get(), "data");
  ASSERT_TRUE(StopProcess(stopped.get()));
  EXPECT_THAT(Ask(primary.get(), "publish data 600 64"), StartsWith("PUBLISHED ok=600"));
  std::unique_ptr<Subprocess> text = Subprocess::Start(
      {testing::RunfilePath("tools/procinfo/procinfo"), "--file-prefix", prefix_});
  EXPECT_EQ(text->Wait(), 0) << text->Output();
  EXPECT_THAT(text->Output(),
              HasSubstr(absl::StrCat("interrupt relay: primary ", primary->pid(),
                                     ", event types: link, data; undelivered unicasts: 0")));
  EXPECT_THAT(text->Output(), ::testing::ContainsRegex(absl::StrCat(
                                  stopped->pid(), " +512/512 +600 +88 +[0-9]+ +0 +link,data")))
      << text->Output();
  std::unique_ptr<Subprocess> json = Subprocess::Start(
      {testing::RunfilePath("tools/procinfo/procinfo"), "--file-prefix", prefix_, "--", "--json"});
  EXPECT_EQ(json->Wait(), 0) << json->Output();
  EXPECT_THAT(json->Output(),
              HasSubstr(absl::StrCat("{\"pid\": ", stopped->pid(),
                                     ", \"types\": [\"link\", \"data\"], \"depth\": 512, "
                                     "\"capacity\": 512, \"published\": 600, \"dropped\": 88")));
  stopped->Kill(SIGCONT);
  Quit(stopped.get());
  Quit(primary.get());
}

// The primary killed while it opens a subscriber's mailbox (before the entry is
// published): the subscriber is told, and no entry is left behind.
TEST_F(RelayTest, APrimaryKilledOpeningAMailboxLeavesNoEntry) {
  std::unique_ptr<Subprocess> primary = Primary(KillAt("interrupts.entry.before_state"));
  std::unique_ptr<Subprocess> s = Secondary(1);
  EXPECT_EQ(Ask(s.get(), "watch-primary"), "WATCHING");
  const std::string subscribed = Ask(s.get(), "subscribe data");
  EXPECT_THAT(subscribed, StartsWith("ERROR UNAVAILABLE")) << subscribed;
  EXPECT_EQ(primary->Wait(), 128 + SIGKILL) << primary->Output();
  EXPECT_EQ(Ask(s.get(), "describe"), "RELAY types=1 undelivered=0 subscribers=");
  const std::string seen = AwaitAnswer(s.get(), "primary-exited", "n=1 ");
  EXPECT_EQ(Field(seen, "n"), 1) << seen;
  Quit(s.get());
}

// 32 subscribers on hugepages (the tests above use --no-huge; the relay is the same).
class RelayHugepageTest : public RelayTest {
 protected:
  bool NeedsHugepages() const override { return true; }
  std::vector<std::string> MemoryArgs() const override { return {"-m", "64"}; }
};

TEST_F(RelayHugepageTest, ThirtyTwoSubscribersGetEveryBroadcast) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::vector<std::unique_ptr<Subprocess>> subscribers;
  for (unsigned lcore = 1; lcore <= 32; ++lcore) {
    subscribers.push_back(Secondary(lcore));
    ASSERT_EQ(Ask(subscribers.back().get(), "subscribe all"), "SUBSCRIBED all");
  }
  EXPECT_THAT(Ask(primary.get(), "describe"), HasSubstr(",")) << "32 entries";
  for (int round = 1; round <= 4; ++round) {
    EXPECT_THAT(Ask(primary.get(), "publish all 250 128"), StartsWith("PUBLISHED ok=250 full=0"));
    for (auto& s : subscribers) {
      const std::string got = Ask(s.get(), absl::StrCat("await all ", 250 * round));
      ASSERT_EQ(Field(got, "n"), 250 * round) << got;
    }
  }
  for (auto& s : subscribers) {
    const std::string got = Ask(s.get(), "received all");
    EXPECT_EQ(Field(got, "bad"), 0) << got;
    EXPECT_EQ(Field(got, "disorder"), 0) << got;
    EXPECT_EQ(Field(got, "dropped"), 0) << got;
  }
  for (auto& s : subscribers) Quit(s.get());
  Quit(primary.get());
}

}  // namespace
}  // namespace keel
