#include "tests/subprocess.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace keel::testing {

std::unique_ptr<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                              const SpawnOptions& options) {
  int in_pipe[2];
  int out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return nullptr;
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return nullptr;
  // Everything the child needs is built before fork: after it, only async-signal-safe
  // calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  for (const std::string& e : options.env) env_storage.push_back(e);
  std::vector<char*> env;
  for (const std::string& e : env_storage) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) return nullptr;
  if (pid == 0) {
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(out_pipe[1], STDERR_FILENO);
    if (options.uid.has_value()) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(*options.uid) != 0 ||
          ::setuid(*options.uid) != 0) {
        ::_exit(126);
      }
    }
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  std::unique_ptr<Subprocess> p(new Subprocess);
  p->pid_ = pid;
  p->stdin_fd_ = in_pipe[1];
  p->stdout_fd_ = out_pipe[0];
  return p;
}

Subprocess::~Subprocess() {
  if (!exit_code_.has_value()) {
    Kill(SIGKILL);
    Wait(absl::Seconds(10));
  }
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

void Subprocess::Drain(absl::Duration timeout) {
  if (stdout_fd_ < 0) return;
  struct pollfd pfd = {stdout_fd_, POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) return;
  char buf[4096];
  const ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
  if (n > 0) {
    output_.append(buf, static_cast<size_t>(n));
  } else if (n == 0) {
    ::close(stdout_fd_);
    stdout_fd_ = -1;
  }
}

bool Subprocess::WaitForOutput(absl::string_view needle, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!absl::StrContains(output_, needle)) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || stdout_fd_ < 0) return false;
    Drain(std::min(left, absl::Milliseconds(100)));
  }
  return true;
}

std::optional<std::string> Subprocess::NextLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const size_t end = output_.find('\n', next_line_);
    if (end != std::string::npos) {
      std::string line = output_.substr(next_line_, end - next_line_);
      next_line_ = end + 1;
      return line;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || stdout_fd_ < 0) return std::nullopt;
    Drain(std::min(left, absl::Milliseconds(100)));
  }
}

std::string Subprocess::Output() {
  Drain(absl::ZeroDuration());
  return output_;
}

void Subprocess::Send(absl::string_view text) {
  if (stdin_fd_ < 0) return;
  ::signal(SIGPIPE, SIG_IGN);
  (void)!::write(stdin_fd_, text.data(), text.size());
}

void Subprocess::CloseStdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

void Subprocess::Kill(int signal) {
  if (!exit_code_.has_value()) ::kill(pid_, signal);
}

int Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!exit_code_.has_value()) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (absl::Now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      exit_code_ = -1;
      break;
    }
    Drain(absl::Milliseconds(10));
  }
  // Collect what is left to read (bounded: a grandchild could hold the pipe open).
  const absl::Time drain_deadline = absl::Now() + absl::Seconds(2);
  while (stdout_fd_ >= 0 && absl::Now() < drain_deadline) Drain(absl::Milliseconds(100));
  return *exit_code_;
}

std::string RunfilePath(absl::string_view path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr) return std::string(path);
  return absl::StrCat(srcdir, "/", workspace != nullptr ? workspace : "keel", "/", path);
}

std::string BesideThisProgram(absl::string_view name) {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return std::string(name);
  const std::string path(self, static_cast<size_t>(n));
  return absl::StrCat(path.substr(0, path.rfind('/') + 1), name);
}

std::string UniquePrefix() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name =
      info != nullptr ? absl::StrCat(info->test_suite_name(), ".", info->name()) : "test";
  name = absl::StrReplaceAll(name, {{"/", "_"}});
  // A prefix has at most 64 characters: a long name keeps its head and its end (the
  // parameter of a parameterized test) around a hash of the whole, so two tests never
  // share one.
  if (name.size() > 48) {
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (const char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    name = absl::StrFormat("%s-%08x-%s", name.substr(0, 24), static_cast<uint32_t>(hash),
                           name.substr(name.size() - 14));
  }
  return absl::StrCat("t.", name, ".", ::getpid());
}

}  // namespace keel::testing
