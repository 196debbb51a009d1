// Rings across real processes: every test starts ring_helper processes in a group of
// its own (a unique --file-prefix): a primary (-l 0) and secondaries on lcore ids of
// their own, pinned to CPU 0 or 1 (--lcores N@CPU). Rings live in the group's
// hugepage memory (the sharing tests also run with --no-huge).
//
// Streams: producer processes send sequence-numbered elements, consumer processes
// check each element's fingerprint and that each producer's sequence numbers arrive in
// increasing order, and count every delivery in a tally in shared memory, which the
// primary then checks: every element of every producer delivered exactly once. With
// one consumer, increasing and exactly once means it saw 0, 1, 2, ... of each producer.
#include <signal.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"
#include "tests/subprocess.h"

namespace keel {
namespace {

using ::keel::testing::Ask;
using ::keel::testing::Await;
using ::keel::testing::Subprocess;
using ::keel::testing::kTimeout;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// For a whole stream of elements (a few seconds on 2 cores).
constexpr absl::Duration kStreamTimeout = absl::Seconds(120);

class RingMultiProcessTest : public testing::GroupTest {
 protected:
  RingMultiProcessTest() : GroupTest("tests/ring_helper") {}
  bool NeedsHugepages() const override { return true; }

  std::unique_ptr<Subprocess> Primary(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"-l", "0", "-m", "32"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::unique_ptr<Subprocess> p = Join(args);
    EXPECT_THAT(ready_line_, HasSubstr("type=primary"));
    return p;
  }

  // A secondary owning lcore `lcore`, its main thread pinned to `cpu`.
  std::unique_ptr<Subprocess> Secondary(int lcore, int cpu) {
    std::unique_ptr<Subprocess> p =
        Join({"--proc-type=secondary", "--lcores", absl::StrCat(lcore, "@", cpu)});
    EXPECT_THAT(ready_line_, HasSubstr("type=secondary"));
    return p;
  }

};

// --- Sharing a ring between processes, with hugepages and without ------------------
class RingSharingTest : public RingMultiProcessTest, public ::testing::WithParamInterface<bool> {
 protected:
  bool NeedsHugepages() const override { return !GetParam(); }
  std::vector<std::string> Mode() const {
    return GetParam() ? std::vector<std::string>{"--no-huge"} : std::vector<std::string>{};
  }
};

TEST_P(RingSharingTest, PrimaryCreatesSecondaryLooksUp) {
  std::unique_ptr<Subprocess> primary = Primary(Mode());
  ASSERT_EQ(Ask(primary.get(), "create p2s 1024 mpmc"), "CREATED p2s");
  std::unique_ptr<Subprocess> secondary = Secondary(10, 1);
  EXPECT_EQ(Ask(secondary.get(), "lookup p2s"), "FOUND p2s capacity=1023 elem_size=8 flags=0x0");
  ASSERT_EQ(Ask(primary.get(), "put p2s 11 22 33"), "PUT p2s n=3");
  EXPECT_EQ(Ask(secondary.get(), "count p2s"), "COUNT p2s n=3");
  EXPECT_EQ(Ask(secondary.get(), "get p2s 8"), "GOT p2s 11 22 33");
  // And back the other way.
  ASSERT_EQ(Ask(secondary.get(), "put p2s 44"), "PUT p2s n=1");
  EXPECT_EQ(Ask(primary.get(), "get p2s 8"), "GOT p2s 44");
  EXPECT_EQ(Ask(secondary.get(), "get p2s 8"), "GOT p2s");  // empty
  Quit(secondary.get());
  Quit(primary.get());
}

TEST_P(RingSharingTest, SecondaryCreatesPrimaryLooksUp) {
  std::unique_ptr<Subprocess> primary = Primary(Mode());
  std::unique_ptr<Subprocess> creator = Secondary(10, 1);
  ASSERT_EQ(Ask(creator.get(), "create s2p 100 sp+sc+exact"), "CREATED s2p");
  EXPECT_EQ(Ask(primary.get(), "lookup s2p"), "FOUND s2p capacity=100 elem_size=8 flags=0x7");
  ASSERT_EQ(Ask(creator.get(), "put s2p 5 6 7"), "PUT s2p n=3");
  // The ring belongs to the group, not to its creator: it outlives the creator.
  Quit(creator.get());
  EXPECT_EQ(Ask(primary.get(), "get s2p 2"), "GOT s2p 5 6");
  std::unique_ptr<Subprocess> late = Secondary(11, 1);
  EXPECT_EQ(Ask(late.get(), "lookup s2p"), "FOUND s2p capacity=100 elem_size=8 flags=0x7");
  EXPECT_EQ(Ask(late.get(), "get s2p 8"), "GOT s2p 7");
  Quit(late.get());
  Quit(primary.get());
}

INSTANTIATE_TEST_SUITE_P(HugeAndNoHuge, RingSharingTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "NoHuge" : "Hugepages";
                         });

// --- Names, kinds and element sizes -------------------------------------------------
TEST_F(RingMultiProcessTest, CreateAndLookupErrors) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> secondary = Secondary(10, 1);

