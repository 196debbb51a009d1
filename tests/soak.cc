#include "tests/soak.h"

#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "eal/eal.h"
#include "memory/hugepages.h"
#include "tests/subprocess.h"

namespace keel::soak {
namespace {

using testing::Subprocess;

constexpr absl::Duration kAnswerTimeout = absl::Seconds(30);
constexpr absl::Duration kProgressTimeout = absl::Seconds(30);
constexpr int kKilled = 128 + SIGKILL;
// Ring ids in ownership words (soak_worker.cc): to.S = S, from.S = 64 + S, link.S = 128 + S.
constexpr uint64_t kFrom = 64, kLink = 128;
// What one kill can leave behind (soak_worker.cc's bursts: 8 objects, a secondary's
// sends up to 16, its holding below 32 + 16): per ring, a burst its dead consumer took
// out and one its dead producer marked; a dead secondary's own objects; the pool's
// objects in a dead primary's get, put or cache flush (a cache of 32, flushed at 1.5x).
constexpr uint64_t kMaxRingLossPerKill = 8 + 16;
constexpr uint64_t kMaxHeldBySecondary = 32 + 16;
constexpr uint64_t kMaxHeldByPrimary = 16;
constexpr uint64_t kMaxPoolLossPerKill = 48 + 16;

struct Worker {
  unsigned slot = 0;  // 0: the primary
  uint64_t token = 0;
  std::unique_ptr<Subprocess> process;
};

// One line of an answer, as "key=value" fields after its first word.
using Fields = std::map<std::string, std::string>;

Fields ParseFields(absl::string_view line) {
  Fields fields;
  for (absl::string_view part : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    fields[kv.first] = kv.second;
  }
  return fields;
}

uint64_t Number(const Fields& fields, const std::string& key) {
  uint64_t n = 0;
  auto it = fields.find(key);
  if (it == fields.end() || !absl::SimpleAtoi(it->second, &n)) return ~0ull;
  return n;
}

// "A:B,C:D" as pairs of strings.
std::vector<std::vector<std::string>> ParseList(const Fields& fields, const std::string& key) {
  std::vector<std::vector<std::string>> items;
  auto it = fields.find(key);
  if (it == fields.end()) return items;
  for (absl::string_view item : absl::StrSplit(it->second, ',', absl::SkipEmpty())) {
    items.push_back(absl::StrSplit(item, ':'));
  }
  return items;
}

class Soak {
 public:
  Soak(const Options& options, Figures* figures)
      : options_(options), figures_(*figures), rng_(options.seed) {}

  absl::Status Run() {
    const absl::Time start = absl::Now();
    absl::Status status = StartGroup();
    while (status.ok() && figures_.cycles < options_.cycles &&
           absl::Now() - start < options_.max_time) {
      ++figures_.cycles;
      status = Cycle();
      if (options_.verbose && status.ok()) {
        std::printf("cycle %llu: lost %llu so far\n",
                    static_cast<unsigned long long>(figures_.cycles),
                    static_cast<unsigned long long>(figures_.objects_lost));
      }
    }
    if (status.ok()) status = StopGroup();
    if (status.ok()) status = CheckNothingLeft();
    figures_.elapsed = absl::Now() - start;
    if (!status.ok()) {
      LeaveAfterFailure();
      status = absl::Status(status.code(), absl::StrCat("cycle ", figures_.cycles, " (seed ",
                                                        options_.seed, "): ", status.message()));
    }
    workers_.clear();  // kills what is left
    return status;
  }

 private:
  // Leaves as cleanly as a failure allows, so that no file of the prefix stays: every
  // live process quits; when the primary is dead, a new one starts (removing the dead
  // group's files) and quits.
  void LeaveAfterFailure() {
    for (unsigned slot = options_.secondaries; slot >= 1; --slot) {
      if (workers_.count(slot) && !Quit(slot).ok()) workers_.erase(slot);
    }
    if (workers_.count(0) == 0 && !Start(0).ok()) return;
    Quit(0).IgnoreError();
  }

