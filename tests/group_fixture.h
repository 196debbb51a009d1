// A test fixture for multi-process tests: a process group of the test's own (unique
// --file-prefix) and a helper binary to start in it. The group's runtime directory and
// its segment files are removed after the test (processes killed on purpose leave
// theirs behind), so one failing test does not starve the rest of hugepages.
#ifndef KEEL_TESTS_GROUP_FIXTURE_H_
#define KEEL_TESTS_GROUP_FIXTURE_H_

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace keel::testing {

inline constexpr absl::Duration kTimeout = absl::Seconds(20);

// Where runtime directories live for this user: the documented rule, spelled out
// independently of the EAL's code.
inline std::string RuntimeBase() {
  if (::geteuid() == 0) return "/var/run/keel";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
    return absl::StrCat(xdg, "/keel");
  }
  return absl::StrCat("/tmp/keel-", ::geteuid());
}

// For helpers that answer commands on stdin with one line each. NextAnswer returns the
// next answer line (log lines, which start with a lower-case component name, are
// skipped); Ask sends one command and returns its answer.
inline std::string NextAnswer(Subprocess* p) {
  while (std::optional<std::string> line = p->NextLine(kTimeout)) {
    if (!line->empty() && !(line->front() >= 'a' && line->front() <= 'z')) return *line;
  }
  return "NO ANSWER; output: " + p->Output();
}

// The next line of `p` that starts with `prefix` (lines before it are skipped), or a
// description of what came instead.
inline std::string Await(Subprocess* p, absl::string_view prefix, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (std::optional<std::string> line = p->NextLine(deadline - absl::Now())) {
    if (absl::StartsWith(*line, prefix)) return *line;
  }
  return absl::StrCat("NO \"", prefix, "\" LINE; output: ", p->Output());
}

inline std::string Ask(Subprocess* p, const std::string& command) {
  p->Send(command + "\n");
  return NextAnswer(p);
}

// Asks `command` until the answer satisfies `done` (the helper's state changes on another
// process's schedule), or `timeout` passes; returns the last answer.
inline std::string AwaitAnswer(Subprocess* p, const std::string& command,
                               const std::function<bool(const std::string&)>& done,
                               absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string answer;
  do {
    answer = Ask(p, command);
    if (done(answer)) return answer;
    absl::SleepFor(absl::Milliseconds(5));
  } while (absl::Now() < deadline);
  return answer;
}

// Until the answer contains `expected`.
inline std::string AwaitAnswer(Subprocess* p, const std::string& command,
                               const std::string& expected,
                               absl::Duration timeout = absl::Seconds(10)) {
  return AwaitAnswer(
      p, command, [&](const std::string& answer) { return absl::StrContains(answer, expected); },
      timeout);
}

// Sends SIGSTOP to `p` and returns once it has stopped: kill() returns before a process
// running on another CPU has stopped, and may go on running a little while.
inline bool StopProcess(Subprocess* p, absl::Duration timeout = absl::Seconds(5)) {
  p->Kill(SIGSTOP);
  const absl::Time deadline = absl::Now() + timeout;
  do {
    std::ifstream stat(absl::StrCat("/proc/", p->pid(), "/stat"));
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // "PID (COMM) STATE ...": COMM may hold spaces and parentheses; the state follows
    // the last ')'.
    const size_t paren = text.rfind(')');
    if (paren != std::string::npos && paren + 2 < text.size() &&
        (text[paren + 2] == 'T' || text[paren + 2] == 't')) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(1));
  } while (absl::Now() < deadline);
  return false;
}

// The segment files of group prefix `prefix` (keel.PREFIX.GROUP.segN, any group) in
// every hugetlbfs mount and in /dev/shm.
inline std::vector<std::string> SegmentFiles(const std::string& prefix) {
  std::vector<std::string> dirs = {"/dev/shm"};
  std::ifstream mounts("/proc/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() >= 3 && fields[2] == "hugetlbfs") dirs.push_back(fields[1]);
  }
  std::vector<std::string> found;
  const std::string head = "keel." + prefix + ".";
  for (const std::string& dir : dirs) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename();
      if (absl::StartsWith(name, head) && name.find('.', head.size()) == head.size() + 16) {
        found.push_back(entry.path());
      }
    }
  }
  return found;
}

