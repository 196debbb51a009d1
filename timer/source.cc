// The timer component's EAL hooks: the primary chooses the group's time source
// (--timer-source), records it in shared memory (timer/internal/layout.h) and, for the
// HPET, serves its open /dev/hpet to secondaries over RUNDIR/hpet; secondaries follow the
// record and map the fd they are given.
//
// Why the fd is passed: every open of /dev/hpet takes one of the HPET's few comparators
// (the kernel's hpet driver refuses an open when none is free), so only the primary opens
// it, once; a secondary gets that open file (SCM_RIGHTS) and maps the same registers.
//
// The fd server is a thread of the primary, started at init and stopped at cleanup:
//   socket RUNDIR/hpet, SOCK_SEQPACKET, mode 0600 in the 0700 runtime directory;
//   accept -> SO_PEERCRED: the peer's uid must be this process's or root, else the
//   connection is closed without an fd -> one FdMessage carrying the fd -> close.
// It also reads a 32-bit HPET every few seconds (poll()'s timeout), so the group's shared
// extension word sees every wrap even when no other process reads the clock (a 32-bit
// counter must be read at least once per 2^31 ticks: 150 s at 14.318 MHz).
#include <cpuid.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "base/names.h"
#include "base/unix_socket.h"
#include "eal/eal.h"
#include "eal/internal/components.h"
#include "memory/memory.h"
#include "timer/clock.h"
#include "timer/cycles.h"
#include "timer/internal/layout.h"
#include "timer/internal/state.h"

namespace keel::timer_internal {
namespace {

using eal::ProcessType;
using eal::TimerSource;
using timer::HpetClock;
using timer::Source;
using timer::SourceInfo;

constexpr char kComponent[] = "timer";
constexpr char kSocketFile[] = "hpet";
// The longest the fd server goes without reading a 32-bit HPET.
constexpr int kMaxReadIntervalMs = 2000;
// A TSC frequency outside this range in a record is damage, not a CPU.
constexpr uint64_t kMinTscHz = 1'000'000;           // 1 MHz
constexpr uint64_t kMaxTscHz = 100'000'000'000ULL;  // 100 GHz

// CPUID 0x80000007 EDX bit 8 (as ProbeTsc reads it, without the calibration).
bool TscIsInvariant() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx) && ((edx >> 8) & 1) != 0;
}

// How often the fd server reads a 32-bit HPET: every 2^29 ticks (an eighth of the
// counter's range, a quarter of what the extension tolerates), at most every
// kMaxReadIntervalMs, at least every millisecond.
int ReadIntervalMs(uint32_t period_fs) {
  const double ms = static_cast<double>(uint64_t{1} << 29) * period_fs / 1e12;
  return static_cast<int>(std::clamp(ms, 1.0, static_cast<double>(kMaxReadIntervalMs)));
}

// The primary's fd server (see the top of this file).
class FdServer {
 public:
  // Binds RUNDIR/hpet (0600), listens and starts the thread. `hpet_fd` and `clock` must
  // outlive the server. FailedPrecondition names the socket's path and the errno.
  static absl::StatusOr<std::unique_ptr<FdServer>> Start(const std::string& dir, int hpet_fd,
                                                         const HpetClock* clock);
  FdServer(const FdServer&) = delete;
  FdServer& operator=(const FdServer&) = delete;
  // Stops the thread (it wakes on stop_fd_ at once), closes the socket and unlinks it.
  ~FdServer();

  const std::string& path() const { return path_; }

 private:
  FdServer() = default;
  absl::Status Fail(absl::string_view what) const {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s %s: %s", what, path_, ErrnoText(errno)));
  }
  static void* RunThread(void* self) {
    static_cast<FdServer*>(self)->Run();
    return nullptr;
  }
  void Run();
  void Serve(int connection);