  ASSERT_EQ(Ask(primary.get(), "create dup 64 mpmc"), "CREATED dup");
  EXPECT_THAT(Ask(secondary.get(), "create dup 64 sp+sc"),
              StartsWith("ERROR ALREADY_EXISTS: object \"dup\" already exists (a ring)"));
  EXPECT_THAT(Ask(primary.get(), "create dup 128 mpmc"), StartsWith("ERROR ALREADY_EXISTS"));
  // The failed creates changed nothing.
  EXPECT_EQ(Ask(secondary.get(), "lookup dup"), "FOUND dup capacity=63 elem_size=8 flags=0x0");

  EXPECT_EQ(Ask(secondary.get(), "lookup missing"), "ERROR NOT_FOUND: no ring \"missing\"");
  EXPECT_EQ(Ask(primary.get(), "lookup missing"), "ERROR NOT_FOUND: no ring \"missing\"");

  // An object of another kind under that name.
  ASSERT_EQ(Ask(primary.get(), "register widget gadget 1"), "REGISTERED widget");
  EXPECT_EQ(Ask(secondary.get(), "lookup widget"),
            "ERROR FAILED_PRECONDITION: object \"widget\" is a gadget, not a ring");
  EXPECT_THAT(Ask(secondary.get(), "create widget 64 mpmc"),
              StartsWith("ERROR ALREADY_EXISTS: object \"widget\" already exists (a gadget)"));
  // A ring of another layout version (as another build would register it).
  ASSERT_EQ(Ask(primary.get(), "register future ring 999"), "REGISTERED future");
  EXPECT_THAT(Ask(secondary.get(), "lookup future"),
              StartsWith("ERROR FAILED_PRECONDITION: ring \"future\" has layout version 999, "
                         "this process has layout version "));
  // Memzones are not in the object registry: a memzone's name is no ring's.
  ASSERT_EQ(Ask(primary.get(), "memzone zone"), "RESERVED zone");
  EXPECT_EQ(Ask(secondary.get(), "lookup zone"), "ERROR NOT_FOUND: no ring \"zone\"");

  // TypedRing<T>::Lookup checks sizeof(T) against the ring's element size.
  ASSERT_EQ(Ask(primary.get(), "create typed 64 mpmc 12"), "CREATED typed");
  EXPECT_EQ(Ask(secondary.get(), "lookup-typed typed 12"), "FOUND typed");
  EXPECT_EQ(Ask(secondary.get(), "lookup-typed typed 16"),
            "ERROR FAILED_PRECONDITION: ring \"typed\" holds 12-byte elements, not 16-byte ones");
  EXPECT_EQ(Ask(secondary.get(), "lookup-typed dup 8"), "FOUND dup");
  EXPECT_THAT(Ask(secondary.get(), "lookup-typed dup 16"),
              StartsWith("ERROR FAILED_PRECONDITION: ring \"dup\" holds 8-byte elements"));
  EXPECT_THAT(Ask(secondary.get(), "lookup-typed missing 8"), StartsWith("ERROR NOT_FOUND"));

