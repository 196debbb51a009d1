// tools/soak/run's program: runs the soak (soak.h) and prints its figures.
//
//   soak [--cycles N] [--seconds S] [--secondaries K] [--primary-kill-every N] [--adopt]
//        [--max-kill-delay-ms M] [--seed X] [--file-prefix P] [--no-huge] [--verbose]
//        [--worker PATH]
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/soak.h"
#include "tests/subprocess.h"

namespace {

int Usage(const std::string& problem) {
  std::fprintf(stderr,
               "soak: %s\nusage: soak [--cycles N] [--seconds S] [--secondaries K (1..63)] "
               "[--primary-kill-every N (0: never)] [--adopt] [--max-kill-delay-ms M] [--seed X] "
               "[--file-prefix P] [--no-huge] [--verbose] [--worker PATH]\n",
               problem.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  keel::soak::Options options;
  options.worker = keel::testing::BesideThisProgram("soak_worker");
  options.file_prefix = absl::StrCat("soak.", getpid());
  options.no_huge = keel::soak::HugepagesScarce();
  bool hugepages_chosen = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    const std::string value = has_value ? argv[i + 1] : "";
    uint64_t n = 0;
    auto number = [&](uint64_t* out) {
      if (!has_value || !absl::SimpleAtoi(value, &n)) return false;
      *out = n;
      ++i;
      return true;
    };
    if (arg == "--cycles") {
      if (!number(&options.cycles)) return Usage("--cycles needs a count");
    } else if (arg == "--seconds") {
      uint64_t seconds = 0;
      if (!number(&seconds)) return Usage("--seconds needs a count");
      options.max_time = absl::Seconds(seconds);
    } else if (arg == "--secondaries") {
      uint64_t k = 0;
      if (!number(&k) || k < 1 || k > 63) return Usage("--secondaries needs 1..63");
      options.secondaries = static_cast<unsigned>(k);
    } else if (arg == "--primary-kill-every") {
      if (!number(&options.primary_kill_every)) return Usage("--primary-kill-every needs a count");
    } else if (arg == "--max-kill-delay-ms") {
      uint64_t ms = 0;
      if (!number(&ms)) return Usage("--max-kill-delay-ms needs a count");
      options.max_kill_delay = absl::Milliseconds(ms);
    } else if (arg == "--seed") {
      if (!number(&options.seed)) return Usage("--seed needs a number");
    } else if (arg == "--file-prefix") {
      if (!has_value) return Usage("--file-prefix needs a prefix");
      options.file_prefix = value;
      ++i;
    } else if (arg == "--worker") {
      if (!has_value) return Usage("--worker needs a path");
      options.worker = value;
      ++i;
    } else if (arg == "--adopt") {
      options.adopt = true;
    } else if (arg == "--no-huge") {
      options.no_huge = true;
      hugepages_chosen = true;
    } else if (arg == "--verbose") {
      options.verbose = true;
    } else {
      return Usage("unknown argument '" + arg + "'");
    }
  }
  if (!hugepages_chosen && options.no_huge) {
    std::printf("soak: fewer than 64 free 2 MiB hugepages: the group runs --no-huge\n");
  }
  keel::soak::Figures figures;
  const absl::Status status = keel::soak::Run(options, &figures);
  std::printf("soak (seed %llu, %u secondaries, %s): %s\n",
              static_cast<unsigned long long>(figures.seed), options.secondaries,
              options.no_huge ? "--no-huge" : "hugepages", figures.Summary().c_str());
  if (!status.ok()) {
    std::printf("soak FAILED: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf(
      "soak passed: after every kill everyone made progress, no object was handed out twice, "
      "every object lost was the dead's, every lcore was a live process's; nothing of the "
      "prefix was left\n");
  return 0;
}
