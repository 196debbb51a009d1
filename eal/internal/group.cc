#include "base/names.h"
#include "base/status.h"
#include "eal/internal/group.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <new>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "eal/internal/components.h"
#include "eal/internal/process.h"
#include "eal/internal/runtime_dir.h"
#include "base/log.h"
#include "base/robust_mutex.h"

namespace keel::eal_internal {
namespace {

using eal::ProcessType;

constexpr char kLockFile[] = "lock";
constexpr char kConfigFile[] = "config";
constexpr size_t kConfigSize = (sizeof(SharedConfig) + 4095) & ~size_t{4095};

// The fixed prefix of SharedConfig, read with pread() before mapping.
struct Header {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t init_state;
  int32_t primary_pid;
  uint32_t pad0;
  uint64_t primary_start_time;
};
static_assert(offsetof(SharedConfig, init_state) == offsetof(Header, init_state));
static_assert(offsetof(SharedConfig, primary_start_time) ==
              offsetof(Header, primary_start_time));

std::string Path(const std::string& dir, absl::string_view file) {
  return absl::StrCat(dir, "/", file);
}

uint32_t LocalLayoutVersion(absl::string_view component) {
  for (const ComponentInfo& c : RegisteredComponents()) {
    if (c.name == component) return c.layout_version;
  }
  return 0;
}

std::string ProgramName() {
  std::ifstream in("/proc/self/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

absl::string_view TypeName(uint32_t type) {
  return type == kSharedPrimary ? "primary" : "secondary";
}

std::string LcoreList(const ProcessSlot& slot) {
  std::vector<unsigned> ids;
  for (unsigned l = 0; l < eal::kMaxLcores; ++l) {
    if (slot.lcores[l / 64] & (uint64_t{1} << (l % 64))) ids.push_back(l);
  }
  return ids.empty() ? "none" : absl::StrJoin(ids, ",");
}

std::optional<Header> ReadHeader(const std::string& dir) {
  const int fd = ::open(Path(dir, kConfigFile).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  Header header;
  const ssize_t n = ::pread(fd, &header, sizeof(header), 0);
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof(header))) return std::nullopt;
  return header;
}

// True when some process holds the primary's OFD lock on `fd`'s file. Only asks:
// a secondary testing the lock must not take it, or it could make a starting primary
// fail.
bool PrimaryLockHeld(int fd) {
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return false;
  return fl.l_type != F_UNLCK;
}

// Frees the slots of dead processes and lcores whose owner is gone. Also repairs what
// a process killed mid-update left behind: an owner entry naming a free slot, or a slot
// that does not list the lcore.
void ReapLocked(SharedConfig* c) {
  for (int s = 0; s < kMaxProcesses; ++s) {
    ProcessSlot& slot = c->processes[s];
    if (slot.in_use && !IsAlive(slot.pid, slot.start_time)) {
      KEEL_LOG(Notice, "eal",
               "group \"%s\": %s process %d (%s) is gone; reclaiming its lcores %s", c->prefix,
               TypeName(slot.type), slot.pid, slot.name, LcoreList(slot));
      std::memset(&slot, 0, sizeof(slot));
    }
  }
  for (unsigned l = 0; l < eal::kMaxLcores; ++l) {
    const uint32_t owner = c->lcore_owner[l];
    if (owner == 0) continue;
    const bool valid = owner <= kMaxProcesses && c->processes[owner - 1].in_use &&
                       (c->processes[owner - 1].lcores[l / 64] & (uint64_t{1} << (l % 64)));
    if (!valid) {
      c->lcore_owner[l] = 0;
      std::memset(c->lcore_cpus[l], 0, sizeof(c->lcore_cpus[l]));
    }
  }
}

// Adds this process to the table and gives it its lcores. Returns the slot index.
absl::StatusOr<int> RegisterLocked(SharedConfig* c, uint32_t type,
                                   const eal::Options& options, uint64_t start_time) {
  ReapLocked(c);
  if (options.claim_lcores) {
    for (const auto& [lcore, cpus] : options.lcores) {
      const uint32_t owner = c->lcore_owner[lcore];
      if (owner != 0) {
        const ProcessSlot& holder = c->processes[owner - 1];
        return absl::FailedPreconditionError(absl::StrFormat(
            "lcore %u is already used by %s process %d (%s) of group \"%s\"; give this "
            "process other lcores (-l, --lcores)",
            lcore, TypeName(holder.type), holder.pid, holder.name, c->prefix));
      }
    }
  }
  int free_slot = -1;
  for (int s = 0; s < kMaxProcesses && free_slot < 0; ++s) {
    if (!c->processes[s].in_use) free_slot = s;
  }
  if (free_slot < 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "group \"%s\" already has %d processes, the most it can hold", c->prefix,
        kMaxProcesses));
  }
  ProcessSlot& slot = c->processes[free_slot];
  std::memset(&slot, 0, sizeof(slot));
  slot.type = type;
  slot.pid = ::getpid();
  slot.start_time = start_time;
  slot.attach_unix_ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  CopyName(slot.name, ProgramName());
  if (options.claim_lcores) {
    for (const auto& [lcore, cpus] : options.lcores) {
      slot.lcores[lcore / 64] |= uint64_t{1} << (lcore % 64);
      ++slot.lcore_count;
    }
  }
  // in_use before the owner entries: a reaper that finds an owner entry checks the slot.
  slot.in_use = 1;
  if (options.claim_lcores) {
    for (const auto& [lcore, cpus] : options.lcores) {
      c->lcore_owner[lcore] = static_cast<uint32_t>(free_slot) + 1;
      for (unsigned cpu = 0; cpu < eal::kMaxCpus; ++cpu) {
        if (cpus.test(cpu)) c->lcore_cpus[lcore][cpu / 64] |= uint64_t{1} << (cpu % 64);
      }
    }
  }
  return free_slot;
}

// Records this process's components in the group, or refuses a layout mismatch.
absl::Status MergeComponentsLocked(SharedConfig* c) {
  for (const ComponentInfo& local : RegisteredComponents()) {
    ComponentRecord* found = nullptr;
    for (uint32_t i = 0; i < c->component_count; ++i) {
      if (local.name == absl::string_view(c->components[i].name)) found = &c->components[i];
    }
    if (found != nullptr) {
      if (found->layout_version != local.layout_version) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "component \"%s\": group \"%s\" uses shared-layout version %u (%s %d.%d.%d), "
            "this process has layout version %u (%s %s); build every process of a group "
            "with compatible keel versions",
            local.name, c->prefix, found->layout_version, local.name, found->version[0],
            found->version[1], found->version[2], local.layout_version, local.name,
            ToString(local.version)));
      }
      continue;
    }
    if (c->component_count == kMaxComponents) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "group \"%s\": component table full (%d)", c->prefix, kMaxComponents));
    }
    ComponentRecord& record = c->components[c->component_count++];
    CopyName(record.name, local.name);
    record.layout_version = local.layout_version;
    record.version[0] = local.version.major;
    record.version[1] = local.version.minor;
    record.version[2] = local.version.patch;
  }
  return absl::OkStatus();
}

