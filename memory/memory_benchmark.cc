// Init and attach times of keel beside DPDK 22.11, with the same options, in one run.
//
//   tools/setup --hugepages 1100 && bazel run -c opt //memory:memory_benchmark
//
// EAL init happens once per process, so every measurement runs in a child process
// (this binary again, with --child): the child times its own init call (keel::eal::Init
// or rte_eal_init) and prints it; the benchmark reports the children's times. One
// untimed warm-up child runs first (the first touch of fresh hugepages is slow).
#include <rte_eal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "eal/eal.h"
#include "memory/memory.h"
#include "tests/subprocess.h"
#include "tools/bench/figures.h"

namespace {

using keel::testing::Subprocess;

// --- The child side -------------------------------------------------------------------

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// argv: --child keel|dpdk hold|once EAL-ARGS...
int Child(int argc, char** argv) {
  const std::string runtime = argv[2];
  const bool hold = std::strcmp(argv[3], "hold") == 0;
  std::vector<std::string> args = {"bench"};
  for (int i = 4; i < argc; ++i) args.push_back(argv[i]);
  std::vector<char*> eal_argv = Argv(args);
  const auto start = std::chrono::steady_clock::now();
  if (runtime == "keel") {
    absl::StatusOr<std::vector<std::string>> r =
        keel::eal::Init(static_cast<int>(args.size()), eal_argv.data());
    if (!r.ok()) {
      std::printf("error %s\n", r.status().ToString().c_str());
      return 1;
    }
  } else if (rte_eal_init(static_cast<int>(args.size()), eal_argv.data()) < 0) {
    std::printf("error rte_eal_init failed\n");
    return 1;
  }
  const double ns = std::chrono::duration<double, std::nano>(
                        std::chrono::steady_clock::now() - start).count();
  std::printf("init_ns %.0f\n", ns);
  std::fflush(stdout);
  if (hold) {  // stay (a primary for secondaries to attach to) until stdin closes
    char buf[16];
    while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
    }
  }
  if (runtime == "keel") {
    keel::eal::Cleanup().IgnoreError();
  } else {
    rte_eal_cleanup();
  }
  return 0;
}

// --- The benchmark side ---------------------------------------------------------------

const std::vector<std::string> kDpdkQuiet = {"--no-pci", "--no-telemetry", "--log-level=error"};

std::map<std::string, std::vector<double>>& Samples() {
  static auto* samples = new std::map<std::string, std::vector<double>>;
  return *samples;
}

std::unique_ptr<Subprocess> StartChild(const std::string& runtime, const std::string& mode,
                                       const std::vector<std::string>& eal_args) {
  std::vector<std::string> argv = {"/proc/self/exe", "--child", runtime, mode};
  argv.insert(argv.end(), eal_args.begin(), eal_args.end());
  if (runtime == "dpdk") argv.insert(argv.end(), kDpdkQuiet.begin(), kDpdkQuiet.end());
  return Subprocess::Start(argv);
}

// Runs one child to completion and returns its init time in seconds (< 0 on failure).
double TimeChild(const std::string& runtime, const std::vector<std::string>& eal_args,
                 std::string* error) {
  std::unique_ptr<Subprocess> child = StartChild(runtime, "once", eal_args);
  child->Wait();
  const std::string out = child->Output();
  const size_t at = out.find("init_ns ");
  double ns = 0;
  if (at == std::string::npos ||
      !absl::SimpleAtod(out.substr(at + 8, out.find('\n', at) - at - 8), &ns)) {
    *error = out;
    return -1;
  }
  return ns / 1e9;
}

std::string PrefixFor(const std::string& runtime, const std::string& name) {
  return absl::StrCat("bench-", runtime, "-", name, "-", getpid());
}

void RemoveRuntimeDirs(const std::string& prefix) {
  std::error_code ec;
  std::filesystem::remove_all("/var/run/dpdk/" + prefix, ec);
  std::filesystem::remove_all("/var/run/keel/" + prefix, ec);
}

// Times primary init with `eal_args` (plus a prefix of its own).
void PrimaryInit(benchmark::State& state, const std::string& runtime, const std::string& name,
                 std::vector<std::string> eal_args) {
  const std::string prefix = PrefixFor(runtime, name);
  eal_args.insert(eal_args.end(), {"-l", "0", "--file-prefix", prefix});
  std::string error;
  TimeChild(runtime, eal_args, &error);  // warm-up
  for (auto _ : state) {
    const double seconds = TimeChild(runtime, eal_args, &error);
    if (seconds < 0) {
      state.SkipWithError(error.c_str());
      break;
    }
    state.SetIterationTime(seconds);
    Samples()[absl::StrCat(runtime, "/", name)].push_back(seconds);
  }
  RemoveRuntimeDirs(prefix);
}

