// End to end: DPDK's other two multi-process samples on keel, symmetric_mp and
// client_server_mp (mp_server, mp_client), over generator ports (examples/common/port.h):
// the primary's Wire generates a known number of packets and checks every one that
// comes back, so each test accounts for every packet: returned, or dropped with its
// reason (missed: an RX ring was full; rx_drop: a client's ring was full; tx_drop: a
// TX ring was full), or held by a process that was killed.
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

// The numbers of the last line of `output` that starts with `head`, by key ("key=N").
std::map<std::string, int64_t> LastFields(const std::string& output, const std::string& head) {
  std::map<std::string, int64_t> fields;
  const size_t at = output.rfind(head);
  if (at == std::string::npos) return fields;
  const std::string line = output.substr(at, output.find('\n', at) - at);
  for (absl::string_view word : absl::StrSplit(line, ' ')) {
    std::vector<std::string> kv = absl::StrSplit(word, '=');
    int64_t v;
    if (kv.size() == 2 && absl::SimpleAtoi(kv[1], &v)) fields[kv[0]] = v;
  }
  return fields;
}

// The counts of "Port P: RX - a, TX - b, Drop - c" after the last "Exiting" of a
// symmetric_mp process.
struct PortCounts {
  int64_t rx = 0, tx = 0, drop = 0;
};
std::map<int, PortCounts> FinalCounts(const std::string& output) {
  std::map<int, PortCounts> counts;
  const size_t at = output.rfind("Exiting on signal");
  if (at == std::string::npos) return counts;
  for (absl::string_view line : absl::StrSplit(output.substr(at), '\n')) {
    int port;
    PortCounts c;
    if (std::sscanf(std::string(line).c_str(), "Port %d: RX - %ld, TX - %ld, Drop - %ld", &port,
                    &c.rx, &c.tx, &c.drop) == 4) {
      counts[port] = c;
    }
  }
  return counts;
}

// "Generator port P: generated g, missed m, returned r, bad b" of the primary.
struct WireCounts {
  int64_t generated = 0, missed = 0, returned = 0, bad = 0, rx_queued = 0, tx_queued = 0,
          duplicates = 0;
  std::string from;  // " 1:N": where the returned packets came in
};
std::map<int, WireCounts> GeneratorCounts(const std::string& output) {
  std::map<int, WireCounts> counts;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    int port;
    WireCounts c;
    int consumed = 0;
    const std::string text(line);
    if (std::sscanf(text.c_str(),
                    "Generator port %d: generated %ld, missed %ld, returned %ld, bad %ld, in RX "
                    "rings %ld, in TX rings %ld, duplicates %ld, from%n",
                    &port, &c.generated, &c.missed, &c.returned, &c.bad, &c.rx_queued, &c.tx_queued,
                    &c.duplicates, &consumed) == 8 &&
        consumed > 0) {
      c.from = text.substr(consumed);
      counts[port] = c;
    }
  }
  return counts;
}

class SamplesTest : public testing::GroupTest {
 protected:
  SamplesTest() : GroupTest("examples/symmetric_mp/symmetric_mp") {}

  std::unique_ptr<Subprocess> Run(const std::string& binary, const std::vector<std::string>& eal,
                                  const std::vector<std::string>& app) {
    std::vector<std::string> argv = {RunfilePath(binary), "--file-prefix", prefix_};
    argv.insert(argv.end(), eal.begin(), eal.end());
    argv.push_back("--");
    argv.insert(argv.end(), app.begin(), app.end());
    std::unique_ptr<Subprocess> p = Subprocess::Start(argv);
    EXPECT_NE(p, nullptr);
    return p;
  }

  // Client `id` of the group on lcore `lcore` (on `cpu`), once it handles packets.
  std::unique_ptr<Subprocess> Client(int id, int lcore, int cpu) {
    std::unique_ptr<Subprocess> c =
        Run("examples/client_server_mp/mp_client",
            {"--proc-type=secondary", "--lcores", absl::StrCat(lcore, "@", cpu)},
            {"-n", absl::StrCat(id)});
    EXPECT_TRUE(c->WaitForOutput("handling packets", testing::kTimeout)) << c->Output();
    return c;
  }

  static void Stop(Subprocess* p) {
    p->Kill(SIGINT);
    EXPECT_EQ(p->Wait(), 0) << p->Output();
  }

