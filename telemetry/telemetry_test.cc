#include "telemetry/telemetry.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/unix_socket.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "telemetry/json.h"
#include "telemetry/server.h"

namespace keel::telemetry {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(JsonTest, Scalars) {
  EXPECT_EQ(Json().Dump(), "null");
  EXPECT_EQ(Json(true).Dump(), "true");
  EXPECT_EQ(Json(false).Dump(), "false");
  EXPECT_EQ(Json(-5).Dump(), "-5");
  EXPECT_EQ(Json(std::numeric_limits<int64_t>::min()).Dump(), "-9223372036854775808");
  EXPECT_EQ(Json(std::numeric_limits<uint64_t>::max()).Dump(), "18446744073709551615");
  EXPECT_EQ(Json(0.5).Dump(), "0.5");
  EXPECT_EQ(Json(std::nan("")).Dump(), "null");
  EXPECT_EQ(Json(HUGE_VAL).Dump(), "null");
  EXPECT_EQ(Json("text").Dump(), "\"text\"");
}

TEST(JsonTest, StringsAreEscapedToAscii) {
  EXPECT_EQ(Json("a\"b\\c\nd\te\x01").Dump(), "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
  // A byte above 0x7f (say, from a corrupted name in shared memory) cannot make the
  // output invalid UTF-8.
  EXPECT_EQ(Json(std::string("\xff\x80z")).Dump(), "\"\\u00ff\\u0080z\"");
  EXPECT_EQ(JsonQuote("\x7f"), "\"\\u007f\"");
}

TEST(JsonTest, ArraysAndObjectsKeepOrder) {
  Json o = Json::Object();
  o.Set("z", 1).Set("a", Json::Array().Push("x").Push(Json()).Push(Json::Object()));
  o.Set("z", 2);  // keeps its place, takes the new value
  EXPECT_EQ(o.Dump(), "{\"z\":2,\"a\":[\"x\",null,{}]}");
  EXPECT_EQ(o.size(), 2u);
  Json grown;  // a null grows into what is asked of it
  grown.Push(1);
  EXPECT_EQ(grown.Dump(), "[1]");
  EXPECT_EQ(Json::Array().Dump(), "[]");
}

absl::StatusOr<Json> Echo(absl::string_view params) { return Json(params); }

TEST(RegistryTest, RefusesBadCommands) {
  const Handler echo = Echo;
  EXPECT_THAT(RegisterCommand({"nope", "h", Params::kNone, echo}).message(),
              HasSubstr("must start with \"/\""));
  EXPECT_THAT(RegisterCommand({"/a-b", "h", Params::kNone, echo}).message(),
              HasSubstr("character \"-\" is not one of [A-Za-z0-9_/]"));
  EXPECT_THAT(RegisterCommand({"/" + std::string(55, 'a'), "h", Params::kNone, echo}).message(),
              HasSubstr("56 characters, at most 55"));
  EXPECT_THAT(RegisterCommand({"/t/nohandler", "h", Params::kNone, nullptr}).message(),
              HasSubstr("no handler"));
  EXPECT_THAT(RegisterCommand({"/t/nohelp", "", Params::kNone, echo}).message(),
              HasSubstr("no help text"));
  EXPECT_EQ(RegisterCommand({"/info", "h", Params::kNone, echo}).code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(RegisterCommand({"/t/once", "h", Params::kNone, echo}).ok());
  EXPECT_EQ(RegisterCommand({"/t/once", "h", Params::kNone, echo}).code(),
            absl::StatusCode::kAlreadyExists);
}

const CommandRegistrar kCommands({
    {"/t/echo", "Returns its parameters", Params::kOptional, Echo},
    {"/t/needs", "Parameters: int n", Params::kRequired, Echo},
    {"/t/fails", "Fails", Params::kNone,
     [](absl::string_view) -> absl::StatusOr<Json> {
       return absl::NotFoundError("ring \"x\": not found");
     }},
    {"/t/big", "Returns N bytes of text", Params::kRequired,
     [](absl::string_view n) -> absl::StatusOr<Json> {
       return Json(std::string(std::atoi(std::string(n).c_str()), 'x'));
     }},
});

TEST(ExecuteTest, Builtins) {
  const std::string list = Execute("/");
  EXPECT_THAT(list, StartsWith("{\"/\":[\"/\","));
  EXPECT_THAT(list, HasSubstr("\"/help\",\"/info\""));
  EXPECT_THAT(list, HasSubstr("\"/t/echo\""));
  EXPECT_EQ(Execute("/info", {"keel 9.9.9", 4096}),
            absl::StrCat("{\"/info\":{\"version\":\"keel 9.9.9\",\"pid\":", getpid(),
                         ",\"max_output_len\":4096}}"));
  EXPECT_EQ(
      Greeting({"keel 9.9.9", 4096}),
      absl::StrCat("{\"version\":\"keel 9.9.9\",\"pid\":", getpid(), ",\"max_output_len\":4096}"));
  EXPECT_EQ(Execute("/help,/t/echo"), "{\"/help\":{\"/t/echo\":\"Returns its parameters\"}}");
  EXPECT_THAT(Execute("/help,/nope"), HasSubstr("{\"/help\":null,\"error\":\"unknown command"));
  EXPECT_THAT(Execute("/help"), HasSubstr("{\"/help\":null,\"error\":\"needs a parameter"));
}

TEST(ExecuteTest, Commands) {
  EXPECT_EQ(Execute("/t/echo,a,b"), "{\"/t/echo\":\"a,b\"}");
  EXPECT_EQ(Execute("/t/echo"), "{\"/t/echo\":\"\"}");
  EXPECT_EQ(Execute("/t/fails"), "{\"/t/fails\":null,\"error\":\"ring \\\"x\\\": not found\"}");
  EXPECT_THAT(Execute("/t/fails,1"), HasSubstr("takes no parameters (given \\\"1\\\")"));
  EXPECT_THAT(Execute("/t/needs"), HasSubstr("needs a parameter: Parameters: int n"));
  EXPECT_THAT(Execute("/nope,1"),
              HasSubstr("{\"/nope\":null,\"error\":\"unknown command; \\\"/\\\" lists"));
  EXPECT_THAT(Execute("ring"), HasSubstr("{\"ring\":null,\"error\":\"a command starts with"));
  EXPECT_THAT(Execute(""), HasSubstr("{\"\":null,\"error\""));
  EXPECT_THAT(Execute("/t/echo," + std::string(2000, 'p')),
              HasSubstr("\"error\":\"request of 2008 bytes, at most 1024\""));
}

TEST(ExecuteTest, ALongReplyIsRefusedNotTruncated) {
  const Identity small{"keel", 1000};
  EXPECT_EQ(Execute("/t/big,900", small).size(), 900u + 13);
  const std::string refused = Execute("/t/big,990", small);
  EXPECT_EQ(refused,
            "{\"/t/big\":null,\"error\":\"reply of 1003 bytes exceeds max_output_len 1000; ask "
            "for less\"}");
  // Even an error too long for the limit stays whole JSON.
  EXPECT_EQ(Execute("/" + std::string(900, 'u'), {"keel", 64}), "{\"error\":\"reply too long\"}");
}

// A client of a Server under test.
class Client {
 public:
  Client(const std::string& dir, absl::string_view file) {
    absl::StatusOr<int> fd = ConnectSeqpacket(dir, file, absl::Seconds(10));
    if (fd.ok()) fd_ = *fd;
  }
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  std::string Read() {
    std::string buf(64 * 1024, '\0');
    const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    return n < 0 ? "<recv failed>" : buf.substr(0, n);
  }
  std::string Ask(absl::string_view request) {
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) < 0) return "<send failed>";
    return Read();
  }

 private:
  int fd_ = -1;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/telemetry_test.", getpid());
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  }
  void TearDown() override { rmdir(dir_.c_str()); }
  std::string dir_;
};

