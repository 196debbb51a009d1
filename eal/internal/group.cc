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
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/checksum.h"
#include "base/kill_point.h"
#include "base/log.h"
#include "base/names.h"
#include "base/ofd_lock.h"
#include "base/robust_mutex.h"
#include "base/status.h"
#include "eal/internal/components.h"
#include "eal/internal/identity.h"
#include "eal/internal/process.h"
#include "eal/internal/runtime_dir.h"

namespace keel::eal_internal {
namespace {

using eal::ProcessType;

constexpr char kLockFile[] = "lock";
constexpr char kConfigFile[] = "config";
// A FIFO the primary reads takeover requests from (TakeoverRequestFd).
constexpr char kTakeoverFile[] = "takeover";
constexpr uint32_t kTakeoverMagic = 0x6b6f7674;  // "tvok"

// One request on the FIFO: 8 bytes, written whole (PIPE_BUF makes it atomic).
struct TakeoverRequest {
  uint32_t magic;
  int32_t pid;
};
constexpr char kConfigLockName[] = "eal config lock";
constexpr size_t kConfigSize = (sizeof(SharedConfig) + 4095) & ~size_t{4095};

// The fixed prefix of SharedConfig, read with pread() before mapping.
struct Header {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t init_state;
  uint64_t primary;  // PackPrimary()
};
static_assert(offsetof(SharedConfig, init_state) == offsetof(Header, init_state));
static_assert(offsetof(SharedConfig, primary) == offsetof(Header, primary));

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

absl::Status EalLayoutMismatch(absl::string_view prefix, uint32_t group_version) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "component \"eal\": group \"%s\" uses shared-layout version %u, this process has "
      "layout version %u (eal %s); build every process of a group with compatible keel "
      "versions",
      prefix, group_version, LocalLayoutVersion("eal"), ToString(eal::kVersion)));
}

// The config's fingerprint is this build's, or FailedPrecondition naming both.
absl::Status CheckFingerprint(const SharedConfig& c, absl::string_view prefix) {
  const std::string fingerprint = BuildFingerprint();
  if (fingerprint == NameOf(c.fingerprint)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrFormat("file prefix \"%s\": build fingerprint differs: the group's is \"%s\", "
                      "this process's is \"%s\"",
                      prefix, Printable(NameOf(c.fingerprint)), fingerprint));
}

absl::string_view TypeName(uint32_t type) {
  return type == kSharedPrimary ? "primary" : "secondary";
}

// "pid 12 (name)", escaped: slot contents are read from a shared file.
std::string Who(const ProcessSlot& slot) {
  return absl::StrFormat("%s process %d (%s)", TypeName(slot.type), slot.pid,
                         Printable(NameOf(slot.name)));
}

std::string LcoreList(const ProcessSlot& slot) {
  std::vector<unsigned> ids;
  for (unsigned l = 0; l < eal::kMaxLcores; ++l) {
    if (slot.lcores[l / 64] & (uint64_t{1} << (l % 64))) ids.push_back(l);
  }
  return ids.empty() ? "none" : absl::StrJoin(ids, ",");
}

}  // namespace

uint64_t HeaderChecksum(const SharedConfig& c) {
  unsigned char bytes[offsetof(SharedConfig, lock)];
  std::memcpy(bytes, &c, sizeof(bytes));
  // init_state, the primary's identity and the checksum itself.
  constexpr size_t kMutable = offsetof(SharedConfig, init_state);
  std::memset(bytes + kMutable, 0, offsetof(SharedConfig, checksum) + sizeof(uint64_t) - kMutable);
  return Fnv1a64(bytes, sizeof(bytes));
}

namespace {

// An open RUNDIR/config (holding no lock) and its header, or nullopt when there is
// none or it is shorter than a header.
struct ConfigFile {
  int fd = -1;
  Header header;
  ~ConfigFile() {
    if (fd >= 0) ::close(fd);
  }
  PrimaryIdentity primary() const { return UnpackPrimary(header.primary); }
  // True when the process in the primary's slot still holds its liveness lock.
  bool PrimaryAlive() const {
    return primary().slot < kMaxProcesses && LockHeld(fd, SlotLockByte(primary().slot), 1);
  }
};

std::unique_ptr<ConfigFile> OpenConfigFile(const std::string& dir, int flags) {
  auto file = std::make_unique<ConfigFile>();
  file->fd = ::open(Path(dir, kConfigFile).c_str(), flags | O_CLOEXEC);
  if (file->fd < 0) return nullptr;
  if (::pread(file->fd, &file->header, sizeof(Header), 0) != sizeof(Header)) return nullptr;
  return file;
}

}  // namespace

