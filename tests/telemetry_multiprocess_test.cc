// Telemetry across a group: every process serves its socket (the primary at DPDK's
// name, secondaries at ":N"), each component's commands report the group's shared
// state from any process, and Debian's dpdk-telemetry.py reaches keel unchanged.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/unix_socket.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/group_fixture.h"

namespace keel::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// One connection to a process's telemetry socket.
class TelemetryClient {
 public:
  explicit TelemetryClient(const std::string& path) {
    const std::filesystem::path p(path);
    absl::StatusOr<int> fd =
        ConnectSeqpacket(p.parent_path(), p.filename().string(), absl::Seconds(10));
    if (!fd.ok()) {
      greeting_ = fd.status().ToString();
      return;
    }
    fd_ = *fd;
    greeting_ = Read();
  }
  ~TelemetryClient() {
    if (fd_ >= 0) close(fd_);
  }
  const std::string& greeting() const { return greeting_; }
  std::string Ask(absl::string_view request) {
    if (fd_ < 0) return "NOT CONNECTED: " + greeting_;
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) < 0) return "SEND FAILED";
    return Read();
  }

 private:
  std::string Read() {
    std::string buf(64 * 1024, '\0');
    const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    return n < 0 ? "RECV FAILED" : buf.substr(0, n);
  }
  int fd_ = -1;
  std::string greeting_;
};

// The value of `key=` in a READY line.
std::string Field(const std::string& line, absl::string_view key) {
  const size_t at = line.find(absl::StrCat(key, "="));
  if (at == std::string::npos) return "";
  const size_t start = at + key.size() + 1;
  return line.substr(start, line.find(' ', start) - start);
}

class TelemetryTest : public GroupTest {
 protected:
  TelemetryTest() : GroupTest("tests/telemetry_helper") {}
};

TEST_F(TelemetryTest, EveryProcessServesItsOwnSocket) {
  std::unique_ptr<Subprocess> primary = Join({"--no-huge", "--lcores", "0@0"});
  const std::string primary_socket = Field(ready_line_, "socket");
  const std::string primary_pid = Field(ready_line_, "pid");
  std::unique_ptr<Subprocess> secondary =
      Join({"--no-huge", "--lcores", "1@0", "--proc-type", "secondary"});
  const std::string secondary_socket = Field(ready_line_, "socket");
  const std::string secondary_pid = Field(ready_line_, "pid");
  std::unique_ptr<Subprocess> quiet =
      Join({"--no-huge", "--lcores", "2@0", "--proc-type", "secondary", "--no-telemetry"});
  EXPECT_EQ(Field(ready_line_, "socket"), "");

  EXPECT_EQ(primary_socket, dir_ + "/dpdk_telemetry.v2");
  ASSERT_THAT(secondary_socket, StartsWith(dir_ + "/dpdk_telemetry.v2:"));
  int instance = 0;
  EXPECT_TRUE(
      absl::SimpleAtoi(secondary_socket.substr(secondary_socket.rfind(':') + 1), &instance));
  EXPECT_GE(instance, 1);
  for (const std::string& path : {primary_socket, secondary_socket}) {
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    EXPECT_TRUE(S_ISSOCK(st.st_mode)) << path;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << path;
  }

  TelemetryClient to_primary(primary_socket), to_secondary(secondary_socket);
  EXPECT_THAT(to_primary.greeting(), HasSubstr(absl::StrCat("\"pid\":", primary_pid, ",")));
  EXPECT_THAT(to_primary.greeting(), HasSubstr("\"max_output_len\":16384"));
  EXPECT_THAT(to_secondary.greeting(), HasSubstr(absl::StrCat("\"pid\":", secondary_pid, ",")));
  // Either process reports the whole group.
  const std::string processes = to_secondary.Ask("/eal/processes");
  EXPECT_THAT(processes, HasSubstr(absl::StrCat("\"pid\":", primary_pid, ",\"type\":\"primary\"")));
  EXPECT_THAT(processes,
              HasSubstr(absl::StrCat("\"pid\":", secondary_pid, ",\"type\":\"secondary\"")));
  EXPECT_THAT(processes, HasSubstr(absl::StrCat("\"pid\":", quiet->pid(), ",")));
  EXPECT_THAT(to_secondary.Ask("/eal/group"), HasSubstr("\"process_type\":\"secondary\""));
  EXPECT_EQ(to_primary.Ask("/eal/lcore/list"), "{\"/eal/lcore/list\":[0,1,2]}");
  EXPECT_THAT(
      to_primary.Ask("/eal/lcore/info,1"),
      HasSubstr(absl::StrCat("\"cpuset\":[0],\"pid\":", secondary_pid, ",\"this_process\":false")));
  EXPECT_THAT(to_primary.Ask("/eal/params"), HasSubstr("\"--lcores\",\"0@0\""));

  // A secondary's clean exit removes its socket; a killed one's is replaced by the
  // next process in its slot.
  Quit(quiet.get());
  Quit(secondary.get());
  EXPECT_FALSE(std::filesystem::exists(secondary_socket));
  std::unique_ptr<Subprocess> killed =
      Join({"--no-huge", "--lcores", "1@0", "--proc-type", "secondary"});
  const std::string killed_socket = Field(ready_line_, "socket");
  killed->Kill(SIGKILL);
  killed->Wait();
  EXPECT_TRUE(std::filesystem::exists(killed_socket));
  std::unique_ptr<Subprocess> next =
      Join({"--no-huge", "--lcores", "1@0", "--proc-type", "secondary"});
  EXPECT_EQ(Field(ready_line_, "socket"), killed_socket) << "the dead process's slot is reused";
  TelemetryClient to_next(killed_socket);
  EXPECT_THAT(to_next.greeting(), HasSubstr(absl::StrCat("\"pid\":", next->pid(), ",")));
  Quit(next.get());
  Quit(primary.get());
}

