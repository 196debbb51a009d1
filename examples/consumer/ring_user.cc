// Joins a keel group as its primary (--no-huge, so it runs anywhere), passes messages
// through a ring, and prints the versions of the components linked into it.
//
//   bazel run //:ring_user
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/version.h"
#include "eal/eal.h"
#include "memory/memory.h"
#include "ring/ring.h"

namespace {

// 1000 messages through a ring of the group: their sum, or an error.
absl::StatusOr<uint64_t> PassMessages() {
  absl::StatusOr<keel::ring::Ring*> ring =
      keel::ring::Create("consumer", 1024, keel::memory::kSocketAny,
                         keel::ring::kSingleProducer | keel::ring::kSingleConsumer);
  if (!ring.ok()) return ring.status();
  uint64_t sum = 0;
  for (uintptr_t i = 1; i <= 1000; ++i) {
    void* got = nullptr;
    if (!(*ring)->Enqueue(reinterpret_cast<void*>(i)) || !(*ring)->Dequeue(&got)) {
      return absl::InternalError("the ring lost a message");
    }
    sum += reinterpret_cast<uintptr_t>(got);
  }
  if (absl::Status freed = keel::ring::Free(*ring); !freed.ok()) return freed;
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = {
      argv[0],         "--no-huge",       "-m", "16", "-l", "0", "--no-telemetry",
      "--file-prefix", "consumer-example"};
  std::vector<char*> eal_argv;
  for (std::string& a : args) eal_argv.push_back(a.data());
  eal_argv.push_back(nullptr);
  absl::StatusOr<std::vector<std::string>> init =
      keel::eal::Init(static_cast<int>(args.size()), eal_argv.data());
  if (!init.ok()) {
    std::fprintf(stderr, "eal::Init: %s\n", init.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<uint64_t> sum = PassMessages();
  if (sum.ok()) {
    std::printf("ring %s: 1000 messages through ring \"consumer\", sum %lu\n",
                keel::ToString(keel::ring::kVersion).c_str(), static_cast<unsigned long>(*sum));
    std::printf("%s", keel::eal::ComponentVersionsText().c_str());
  } else {
    std::fprintf(stderr, "%s\n", sum.status().ToString().c_str());
  }
  const absl::Status cleanup = keel::eal::Cleanup();  // on every path after Init
  return sum.ok() && *sum == 500500 && cleanup.ok() ? 0 : 1;
}
