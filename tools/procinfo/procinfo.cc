// procinfo: what a running keel group holds (DPDK's dpdk-proc-info).
//
//   procinfo --file-prefix NAME [--attach-timeout SEC] [-- --json]
//
// Attaches to the group as a secondary without claiming any lcore, prints its
// processes, lcores, component versions, memory segments, memory per socket, memzones,
// registered objects, hash tables, the group's clock and its timer sets (pending timers
// per lcore), the interrupt relay (event types, subscribers, mailbox depths and drops),
// and detaches. Hash tables are read with hash::LookupHashesOnly, so whatever
// functions they use (procinfo registers none); timer sets need no callback either.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "base/units.h"
#include "eal/eal.h"
#include "hash/hash.h"
#include "interrupts/interrupts.h"
#include "memory/memory.h"
#include "telemetry/json.h"
#include "timer/timer.h"

namespace {

using keel::eal::GroupInfo;

using keel::telemetry::JsonQuote;

// A hash table of the group, or why it cannot be read.
struct HashTable {
  std::string name;
  absl::StatusOr<keel::hash::Table> table;
};

std::vector<HashTable> HashTables() {
  std::vector<HashTable> tables;
  for (const keel::memory::Object& o : keel::memory::Objects()) {
    if (o.kind == "hash") tables.push_back({o.name, keel::hash::LookupHashesOnly(o.name)});
  }
  return tables;
}

// A timer set of the group, or why it cannot be read.
struct TimerSetInfo {
  std::string name;
  absl::StatusOr<keel::timer::TimerSet> set;
};

std::vector<TimerSetInfo> TimerSets() {
  std::vector<TimerSetInfo> sets;
  for (const keel::memory::Object& o : keel::memory::Objects()) {
    if (o.kind == "timer_set") sets.push_back({o.name, keel::timer::Lookup(o.name)});
  }
  return sets;
}

std::string Address(const void* p) { return absl::StrFormat("%p", p); }

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

void PrintText(const GroupInfo& g) {
  std::printf("group \"%s\"  runtime dir %s  primary pid %d (generation %u)\n\n", g.prefix.c_str(),
              g.runtime_dir.c_str(), g.primary_pid, g.primary_generation);
  std::printf("processes:\n  %-8s %-10s %-16s %-12s %s\n", "PID", "TYPE", "PROGRAM", "LCORES",
              "ATTACHED");
  for (const keel::eal::ProcessInfo& p : g.processes) {
    std::printf("  %-8d %-10s %-16s %-12s %s%s\n", p.pid,
                std::string(keel::eal::ProcessTypeName(p.type)).c_str(), p.name.c_str(),
                p.lcores.empty() ? "-" : absl::StrJoin(p.lcores, ",").c_str(),
                TimeText(p.attached).c_str(), p.is_self ? "  (this procinfo)" : "");
  }
  std::printf("\nlcores:\n  %-6s %-10s %s\n", "LCORE", "CPUS", "PID");
  for (const keel::eal::LcoreOwner& l : g.lcores) {
    std::printf("  %-6u %-10s %d\n", l.lcore, keel::eal::FormatCpuSet(l.cpus).c_str(), l.pid);
  }
  std::printf("\ncomponents:\n  %-12s %-10s %s\n", "NAME", "VERSION", "LAYOUT");
  for (const keel::eal::ComponentVersion& c : g.components) {
    std::printf("  %-12s %-10s %u\n", c.name.c_str(), keel::ToString(c.version).c_str(),
                c.layout_version);
  }
  std::printf("\nsegments:\n  %-16s %-11s %-9s %-7s %s\n", "ADDRESS", "SIZE", "PAGE", "SOCKET",
              "FILE");
  for (const keel::memory::Segment& s : keel::memory::Segments()) {
    absl::PrintF("  %-16s %-11s %-9s %-7d %s\n", Address(s.addr), keel::FormatMib(s.size),
                 absl::StrCat(s.page_size / 1024, " kB"), s.socket, s.file);
  }
  std::printf("\nmemory:\n  %-7s %-11s %-11s %-13s %s\n", "SOCKET", "TOTAL", "FREE", "LARGEST FREE",
              "ALLOCATIONS");
  for (const keel::memory::SocketUsage& u : keel::memory::Usage()) {
    absl::PrintF("  %-7d %-11s %-11s %-13s %d\n", u.socket, keel::FormatMib(u.total),
                 keel::FormatMib(u.free), keel::FormatMib(u.largest_free), u.allocations);
  }
  std::printf("\nmemzones:\n  %-32s %-16s %-10s %s\n", "NAME", "ADDRESS", "SIZE", "SOCKET");
  for (const keel::memory::Memzone& z : keel::memory::Memzones()) {
    absl::PrintF("  %-32s %-16s %-10d %d\n", z.name, Address(z.addr), z.size, z.socket);
  }
  std::printf("\nobjects:\n  %-32s %-10s %-7s %-16s %s\n", "NAME", "KIND", "LAYOUT", "ADDRESS",
              "CREATOR");
  for (const keel::memory::Object& o : keel::memory::Objects()) {
    absl::PrintF("  %-32s %-10s %-7d %-16s %d\n", o.name, o.kind, o.layout_version, Address(o.addr),
                 o.creator_pid);
  }
  std::printf("\nhash tables:\n  %-32s %-12s %-10s %-10s %-5s %-11s %s\n", "NAME", "FUNCTION",
              "ENTRIES", "USED", "KEY", "MEMORY", "FLAGS");
  for (const HashTable& h : HashTables()) {
    if (!h.table.ok()) {
      absl::PrintF("  %-32s %s\n", h.name, h.table.status().ToString());
      continue;
    }
    const keel::hash::Table& t = *h.table;
    const std::vector<std::string> flags = keel::hash::FlagNames(t.flags());
    absl::PrintF("  %-32s %-12s %-10u %-10u %-5u %-11u %s\n", h.name, t.function(), t.entries(),
                 t.Count(), t.key_length(), t.memory_size(),
                 flags.empty() ? "-" : absl::StrJoin(flags, ","));
  }
  const keel::timer::SourceInfo clock = keel::timer::CurrentSourceInfo();
  absl::PrintF("\nclock: %s at %d Hz (%s)\n", keel::timer::SourceName(clock.source), clock.hz,
               clock.why);
  std::printf("\ntimer sets:\n  %-32s %-9s %-6s %-9s %-10s %-8s %-7s %s\n", "NAME", "CAPACITY",
              "LCORE", "PENDING", "RAN", "MISSING", "MISSED", "ADOPTIONS");
  for (const TimerSetInfo& t : TimerSets()) {
    if (!t.set.ok()) {
      absl::PrintF("  %-32s %s\n", t.name, t.set.status().ToString());
      continue;
    }
    const std::vector<keel::timer::LcoreStats> stats = t.set->Stats();
    if (stats.empty()) absl::PrintF("  %-32s %-9u -\n", t.name, t.set->capacity());
    for (const keel::timer::LcoreStats& st : stats) {
      absl::PrintF("  %-32s %-9u %-6u %-9u %-10u %-8u %-7u %u\n", t.name, t.set->capacity(),
                   st.lcore, st.pending, st.ran, st.missing_callback, st.missed_periods,
                   st.adoptions);
    }
  }
  const absl::StatusOr<keel::interrupts::RelayInfo> relay = keel::interrupts::DescribeRelay();
  if (!relay.ok()) {
    absl::PrintF("\ninterrupt relay: %s\n", relay.status().message());
    return;
  }
  absl::PrintF("\ninterrupt relay: primary %d, event types: %s; undelivered unicasts: %u\n",
               relay->primary_pid,
               relay->types.empty() ? "none" : absl::StrJoin(relay->types, ", "),
               relay->undelivered);
  std::printf("  %-8s %-14s %-10s %-12s %-12s %-10s %s\n", "PID", "DEPTH", "PUBLISHED", "DROPPED",
              "DOORBELLS", "PUB-DROPS", "TYPES");
  for (const keel::interrupts::SubscriberInfo& sub : relay->subscribers) {
    absl::PrintF("  %-8d %-14s %-10u %-12u %-12u %-10u %s\n", sub.pid,
                 absl::StrCat(sub.depth, "/", sub.capacity), sub.published, sub.dropped,
                 sub.doorbells, sub.publish_drops,
                 sub.types.empty() ? "-" : absl::StrJoin(sub.types, ","));
  }
}

// The interrupt relay as JSON, or null when the group has none.
std::string RelayJson() {
  const absl::StatusOr<keel::interrupts::RelayInfo> relay = keel::interrupts::DescribeRelay();
  if (!relay.ok()) return "null";
  std::vector<std::string> types;
  for (const std::string& t : relay->types) types.push_back(JsonQuote(t));
  std::vector<std::string> subscribers;
  for (const keel::interrupts::SubscriberInfo& sub : relay->subscribers) {
    std::vector<std::string> sub_types;
    for (const std::string& t : sub.types) sub_types.push_back(JsonQuote(t));
    subscribers.push_back(absl::StrFormat(
        "{\"pid\": %d, \"types\": [%s], \"depth\": %u, \"capacity\": %u, \"published\": %u, "
        "\"dropped\": %u, \"doorbells\": %u, \"publish_drops\": %u}",
        sub.pid, absl::StrJoin(sub_types, ", "), sub.depth, sub.capacity, sub.published,
        sub.dropped, sub.doorbells, sub.publish_drops));
  }
  return absl::StrFormat(
      "{\"primary_pid\": %d, \"types\": [%s], \"undelivered\": %u, \"subscribers\": [%s]}",
      relay->primary_pid, absl::StrJoin(types, ", "), relay->undelivered,
      absl::StrJoin(subscribers, ", "));
}

void PrintJson(const GroupInfo& g) {
  std::vector<std::string> processes;
  for (const keel::eal::ProcessInfo& p : g.processes) {
    processes.push_back(absl::StrFormat(
        "{\"pid\": %d, \"type\": %s, \"program\": %s, \"lcores\": [%s], \"attached\": %s, "
        "\"self\": %s}",
        p.pid, JsonQuote(keel::eal::ProcessTypeName(p.type)), JsonQuote(p.name),
        absl::StrJoin(p.lcores, ", "), JsonQuote(TimeText(p.attached)),
        p.is_self ? "true" : "false"));
  }
  std::vector<std::string> lcores;
  for (const keel::eal::LcoreOwner& l : g.lcores) {
    lcores.push_back(absl::StrFormat("{\"lcore\": %u, \"cpus\": %s, \"pid\": %d}", l.lcore,
                                     JsonQuote(keel::eal::FormatCpuSet(l.cpus)), l.pid));
  }
  std::vector<std::string> components;
  for (const keel::eal::ComponentVersion& c : g.components) {
    components.push_back(absl::StrFormat("{\"name\": %s, \"version\": %s, \"layout\": %u}",
                                         JsonQuote(c.name), JsonQuote(keel::ToString(c.version)),
                                         c.layout_version));
  }
  std::vector<std::string> segments;
  for (const keel::memory::Segment& s : keel::memory::Segments()) {
    segments.push_back(absl::StrFormat(
        "{\"address\": %s, \"size\": %d, \"page_size\": %d, \"socket\": %d, \"file\": %s, "
        "\"hugepages\": %s}",
        JsonQuote(Address(s.addr)), s.size, s.page_size, s.socket, JsonQuote(s.file),
        s.hugepages ? "true" : "false"));
  }
  std::vector<std::string> memory;
  for (const keel::memory::SocketUsage& u : keel::memory::Usage()) {
    memory.push_back(
        absl::StrFormat("{\"socket\": %d, \"total\": %d, \"free\": %d, \"largest_free\": %d, "
                        "\"allocations\": %d}",
                        u.socket, u.total, u.free, u.largest_free, u.allocations));
  }
  std::vector<std::string> memzones;
  for (const keel::memory::Memzone& z : keel::memory::Memzones()) {
    memzones.push_back(
        absl::StrFormat("{\"name\": %s, \"address\": %s, \"size\": %d, \"socket\": %d}",
                        JsonQuote(z.name), JsonQuote(Address(z.addr)), z.size, z.socket));
  }
  std::vector<std::string> objects;
  for (const keel::memory::Object& o : keel::memory::Objects()) {
    objects.push_back(absl::StrFormat(
        "{\"name\": %s, \"kind\": %s, \"layout\": %d, \"address\": %s, \"creator_pid\": %d}",
        JsonQuote(o.name), JsonQuote(o.kind), o.layout_version, JsonQuote(Address(o.addr)),
        o.creator_pid));
  }
  std::vector<std::string> hash_tables;
  for (const HashTable& h : HashTables()) {
    if (!h.table.ok()) {
      hash_tables.push_back(absl::StrFormat("{\"name\": %s, \"error\": %s}", JsonQuote(h.name),
                                            JsonQuote(h.table.status().ToString())));
      continue;
    }
    const keel::hash::Table& t = *h.table;
    std::vector<std::string> flags;
    for (const std::string& f : keel::hash::FlagNames(t.flags())) flags.push_back(JsonQuote(f));
    hash_tables.push_back(absl::StrFormat(
        "{\"name\": %s, \"function\": %s, \"entries\": %u, \"used\": %u, \"key_length\": %u, "
        "\"flags\": [%s], \"memory_size\": %u}",
        JsonQuote(h.name), JsonQuote(t.function()), t.entries(), t.Count(), t.key_length(),
        absl::StrJoin(flags, ", "), t.memory_size()));
  }
  std::vector<std::string> timer_sets;
  for (const TimerSetInfo& t : TimerSets()) {
    if (!t.set.ok()) {
      timer_sets.push_back(absl::StrFormat("{\"name\": %s, \"error\": %s}", JsonQuote(t.name),
                                           JsonQuote(t.set.status().ToString())));
      continue;
    }
    std::vector<std::string> per_lcore;
    for (const keel::timer::LcoreStats& st : t.set->Stats()) {
      per_lcore.push_back(absl::StrFormat(
          "{\"lcore\": %u, \"pending\": %u, \"ran\": %u, \"missing_callback\": %u, "
          "\"missed_periods\": %u, \"adoptions\": %u}",
          st.lcore, st.pending, st.ran, st.missing_callback, st.missed_periods, st.adoptions));
    }
    timer_sets.push_back(absl::StrFormat("{\"name\": %s, \"capacity\": %u, \"lcores\": [%s]}",
                                         JsonQuote(t.name), t.set->capacity(),
                                         absl::StrJoin(per_lcore, ", ")));
  }
  const keel::timer::SourceInfo clock = keel::timer::CurrentSourceInfo();
  const std::string clock_json = absl::StrFormat("{\"source\": %s, \"hz\": %u, \"why\": %s}",
                                                 JsonQuote(keel::timer::SourceName(clock.source)),
                                                 clock.hz, JsonQuote(clock.why));
  absl::PrintF(
      "{\"prefix\": %s, \"runtime_dir\": %s, \"primary_pid\": %d, \"primary_generation\": %u,\n "
      "\"processes\": [%s],\n "
      "\"lcores\": [%s],\n \"components\": [%s],\n \"segments\": [%s],\n \"memory\": [%s],\n "
      "\"memzones\": [%s],\n \"objects\": [%s],\n \"hash_tables\": [%s],\n \"clock\": %s,\n "
      "\"timer_sets\": [%s],\n \"interrupt_relay\": %s}\n",
      JsonQuote(g.prefix), JsonQuote(g.runtime_dir), g.primary_pid, g.primary_generation,
      absl::StrJoin(processes, ", "), absl::StrJoin(lcores, ", "), absl::StrJoin(components, ", "),
      absl::StrJoin(segments, ", "), absl::StrJoin(memory, ", "), absl::StrJoin(memzones, ", "),
      absl::StrJoin(objects, ", "), absl::StrJoin(hash_tables, ", "), clock_json,
      absl::StrJoin(timer_sets, ", "), RelayJson());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<keel::eal::Options> options = keel::eal::ParseOptions(args);
  if (!options.ok()) {
    std::fprintf(stderr, "procinfo: %s\n", options.status().ToString().c_str());
    return 1;
  }
  if (options->help) {
    std::printf("Usage: %s --file-prefix NAME [--attach-timeout SEC] [-- --json]\n", argv[0]);
    return 0;
  }
  bool json = false;
  for (const std::string& arg : options->app_args) {
    if (arg == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "procinfo: unknown argument \"%s\" (only --json)\n", arg.c_str());
      return 1;
    }
  }
  // A bystander: always a secondary, never holding an lcore.
  options->proc_type = keel::eal::ProcessType::kSecondary;
  options->claim_lcores = false;
  options->telemetry = false;
  if (absl::Status s = keel::eal::Init(*options); !s.ok()) {
    std::fprintf(stderr, "procinfo: %s\n", s.ToString().c_str());
    return 1;
  }
  absl::StatusOr<GroupInfo> group = keel::eal::DescribeGroup();
  if (!group.ok()) {
    std::fprintf(stderr, "procinfo: %s\n", group.status().ToString().c_str());
  } else if (json) {
    PrintJson(*group);
  } else {
    PrintText(*group);
  }
  const absl::Status cleanup = keel::eal::Cleanup();
  return group.ok() && cleanup.ok() ? 0 : 1;
}