absl::StatusOr<SharedConfig*> MapConfig(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "cannot open", path);
  if ((flags & O_CREAT) != 0) {
    if (::ftruncate(fd, kConfigSize) != 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "cannot size", path);
    }
  } else {
    struct stat st;
    if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(kConfigSize)) {
      ::close(fd);
      return absl::FailedPreconditionError(
          absl::StrFormat("%s is smaller than a keel shared config", path));
    }
  }
  const int prot = (flags & O_ACCMODE) == O_RDONLY ? PROT_READ : PROT_READ | PROT_WRITE;
  void* addr = ::mmap(nullptr, kConfigSize, prot, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (addr == MAP_FAILED) return ErrnoStatus(err, "cannot map", path);
  return static_cast<SharedConfig*>(addr);
}

void UnmapConfig(SharedConfig* c) { ::munmap(c, kConfigSize); }

// Takes the primary lock on RUNDIR/lock. FailedPrecondition when another primary holds it.
absl::StatusOr<int> TakePrimaryLock(const std::string& dir, absl::string_view prefix) {
  const std::string path = Path(dir, kLockFile);
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (absl::Status s = MakePrivateDir(dir); !s.ok()) return s;
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // a primary shutting down removed the directory
      return ErrnoStatus(errno, "cannot create", path);
    }
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      const int err = errno;
      ::close(fd);
      if (err != EAGAIN && err != EACCES) return ErrnoStatus(err, "cannot lock", path);
      const std::optional<Header> header = ReadHeader(dir);
      return absl::FailedPreconditionError(absl::StrFormat(
          "file prefix \"%s\": a primary process%s is already running; attach to it with "
          "--proc-type=secondary (or auto), or use another --file-prefix",
          prefix, header ? absl::StrFormat(" (pid %d)", header->primary_pid) : ""));
    }
    // A primary shutting down unlinks the lock file while holding it; if we locked that
    // unlinked inode, try again on the new file.
    struct stat locked;
    struct stat current;
    if (::fstat(fd, &locked) == 0 && ::stat(path.c_str(), &current) == 0 &&
        locked.st_ino == current.st_ino && locked.st_dev == current.st_dev) {
      return fd;
    }
    ::close(fd);
  }
  return absl::UnavailableError(
      absl::StrFormat("file prefix \"%s\": the lock file %s keeps being replaced", prefix, path));
}