  // Waits until the server's TOTALS line satisfies `done`; returns its fields.
  static std::map<std::string, int64_t> AwaitTotals(
      Subprocess* server, const std::function<bool(std::map<std::string, int64_t>&)>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::map<std::string, int64_t> t;
    do {
      server->WaitForOutput("\x01", absl::Milliseconds(50));  // read what there is
      t = LastFields(server->Output(), "TOTALS ");
      if (!t.empty() && done(t)) return t;
    } while (absl::Now() < deadline);
    return t;
  }

  // Waits until the server's TOTALS stop changing (three fresh screens alike: every
  // process idle, every count final) and satisfy `done`; returns them.
  static std::map<std::string, int64_t> AwaitFinalTotals(
      Subprocess* server, const std::function<bool(std::map<std::string, int64_t>&)>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::map<std::string, int64_t> t, last;
    size_t screens = 0;
    int alike = 0;
    do {
      server->WaitForOutput("\x01", absl::Milliseconds(50));
      const std::string out = server->Output();
      size_t n = 0;
      for (size_t at = out.find("TOTALS "); at != std::string::npos;
           at = out.find("TOTALS ", at + 1))
        ++n;
      if (n == screens) continue;  // no fresh screen yet
      screens = n;
      t = LastFields(out, "TOTALS ");
      alike = t == last ? alike + 1 : 0;
      last = t;
      if (alike >= 2 && done(t)) return t;
    } while (absl::Now() < deadline);
    return t;
  }
};

constexpr char kServer[] = "examples/client_server_mp/mp_server";

TEST_F(SamplesTest, ClientServerAccountsForEveryPacket) {
  std::unique_ptr<Subprocess> server =
      Run(kServer, {"-l", "0-1", "-m", "64", "--no-huge"},
          {"-p", "3", "-n", "2", "--ports", "generator", "--packets", "10000", "--rate", "20000",
           "--flows", "64", "--stats-ms", "100", "--link-down"});
  ASSERT_TRUE(server->WaitForOutput("stats every", testing::kTimeout)) << server->Output();
  std::unique_ptr<Subprocess> c0 = Client(0, 2, 1);
  std::unique_ptr<Subprocess> c1 = Client(1, 3, 0);
  server->Kill(SIGUSR1);  // links up: the traffic starts now the clients run
  // All generated (10000 per port), and every packet the clients took is back.
  auto t = AwaitTotals(server.get(), [](auto& t) {
    return t["generated"] == 20000 && t["generated"] == t["missed"] + t["port_rx"] &&
           t["port_rx"] == t["client_rx"] + t["rx_drop"] &&
           t["client_rx"] == t["tx"] + t["tx_drop"] && t["tx"] == t["returned"] + t["bad"];
  });
  ASSERT_EQ(t["generated"], 20000) << server->Output();
  EXPECT_EQ(t["generated"], t["missed"] + t["port_rx"]);
  EXPECT_EQ(t["port_rx"], t["client_rx"] + t["rx_drop"]);
  EXPECT_EQ(t["client_rx"], t["tx"] + t["tx_drop"]);
  EXPECT_EQ(t["tx"], t["returned"]);
  EXPECT_EQ(t["bad"], 0);
  EXPECT_EQ(t["duplicates"], 0);
  EXPECT_EQ(t["unpaired"], 0);
  // Forwarded (how many depends on how soon the clients run: the rest are counted drops),
  // by both clients (round robin).
  EXPECT_GT(t["returned"], 0) << server->Output();
  EXPECT_THAT(server->Output(), ::testing::ContainsRegex("Client  0 - rx: +[1-9]"));
  EXPECT_THAT(server->Output(), ::testing::ContainsRegex("Client  1 - rx: +[1-9]"));
  Stop(c0.get());
  Stop(c1.get());
  Stop(server.get());
  EXPECT_THAT(server->Output(), HasSubstr("mp_server: exiting"));
}

