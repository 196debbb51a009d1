#include "eal/eal.h"

#include <sys/personality.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "eal/internal/components.h"
#include "eal/internal/group.h"
#include "eal/internal/identity.h"
#include "eal/internal/layout.h"
#include "eal/internal/lcores.h"
#include "eal/internal/runtime_dir.h"
#include "telemetry/server.h"

namespace keel::eal {
namespace {

const eal_internal::ComponentRegistrar kRegistrar({"eal", kVersion, eal_internal::kLayoutVersion});

// Process-local EAL state, set by Init and cleared by Cleanup on the main thread.
struct EalState {
  Options options;
  std::unique_ptr<eal_internal::Group> group;
  std::vector<eal_internal::ComponentInfo> components;  // in init order
  std::unique_ptr<telemetry::Server> telemetry;         // null with --no-telemetry
};
EalState* g_state = nullptr;
absl::Duration g_init_delay_for_test;
std::vector<std::string> g_argv;  // for the ASLR re-execution

// The group's memory range is taken in this secondary (ASLR put something there). Run
// the program again, once, with randomization off for this process only; the system
// setting is untouched. Returns only when that is not possible.
absl::Status ReexecWithoutAslr(const absl::Status& why) {
  if (eal_internal::IsAslrReexec() || g_argv.empty()) {
    return absl::FailedPreconditionError(why.message());
  }
  KEEL_LOG(Notice, "eal", "%s; running this process again with ASLR off for it alone",
           why.message());
  const int current = personality(0xffffffff);
  if (current == -1 || personality(static_cast<unsigned long>(current) | ADDR_NO_RANDOMIZE) == -1) {
    return absl::FailedPreconditionError(
        absl::StrCat(why.message(), " (and personality(ADDR_NO_RANDOMIZE) failed)"));
  }
  setenv("KEEL_ASLR_REEXEC", "1", 1);
  std::vector<char*> argv;
  for (std::string& arg : g_argv) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  execv("/proc/self/exe", argv.data());
  return absl::FailedPreconditionError(
      absl::StrCat(why.message(), " (and re-executing /proc/self/exe failed)"));
}

// Serves this process's telemetry: the primary at DPDK's name, a secondary at the name
// with ":N", N its process-table slot plus one (unique among live processes; a dead
// process's socket is replaced by the next one in its slot). A failure is logged, not
// fatal: telemetry observes the program, it is not part of it.
std::unique_ptr<telemetry::Server> StartTelemetry(const eal_internal::Group& group) {
  const int instance =
      group.type() == ProcessType::kPrimary ? 0 : eal_internal::TokenSlot(group.SelfToken()) + 1;
  telemetry::ServerOptions options;
  options.identity.version = absl::StrCat("keel ", ToString(kVersion));
  absl::StatusOr<std::unique_ptr<telemetry::Server>> server =
      telemetry::Server::Start(group.dir(), telemetry::SocketName(instance), options);
  if (!server.ok()) {
    KEEL_LOG(Warning, "eal", "no telemetry socket: %s", server.status().message());
    return nullptr;
  }
  return *std::move(server);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> Init(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  absl::StatusOr<Options> options = ParseOptions(args);
  if (!options.ok()) return options.status();
  if (options->help) {
    std::fputs(Usage(argc > 0 ? argv[0] : "keel-app").c_str(), stdout);
    std::fflush(stdout);
    return absl::CancelledError("-h: usage printed");
  }
  g_argv.assign(argv, argv + argc);
  if (absl::Status s = Init(*options); !s.ok()) return s;
  return options->app_args;
}

absl::Status Init(const Options& options) {
  if (g_state != nullptr) return absl::FailedPreconditionError("eal::Init was already called");
  // The command line's rules, before anything is touched: the runtime directory is
  // named by file_prefix, shared arrays are indexed by lcore ids, and later steps
  // (lcore pinning, memory planning) look up main_lcore in lcores.
  if (absl::Status s = ValidateOptions(options, MachineInfo::Current()); !s.ok()) return s;
  for (const auto& [component, level] : options.log_levels) {
    if (component.empty()) {
      log::SetLevel(level);
    } else {
      log::SetLevel(component, level);
    }
  }
  log::SetTimestamps(options.log_timestamp);
  if (options.print_version) {
    std::fputs(ComponentVersionsText().c_str(), stdout);
    std::fflush(stdout);
  }

  absl::StatusOr<std::unique_ptr<eal_internal::Group>> joined = eal_internal::Group::Join(options);
  if (!joined.ok()) return joined.status();
  std::unique_ptr<eal_internal::Group> group = *std::move(joined);
  const ProcessType type = group->type();

  // Component init hooks, in init order; on failure undo the ones that ran.
  std::vector<eal_internal::ComponentInfo> components = eal_internal::RegisteredComponents();
  std::stable_sort(components.begin(), components.end(),
                   [](const auto& a, const auto& b) { return a.init_order < b.init_order; });
  const eal_internal::PrimaryIdentity primary = group->primary();  // one snapshot
  const eal_internal::InitContext context{options,
                                          type,
                                          group->dir(),
                                          group->SelfToken(),
                                          group->PrimaryExitFd(),
                                          primary.pid,
                                          primary.generation,
                                          group->adopting()};
  absl::Status status;
  size_t ran = 0;
  for (; ran < components.size() && status.ok(); ++ran) {
    if (components[ran].init != nullptr) status = components[ran].init(context);
  }
  if (status.ok() && options.claim_lcores) status = eal_internal::StartLcores(options);
  if (!status.ok()) {
    // An adopter that failed leaves the group as it found it: without a primary.
    const bool ends_group = type == ProcessType::kPrimary && !group->adopting();
    for (size_t i = ran; i-- > 0;) {
      if (components[i].cleanup != nullptr) components[i].cleanup(type, ends_group);
    }
    group->Leave(ends_group).IgnoreError();
    if (eal_internal::IsReexecWithoutAslr(status)) return ReexecWithoutAslr(status);
    return status;
  }

  if (eal_internal::IsAslrReexec()) {
    // This is the re-execution: give the programs it starts their randomization back.
    unsetenv("KEEL_ASLR_REEXEC");
    const int current = personality(0xffffffff);
    if (current != -1) personality(static_cast<unsigned long>(current) & ~ADDR_NO_RANDOMIZE);
  }
  std::unique_ptr<telemetry::Server> telemetry_server;
  if (options.telemetry) telemetry_server = StartTelemetry(*group);
  // Before the group is published ready: a secondary may then reach this process's
  // threads (the interrupt relay asks TokenAlive) before Init returns here.
  eal_internal::Group* joined_group = group.get();
  g_state =
      new EalState{options, std::move(group), std::move(components), std::move(telemetry_server)};
  if (type == ProcessType::kPrimary) {
    absl::SleepFor(g_init_delay_for_test);
    joined_group->MarkReady();
  }
  KEEL_LOG(Info, "eal", "%s process %d joined group \"%s\" with lcores %s", ProcessTypeName(type),
           getpid(), options.file_prefix,
           options.claim_lcores
               ? absl::StrJoin(options.lcores, ",",
                               absl::PairFormatter(absl::AlphaNumFormatter(), "@",
                                                   [](std::string* out, const CpuSet& cpus) {
                                                     out->append(FormatCpuSet(cpus));
                                                   }))
               : "none");
  return absl::OkStatus();
}

namespace {

// Cleanup and HandOver: the group ends with this process when `ends_group`.
absl::Status Leave(bool ends_group) {
  if (absl::Status s = eal_internal::StopLcores(); !s.ok()) return s;
  // First: its handlers read what the components are about to release.
  g_state->telemetry.reset();
  const ProcessType type = g_state->group->type();
  for (auto it = g_state->components.rbegin(); it != g_state->components.rend(); ++it) {
    if (it->cleanup != nullptr) it->cleanup(type, ends_group);
  }
  const absl::Status left = g_state->group->Leave(ends_group);
  delete g_state;
  g_state = nullptr;
  return left;
}

}  // namespace

absl::Status Cleanup() {
  if (g_state == nullptr) return absl::FailedPreconditionError("eal::Init was not called");
  return Leave(g_state->group->type() == ProcessType::kPrimary);
}

absl::Status HandOver() {
  if (g_state == nullptr) return absl::FailedPreconditionError("eal::Init was not called");
  if (g_state->group->type() != ProcessType::kPrimary) {
    return absl::FailedPreconditionError("eal::HandOver: only a primary hands its group over");
  }
  const pid_t to = g_state->group->TakeoverRequester();
  g_state->group->MarkHandedOver();
  KEEL_LOG(Notice, "eal", "group \"%s\": primary pid %d hands the group over%s",
           g_state->options.file_prefix, getpid(),
           to != 0 ? absl::StrFormat(" to pid %d", to) : "");
  return Leave(/*ends_group=*/false);
}

int TakeoverRequestFd() { return g_state == nullptr ? -1 : g_state->group->takeover_fd(); }

bool Initialized() { return g_state != nullptr; }

ProcessType GetProcessType() { return g_state->group->type(); }

const Options& GetOptions() { return g_state->options; }

std::string RuntimeDirectory() { return g_state->group->dir(); }

const std::vector<std::string>& Arguments() { return g_argv; }

std::string RuntimeDirectoryFor(absl::string_view file_prefix) {
  return eal_internal::RuntimeDir(file_prefix);
}

std::string TelemetrySocketPath() {
  return g_state == nullptr || g_state->telemetry == nullptr ? "" : g_state->telemetry->path();
}

int PrimaryExitFd() { return g_state == nullptr ? -1 : g_state->group->PrimaryExitFd(); }

bool PrimaryAlive() { return g_state != nullptr && g_state->group->PrimaryAlive(); }

bool Adopted() { return g_state->group->adopting(); }

uint32_t PrimaryGeneration() {
  return g_state == nullptr ? 0 : g_state->group->primary().generation;
}

}  // namespace keel::eal

namespace keel::eal_internal {

uint32_t SelfToken() { return eal::g_state == nullptr ? 0 : eal::g_state->group->SelfToken(); }

bool TokenAlive(uint32_t token) {
  return eal::g_state != nullptr && eal::g_state->group->TokenAlive(token);
}

uint32_t LcoreOwnerToken(unsigned lcore) {
  return eal::g_state == nullptr ? 0 : eal::g_state->group->LcoreOwnerToken(lcore);
}

}  // namespace keel::eal_internal

namespace keel::eal {

absl::StatusOr<GroupInfo> DescribeGroup() {
  if (g_state == nullptr) return absl::FailedPreconditionError("eal::Init was not called");
  return g_state->group->Describe();
}

std::string ComponentVersionsText() {
  std::string text;
  for (const eal_internal::ComponentInfo& c : eal_internal::RegisteredComponents()) {
    absl::StrAppendFormat(&text, "%s %s (layout %u)\n", c.name, ToString(c.version),
                          c.layout_version);
  }
  return text;
}

void SetLayoutVersionForTest(absl::string_view component, uint32_t layout_version) {
  eal_internal::SetLayoutVersionForTest(component, layout_version);
}

void SetInitDelayForTest(absl::Duration delay) { g_init_delay_for_test = delay; }

absl::Status HoldConfigLockForTest(absl::Duration hold, const std::function<void()>& on_held) {
  if (g_state == nullptr) return absl::FailedPreconditionError("eal::Init was not called");
  return g_state->group->HoldLockForTest(hold, on_held);
}

}  // namespace keel::eal