  // --- Processes ---
  // `adopt`: a primary that takes over the group of a dead one.
  absl::Status Start(unsigned slot, bool adopt = false) {
    const uint64_t token = ++next_token_;
    std::vector<std::string> argv = {options_.worker, "--file-prefix", options_.file_prefix,
                                     "--lcores", absl::StrCat(slot, "@", Cpu(slot))};
    if (slot == 0) {
      argv.insert(argv.end(), {"--proc-type", "primary", "-m", "64"});
      if (options_.no_huge) argv.push_back("--no-huge");
      if (adopt) argv.push_back("--adopt");
    } else {
      argv.insert(argv.end(), {"--proc-type", "secondary"});
    }
    argv.insert(argv.end(), {"--", slot == 0 ? "primary" : "secondary", absl::StrCat(slot),
                             absl::StrCat(options_.secondaries), absl::StrCat(token)});
    testing::SpawnOptions spawn;
    spawn.env.push_back("KEEL_LOG=Warning");
    Worker w{slot, token, Subprocess::Start(argv, spawn)};
    if (w.process == nullptr) return absl::InternalError("could not start " + options_.worker);
    absl::StatusOr<std::string> ready = Await(w, "READY");
    if (!ready.ok()) return ready.status();
    workers_[slot] = std::move(w);
    return absl::OkStatus();
  }

  // The CPU for a slot: the allowed CPUs in turn.
  int Cpu(unsigned slot) {
    if (cpus_.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      sched_getaffinity(0, sizeof set, &set);
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) cpus_.push_back(cpu);
      }
      if (cpus_.empty()) cpus_.push_back(0);
    }
    return cpus_[slot % cpus_.size()];
  }

  // The next line of `w` starting with `word` (other lines, such as log lines, are
  // skipped; a DOUBLE line is an error at once).
  absl::StatusOr<std::string> Await(Worker& w, absl::string_view word) {
    const absl::Time deadline = absl::Now() + kAnswerTimeout;
    while (absl::Now() < deadline) {
      std::optional<std::string> line = w.process->NextLine(deadline - absl::Now());
      if (!line) break;
      if (absl::StartsWith(*line, word)) return *line;
      if (absl::StartsWith(*line, "DOUBLE") || absl::StartsWith(*line, "INIT-FAILED") ||
          absl::StartsWith(*line, "SETUP-FAILED") || absl::StartsWith(*line, "CLEANUP-FAILED") ||
          absl::StartsWith(*line, "USAGE")) {
        return absl::InternalError(absl::StrCat(Name(w), ": ", *line));
      }
    }
    return absl::DeadlineExceededError(
        absl::StrCat(Name(w), ": no \"", word, "\" within ", absl::FormatDuration(kAnswerTimeout),
                     " (or it closed its output: exited); its output:\n", w.process->Output()));
  }

  absl::StatusOr<std::string> Ask(Worker& w, absl::string_view command, absl::string_view word) {
    w.process->Send(absl::StrCat(command, "\n"));
    return Await(w, word);
  }

  std::string Name(const Worker& w) const {
    return w.slot == 0 ? absl::StrCat("primary (pid ", w.process->pid(), ")")
                       : absl::StrCat("secondary ", w.slot, " (pid ", w.process->pid(), ")");
  }

  absl::Status Kill(unsigned slot) {
    Worker& w = workers_[slot];
    w.process->Kill(SIGKILL);
    const int code = w.process->Wait();
    if (code != kKilled) {
      return absl::InternalError(absl::StrCat(
          Name(w), " ended with ", code, " before its kill; its output:\n", w.process->Output()));
    }
    dead_tokens_.insert(w.token);
    workers_.erase(slot);
    return absl::OkStatus();
  }

  absl::Status Quit(unsigned slot) {
    Worker& w = workers_[slot];
    absl::StatusOr<std::string> bye = Ask(w, "quit", "BYE");
    if (!bye.ok()) return bye.status();
    const int code = w.process->Wait();
    if (code != 0) {
      return absl::InternalError(
          absl::StrCat(Name(w), " exited with ", code, "; its output:\n", w.process->Output()));
    }
    workers_.erase(slot);
    return absl::OkStatus();
  }

