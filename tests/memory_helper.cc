// A process for the memory tests: joins a group (EAL + memory), then runs commands
// read from stdin, one per line, printing one result line each:
//
//   reserve NAME SIZE          RESERVED NAME | ERROR <status>
//   write NAME TEXT            WROTE NAME    (TEXT into the memzone)
//   read NAME                  READ NAME TEXT
//   free NAME                  FREED NAME
//   store-pointer NAME TEXT    STORED NAME   (TEXT into a heap block, its address into
//                                             the memzone NAME)
//   follow NAME                FOLLOWED NAME TEXT (dereferences that stored address)
//   alloc SIZE                 ALLOC 0x...
//   usage                      USAGE socket=S free=F total=T allocations=A
//   hold-heap-lock MS          HOLDING, then HELD after MS
//   hold-names-lock MS         the same with the names lock
//   race TAG ROUNDS            RACE TAG ok=N exists=M (reserve/verify/free shared names)
//   quit
//
//   memory_helper [EAL options] -- [--occupy-once ADDR | --occupy-always ADDR]
// --occupy-once maps a page at ADDR (hex; inside the group's address range) before Init,
// as ASLR might, unless this is keel's ASLR re-execution; --occupy-always does it always.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "eal/eal.h"
#include "memory/memory.h"
#include "tests/helper_loop.h"

namespace {

namespace memory = keel::memory;

void Occupy(const char* hex) {
  uint64_t addr = 0;
  if (!absl::SimpleHexAtoi(hex, &addr)) {
    std::printf("OCCUPY-FAILED: not an address: %s\n", hex);
    return;
  }
  void* p = mmap(reinterpret_cast<void*>(addr), 4096, PROT_READ,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) std::printf("OCCUPY-FAILED\n");
}

std::string Err(const absl::Status& s) { return "ERROR " + s.ToString(); }

// Reserves, fills, checks and frees memzones whose names other racers use too.
std::string Race(const std::string& tag, int rounds) {
  int ok = 0;
  int exists = 0;
  for (int r = 0; r < rounds; ++r) {
    const std::string name = "race-" + std::to_string(r % 8);
    absl::StatusOr<memory::Memzone> z = memory::ReserveMemzone(name, 256 + r % 1000);
    if (absl::IsAlreadyExists(z.status())) {
      ++exists;
      continue;
    }
    if (!z.ok()) return "RACE " + tag + " " + Err(z.status());
    std::memset(z->addr, r & 0xff, z->size);
    for (size_t i = 0; i < z->size; ++i) {
      if (static_cast<uint8_t*>(z->addr)[i] != (r & 0xff)) return "RACE " + tag + " CORRUPT";
    }
    if (absl::Status s = memory::FreeMemzone(name); !s.ok()) return "RACE " + tag + " " + Err(s);
    ++ok;
  }
  return "RACE " + tag + " ok=" + std::to_string(ok) + " exists=" + std::to_string(exists);
}

std::string Run(const std::vector<std::string>& cmd) {
  const std::string& op = cmd[0];
  auto arg = [&](size_t i) { return i < cmd.size() ? cmd[i] : std::string(); };
  if (op == "reserve") {
    size_t size = 0;
    absl::SimpleAtoi(arg(2), &size);
    absl::StatusOr<memory::Memzone> z = memory::ReserveMemzone(arg(1), size);
    return z.ok() ? "RESERVED " + arg(1) : Err(z.status());
  }
  if (op == "write" || op == "read" || op == "store-pointer" || op == "follow") {
    absl::StatusOr<memory::Memzone> z = memory::LookupMemzone(arg(1));
    if (!z.ok()) return Err(z.status());
    char* zone = static_cast<char*>(z->addr);
    if (op == "write") {
      std::snprintf(zone, z->size, "%s", arg(2).c_str());
      return "WROTE " + arg(1);
    }
    if (op == "read") return "READ " + arg(1) + " " + std::string(zone);
    if (op == "store-pointer") {
      absl::StatusOr<void*> block = memory::Allocate(arg(2).size() + 1);
      if (!block.ok()) return Err(block.status());
      std::memcpy(*block, arg(2).c_str(), arg(2).size() + 1);
      std::memcpy(zone, &*block, sizeof(void*));
      return "STORED " + arg(1);
    }
    char* target = nullptr;
    std::memcpy(&target, zone, sizeof(target));
    return "FOLLOWED " + arg(1) + " " + std::string(target);
  }
  if (op == "free") {
    absl::Status s = memory::FreeMemzone(arg(1));
    return s.ok() ? "FREED " + arg(1) : Err(s);
  }
  if (op == "alloc") {
    size_t size = 0;
    absl::SimpleAtoi(arg(1), &size);
    absl::StatusOr<void*> p = memory::Allocate(size);
    if (!p.ok()) return Err(p.status());
    char text[64];
    std::snprintf(text, sizeof(text), "ALLOC %p", *p);
    return text;
  }
  if (op == "usage") {
    std::string out;
    for (const memory::SocketUsage& u : memory::Usage()) {
      out += "USAGE socket=" + std::to_string(u.socket) + " free=" + std::to_string(u.free) +
             " total=" + std::to_string(u.total) +
             " allocations=" + std::to_string(u.allocations);
    }
    return out;
  }
  if (op == "hold-heap-lock") {
    int ms = 0;
    absl::SimpleAtoi(arg(1), &ms);
    absl::Status s = memory::HoldHeapLockForTest(memory::Segments()[0].socket,
                                                 absl::Milliseconds(ms),
                                                 [] { std::printf("HOLDING\n"); });
    return s.ok() ? "HELD" : Err(s);
  }  if (op == "hold-names-lock") {
    int ms = 0;
    absl::SimpleAtoi(arg(1), &ms);
    absl::Status s = memory::HoldNamesLockForTest(absl::Milliseconds(ms),
                                                  [] { std::printf("HOLDING\n"); });
    return s.ok() ? "HELD" : Err(s);
  }

  if (op == "race") {
    int rounds = 0;
    absl::SimpleAtoi(arg(2), &rounds);
    return Race(arg(1), rounds);
  }
  return "UNKNOWN " + op;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--occupy-always") == 0) Occupy(argv[i + 1]);
    if (std::strcmp(argv[i], "--occupy-once") == 0 && std::getenv("KEEL_ASLR_REEXEC") == nullptr) {
      Occupy(argv[i + 1]);
    }
  }
  if (!keel::testing::JoinGroup(argc, argv)) return 2;
  const std::vector<memory::Segment> segments = memory::Segments();
  std::printf("READY pid=%d type=%s base=%p page_size=%zu hugepages=%d\n", getpid(),
              std::string(keel::eal::ProcessTypeName(keel::eal::GetProcessType())).c_str(),
              segments.empty() ? nullptr : segments[0].addr,
              segments.empty() ? 0 : segments[0].page_size,
              segments.empty() ? -1 : static_cast<int>(segments[0].hugepages));
  return keel::testing::ServeCommands(Run);
}
