// This process's view of the group's memory (process-local).
#ifndef KEEL_MEMORY_INTERNAL_STATE_H_
#define KEEL_MEMORY_INTERNAL_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "memory/internal/layout.h"

namespace keel::memory_internal {

struct State {
  MemoryConfig* config = nullptr;  // == base
  char* base = nullptr;
  uint64_t total_size = 0;
  std::string runtime_dir;
  // RUNDIR/memory and every segment file, open for the process's life: each holds the
  // OFD read lock that says the segment is in use (layout.h).
  std::vector<int> segment_fds;
};

// Null until eal::Init set up memory, and after eal::Cleanup.
State* CurrentState();

}  // namespace keel::memory_internal

#endif  // KEEL_MEMORY_INTERNAL_STATE_H_