  absl::Status StartGroup() {
    ++figures_.generations;
    dead_tokens_.clear();
    ring_excess_.clear();
    pool_excess_ = 0;
    lost_ = 0;
    if (absl::Status s = Start(0); !s.ok()) return s;
    for (unsigned slot = 1; slot <= options_.secondaries; ++slot) {
      if (absl::Status s = Start(slot); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status StopGroup() {
    for (unsigned slot = options_.secondaries; slot >= 1; --slot) {
      if (absl::Status s = Quit(slot); !s.ok()) return s;
    }
    return Quit(0);
  }

  // --- A cycle ---
  absl::Status Cycle() {
    const bool primary =
        options_.primary_kill_every != 0 && figures_.cycles % options_.primary_kill_every == 0;
    const unsigned victim =
        primary ? 0 : std::uniform_int_distribution<unsigned>(1, options_.secondaries)(rng_);
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(
        options_.max_kill_delay * std::uniform_real_distribution<double>(0, 1)(rng_)));
    const absl::Time killed = absl::Now();
    const uint64_t victim_token = workers_[victim].token;
    if (absl::Status s = Kill(victim); !s.ok()) return s;
    if (primary) {
      ++figures_.primary_kills;
      if (options_.adopt) {
        const absl::Time started = absl::Now();
        if (absl::Status s = Start(0, /*adopt=*/true); !s.ok()) return s;
        figures_.adoption_time_max = std::max(figures_.adoption_time_max, absl::Now() - started);
        ++figures_.adoptions;
      }
    } else {
      ++figures_.secondary_kills;
      const absl::Time started = absl::Now();
      if (absl::Status s = Start(victim); !s.ok()) return s;
      figures_.replacement_time_max =
          std::max(figures_.replacement_time_max, absl::Now() - started);
    }
    // Everyone goes on after the kill: the survivors move objects, the successor
    // through each of its rings (so that what the dead left mid-operation is
    // published: ring/README.md).
    std::map<unsigned, uint64_t> moved_before;
    for (auto& [slot, w] : workers_) {
      if (slot == victim) continue;
      absl::StatusOr<uint64_t> moved = Moved(w, nullptr);
      if (!moved.ok()) return moved.status();
      moved_before[slot] = *moved;
    }
    const bool primary_dead = primary && !options_.adopt;
    if (absl::Status s = AwaitProgress(moved_before, primary_dead ? 0 : victim); !s.ok()) return s;
    figures_.recovery_time_max = std::max(figures_.recovery_time_max, absl::Now() - killed);
    if (absl::Status s = AuditGroup(victim, victim_token, primary_dead); !s.ok()) return s;
    if (!primary_dead) return absl::OkStatus();
    // The primary is dead: the secondaries go on until they leave, then a new primary
    // starts on the prefix (removing the dead group's files) with new secondaries.
    for (unsigned slot = options_.secondaries; slot >= 1; --slot) {
      if (absl::Status s = Quit(slot); !s.ok()) return s;
    }
    return StartGroup();
  }

  // The worker's count of objects moved; its stats line into *fields when asked.
  absl::StatusOr<uint64_t> Moved(Worker& w, Fields* fields) {
    absl::StatusOr<std::string> line = Ask(w, "stats", "STATS");
    if (!line.ok()) return line.status();
    Fields f = ParseFields(*line);
    const uint64_t moved = Number(f, "moved");
    if (fields != nullptr) *fields = std::move(f);
    return moved;
  }

  absl::Status AwaitProgress(const std::map<unsigned, uint64_t>& moved_before, unsigned successor) {
    const bool primary_dead = workers_.count(0) == 0;
    const absl::Time deadline = absl::Now() + kProgressTimeout;
    std::set<unsigned> waiting;
    for (const auto& [slot, w] : workers_) waiting.insert(slot);
    std::map<unsigned, std::string> last;  // each slot's last stats
    while (!waiting.empty()) {
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "no progress within ", absl::FormatDuration(kProgressTimeout), " from ", waiting.size(),
            " process(es); slot ", *waiting.begin(), ": ", last[*waiting.begin()]));
      }
      for (auto it = waiting.begin(); it != waiting.end();) {
        Fields f;
        absl::StatusOr<uint64_t> moved = Moved(workers_[*it], &f);
        if (!moved.ok()) return moved.status();
        bool done;
        if (*it == successor && successor == 0) {
          // An adopting primary: through its rings (each step serves all of them).
          done = Number(f, "to") > 0 && Number(f, "from") > 0;
        } else if (*it == successor) {
          // Through all four of its rings.
          done = Number(f, "to") > 0 && Number(f, "from") > 0 && Number(f, "link_in") > 0 &&
                 Number(f, "link_out") > 0;
        } else {
          auto before = moved_before.find(*it);
          done = before == moved_before.end() || *moved > before->second;
        }
        // A secondary learns of the primary's death, or of its adopting successor.
        if (Number(f, "primary_alive") != (primary_dead ? 0 : 1)) done = false;
        last[*it] = absl::StrJoin(f, " ", absl::PairFormatter("="));
        it = done ? waiting.erase(it) : std::next(it);
      }
      if (!waiting.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return absl::OkStatus();
  }

  // Pauses everyone, reads every object's ownership word and every count, checks that
  // each object is where the words say or held by the dead, resumes.
  absl::Status AuditGroup(unsigned victim, uint64_t victim_token, bool primary_dead) {
    std::map<uint64_t, uint64_t> reported;  // live token -> objects it says it holds
    std::map<uint64_t, unsigned> slot_of;
    for (auto& [slot, w] : workers_) {
      if (absl::StatusOr<std::string> s = Ask(w, "pause", "PAUSED"); !s.ok()) return s.status();
    }
    if (options_.inject != Options::Fault::kNone && !injected_) {
      // A secondary other than the victim (whose rings may lose objects) misbehaves.
      for (auto& [slot, w] : workers_) {
        if (slot == 0 || slot == victim) continue;
        absl::StatusOr<std::string> done =
            Ask(w, options_.inject == Options::Fault::kHide ? "hide" : "drop", "INJECTED");
        if (!done.ok()) return done.status();
        if (*done != "INJECTED none") {
          injected_ = true;
          figures_.injected_cycle = figures_.cycles;
          break;
        }
      }
    }
    for (auto& [slot, w] : workers_) {
      Fields f;
      absl::StatusOr<uint64_t> moved = Moved(w, &f);
      if (!moved.ok()) return moved.status();
      figures_.objects_moved += *moved - std::exchange(moved_at_audit_[w.token], *moved);
      reported[Number(f, "token")] = Number(f, "held");
      slot_of[Number(f, "token")] = slot;
    }
    Worker& auditor = workers_.begin()->second;  // the primary, when alive
    absl::StatusOr<std::string> audit = Ask(auditor, "audit", "AUDIT");
    if (!audit.ok()) return audit.status();
    absl::StatusOr<std::string> lcores = Ask(auditor, "lcores", "LCORES");
    if (!lcores.ok()) return lcores.status();
    if (absl::Status s = CheckAudit(*audit, reported, slot_of, victim, victim_token, primary_dead);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckLcores(*lcores); !s.ok()) return s;
    for (auto& [slot, w] : workers_) {
      if (absl::StatusOr<std::string> s = Ask(w, "resume", "RESUMED"); !s.ok()) return s.status();
    }
    return absl::OkStatus();
  }

  // The rings whose objects a kill of `victim` may lose: a secondary's own four (it
  // consumes to.S and the previous link, produces from.S and link.S); the primary's
  // to and from rings.
  std::set<uint64_t> RingsOf(unsigned victim) const {
    std::set<uint64_t> rings;
    for (unsigned s = 1; s <= options_.secondaries; ++s) {
      const unsigned prev = s == 1 ? options_.secondaries : s - 1;
      if (victim == 0) rings.insert({s, kFrom + s});
      if (victim == s) rings.insert({s, kFrom + s, kLink + s, kLink + prev});
    }
    return rings;
  }

  // Every object is in the pool, in a ring, with the live process that reports it, or
  // was the dead's; and what the dead took with them is what this kill's victim could
  // have: objects in its rings' operations, its own, within the bounds above.
  absl::Status CheckAudit(const std::string& line, const std::map<uint64_t, uint64_t>& reported,
                          const std::map<uint64_t, unsigned>& slot_of, unsigned victim,
                          uint64_t victim_token, bool primary_dead) {
    if (!absl::StartsWith(line, "AUDIT objects=")) {
      return absl::DataLossError(absl::StrCat("the pool's own audit failed: ", line));
    }
    const Fields f = ParseFields(line);
    const uint64_t objects = Number(f, "objects"), free_words = Number(f, "free"),
                   available = Number(f, "available");
    if (Number(f, "doubles") != 0) {
      return absl::DataLossError(absl::StrCat("objects handed out twice: ", line));
    }
    // Objects the dead held: their words, and those a dead process had between a word
    // and the move it belongs to (taken from the pool or a ring, or marked for one).
    uint64_t dead_held = 0;
    // The pool: only the primary gets and puts, so with it alive every free word is
    // an object in the pool, but for those a killed primary left between a word and
    // the pool (adopt mode), counted in pool_excess_, which only a primary's death grows.
    if (free_words < available ||
        (!primary_dead && free_words - available != pool_excess_ && victim != 0)) {
      return absl::DataLossError(absl::StrCat("the pool has ", available, " objects, ", free_words,
                                              " are marked free: ", line));
    }
    if (absl::Status s = CheckGrowth("the pool", free_words - available, &pool_excess_, victim == 0,
                                     kMaxPoolLossPerKill, line);
        !s.ok()) {
      return s;
    }
    dead_held += free_words - available;
    const std::set<uint64_t> victim_rings = RingsOf(victim);
    uint64_t in_rings = 0;
    for (const std::vector<std::string>& ring : ParseList(f, "rings")) {
      uint64_t id = 0, words = 0, count = 0;
      if (ring.size() != 3 || !absl::SimpleAtoi(ring[0], &id) ||
          !absl::SimpleAtoi(ring[1], &words) || !absl::SimpleAtoi(ring[2], &count)) {
        return absl::DataLossError(absl::StrCat("objects marked for an unknown ring: ", line));
      }
      // A ring holds at most the objects marked for it: fewer by those a dead producer
      // marked and did not publish, or a dead consumer took out. (Their successor's
      // first call published what the dead left half done, before this audit.) Only a
      // consumer dead for good, the primary on a from ring, can leave more: slots it
      // read out and claimed (their words are its) before it could publish its tail.
      const bool consumer_dead = primary_dead && id >= kFrom && id < kLink;
      if (count > words && !consumer_dead) {
        return absl::DataLossError(absl::StrCat("ring ", RingName(id), " holds ", count,
                                                " objects, ", words, " are marked for it: ", line));
      }
      const uint64_t excess = words - std::min(count, words);
      if (absl::Status s =
              CheckGrowth(absl::StrCat("ring ", RingName(id)), excess, &ring_excess_[id],
                          victim_rings.count(id) > 0, kMaxRingLossPerKill, line);
          !s.ok()) {
        return s;
      }
      dead_held += excess;
      in_rings += std::min(count, words);
    }
    uint64_t live_held = 0;
    std::set<uint64_t> holders;
    for (const std::vector<std::string>& holder : ParseList(f, "held")) {
      uint64_t token = 0, n = 0;
      if (holder.size() != 2 || !absl::SimpleAtoi(holder[0], &token) ||
          !absl::SimpleAtoi(holder[1], &n)) {
        return absl::DataLossError(absl::StrCat("unreadable holders: ", line));
      }
      holders.insert(token);
      if (dead_tokens_.count(token)) {
        const uint64_t most = victim == 0 ? kMaxHeldByPrimary : kMaxHeldBySecondary;
        if (token == victim_token && n > most) {
          return absl::DataLossError(absl::StrCat("the victim (token ", token, ") holds ", n,
                                                  " objects, more than a process can: ", line));
        }
        dead_held += n;
        continue;
      }
      auto it = reported.find(token);
      if (it == reported.end()) {
        return absl::DataLossError(absl::StrCat(n, " objects held by token ", token,
                                                ", no process of this group: ", line));
      }
      if (it->second != n) {
        return absl::DataLossError(absl::StrCat("slot ", slot_of.at(token), " (token ", token,
                                                ") holds ", n, " objects and reports ", it->second,
                                                ": ", line));
      }
      live_held += n;
    }
    for (const auto& [token, n] : reported) {
      if (n > 0 && holders.count(token) == 0) {
        return absl::DataLossError(absl::StrCat("slot ", slot_of.at(token), " (token ", token,
                                                ") reports ", n, " objects no word names: ", line));
      }
    }
    // The sum of the parts (the checks above are what can fail).
    const uint64_t lost = objects - available - in_rings - live_held;
    if (lost != dead_held) {
      return absl::DataLossError(
          absl::StrCat(lost, " objects unaccounted for, the dead held ", dead_held, ": ", line));
    }
    if (lost < lost_) {
      return absl::DataLossError(absl::StrCat("objects lost fell from ", lost_, " to ", lost,
                                              " (the dead's objects came back): ", line));
    }
    figures_.objects_lost += lost - lost_;
    figures_.max_lost_per_kill = std::max(figures_.max_lost_per_kill, lost - lost_);
    lost_ = lost;
    return absl::OkStatus();
  }

  // What a dead process left in `what` (objects marked as there and not there) may
  // only grow, only when this kill's victim used it, by at most `most`.
  static absl::Status CheckGrowth(const std::string& what, uint64_t excess, uint64_t* before,
                                  bool victim_used, uint64_t most, const std::string& line) {
    if (excess < *before) {
      return absl::DataLossError(
          absl::StrCat(what, ": ", *before - excess, " objects lost earlier came back: ", line));
    }
    if (excess > *before && !victim_used) {
      return absl::DataLossError(absl::StrCat(
          what, " lost ", excess - *before, " objects, and no process that uses it died: ", line));
    }
    if (excess - *before > most) {
      return absl::DataLossError(absl::StrCat(what, " lost ", excess - *before,
                                              " objects to one kill, more than its operations "
                                              "hold (",
                                              most, "): ", line));
    }
    *before = excess;
    return absl::OkStatus();
  }

  static std::string RingName(uint64_t id) {
    const char* kind = id >= kLink ? "link" : id >= kFrom ? "from" : "to";
    return absl::StrCat("soak.", kind, ".", id % 64);
  }

  // Every owned lcore belongs to a live process of ours, and the group lists exactly
  // our live processes.
  absl::Status CheckLcores(const std::string& line) {
    std::set<std::string> live;
    for (const auto& [slot, w] : workers_) live.insert(absl::StrCat(w.process->pid()));
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 4 || parts[2] != "PROCESSES") {
      return absl::InternalError(absl::StrCat("unreadable lcores answer: ", line));
    }
    std::set<std::string> owners;
    for (absl::string_view owner : absl::StrSplit(parts[1], ',', absl::SkipEmpty())) {
      std::pair<std::string, std::string> pid_lcore = absl::StrSplit(owner, ':');
      if (!live.count(pid_lcore.first)) {
        return absl::FailedPreconditionError(
            absl::StrCat("lcore ", pid_lcore.second, " is owned by pid ", pid_lcore.first,
                         ", not a live process of the group: ", line));
      }
      owners.insert(pid_lcore.first);
    }
    std::set<std::string> processes = absl::StrSplit(parts[3], ',', absl::SkipEmpty());
    if (processes != live || owners != live) {
      return absl::FailedPreconditionError(
          absl::StrCat("the group's processes and lcore owners are not its ", live.size(),
                       " live processes: ", line));
    }
    return absl::OkStatus();
  }