// A primary adopting a group whose primary was SIGKILLed serves the primary's socket
// again (the dead one's name, left behind, is replaced), and reports itself there.
TEST_F(TelemetryTest, AnAdoptingPrimaryServesThePrimarysSocket) {
  std::unique_ptr<Subprocess> dead = Join({"--no-huge", "--lcores", "0@0"});
  const std::string socket = Field(ready_line_, "socket");
  std::unique_ptr<Subprocess> secondary =
      Join({"--no-huge", "--lcores", "1@0", "--proc-type", "secondary"});
  dead->Kill(SIGKILL);
  dead->Wait();
  EXPECT_TRUE(std::filesystem::exists(socket));

  std::unique_ptr<Subprocess> adopter = Join({"--no-huge", "--lcores", "0@0", "--adopt"});
  EXPECT_EQ(Field(ready_line_, "socket"), socket);
  TelemetryClient client(socket);
  EXPECT_THAT(client.greeting(), HasSubstr(absl::StrCat("\"pid\":", adopter->pid())));
  const std::string group = client.Ask("/eal/group");
  EXPECT_THAT(group, HasSubstr(absl::StrCat("\"primary_pid\":", adopter->pid()))) << group;
  EXPECT_THAT(group, HasSubstr("\"primary_generation\":2")) << group;
  EXPECT_THAT(group, HasSubstr("\"primary_alive\":true")) << group;
  Quit(secondary.get());
  Quit(adopter.get());
}

