// Fuzz target: the --lcores parser. The input is the flag's value. A value it accepts
// is a map it can print and read back: writing each lcore as "L@(CPUS)" and parsing that
// gives the same map (so no accepted spelling is misread into another mapping).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "eal/options.h"
#include "fuzz/inputs.h"

namespace {

using keel::fuzz::Check;

const keel::eal::MachineInfo& Machine() {
  static const keel::eal::MachineInfo* machine = [] {
    auto* m = new keel::eal::MachineInfo;
    m->present_cpus.set();
    m->affinity.set();
    return m;
  }();
  return *machine;
}

absl::StatusOr<keel::eal::Options> ParseLcores(const std::string& value) {
  const std::vector<std::string> args = {"--lcores", value};
  return keel::eal::ParseOptions(args, Machine());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1024) return -1;
  const std::string value(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<keel::eal::Options> parsed = ParseLcores(value);
  if (!parsed.ok()) {
    Check(parsed.status().message().find("--lcores") != std::string::npos,
          "a refusal that does not name --lcores");
    return 0;
  }
  std::vector<std::string> elements;
  for (const auto& [lcore, cpus] : parsed->lcores) {
    elements.push_back(absl::StrCat(lcore, "@(", keel::eal::FormatCpuSet(cpus), ")"));
  }
  const absl::StatusOr<keel::eal::Options> again = ParseLcores(absl::StrJoin(elements, ","));
  Check(again.ok() && again->lcores == parsed->lcores, "the map written back parses differently");
  return 0;
}
