// The chaos soak (tools/soak/run; DEVELOPERS.md, "Soak"): a primary and several
// secondaries (tests/soak_worker.cc) move mempool objects through rings while
// secondaries are SIGKILLed at random moments and, now and then, the primary. After
// every kill it checks that the group goes on and that every object is accounted for;
// after the group's last process leaves, that nothing of its prefix is left on disk.
#ifndef KEEL_TESTS_SOAK_H_
#define KEEL_TESTS_SOAK_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace keel::soak {

struct Options {
  std::string worker;       // path of tests/soak_worker
  std::string file_prefix;  // the group's prefix (its files are checked at the end)
  uint64_t cycles = 1000;   // kills, at most
  absl::Duration max_time = absl::InfiniteDuration();  // stops after the cycle that passes it
  unsigned secondaries = 3;
  uint64_t primary_kill_every = 100;  // every Nth kill is the primary's (0: never)
  // A killed primary is replaced by one started with --adopt, which takes the group over
  // while the secondaries run; without it, the secondaries leave and a new group starts.
  bool adopt = false;
  absl::Duration max_kill_delay = absl::Milliseconds(20);  // traffic time before a kill
  uint64_t seed = 0;                                       // 0: a random one (Figures::seed)
  bool no_huge = false;                                    // --no-huge groups instead of hugepages
  // Checks the checker: in the first audit a live secondary misbehaves, which that
  // audit must find. kHide: it forgets an object it holds (its word names the process);
  // kDrop: it takes an object out of a ring and forgets it (its word names the ring).
  enum class Fault { kNone, kHide, kDrop };
  Fault inject = Fault::kNone;
  bool verbose = false;  // a line per cycle
};

struct Figures {
  uint64_t cycles = 0;
  uint64_t secondary_kills = 0;
  uint64_t primary_kills = 0;
  uint64_t generations = 0;          // groups started (1 + primary kills without adopt)
  uint64_t adoptions = 0;            // primaries that adopted the group (Options::adopt)
  absl::Duration adoption_time_max;  // an adopting primary: start to READY
  uint64_t objects_moved = 0;        // objects taken from rings, as live processes counted them
  uint64_t objects_lost = 0;         // with the dead (what they held or had mid-operation)
  uint64_t max_lost_per_kill = 0;
  absl::Duration replacement_time_max;  // a killed secondary's successor: start to READY
  absl::Duration recovery_time_max;     // kill to every process seen making progress
  absl::Duration elapsed;
  uint64_t seed = 0;  // the run's (repeat its choices, not its timing, with Options::seed)
  // Options::inject: the cycle whose audit saw the fault injected (it is retried each
  // cycle until a process has an object to misplace); 0 before.
  uint64_t injected_cycle = 0;
  // What was done (whether or not it passed).
  std::string Summary() const;
};

// True when fewer than 64 2 MiB hugepages are free (a soak group takes 64 MiB).
bool HugepagesScarce();

// Runs the soak. An error names the cycle, the check and what it saw (a worker's output
// when it failed); `figures` holds what was done up to then.
absl::Status Run(Options options, Figures* figures);

}  // namespace keel::soak

#endif  // KEEL_TESTS_SOAK_H_