  std::string path_;
  int hpet_fd_ = -1;
  const HpetClock* clock_ = nullptr;
  int read_interval_ms_ = -1;  // poll()'s timeout: -1 (none) for a 64-bit counter
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: readable once the destructor asks the thread to stop
  bool bound_ = false;
  bool running_ = false;
  pid_t owner_pid_ = ::getpid();  // the process whose thread serves
  pthread_t thread_{};
};

absl::StatusOr<std::unique_ptr<FdServer>> FdServer::Start(const std::string& dir, int hpet_fd,
                                                          const HpetClock* clock) {
  std::unique_ptr<FdServer> server(new FdServer);
  server->path_ = absl::StrCat(dir, "/", kSocketFile);
  server->hpet_fd_ = hpet_fd;
  server->clock_ = clock;
  server->read_interval_ms_ = clock->counter_is_64_bit() ? -1 : ReadIntervalMs(clock->period_fs());
  absl::StatusOr<int> listener = ListenSeqpacket(dir, kSocketFile, 16);
  if (!listener.ok()) return listener.status();
  server->listen_fd_ = *listener;
  server->bound_ = true;
  server->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (server->stop_fd_ < 0) return server->Fail("cannot create the stop eventfd of");
  // The thread blocks every signal: signals sent to the process go to the application's
  // threads, as if this one did not exist.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const int err = pthread_create(&server->thread_, nullptr, &FdServer::RunThread, server.get());
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err != 0) {
    errno = err;
    return server->Fail("cannot start the thread serving");
  }
  pthread_setname_np(server->thread_, "keel-hpet-fd");
  server->running_ = true;
  return server;
}

FdServer::~FdServer() {
  if (::getpid() != owner_pid_) {
    // A forked child of the primary (fork() copies no thread): the thread, the eventfd
    // and the socket's name are the parent's; only this process's descriptors go.
    for (int fd : {listen_fd_, stop_fd_}) {
      if (fd >= 0) ::close(fd);
    }
    return;
  }
  if (running_) {
    const uint64_t one = 1;
    // The eventfd counter cannot overflow with one write; EINTR aside it succeeds.
    while (::write(stop_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    pthread_join(thread_, nullptr);
  }
  for (int fd : {listen_fd_, stop_fd_}) {
    if (fd >= 0) ::close(fd);
  }
  if (bound_) ::unlink(path_.c_str());
}

void FdServer::Run() {
  pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
  for (;;) {
    const int n = ::poll(fds, 2, read_interval_ms_);
    // A 32-bit HPET: this read moves the group's extension word (HpetClock::Read), so it
    // never falls 2^31 ticks behind the counter, however rarely the processes read it.
    if (read_interval_ms_ >= 0) clock_->Read();
    if (n < 0) {
      if (errno == EINTR) continue;
      KEEL_LOG(Error, kComponent, "%s: poll failed: %s; retrying", path_, ErrnoText(errno));
      absl::SleepFor(absl::Milliseconds(read_interval_ms_ >= 0 ? read_interval_ms_ : 100));
      continue;
    }
    if (fds[0].revents != 0) return;
    if ((fds[1].revents & POLLIN) == 0) continue;
    for (;;) {
      const int connection = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          KEEL_LOG(Warning, kComponent, "%s: accept failed: %s", path_, ErrnoText(errno));
        }
        break;
      }
      Serve(connection);
      ::close(connection);
    }
  }
}