void ReapLocked(SharedConfig* c, int probe_fd) {
  for (int s = 0; s < kMaxProcesses; ++s) {
    ProcessSlot& slot = c->processes[s];
    if (slot.in_use && !LockHeld(probe_fd, SlotLockByte(s), 1)) {
      KEEL_LOG(Notice, "eal", "group \"%s\": %s is gone; reclaiming its lcores %s",
               Printable(NameOf(c->prefix)), Who(slot), LcoreList(slot));
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

absl::Status MergeComponentsLocked(SharedConfig* c) {
  const std::string prefix = Printable(NameOf(c->prefix));
  for (const ComponentInfo& local : RegisteredComponents()) {
    const uint32_t count = std::min<uint32_t>(c->component_count, kMaxComponents);
    ComponentRecord* found = nullptr;
    for (uint32_t i = 0; i < count; ++i) {
      if (local.name == NameOf(c->components[i].name)) found = &c->components[i];
    }
    if (found != nullptr) {
      if (found->layout_version != local.layout_version) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "component \"%s\": group \"%s\" uses shared-layout version %u (%s %d.%d.%d), "
            "this process has layout version %u (%s %s); build every process of a group "
            "with compatible keel versions",
            local.name, prefix, found->layout_version, local.name, found->version[0],
            found->version[1], found->version[2], local.layout_version, local.name,
            ToString(local.version)));
      }
      continue;
    }
    if (count == kMaxComponents) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("group \"%s\": component table full (%d)", prefix, kMaxComponents));
    }
    ComponentRecord& record = c->components[count];
    CopyName(record.name, local.name);
    record.layout_version = local.layout_version;
    record.version[0] = local.version.major;
    record.version[1] = local.version.minor;
    record.version[2] = local.version.patch;
    // Last: a kill before this line leaves the record unused.
    c->component_count = count + 1;
  }
  return absl::OkStatus();
}

namespace {

// Maps the config open as `fd` (`path` names it in errors); `create` sizes it first.
absl::StatusOr<SharedConfig*> MapConfig(int fd, const std::string& path, bool create) {
  if (create) {
    if (::ftruncate(fd, kConfigSize) != 0) return ErrnoStatus(errno, "cannot size", path);
  } else {
    struct stat st;
    if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, "cannot stat", path);
    if (st.st_size != static_cast<off_t>(kConfigSize)) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s has %d bytes, a keel shared config has %d: the file is damaged", path,
                          st.st_size, kConfigSize));
    }
  }
  void* addr = ::mmap(nullptr, kConfigSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return ErrnoStatus(errno, "cannot map", path);
  return static_cast<SharedConfig*>(addr);
}

void UnmapConfig(SharedConfig* c) { ::munmap(c, kConfigSize); }

}  // namespace

absl::Status ValidateConfig(const SharedConfig& c, const std::string& path,
                            absl::string_view prefix) {
  if (c.checksum != HeaderChecksum(c)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: the header checksum does not match (the file was changed after the primary "
        "wrote it); stop the group's processes and start it again",
        path));
  }
  // Relaxed: bounds only; the reader loads the word again where it uses it.
  const uint32_t primary_slot = UnpackPrimary(c.primary.load(std::memory_order_relaxed)).slot;
  if (primary_slot >= kMaxProcesses || c.component_count > kMaxComponents ||
      NameOf(c.prefix) != prefix) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: the config is inconsistent (primary slot %u, %u components, prefix \"%s\")", path,
        primary_slot, c.component_count, Printable(NameOf(c.prefix))));
  }
  return absl::OkStatus();
}