TEST_F(TelemetryTest, EveryComponentReportsFromAnyProcess) {
  std::unique_ptr<Subprocess> primary = Join({"--no-huge", "--lcores", "0@0"});
  ASSERT_EQ(Ask(primary.get(), "objects"), "OBJECTS");
  ASSERT_EQ(Ask(primary.get(), "enqueue 10"), "ENQUEUED 10");
  ASSERT_EQ(Ask(primary.get(), "get 7"), "GOT 7");
  std::unique_ptr<Subprocess> secondary =
      Join({"--no-huge", "--lcores", "1@0", "--proc-type", "secondary"});
  TelemetryClient c(Field(ready_line_, "socket"));

  EXPECT_EQ(c.Ask("/ring/list"), "{\"/ring/list\":[\"tel_ring\"]}");
  EXPECT_THAT(c.Ask("/ring/info,tel_ring"),
              HasSubstr("\"producer_type\":\"MP\",\"consumer_type\":\"MC\",\"size\":1024,"
                        "\"mask\":1023,\"capacity\":1023,\"elem_size\":8,\"used_count\":10,"
                        "\"free_count\":1013"));
  EXPECT_EQ(c.Ask("/mempool/list"), "{\"/mempool/list\":[\"tel_pool\"]}");
  EXPECT_THAT(c.Ask("/mempool/info,tel_pool"),
              HasSubstr("\"size\":511,\"cache_size\":16,\"elt_size\":64"));
  EXPECT_THAT(c.Ask("/mempool/info,tel_pool"), HasSubstr("\"avail_count\":504,\"in_use_count\":7"));
  EXPECT_EQ(c.Ask("/hash/list"), "{\"/hash/list\":[\"tel_hash\"]}");
  EXPECT_THAT(c.Ask("/hash/info,tel_hash"),
              HasSubstr("\"function\":\"crc32c\",\"entries\":1024,"
                        "\"used\":100,\"occupancy\":0.09765625,\"key_length\":8"));
  EXPECT_EQ(c.Ask("/timer/list"), "{\"/timer/list\":[\"tel_timers\"]}");
  EXPECT_THAT(c.Ask("/timer/info,tel_timers"),
              HasSubstr("\"capacity\":64,\"pending\":5,\"lcores\":[{\"lcore\":0,\"pending\":5"));
  EXPECT_THAT(c.Ask("/timer/clock"), HasSubstr("\"source\":\"tsc\""));
  EXPECT_EQ(c.Ask("/interrupts/types"), "{\"/interrupts/types\":[\"tel.event\"]}");
  EXPECT_THAT(c.Ask("/interrupts/relay"),
              HasSubstr(absl::StrCat("{\"pid\":", primary->pid(),
                                     ",\"types\":[\"tel.event\"],\"depth\":0,\"capacity\":512")));
  EXPECT_THAT(c.Ask("/memory/objects"), HasSubstr("{\"name\":\"tel_pool\",\"kind\":\"mempool\""));
  EXPECT_THAT(c.Ask("/memory/segments"), HasSubstr("\"hugepages\":false"));
  EXPECT_THAT(c.Ask("/eal/heap_info,0"), HasSubstr("\"Heap_id\":0,\"Name\":\"socket_0\""));
  EXPECT_THAT(c.Ask("/eal/memzone_list"), StartsWith("{\"/eal/memzone_list\":[0,"));
  EXPECT_THAT(c.Ask("/eal/memzone_info,keel.interrupts"),
              HasSubstr("\"Name\":\"keel.interrupts\""));

  // Bad requests get an error reply each, and the connection goes on.
  EXPECT_THAT(c.Ask("/ring/info,nope"), HasSubstr("{\"/ring/info\":null,\"error\":"));
  EXPECT_THAT(c.Ask("/ring/info"), HasSubstr("needs a parameter"));
  EXPECT_THAT(c.Ask("/eal/lcore/info,99"), HasSubstr("lcore 99: not owned by any process"));
  EXPECT_THAT(c.Ask("/eal/lcore/info,x"), HasSubstr("lcore \\\"x\\\": not a number in 0..127"));
  EXPECT_THAT(c.Ask("/eal/heap_info,7"), HasSubstr("heap 7: the group has no memory on node 7"));
  EXPECT_THAT(c.Ask("/nope"), HasSubstr("unknown command"));
  EXPECT_EQ(c.Ask("/ring/list"), "{\"/ring/list\":[\"tel_ring\"]}");
  Quit(secondary.get());
  Quit(primary.get());
}

TEST_F(TelemetryTest, DpdkTelemetryPyReachesKeel) {
  const std::string script = "/usr/bin/dpdk-telemetry.py";
  if (!std::filesystem::exists(script)) {
    GTEST_SKIP() << script << " is missing: install Debian's dpdk-dev (tools/setup does)";
  }
  std::unique_ptr<Subprocess> primary = Join({"--no-huge", "--lcores", "0@0"});
  ASSERT_EQ(Ask(primary.get(), "objects"), "OBJECTS");
  std::unique_ptr<Subprocess> secondary =
      Join({"--no-huge", "--lcores", "1@0", "--proc-type", "secondary"});
  const std::string socket = Field(ready_line_, "socket");
  const std::string instance = socket.substr(socket.rfind(':') + 1);

  // -f takes the group's runtime directory: an absolute path replaces DPDK's
  // /var/run/dpdk/PREFIX in the script's os.path.join.
  std::unique_ptr<Subprocess> to_primary =
      Subprocess::Start({"/usr/bin/python3", script, "-f", dir_});
  to_primary->Send("/info\n/ring/list\n/ring/info,tel_ring\n/help,/hash/info\n/nope\n/\nquit\n");
  EXPECT_EQ(to_primary->Wait(), 0) << to_primary->Output();
  const std::string out = to_primary->Output();
  EXPECT_THAT(out, HasSubstr(absl::StrCat("{\"/info\": {\"version\": \"keel 0.1.0\", \"pid\": ",
                                          primary->pid(), ", \"max_output_len\": 16384}}")));
  EXPECT_THAT(out, HasSubstr("{\"/ring/list\": [\"tel_ring\"]}"));
  EXPECT_THAT(out, HasSubstr("{\"/ring/info\": {\"name\": \"tel_ring\""));
  EXPECT_THAT(out, HasSubstr("{\"/help\": {\"/hash/info\": \"Returns a hash table's"));
  EXPECT_THAT(out, HasSubstr("{\"/nope\": null, \"error\": \"unknown command"));
  EXPECT_THAT(out, HasSubstr("\"/timer/info\", \"/timer/list\"]}"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("Error")));

  // -i N reaches the secondary whose socket ends in ":N".
  std::unique_ptr<Subprocess> to_secondary =
      Subprocess::Start({"/usr/bin/python3", script, "-f", dir_, "-i", instance});
  to_secondary->Send("/info\n/eal/group\n");
  to_secondary->CloseStdin();
  EXPECT_EQ(to_secondary->Wait(), 0) << to_secondary->Output();
  EXPECT_THAT(to_secondary->Output(),
              HasSubstr(absl::StrCat("\"pid\": ", secondary->pid(), ", \"max_output_len\"")));
  EXPECT_THAT(to_secondary->Output(), HasSubstr("\"process_type\": \"secondary\""));
  Quit(secondary.get());
  Quit(primary.get());
}

