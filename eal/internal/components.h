// The components linked into this process (process-local).
//
// Each component registers its name, API version and shared-layout version once, from
// a static initializer in its control-path .cc:
//
//   const eal_internal::ComponentRegistrar kRegistrar({"ring", ring::kVersion,
//                                                      ring_internal::kLayoutVersion});
//
// The EAL records these in the group's shared config: the first process of a group that
// brings a component fixes its layout version, and every later process must match it.
// `-v` prints the list.
#ifndef KEEL_EAL_INTERNAL_COMPONENTS_H_
#define KEEL_EAL_INTERNAL_COMPONENTS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/version.h"
#include "eal/options.h"

namespace keel::eal_internal {

// What a component's init hook learns of the process joining the group.
struct InitContext {
  const eal::Options& options;
  eal::ProcessType type;  // kPrimary or kSecondary
  std::string runtime_dir;
  // What eal:: functions give only once Init returns:
  uint32_t token;               // this process's token (identity.h's SelfToken())
  int primary_exit_fd;          // eal::PrimaryExitFd(): -1 in the primary
  pid_t primary_pid;            // the group's primary (this process in the primary)
  uint32_t primary_generation;  // eal::PrimaryGeneration()
  // A primary taking over a live group whose primary died (--adopt): the group's
  // shared state exists and secondaries use it; the hook finds its objects (as a
  // secondary does) and takes over the dead primary's duties instead of creating them.
  bool adopting;
};

// Process-local hooks (function pointers never go to shared memory).
// init: runs inside eal::Init after the process joined its group and before a primary
//   publishes init-complete, in ascending init_order. An error fails Init.
// cleanup: runs inside eal::Cleanup (and when a later init hook fails), in reverse.
//   ends_group: this primary ends the group (it removes what it owns, files included);
//   false in a secondary and in an adopting primary whose init failed (the group goes
//   on without a primary: leave its shared state as it is).
using InitHook = absl::Status (*)(const InitContext& context);
using CleanupHook = void (*)(eal::ProcessType type, bool ends_group);

struct ComponentInfo {
  const char* name;  // a string literal, at most 31 characters
  Version version;
  uint32_t layout_version;
  int init_order = 0;
  InitHook init = nullptr;
  CleanupHook cleanup = nullptr;
};

// An init hook of a secondary returns this when the group's memory address range is
// taken in this process: eal::Init then leaves the group and re-executes the program
// once with address-space randomization off for this process only. `why` is the
// error reported if that is not possible or did not help.
absl::Status ReexecWithoutAslr(absl::string_view why);
bool IsReexecWithoutAslr(const absl::Status& status);
// True in a process that is such a re-execution.
bool IsAslrReexec();

// Thread-safe; called before main() by ComponentRegistrar.
void RegisterComponent(const ComponentInfo& info);

// The registered components sorted by name, with any ForTest overrides applied.
std::vector<ComponentInfo> RegisteredComponents();

// Makes this process claim `layout_version` for component `name` (to test refusal).
void SetLayoutVersionForTest(absl::string_view name, uint32_t layout_version);

struct ComponentRegistrar {
  explicit ComponentRegistrar(const ComponentInfo& info) { RegisterComponent(info); }
};

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_COMPONENTS_H_
