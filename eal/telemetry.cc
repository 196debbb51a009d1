// The EAL's telemetry commands: the group's processes and lcores, this process's
// parameters, the components' versions. DPDK's names where DPDK has one (/eal/params,
// /eal/app_params, /eal/lcore/list, /eal/lcore/info).
#include "telemetry/telemetry.h"

#include <numa.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eal/eal.h"
#include "eal/lcore.h"
#include "eal/options.h"

namespace keel::eal {
namespace {

using telemetry::Json;
using telemetry::Params;

Json CpuList(const CpuSet& cpus) {
  Json list = Json::Array();
  for (unsigned cpu = 0; cpu < cpus.size(); ++cpu) {
    if (cpus.test(cpu)) list.Push(cpu);
  }
  return list;
}

absl::StatusOr<Json> Processes(absl::string_view) {
  absl::StatusOr<GroupInfo> group = DescribeGroup();
  if (!group.ok()) return group.status();
  Json list = Json::Array();
  for (const ProcessInfo& p : group->processes) {
    Json lcores = Json::Array();
    for (unsigned l : p.lcores) lcores.Push(l);
    list.Push(Json::Object()
                  .Set("pid", static_cast<int64_t>(p.pid))
                  .Set("type", ProcessTypeName(p.type))
                  .Set("program", p.name)
                  .Set("lcores", std::move(lcores))
                  .Set("attached",
                       absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", p.attached, absl::UTCTimeZone()))
                  .Set("this_process", p.is_self));
  }
  return list;
}

absl::StatusOr<Json> Group(absl::string_view) {
  absl::StatusOr<GroupInfo> group = DescribeGroup();
  if (!group.ok()) return group.status();
  Json components = Json::Array();
  for (const ComponentVersion& c : group->components) {
    components.Push(Json::Object()
                        .Set("name", c.name)
                        .Set("version", ToString(c.version))
                        .Set("layout", c.layout_version));
  }
  return Json::Object()
      .Set("prefix", group->prefix)
      .Set("runtime_dir", group->runtime_dir)
      .Set("primary_pid", static_cast<int64_t>(group->primary_pid))
      .Set("primary_generation", static_cast<int64_t>(group->primary_generation))
      .Set("primary_alive", PrimaryAlive())
      .Set("process_type", ProcessTypeName(GetProcessType()))
      .Set("components", std::move(components));
}

absl::StatusOr<Json> LcoreList(absl::string_view) {
  absl::StatusOr<GroupInfo> group = DescribeGroup();
  if (!group.ok()) return group.status();
  Json list = Json::Array();
  for (const LcoreOwner& l : group->lcores) list.Push(l.lcore);
  return list;
}

absl::StatusOr<Json> LcoreInfo(absl::string_view params) {
  absl::StatusOr<uint64_t> id = telemetry::ParseIndex(params, "lcore", kMaxLcores - 1);
  if (!id.ok()) return id.status();
  absl::StatusOr<GroupInfo> group = DescribeGroup();
  if (!group.ok()) return group.status();
  for (const LcoreOwner& l : group->lcores) {
    if (l.lcore != *id) continue;
    int socket = 0;
    for (unsigned cpu = 0; cpu < l.cpus.size(); ++cpu) {
      if (l.cpus.test(cpu) && numa_available() >= 0) {
        socket = std::max(0, numa_node_of_cpu(static_cast<int>(cpu)));
        break;
      }
    }
    return Json::Object()
        .Set("lcore_id", l.lcore)
        .Set("socket", socket)
        .Set("role", "RTE")
        .Set("cpuset", CpuList(l.cpus))
        .Set("pid", static_cast<int64_t>(l.pid))
        .Set("this_process", IsLcoreEnabled(l.lcore) && l.pid == getpid());
  }
  return absl::NotFoundError(
      absl::StrFormat("lcore %d: not owned by any process of the group", *id));
}

absl::StatusOr<Json> ParamsList(absl::string_view) {
  Json list = Json::Array();
  const std::vector<std::string>& args = Arguments();
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) list.Push(args[i]);
  return list;
}

absl::StatusOr<Json> AppParams(absl::string_view) {
  Json list = Json::Array();
  for (const std::string& arg : GetOptions().app_args) list.Push(arg);
  return list;
}

const telemetry::CommandRegistrar kCommands({
    {"/eal/processes",
     "Returns the group's live processes: pid, type, program, lcores. Takes no parameters",
     Params::kNone, Processes},
    {"/eal/group",
     "Returns the group: prefix, runtime dir, primary, component versions. Takes no parameters",
     Params::kNone, Group},
    {"/eal/lcore/list", "Returns the lcores owned in the group. Takes no parameters", Params::kNone,
     LcoreList},
    {"/eal/lcore/info", "Returns an lcore's CPUs, socket and owner. Parameters: int lcore_id",
     Params::kRequired, LcoreInfo},
    {"/eal/params", "Returns this process's EAL parameters. Takes no parameters", Params::kNone,
     ParamsList},
    {"/eal/app_params", "Returns this process's application parameters. Takes no parameters",
     Params::kNone, AppParams},
});

}  // namespace
}  // namespace keel::eal
