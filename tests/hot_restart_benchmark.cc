// The hot-restart benchmark (issue 15; tools/bench/run runs it with the others): how
// long a group is without a primary, measured on the traffic that needs one.
//
// A primary echoes objects from one ring to another; a secondary pings it and times
// the gaps between objects coming back (tests/hot_restart_worker.cc). Then, --rounds
// times each (20 by default):
//   crash:    the primary is SIGKILLed and a new one started with --adopt at once;
//   takeover: a new primary is started with --takeover while the old one runs.
// For each it reports the new primary's start to READY (adoption complete: eal::Init
// returned and the objects were looked up) and the longest gap in the secondary's
// traffic, median and worst of the rounds. DPDK has no equivalent: there, the
// primary's death means restarting every process of the group.
//
//   hot_restart_benchmark [--rounds N] [--no-huge] [--worker PATH]
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "memory/hugepages.h"
#include "tests/group_fixture.h"
#include "tests/subprocess.h"
#include "tools/bench/figures.h"

namespace {

using keel::testing::Subprocess;

constexpr absl::Duration kTimeout = absl::Seconds(20);

struct Bench {
  std::string worker;
  std::string prefix = keel::testing::UniquePrefix();
  bool no_huge = false;

  std::unique_ptr<Subprocess> Start(const std::vector<std::string>& eal, const char* role) {
    std::vector<std::string> argv = {worker, "--file-prefix", prefix, "-m", "64"};
    if (no_huge) argv.push_back("--no-huge");
    argv.insert(argv.end(), eal.begin(), eal.end());
    argv.insert(argv.end(), {"--", role});
    keel::testing::SpawnOptions spawn;
    spawn.env.push_back("KEEL_LOG=Warning");
    return Subprocess::Start(argv, spawn);
  }
};

// The next line of `p` starting with `word`, or exits naming what went wrong.
std::string Await(Subprocess* p, absl::string_view word, const char* who) {
  const absl::Time deadline = absl::Now() + kTimeout;
  while (absl::Now() < deadline) {
    std::optional<std::string> line = p->NextLine(deadline - absl::Now());
    if (!line) break;
    if (absl::StartsWith(*line, word)) return *line;
  }
  std::fprintf(stderr, "hot_restart_benchmark: %s (pid %d) gave no \"%s\"; its output:\n%s\n", who,
               p->pid(), std::string(word).c_str(), p->Output().c_str());
  std::exit(1);
}

// The pinger's longest gap since its last reset, in ms.
double Gap(Subprocess* pinger) {
  pinger->Send("gap\n");
  const std::string line = Await(pinger, "GAP", "the pinger");
  const size_t at = line.find("max_ns=");
  uint64_t ns = 0;
  if (at == std::string::npos ||
      !absl::SimpleAtoi(line.substr(at + 7, line.find(' ', at) - at - 7), &ns)) {
    std::fprintf(stderr, "hot_restart_benchmark: unreadable \"%s\"\n", line.c_str());
    std::exit(1);
  }
  return static_cast<double>(ns) / 1e6;
}

struct Series {
  std::vector<double> values;
  double Median() const {
    std::vector<double> v = values;
    std::sort(v.begin(), v.end());
    return v.empty()      ? 0
           : v.size() % 2 ? v[v.size() / 2]
                          : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  double Worst() const {
    return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
  }
};

}  // namespace

int main(int argc, char** argv) {
  Bench bench;
  bench.worker = keel::testing::BesideThisProgram("hot_restart_worker");
  int rounds = 20;
  bool huge_chosen = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rounds" && i + 1 < argc && absl::SimpleAtoi(argv[i + 1], &rounds) && rounds > 0) {
      ++i;
    } else if (arg == "--no-huge") {
      bench.no_huge = huge_chosen = true;
    } else if (arg == "--worker" && i + 1 < argc) {
      bench.worker = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: hot_restart_benchmark [--rounds N (> 0)] [--no-huge] "
                   "[--worker PATH]\n");
      return 2;
    }
  }
  if (!huge_chosen) bench.no_huge = keel::memory::AvailableHugepages(2 << 20) < 64;

  std::unique_ptr<Subprocess> primary = bench.Start({"--lcores", "0@0"}, "echo");
  Await(primary.get(), "READY", "the first primary");
  std::unique_ptr<Subprocess> pinger =
      bench.Start({"--proc-type", "secondary", "--lcores", "1@1"}, "ping");
  Await(pinger.get(), "READY", "the pinger");
  absl::SleepFor(absl::Milliseconds(100));

  Series crash_start, crash_gap, takeover_start, takeover_gap;
  for (int round = 0; round < rounds; ++round) {
    pinger->Send("reset\n");
    Await(pinger.get(), "RESET", "the pinger");
    absl::SleepFor(absl::Milliseconds(20));
    primary->Kill(SIGKILL);
    primary->Wait();
    const absl::Time started = absl::Now();
    primary = bench.Start({"--lcores", "0@0", "--adopt"}, "echo");
    Await(primary.get(), "READY", "an adopting primary");
    crash_start.values.push_back(absl::ToDoubleMilliseconds(absl::Now() - started));
    absl::SleepFor(absl::Milliseconds(30));
    crash_gap.values.push_back(Gap(pinger.get()));
  }
  for (int round = 0; round < rounds; ++round) {
    pinger->Send("reset\n");
    Await(pinger.get(), "RESET", "the pinger");
    absl::SleepFor(absl::Milliseconds(20));
    const absl::Time started = absl::Now();
    std::unique_ptr<Subprocess> next = bench.Start({"--lcores", "0@0", "--takeover"}, "echo");
    Await(next.get(), "READY", "a primary taking over");
    takeover_start.values.push_back(absl::ToDoubleMilliseconds(absl::Now() - started));
    if (primary->Wait() != 0) {
      std::fprintf(stderr, "hot_restart_benchmark: the old primary did not hand over:\n%s\n",
                   primary->Output().c_str());
      return 1;
    }
    primary = std::move(next);
    absl::SleepFor(absl::Milliseconds(30));
    takeover_gap.values.push_back(Gap(pinger.get()));
  }
  pinger->Send("quit\n");
  pinger->Wait();
  primary->CloseStdin();
  const int last = primary->Wait();

  std::printf("hot restart, %d rounds each (%s): median / worst, ms\n", rounds,
              bench.no_huge ? "--no-huge" : "hugepages");
  const struct {
    const char* name;
    const Series& series;
  } rows[] = {
      {"crash: new primary start to adopted", crash_start},
      {"crash: longest traffic gap (kill to adopted)", crash_gap},
      {"takeover: new primary start to adopted", takeover_start},
      {"takeover: longest traffic gap", takeover_gap},
  };
  for (const auto& row : rows) {
    std::printf("  %-46s %8.2f / %8.2f\n", row.name, row.series.Median(), row.series.Worst());
    keel::bench::RecordFigure({"hot restart, ms (DPDK: a full restart)",
                               absl::StrCat(row.name, ", median"), "ms", row.series.Median(), 0});
    keel::bench::RecordFigure({"hot restart, ms (DPDK: a full restart)",
                               absl::StrCat(row.name, ", worst"), "ms", row.series.Worst(), 0});
  }
  return last == 0 ? 0 : 1;
}
