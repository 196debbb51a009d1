// Joining and leaving a process group: the primary lock, the shared config, the
// process table and lcore ownership. Process-local handle; the shared part is
// eal_internal::SharedConfig (layout.h).
#ifndef KEEL_EAL_INTERNAL_GROUP_H_
#define KEEL_EAL_INTERNAL_GROUP_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
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
  // runtime files. The handle is unusable afterwards.
  absl::Status Leave();

  eal::ProcessType type() const { return type_; }
  const std::string& dir() const { return dir_; }
  // Secondary: a pidfd for the primary; -1 in the primary and when the primary runs in
  // another PID namespace (its pid means nothing here; PrimaryAlive still answers).
  int primary_pidfd() const { return primary_pidfd_; }
  // The primary's pid as the shared config records it (as the primary's PID namespace
  // sees it).
  pid_t primary_pid() const;
  // By the primary's slot lock (layout.h). Never blocks.
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
  // Secondary: waits (bounded by --attach-timeout) for a live primary to finish init,
  // then maps its config.
  absl::Status WaitForReadyConfig(const eal::Options& options);
  // Registers this process in the mapped config (under its lock).
  absl::Status Register(uint32_t type, const eal::Options& options);

  eal::ProcessType type_ = eal::ProcessType::kPrimary;
  std::string prefix_;
  std::string dir_;
  int lock_fd_ = -1;        // primary: holds the OFD write lock on RUNDIR/lock
  int config_fd_ = -1;      // RUNDIR/config; holds our slot's liveness lock
  int probe_fd_ = -1;       // RUNDIR/config again, holding no lock: probes others' slots
  int primary_pidfd_ = -1;  // secondary, same PID namespace as the primary
  int slot_ = -1;           // our index in SharedConfig::processes
  SharedConfig* config_ = nullptr;
};

// The build fingerprint: what, besides layout versions, must match for two builds
// to share memory (architecture, cache line, debug checks).
std::string BuildFingerprint();

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_GROUP_H_
