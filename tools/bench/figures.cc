#include "tools/bench/figures.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "telemetry/json.h"

namespace keel::bench {

void RecordFigure(const Figure& figure) {
  const char* path = std::getenv("KEEL_BENCH_FIGURES");
  if (path == nullptr || *path == '\0') return;
  const std::string line = telemetry::Json::Object()
                               .Set("table", figure.table)
                               .Set("case", figure.name)
                               .Set("unit", figure.unit)
                               .Set("keel", figure.keel)
                               .Set("dpdk", figure.dpdk)
                               .Set("better", figure.better == Better::kLower ? "lower" : "higher")
                               .Dump() +
                           "\n";
  FILE* f = std::fopen(path, "a");
  if (f == nullptr || std::fputs(line.c_str(), f) < 0) {
    static bool reported = false;
    if (!reported) {
      std::fprintf(stderr, "KEEL_BENCH_FIGURES=%s: %s\n", path, std::strerror(errno));
      reported = true;
    }
  }
  if (f != nullptr) std::fclose(f);
}

}  // namespace keel::bench