TEST_F(SamplesTest, AClientKilledMidStreamAndRestartedResumes) {
  std::unique_ptr<Subprocess> server =
      Run(kServer, {"-l", "0-1", "-m", "64", "--no-huge"},
          {"-p", "3", "-n", "2", "--ports", "generator", "--packets", "100000", "--rate", "20000",
           "--dist", "flow", "--stats-ms", "100", "--link-down"});
  ASSERT_TRUE(server->WaitForOutput("stats every", testing::kTimeout)) << server->Output();
  std::unique_ptr<Subprocess> c0 = Client(0, 2, 1);
  std::unique_ptr<Subprocess> c1 = Client(1, 3, 0);
  server->Kill(SIGUSR1);  // links up
  auto before = AwaitTotals(server.get(), [](auto& t) { return t["returned"] > 5000; });
  ASSERT_GT(before["returned"], 5000) << server->Output();
  c0->Kill(SIGKILL);
  c0->Wait();
  // While it is away its ring fills and the server drops for it, and goes on.
  const int64_t drops_at_kill = before["rx_drop"];
  auto away =
      AwaitTotals(server.get(), [&](auto& t) { return t["rx_drop"] > drops_at_kill + 1000; });
  EXPECT_GT(away["rx_drop"], drops_at_kill + 1000) << server->Output();
  std::unique_ptr<Subprocess> again = Client(0, 2, 1);
  // A client killed between its Tx and its count leaves packets returned but not counted
  // as tx; what it held (a burst, a TX buffer per port) is lost.
  auto t = AwaitFinalTotals(server.get(), [](auto& t) {
    return t["generated"] == 200000 && t["generated"] == t["missed"] + t["port_rx"] &&
           t["port_rx"] == t["client_rx"] + t["rx_drop"] && t["returned"] + t["bad"] >= t["tx"] &&
           t["client_rx"] - t["tx_drop"] - t["returned"] <= 96;
  });
  ASSERT_EQ(t["generated"], 200000) << server->Output();
  EXPECT_GT(t["returned"], away["returned"]) << "the restarted client forwards again";
  EXPECT_EQ(t["generated"], t["missed"] + t["port_rx"]);
  EXPECT_EQ(t["port_rx"], t["client_rx"] + t["rx_drop"]);
  // tx is the clients' own count: the killed one's last send may be uncounted (a kill
  // between its TX and its count, or inside its TX: the restarted client's first TX
  // publishes the slots the dead one had written), never the other way round.
  EXPECT_GE(t["returned"], t["tx"]) << server->Output();
  EXPECT_LE(t["returned"] - t["tx"], 32) << server->Output();
  EXPECT_EQ(t["bad"], 0);
  EXPECT_EQ(t["duplicates"], 0) << server->Output();
  EXPECT_EQ(t["unpaired"], 0);
  const int64_t lost = t["client_rx"] - t["tx_drop"] - t["returned"];
  EXPECT_GE(lost, 0) << server->Output();
  EXPECT_LE(lost, 32 + 2 * 32) << server->Output();
  EXPECT_THAT(server->Output(), ::testing::ContainsRegex("Client  0 - rx: +[1-9]"));
  Stop(again.get());
  Stop(c1.get());
  Stop(server.get());
}

// Hot restart: the server (the primary) SIGKILLed in the middle of the traffic, a new
// server adopting the group; the clients never stop, the traffic resumes, and every
// packet is accounted for but those the dead server held.
TEST_F(SamplesTest, AServerKilledMidStreamIsReplacedByOneThatAdoptsTheGroup) {
  const std::vector<std::string> app = {"-p",      "3",         "-n",         "2",
                                        "--ports", "generator", "--packets",  "40000",
                                        "--rate",  "20000",     "--stats-ms", "100"};
  std::vector<std::string> first_app = app;
  first_app.push_back("--link-down");
  std::unique_ptr<Subprocess> dead =
      Run(kServer, {"-l", "0-1", "-m", "64", "--no-huge"}, first_app);
  ASSERT_TRUE(dead->WaitForOutput("stats every", testing::kTimeout)) << dead->Output();
  std::unique_ptr<Subprocess> c0 = Client(0, 2, 1);
  std::unique_ptr<Subprocess> c1 = Client(1, 3, 0);
  dead->Kill(SIGUSR1);  // links up
  auto before = AwaitTotals(dead.get(), [](auto& t) { return t["returned"] > 5000; });
  ASSERT_GT(before["returned"], 5000) << dead->Output();
  dead->Kill(SIGKILL);
  dead->Wait();

  std::unique_ptr<Subprocess> server =
      Run(kServer, {"-l", "0-1", "-m", "64", "--no-huge", "--adopt"}, app);
  ASSERT_TRUE(server->WaitForOutput("stats every", testing::kTimeout)) << server->Output();
  EXPECT_THAT(server->Output(), HasSubstr("mp_server: adopted the group of a dead server"));
  // Every packet generated is returned, or dropped with its reason, or was in the dead
  // server's hands: a burst of its forwarding loop, one of its generator's, one of its
  // generator's drain (32 each).
  auto t = AwaitFinalTotals(server.get(), [](auto& t) {
    return t["generated"] == 80000 && t["rx_queued"] == 0 && t["tx_queued"] == 0;
  });
  ASSERT_EQ(t["generated"], 80000) << server->Output();
  EXPECT_GT(t["returned"], before["returned"]) << "the traffic resumed";
  EXPECT_EQ(t["bad"], 0);
  EXPECT_EQ(t["duplicates"], 0) << server->Output();
  EXPECT_EQ(t["unpaired"], 0);
  EXPECT_EQ(t["client_rx"], t["tx"] + t["tx_drop"]) << "the clients lost nothing";
  const int64_t lost =
      t["generated"] - t["missed"] - t["rx_drop"] - t["tx_drop"] - t["returned"] - t["bad"];
  EXPECT_GE(lost, 0) << server->Output();
  EXPECT_LE(lost, 3 * 32) << server->Output();
  std::printf("server killed after %ld returned; lost with it %ld of 80000 packets\n",
              static_cast<long>(before["returned"]), static_cast<long>(lost));
  Stop(c0.get());
  Stop(c1.get());
  Stop(server.get());
}

