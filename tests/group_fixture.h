// A test fixture for multi-process tests: a process group of the test's own (unique
// --file-prefix) and a helper binary to start in it. The group's runtime directory is
// removed after the test (processes killed on purpose leave theirs behind).
#ifndef KEEL_TESTS_GROUP_FIXTURE_H_
#define KEEL_TESTS_GROUP_FIXTURE_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace keel::testing {

class GroupTest : public ::testing::Test {
 protected:
  explicit GroupTest(absl::string_view helper) : helper_(RunfilePath(helper)) {}

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Where runtime directories live for this user: the documented rule, spelled out
  // independently of the EAL's code.
  static std::string RuntimeBase() {
    if (::geteuid() == 0) return "/var/run/keel";
    if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
      return absl::StrCat(xdg, "/keel");
    }
    return absl::StrCat("/tmp/keel-", ::geteuid());
  }

  // HELPER --file-prefix PREFIX EAL_ARGS... -- APP_ARGS...
  std::unique_ptr<Subprocess> Start(const std::vector<std::string>& eal_args,
                                    const std::vector<std::string>& app_args,
                                    const SpawnOptions& options = {},
                                    const std::string& binary = "") {
    std::vector<std::string> argv = {binary.empty() ? helper_ : binary, "--file-prefix",
                                     prefix_};
    argv.insert(argv.end(), eal_args.begin(), eal_args.end());
    argv.push_back("--");
    argv.insert(argv.end(), app_args.begin(), app_args.end());
    std::unique_ptr<Subprocess> p = Subprocess::Start(argv, options);
    EXPECT_NE(p, nullptr);
    return p;
  }

  bool Exists(absl::string_view file) const {
    return std::filesystem::exists(absl::StrCat(dir_, "/", file));
  }

  const std::string helper_;
  const std::string prefix_ = UniquePrefix();
  const std::string dir_ = absl::StrCat(RuntimeBase(), "/", prefix_);
};

}  // namespace keel::testing

#endif  // KEEL_TESTS_GROUP_FIXTURE_H_