void FdServer::Serve(int connection) {
  absl::StatusOr<ucred> credentials = PeerCredentials(connection);
  if (!credentials.ok()) {
    KEEL_LOG(Warning, kComponent, "%s: %s; refused", path_, credentials.status().message());
    return;
  }
  const ucred& peer = *credentials;
  if (!TrustedUid(peer.uid)) {
    KEEL_LOG(Warning, kComponent,
             "%s: refused the HPET's fd to process %d of uid %u (not this process's uid %u, "
             "nor root)",
             path_, peer.pid, peer.uid, ::geteuid());
    return;
  }
  const FdMessage message = {kFdMagic, kLayoutVersion, 0};
  // Never blocks: an unread message of a dead or stuck peer cannot hold the server.
  if (SendWithFds(connection, &message, sizeof(message), {hpet_fd_}, MSG_DONTWAIT) !=
      static_cast<ssize_t>(sizeof(message))) {
    KEEL_LOG(Warning, kComponent, "%s: cannot send the HPET's fd to process %d: %s", path_,
             peer.pid, ErrnoText(errno));
    return;
  }
  KEEL_LOG(Debug, kComponent, "%s: sent the HPET's fd to process %d (uid %u)", path_, peer.pid,
           peer.uid);
}

// A secondary: connects to the primary's fd server at DIR/hpet and receives the HPET's
// fd. FailedPrecondition (no server, a server of another uid, no fd, a bad message) or
// DeadlineExceeded (nothing within `timeout`), naming the socket's path.
absl::StatusOr<int> ReceiveHpetFd(const std::string& dir, absl::Duration timeout) {
  const std::string path = absl::StrCat(dir, "/", kSocketFile);
  auto fail = [&](absl::string_view what) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the group's HPET fd server %s: %s", path, what));
  };
  absl::StatusOr<int> connected = ConnectSeqpacket(dir, kSocketFile, timeout);
  if (!connected.ok()) return fail(connected.status().message());
  const int fd = *connected;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  absl::StatusOr<ucred> credentials = PeerCredentials(fd);
  if (!credentials.ok()) return fail(credentials.status().message());
  const ucred& server = *credentials;
  if (!TrustedUid(server.uid)) {
    return fail(absl::StrFormat("it runs as uid %u, not as this process's uid %u nor root",
                                server.uid, ::geteuid()));
  }
  pollfd pfd = {fd, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (ready == 0) {
    return absl::DeadlineExceededError(
        absl::StrFormat("the group's HPET fd server %s sent nothing within %s (--attach-timeout)",
                        path, absl::FormatDuration(timeout)));
  }
  FdMessage message = {};
  Received got = ReceiveWithFds(fd, &message, sizeof(message), 1, 0);
  const ssize_t n = got.bytes;
  const std::vector<int>& fds = got.fds;
  auto refuse = [&](absl::string_view why) {
    CloseAll(fds);
    return fail(why);
  };
  if (n < 0) return refuse(absl::StrCat("cannot receive: ", ErrnoText(got.error)));
  if (n == 0) {
    return refuse(
        "it closed the connection without sending the HPET's fd (it refuses processes of "
        "another uid; see the primary's log)");
  }
  if (n != static_cast<ssize_t>(sizeof(message)) || got.truncated || message.magic != kFdMagic ||
      message.layout_version != kLayoutVersion) {
    return refuse(
        absl::StrFormat("it sent %d bytes that are not a keel HPET fd message of layout version %u",
                        n, kLayoutVersion));
  }
  if (got.fds_truncated || fds.size() != 1) {
    return refuse(absl::StrFormat("it sent %d file descriptors%s, not one", fds.size(),
                                  got.fds_truncated ? " (truncated)" : ""));
  }
  return fds[0];
}

// What this process set up for its group (process-local). Set by the init hook, freed by
// the cleanup hook; both run on the main thread (eal::Init, eal::Cleanup).
struct GroupClock {
  ClockRecord* record = nullptr;     // in the group's memzone kClockMemzone
  std::unique_ptr<HpetClock> hpet;   // the HPET source; null for the TSC
  int hpet_fd = -1;                  // primary: the open device, served to secondaries
  std::unique_ptr<FdServer> server;  // primary on the HPET
  ~GroupClock() {
    server.reset();  // first: its thread reads `hpet`
    hpet.reset();
    if (hpet_fd >= 0) ::close(hpet_fd);
  }
};
GroupClock* g_group = nullptr;

