// keel EAL: process setup, the primary/secondary process model, and lcores.
//
// A group of cooperating processes shares one --file-prefix. The first, the *primary*,
// creates the group's shared state; *secondaries* attach to it. Every process
// registers in the group's process table and owns its lcores exclusively: a process
// asking for an lcore that a live process of its group holds is refused. Dead
// processes (SIGKILL included) are detected and their lcores reclaimed.
//
//   int main(int argc, char** argv) {
//     absl::StatusOr<std::vector<std::string>> app_args = keel::eal::Init(argc, argv);
//     if (!app_args.ok()) { std::cerr << app_args.status() << "\n"; return 1; }
//     keel::eal::LaunchOnAllWorkers([] { return Work(); }, keel::eal::CallMain::kCall);
//     keel::eal::WaitAllLcores();
//     return keel::eal::Cleanup().ok() ? 0 : 1;
//   }
//
// Init and Cleanup are called from the main thread, once each. The library never exits
// or aborts on the caller's behalf: every failure comes back as a Status.
#ifndef KEEL_EAL_EAL_H_
#define KEEL_EAL_EAL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "base/version.h"
#include "eal/lcore.h"
#include "eal/options.h"

namespace keel::eal {

inline constexpr Version kVersion = {0, 1, 0};

// Parses the EAL options in argv[1..] (see options.h, or -h) and joins the group as
// primary or secondary. Returns the application's arguments: those after "--".
//
// Errors: InvalidArgument for a bad option (naming flag and value); FailedPrecondition
// when a primary already runs (for --proc-type=primary), when a layout version or the
// build fingerprint differ from the group's, or when an lcore is owned by another live
// process (naming its pid); Unavailable when a secondary finds no live primary;
// DeadlineExceeded when the primary does not finish init within --attach-timeout;
// PermissionDenied when the group's runtime directory belongs to another user.
// With -h the usage is printed to stdout and Init returns Cancelled: exit with 0.
absl::StatusOr<std::vector<std::string>> Init(int argc, char** argv);

// Init from options parsed, adjusted or built in code (Options::app_args are ignored).
// Runs ValidateOptions(options, MachineInfo::Current()) first, before touching the
// filesystem, the group or the process's threads: options the command line would
// refuse are refused alike (InvalidArgument naming the flag and the value) and nothing
// is created. Then the errors of Init(argc, argv).
absl::Status Init(const Options& options);

// Stops the worker lcore threads (they must be idle: call WaitAllLcores() first),
// unregisters the process and releases its lcores. The primary also removes the
// group's runtime files; secondaries still attached keep their mappings.
absl::Status Cleanup();
// A primary's planned exit that leaves its group running for the primary that asked
// for it (started with --takeover; see TakeoverRequestFd): as Cleanup, except that
// nothing of the group is removed and every component leaves its shared state to the
// next primary, which adopts it. Secondaries see the primary exit, then the new one.
absl::Status HandOver();
// In a primary: readable (poll/epoll) once another primary, started with --takeover,
// asks for the group; the program then finishes what it holds (its lcores idle, no
// object in hand) and calls HandOver(). -1 in a secondary. Owned by the EAL.
int TakeoverRequestFd();

bool Initialized();
// kPrimary or kSecondary (never kAuto). Requires Initialized().
ProcessType GetProcessType();
// The options Init was called with. Requires Initialized().
const Options& GetOptions();
// The group's runtime directory (see README: /var/run/keel/PREFIX as root).
std::string RuntimeDirectory();
// The command line eal::Init(argc, argv) was given, argv[0] included; empty when Init
// was given Options.
const std::vector<std::string>& Arguments();
// The runtime directory a group named `file_prefix` has (or would have): what tools
// that have not joined the group look in. Does not touch the file system.
std::string RuntimeDirectoryFor(absl::string_view file_prefix);
// This process's telemetry socket (RUNDIR/dpdk_telemetry.v2, with ":N" in a secondary),
// or "" without one (--no-telemetry, before Init, or when it could not be created).
std::string TelemetrySocketPath();

// In a secondary: a pidfd for the primary, readable (poll/epoll) once the primary has
// exited, SIGKILL included. -1 in the primary. After a primary adopted the group, a new
// call gives that primary's (the previous fd stays readable): a program that calls it
// again may never see the old one's readable, so it learns of an adoption by
// PrimaryGeneration() (or interrupts::kPrimaryAdopted). Owned by the EAL; do not close
// it.
int PrimaryExitFd();
// Whether the group has a primary that finished init: false once the primary has
// exited, true again once a primary adopted the group (--adopt) and finished its init.
// Always true in the primary. Never blocks.
bool PrimaryAlive();
// How many primaries the group has had: 1 for the one that created it, one more for
// each that adopted it (modulo 2^24). It changes when an adopting primary registers,
// before PrimaryAlive() turns true. Lock-free. 0 before Init.
uint32_t PrimaryGeneration();
// True in a primary that adopted its group (--adopt, or --proc-type=auto finding a group
// whose primary died) rather than creating it: the group's objects exist already, so
// the program looks them up (ring::Lookup, mempool::Lookup, ...) where a new primary
// would create them. Requires Initialized().
bool Adopted();

struct ProcessInfo {
  pid_t pid = 0;
  ProcessType type = ProcessType::kPrimary;
  std::string name;  // program name
  std::vector<unsigned> lcores;
  absl::Time attached;
  bool is_self = false;
};

struct ComponentVersion {
  std::string name;
  Version version;          // of the process that first brought it into the group
  uint32_t layout_version;  // shared-layout version every process must match
};

struct LcoreOwner {
  unsigned lcore = 0;
  pid_t pid = 0;
  CpuSet cpus;
};

struct GroupInfo {
  std::string prefix;
  std::string runtime_dir;
  pid_t primary_pid = 0;
  uint32_t primary_generation = 0;     // PrimaryGeneration()
  std::vector<ProcessInfo> processes;  // live processes; dead ones are reaped first
  std::vector<ComponentVersion> components;
  std::vector<LcoreOwner> lcores;  // owned lcores, by lcore id
};

// A snapshot of the group: processes, lcore owners, component versions. Reclaims the
// entries of dead processes. Thread-safe; takes the group's shared lock.
absl::StatusOr<GroupInfo> DescribeGroup();

// "eal 0.1.0 (layout 1)\n..." for every component linked into this process.
std::string ComponentVersionsText();

// Test hooks. Call before Init.
// Makes this process claim shared-layout version `layout_version` for `component`.
void SetLayoutVersionForTest(absl::string_view component, uint32_t layout_version);
// Makes a primary wait `delay` after joining, before it publishes init-complete.
void SetInitDelayForTest(absl::Duration delay);
// Takes the group's shared config lock, calls `on_held`, and holds the lock for `hold`
// (a test kills the process meanwhile). Requires Initialized().
absl::Status HoldConfigLockForTest(absl::Duration hold, const std::function<void()>& on_held);

}  // namespace keel::eal

#endif  // KEEL_EAL_EAL_H_
