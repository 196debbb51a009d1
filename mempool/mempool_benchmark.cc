// keel mempools beside DPDK 22.11's rte_mempool, in one run: get n then put n in a loop
// (DPDK's mempool_perf_autotest with n_get_bulk = n_put_bulk = n), for n = 1, 4, 8 and
// 32, with a per-lcore cache of 256 and without a cache, in ns per object (one get and
// one put), and a table of keel/DPDK ratios at the end.
//
//   bazel run -c opt //mempool:mempool_benchmark
//
// Both EALs run in this process, each with --no-huge and lcore 0 (the main thread is
// lcore 0 of both, so both use their lcore-0 cache); the pools are alike: 16383
// objects of 64 bytes, multi-producer / multi-consumer ring backends.
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "eal/eal.h"
#include "memory/memory.h"
#include "mempool/mempool.h"
#include "tools/bench/figures.h"

namespace {

constexpr unsigned kPoolSize = 16383;
constexpr unsigned kEltSize = 64;

// ns per object by case and runtime.
std::map<std::string, std::map<std::string, double>>& Results() {
  static auto* results = new std::map<std::string, std::map<std::string, double>>;
  return *results;
}

template <unsigned kBulk>
void BM_KeelGetPut(benchmark::State& state) {
  const unsigned cache = static_cast<unsigned>(state.range(0));
  absl::StatusOr<keel::mempool::Mempool*> pool =
      keel::mempool::Create(absl::StrCat("bench", cache, "-", kBulk), kPoolSize, kEltSize, cache, 0,
                            0, keel::memory::kSocketAny);
  if (!pool.ok()) {
    state.SkipWithError(std::string(pool.status().message()).c_str());
    return;
  }
  // A plain pointer, as DPDK's side has (StatusOr's operator* checks on every use).
  keel::mempool::Mempool* p = *pool;
  void* objs[kBulk];
  for (auto _ : state) {
    if (!p->GetBulk(objs, kBulk)) state.SkipWithError("get failed");
    p->PutBulk(objs, kBulk);
  }
  benchmark::DoNotOptimize(objs[0]);
  state.SetItemsProcessed(state.iterations() * kBulk);
  keel::mempool::Free(*pool).IgnoreError();
}

template <unsigned kBulk>
void BM_DpdkGetPut(benchmark::State& state) {
  const unsigned cache = static_cast<unsigned>(state.range(0));
  rte_mempool* pool =
      rte_mempool_create(absl::StrCat("bench", cache, "-", kBulk).c_str(), kPoolSize, kEltSize,
                         cache, 0, nullptr, nullptr, nullptr, nullptr, SOCKET_ID_ANY, 0);
  if (pool == nullptr) {
    state.SkipWithError("rte_mempool_create failed");
    return;
  }
  void* objs[kBulk];
  for (auto _ : state) {
    if (rte_mempool_get_bulk(pool, objs, kBulk) != 0) state.SkipWithError("get failed");
    rte_mempool_put_bulk(pool, objs, kBulk);
  }
  benchmark::DoNotOptimize(objs[0]);
  state.SetItemsProcessed(state.iterations() * kBulk);
  rte_mempool_free(pool);
}

#define KEEL_MEMPOOL_BENCH(bulk)                                             \
  BENCHMARK_TEMPLATE(BM_KeelGetPut, bulk)->Arg(256)->Arg(0)->Repetitions(5); \
  BENCHMARK_TEMPLATE(BM_DpdkGetPut, bulk)->Arg(256)->Arg(0)->Repetitions(5)
KEEL_MEMPOOL_BENCH(1);
KEEL_MEMPOOL_BENCH(4);
KEEL_MEMPOOL_BENCH(8);
KEEL_MEMPOOL_BENCH(32);

// The n of "BM_KeelGetPut<8>".
unsigned BulkOf(const std::string& function_name) {
  const size_t open = function_name.find('<');
  return open == std::string::npos ? 1 : std::stoul(function_name.substr(open + 1));
}

// Collects ns per object from the reports, to print the ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;  // means, medians: not measurements
      const std::string& function = run.run_name.function_name;
      const bool keel = function.rfind("BM_Keel", 0) == 0;
      const unsigned bulk = BulkOf(function);
      const std::string& cache = run.run_name.args;
      const double ns_per_obj = run.GetAdjustedRealTime() / bulk;  // time unit: ns
      // The best of the repetitions: the measure least disturbed by the machine.
      // Keys sort as the table should read: cache first, then the bulk size.
      auto [it, inserted] = Results()[absl::StrFormat("cache %3s, bulk %2u", cache, bulk)].emplace(
          keel ? "keel" : "DPDK", ns_per_obj);
      if (!inserted) it->second = std::min(it->second, ns_per_obj);
    }
  }
};

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// Initializes keel's EAL and DPDK's, each with --no-huge on lcore 0.
bool InitBoth() {
  const std::string pid = std::to_string(getpid());
  std::vector<std::string> keel_args = {
      "bench", "--no-huge", "-m", "256", "-l", "0", "--file-prefix", "mpbench-keel-" + pid};
  std::vector<char*> keel_argv = Argv(keel_args);
  absl::StatusOr<std::vector<std::string>> keel_init =
      keel::eal::Init(static_cast<int>(keel_args.size()), keel_argv.data());
  if (!keel_init.ok()) {
    std::fprintf(stderr, "keel init: %s\n", keel_init.status().ToString().c_str());
    return false;
  }
  std::vector<std::string> dpdk_args = {"bench",
                                        "--no-huge",
                                        "-m",
                                        "256",
                                        "-l",
                                        "0",
                                        "--no-pci",
                                        "--no-telemetry",
                                        "--log-level=error",
                                        "--file-prefix",
                                        "mpbench-dpdk-" + pid};
  std::vector<char*> dpdk_argv = Argv(dpdk_args);
  if (rte_eal_init(static_cast<int>(dpdk_args.size()), dpdk_argv.data()) < 0) {
    std::fprintf(stderr, "rte_eal_init failed\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Keel and DPDK runs alternate at random, so a slow spell of the machine does not fall
  // on one side only (a flag on the command line overrides this).
  std::vector<char*> args(argv, argv + argc);
  char interleave[] = "--benchmark_enable_random_interleaving=true";
  args.insert(args.begin() + 1, interleave);
  argc = static_cast<int>(args.size());
  benchmark::Initialize(&argc, args.data());
  if (!InitBoth()) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  std::printf("\n%-32s %10s %10s %10s\n", "get+put, ns per object", "keel", "DPDK", "keel/DPDK");
  for (const auto& [name, by] : Results()) {
    const double keel = by.count("keel") ? by.at("keel") : 0;
    const double dpdk = by.count("DPDK") ? by.at("DPDK") : 0;
    std::printf("%-32s %10.3f %10.3f %10.3f\n", name.c_str(), keel, dpdk,
                dpdk > 0 ? keel / dpdk : 0.0);
    keel::bench::RecordFigure({"get+put, ns per object", name, "ns", keel, dpdk});
  }
  rte_eal_cleanup();
  return keel::eal::Cleanup().ok() ? 0 : 1;
}