// The primary: opens and maps the HPET at `device` for the group (its extension in the
// record) and starts serving its fd. On failure nothing is left open; the status says
// why (its code is the caller's to choose).
absl::Status OpenHpet(const std::string& device, const std::string& dir, GroupClock* group) {
  const int fd = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot open %s: %s", device, ErrnoText(errno)));
  }
  absl::StatusOr<HpetClock> clock = HpetClock::Map(fd, &group->record->hpet);
  if (!clock.ok()) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrFormat("%s opened but cannot be used: %s", device, clock.status().message()));
  }
  auto hpet = std::make_unique<HpetClock>(*std::move(clock));
  absl::StatusOr<std::unique_ptr<FdServer>> server = FdServer::Start(dir, fd, hpet.get());
  if (!server.ok()) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrFormat("%s opened, but its fd cannot be served to secondaries: %s", device,
                        server.status().message()));
  }
  group->hpet = std::move(hpet);
  group->hpet_fd = fd;
  group->server = *std::move(server);
  return absl::OkStatus();
}

// "tsc at 2596.14 MHz (2596140000 Hz, calibrated)".
std::string Describe(const SourceInfo& info) {
  std::string detail;
  if (info.source == Source::kTsc) {
    detail = info.hz_from_cpuid ? "from CPUID leaf 0x15" : "calibrated";
    if (!info.tsc_invariant) detail += ", not invariant";
  } else {
    detail = info.hpet_counter_64_bit ? "64-bit counter" : "32-bit counter";
  }
  return absl::StrFormat("%s at %.2f MHz (%d Hz, %s)", timer::SourceName(info.source),
                         static_cast<double>(info.hz) / 1e6, info.hz, detail);
}

void WarnIfNotInvariant(const SourceInfo& info) {
  if (info.source != Source::kTsc || info.tsc_invariant) return;
  KEEL_LOG(Warning, kComponent,
           "the TSC is not invariant (CPUID 0x80000007 EDX bit 8 is 0): its rate may change "
           "with the CPU's power states, and Cycles() with it; --timer-source hpet avoids it "
           "where /dev/hpet exists");
}

absl::Status InitPrimary(const eal_internal::InitContext& context) {
  const TimerSource option = context.options.timer_source;
  absl::StatusOr<memory::Memzone> zone =
      memory::ReserveMemzone(kClockMemzone, sizeof(ClockRecord), memory::kSocketAny, 64);
  if (!zone.ok()) {
    return absl::Status(
        zone.status().code(),
        absl::StrCat("timer: cannot reserve the group's clock record: ", zone.status().message()));
  }
  auto group = std::make_unique<GroupClock>();
  // Zeroes every field, the HPET extension word included.
  group->record = new (zone->addr) ClockRecord();
  ClockRecord* record = group->record;

  const std::string device = HpetDevice();
  std::string why;
  if (option == TimerSource::kTsc) {
    why = "--timer-source tsc";
  } else {
    const absl::Status hpet = OpenHpet(device, context.runtime_dir, group.get());
    if (option == TimerSource::kHpet) {
      if (!hpet.ok()) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "--timer-source hpet: %s (give --timer-source tsc or auto to run on the TSC)",
            hpet.message()));
      }
      why = absl::StrFormat("--timer-source hpet: %s opened and mapped", device);
    } else {
      why = hpet.ok() ? absl::StrFormat("auto: %s opened and mapped", device)
                      : absl::StrCat("auto: ", hpet.message());
    }
  }

  // Every process of the group reports the reason as recorded (cut to fit).
  if (why.size() >= sizeof(record->why)) why = why.substr(0, sizeof(record->why) - 4) + "...";
  SourceInfo info;
  info.why = why;
  if (group->hpet != nullptr) {
    info.source = Source::kHpet;
    info.hz = group->hpet->hz();
    info.tsc_invariant = TscIsInvariant();
    info.hpet_counter_64_bit = group->hpet->counter_is_64_bit();
    record->hpet_period_fs = group->hpet->period_fs();
    record->hpet_counter_64_bit = info.hpet_counter_64_bit ? 1 : 0;
  } else {
    const timer::TscInfo tsc = ProcessTsc();  // reuses a probe made before Init
    info.source = Source::kTsc;
    info.hz = tsc.hz;
    info.tsc_invariant = tsc.invariant;
    info.hz_from_cpuid = tsc.from_cpuid;
  }
  record->layout_version = kLayoutVersion;
  record->source = info.source == Source::kHpet ? kSharedHpet : kSharedTsc;
  record->hz = info.hz;
  record->tsc_invariant = info.tsc_invariant ? 1 : 0;
  record->hz_from_cpuid = info.hz_from_cpuid ? 1 : 0;
  record->primary_pid = ::getpid();
  CopyName(record->why, why);
  // Last: a record without its magic is not read (layout.h). Secondaries read it only
  // after the EAL's I0 (MarkReady's release-store), which publishes all of it.
  record->magic = kClockMagic;

  SetGroupClock(group->hpet.get(), info);
  KEEL_LOG(Info, kComponent, "timer source: %s, because %s%s", Describe(info), why,
           group->server != nullptr
               ? absl::StrCat("; serving the HPET's fd to secondaries on ", group->server->path())
               : "");
  WarnIfNotInvariant(info);
  g_group = group.release();
  return absl::OkStatus();
}