namespace {

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
    if (absl::Status locked = TryLock(fd, LockType::kExclusive); !locked.ok()) {
      ::close(fd);
      if (!absl::IsUnavailable(locked)) {
        return absl::Status(locked.code(), absl::StrCat(path, ": ", locked.message()));
      }
      const std::unique_ptr<ConfigFile> config = OpenConfigFile(dir, O_RDONLY);
      return absl::FailedPreconditionError(absl::StrFormat(
          "file prefix \"%s\": a primary process%s is already running; attach to it with "
          "--proc-type=secondary (or auto), or use another --file-prefix",
          prefix, config != nullptr ? absl::StrFormat(" (pid %d)", config->primary().pid) : ""));
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

// What a dead primary left in RUNDIR (read with the primary lock held).
struct OldGroup {
  bool exists = false;       // RUNDIR/config is there
  bool handed_over = false;  // its primary left it to the next (kHandedOver)
  pid_t primary_pid = 0;
  // Its processes that still run — any process holding a slot lock of the old config,
  // whatever PID namespace it is in: "pid (name)".
  std::vector<std::string> alive;
};

OldGroup InspectOldGroup(const std::string& dir) {
  OldGroup group;
  if (std::unique_ptr<ConfigFile> old = OpenConfigFile(dir, O_RDONLY); old != nullptr) {
    group.exists = true;
    group.handed_over = old->header.init_state == kHandedOver;
    group.primary_pid = old->primary().pid;
    std::vector<std::string>& alive = group.alive;
    for (int s = 0; s < kMaxProcesses; ++s) {
      if (!LockHeld(old->fd, SlotLockByte(s), 1)) continue;
      ProcessSlot slot;
      const off_t at = offsetof(SharedConfig, processes) + s * sizeof(ProcessSlot);
      if (::pread(old->fd, &slot, sizeof(slot), at) == sizeof(slot) && slot.in_use) {
        alive.push_back(absl::StrFormat("%d (%s)", slot.pid, Printable(NameOf(slot.name))));
      } else {
        alive.push_back(absl::StrFormat("in slot %d", s));
      }
    }
  }
  return group;
}

// A primary is running (it holds RUNDIR/lock): asks it to hand its group over and waits,
// bounded by --attach-timeout, until it has released the lock; returns the lock.
absl::StatusOr<int> RequestTakeover(const std::string& dir, absl::string_view prefix,
                                    absl::Duration timeout) {
  const std::string path = Path(dir, kTakeoverFile);
  const std::unique_ptr<ConfigFile> config = OpenConfigFile(dir, O_RDONLY);
  const pid_t running = config != nullptr ? config->primary().pid : 0;
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration delay = absl::Microseconds(100);
  bool asked = false;
  int open_error = 0;  // why the request could not be written yet
  while (true) {
    // The primary may have gone (handed over, or died): then the lock is ours.
    absl::StatusOr<int> lock = TakePrimaryLock(dir, prefix);
    if (lock.ok() || !absl::IsFailedPrecondition(lock.status())) return lock;
    if (!asked) {
      const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      open_error = fd < 0 ? errno : 0;
      // No reader (ENXIO) or no FIFO yet: a primary in its init, adopting a group, still
      // has the dead one's or none; it makes its own before it reads requests.
      if (fd < 0 && open_error != ENXIO && open_error != ENOENT) break;
      if (fd >= 0) {
        const TakeoverRequest request = {kTakeoverMagic, ::getpid()};
        const ssize_t wrote = ::write(fd, &request, sizeof(request));
        const int err = errno;
        ::close(fd);
        if (wrote != sizeof(request)) {
          return ErrnoStatus(wrote < 0 ? err : EIO, "--takeover: cannot write to", path);
        }
        asked = true;
        KEEL_LOG(Notice, "eal", "file prefix \"%s\": asked primary pid %d to hand its group over",
                 prefix, running);
      }
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(delay);
    delay = std::min(delay * 2, absl::Milliseconds(2));
  }
  if (!asked) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "--takeover: the running primary (pid %d) of file prefix \"%s\" takes no takeover "
        "requests (%s: %s)",
        running, prefix, path, std::strerror(open_error)));
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "--takeover: the primary (pid %d) of file prefix \"%s\" did not hand its group over "
      "within %s (--attach-timeout); its program must watch eal::TakeoverRequestFd() and "
      "call eal::HandOver()",
      running, prefix, absl::FormatDuration(timeout)));
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
  // ValidateOptions checked the prefix; a name that leaves the runtime base is refused
  // here too, before anything is created or cleaned (RuntimeDir(prefix) must be a
  // directory of the base's own).
  const absl::string_view prefix = options.file_prefix;
  if (prefix.empty() || prefix == "." || prefix == ".." ||
      prefix.find('/') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--file-prefix \"%s\" is not a directory name", Printable(prefix)));
  }
  std::unique_ptr<Group> group(new Group);
  group->prefix_ = options.file_prefix;
  group->dir_ = RuntimeDir(options.file_prefix);

  ProcessType type = options.proc_type;
  bool asked = false;  // --takeover: a running primary was asked for the group
  if (type == ProcessType::kAuto || type == ProcessType::kPrimary) {
    absl::StatusOr<int> lock = TakePrimaryLock(group->dir_, group->prefix_);
    if (!lock.ok() && options.takeover && absl::IsFailedPrecondition(lock.status())) {
      lock = RequestTakeover(group->dir_, group->prefix_, options.attach_timeout);
      asked = lock.ok();
    }
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
  absl::Status joined;
  if (type == ProcessType::kSecondary) {
    joined = group->AttachAsSecondary(options);
  } else if (const OldGroup old = InspectOldGroup(group->dir_);
             !old.alive.empty() || (old.handed_over && (asked || options.adopt))) {
    // Handed over: the group is adopted even when none of its secondaries runs now.
    if (!options.adopt && !options.takeover && options.proc_type != ProcessType::kAuto) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "file prefix \"%s\": the previous primary (pid %d) is gone but processes %s of its "
          "group still run; start this primary with --adopt (or --proc-type=auto) to take "
          "them over, or stop them first",
          group->prefix_, old.primary_pid, absl::StrJoin(old.alive, ", ")));
    }
    joined = group->AdoptAsPrimary(options, old.primary_pid);
  } else {
    if (old.exists) {
      KEEL_LOG(Notice, "eal", "file prefix \"%s\": removing the stale state of primary pid %d",
               group->prefix_, old.primary_pid);
    }
    joined = group->CreateAsPrimary(options);
  }
  if (!joined.ok()) return joined;
  if (type == ProcessType::kPrimary) {
    if (absl::Status s = group->OpenTakeoverFifo(); !s.ok()) return s;
  }
  return group;
}