// With the primary lock held: removes what a dead primary left, unless processes of
// that group still run.
absl::Status CleanStaleState(const std::string& dir, absl::string_view prefix) {
  const std::string config_path = Path(dir, kConfigFile);
  const std::optional<Header> header = ReadHeader(dir);
  if (header.has_value()) {
    if (header->magic == kConfigMagic && header->layout_version == kLayoutVersion) {
      absl::StatusOr<SharedConfig*> old = MapConfig(config_path, O_RDONLY);
      if (old.ok()) {
        std::vector<std::string> alive;
        for (const ProcessSlot& slot : (*old)->processes) {
          if (slot.in_use && IsAlive(slot.pid, slot.start_time)) {
            alive.push_back(absl::StrFormat("%d (%s)", slot.pid, slot.name));
          }
        }
        UnmapConfig(*old);
        if (!alive.empty()) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "file prefix \"%s\": the previous primary (pid %d) is gone but processes %s "
              "of its group still run; stop them before starting a new primary",
              prefix, header->primary_pid, absl::StrJoin(alive, ", ")));
        }
      }
    }
    KEEL_LOG(Notice, "eal", "file prefix \"%s\": removing the stale state of primary pid %d",
             prefix, header->primary_pid);
  }
  return RemoveFilesExcept(dir, kLockFile);
}

}  // namespace

std::string BuildFingerprint() {
#if defined(__x86_64__)
  constexpr absl::string_view kArch = "x86_64";
#elif defined(__aarch64__)
  constexpr absl::string_view kArch = "aarch64";
#else
  constexpr absl::string_view kArch = "other";
#endif
#ifdef NDEBUG
  constexpr int kDebugChecks = 0;
#else
  constexpr int kDebugChecks = 1;
#endif
  return absl::StrFormat("arch=%s pointer=%d cacheline=64 debug-checks=%d", kArch,
                         sizeof(void*) * 8, kDebugChecks);
}