// The record a secondary found, checked field by field: it is shared memory, untrusted.
absl::Status ValidateRecord(const memory::Memzone& zone, absl::string_view prefix) {
  if (zone.size < sizeof(ClockRecord) || reinterpret_cast<uintptr_t>(zone.addr) % 64 != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "group \"%s\": memzone \"%s\" has %d bytes at %p; a timer clock record needs %d, "
        "64-byte aligned",
        prefix, kClockMemzone, zone.size, zone.addr, sizeof(ClockRecord)));
  }
  const ClockRecord& r = *static_cast<const ClockRecord*>(zone.addr);
  if (r.magic != kClockMagic) {
    return absl::FailedPreconditionError(
        absl::StrFormat("group \"%s\": memzone \"%s\" is not a timer clock record (magic 0x%016x)",
                        prefix, kClockMemzone, r.magic));
  }
  if (r.layout_version != kLayoutVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "component \"timer\": group \"%s\" uses shared-layout version %u, this process has "
        "layout version %u (timer %s)",
        prefix, r.layout_version, kLayoutVersion, ToString(timer::kVersion)));
  }
  if (r.source == kSharedTsc) {
    if (r.hz < kMinTscHz || r.hz > kMaxTscHz) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "group \"%s\": the timer clock record gives the TSC %d Hz, outside [%d, %d]", prefix,
          r.hz, kMinTscHz, kMaxTscHz));
    }
  } else if (r.source == kSharedHpet) {
    if (r.hpet_period_fs == 0 || r.hpet_period_fs > timer::kHpetMaxPeriodFs) {
      return absl::FailedPreconditionError(
          absl::StrFormat("group \"%s\": the timer clock record gives the HPET a period of %u fs",
                          prefix, r.hpet_period_fs));
    }
  } else {
    return absl::FailedPreconditionError(
        absl::StrFormat("group \"%s\": the timer clock record names source %u (0: tsc, 1: hpet)",
                        prefix, r.source));
  }
  return absl::OkStatus();
}

// What a record ValidateRecord accepted says.
SourceInfo InfoFromRecord(const ClockRecord& record) {
  SourceInfo info;
  info.source = record.source == kSharedHpet ? Source::kHpet : Source::kTsc;
  info.hz = record.hz;
  info.tsc_invariant = record.tsc_invariant != 0;
  info.hz_from_cpuid = info.source == Source::kTsc && record.hz_from_cpuid != 0;
  info.hpet_counter_64_bit = info.source == Source::kHpet && record.hpet_counter_64_bit != 0;
  info.why = Printable(NameOf(record.why));
  return info;
}