  // Bad arguments from a secondary name the ring and the value.
  EXPECT_EQ(Ask(secondary.get(), "create odd 100 mpmc"),
            "ERROR INVALID_ARGUMENT: ring \"odd\": count 100 is not a power of two (or pass "
            "kExactSize)");
  EXPECT_EQ(Ask(secondary.get(), "lookup odd"), "ERROR NOT_FOUND: no ring \"odd\"");
  Quit(secondary.get());
  Quit(primary.get());
}

TEST_F(RingMultiProcessTest, FreeFromAnotherProcess) {
  std::unique_ptr<Subprocess> primary = Primary();
  std::unique_ptr<Subprocess> user = Secondary(10, 1);
  std::unique_ptr<Subprocess> freer = Secondary(11, 1);
  ASSERT_EQ(Ask(primary.get(), "create gone 256 mpmc"), "CREATED gone");
  ASSERT_EQ(Ask(primary.get(), "put gone 1 2"), "PUT gone n=2");
  ASSERT_THAT(Ask(user.get(), "lookup gone"), StartsWith("FOUND gone"));

  EXPECT_EQ(Ask(freer.get(), "free gone"), "FREED gone");
  EXPECT_EQ(Ask(primary.get(), "lookup gone"), "ERROR NOT_FOUND: no ring \"gone\"");
  EXPECT_EQ(Ask(user.get(), "lookup gone"), "ERROR NOT_FOUND: no ring \"gone\"");
  EXPECT_EQ(Ask(freer.get(), "free gone"), "ERROR NOT_FOUND: no ring \"gone\"");
  // The creator's pointer is stale now: freeing it again is refused, not a double free.
  EXPECT_THAT(Ask(primary.get(), "free-known gone"), StartsWith("ERROR INVALID_ARGUMENT"));

  // The name is free again, for any process.
  ASSERT_EQ(Ask(user.get(), "create gone 64 sp+sc"), "CREATED gone");
  EXPECT_EQ(Ask(primary.get(), "lookup gone"), "FOUND gone capacity=63 elem_size=8 flags=0x3");
  EXPECT_EQ(Ask(primary.get(), "count gone"), "COUNT gone n=0");
  Quit(freer.get());
  Quit(user.get());
  Quit(primary.get());
}

// --- Streams between processes -------------------------------------------------------
struct StreamCase {
  const char* name;
  const char* flags;  // for the helper's create
  int producers;
  int consumers;
  const char* mode;  // bulk or burst
};

void PrintTo(const StreamCase& c, std::ostream* os) { *os << c.name; }

class RingStreamTest : public RingMultiProcessTest,
                       public ::testing::WithParamInterface<StreamCase> {};

// Producer processes and consumer processes, each side's processes on CPUs of their
// own (MP/MC threads must not preempt one another: see ring/ring_stress_test.cc).
TEST_P(RingStreamTest, EveryElementOnceAndInOrder) {
  const StreamCase& c = GetParam();
  constexpr int kPerProducer = 1000000;
  std::unique_ptr<Subprocess> primary = Primary();
  ASSERT_EQ(Ask(primary.get(), absl::StrCat("create stream 256 ", c.flags)), "CREATED stream");
  ASSERT_EQ(Ask(primary.get(), absl::StrCat("tally seen ", c.producers, " ", kPerProducer)),
            "TALLY seen");

  std::vector<std::unique_ptr<Subprocess>> consumers;
  for (int i = 0; i < c.consumers; ++i) {
    consumers.push_back(Secondary(20 + i, i % 2));
    consumers.back()->Send(absl::StrCat("consume stream seen ", c.mode, "\n"));
  }
  std::vector<std::unique_ptr<Subprocess>> producers;
  for (int i = 0; i < c.producers; ++i) {
    producers.push_back(Secondary(10 + i, (i + 1) % 2));
    producers.back()->Send(
        absl::StrCat("produce stream ", i, " 0 ", kPerProducer, " ", c.mode, "\n"));
  }
  for (int i = 0; i < c.producers; ++i) {
    EXPECT_EQ(Await(producers[i].get(), "PRODUCED", kStreamTimeout),
              absl::StrCat("PRODUCED stream id=", i, " next=", kPerProducer));
  }
  uint64_t received = 0;
  for (int i = 0; i < c.consumers; ++i) {
    const std::string line = Await(consumers[i].get(), "CONSUMED", kStreamTimeout);
    EXPECT_THAT(line, HasSubstr(" corrupt=0 out_of_order=0 first=none")) << "consumer " << i;
    uint64_t n = 0;
    const size_t at = line.find(" n=");
    if (at != std::string::npos) {
      EXPECT_TRUE(absl::SimpleAtoi(line.substr(at + 3, line.find(' ', at + 3) - at - 3), &n))
          << line;
    }
    received += n;
  }
  EXPECT_EQ(received, uint64_t{kPerProducer} * c.producers);
  EXPECT_EQ(Ask(primary.get(), "tally-check seen"), "TALLY seen missing=0 duplicated=0 first=none");
  EXPECT_EQ(Ask(primary.get(), "count stream"), "COUNT stream n=0");
  for (auto& p : producers) Quit(p.get());
  for (auto& p : consumers) Quit(p.get());
  Quit(primary.get());
}