absl::Status Group::OpenTakeoverFifo() {
  const std::string path = Path(dir_, kTakeoverFile);
  ::unlink(path.c_str());  // an adopted group's, left by the dead primary
  if (::mkfifo(path.c_str(), 0600) != 0) return ErrnoStatus(errno, "cannot create", path);
  // Read-write: opening never blocks, and the FIFO never reads as closed.
  takeover_fd_ = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (takeover_fd_ < 0) return ErrnoStatus(errno, "cannot open", path);
  return absl::OkStatus();
}

pid_t Group::TakeoverRequester() {
  TakeoverRequest request = {};
  pid_t pid = 0;
  // Every request queued; the last well-formed one names who asked.
  while (::read(takeover_fd_, &request, sizeof(request)) == sizeof(request)) {
    if (request.magic == kTakeoverMagic) pid = request.pid;
  }
  return pid;
}

absl::Status Group::CreateAsPrimary(const eal::Options& options) {
  if (absl::Status s = RemoveFilesExcept(dir_, kLockFile); !s.ok()) return s;
  const std::string tmp = Path(dir_, "config.tmp");
  config_fd_ = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (config_fd_ < 0) return ErrnoStatus(errno, "cannot create", tmp);
  absl::StatusOr<SharedConfig*> mapped = MapConfig(config_fd_, tmp, /*create=*/true);
  if (!mapped.ok()) return mapped.status();
  probe_fd_ = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (probe_fd_ < 0) return ErrnoStatus(errno, "cannot open", tmp);
  SharedConfig* c = new (*mapped) SharedConfig();
  config_ = c;
  c->magic = kConfigMagic;
  c->layout_version = LocalLayoutVersion("eal");
  // P1 (layout.h): the file is not published yet. Slot 0: the first of a fresh table;
  // Register checks it.
  c->primary.store(PackPrimary({::getpid(), 0, 1}), std::memory_order_relaxed);
  c->primary_pid_namespace.store(PidNamespaceId(), std::memory_order_relaxed);
  absl::SNPrintF(c->fingerprint, sizeof(c->fingerprint), "%s", BuildFingerprint());
  absl::SNPrintF(c->prefix, sizeof(c->prefix), "%s", prefix_);
  c->checksum = HeaderChecksum(*c);
  if (absl::Status s = InitRobustMutex(&c->lock, kConfigLockName); !s.ok()) return s;
  if (absl::Status s = Register(kSharedPrimary, options); !s.ok()) return s;
  if (slot_ != 0) {
    return absl::InternalError(absl::StrFormat("the primary registered in slot %d", slot_));
  }
  // Publish the complete file under its real name; secondaries never see a partial one.
  if (::rename(tmp.c_str(), Path(dir_, kConfigFile).c_str()) != 0) {
    return ErrnoStatus(errno, "cannot publish", Path(dir_, kConfigFile));
  }
  return absl::OkStatus();
}

absl::Status Group::AdoptAsPrimary(const eal::Options& options, pid_t dead_primary) {
  const std::string path = Path(dir_, kConfigFile);
  const std::unique_ptr<ConfigFile> file = OpenConfigFile(dir_, O_RDWR);
  if (file == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("file prefix \"%s\": cannot adopt the group of primary pid %d: %s is "
                        "missing or shorter than a keel shared config",
                        prefix_, dead_primary, path));
  }
  if (file->header.magic != kConfigMagic) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "file prefix \"%s\": cannot adopt: %s is not a keel shared config", prefix_, path));
  }
  if (file->header.layout_version != LocalLayoutVersion("eal")) {
    return EalLayoutMismatch(prefix_, file->header.layout_version);
  }
  // Mapped through a second open of the file we read, as a secondary does; that open
  // holds our liveness lock, the first probes the others'.
  config_fd_ = ::open(absl::StrFormat("/proc/self/fd/%d", file->fd).c_str(), O_RDWR | O_CLOEXEC);
  if (config_fd_ < 0) return ErrnoStatus(errno, "cannot open", path);
  absl::StatusOr<SharedConfig*> mapped = MapConfig(config_fd_, path, /*create=*/false);
  if (!mapped.ok()) return mapped.status();
  config_ = *mapped;
  if (absl::Status s = ValidateConfig(*config_, path, prefix_); !s.ok()) return s;
  if (absl::Status s = CheckFingerprint(*config_, prefix_); !s.ok()) return s;
  probe_fd_ = ::open(absl::StrFormat("/proc/self/fd/%d", file->fd).c_str(), O_RDONLY | O_CLOEXEC);
  if (probe_fd_ < 0) return ErrnoStatus(errno, "cannot open", path);
  // Register merges the component records (a layout mismatch is refused there, before
  // this process takes a slot), reaps the dead primary and publishes this one.
  adopting_ = true;
  if (absl::Status s = Register(kSharedPrimary, options); !s.ok()) return s;
  KEEL_LOG(Notice, "eal", "group \"%s\": primary pid %d adopted the group of dead primary pid %d",
           prefix_, ::getpid(), dead_primary);
  return absl::OkStatus();
}