// A process that follows the group's source refuses a --timer-source naming another.
absl::Status CheckSourceOption(const eal_internal::InitContext& context, const SourceInfo& info,
                               const ClockRecord& record) {
  const TimerSource option = context.options.timer_source;
  const TimerSource group_source =
      info.source == Source::kHpet ? TimerSource::kHpet : TimerSource::kTsc;
  if (option == TimerSource::kAuto || option == group_source) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "--timer-source %s: group \"%s\" runs on %s, chosen by its primary (pid %d) because "
      "%s; every process of a group uses the primary's source: give --timer-source %s or "
      "auto",
      eal::TimerSourceName(option), context.options.file_prefix, eal::TimerSourceName(group_source),
      record.primary_pid, info.why, eal::TimerSourceName(group_source)));
}

// The HPET `clock` (`what` names it) ticks as the group's record says.
absl::Status MatchesRecord(const HpetClock& clock, const ClockRecord& record,
                           absl::string_view prefix, absl::string_view what) {
  const bool record_64 = record.hpet_counter_64_bit != 0;
  if (clock.hz() == record.hz && clock.period_fs() == record.hpet_period_fs &&
      clock.counter_is_64_bit() == record_64) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "group \"%s\": %s ticks at %d Hz (period %u fs, %d-bit counter), its record says %d Hz "
      "(period %u fs, %d-bit counter)",
      prefix, what, clock.hz(), clock.period_fs(), clock.counter_is_64_bit() ? 64 : 32, record.hz,
      record.hpet_period_fs, record_64 ? 64 : 32));
}

// The group's record in `zone`, checked, for a process that follows it (a secondary, an
// adopting primary): what it says in *info.
absl::StatusOr<ClockRecord*> FollowRecord(const memory::Memzone& zone,
                                          const eal_internal::InitContext& context,
                                          SourceInfo* info) {
  if (absl::Status s = ValidateRecord(zone, context.options.file_prefix); !s.ok()) return s;
  auto* record = static_cast<ClockRecord*>(zone.addr);
  *info = InfoFromRecord(*record);
  if (absl::Status s = CheckSourceOption(context, *info, *record); !s.ok()) return s;
  return record;
}

// A primary adopting a live group: the record stays as it is (source, hz, and the HPET
// extension word, which the secondaries go on moving). On the HPET, the device is opened
// again (the dead primary's comparator is held until the last process that mapped its fd
// exits), mapped on the record's extension, and its fd served to secondaries that attach
// from now on.
absl::Status InitAdopting(const eal_internal::InitContext& context) {
  const std::string& prefix = context.options.file_prefix;
  absl::StatusOr<memory::Memzone> zone = memory::LookupMemzone(kClockMemzone);
  if (!zone.ok() && absl::IsNotFound(zone.status())) {
    // The dead primary was built without //timer: choose the source as a new one would.
    return InitPrimary(context);
  }
  if (!zone.ok()) return zone.status();
  SourceInfo info;
  absl::StatusOr<ClockRecord*> record = FollowRecord(*zone, context, &info);
  if (!record.ok()) return record.status();
  auto group = std::make_unique<GroupClock>();
  group->record = *record;
  if (info.source == Source::kHpet) {
    const std::string device = HpetDevice();
    // The dead primary's socket; FdServer binds the name again.
    ::unlink(absl::StrCat(context.runtime_dir, "/", kSocketFile).c_str());
    if (absl::Status s = OpenHpet(device, context.runtime_dir, group.get()); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "group \"%s\" runs on the HPET, and the adopting primary cannot serve it: %s", prefix,
          s.message()));
    }
    if (absl::Status s = MatchesRecord(*group->hpet, **record, prefix, device); !s.ok()) return s;
  }
  // Informational (tools, messages); nothing orders on it.
  __atomic_store_n(&(*record)->primary_pid, ::getpid(), __ATOMIC_RELAXED);
  SetGroupClock(group->hpet.get(), info);
  KEEL_LOG(Info, kComponent, "timer source: %s, the group's, kept by the adopting primary%s",
           Describe(info),
           group->server != nullptr
               ? absl::StrCat("; serving the HPET's fd to secondaries on ", group->server->path())
               : "");
  g_group = group.release();
  return absl::OkStatus();
}

