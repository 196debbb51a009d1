#include "eal/eal.h"

#include <unistd.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "eal/internal/components.h"
#include "eal/internal/group.h"
#include "eal/internal/layout.h"
#include "eal/internal/lcores.h"

namespace keel::eal {
namespace {

const eal_internal::ComponentRegistrar kRegistrar({"eal", kVersion,
                                                   eal_internal::kLayoutVersion});

// Process-local EAL state, set by Init and cleared by Cleanup on the main thread.
struct EalState {
  Options options;
  std::unique_ptr<eal_internal::Group> group;
};
EalState* g_state = nullptr;
absl::Duration g_init_delay_for_test;

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
  if (absl::Status s = Init(*options); !s.ok()) return s;
  return options->app_args;
}

absl::Status Init(const Options& options) {
  if (g_state != nullptr) return absl::FailedPreconditionError("eal::Init was already called");
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

  absl::StatusOr<std::unique_ptr<eal_internal::Group>> group =
      eal_internal::Group::Join(options);
  if (!group.ok()) return group.status();
  if (options.claim_lcores) {
    if (absl::Status s = eal_internal::StartLcores(options); !s.ok()) {
      (*group)->Leave().IgnoreError();
      return s;
    }
  }
  if ((*group)->type() == ProcessType::kPrimary) {
    absl::SleepFor(g_init_delay_for_test);
    (*group)->MarkReady();
  }
  KEEL_LOG(Info, "eal", "%s process %d joined group \"%s\" with lcores %s",
           ProcessTypeName((*group)->type()), getpid(), options.file_prefix,
           options.claim_lcores ? absl::StrJoin(options.lcores, ",", absl::PairFormatter(
                                                    absl::AlphaNumFormatter(), "@",
                                                    [](std::string* out, const CpuSet& cpus) {
                                                      out->append(FormatCpuSet(cpus));
                                                    }))
                                : "none");
  g_state = new EalState{options, *std::move(group)};
  return absl::OkStatus();
}

absl::Status Cleanup() {
  if (g_state == nullptr) return absl::FailedPreconditionError("eal::Init was not called");
  if (absl::Status s = eal_internal::StopLcores(); !s.ok()) return s;
  const absl::Status left = g_state->group->Leave();
  delete g_state;
  g_state = nullptr;
  return left;
}

bool Initialized() { return g_state != nullptr; }

ProcessType GetProcessType() { return g_state->group->type(); }

const Options& GetOptions() { return g_state->options; }

std::string RuntimeDirectory() { return g_state->group->dir(); }

int PrimaryExitFd() { return g_state == nullptr ? -1 : g_state->group->primary_pidfd(); }

bool PrimaryAlive() { return g_state != nullptr && g_state->group->PrimaryAlive(); }

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

}  // namespace keel::eal