TEST_F(ServerTest, GreetsAndAnswersOnA0600Socket) {
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(dir_, SocketName(0), {{"keel 1.2.3", 16384}});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->path(), dir_ + "/dpdk_telemetry.v2");
  struct stat st;
  ASSERT_EQ(stat((*server)->path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  Client c(dir_, SocketName(0));
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Read(), Greeting({"keel 1.2.3", 16384}));
  EXPECT_EQ(c.Ask("/t/echo,x"), "{\"/t/echo\":\"x\"}");
  EXPECT_THAT(c.Ask("/bad"), HasSubstr("{\"/bad\":null,\"error\""));
  // A request longer than DPDK's 1024 bytes is refused, not cut.
  EXPECT_THAT(c.Ask("/t/echo," + std::string(5000, 'p')),
              HasSubstr("request of 5008 bytes, at most 1024"));
  EXPECT_EQ(c.Ask("/t/echo,after"), "{\"/t/echo\":\"after\"}");
  EXPECT_EQ((*server)->Stats().requests, 4u);

  const std::string path = (*server)->path();
  server->reset();
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "the socket file outlived its server";
}

TEST_F(ServerTest, ReplacesAStaleSocketAndRefusesBadOptions) {
  {
    absl::StatusOr<std::unique_ptr<Server>> first = Server::Start(dir_, SocketName(3));
    ASSERT_TRUE(first.ok()) << first.status();
    // A second server taking the name (a process in a dead one's slot) replaces it.
    absl::StatusOr<std::unique_ptr<Server>> second = Server::Start(dir_, SocketName(3));
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ((*second)->path(), dir_ + "/dpdk_telemetry.v2:3");
    Client c(dir_, SocketName(3));
    ASSERT_TRUE(c.connected());
    c.Read();
    EXPECT_EQ(c.Ask("/t/echo,2"), "{\"/t/echo\":\"2\"}");
    EXPECT_EQ((*second)->Stats().accepted, 1u);
    EXPECT_EQ((*first)->Stats().accepted, 0u);
    second->reset();
  }
  ServerOptions tiny;
  tiny.identity.max_output_len = 10;
  EXPECT_THAT(Server::Start(dir_, "t", tiny).status().message(),
              HasSubstr("max_output_len 10: at least 64"));
  ServerOptions none;
  none.max_clients = 0;
  EXPECT_THAT(Server::Start(dir_, "t", none).status().message(),
              HasSubstr("max_clients 0: at least 1"));
  EXPECT_THAT(Server::Start(dir_ + "/missing", "t").status().message(), HasSubstr("missing"));
}