TEST_F(SamplesTest, SymmetricMpAccountsForEveryPacket) {
  std::unique_ptr<Subprocess> p0 =
      Run("examples/symmetric_mp/symmetric_mp", {"-l", "0", "-m", "64", "--no-huge"},
          {"-p", "3", "--num-procs", "2", "--proc-id", "0", "--ports", "generator", "--packets",
           "20000", "--rate", "40000", "--stats-ms", "100", "--link-down"});
  ASSERT_TRUE(p0->WaitForOutput("using queue 0", testing::kTimeout)) << p0->Output();
  std::unique_ptr<Subprocess> p1 =
      Run("examples/symmetric_mp/symmetric_mp", {"--proc-type=secondary", "--lcores", "1@1"},
          {"-p", "3", "--num-procs", "2", "--proc-id", "1", "--stats-ms", "100"});
  ASSERT_TRUE(p1->WaitForOutput("using queue 1", testing::kTimeout)) << p1->Output();
  p0->Kill(SIGUSR1);  // links up
  // Until the wire made all (20000 per port at 40000 per second); the primary's exit
  // counts then include what is left in the rings.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    p0->WaitForOutput("\x01", absl::Milliseconds(100));
    const std::map<int, WireCounts> w = GeneratorCounts(p0->Output());
    if (w.size() == 2 && w.at(0).generated == 20000 && w.at(1).generated == 20000) break;
  }
  Stop(p1.get());
  Stop(p0.get());
  const std::map<int, PortCounts> a = FinalCounts(p0->Output());
  const std::map<int, PortCounts> b = FinalCounts(p1->Output());
  const std::map<int, WireCounts> wire = GeneratorCounts(p0->Output());
  ASSERT_EQ(a.size(), 2u) << p0->Output();
  ASSERT_EQ(b.size(), 2u) << p1->Output();
  ASSERT_EQ(wire.size(), 2u) << p0->Output();
  for (int port : {0, 1}) {
    const int other = port ^ 1;
    const WireCounts& w = wire.at(port);
    EXPECT_EQ(w.generated, 20000);
    // Generated on `port`: missed, received by one of the processes, or still queued.
    EXPECT_EQ(w.generated, w.missed + a.at(port).rx + b.at(port).rx + w.rx_queued) << p0->Output();
    // Received on `port`: sent on `other`, or dropped there.
    EXPECT_EQ(a.at(port).rx + b.at(port).rx,
              a.at(other).tx + b.at(other).tx + a.at(other).drop + b.at(other).drop);
    // Sent on `port`: back at the wire, whole, or still queued.
    EXPECT_EQ(w.returned + w.tx_queued, a.at(port).tx + b.at(port).tx);
    EXPECT_EQ(w.bad, 0);
    EXPECT_EQ(w.duplicates, 0);
    // Everything sent on `port` came in on its pair.
    EXPECT_EQ(w.from, absl::StrCat(" ", other, ":", w.returned)) << p0->Output();
    // RSS spread the flows over both processes' queues.
    EXPECT_GT(a.at(port).rx, 0);
    EXPECT_GT(b.at(port).rx, 0);
  }
}

