// Fuzz target: telemetry requests, as a client sends them over the socket, against a
// primary holding one object of each kind (so every component's handlers run on real
// state). Whatever the request, Execute returns one reply: a JSON object in plain ASCII,
// no longer than the advertised maximum, keyed by the command when the request names
// one in the allowed characters.
#include <stdlib.h>
#include <unistd.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "eal/eal.h"
#include "fuzz/inputs.h"
#include "hash/hash.h"
#include "mempool/mempool.h"
#include "ring/ring.h"
#include "telemetry/telemetry.h"
#include "timer/timer.h"

namespace {

using keel::fuzz::Check;

using namespace keel;  // NOLINT: a fuzz target

void Require(const absl::Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "telemetry_fuzzer: %s: %s\n", what, status.ToString().c_str());
    std::abort();
  }
}

// A strict JSON (RFC 8259) recognizer: true when `text` is exactly one value.
class JsonChecker {
 public:
  explicit JsonChecker(absl::string_view text) : text_(text) {}

  bool Valid() {
    SkipSpace();
    if (!Value(0)) return false;
    SkipSpace();
    return pos_ == text_.size();
  }

 private:
  static constexpr int kMaxDepth = 64;

  bool Value(int depth) {
    if (depth > kMaxDepth || pos_ >= text_.size()) return false;
    switch (text_[pos_]) {
      case '{':
        return Container(depth, '}', /*object=*/true);
      case '[':
        return Container(depth, ']', /*object=*/false);
      case '"':
        return String();
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  bool Container(int depth, char close, bool object) {
    ++pos_;
    SkipSpace();
    if (Peek(close)) return ++pos_, true;
    while (true) {
      if (object) {
        if (!String()) return false;
        SkipSpace();
        if (!Peek(':')) return false;
        ++pos_;
        SkipSpace();
      }
      if (!Value(depth + 1)) return false;
      SkipSpace();
      if (Peek(close)) return ++pos_, true;
      if (!Peek(',')) return false;
      ++pos_;
      SkipSpace();
    }
  }

  bool String() {
    if (!Peek('"')) return false;
    for (++pos_; pos_ < text_.size(); ++pos_) {
      const unsigned char c = text_[pos_];
      if (c == '"') return ++pos_, true;
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (++pos_ >= text_.size()) return false;
      const char e = text_[pos_];
      if (e == 'u') {
        for (int i = 0; i < 4; ++i) {
          if (++pos_ >= text_.size() || !std::isxdigit(static_cast<unsigned char>(text_[pos_]))) {
            return false;
          }
        }
      } else if (absl::string_view("\"\\/bfnrt").find(e) == absl::string_view::npos) {
        return false;
      }
    }
    return false;
  }

  bool Number() {
    if (Peek('-')) ++pos_;
    if (Peek('0')) {
      ++pos_;
    } else if (!Digits()) {
      return false;
    }
    if (Peek('.')) {
      ++pos_;
      if (!Digits()) return false;
    }
    if (Peek('e') || Peek('E')) {
      ++pos_;
      if (Peek('+') || Peek('-')) ++pos_;
      if (!Digits()) return false;
    }
    return true;
  }

  bool Digits() {
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool Literal(absl::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool Peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }

  void SkipSpace() {
    while (pos_ < text_.size() &&
           absl::string_view(" \t\r\n").find(text_[pos_]) != absl::string_view::npos) {
      ++pos_;
    }
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

void Ignore(timer::TimerSet&, timer::Timer, void*) {}

std::string* state_dir = nullptr;

void CleanUp() {
  (void)eal::Cleanup();
  std::error_code ignored;
  std::filesystem::remove_all(*state_dir, ignored);
}

// A --no-huge primary whose runtime and segment files live in a temporary directory
// (removed at exit), holding a ring, a mempool, a hash table and a timer set.
void StartPrimary() {
  char dir[] = "/tmp/keel-telemetry-fuzzer.XXXXXX";
  Check(mkdtemp(dir) != nullptr, "mkdtemp failed");
  state_dir = new std::string(dir);
  setenv("KEEL_RUNTIME_DIR", dir, 1);
  setenv("KEEL_SHM_DIR", dir, 1);
  setenv("KEEL_LOG", "Error", 0);
  std::vector<std::string> args = {"telemetry_fuzzer",
                                   "--no-huge",
                                   "-m",
                                   "64",
                                   "-l",
                                   "0",
                                   "--file-prefix",
                                   "fuzz",
                                   "--proc-type",
                                   "primary",
                                   "--no-telemetry"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  Require(eal::Init(static_cast<int>(argv.size()), argv.data()).status(), "eal::Init");
  std::atexit(CleanUp);

  absl::StatusOr<ring::Ring*> r = ring::Create("fuzz_ring", 1024, -1, 0);
  Require(r.status(), "ring::Create");
  absl::StatusOr<mempool::Mempool*> pool = mempool::Create("fuzz_pool", 255, 64, 8, 0, 0, -1);
  Require(pool.status(), "mempool::Create");
  hash::Params params;
  params.name = "fuzz_hash";
  params.entries = 256;
  params.key_length = 8;
  absl::StatusOr<hash::Table> table = hash::Create(params);
  Require(table.status(), "hash::Create");
  for (uint64_t key = 1; key <= 20; ++key) Check(table->Add(&key) >= 0, "hash Add failed");
  Require(timer::RegisterCallback("ignore", Ignore), "timer::RegisterCallback");
  absl::StatusOr<timer::TimerSet> set = timer::Create({"fuzz_timers", 16});
  Require(set.status(), "timer::Create");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  StartPrimary();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The server reads at most kMaxRequestLength bytes per request; so does this.
  if (size > telemetry::kMaxRequestLength) return -1;
  const absl::string_view request(reinterpret_cast<const char*>(data), size);
  const telemetry::Identity identity;
  const std::string reply = telemetry::Execute(request, identity);
  Check(!reply.empty() && reply.size() <= identity.max_output_len, "reply empty or too long");
  for (const unsigned char c : reply) Check(c >= 0x20 && c < 0x7f, "reply is not plain ASCII");
  Check(JsonChecker(reply).Valid(), "reply is not valid JSON");
  Check(reply.front() == '{', "reply is not an object");
  // A request naming a command in the allowed characters gets a reply keyed by it.
  const absl::string_view command = request.substr(0, request.find(','));
  if (!command.empty() && command.size() <= telemetry::kMaxCommandLength && command[0] == '/' &&
      command.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/") ==
          absl::string_view::npos) {
    Check(absl::StartsWith(reply, absl::StrCat("{\"", command, "\":")),
          "reply not keyed by the command");
  }
  return 0;
}
