// The EAL's shared config: one file per process group, RUNDIR/config, mapped by every
// process of the group.
//
// Shared-memory rules (every layout.h in keel follows them):
// - Only standard-layout, trivially copyable structs; static_assert'ed below.
// - Atomics are std::atomic<uint32_t|uint64_t> and always lock-free.
// - No pointers to process-local things, no function pointers, no vtables, no
//   std::string, no absl::Mutex. Names are fixed char arrays, references are indices.
// - Cross-process locks are robust pthread mutexes; a process killed while holding one
//   does not wedge the others (EOWNERDEAD -> pthread_mutex_consistent, then the table
//   is repaired by reaping).
// - The struct carries kLayoutVersion; a process built with another is refused.
// - Everything read from the file is untrusted: indices are bounded, names are read
//   with NameOf and escaped in messages, and the header is checksummed.
//
// Life cycle: the primary builds the file as RUNDIR/config.tmp, fills the header,
// registers itself, and rename()s it into place, so a secondary never sees a partial
// file. It sets `init_state` to kReady once every component finished init; secondaries
// wait for that. RUNDIR/lock carries the primary's OFD write lock for its lifetime.
//
// Adoption (docs/hot_restart.md): when the primary dies and secondaries live, a new
// primary takes RUNDIR/lock and maps this same file; under `lock` it sets `init_state`
// back to kInitializing, registers in a free slot and publishes itself in `primary`
// with the next generation (a kill between any two steps leaves a group without a
// primary, which the next adopter takes). Its MarkReady() is the same I0 as a first
// primary's. No secondary registers in the slot `primary` names.
//
// Liveness (base/ofd_lock.h): the process in processes[S] holds an OFD write lock on byte
// SlotLockByte(S) of this file for its lifetime. A slot whose byte is not locked is
// dead, whatever its pid says. The order that makes a kill harmless:
//   register: lock the byte, fill the slot, set in_use, then own lcores;
//   leave:    release the lcores, clear the slot, then unlock the byte.
// A kill between any two steps leaves a slot that is free, or in use with its byte
// unlocked (reaped by the next process that takes the config lock).
#ifndef KEEL_EAL_INTERNAL_LAYOUT_H_
#define KEEL_EAL_INTERNAL_LAYOUT_H_

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "eal/options.h"

namespace keel::eal_internal {

// Bump on any change to the structs in this file.
inline constexpr uint32_t kLayoutVersion = 4;
inline constexpr uint64_t kConfigMagic = 0x316766636c65656bULL;  // "keelcfg1"

inline constexpr int kMaxProcesses = 64;
inline constexpr int kMaxComponents = 32;
inline constexpr int kNameSize = 32;
inline constexpr int kFingerprintSize = 128;
inline constexpr int kLcoreWords = eal::kMaxLcores / 64;
inline constexpr int kCpuWords = eal::kMaxCpus / 64;

enum InitState : uint32_t {
  kInitializing = 0,  // the primary is still initializing
  kReady = 1,         // secondaries may attach
  kShutDown = 2,      // the primary shut down cleanly
  kHandedOver = 3,    // the primary left the group to the one that asked (eal::HandOver)
};

enum SharedProcessType : uint32_t { kSharedPrimary = 0, kSharedSecondary = 1 };

// Who the group's primary is: one 64-bit word, so that a reader never sees half of an
// adoption. generation is 1 for the primary that created the group and one more for each
// primary that adopted it (modulo 2^24).
struct PrimaryIdentity {
  pid_t pid = 0;  // as the primary's PID namespace sees it
  uint32_t slot = 0;
  uint32_t generation = 0;
};
inline constexpr uint32_t kGenerationMask = (1u << 24) - 1;
inline uint64_t PackPrimary(const PrimaryIdentity& p) {
  return static_cast<uint32_t>(p.pid) | uint64_t{p.slot & 0xff} << 32 |
         uint64_t{p.generation & kGenerationMask} << 40;
}
inline PrimaryIdentity UnpackPrimary(uint64_t word) {
  return {static_cast<pid_t>(static_cast<uint32_t>(word)), static_cast<uint32_t>(word >> 32) & 0xff,
          static_cast<uint32_t>(word >> 40)};
}

// One component's versions, as first recorded in the group.
struct ComponentRecord {
  char name[kNameSize];
  uint32_t layout_version;
  int32_t version[3];  // major, minor, patch of the process that recorded it
};

// One attached process. Guarded by SharedConfig::lock.
struct ProcessSlot {
  uint32_t in_use;
  uint32_t type;  // SharedProcessType
  int32_t pid;    // as its own PID namespace sees it
  uint32_t lcore_count;
  uint64_t attach_unix_ms;
  // Numbers the registrations of the group: with the slot index it names this process
  // for components that record who holds what (eal_internal::SelfToken), and differs
  // from that of any earlier process in the same slot.
  uint32_t incarnation;
  uint32_t reserved;
  uint64_t lcores[kLcoreWords];  // bit N = owns lcore N
  char name[kNameSize];          // program name (/proc/PID/comm)
};

struct SharedConfig {
  // Fixed prefix: read with pread() before mapping, so a secondary of another layout
  // version gets a clear refusal instead of misreading the rest.
  uint64_t magic;
  uint32_t layout_version;
  // I0: release-store of kReady by the primary at the end of init. Pairs with the
  // acquire-load in AttachSecondary(): a secondary that sees kReady sees every shared
  // object the primary created during init.
  std::atomic<uint32_t> init_state;
  // P1: PackPrimary(). Stored by the creating primary before the file is published and
  // by an adopting primary under `lock` once it is registered (release, after
  // primary_pid_namespace); read lock-free (acquire). Its slot names the primary's
  // liveness byte: a reader that sees the new word and probes that byte learns whether
  // the new primary lives.
  std::atomic<uint64_t> primary;
  // The primary's PID namespace (process.h's PidNamespaceId), 0 when unknown.
  std::atomic<uint64_t> primary_pid_namespace;
  // FNV-1a of the fields above and below it up to `lock` (init_state, primary and
  // primary_pid_namespace excluded: they change), written once before the file is
  // published: a file changed since is refused.
  uint64_t checksum;
  char fingerprint[kFingerprintSize];
  char prefix[72];

  // Robust, process-shared. Guards everything below it.
  pthread_mutex_t lock;
  uint32_t component_count;
  // The incarnation of the last registered process; each registration takes the next.
  uint32_t last_incarnation;
  ComponentRecord components[kMaxComponents];
  ProcessSlot processes[kMaxProcesses];
  // lcore N is owned by processes[lcore_owner[N] - 1]; 0 = free.
  uint32_t lcore_owner[eal::kMaxLcores];
  // The CPUs of each owned lcore, for tools.
  uint64_t lcore_cpus[eal::kMaxLcores][kCpuWords];
};

static_assert(std::is_standard_layout_v<SharedConfig>);
static_assert(std::is_trivially_copyable_v<ComponentRecord>);
static_assert(std::is_trivially_copyable_v<ProcessSlot>);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
static_assert(offsetof(SharedConfig, layout_version) == 8);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// The byte of RUNDIR/config whose lock says processes[slot] is alive: past the end of
// the mapped file, so no process's mapping is affected.
inline constexpr off_t kSlotLockBase = off_t{1} << 30;
inline constexpr off_t SlotLockByte(uint32_t slot) { return kSlotLockBase + slot; }

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_LAYOUT_H_
