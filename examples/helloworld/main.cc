// helloworld: every lcore of every process says hello, and the processes talk through
// a memzone: the primary writes a greeting into memzone "helloworld", a secondary reads
// it and writes a reply, the primary reads the reply before it exits.
//
//   helloworld [EAL options] [-- --stay SECONDS]
//
// With --stay the process stays in its group for SECONDS (or until SIGINT/SIGTERM)
// after saying hello, so secondaries can attach to a primary:
//
//   helloworld -l 0 -m 64 --file-prefix demo -- --stay 30 &
//   helloworld --proc-type=secondary --lcores 1@1 --file-prefix demo
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "eal/eal.h"
#include "memory/memory.h"

namespace {

constexpr char kZone[] = "helloworld";
constexpr size_t kZoneSize = 512;  // greeting in the first half, reply in the second

// The primary's greeting to every secondary.
void WriteGreeting() {
  absl::StatusOr<keel::memory::Memzone> zone = keel::memory::ReserveMemzone(kZone, kZoneSize);
  if (!zone.ok()) {
    std::fprintf(stderr, "helloworld: %s\n", zone.status().ToString().c_str());
    return;
  }
  char* text = static_cast<char*>(zone->addr);
  std::snprintf(text, kZoneSize / 2, "greetings from the primary, pid %d", getpid());
  text[kZoneSize / 2] = '\0';
  std::printf("primary wrote to memzone \"%s\" at %p: \"%s\"\n", kZone, zone->addr, text);
}

// A secondary reads the greeting and writes a reply.
void AnswerGreeting() {
  absl::StatusOr<keel::memory::Memzone> zone = keel::memory::LookupMemzone(kZone);
  if (!zone.ok()) {
    std::fprintf(stderr, "helloworld: %s\n", zone.status().ToString().c_str());
    return;
  }
  char* text = static_cast<char*>(zone->addr);
  std::printf("secondary read memzone \"%s\" at %p: \"%s\"\n", kZone, zone->addr, text);
  std::snprintf(text + kZoneSize / 2, kZoneSize / 2, "hello back from secondary pid %d",
                getpid());
  std::printf("secondary wrote back: \"%s\"\n", text + kZoneSize / 2);
}

// The primary reads whatever reply arrived, and frees the zone.
void ReadReply() {
  absl::StatusOr<keel::memory::Memzone> zone = keel::memory::LookupMemzone(kZone);
  if (!zone.ok()) return;
  const char* reply = static_cast<const char*>(zone->addr) + kZoneSize / 2;
  std::printf("primary read the reply: \"%s\"\n", *reply != '\0' ? reply : "(none)");
  keel::memory::FreeMemzone(kZone).IgnoreError();
}

int SayHello() {
  std::printf("hello from lcore %u (%s process, pid %d)\n", keel::eal::LcoreId(),
              std::string(keel::eal::ProcessTypeName(keel::eal::GetProcessType())).c_str(),
              getpid());
  return 0;
}

void PrintGroup() {
  absl::StatusOr<keel::eal::GroupInfo> group = keel::eal::DescribeGroup();
  if (!group.ok()) {
    std::fprintf(stderr, "helloworld: %s\n", group.status().ToString().c_str());
    return;
  }
  std::printf("group \"%s\" has %zu process%s:\n", group->prefix.c_str(),
              group->processes.size(), group->processes.size() == 1 ? "" : "es");
  for (const keel::eal::ProcessInfo& p : group->processes) {
    std::printf("  pid %d, %s, lcores %s%s\n", p.pid,
                std::string(keel::eal::ProcessTypeName(p.type)).c_str(),
                absl::StrJoin(p.lcores, ",").c_str(), p.is_self ? " (this process)" : "");
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals before Init so every lcore thread inherits the mask and
  // only sigtimedwait() below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<std::vector<std::string>> args = keel::eal::Init(argc, argv);
  if (!args.ok()) {
    if (absl::IsCancelled(args.status())) return 0;  // -h
    std::fprintf(stderr, "helloworld: %s\n", args.status().ToString().c_str());
    return 1;
  }
  int stay_seconds = 0;
  for (size_t i = 0; i < args->size(); ++i) {
    if ((*args)[i] == "--stay" && i + 1 < args->size() &&
        absl::SimpleAtoi((*args)[i + 1], &stay_seconds) && stay_seconds >= 0) {
      ++i;
    } else {
      std::fprintf(stderr, "helloworld: unknown argument \"%s\" (usage: -- --stay SECONDS)\n",
                   (*args)[i].c_str());
      keel::eal::Cleanup().IgnoreError();
      return 1;
    }
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);

  keel::eal::LaunchOnAllWorkers(SayHello, keel::eal::CallMain::kCall).IgnoreError();
  keel::eal::WaitAllLcores();
  PrintGroup();
  const bool primary = keel::eal::GetProcessType() == keel::eal::ProcessType::kPrimary;
  if (primary) {
    WriteGreeting();
  } else {
    AnswerGreeting();
  }

  if (stay_seconds > 0) {
    std::printf("staying up for %d s (Ctrl-C to stop)\n", stay_seconds);
    const struct timespec timeout = {stay_seconds, 0};
    sigtimedwait(&stop_signals, nullptr, &timeout);
    PrintGroup();
  }
  if (primary) ReadReply();
  const std::string type(keel::eal::ProcessTypeName(keel::eal::GetProcessType()));
  if (absl::Status s = keel::eal::Cleanup(); !s.ok()) {
    std::fprintf(stderr, "helloworld: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("%s process %d: clean shutdown\n", type.c_str(), getpid());
  return 0;
}
