// The chaos soak (tools/soak/run; DEVELOPERS.md, "Soak"): a primary and several
// secondaries (tools/soak/worker.cc) move mempool objects through rings while
// secondaries are SIGKILLed at random moments and, now and then, the primary. After
// every kill it checks that the group goes on and that every object is accounted for;
// after the group's last process leaves, that nothing of its prefix is left on disk.
#ifndef KEEL_TOOLS_SOAK_SOAK_H_
#define KEEL_TOOLS_SOAK_SOAK_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace keel::soak {

struct Options {
  std::string worker;       // path of tools/soak/worker
  std::string file_prefix;  // the group's prefix (its files are checked at the end)
  uint64_t cycles = 1000;   // kills, at most
  absl::Duration max_time = absl::InfiniteDuration();  // stops after the cycle that passes it
  unsigned secondaries = 3;
  uint64_t primary_kill_every = 100;  // every Nth kill is the primary's (0: never)
  absl::Duration max_kill_delay = absl::Milliseconds(20);  // traffic time before a kill
  uint64_t seed = 0;                                       // 0: a random one (Figures::seed)
  bool no_huge = false;                                    // --no-huge groups instead of hugepages
  // Checks the checker: in the first audit a secondary hides one object it holds (keeps
  // its word, stops reporting it), which that audit must find.
  bool inject_hidden_object = false;
  bool verbose = false;  // a line per cycle
};

struct Figures {
  uint64_t cycles = 0;
  uint64_t secondary_kills = 0;
  uint64_t primary_kills = 0;
  uint64_t generations = 0;    // groups started (1 + primary kills)
  uint64_t objects_moved = 0;  // ring transfers counted by live processes at audits
  uint64_t objects_lost = 0;   // all of them held by dead processes
  uint64_t max_lost_per_kill = 0;
  absl::Duration replacement_time_max;  // a killed secondary's successor: start to READY
  absl::Duration recovery_time_max;     // kill to every process seen making progress
  absl::Duration elapsed;
  uint64_t seed = 0;  // the run's (repeat its choices, not its timing, with Options::seed)
  std::string Summary() const;
};

// Runs the soak. An error names the cycle, the check and what it saw (a worker's output
// when it failed); `figures` holds what was done up to then.
absl::Status Run(Options options, Figures* figures);

}  // namespace keel::soak

#endif  // KEEL_TOOLS_SOAK_SOAK_H_