INSTANTIATE_TEST_SUITE_P(Modes, RingStreamTest,
                         ::testing::Values(StreamCase{"MpMc", "mpmc", 2, 2, "burst"},
                                           StreamCase{"SpSc", "sp+sc", 1, 1, "bulk"},
                                           StreamCase{"Rts", "prts+crts", 2, 2, "burst"},
                                           StreamCase{"Hts", "phts+chts", 2, 2, "bulk"}),
                         [](const ::testing::TestParamInfo<StreamCase>& info) {
                           return std::string(info.param.name);
                         });

// Two rings, each with its own producer and consumer process; each consumer waits for
// 200000 elements, each producer has been told to send only the first 100000. The
// consumer of ring a is SIGKILLed mid-stream (after 50000 elements), while ring b's
// consumer is mid-stream too (it cannot have more than 100000). Then ring b's producer
// sends the rest, and ring b's consumer receives all 200000, in order. The group goes
// on working: a new process takes the dead one's lcore, finds both rings, and makes a
// new one.
//
// Ring a itself is not expected to recover: a consumer killed between claiming slots
// and publishing them leaves an MC ring's consumer side waiting for it (as in DPDK).
TEST_F(RingMultiProcessTest, KilledConsumerDoesNotStopOtherRings) {
  std::unique_ptr<Subprocess> primary = Primary();
  ASSERT_EQ(Ask(primary.get(), "create a 256 mpmc"), "CREATED a");
  ASSERT_EQ(Ask(primary.get(), "create b 256 mpmc"), "CREATED b");
  ASSERT_EQ(Ask(primary.get(), "tally ta 1 200000"), "TALLY ta");
  ASSERT_EQ(Ask(primary.get(), "tally tb 1 200000"), "TALLY tb");
  std::unique_ptr<Subprocess> consumer_a = Secondary(20, 0);
  std::unique_ptr<Subprocess> consumer_b = Secondary(21, 1);
  std::unique_ptr<Subprocess> producer_a = Secondary(10, 0);
  std::unique_ptr<Subprocess> producer_b = Secondary(11, 1);
  consumer_a->Send("consume a ta burst 50000\n");
  consumer_b->Send("consume b tb burst\n");
  producer_a->Send("produce a 0 0 100000 burst\n");
  producer_b->Send("produce b 0 0 100000 burst\n");

  ASSERT_EQ(Await(consumer_a.get(), "CHECKPOINT", kStreamTimeout), "CHECKPOINT a");
  consumer_a->Kill(SIGKILL);
  EXPECT_EQ(consumer_a->Wait(), 128 + SIGKILL);
  EXPECT_THAT(consumer_a->Output(), ::testing::Not(HasSubstr("CONSUMED")));

  EXPECT_EQ(Await(producer_b.get(), "PRODUCED", kStreamTimeout), "PRODUCED b id=0 next=100000");
  producer_b->Send("produce b 0 100000 100000 burst\n");
  EXPECT_EQ(Await(producer_b.get(), "PRODUCED", kStreamTimeout), "PRODUCED b id=0 next=200000");
  EXPECT_EQ(Await(consumer_b.get(), "CONSUMED", kStreamTimeout),
            "CONSUMED b n=200000 corrupt=0 out_of_order=0 first=none");
  EXPECT_EQ(Ask(primary.get(), "tally-check tb"), "TALLY tb missing=0 duplicated=0 first=none");

  std::unique_ptr<Subprocess> late = Secondary(20, 0);  // the dead consumer's lcore
  EXPECT_EQ(Ask(late.get(), "lookup a"), "FOUND a capacity=255 elem_size=8 flags=0x0");
  EXPECT_EQ(Ask(late.get(), "lookup b"), "FOUND b capacity=255 elem_size=8 flags=0x0");
  ASSERT_EQ(Ask(late.get(), "create after 64 mpmc"), "CREATED after");
  ASSERT_EQ(Ask(late.get(), "put after 7 8 9"), "PUT after n=3");
  EXPECT_EQ(Ask(primary.get(), "get after 8"), "GOT after 7 8 9");

  // Ring a's producer may be waiting for room that will never come.
  producer_a->Kill(SIGKILL);
  producer_a->Wait();
  Quit(late.get());
  Quit(consumer_b.get());
  Quit(producer_b.get());
  Quit(primary.get());
}