absl::Status Group::WaitForReadyConfig(const eal::Options& options, absl::Time deadline) {
  const std::string& dir = dir_;
  const std::string& prefix = prefix_;
  absl::Duration delay = absl::Milliseconds(1);
  std::string waiting_for;
  std::string last_logged;
  while (true) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        return absl::UnavailableError(absl::StrFormat(
            "file prefix \"%s\": no primary process is running (no runtime directory %s)", prefix,
            dir));
      }
      return ErrnoStatus(errno, "cannot open runtime directory", dir);
    }
    const std::string lock_path = Path(dir, kLockFile);
    const int lock_fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (lock_fd < 0 && errno != ENOENT) return ErrnoStatus(errno, "cannot open", lock_path);
    // Only asks: a secondary taking the lock could make a starting primary fail.
    const bool primary_running = lock_fd >= 0 && LockHeld(lock_fd);
    if (lock_fd >= 0) ::close(lock_fd);
    std::unique_ptr<ConfigFile> file = OpenConfigFile(dir, O_RDWR);
    const Header* header = file != nullptr ? &file->header : nullptr;
    if (!primary_running && header != nullptr && header->init_state == kHandedOver) {
      // Between a hand-over and its successor's lock: that one comes at once.
      waiting_for = absl::StrFormat("the primary that primary pid %d handed the group over to",
                                    file->primary().pid);
    } else if (!primary_running) {
      if (header != nullptr && header->init_state == kInitializing) {
        // The group's first primary, or one adopting it (the word may still name the
        // primary before it).
        return absl::UnavailableError(absl::StrFormat(
            "file prefix \"%s\": no primary process is running: a primary died during init "
            "(the last one recorded is pid %d)",
            prefix, file->primary().pid));
      }
      return absl::UnavailableError(absl::StrFormat(
          "file prefix \"%s\": no primary process is running%s", prefix,
          header != nullptr
              ? absl::StrFormat(" (the last one, pid %d, has exited)", file->primary().pid)
              : ""));
    } else if (header == nullptr) {
      waiting_for = "the primary to create the shared config";
    } else if (header->magic != kConfigMagic) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "file prefix \"%s\": %s is not a keel shared config", prefix, Path(dir, kConfigFile)));
    } else if (header->layout_version != LocalLayoutVersion("eal")) {
      return EalLayoutMismatch(prefix, header->layout_version);
    } else if (!file->PrimaryAlive()) {
      waiting_for =
          absl::StrFormat("the new primary to replace the shared config of exited primary pid %d",
                          file->primary().pid);
    } else if (header->init_state == kShutDown) {
      return absl::UnavailableError(
          absl::StrFormat("file prefix \"%s\": the primary process (pid %d) is shutting down",
                          prefix, file->primary().pid));
    } else if (header->init_state != kReady) {
      waiting_for = absl::StrFormat("primary pid %d to finish init", file->primary().pid);
    } else {
      // Map the very file whose header we read (a second open of it, which will hold
      // our liveness lock): a replacement since cannot slip in.
      const std::string path = Path(dir, kConfigFile);
      config_fd_ =
          ::open(absl::StrFormat("/proc/self/fd/%d", file->fd).c_str(), O_RDWR | O_CLOEXEC);
      if (config_fd_ < 0) return ErrnoStatus(errno, "cannot open", path);
      absl::StatusOr<SharedConfig*> mapped = MapConfig(config_fd_, path, /*create=*/false);
      if (!mapped.ok()) return mapped.status();
      // A1: pairs with I0 (layout.h): seeing kReady makes the primary's init visible.
      if ((*mapped)->init_state.load(std::memory_order_acquire) == kReady) {
        config_ = *mapped;
        if (absl::Status s = ValidateConfig(*config_, path, prefix); !s.ok()) return s;
        probe_fd_ = std::exchange(file->fd, -1);
        return absl::OkStatus();
      }
      // It left the ready state since the header was read (the primary died and one
      // adopts the group, or it hands it over): look again.
      UnmapConfig(*mapped);
      ::close(std::exchange(config_fd_, -1));
      waiting_for = "the group's primary, which changed while this process attached";
    }
    if (waiting_for != last_logged) {
      KEEL_LOG(Debug, "eal", "file prefix \"%s\": waiting for %s", prefix, waiting_for);
      last_logged = waiting_for;
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrFormat("file prefix \"%s\": gave up after %s waiting for %s (--attach-timeout)",
                          prefix, absl::FormatDuration(options.attach_timeout), waiting_for));
    }
    absl::SleepFor(delay);
    delay = std::min(delay * 2, absl::Milliseconds(20));
  }
}