TEST_F(SamplesTest, SymmetricMpGoesOnWhenOneProcessIsKilled) {
  const std::vector<std::string> app = {"-p", "3", "--num-procs", "3", "--stats-ms", "100"};
  std::vector<std::string> primary_app = app;
  for (const char* a :
       {"--proc-id", "0", "--ports", "generator", "--rate", "30000", "--link-down"}) {
    primary_app.push_back(a);
  }
  std::unique_ptr<Subprocess> p0 =
      Run("examples/symmetric_mp/symmetric_mp", {"-l", "0", "-m", "64", "--no-huge"}, primary_app);
  ASSERT_TRUE(p0->WaitForOutput("using queue 0", testing::kTimeout)) << p0->Output();
  std::vector<std::unique_ptr<Subprocess>> others;
  for (int id : {1, 2}) {
    std::vector<std::string> mine = app;
    mine.push_back("--proc-id");
    mine.push_back(absl::StrCat(id));
    others.push_back(Run("examples/symmetric_mp/symmetric_mp",
                         {"--proc-type=secondary", "--lcores", absl::StrCat(id, "@", id % 2)},
                         mine));
    ASSERT_TRUE(others.back()->WaitForOutput(absl::StrCat("using queue ", id), testing::kTimeout))
        << others.back()->Output();
  }
  auto rx_of = [](Subprocess* p) {
    p->WaitForOutput("\x01", absl::Milliseconds(20));
    const std::string out = p->Output();
    const size_t at = out.rfind("Port 0: RX - ");
    return at == std::string::npos ? -1 : std::atoll(out.c_str() + at + 13);
  };
  p0->Kill(SIGUSR1);  // links up
  // Until the process to kill has traffic of its own.
  for (const absl::Time until = absl::Now() + absl::Seconds(20);
       rx_of(others[1].get()) <= 0 && absl::Now() < until;) {
  }
  ASSERT_GT(rx_of(others[1].get()), 0) << others[1]->Output();
  others[1]->Kill(SIGKILL);
  EXPECT_EQ(others[1]->Wait(), 128 + SIGKILL);
  // The others go on: their periodic counts keep growing.
  const int64_t p0_then = rx_of(p0.get()), p1_then = rx_of(others[0].get());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while ((rx_of(p0.get()) <= p0_then || rx_of(others[0].get()) <= p1_then) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_GT(rx_of(p0.get()), p0_then);
  EXPECT_GT(rx_of(others[0].get()), p1_then);
  // The dead process's RX queues fill, and the wire counts what no longer fits.
  while (absl::Now() < deadline) {
    p0->WaitForOutput("\x01", absl::Milliseconds(50));
    const std::map<int, WireCounts> w = GeneratorCounts(p0->Output());
    if (w.size() == 2 && w.at(0).missed > 0 && w.at(1).missed > 0) break;
  }
  Stop(others[0].get());
  Stop(p0.get());
  const std::map<int, WireCounts> wire = GeneratorCounts(p0->Output());
  ASSERT_EQ(wire.size(), 2u) << p0->Output();
  const std::map<int, PortCounts> a = FinalCounts(p0->Output());
  const std::map<int, PortCounts> b = FinalCounts(others[0]->Output());
  for (int port : {0, 1}) {
    EXPECT_EQ(wire.at(port).bad, 0);
    EXPECT_EQ(wire.at(port).duplicates, 0);
    // The dead process's queue filled and missed; the wire got back at least what the
    // survivors sent.
    EXPECT_GT(wire.at(port).missed, 0);
    EXPECT_GE(wire.at(port).returned, a.at(port).tx + b.at(port).tx);
  }
}

TEST_F(SamplesTest, LinkEventsReachEveryProcess) {
  std::unique_ptr<Subprocess> p0 =
      Run("examples/symmetric_mp/symmetric_mp", {"-l", "0", "-m", "64", "--no-huge"},
          {"-p", "3", "--num-procs", "2", "--proc-id", "0"});
  ASSERT_TRUE(p0->WaitForOutput("using queue 0", testing::kTimeout)) << p0->Output();
  std::unique_ptr<Subprocess> p1 =
      Run("examples/symmetric_mp/symmetric_mp", {"--proc-type=secondary", "--lcores", "1@1"},
          {"-p", "3", "--num-procs", "2", "--proc-id", "1"});
  ASSERT_TRUE(p1->WaitForOutput("using queue 1", testing::kTimeout)) << p1->Output();
  p0->Kill(SIGUSR1);
  for (Subprocess* p : {p0.get(), p1.get()}) {
    EXPECT_TRUE(p->WaitForOutput("] Port 0 Link Down", testing::kTimeout)) << p->Output();
    EXPECT_TRUE(p->WaitForOutput("] Port 1 Link Down", testing::kTimeout)) << p->Output();
  }
  p0->Kill(SIGUSR1);
  for (Subprocess* p : {p0.get(), p1.get()}) {
    EXPECT_TRUE(p->WaitForOutput("] Port 0 Link Up", testing::kTimeout)) << p->Output();
    EXPECT_TRUE(p->WaitForOutput("] Port 1 Link Up", testing::kTimeout)) << p->Output();
  }
  Stop(p1.get());
  Stop(p0.get());
}

}  // namespace
}  // namespace keel