// Times a secondary attaching to a live primary started with `primary_args`.
void SecondaryAttach(benchmark::State& state, const std::string& runtime,
                     std::vector<std::string> primary_args) {
  const std::string prefix = PrefixFor(runtime, "secondary");
  primary_args.insert(primary_args.end(), {"-l", "0", "--file-prefix", prefix});
  std::unique_ptr<Subprocess> primary = StartChild(runtime, "hold", primary_args);
  if (!primary->WaitForOutput("init_ns", absl::Seconds(30))) {
    state.SkipWithError(primary->Output().c_str());
    return;
  }
  const std::vector<std::string> args = {"--proc-type=secondary", "-l", "1", "--file-prefix",
                                         prefix};
  std::string error;
  TimeChild(runtime, args, &error);  // warm-up
  for (auto _ : state) {
    const double seconds = TimeChild(runtime, args, &error);
    if (seconds < 0) {
      state.SkipWithError(error.c_str());
      break;
    }
    state.SetIterationTime(seconds);
    Samples()[absl::StrCat(runtime, "/secondary")].push_back(seconds);
  }
  primary->CloseStdin();
  primary->Wait();
  RemoveRuntimeDirs(prefix);
}

void BM_KeelPrimaryInitHugepages(benchmark::State& state) {
  PrimaryInit(state, "keel", "hugepages", {"-m", "1024"});
}
void BM_DpdkPrimaryInitHugepages(benchmark::State& state) {
  PrimaryInit(state, "dpdk", "hugepages", {"-m", "1024"});
}
void BM_KeelPrimaryInitNoHuge(benchmark::State& state) {
  PrimaryInit(state, "keel", "nohuge", {"--no-huge", "-m", "1024"});
}
void BM_DpdkPrimaryInitNoHuge(benchmark::State& state) {
  PrimaryInit(state, "dpdk", "nohuge", {"--no-huge", "-m", "1024"});
}
// --prefault touches every page at init, as DPDK's preallocated -m does: the like-for-
// like comparison with DPDK's rows above.
void BM_KeelPrimaryInitHugepagesPrefault(benchmark::State& state) {
  PrimaryInit(state, "keel", "hugepages-prefault", {"-m", "1024", "--prefault"});
}
void BM_KeelPrimaryInitNoHugePrefault(benchmark::State& state) {
  PrimaryInit(state, "keel", "nohuge-prefault", {"--no-huge", "-m", "1024", "--prefault"});
}
void BM_KeelSecondaryAttach(benchmark::State& state) {
  SecondaryAttach(state, "keel", {"-m", "1024"});
}
void BM_DpdkSecondaryAttach(benchmark::State& state) {
  SecondaryAttach(state, "dpdk", {"-m", "1024"});
}

constexpr int kIterations = 15;
BENCHMARK(BM_KeelPrimaryInitHugepages)->UseManualTime()->Iterations(kIterations)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DpdkPrimaryInitHugepages)->UseManualTime()->Iterations(kIterations)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_KeelPrimaryInitNoHuge)->UseManualTime()->Iterations(kIterations)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DpdkPrimaryInitNoHuge)->UseManualTime()->Iterations(kIterations)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_KeelPrimaryInitHugepagesPrefault)->UseManualTime()->Iterations(kIterations)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_KeelPrimaryInitNoHugePrefault)->UseManualTime()->Iterations(kIterations)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_KeelSecondaryAttach)->UseManualTime()->Iterations(kIterations)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DpdkSecondaryAttach)->UseManualTime()->Iterations(kIterations)->Unit(benchmark::kMillisecond);

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void PrintRatios() {
  struct Row {
    const char* label;
    const char* keel;
    const char* dpdk;
  };
  const Row rows[] = {
      {"primary -m 1024", "hugepages", "hugepages"},
      {"primary -m 1024 --prefault", "hugepages-prefault", "hugepages"},
      {"primary --no-huge -m 1024", "nohuge", "nohuge"},
      {"primary --no-huge --prefault", "nohuge-prefault", "nohuge"},
      {"secondary attach", "secondary", "secondary"},
  };
  std::printf("\n%-30s %10s %12s %12s\n", "median init", "keel ms", "DPDK ms", "keel/DPDK");
  for (const Row& row : rows) {
    const double keel = Median(Samples()[absl::StrCat("keel/", row.keel)]);
    const double dpdk = Median(Samples()[absl::StrCat("dpdk/", row.dpdk)]);
    std::printf("%-30s %10.2f %12.2f %12.4f\n", row.label, keel * 1e3, dpdk * 1e3,
                dpdk > 0 ? keel / dpdk : 0.0);
    keel::bench::RecordFigure({"median init", row.label, "ms", keel * 1e3, dpdk * 1e3});
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::strcmp(argv[1], "--child") == 0) return Child(argc, argv);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  PrintRatios();
  return 0;
}
