// The group's time source across real processes: timer_helper processes (see
// tests/timer_helper.cc) in a group of each test's own (--no-huge: no hugepages needed),
// a primary on lcore 0 and secondaries on lcore 1.
//
// This machine has no /dev/hpet: the HPET is a file laid out like its registers
// (capabilities with the period and COUNT_SIZE_CAP, the config's ENABLE_CNF, the main
// counter at 0xf0), which the primary opens through SetHpetDeviceForTest (the helper's
// --hpet-fake) and whose counter the test moves with pwrite. The file is unlinked once
// the primary has opened it: a secondary can then read it only through the fd the
// primary passes it over RUNDIR/hpet.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"
#include "tests/subprocess.h"

namespace keel {
namespace {

using ::keel::testing::Ask;
using ::keel::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr uint32_t kPeriod14MHz = 69'841'279;  // 14.318 MHz, the usual HPET
constexpr uint64_t kHz14MHz = 14'318'180;

// The number after "key=" in `line`, or -1 (also for numbers beyond int64).
int64_t Field(const std::string& line, absl::string_view key) {
  for (absl::string_view word : absl::StrSplit(line, ' ')) {
    int64_t v;
    if (absl::ConsumePrefix(&word, absl::StrCat(key, "=")) && absl::SimpleAtoi(word, &v)) {
      return v;
    }
  }
  return -1;
}

// What the helper's "cycles" command answers, as a number (0 if it answers otherwise).
uint64_t CyclesOf(Subprocess* p) {
  const std::string answer = Ask(p, "cycles");
  uint64_t n = 0;
  absl::string_view text = answer;
  if (!absl::ConsumePrefix(&text, "CYCLES ") || !absl::SimpleAtoi(text, &n)) {
    ADD_FAILURE() << "cycles answered: " << answer;
  }
  return n;
}

// The text after "why=" (the rest of the line).
std::string Why(const std::string& line) {
  const size_t at = line.find(" why=");
  return at == std::string::npos ? "NO why= IN: " + line : line.substr(at + 5);
}

// A file laid out like the HPET's registers; the test moves its counter with pwrite().
class FakeHpet {
 public:
  FakeHpet(uint32_t period_fs, bool counter64) : counter64_(counter64) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    path_ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/fake-hpet.", getpid(), ".",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd_, 0) << path_ << ": " << std::strerror(errno);
    EXPECT_EQ(::ftruncate(fd_, 1024), 0);
    // GCAP_ID: the period in the high half; low half: vendor 0x8086, legacy-capable, 3
    // comparators, revision 1, COUNT_SIZE_CAP (bit 13) for a 64-bit counter.
    const uint64_t caps =
        (uint64_t{period_fs} << 32) | 0x80868201u | (counter64 ? uint64_t{1} << 13 : 0);
    const uint64_t config = 1;  // GEN_CONF ENABLE_CNF
    EXPECT_EQ(::pwrite(fd_, &caps, 8, 0x000), 8);
    EXPECT_EQ(::pwrite(fd_, &config, 8, 0x010), 8);
  }
  ~FakeHpet() {
    ::close(fd_);
    Unlink();
  }
  // MAIN_CNT: 32 bits for a 32-bit counter (as its readers read it), else 64.
  void Set(uint64_t counter) {
    if (counter64_) {
      ASSERT_EQ(::pwrite(fd_, &counter, 8, 0x0f0), 8);
    } else {
      const uint32_t low = static_cast<uint32_t>(counter);
      ASSERT_EQ(::pwrite(fd_, &low, 4, 0x0f0), 4);
    }
  }
  void Unlink() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  bool counter64_;
  std::string path_;
  int fd_ = -1;
};

class TimerSourceTest : public testing::GroupTest {
 protected:
  TimerSourceTest() : GroupTest("tests/timer_helper") {}

  std::string Missing() const { return absl::StrCat(dir_, ".no-hpet"); }