// True when `text` is printable ASCII lines: error messages quoting damaged files must
// escape what they quote.
inline bool IsPrintable(const std::string& text) {
  for (const char c : text) {
    if (c != '\n' && (c < 0x20 || c > 0x7e)) return false;
  }
  return true;
}

// Why hugepage tests cannot run here (to GTEST_SKIP with), or nullopt when they can:
// a hugetlbfs mount and at least `pages` free 2 MiB pages.
inline std::optional<std::string> MissingHugepages(int pages = 16) {
  bool mounted = false;
  std::ifstream mounts("/proc/mounts");
  std::string line;
  while (std::getline(mounts, line)) mounted |= absl::StrContains(line, " hugetlbfs ");
  if (!mounted) {
    return "no hugetlbfs is mounted; as root, tools/test reserves and mounts hugepages "
           "(or run tools/setup --hugepages 512)";
  }
  int free_pages = 0;
  std::ifstream("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") >> free_pages;
  if (free_pages < pages) {
    return absl::StrCat("only ", free_pages, " free 2 MiB hugepages (", pages,
                        " needed); as root, tools/test reserves them (or run tools/setup "
                        "--hugepages 512)");
  }
  return std::nullopt;
}

class GroupTest : public ::testing::Test {
 protected:
  explicit GroupTest(absl::string_view helper) : helper_(RunfilePath(helper)) {}

  // A test whose group uses hugepages skips, saying why, where there are none.
  void SetUp() override {
    if (!NeedsHugepages()) return;
    if (std::optional<std::string> why = MissingHugepages()) GTEST_SKIP() << *why;
  }
  // Whether this test's groups use hugepages (a fixture of --no-huge groups says no).
  virtual bool NeedsHugepages() const { return false; }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    for (const std::string& file : SegmentFiles(prefix_)) std::filesystem::remove(file, ec);
  }

  // HELPER --file-prefix PREFIX EAL_ARGS... -- APP_ARGS...
  std::unique_ptr<Subprocess> Start(const std::vector<std::string>& eal_args,
                                    const std::vector<std::string>& app_args,
                                    const SpawnOptions& options = {},
                                    const std::string& binary = "") {
    std::vector<std::string> argv = {binary.empty() ? helper_ : binary, "--file-prefix", prefix_};
    argv.insert(argv.end(), eal_args.begin(), eal_args.end());
    argv.push_back("--");
    argv.insert(argv.end(), app_args.begin(), app_args.end());
    std::unique_ptr<Subprocess> p = Subprocess::Start(argv, options);
    EXPECT_NE(p, nullptr);
    return p;
  }

  // Starts a helper that prints READY when it joined (or INIT-FAILED) and waits for
  // that line, which is consumed and kept in ready_line_.
  std::unique_ptr<Subprocess> Join(const std::vector<std::string>& eal_args,
                                   const std::vector<std::string>& app_args = {},
                                   const SpawnOptions& options = {}) {
    std::unique_ptr<Subprocess> p = Start(eal_args, app_args, options);
    ready_line_.clear();
    while (std::optional<std::string> line = p->NextLine(kTimeout)) {
      if (absl::StartsWith(*line, "READY") || absl::StartsWith(*line, "INIT-FAILED")) {
        ready_line_ = *line;
        break;
      }
    }
    EXPECT_TRUE(absl::StartsWith(ready_line_, "READY")) << p->Output();
    return p;
  }

  // The output of a helper whose init should fail (exit code 2).
  std::string JoinFails(const std::vector<std::string>& eal_args,
                        const std::vector<std::string>& app_args = {},
                        const SpawnOptions& options = {}) {
    std::unique_ptr<Subprocess> p = Start(eal_args, app_args, options);
    EXPECT_EQ(p->Wait(), 2) << p->Output();
    return p->Output();
  }

  // Asks a helper to quit and expects a clean exit.
  static void Quit(Subprocess* p) {
    p->Send("quit\n");
    EXPECT_EQ(p->Wait(), 0) << p->Output();
  }

  bool Exists(absl::string_view file) const {
    return std::filesystem::exists(absl::StrCat(dir_, "/", file));
  }

  const std::string helper_;
  std::string ready_line_;  // of the last Join
  const std::string prefix_ = UniquePrefix();
  const std::string dir_ = absl::StrCat(RuntimeBase(), "/", prefix_);
};

}  // namespace keel::testing

#endif  // KEEL_TESTS_GROUP_FIXTURE_H_