TEST_F(TelemetryTest, TheTelemetryToolAsksAnyProcess) {
  const std::string tool = RunfilePath("tools/telemetry/telemetry");
  std::unique_ptr<Subprocess> primary = Join({"--no-huge", "--lcores", "0@0"});
  ASSERT_EQ(Ask(primary.get(), "objects"), "OBJECTS");
  std::unique_ptr<Subprocess> secondary =
      Join({"--no-huge", "--lcores", "1@0", "--proc-type", "secondary"});
  const std::string socket = Field(ready_line_, "socket");
  const std::string instance = socket.substr(socket.rfind(':') + 1);

  // One reply line per command given.
  std::unique_ptr<Subprocess> one =
      Subprocess::Start({tool, "-f", prefix_, "/ring/list", "/eal/lcore/list"});
  EXPECT_EQ(one->Wait(), 0) << one->Output();
  EXPECT_EQ(one->Output(), "{\"/ring/list\":[\"tel_ring\"]}\n{\"/eal/lcore/list\":[0,1]}\n");

  std::unique_ptr<Subprocess> list = Subprocess::Start({tool, "-f", prefix_, "-l"});
  EXPECT_EQ(list->Wait(), 0) << list->Output();
  EXPECT_THAT(list->Output(), HasSubstr(absl::StrCat("dpdk_telemetry.v2  pid ", primary->pid())));
  EXPECT_THAT(list->Output(), HasSubstr(absl::StrCat("dpdk_telemetry.v2:", instance, "  pid ",
                                                     secondary->pid(), "  telemetry_helpe")));

  // Commands from stdin, to the secondary by pid and by instance.
  for (const std::vector<std::string>& pick :
       {std::vector<std::string>{"--pid", absl::StrCat(secondary->pid())},
        std::vector<std::string>{"-i", instance}}) {
    std::vector<std::string> argv = {tool, "-f", prefix_};
    argv.insert(argv.end(), pick.begin(), pick.end());
    std::unique_ptr<Subprocess> stdin_mode = Subprocess::Start(argv);
    stdin_mode->Send("/eal/group\n\n/nope\nquit\n/never\n");
    EXPECT_EQ(stdin_mode->Wait(), 0) << stdin_mode->Output();
    EXPECT_THAT(stdin_mode->Output(), HasSubstr("\"process_type\":\"secondary\""));
    EXPECT_THAT(stdin_mode->Output(), HasSubstr("{\"/nope\":null,\"error\""));
    EXPECT_THAT(stdin_mode->Output(), Not(HasSubstr("/never")));
  }

  // Bad arguments, and where nothing listens, say so.
  std::unique_ptr<Subprocess> bad = Subprocess::Start({tool, "-f", prefix_, "ring/list"});
  EXPECT_EQ(bad->Wait(), 1);
  EXPECT_THAT(bad->Output(), HasSubstr("unknown argument \"ring/list\" (a command starts with"));
  std::unique_ptr<Subprocess> absent = Subprocess::Start({tool, "-f", prefix_, "-i", "77", "/"});
  EXPECT_EQ(absent->Wait(), 1);
  EXPECT_THAT(absent->Output(), HasSubstr("dpdk_telemetry.v2:77"));
  EXPECT_THAT(absent->Output(), HasSubstr("telemetry -l lists the sockets there"));
  std::unique_ptr<Subprocess> nobody = Subprocess::Start({tool, "-f", prefix_, "--pid", "1", "/"});
  EXPECT_EQ(nobody->Wait(), 1);
  EXPECT_THAT(nobody->Output(), HasSubstr("is pid 1's"));
  Quit(secondary.get());
  Quit(primary.get());
}

}  // namespace
}  // namespace keel::testing