TEST_F(ServerTest, ManyClientsAtOnce) {
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(dir_, SocketName(0));
  ASSERT_TRUE(server.ok()) << server.status();
  constexpr int kClients = 24, kRequests = 200;
  std::vector<std::thread> threads;
  std::vector<int> good(kClients, 0);
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      Client c(dir_, SocketName(0));
      if (!c.connected()) return;
      c.Read();
      for (int i = 0; i < kRequests; ++i) {
        const std::string tag = absl::StrCat(t, ".", i);
        if (c.Ask("/t/echo," + tag) == absl::StrCat("{\"/t/echo\":\"", tag, "\"}")) ++good[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kClients; ++t) EXPECT_EQ(good[t], kRequests) << "client " << t;
  EXPECT_EQ((*server)->Stats().requests, uint64_t{kClients} * kRequests);
}

TEST_F(ServerTest, AClientThatNeverReadsBlocksNobody) {
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(dir_, SocketName(0));
  ASSERT_TRUE(server.ok()) << server.status();
  Client mute(dir_, SocketName(0));
  ASSERT_TRUE(mute.connected());
  // Requests for 15 KB replies until its socket refuses more: the server holds a reply
  // for it and stops reading it.
  const std::string request = "/t/big,15000";
  int sent = 0;
  while (send(mute.fd(), request.data(), request.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
    ++sent;
    if (sent > 100000) break;
  }
  EXPECT_GT(sent, 10);
  for (int i = 0; i < 100 && (*server)->Stats().held == 0; ++i)
    absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ((*server)->Stats().held, 1u);

  Client other(dir_, SocketName(0));
  ASSERT_TRUE(other.connected());
  other.Read();
  const absl::Time start = absl::Now();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(other.Ask("/t/echo,i"), "{\"/t/echo\":\"i\"}");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  // Once it reads, every request it sent is answered, in order, whole.
  EXPECT_THAT(mute.Read(), StartsWith("{\"version\""));
  for (int i = 0; i < sent; ++i) {
    ASSERT_EQ(mute.Read().size(), 15000u + 13) << "reply " << i;
  }
}

TEST_F(ServerTest, ClientsBeyondTheLimitAreClosed) {
  ServerOptions options;
  options.max_clients = 2;
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(dir_, SocketName(0), options);
  ASSERT_TRUE(server.ok()) << server.status();
  Client a(dir_, SocketName(0)), b(dir_, SocketName(0));
  ASSERT_TRUE(a.connected() && b.connected());
  a.Read();
  b.Read();
  Client c(dir_, SocketName(0));
  ASSERT_TRUE(c.connected());  // the kernel accepts; the server then closes it
  char byte;
  EXPECT_EQ(recv(c.fd(), &byte, 1, 0), 0);
  EXPECT_EQ((*server)->Stats().refused, 1u);
  EXPECT_EQ(a.Ask("/t/echo,a"), "{\"/t/echo\":\"a\"}");
}

}  // namespace
}  // namespace keel::telemetry