absl::StatusOr<std::unique_ptr<Group>> Group::Join(const eal::Options& options) {
  std::unique_ptr<Group> group(new Group);
  group->prefix_ = options.file_prefix;
  group->dir_ = RuntimeDir(options.file_prefix);
  const std::string& dir = group->dir_;
  const std::string& prefix = group->prefix_;

  absl::StatusOr<uint64_t> start_time = ProcessStartTime(::getpid());
  if (!start_time.ok()) return start_time.status();

  ProcessType type = options.proc_type;
  if (type == ProcessType::kAuto || type == ProcessType::kPrimary) {
    absl::StatusOr<int> lock = TakePrimaryLock(dir, prefix);
    if (lock.ok()) {
      type = ProcessType::kPrimary;
      group->lock_fd_ = *lock;
    } else if (type == ProcessType::kAuto && absl::IsFailedPrecondition(lock.status())) {
      type = ProcessType::kSecondary;
    } else {
      return lock.status();
    }
  }
  group->type_ = type;

  if (type == ProcessType::kPrimary) {
    if (absl::Status s = CleanStaleState(dir, prefix); !s.ok()) return s;
    const std::string tmp = Path(dir, "config.tmp");
    absl::StatusOr<SharedConfig*> mapped = MapConfig(tmp, O_RDWR | O_CREAT | O_EXCL);
    if (!mapped.ok()) return mapped.status();
    SharedConfig* c = new (*mapped) SharedConfig();
    group->config_ = c;
    c->magic = kConfigMagic;
    c->layout_version = LocalLayoutVersion("eal");
    c->primary_pid = ::getpid();
    c->primary_start_time = *start_time;
    absl::SNPrintF(c->fingerprint, sizeof(c->fingerprint), "%s", BuildFingerprint());
    absl::SNPrintF(c->prefix, sizeof(c->prefix), "%s", prefix);
    InitRobustMutex(&c->lock);
    {
      RobustLock lock(&c->lock, [c] { ReapLocked(c); });
      if (absl::Status s = MergeComponentsLocked(c); !s.ok()) return s;
      absl::StatusOr<int> slot = RegisterLocked(c, kSharedPrimary, options, *start_time);
      if (!slot.ok()) return slot.status();
      group->slot_ = *slot;
    }
    // Publish the complete file under its real name; secondaries never see a partial one.
    if (::rename(tmp.c_str(), Path(dir, kConfigFile).c_str()) != 0) {
      return ErrnoStatus(errno, "cannot publish", Path(dir, kConfigFile));
    }
    return group;
  }

  // Secondary: wait (bounded) for a live primary to finish init, then attach.
  const absl::Time deadline = absl::Now() + options.attach_timeout;
  absl::Duration delay = absl::Milliseconds(1);
  std::string waiting_for;
  while (true) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        return absl::UnavailableError(absl::StrFormat(
            "file prefix \"%s\": no primary process is running (no runtime directory %s)",
            prefix, dir));
      }
      return ErrnoStatus(errno, "cannot open runtime directory", dir);
    }
    const std::string lock_path = Path(dir, kLockFile);
    const int lock_fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (lock_fd < 0 && errno != ENOENT) return ErrnoStatus(errno, "cannot open", lock_path);
    const bool primary_running = lock_fd >= 0 && PrimaryLockHeld(lock_fd);
    if (lock_fd >= 0) ::close(lock_fd);
    const std::optional<Header> header = ReadHeader(dir);
    if (!primary_running) {
      if (header.has_value() && header->init_state == kInitializing) {
        return absl::UnavailableError(absl::StrFormat(
            "file prefix \"%s\": the primary process (pid %d) died during init", prefix,
            header->primary_pid));
      }
      return absl::UnavailableError(absl::StrFormat(
          "file prefix \"%s\": no primary process is running%s", prefix,
          header ? absl::StrFormat(" (the last one, pid %d, has exited)", header->primary_pid)
                 : ""));
    }
    if (!header.has_value()) {
      waiting_for = "the primary to create the shared config";
    } else if (header->magic != kConfigMagic) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "file prefix \"%s\": %s is not a keel shared config", prefix, Path(dir, kConfigFile)));
    } else if (header->layout_version != LocalLayoutVersion("eal")) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "component \"eal\": group \"%s\" uses shared-layout version %u, this process has "
          "layout version %u (eal %s); build every process of a group with compatible keel "
          "versions",
          prefix, header->layout_version, LocalLayoutVersion("eal"), ToString(eal::kVersion)));
    } else if (!IsAlive(header->primary_pid, header->primary_start_time)) {
      waiting_for = absl::StrFormat(
          "the new primary to replace the shared config of exited primary pid %d",
          header->primary_pid);
    } else if (header->init_state == kShutDown) {
      return absl::UnavailableError(absl::StrFormat(
          "file prefix \"%s\": the primary process (pid %d) is shutting down", prefix,
          header->primary_pid));
    } else if (header->init_state != kReady) {
      waiting_for = absl::StrFormat("primary pid %d to finish init", header->primary_pid);
    } else {
      absl::StatusOr<SharedConfig*> mapped = MapConfig(Path(dir, kConfigFile), O_RDWR);
      if (!mapped.ok()) return mapped.status();
      SharedConfig* c = *mapped;
      // A1: pairs with I0 (layout.h): seeing kReady makes the primary's init visible.
      if (c->init_state.load(std::memory_order_acquire) == kReady &&
          c->primary_pid == header->primary_pid) {
        group->config_ = c;
        break;
      }
      UnmapConfig(c);  // replaced between the pread and the mmap: look again
      waiting_for = "the shared config to settle";
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "file prefix \"%s\": gave up after %s waiting for %s (--attach-timeout)", prefix,
          absl::FormatDuration(options.attach_timeout), waiting_for));
    }
    absl::SleepFor(delay);
    delay = std::min(delay * 2, absl::Milliseconds(20));
  }

  SharedConfig* c = group->config_;
  const std::string fingerprint = BuildFingerprint();
  if (fingerprint != absl::string_view(c->fingerprint, strnlen(c->fingerprint, kFingerprintSize))) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "file prefix \"%s\": build fingerprint differs: the group's is \"%s\", this "
        "process's is \"%s\"",
        prefix, c->fingerprint, fingerprint));
  }
  {
    RobustLock lock(&c->lock, [c] { ReapLocked(c); });
    if (absl::Status s = MergeComponentsLocked(c); !s.ok()) return s;
    absl::StatusOr<int> slot = RegisterLocked(c, kSharedSecondary, options, *start_time);
    if (!slot.ok()) return slot.status();
    group->slot_ = *slot;
  }
  absl::StatusOr<int> pidfd = OpenPidfd(c->primary_pid, c->primary_start_time);
  if (!pidfd.ok()) {
    group->Leave().IgnoreError();
    return absl::UnavailableError(absl::StrFormat(
        "file prefix \"%s\": the primary process (pid %d) exited while this process attached",
        prefix, c->primary_pid));
  }
  group->primary_pidfd_ = *pidfd;
  return group;
}

