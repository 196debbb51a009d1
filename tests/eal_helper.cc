// A process for the multi-process tests to start: joins a group with the EAL options
// it is given, then does what the command after "--" says.
//
//   eal_helper [EAL options] -- COMMAND [--layout COMPONENT=N] [--init-delay-ms N]
//
// Commands:
//   once           print READY and the group, leave
//   hold           print READY, then serve stdin lines: "describe", "alive" (PRIMARY-ALIVE
//                  0|1 generation=N), "hold-config-lock MS" (HOLDING, then HELD after MS),
//                  "fork-exit" (fork a child that keeps the process's files and waits to be killed,
//                  print FORKED child=PID, then _exit(0) without Cleanup), "quit" (or EOF)
//   watch-primary  print READY, wait (up to 30 s) for the primary to exit, print
//                  PRIMARY-EXITED alive=0|1
//   hand-over      (a primary) print READY, wait (up to 30 s) for a takeover request,
//                  call HandOver and print HANDED-OVER (or HANDOVER-FAILED: <status>);
//                  a line on stdin (or its end) instead: leave as "once" does
//   lcores         run a function on every lcore; each prints whether it runs pinned
//
// On an Init failure it prints "INIT-FAILED: <status>" and exits with 2.
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "eal/eal.h"

namespace {

using keel::eal::ProcessTypeName;

void PrintGroup() {
  absl::StatusOr<keel::eal::GroupInfo> info = keel::eal::DescribeGroup();
  if (!info.ok()) {
    std::printf("DESCRIBE-FAILED: %s\n", info.status().ToString().c_str());
    return;
  }
  for (const keel::eal::ProcessInfo& p : info->processes) {
    std::printf("PROC pid=%d type=%s lcores=%s%s\n", p.pid,
                std::string(ProcessTypeName(p.type)).c_str(), absl::StrJoin(p.lcores, ",").c_str(),
                p.is_self ? " self" : "");
  }
  for (const keel::eal::ComponentVersion& c : info->components) {
    std::printf("COMPONENT %s layout=%u\n", c.name.c_str(), c.layout_version);
  }
  std::printf("END\n");
}

int RunLcores() {
  absl::Mutex mu;
  auto work = [&mu]() {
    const unsigned lcore = keel::eal::LcoreId();
    const keel::eal::CpuSet& want = keel::eal::GetOptions().lcores.at(lcore);
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof(set), &set);
    bool pinned = true;
    for (unsigned cpu = 0; cpu < 64; ++cpu) pinned &= (CPU_ISSET(cpu, &set) != 0) == want.test(cpu);
    absl::MutexLock lock(&mu);
    std::printf("RAN lcore=%u pinned=%d\n", lcore, pinned ? 1 : 0);
    return static_cast<int>(lcore) + 100;
  };
  if (absl::Status s = keel::eal::LaunchOnAllWorkers(work, keel::eal::CallMain::kCall); !s.ok()) {
    std::printf("LAUNCH-FAILED: %s\n", s.ToString().c_str());
    return 1;
  }
  for (unsigned lcore : keel::eal::WorkerLcores()) {
    std::printf("WAIT lcore=%u result=%d\n", lcore, keel::eal::WaitLcore(lcore));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Helper options come after the command; apply the test hooks before Init.
  std::string command;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") != 0) continue;
    if (i + 1 < argc) command = argv[i + 1];
    for (int j = i + 2; j + 1 < argc; j += 2) {
      const std::string flag = argv[j];
      const std::string value = argv[j + 1];
      if (flag == "--layout") {
        std::vector<std::string> kv = absl::StrSplit(value, '=');
        uint32_t version = 0;
        if (kv.size() == 2 && absl::SimpleAtoi(kv[1], &version)) {
          keel::eal::SetLayoutVersionForTest(kv[0], version);
        }
      } else if (flag == "--init-delay-ms") {
        int ms = 0;
        if (absl::SimpleAtoi(value, &ms)) keel::eal::SetInitDelayForTest(absl::Milliseconds(ms));
      }
    }
    break;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);

  absl::StatusOr<std::vector<std::string>> app_args = keel::eal::Init(argc, argv);
  if (!app_args.ok()) {
    std::printf("INIT-FAILED: %s\n", app_args.status().ToString().c_str());
    return 2;
  }
  std::printf(
      "READY pid=%d type=%s%s\n", getpid(),
      std::string(ProcessTypeName(keel::eal::GetProcessType())).c_str(),
      keel::eal::GetProcessType() == keel::eal::ProcessType::kPrimary && keel::eal::Adopted()
          ? " adopted"
          : "");

  int rc = 0;
  if (command == "once") {
    PrintGroup();
  } else if (command == "hold") {
    std::string line;
    while (std::getline(std::cin, line) && line != "quit") {
      if (line == "describe") PrintGroup();
      if (absl::StartsWith(line, "hold-config-lock ")) {
        int ms = 0;
        absl::SimpleAtoi(line.substr(17), &ms);
        absl::Status s = keel::eal::HoldConfigLockForTest(absl::Milliseconds(ms),
                                                          [] { std::printf("HOLDING\n"); });
        std::printf("%s\n", s.ok() ? "HELD" : s.ToString().c_str());
      }
      if (line == "alive") {
        std::printf("PRIMARY-ALIVE %d generation=%u\n", keel::eal::PrimaryAlive() ? 1 : 0,
                    keel::eal::PrimaryGeneration());
      }
      if (line == "fork-exit") {
        const pid_t child = fork();
        if (child == 0) {
          for (;;) pause();
        }
        std::printf("FORKED child=%d\n", child);
        std::fflush(stdout);
        _exit(0);
      }
    }
  } else if (command == "watch-primary") {
    struct pollfd pfd = {keel::eal::PrimaryExitFd(), POLLIN, 0};
    const int ready = poll(&pfd, 1, 30000);
    std::printf("PRIMARY-EXITED ready=%d alive=%d\n", ready, keel::eal::PrimaryAlive() ? 1 : 0);
  } else if (command == "hand-over") {
    struct pollfd fds[2] = {{keel::eal::TakeoverRequestFd(), POLLIN, 0}, {0, POLLIN, 0}};
    if (poll(fds, 2, 30000) < 1) {
      std::printf("NO-TAKEOVER-REQUEST\n");
      rc = 1;
    } else if ((fds[0].revents & POLLIN) != 0) {
      if (absl::Status s = keel::eal::HandOver(); !s.ok()) {
        std::printf("HANDOVER-FAILED: %s\n", s.ToString().c_str());
        return 3;
      }
      std::printf("HANDED-OVER\n");
      return 0;
    }
  } else if (command == "lcores") {
    rc = RunLcores();
  } else {
    std::printf("unknown command \"%s\"\n", command.c_str());
    rc = 1;
  }
  if (absl::Status s = keel::eal::Cleanup(); !s.ok()) {
    std::printf("CLEANUP-FAILED: %s\n", s.ToString().c_str());
    return 3;
  }
  std::printf("BYE\n");
  return rc;
}