  // After the last process left: no runtime directory, no segment file of the prefix.
  absl::Status CheckNothingLeft() {
    std::vector<std::string> left;
    const std::string runtime_dir = eal::RuntimeDirectoryFor(options_.file_prefix);
    if (std::filesystem::exists(runtime_dir)) left.push_back(runtime_dir);
    for (const memory::SegmentFile& file : memory::SegmentFiles({})) {
      if (file.name.prefix == options_.file_prefix) left.push_back(file.path);
    }
    if (left.empty()) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("the group left files behind: ", absl::StrJoin(left, ", ")));
  }

  const Options& options_;
  Figures& figures_;
  std::mt19937_64 rng_;
  std::map<unsigned, Worker> workers_;  // by slot
  std::set<uint64_t> dead_tokens_;      // this generation's
  std::map<uint64_t, uint64_t> moved_at_audit_;
  std::map<uint64_t, uint64_t> ring_excess_;  // this generation's: ring id -> objects lost
  uint64_t pool_excess_ = 0;                  // this generation's
  uint64_t next_token_ = 0;
  uint64_t lost_ = 0;  // this generation's, at the last audit
  bool injected_ = false;
  std::vector<int> cpus_;
};

}  // namespace

std::string Figures::Summary() const {
  return absl::StrFormat(
      "%u cycles (%u secondary kills, %u primary kills, %u groups, %u adoptions) in %s: %u "
      "objects moved through rings, %u lost with the dead (at most %u per kill); longest "
      "successor start %s, longest adoption %s, longest kill-to-progress %s",
      cycles, secondary_kills, primary_kills, generations, adoptions, absl::FormatDuration(elapsed),
      objects_moved, objects_lost, max_lost_per_kill, absl::FormatDuration(replacement_time_max),
      absl::FormatDuration(adoption_time_max), absl::FormatDuration(recovery_time_max));
}

bool HugepagesScarce() { return memory::AvailableHugepages(2 << 20) < 64; }

absl::Status Run(Options options, Figures* figures) {
  if (options.seed == 0) options.seed = std::random_device()() | 1;
  if (options.secondaries < 1 || options.secondaries > 63) {
    return absl::InvalidArgumentError(
        absl::StrCat("secondaries: ", options.secondaries, " (1..63)"));
  }
  if (options.file_prefix.empty()) return absl::InvalidArgumentError("file prefix: empty");
  *figures = Figures();
  figures->seed = options.seed;
  return Soak(options, figures).Run();
}

}  // namespace keel::soak