absl::Status Group::AttachAsSecondary(const eal::Options& options) {
  // One deadline for every attempt.
  const absl::Time deadline = absl::Now() + options.attach_timeout;
  while (true) {
    if (absl::Status s = WaitForReadyConfig(options, deadline); !s.ok()) return s;
    if (absl::Status s = CheckFingerprint(*config_, prefix_); !s.ok()) return s;
    if (absl::Status s = Register(kSharedSecondary, options); !s.ok()) return s;
    // Registered: the primary may have died since WaitForReadyConfig, or another may
    // have adopted the group and be in its init. Attached only to a primary that is
    // ready and alive; its slot is never ours (Register skips it).
    const PrimaryIdentity primary = this->primary();
    bool attached;
    {
      absl::MutexLock lock(&pidfd_mu_);
      // Acquire: as A1 (a new primary's I0).
      attached = config_->init_state.load(std::memory_order_acquire) == kReady &&
                 OpenPrimaryPidfdLocked(primary);
    }
    if (attached) return absl::OkStatus();
    Leave().IgnoreError();
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrFormat(
          "file prefix \"%s\": the primary process (pid %d) exited while this process attached",
          prefix_, primary.pid));
    }
    KEEL_LOG(Info, "eal",
             "file prefix \"%s\": the primary (pid %d) changed while this process attached; "
             "attaching again",
             prefix_, primary.pid);
  }
}

bool Group::OpenPrimaryPidfdLocked(const PrimaryIdentity& primary) {
  // Relaxed: written before `primary`, which the caller loaded with acquire.
  const uint64_t ns = config_->primary_pid_namespace.load(std::memory_order_relaxed);
  int pidfd = -1;
  if (ns != 0 && ns == PidNamespaceId()) {
    absl::StatusOr<int> opened = OpenPidfd(primary.pid);
    if (opened.ok()) pidfd = *opened;
  } else if (pidfd_generation_ == 0) {
    KEEL_LOG(Info, "eal",
             "group \"%s\": the primary runs in another PID namespace; its exit is seen by "
             "its lock, without a pidfd",
             prefix_);
  }
  // After the pidfd: the primary still holding its lock means its pid was not reused.
  if (!LockHeld(probe_fd_, SlotLockByte(primary.slot), 1)) {
    if (pidfd >= 0) ::close(pidfd);
    return false;
  }
  // The previous one stays open: a caller may still poll it (it is readable for good).
  if (primary_pidfd_ >= 0) retired_pidfds_.push_back(primary_pidfd_);
  primary_pidfd_ = pidfd;
  pidfd_generation_ = primary.generation;
  return true;
}

absl::Status Group::Register(uint32_t type, const eal::Options& options) {
  SharedConfig* c = config_;
  const std::string prefix = Printable(NameOf(c->prefix));
  RobustLock lock(&c->lock, kConfigLockName, [&] { ReapLocked(c, probe_fd_); });
  if (!lock.ok()) return lock.status();
  if (absl::Status s = MergeComponentsLocked(c); !s.ok()) return s;
  ReapLocked(c, probe_fd_);
  const PrimaryIdentity previous = UnpackPrimary(c->primary.load(std::memory_order_relaxed));
  if (adopting_ && LockHeld(probe_fd_, SlotLockByte(previous.slot), 1)) {
    // Cannot happen while we hold the primary lock, unless the old primary left
    // RUNDIR/lock and lives on (its file replaced by hand).
    return absl::FailedPreconditionError(
        absl::StrFormat("group \"%s\": its primary (pid %d) still holds its slot; not adopting",
                        prefix, previous.pid));
  }
  if (adopting_) {
    // Before this process holds any slot: secondaries attaching from here on wait for
    // our MarkReady (I0), and none takes a primary in its init for a ready one.
    c->init_state.store(kInitializing, std::memory_order_relaxed);
  }
  if (options.claim_lcores) {
    for (const auto& [lcore, cpus] : options.lcores) {
      // ValidateOptions refused these already; the shared arrays are never indexed
      // out of bounds, whoever calls.
      if (lcore >= eal::kMaxLcores) {
        return absl::InvalidArgumentError(
            absl::StrFormat("lcore %u is out of range (max %u)", lcore, eal::kMaxLcores - 1));
      }
      const uint32_t owner = c->lcore_owner[lcore];
      if (owner != 0) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "lcore %u is already used by %s of group \"%s\"; give this process other lcores "
            "(-l, --lcores)",
            lcore, Who(c->processes[owner - 1]), prefix));
      }
    }
  }
  // A free slot whose liveness byte we can lock (a free slot's byte is normally free;
  // one still held belongs to a process that forked and left, and is skipped).
  // The slot the primary word names is never a secondary's: its liveness byte says
  // whether the primary lives, so a secondary there would pass for it. An adopter may
  // take it (it stored kInitializing above: nobody takes it for the ready primary), so
  // a full group can still be adopted.
  const int primary_slot = type == kSharedSecondary ? static_cast<int>(previous.slot) : -1;
  int free_slot = -1;
  for (int s = 0; s < kMaxProcesses && free_slot < 0; ++s) {
    if (s != primary_slot && !c->processes[s].in_use &&
        TryLock(config_fd_, LockType::kExclusive, SlotLockByte(s), 1).ok()) {
      free_slot = s;
    }
  }
  if (free_slot < 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "group \"%s\" already has %d processes, the most it can hold", prefix, kMaxProcesses));
  }
  // The byte is locked: from here a kill leaves a slot the next reaper frees.
  KillPointForTest("eal.register.byte_locked");
  ProcessSlot& slot = c->processes[free_slot];
  std::memset(&slot, 0, sizeof(slot));
  slot.type = type;
  slot.pid = ::getpid();
  slot.attach_unix_ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  slot.incarnation = ++c->last_incarnation;
  CopyName(slot.name, ProgramName());
  if (options.claim_lcores) {
    for (const auto& [lcore, cpus] : options.lcores) {
      slot.lcores[lcore / 64] |= uint64_t{1} << (lcore % 64);
      ++slot.lcore_count;
    }
  }
  // in_use before the owner entries: a reaper that finds an owner entry checks the slot.
  slot.in_use = 1;
  KillPointForTest("eal.register.in_use");
  if (options.claim_lcores) {
    for (const auto& [lcore, cpus] : options.lcores) {
      c->lcore_owner[lcore] = static_cast<uint32_t>(free_slot) + 1;
      for (unsigned cpu = 0; cpu < eal::kMaxCpus; ++cpu) {
        if (cpus.test(cpu)) c->lcore_cpus[lcore][cpu / 64] |= uint64_t{1} << (cpu % 64);
      }
    }
  }
  slot_ = free_slot;
  if (adopting_) {
    // P1 (layout.h). A kill from here leaves a group whose primary (us) is dead,
    // adoptable again.
    c->primary_pid_namespace.store(PidNamespaceId(), std::memory_order_relaxed);
    KillPointForTest("eal.adopt.before_publish");
    c->primary.store(PackPrimary({::getpid(), static_cast<uint32_t>(free_slot),
                                  (previous.generation + 1) & kGenerationMask}),
                     std::memory_order_release);
  }
  return absl::OkStatus();
}