// Crash order of a single-thread side (ring/README.md): it stores its head after the
// copy and before its tail. A producer killed between the two (kill point
// ring.enqueue.after_head) leaves slots it wrote but did not publish: the side's next
// producer, another process, publishes them with its own, in order, nothing twice. A
// consumer killed there loses what it read out, and nothing is delivered twice.
TEST_F(RingMultiProcessTest, SingleThreadSideKilledBetweenHeadAndTail) {
  std::unique_ptr<Subprocess> primary = Primary();
  ASSERT_EQ(Ask(primary.get(), "create k 16 sp+sc"), "CREATED k");
  std::unique_ptr<Subprocess> producer = Secondary(10, 0);
  const std::string armed = Ask(producer.get(), "kill-at ring.enqueue.after_head");
  if (armed == "NO-KILL-POINTS") GTEST_SKIP() << "kill points are debug-build only (NDEBUG)";
  ASSERT_EQ(armed, "ARMED ring.enqueue.after_head");
  producer->Send("put k 1 2 3\n");
  EXPECT_EQ(producer->Wait(), 128 + SIGKILL) << producer->Output();
  EXPECT_EQ(Ask(primary.get(), "count k"), "COUNT k n=0");  // written, not published
  EXPECT_EQ(Ask(primary.get(), "get k 8"), "GOT k");

  std::unique_ptr<Subprocess> next = Secondary(11, 1);
  EXPECT_EQ(Ask(next.get(), "put k 4 5"), "PUT k n=2");
  EXPECT_EQ(Ask(primary.get(), "count k"), "COUNT k n=5");

  std::unique_ptr<Subprocess> consumer = Secondary(20, 1);
  ASSERT_EQ(Ask(consumer.get(), "kill-at ring.dequeue.after_head"),
            "ARMED ring.dequeue.after_head");
  consumer->Send("get k 2\n");
  EXPECT_EQ(consumer->Wait(), 128 + SIGKILL) << consumer->Output();
  EXPECT_EQ(Ask(primary.get(), "get k 8"), "GOT k 3 4 5");  // 1 and 2 died with it
  EXPECT_EQ(Ask(next.get(), "put k 6"), "PUT k n=1");
  EXPECT_EQ(Ask(primary.get(), "get k 8"), "GOT k 6");
  EXPECT_EQ(Ask(primary.get(), "count k"), "COUNT k n=0");
  Quit(next.get());
  Quit(primary.get());
}

}  // namespace
}  // namespace keel
