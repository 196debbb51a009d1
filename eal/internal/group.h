// Joining and leaving a process group: the primary lock, the shared config, the
// process table and lcore ownership. Process-local handle; the shared part is
// eal_internal::SharedConfig (layout.h).
#ifndef KEEL_EAL_INTERNAL_GROUP_H_
#define KEEL_EAL_INTERNAL_GROUP_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "eal/eal.h"
#include "eal/internal/layout.h"

namespace keel::eal_internal {

class Group {
 public:
  // Joins the group named by options.file_prefix as options.proc_type (kAuto resolved
  // here), claiming options.lcores unless !options.claim_lcores. A primary has not yet
  // published kReady: call MarkReady() once every component has initialized.
  static absl::StatusOr<std::unique_ptr<Group>> Join(const eal::Options& options);

  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;
  // Unmaps and closes without unregistering (as if the process had died).
  ~Group();

  // Primary only: publishes kReady (I0 in layout.h).
  void MarkReady();
  // Unregisters this process and releases its lcores; the primary also removes the
  // runtime files when `ends_group` (an adopting primary whose init failed does not:
  // the group waits for another). The handle is unusable afterwards.
  absl::Status Leave(bool ends_group = true);

  eal::ProcessType type() const { return type_; }
  // A primary that took over a live group (--adopt, --takeover or --proc-type=auto).
  bool adopting() const { return adopting_; }
  // Primary: readable when another primary asks for the group (--takeover); -1 in a
  // secondary.
  int takeover_fd() const { return takeover_fd_; }
  // Primary: the pid of the last process that asked, 0 when none did (reads the
  // requests queued).
  pid_t TakeoverRequester();
  // Primary, before Leave(false) at a hand-over: secondaries that attach meanwhile wait
  // for the next primary instead of failing, and it adopts the group even when none
  // of its secondaries runs.
  void MarkHandedOver();
  const std::string& dir() const { return dir_; }
  // Secondary: a pidfd for the current primary (reopened once a primary adopted the
  // group; the previous ones stay open until Leave); -1 in the primary and when the
  // primary runs in another PID namespace (its pid means nothing here; PrimaryAlive
  // still answers). Thread-safe.
  int PrimaryExitFd();
  // The primary as the shared config records it now (pid as the primary's PID
  // namespace sees it). Lock-free.
  PrimaryIdentity primary() const;
  // The group has a primary that finished init: by init_state and the primary's slot
  // lock (layout.h). Always true in the primary. Never blocks.
  bool PrimaryAlive() const;
  absl::StatusOr<eal::GroupInfo> Describe();
  // Process tokens (identity.h). Lock-free.
  uint32_t SelfToken() const;
  bool TokenAlive(uint32_t token) const;
  uint32_t LcoreOwnerToken(unsigned lcore) const;
  // eal::HoldConfigLockForTest.
  absl::Status HoldLockForTest(absl::Duration hold, const std::function<void()>& on_held);

 private:
  Group() = default;

  // The two ways in. Each leaves config_, config_fd_, probe_fd_ and slot_ set.
  absl::Status CreateAsPrimary(const eal::Options& options);
  absl::Status AttachAsSecondary(const eal::Options& options);
  // Primary: creates RUNDIR/takeover and opens it as takeover_fd_.
  absl::Status OpenTakeoverFifo();
  // A primary taking over the live group of dead primary `dead_primary`.
  absl::Status AdoptAsPrimary(const eal::Options& options, pid_t dead_primary);
  // Opens a pidfd for `primary` and makes it primary_pidfd_; false when it is not alive
  // (its slot's lock is free).
  bool OpenPrimaryPidfdLocked(const PrimaryIdentity& primary)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pidfd_mu_);
  // Secondary: waits (bounded by --attach-timeout) for a live primary to finish init,
  // then maps its config.
  absl::Status WaitForReadyConfig(const eal::Options& options, absl::Time deadline);
  // Registers this process in the mapped config (under its lock); an adopting primary
  // also publishes itself as the primary (P1 in layout.h).
  absl::Status Register(uint32_t type, const eal::Options& options);

  eal::ProcessType type_ = eal::ProcessType::kPrimary;
  std::string prefix_;
  std::string dir_;
  int lock_fd_ = -1;    // primary: holds the OFD write lock on RUNDIR/lock
  int config_fd_ = -1;  // RUNDIR/config; holds our slot's liveness lock
  int probe_fd_ = -1;   // RUNDIR/config again, holding no lock: probes others' slots
  bool adopting_ = false;
  int takeover_fd_ = -1;  // primary: RUNDIR/takeover, read end
  absl::Mutex pidfd_mu_;
  int primary_pidfd_ ABSL_GUARDED_BY(pidfd_mu_) = -1;  // see PrimaryExitFd
  uint32_t pidfd_generation_ ABSL_GUARDED_BY(pidfd_mu_) = 0;
  std::vector<int> retired_pidfds_ ABSL_GUARDED_BY(pidfd_mu_);
  int slot_ = -1;  // our index in SharedConfig::processes
  SharedConfig* config_ = nullptr;
};

// What a secondary reads of a group's config file (RUNDIR/config, mapped) before it
// registers: untrusted input. Group::Join and the attach fuzzer (eal/config_fuzzer.cc)
// share these.
//
// FNV-1a of the header fields the primary writes once (layout.h), init_state and the
// checksum taken as zero.
uint64_t HeaderChecksum(const SharedConfig& c);
// The header is as the primary wrote it and names the group of `prefix`.
// FailedPrecondition naming `path` otherwise.
absl::Status ValidateConfig(const SharedConfig& c, const std::string& path,
                            absl::string_view prefix);
// With the config lock held: records this process's components in the group, or
// refuses a layout mismatch (FailedPrecondition) or a full table (ResourceExhausted).
absl::Status MergeComponentsLocked(SharedConfig* c);
// With the config lock held: frees the slots of dead processes (their liveness byte on
// `probe_fd` is unlocked) and the lcores they owned, and repairs what a process killed
// mid-update left: afterwards every lcore owner names an in-use slot that lists it.
void ReapLocked(SharedConfig* c, int probe_fd);

// The build fingerprint: what, besides layout versions, must match for two builds
// to share memory (architecture, cache line, debug checks).
std::string BuildFingerprint();

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_GROUP_H_
