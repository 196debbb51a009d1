// simple_mp: DPDK's simple multi-process sample on keel. Two processes pass text
// messages to each other through two rings, in buffers from a shared mempool.
//
// The primary creates rings "PRI_2_SEC" and "SEC_2_PRI" and mempool "MSG_POOL"; a
// secondary looks them up, with the rings swapped. Every worker lcore of each process
// takes messages off its receive ring, prints `core N: Received 'TEXT'` and returns the
// buffer to the pool. The main lcore reads commands from stdin (a prompt when it is a
// terminal; scripts and tests can pipe commands in):
//
//   send TEXT    send TEXT to the other process
//   help         the commands
//   quit         leave (also on end of input; a secondary also leaves when the
//                primary exits, unless it was started with `-- --stay`)
//
// Hot restart: a secondary started with `-- --stay` keeps running when the primary dies;
// a new primary started with --adopt takes the group over, looks the rings and the pool
// up instead of creating them, and the traffic goes on:
//   simple_mp -l 0-1 --file-prefix mp --adopt
// A planned upgrade: a new primary started with --takeover asks the running one for the
// group; that one lets its workers finish the message in hand and hands the group over
// (eal::HandOver), and not a message is lost:
//   simple_mp -l 0-1 --file-prefix mp --takeover
//
// On a 2-CPU machine, in two terminals:
//   simple_mp -l 0-1 --file-prefix mp
//   simple_mp --proc-type=secondary --lcores 2@0,3@1 --file-prefix mp
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "eal/eal.h"
#include "memory/memory.h"
#include "mempool/mempool.h"
#include "ring/ring.h"

