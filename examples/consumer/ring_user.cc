// Joins a keel group as its primary (--no-huge, so it runs anywhere), passes messages
// through a ring, and prints the versions it was built against and the group runs.
//
//   bazel run //:ring_user
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/version.h"
#include "eal/eal.h"
#include "memory/memory.h"
#include "ring/ring.h"

int main(int argc, char** argv) {
  std::vector<std::string> args = {argv[0],
                                   "--no-huge",
                                   "-m",
                                   "16",
                                   "-l",
                                   "0",
                                   "--no-telemetry",
                                   "--file-prefix",
                                   "consumer-" + std::to_string(::getpid())};
  std::vector<char*> eal_argv;
  for (std::string& a : args) eal_argv.push_back(a.data());
  absl::StatusOr<std::vector<std::string>> init =
      keel::eal::Init(static_cast<int>(eal_argv.size()), eal_argv.data());
  if (!init.ok()) {
    std::fprintf(stderr, "eal::Init: %s\n", init.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<keel::ring::Ring*> ring =
      keel::ring::Create("consumer", 1024, keel::memory::kSocketAny,
                         keel::ring::kSingleProducer | keel::ring::kSingleConsumer);
  if (!ring.ok()) {
    std::fprintf(stderr, "ring::Create: %s\n", ring.status().ToString().c_str());
    return 1;
  }
  uint64_t sum = 0;
  for (uintptr_t i = 1; i <= 1000; ++i) {
    void* got = nullptr;
    if (!(*ring)->Enqueue(reinterpret_cast<void*>(i)) || !(*ring)->Dequeue(&got)) return 1;
    sum += reinterpret_cast<uintptr_t>(got);
  }
  std::printf("ring %s built against; 1000 messages through ring \"consumer\", sum %lu\n",
              keel::ToString(keel::ring::kVersion).c_str(), static_cast<unsigned long>(sum));
  // Every component's version and shared-layout version, as the group records them.
  std::printf("%s", keel::eal::ComponentVersionsText().c_str());
  if (!keel::ring::Free(*ring).ok() || !keel::eal::Cleanup().ok()) return 1;
  return sum == 500500 ? 0 : 1;
}