Group::~Group() {
  if (config_ != nullptr) UnmapConfig(config_);
  if (primary_pidfd_ >= 0) ::close(primary_pidfd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void Group::MarkReady() {
  // I0 (layout.h).
  config_->init_state.store(kReady, std::memory_order_release);
}

bool Group::PrimaryAlive() const {
  if (type_ == ProcessType::kPrimary) return true;
  struct pollfd pfd = {primary_pidfd_, POLLIN, 0};
  return ::poll(&pfd, 1, 0) == 0;
}

absl::Status Group::Leave() {
  if (config_ == nullptr) return absl::FailedPreconditionError("not attached to a group");
  std::vector<std::string> still_attached;
  {
    RobustLock lock(&config_->lock, [this] { ReapLocked(config_); });
    ReapLocked(config_);
    if (slot_ >= 0) {
      ProcessSlot& slot = config_->processes[slot_];
      for (unsigned l = 0; l < eal::kMaxLcores; ++l) {
        if (config_->lcore_owner[l] == static_cast<uint32_t>(slot_) + 1) {
          config_->lcore_owner[l] = 0;
          std::memset(config_->lcore_cpus[l], 0, sizeof(config_->lcore_cpus[l]));
        }
      }
      std::memset(&slot, 0, sizeof(slot));
    }
    for (const ProcessSlot& slot : config_->processes) {
      if (slot.in_use) still_attached.push_back(absl::StrCat(slot.pid));
    }
  }
  absl::Status status;
  if (type_ == ProcessType::kPrimary) {
    config_->init_state.store(kShutDown, std::memory_order_release);
    if (!still_attached.empty()) {
      KEEL_LOG(Warning, "eal",
               "group \"%s\": primary shutting down while processes %s are attached", prefix_,
               absl::StrJoin(still_attached, ", "));
    }
    // Remove everything but the lock first, then the lock, then the directory: a new
    // primary racing with us either fails on our lock or starts from an empty directory.
    status = RemoveFilesExcept(dir_, kLockFile);
    ::unlink(Path(dir_, kLockFile).c_str());
    ::rmdir(dir_.c_str());
  }
  UnmapConfig(config_);
  config_ = nullptr;
  if (primary_pidfd_ >= 0) ::close(primary_pidfd_);
  primary_pidfd_ = -1;
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
  return status;
}

absl::StatusOr<eal::GroupInfo> Group::Describe() {
  if (config_ == nullptr) return absl::FailedPreconditionError("not attached to a group");
  eal::GroupInfo info;
  info.prefix = prefix_;
  info.runtime_dir = dir_;
  RobustLock lock(&config_->lock, [this] { ReapLocked(config_); });
  ReapLocked(config_);
  info.primary_pid = config_->primary_pid;
  for (int s = 0; s < kMaxProcesses; ++s) {
    const ProcessSlot& slot = config_->processes[s];
    if (!slot.in_use) continue;
    eal::ProcessInfo p;
    p.pid = slot.pid;
    p.type = slot.type == kSharedPrimary ? ProcessType::kPrimary : ProcessType::kSecondary;
    p.name = std::string(slot.name, strnlen(slot.name, kNameSize));
    for (unsigned l = 0; l < eal::kMaxLcores; ++l) {
      if (slot.lcores[l / 64] & (uint64_t{1} << (l % 64))) p.lcores.push_back(l);
    }
    p.attached = absl::FromUnixMillis(static_cast<int64_t>(slot.attach_unix_ms));
    p.is_self = s == slot_;
    info.processes.push_back(std::move(p));
  }
  for (uint32_t i = 0; i < config_->component_count; ++i) {
    const ComponentRecord& r = config_->components[i];
    info.components.push_back({std::string(r.name, strnlen(r.name, kNameSize)),
                               Version{r.version[0], r.version[1], r.version[2]},
                               r.layout_version});
  }
  for (unsigned l = 0; l < eal::kMaxLcores; ++l) {
    const uint32_t owner = config_->lcore_owner[l];
    if (owner == 0) continue;
    eal::LcoreOwner o;
    o.lcore = l;
    o.pid = config_->processes[owner - 1].pid;
    for (unsigned cpu = 0; cpu < eal::kMaxCpus; ++cpu) {
      if (config_->lcore_cpus[l][cpu / 64] & (uint64_t{1} << (cpu % 64))) o.cpus.set(cpu);
    }
    info.lcores.push_back(o);
  }
  return info;
}

}  // namespace keel::eal_internal