  std::unique_ptr<Subprocess> Primary(const std::vector<std::string>& extra,
                                      const std::vector<std::string>& app) {
    std::vector<std::string> args = {"-l", "0",           "--no-huge", "-m",
                                     "32", "--log-level", "timer:info"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::unique_ptr<Subprocess> p = Join(args, app);
    EXPECT_THAT(ready_line_, HasSubstr("type=primary"));
    return p;
  }
  // A secondary on lcore `lcore` (pinned to CPU lcore % 2).
  std::vector<std::string> SecondaryArgs(const std::vector<std::string>& extra = {},
                                         int lcore = 1) const {
    std::vector<std::string> args = {"--proc-type=secondary", "--lcores",
                                     absl::StrCat(lcore, "@", lcore % 2), "--log-level",
                                     "timer:info"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::unique_ptr<Subprocess> Secondary(const std::vector<std::string>& extra = {}, int lcore = 1) {
    std::unique_ptr<Subprocess> p = Join(SecondaryArgs(extra, lcore));
    EXPECT_THAT(ready_line_, HasSubstr("type=secondary"));
    return p;
  }

  // After the group ended: the primary's Cleanup left nothing in the runtime directory
  // (which it removes with its last file).
  void ExpectNothingLeft() {
    std::vector<std::string> left;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
      left.push_back(entry.path().filename());
    }
    EXPECT_THAT(left, ::testing::IsEmpty()) << dir_;
    EXPECT_FALSE(std::filesystem::exists(dir_)) << dir_;
    EXPECT_THAT(testing::SegmentFiles(prefix_), ::testing::IsEmpty());
  }
};

TEST_F(TimerSourceTest, AutoFallsBackToTheTscWhenTheDeviceIsMissingAndSecondariesFollow) {
  std::unique_ptr<Subprocess> primary = Primary({}, {"--hpet-fake", Missing()});
  EXPECT_THAT(ready_line_, HasSubstr("source=tsc"));
  const std::string because =
      absl::StrCat("auto: cannot open ", Missing(), ": No such file or directory (errno 2)");
  const std::string source = Ask(primary.get(), "source");
  EXPECT_THAT(source, StartsWith("SOURCE name=tsc "));
  EXPECT_THAT(source, HasSubstr("group=1 probes=1"));
  EXPECT_EQ(Why(source), because);
  // The log line says which, at what frequency, and why.
  EXPECT_THAT(primary->Output(), HasSubstr("timer: INFO: timer source: tsc at "));
  EXPECT_THAT(primary->Output(), ::testing::AnyOf(HasSubstr(" Hz, calibrated"),
                                                  HasSubstr(" Hz, from CPUID leaf 0x15")));
  EXPECT_THAT(primary->Output(), HasSubstr(absl::StrCat("), because ", because)));
  const int64_t hz = Field(source, "hz");
  EXPECT_GT(hz, 100'000'000);

  // The secondary uses the primary's frequency as it is: it never calibrates.
  std::unique_ptr<Subprocess> secondary = Secondary();
  EXPECT_THAT(ready_line_, HasSubstr(absl::StrCat("source=tsc hz=", hz, " ")));
  const std::string seen = Ask(secondary.get(), "source");
  EXPECT_EQ(Field(seen, "hz"), hz);
  EXPECT_THAT(seen, HasSubstr("group=1 probes=0"));
  // And its Init is fast: a calibration alone takes three 50 ms windows (about 1 ms
  // without one on this VM, the primary about 160 ms).
  EXPECT_LT(Field(ready_line_, "init_us"), 150'000) << ready_line_;
  EXPECT_EQ(Why(seen), because);
  EXPECT_THAT(secondary->Output(), HasSubstr("timer source: tsc at "));
  EXPECT_THAT(secondary->Output(),
              HasSubstr(absl::StrCat("its primary chose it because ", because)));
  // One clock: a value read later in the other process is not smaller.
  const uint64_t before = CyclesOf(primary.get());
  EXPECT_GE(CyclesOf(secondary.get()), before);
  // A delay in the secondary lasts its microseconds at the group's frequency.
  const std::string delayed = Ask(secondary.get(), "delay-us 1000");
  EXPECT_GE(Field(delayed, "cycles"), hz / 1000) << delayed;
  Quit(secondary.get());
  Quit(primary.get());
  ExpectNothingLeft();
}

TEST_F(TimerSourceTest, HpetWithoutTheDeviceFailsInitClearly) {
  const std::string output = JoinFails(
      {"-l", "0", "--no-huge", "-m", "32", "--timer-source", "hpet"}, {"--hpet-fake", Missing()});
  EXPECT_THAT(output, HasSubstr(absl::StrCat("INIT-FAILED: FAILED_PRECONDITION: --timer-source "
                                             "hpet: cannot open ",
                                             Missing(), ": No such file or directory (errno 2)")));
  EXPECT_THAT(output, Not(HasSubstr("READY")));
  ExpectNothingLeft();
  // The prefix is free for the next primary.
  std::unique_ptr<Subprocess> primary = Primary({"--timer-source", "tsc"}, {});
  EXPECT_THAT(ready_line_, HasSubstr("source=tsc"));
  EXPECT_EQ(Why(Ask(primary.get(), "source")), "--timer-source tsc");
  Quit(primary.get());
  ExpectNothingLeft();
}

TEST_F(TimerSourceTest, PrimaryAndSecondaryReadOneHpetThroughThePassedFdAcrossWraps) {
  FakeHpet fake(kPeriod14MHz, /*counter64=*/false);
  fake.Set(0x10000000u);
  std::unique_ptr<Subprocess> primary = Primary({}, {"--hpet-fake", fake.path()});
  EXPECT_THAT(ready_line_, HasSubstr(absl::StrCat("source=hpet hz=", kHz14MHz, " ")));
  // Only the primary's fd is left: a secondary that opened the path would fail.
  fake.Unlink();
  const std::string socket = absl::StrCat(dir_, "/hpet");
  struct stat st;
  ASSERT_EQ(::stat(socket.c_str(), &st), 0) << socket;
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  const std::string because = absl::StrCat("auto: ", fake.path(), " opened and mapped");
  EXPECT_THAT(
      primary->Output(),
      HasSubstr(absl::StrCat("timer source: hpet at 14.32 MHz (14318180 Hz, 32-bit "
                             "counter), because ",
                             because, "; serving the HPET's fd to secondaries on ", socket)));

  std::unique_ptr<Subprocess> secondary = Secondary({"--timer-source", "hpet"});
  EXPECT_THAT(ready_line_, HasSubstr(absl::StrCat("source=hpet hz=", kHz14MHz, " ")));
  const std::string seen = Ask(secondary.get(), "source");
  EXPECT_THAT(seen, StartsWith(absl::StrCat("SOURCE name=hpet hz=", kHz14MHz)));
  EXPECT_THAT(seen, HasSubstr("counter64=0 group=1 probes=0"));
  EXPECT_EQ(Why(seen), because);
  EXPECT_THAT(secondary->Output(),
              HasSubstr(absl::StrCat("the HPET's fd from the primary over ", socket)));
  EXPECT_EQ(Ask(primary.get(), "cycles"), "CYCLES 268435456");
  EXPECT_EQ(Ask(secondary.get(), "cycles"), "CYCLES 268435456");

  // Steps under 2^31 ticks, across two wraps; each process reads some values first.
  uint64_t expect = 0x10000000u;
  const uint64_t steps[] = {0x6fff0000u, 0x7ffff000u, 0x00020000u, 0x7fffffffu,
                            0x7fff0000u, 0x12345678u, 0x7ffffff0u, 0x00000010u};
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); ++i) {
    expect += steps[i];
    fake.Set(expect);
    Subprocess* first = i % 2 == 0 ? primary.get() : secondary.get();
    Subprocess* second = i % 2 == 0 ? secondary.get() : primary.get();
    const std::string want = absl::StrCat("CYCLES ", expect);
    EXPECT_EQ(Ask(first, "cycles"), want) << "step " << i;
    EXPECT_EQ(Ask(second, "cycles"), want) << "step " << i;
  }
  ASSERT_GT(expect, uint64_t{2} << 32) << "the steps must cross two wraps";

  // Another secondary, once the file is gone, gets the fd too.
  std::unique_ptr<Subprocess> third = Secondary({}, /*lcore=*/2);
  EXPECT_THAT(ready_line_, HasSubstr("source=hpet"));
  EXPECT_EQ(Ask(third.get(), "cycles"), absl::StrCat("CYCLES ", expect));
  Quit(third.get());
  Quit(secondary.get());
  Quit(primary.get());
  ExpectNothingLeft();
}

// The primary on the HPET SIGKILLed, a new primary adopting the group: it keeps the
// group's record and extension, opens the device again and serves its fd; the time of
// every process goes on from where it was, across wraps, and a new secondary gets the
// adopter's fd.
TEST_F(TimerSourceTest, AnAdoptingPrimaryKeepsTheGroupsHpetAndServesItAgain) {
  FakeHpet fake(kPeriod14MHz, /*counter64=*/false);
  fake.Set(0x70000000u);
  std::unique_ptr<Subprocess> dead = Primary({}, {"--hpet-fake", fake.path()});
  EXPECT_THAT(ready_line_, HasSubstr("source=hpet"));
  std::unique_ptr<Subprocess> secondary = Secondary();
  uint64_t expect = 0x70000000u + 0x7fff0000u;  // past the first wrap
  fake.Set(expect & 0xffffffffu);
  EXPECT_EQ(Ask(secondary.get(), "cycles"), absl::StrCat("CYCLES ", expect));
  dead->Kill(SIGKILL);
  dead->Wait();
  // Without a primary, the secondary's clock goes on.
  expect += 0x7ffff000u;
  fake.Set(expect & 0xffffffffu);
  EXPECT_EQ(Ask(secondary.get(), "cycles"), absl::StrCat("CYCLES ", expect));

  std::unique_ptr<Subprocess> adopter =
      Primary({"--adopt", "--timer-source", "hpet"}, {"--hpet-fake", fake.path()});
  EXPECT_THAT(ready_line_, HasSubstr(absl::StrCat("source=hpet hz=", kHz14MHz, " ")));
  EXPECT_THAT(adopter->Output(), HasSubstr("the group's, kept by the adopting primary; serving "
                                           "the HPET's fd to secondaries on"));
  EXPECT_EQ(Ask(adopter.get(), "cycles"), absl::StrCat("CYCLES ", expect));
  for (const uint64_t step : {0x00020000u, 0x7fffffffu, 0x7fff0000u}) {  // two more wraps
    expect += step;
    fake.Set(expect & 0xffffffffu);
    EXPECT_EQ(Ask(adopter.get(), "cycles"), absl::StrCat("CYCLES ", expect));
    EXPECT_EQ(Ask(secondary.get(), "cycles"), absl::StrCat("CYCLES ", expect));
  }
  ASSERT_GT(expect, uint64_t{2} << 32);
  fake.Unlink();  // a new secondary must get the adopter's fd
  std::unique_ptr<Subprocess> third = Secondary({}, /*lcore=*/2);
  EXPECT_THAT(ready_line_, HasSubstr("source=hpet"));
  EXPECT_EQ(Ask(third.get(), "cycles"), absl::StrCat("CYCLES ", expect));
  Quit(third.get());
  Quit(secondary.get());
  Quit(adopter.get());
  ExpectNothingLeft();
}

// Nobody asks for the time, but the primary's fd-server thread reads the HPET every
// 2^29 ticks (here, at 10 GHz, every 54 ms): the extension counts every wrap. Without
// that thread the processes would be whole wraps behind.
TEST_F(TimerSourceTest, ThePrimarysThreadKeepsTheExtensionWhenNobodyReads) {
  FakeHpet fake(/*period_fs=*/100'000, /*counter64=*/false);  // 10 GHz
  fake.Set(0x100);
  std::unique_ptr<Subprocess> primary =
      Primary({"--timer-source", "hpet"}, {"--hpet-fake", fake.path()});
  EXPECT_THAT(ready_line_, HasSubstr("source=hpet hz=10000000000 "));
  std::unique_ptr<Subprocess> secondary = Secondary();
  uint64_t expect = 0x100;
  for (int i = 0; i < 10; ++i) {  // 10 steps of 0x60000000: 3.75 wraps, unobserved
    expect += 0x60000000u;
    fake.Set(expect);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_EQ(Ask(secondary.get(), "cycles"), absl::StrCat("CYCLES ", expect));
  EXPECT_EQ(Ask(primary.get(), "cycles"), absl::StrCat("CYCLES ", expect));
  Quit(secondary.get());
  Quit(primary.get());
  ExpectNothingLeft();
}

TEST_F(TimerSourceTest, A64BitHpetIsSharedAsIs) {
  FakeHpet fake(kPeriod14MHz, /*counter64=*/true);
  fake.Set(0x123456789abcull);
  std::unique_ptr<Subprocess> primary =
      Primary({"--timer-source", "hpet"}, {"--hpet-fake", fake.path()});
  fake.Unlink();
  std::unique_ptr<Subprocess> secondary = Secondary();
  EXPECT_THAT(Ask(secondary.get(), "source"), HasSubstr("counter64=1"));
  EXPECT_EQ(Ask(secondary.get(), "cycles"), "CYCLES 20015998343868");
  fake.Set(0xfedcba9876543210ull);
  EXPECT_EQ(Ask(secondary.get(), "cycles"), "CYCLES 18364758544493064720");
  EXPECT_EQ(Ask(primary.get(), "cycles"), "CYCLES 18364758544493064720");
  Quit(secondary.get());
  Quit(primary.get());
  ExpectNothingLeft();
}

TEST_F(TimerSourceTest, ASecondaryNamingAnotherSourceIsRefused) {
  // A TSC group: an explicit hpet is refused, naming both; tsc and auto join.
  {
    std::unique_ptr<Subprocess> primary = Primary({}, {"--hpet-fake", Missing()});
    const std::string output = JoinFails(SecondaryArgs({"--timer-source", "hpet"}));
    EXPECT_THAT(output,
                HasSubstr(absl::StrCat("INIT-FAILED: FAILED_PRECONDITION: --timer-source "
                                       "hpet: group \"",
                                       prefix_, "\" runs on tsc, chosen by its primary (pid ",
                                       primary->pid(), ") because auto: cannot open ")));
    EXPECT_THAT(output, HasSubstr("give --timer-source tsc or auto"));
    std::unique_ptr<Subprocess> secondary = Secondary({"--timer-source", "tsc"});
    EXPECT_THAT(ready_line_, HasSubstr("source=tsc"));
    Quit(secondary.get());
    Quit(primary.get());
    ExpectNothingLeft();
  }
  // An HPET group: an explicit tsc is refused.
  FakeHpet fake(kPeriod14MHz, /*counter64=*/false);
  std::unique_ptr<Subprocess> primary = Primary({}, {"--hpet-fake", fake.path()});
  EXPECT_THAT(ready_line_, HasSubstr("source=hpet"));
  const std::string output = JoinFails(SecondaryArgs({"--timer-source", "tsc"}));
  EXPECT_THAT(output, HasSubstr(absl::StrCat("--timer-source tsc: group \"", prefix_,
                                             "\" runs on hpet, chosen by its primary")));
  // The refused one left the group as it was.
  std::unique_ptr<Subprocess> secondary = Secondary();
  EXPECT_THAT(ready_line_, HasSubstr("source=hpet"));
  Quit(secondary.get());
  Quit(primary.get());
  ExpectNothingLeft();
}

// What a process of another uid gets from the fd server: nothing (SO_PEERCRED). The
// runtime directory (0700) and the socket (0600) normally keep it from connecting at
// all; the test opens both up to reach the check behind them.
TEST_F(TimerSourceTest, TheFdServerRefusesAnotherUid) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  FakeHpet fake(kPeriod14MHz, /*counter64=*/false);
  std::unique_ptr<Subprocess> primary = Primary({}, {"--hpet-fake", fake.path()});
  const std::string socket = absl::StrCat(dir_, "/hpet");
  ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
  ASSERT_EQ(::chmod(socket.c_str(), 0666), 0);
  // The child connects as uid 65534 through a descriptor of the runtime directory it
  // opened as root: the runtime base above it stays 0700.
  const int dir_fd = ::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir_fd, 0) << dir_;
  const std::string via = absl::StrCat("/proc/self/fd/", dir_fd, "/hpet");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Exit codes: 10 refused (closed without an fd), 11 got an fd, 12 cannot connect,
    // 13 setuid failed, 14 no answer.
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
      ::_exit(13);
    }
    // Dumpable again (setuid cleared it), so /proc/self/fd is this process's to use.
    ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, via.c_str(), via.size() + 1);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) ::_exit(12);
    pollfd pfd = {fd, POLLIN, 0};
    if (::poll(&pfd, 1, 10000) != 1) ::_exit(14);
    char data[64];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    iovec iov = {data, sizeof(data)};
    msghdr header = {};
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(fd, &header, 0);
    ::_exit(n == 0 && CMSG_FIRSTHDR(&header) == nullptr ? 10 : 11);
  }
  ::close(dir_fd);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ::chmod(dir_.c_str(), 0700);
  ::chmod(socket.c_str(), 0600);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 10) << "10: refused; 11: got an fd; 12: cannot connect; 13: "
                                        "setuid failed; 14: no answer";
  EXPECT_TRUE(primary->WaitForOutput(
      absl::StrCat("refused the HPET's fd to process ", child, " of uid 65534"), testing::kTimeout))
      << primary->Output();
  // A process of the primary's uid still gets it.
  std::unique_ptr<Subprocess> secondary = Secondary();
  EXPECT_THAT(ready_line_, HasSubstr("source=hpet"));
  Quit(secondary.get());
  Quit(primary.get());
  ExpectNothingLeft();
}

}  // namespace
}  // namespace keel