Group::~Group() {
  if (config_ != nullptr) UnmapConfig(config_);
  for (int fd : {primary_pidfd_, probe_fd_, config_fd_, lock_fd_, takeover_fd_}) {
    if (fd >= 0) ::close(fd);
  }
  for (int fd : retired_pidfds_) ::close(fd);
}

void Group::MarkReady() {
  // I0 (layout.h).
  config_->init_state.store(kReady, std::memory_order_release);
}

void Group::MarkHandedOver() {
  // Relaxed: a state for whoever looks next; nothing is published with it.
  config_->init_state.store(kHandedOver, std::memory_order_relaxed);
}

namespace {

static_assert(kTokenSlots == kMaxProcesses);
constexpr uint32_t kIncarnationMask = (1u << (kTokenBits - kTokenSlotBits)) - 1;

uint32_t MakeToken(uint32_t slot, uint32_t incarnation) {
  return (slot + 1) | ((incarnation & kIncarnationMask) << kTokenSlotBits);
}

// Relaxed: the table changes under the config lock, which tokens do not take; a slot
// read while it changes gives a token that is dead or not the holder's, which callers
// treat as "not alive" (they recheck).
template <typename T>
T Peek(const T& field) {
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

}  // namespace

PrimaryIdentity Group::primary() const {
  // Acquire: pairs with P1's release (layout.h): primary_pid_namespace is the new one's.
  return UnpackPrimary(config_->primary.load(std::memory_order_acquire));
}

int Group::PrimaryExitFd() {
  if (type_ == ProcessType::kPrimary) return -1;
  absl::MutexLock lock(&pidfd_mu_);
  const PrimaryIdentity p = primary();
  if (p.generation != pidfd_generation_ && PrimaryAlive()) OpenPrimaryPidfdLocked(p);
  return primary_pidfd_;
}

uint32_t Group::SelfToken() const {
  return MakeToken(static_cast<uint32_t>(slot_), Peek(config_->processes[slot_].incarnation));
}

bool Group::TokenAlive(uint32_t token) const {
  const int slot = TokenSlot(token);
  if (slot < 0) return false;
  const ProcessSlot& p = config_->processes[slot];
  if (Peek(p.in_use) == 0 || MakeToken(slot, Peek(p.incarnation)) != token) return false;
  return LockHeld(probe_fd_, SlotLockByte(slot), 1);
}

uint32_t Group::LcoreOwnerToken(unsigned lcore) const {
  if (lcore >= eal::kMaxLcores) return 0;
  const uint32_t owner = Peek(config_->lcore_owner[lcore]);
  if (owner == 0 || owner > kMaxProcesses) return 0;
  return MakeToken(owner - 1, Peek(config_->processes[owner - 1].incarnation));
}

bool Group::PrimaryAlive() const {
  if (type_ == ProcessType::kPrimary) return true;
  // Acquire: as I0's pairing in WaitForReadyConfig; relaxed would do for the answer.
  return config_->init_state.load(std::memory_order_acquire) == kReady &&
         LockHeld(probe_fd_, SlotLockByte(primary().slot), 1);
}

absl::Status Group::Leave(bool ends_group) {
  if (config_ == nullptr) return absl::FailedPreconditionError("not attached to a group");
  std::vector<std::string> still_attached;
  absl::Status status;
  {
    RobustLock lock(&config_->lock, kConfigLockName, [this] { ReapLocked(config_, probe_fd_); });
    if (lock.ok()) {
      ReapLocked(config_, probe_fd_);
      if (slot_ >= 0) {
        // Lcores first, then the slot (layout.h: leave order); the byte is unlocked when
        // config_fd_ closes below.
        for (unsigned l = 0; l < eal::kMaxLcores; ++l) {
          if (config_->lcore_owner[l] == static_cast<uint32_t>(slot_) + 1) {
            config_->lcore_owner[l] = 0;
            std::memset(config_->lcore_cpus[l], 0, sizeof(config_->lcore_cpus[l]));
          }
        }
        // A kill here leaves a slot in use with no lcores and its byte unlocked: reaped.
        KillPointForTest("eal.leave.lcores_released");
        std::memset(&config_->processes[slot_], 0, sizeof(ProcessSlot));
      }
      for (const ProcessSlot& slot : config_->processes) {
        if (slot.in_use) still_attached.push_back(absl::StrCat(slot.pid));
      }
    } else {
      // Our slot stays behind; closing config_fd_ below unlocks its byte, so the next
      // process that gets the lock reaps it.
      status = lock.status();
    }
  }
  if (type_ == ProcessType::kPrimary && ends_group) {
    config_->init_state.store(kShutDown, std::memory_order_release);
    if (!still_attached.empty()) {
      KEEL_LOG(Warning, "eal",
               "group \"%s\": primary shutting down while processes %s are attached", prefix_,
               absl::StrJoin(still_attached, ", "));
    }
    // Remove everything but the lock first, then the lock, then the directory: a new
    // primary racing with us either fails on our lock or starts from an empty directory.
    if (absl::Status s = RemoveFilesExcept(dir_, kLockFile); status.ok()) status = s;
    ::unlink(Path(dir_, kLockFile).c_str());
    ::rmdir(dir_.c_str());
  }
  UnmapConfig(config_);
  config_ = nullptr;
  slot_ = -1;
  absl::MutexLock lock(&pidfd_mu_);
  // The lock last (lock_fd_): the next primary may start as soon as it is released.
  for (int* fd : {&takeover_fd_, &primary_pidfd_, &probe_fd_, &config_fd_, &lock_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  for (int fd : retired_pidfds_) ::close(fd);
  retired_pidfds_.clear();
  pidfd_generation_ = 0;
  return status;
}

absl::StatusOr<eal::GroupInfo> Group::Describe() {
  if (config_ == nullptr) return absl::FailedPreconditionError("not attached to a group");
  eal::GroupInfo info;
  info.prefix = prefix_;
  info.runtime_dir = dir_;
  RobustLock lock(&config_->lock, kConfigLockName, [this] { ReapLocked(config_, probe_fd_); });
  if (!lock.ok()) return lock.status();
  ReapLocked(config_, probe_fd_);
  const PrimaryIdentity primary = this->primary();
  info.primary_pid = primary.pid;
  info.primary_generation = primary.generation;
  for (int s = 0; s < kMaxProcesses; ++s) {
    const ProcessSlot& slot = config_->processes[s];
    if (!slot.in_use) continue;
    eal::ProcessInfo p;
    p.pid = slot.pid;
    p.type = slot.type == kSharedPrimary ? ProcessType::kPrimary : ProcessType::kSecondary;
    p.name = std::string(NameOf(slot.name));
    for (unsigned l = 0; l < eal::kMaxLcores; ++l) {
      if (slot.lcores[l / 64] & (uint64_t{1} << (l % 64))) p.lcores.push_back(l);
    }
    p.attached = absl::FromUnixMillis(static_cast<int64_t>(slot.attach_unix_ms));
    p.is_self = s == slot_;
    info.processes.push_back(std::move(p));
  }
  const uint32_t count = std::min<uint32_t>(config_->component_count, kMaxComponents);
  for (uint32_t i = 0; i < count; ++i) {
    const ComponentRecord& r = config_->components[i];
    info.components.push_back({std::string(NameOf(r.name)),
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

absl::Status Group::HoldLockForTest(absl::Duration hold, const std::function<void()>& on_held) {
  RobustLock lock(&config_->lock, kConfigLockName, [this] { ReapLocked(config_, probe_fd_); });
  if (!lock.ok()) return lock.status();
  on_held();
  absl::SleepFor(hold);
  return absl::OkStatus();
}

}  // namespace keel::eal_internal
