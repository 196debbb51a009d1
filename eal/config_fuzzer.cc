// Fuzz target: a group's shared config (RUNDIR/config) as a secondary reads it before
// registering: ValidateConfig, then, with the lock (here: on a private copy), the
// component table (MergeComponentsLocked) and the reaping of dead processes' slots and
// lcores (ReapLocked). Input: one byte of flags, 8 bytes of slot liveness, then the
// file's bytes (zero-padded to a whole config).
//   flags bit 0: rewrite the checksum to match, so the checks past it are reached;
//   flags bit 1: expect the prefix the file names (else "fuzz", the corpus's);
//   liveness: bit S set = a process holds slot S's liveness lock.
// Whatever the bytes, nothing crashes, and a config that passes leaves the lcore table
// consistent: every owned lcore names an in-use, live slot that lists it.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "base/names.h"
#include "base/ofd_lock.h"
#include "eal/internal/group.h"
#include "eal/internal/layout.h"
#include "fuzz/inputs.h"

namespace {

using keel::fuzz::Check;

using keel::eal_internal::kMaxProcesses;
using keel::eal_internal::SharedConfig;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kPreamble = 9;
  // The file is sizeof(SharedConfig) rounded up to pages: what lies past the struct is
  // never read.
  constexpr size_t kFileSize = (sizeof(SharedConfig) + 4095) & ~size_t{4095};
  if (size < kPreamble || size > kPreamble + kFileSize) return -1;
  const uint8_t flags = data[0];
  uint64_t alive = 0;
  std::memcpy(&alive, data + 1, sizeof(alive));
  // A zeroed config with the input over its start (the mutex's bytes included: the
  // checks never lock it).
  auto config = std::make_unique<SharedConfig>();
  std::memset(static_cast<void*>(config.get()), 0, sizeof(SharedConfig));
  std::memcpy(static_cast<void*>(config.get()), data + kPreamble,
              std::min(size - kPreamble, sizeof(SharedConfig)));
  SharedConfig& c = *config;
  if ((flags & 1) != 0) c.checksum = keel::eal_internal::HeaderChecksum(c);
  const std::string prefix =
      (flags & 2) != 0 ? std::string(keel::NameOf(c.prefix)) : std::string("fuzz");

  if (!keel::eal_internal::ValidateConfig(c, "RUNDIR/config", prefix).ok()) return 0;
  Check(keel::eal_internal::UnpackPrimary(c.primary.load()).slot < kMaxProcesses &&
        c.component_count <= keel::eal_internal::kMaxComponents);
  const absl::Status merged = keel::eal_internal::MergeComponentsLocked(&c);
  Check(c.component_count <= keel::eal_internal::kMaxComponents);
  if (!merged.ok()) return 0;

  // The liveness locks, held by another open file description of the probed file.
  const int probe = memfd_create("fuzz-config", MFD_CLOEXEC);
  Check(probe >= 0);
  const int holder = open(absl::StrFormat("/proc/self/fd/%d", probe).c_str(), O_RDWR | O_CLOEXEC);
  Check(holder >= 0);
  for (int s = 0; s < kMaxProcesses; ++s) {
    if ((alive >> s) & 1) {
      Check(keel::TryLock(holder, keel::LockType::kShared, keel::eal_internal::SlotLockByte(s), 1)
                .ok());
    }
  }
  keel::eal_internal::ReapLocked(&c, probe);
  close(holder);
  close(probe);
  for (unsigned l = 0; l < keel::eal::kMaxLcores; ++l) {
    const uint32_t owner = c.lcore_owner[l];
    if (owner == 0) continue;
    Check(owner <= kMaxProcesses);
    const keel::eal_internal::ProcessSlot& slot = c.processes[owner - 1];
    Check(slot.in_use != 0 && ((alive >> (owner - 1)) & 1) != 0);
    Check((slot.lcores[l / 64] >> (l % 64)) & 1);
  }
  for (int s = 0; s < kMaxProcesses; ++s) {
    if (c.processes[s].in_use != 0) Check((alive >> s) & 1);
  }
  return 0;
}
