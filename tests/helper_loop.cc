#include "tests/helper_loop.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "eal/eal.h"

namespace keel::testing {

std::optional<std::vector<std::string>> JoinGroup(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  // KEEL_TEST_LAYOUT=COMPONENT=N: this process claims another shared-layout version.
  if (const char* layout = std::getenv("KEEL_TEST_LAYOUT"); layout != nullptr) {
    const std::vector<std::string> kv = absl::StrSplit(layout, '=');
    uint32_t version = 0;
    if (kv.size() == 2 && absl::SimpleAtoi(kv[1], &version)) {
      eal::SetLayoutVersionForTest(kv[0], version);
    }
  }
  absl::StatusOr<std::vector<std::string>> app_args = eal::Init(argc, argv);
  if (!app_args.ok()) {
    std::printf("INIT-FAILED: %s\n", app_args.status().ToString().c_str());
    return std::nullopt;
  }
  return *std::move(app_args);
}

int ServeCommands(const std::function<std::string(const std::vector<std::string>&)>& run) {
  std::string line;
  while (std::getline(std::cin, line) && line != "quit") {
    std::vector<std::string> cmd = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (!cmd.empty()) std::printf("%s\n", run(cmd).c_str());
  }
  if (absl::Status s = eal::Cleanup(); !s.ok()) {
    std::printf("CLEANUP-FAILED: %s\n", s.ToString().c_str());
    return 3;
  }
  std::printf("BYE\n");
  return 0;
}

}  // namespace keel::testing