absl::Status InitSecondary(const eal_internal::InitContext& context) {
  const std::string& prefix = context.options.file_prefix;
  absl::StatusOr<memory::Memzone> zone = memory::LookupMemzone(kClockMemzone);
  if (!zone.ok() && absl::IsNotFound(zone.status()) &&
      context.options.timer_source != TimerSource::kHpet) {
    // A primary built without //timer chose no source (tools such as procinfo attach to
    // any group): this process keeps its own TSC, as before eal::Init.
    KEEL_LOG(Info, kComponent,
             "group \"%s\" has no timer clock record (its primary is built without //timer): "
             "this process uses its own TSC",
             prefix);
    return absl::OkStatus();
  }
  if (!zone.ok()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "group \"%s\" has no timer clock record (%s); is its primary built without //timer?",
        prefix, zone.status().message()));
  }
  SourceInfo info;
  absl::StatusOr<ClockRecord*> found = FollowRecord(*zone, context, &info);
  if (!found.ok()) return found.status();
  ClockRecord* record = *found;

  auto group = std::make_unique<GroupClock>();
  group->record = record;
  std::string how = "the group's record";
  if (info.source == Source::kHpet) {
    absl::StatusOr<int> fd = ReceiveHpetFd(context.runtime_dir, context.options.attach_timeout);
    if (!fd.ok()) {
      return absl::Status(fd.status().code(), absl::StrFormat("group \"%s\" runs on the HPET: %s",
                                                              prefix, fd.status().message()));
    }
    absl::StatusOr<HpetClock> clock = HpetClock::Map(*fd, &record->hpet);
    ::close(*fd);  // the mapping keeps the open file (and the primary's comparator)
    if (!clock.ok()) {
      return absl::FailedPreconditionError(
          absl::StrFormat("group \"%s\": the HPET fd from its primary cannot be used: %s", prefix,
                          clock.status().message()));
    }
    if (absl::Status s = MatchesRecord(*clock, *record, prefix, "the HPET fd from its primary");
        !s.ok()) {
      return s;
    }
    group->hpet = std::make_unique<HpetClock>(*std::move(clock));
    how = absl::StrCat("the group's record; the HPET's fd from the primary over ",
                       context.runtime_dir, "/", kSocketFile);
  }
  SetGroupClock(group->hpet.get(), info);
  KEEL_LOG(Info, kComponent, "timer source: %s, the group's (%s): its primary chose it because %s",
           Describe(info), how, info.why);
  WarnIfNotInvariant(info);
  g_group = group.release();
  return absl::OkStatus();
}

absl::Status InitTimer(const eal_internal::InitContext& context) {
  if (context.type == ProcessType::kSecondary) return InitSecondary(context);
  return context.adopting ? InitAdopting(context) : InitPrimary(context);
}

// Also runs when this component's own init failed (which left nothing) or a later one's.
// After it, Cycles() is this process's TSC again.
void CleanupTimer(ProcessType, bool) {
  GroupClock* group = std::exchange(g_group, nullptr);
  if (group == nullptr) return;
  group->server.reset();  // stops the thread and removes RUNDIR/hpet
  ClearGroupClock("the group ended (eal::Cleanup): the TSC");
  delete group;  // unmaps the HPET, closes the device
}

const eal_internal::ComponentRegistrar kRegistrar({"timer", timer::kVersion, kLayoutVersion,
                                                   /*init_order=*/20, InitTimer, CleanupTimer});

}  // namespace
}  // namespace keel::timer_internal
