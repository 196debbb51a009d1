// Test support: start a real process, talk to it over stdin/stdout, kill it, reap it.
//
//   auto p = Subprocess::Start({HelperPath(), "--file-prefix", prefix, "--", "hold"});
//   ASSERT_TRUE(p->WaitForOutput("READY", absl::Seconds(10))) << p->Output();
//   p->Kill(SIGKILL);
#ifndef KEEL_TESTS_SUBPROCESS_H_
#define KEEL_TESTS_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace keel::testing {

struct SpawnOptions {
  std::optional<uid_t> uid;      // run as this uid (and its gid == uid)
  std::vector<std::string> env;  // "NAME=value" added to the inherited environment
};

class Subprocess {
 public:
  // Starts argv[0] with stdin a pipe and stdout+stderr merged into another. Returns
  // nullptr if fork/exec failed (exec failure shows as exit code 127).
  static std::unique_ptr<Subprocess> Start(const std::vector<std::string>& argv,
                                           const SpawnOptions& options = {});
  ~Subprocess();  // SIGKILLs and reaps a process still running

  pid_t pid() const { return pid_; }
  // Reads output until it contains `needle`, the process closes its output, or the
  // timeout passes. True when found.
  bool WaitForOutput(absl::string_view needle, absl::Duration timeout);
  // Everything the process printed so far.
  std::string Output();
  // The next whole line after the last one NextLine returned (without '\n'), or
  // nullopt when none arrives within `timeout`.
  std::optional<std::string> NextLine(absl::Duration timeout);
  void Send(absl::string_view text);
  void CloseStdin();
  void Kill(int signal);
  // Waits for exit: the exit code, 128+N for death by signal N, or -1 on timeout (the
  // process is then killed).
  int Wait(absl::Duration timeout = absl::Seconds(30));

 private:
  Subprocess() = default;
  void Drain(absl::Duration timeout);

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string output_;
  size_t next_line_ = 0;  // where NextLine() goes on reading
  std::optional<int> exit_code_;
};

// Path of a file in the test's runfiles, e.g. "tests/eal_helper".
std::string RunfilePath(absl::string_view path);
// The program `name` in this program's own directory (bazel-bin/tests/ for the tools
// there: a binary run outside bazel test has no runfiles variables).
std::string BesideThisProgram(absl::string_view name);

// A --file-prefix unique to this test and process.
std::string UniquePrefix();

}  // namespace keel::testing

#endif  // KEEL_TESTS_SUBPROCESS_H_