namespace {

constexpr char kPrimaryToSecondary[] = "PRI_2_SEC";
constexpr char kSecondaryToPrimary[] = "SEC_2_PRI";
constexpr char kMessagePool[] = "MSG_POOL";
constexpr unsigned kRingSize = 64;
constexpr unsigned kPoolSize = 1023;
constexpr unsigned kPoolCache = 32;
constexpr unsigned kMessageSize = 64;  // DPDK's STR_TOKEN_SIZE

constexpr char kPrompt[] = "simple_mp > ";
constexpr char kHelp[] =
    "commands:\n"
    "  send TEXT   send TEXT to the other process\n"
    "  help        show this list\n"
    "  quit        leave\n";

keel::ring::Ring* g_send = nullptr;
keel::ring::Ring* g_recv = nullptr;
keel::mempool::Mempool* g_pool = nullptr;
// Relaxed: a stop flag; the workers only need to see it eventually.
std::atomic<bool> g_quit{false};

// Set by `-- --stay`: a secondary outlives its primary and waits for one to adopt it.
bool g_stay = false;

absl::Status Setup() {
  if (keel::eal::GetProcessType() == keel::eal::ProcessType::kPrimary && !keel::eal::Adopted()) {
    absl::StatusOr<keel::ring::Ring*> send =
        keel::ring::Create(kPrimaryToSecondary, kRingSize, keel::memory::kSocketAny, 0);
    if (!send.ok()) return send.status();
    absl::StatusOr<keel::ring::Ring*> recv =
        keel::ring::Create(kSecondaryToPrimary, kRingSize, keel::memory::kSocketAny, 0);
    if (!recv.ok()) return recv.status();
    absl::StatusOr<keel::mempool::Mempool*> pool = keel::mempool::Create(
        kMessagePool, kPoolSize, kMessageSize, kPoolCache, 0, 0, keel::memory::kSocketAny);
    if (!pool.ok()) return pool.status();
    g_send = *send;
    g_recv = *recv;
    g_pool = *pool;
  } else {
    // A secondary, or a primary that adopted the group: the objects exist.
    const bool primary = keel::eal::GetProcessType() == keel::eal::ProcessType::kPrimary;
    absl::StatusOr<keel::ring::Ring*> send =
        keel::ring::Lookup(primary ? kPrimaryToSecondary : kSecondaryToPrimary);
    if (!send.ok()) return send.status();
    absl::StatusOr<keel::ring::Ring*> recv =
        keel::ring::Lookup(primary ? kSecondaryToPrimary : kPrimaryToSecondary);
    if (!recv.ok()) return recv.status();
    absl::StatusOr<keel::mempool::Mempool*> pool = keel::mempool::Lookup(kMessagePool);
    if (!pool.ok()) return pool.status();
    g_send = *send;
    g_recv = *recv;
    g_pool = *pool;
  }
  return absl::OkStatus();
}

// A worker lcore: receive until told to quit. It naps when the ring is empty, so an
// idle sample does not spin a CPU that other processes of the group share.
int Receive() {
  const unsigned lcore = keel::eal::LcoreId();
  std::printf("starting receiver on lcore %u\n", lcore);
  unsigned idle = 0;
  while (!g_quit.load(std::memory_order_relaxed)) {
    void* msg;
    if (!g_recv->Dequeue(&msg)) {
      if (++idle > 1000) usleep(1000);
      continue;
    }
    idle = 0;
    std::printf("core %u: Received '%s'\n", lcore, static_cast<const char*>(msg));
    g_pool->Put(msg);
  }
  return 0;
}

void Send(absl::string_view text) {
  void* msg;
  if (!g_pool->Get(&msg)) {
    std::printf("no message buffer free in \"%s\": message discarded\n", kMessagePool);
    return;
  }
  if (text.size() >= kMessageSize) {
    std::printf("message cut to %u bytes (the buffer size)\n", kMessageSize - 1);
  }
  absl::SNPrintF(static_cast<char*>(msg), kMessageSize, "%s", text);
  if (!g_send->Enqueue(msg)) {
    std::printf("ring \"%s\" is full: message discarded\n", std::string(g_send->name()).c_str());
    g_pool->Put(msg);
  }
}

// Runs one command line; false for quit.
bool Command(absl::string_view line) {
  line = absl::StripAsciiWhitespace(line);
  if (line.empty()) return true;
  if (line == "quit") return false;
  if (line == "help") {
    std::printf("%s", kHelp);
  } else if (absl::ConsumePrefix(&line, "send ") || line == "send") {
    if (line == "send" || absl::StripAsciiWhitespace(line).empty()) {
      std::printf("send needs some text: send TEXT\n");
    } else {
      Send(absl::StripAsciiWhitespace(line));
    }
  } else {
    std::printf("unknown command \"%s\"; type help\n", std::string(line).c_str());
  }
  return true;
}

// A secondary: whether a new primary is ready since generation `generation` (which it
// then advances). Asked whether or not the old primary's exit was seen: a new primary
// may adopt the group before this process looks at the old one's fd.
bool NewPrimary(uint32_t* generation) {
  if (keel::eal::PrimaryGeneration() == *generation || !keel::eal::PrimaryAlive()) return false;
  *generation = keel::eal::PrimaryGeneration();
  return true;
}

enum class Exit { kQuit, kHandOver };

// Reads commands from stdin until quit, end of input, (in a secondary without --stay)
// the primary's exit, or (in the primary) another primary's takeover request.
Exit CommandLoop() {
  const bool interactive = isatty(STDIN_FILENO);
  const bool primary = keel::eal::GetProcessType() == keel::eal::ProcessType::kPrimary;
  uint32_t generation = keel::eal::PrimaryGeneration();
  bool orphan = false;  // --stay: the primary exited and none adopted the group yet
  std::string pending;
  while (true) {
    if (interactive) {
      std::printf("%s", kPrompt);
      std::fflush(stdout);
    }
    size_t newline;
    while ((newline = pending.find('\n')) == std::string::npos) {
      if (!primary && NewPrimary(&generation)) {
        // Without --stay, a new primary means the old one exited (whether or not its fd
        // was seen readable): leave, as then.
        if (!g_stay) {
          std::printf("the primary process exited; leaving\n");
          return Exit::kQuit;
        }
        absl::StatusOr<keel::eal::GroupInfo> group = keel::eal::DescribeGroup();
        std::printf("primary process %d adopted the group\n", group.ok() ? group->primary_pid : 0);
        orphan = false;
      }
      // The second: a secondary's primary, or the primary's takeover requests.
      const int watch = primary  ? keel::eal::TakeoverRequestFd()
                        : orphan ? -1
                                 : keel::eal::PrimaryExitFd();
      struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {watch, POLLIN, 0}};
      const int nfds = fds[1].fd >= 0 ? 2 : 1;
      // A secondary looks for an adopting primary every 10 ms while it has none, every
      // 100 ms otherwise; the primary only waits.
      const int timeout_ms = primary ? -1 : orphan ? 10 : 100;
      if (poll(fds, nfds, timeout_ms) < 0) continue;  // EINTR
      if (nfds == 2 && (fds[1].revents & POLLIN)) {
        if (primary) {
          std::printf("another primary asks for the group; handing it over\n");
          return Exit::kHandOver;
        }
        if (!g_stay) {
          std::printf("the primary process exited; leaving\n");
          return Exit::kQuit;
        }
        std::printf("the primary process exited; waiting for a primary to adopt the group\n");
        orphan = true;
        continue;
      }
      if ((fds[0].revents & (POLLIN | POLLHUP)) == 0) continue;
      char buf[512];
      const ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
      if (got <= 0) {
        if (!pending.empty()) Command(pending);
        return Exit::kQuit;  // end of input
      }
      pending.append(buf, static_cast<size_t>(got));
    }
    const std::string line = pending.substr(0, newline);
    pending.erase(0, newline + 1);
    if (!Command(line)) return Exit::kQuit;
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<std::vector<std::string>> args = keel::eal::Init(argc, argv);
  if (!args.ok()) {
    if (absl::IsCancelled(args.status())) return 0;  // -h
    std::fprintf(stderr, "simple_mp: %s\n", args.status().ToString().c_str());
    return 1;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  for (const std::string& arg : *args) {
    if (arg == "--stay") {
      g_stay = true;
      continue;
    }
    std::fprintf(stderr, "simple_mp: unknown argument \"%s\" (after --, only --stay)\n",
                 arg.c_str());
    keel::eal::Cleanup().IgnoreError();
    return 1;
  }
  if (absl::Status s = Setup(); !s.ok()) {
    std::fprintf(stderr, "simple_mp: %s\n", s.ToString().c_str());
    keel::eal::Cleanup().IgnoreError();
    return 1;
  }
  std::printf("%s process %d: rings \"%s\" (send) and \"%s\" (receive), pool \"%s\"\n",
              std::string(keel::eal::ProcessTypeName(keel::eal::GetProcessType())).c_str(),
              getpid(), std::string(g_send->name()).c_str(), std::string(g_recv->name()).c_str(),
              kMessagePool);
  if (absl::Status s = keel::eal::LaunchOnAllWorkers(Receive, keel::eal::CallMain::kSkip);
      !s.ok()) {
    std::fprintf(stderr, "simple_mp: %s\n", s.ToString().c_str());
  }
  std::printf("%s", kHelp);
  std::printf("ready\n");
  const Exit exit = CommandLoop();

  // The workers finish the message in hand: nothing is lost at a hand-over.
  g_quit.store(true, std::memory_order_relaxed);
  keel::eal::WaitAllLcores();
  const absl::Status left = exit == Exit::kHandOver ? keel::eal::HandOver() : keel::eal::Cleanup();
  if (!left.ok()) {
    std::fprintf(stderr, "simple_mp: %s\n", left.ToString().c_str());
    return 1;
  }
  std::printf("process %d: %s\n", getpid(),
              exit == Exit::kHandOver ? "handed the group over" : "clean shutdown");
  return 0;
}
