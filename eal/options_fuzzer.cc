// Fuzz target: the EAL command line (ParseOptions). The input is the argument list, NUL
// separated. Whatever it is, ParseOptions returns (never crashes or aborts), and what it
// accepts holds to ValidateOptions and to the Options field contracts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "eal/options.h"
#include "fuzz/inputs.h"

namespace {

using keel::fuzz::Check;

// Every CPU present and allowed, two nodes: nothing the parser accepts is refused for
// the machine, so the checks below see every accepted value.
const keel::eal::MachineInfo& Machine() {
  static const keel::eal::MachineInfo* machine = [] {
    auto* m = new keel::eal::MachineInfo;
    m->present_cpus.set();
    m->affinity.set();
    m->numa_nodes = 2;
    return m;
  }();
  return *machine;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  if (size > 4096) return -1;  // a command line, not a file
  std::vector<std::string> args = absl::StrSplit(input, '\0');
  if (!args.empty() && args.back().empty()) args.pop_back();
  const absl::StatusOr<keel::eal::Options> options = keel::eal::ParseOptions(args, Machine());
  if (!options.ok()) {
    Check(!options.status().message().empty());  // a refusal says why
    return 0;
  }
  // Accepted options pass validation again and keep every field contract.
  Check(keel::eal::ValidateOptions(*options, Machine()).ok());
  Check(!options->lcores.empty());
  Check(options->lcores.count(options->main_lcore) == 1);
  for (const auto& [lcore, cpus] : options->lcores) {
    Check(lcore < keel::eal::kMaxLcores);
    Check(cpus.any());
  }
  Check(!options->file_prefix.empty() &&
        options->file_prefix.size() <= keel::eal::kMaxFilePrefixLength);
  Check(options->memory_mb <= keel::eal::kMaxMemoryMb);
  Check(options->base_virtaddr % 4096 == 0 && options->base_virtaddr < keel::eal::kMaxBaseVirtaddr);
  Check(options->memory_channels <= keel::eal::kMaxMemoryChannels);
  return 0;
}
