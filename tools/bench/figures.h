// What every keel benchmark hands tools/bench: its keel-against-DPDK figures, one per
// compared row of the summary table it prints (rows of keel alone are left out).
// Recording prints nothing; when the environment names a file in KEEL_BENCH_FIGURES,
// each figure is appended to it as one JSON line
//
//   {"table":"get+put, ns per object","case":"cache 512, bulk 32","unit":"ns",
//    "keel":12.5,"dpdk":11.9,"better":"lower"}
//
// for tools/bench/run to gather across runs into one table and a chart per component.
//
//   keel::bench::RecordFigure({"get+put, ns per object", name, "ns", keel, dpdk});
#ifndef KEEL_TOOLS_BENCH_FIGURES_H_
#define KEEL_TOOLS_BENCH_FIGURES_H_

#include <string>

namespace keel::bench {

enum class Better { kLower, kHigher };  // times and costs are better lower, rates higher

struct Figure {
  std::string table;  // the summary table's title
  std::string name;   // its row
  std::string unit;   // of keel and dpdk: "ns", "ms", "cycles", "M events/s", ...
  double keel = 0;
  double dpdk = 0;  // 0 when DPDK did not run: recorded, not compared
  Better better = Better::kLower;
};

// Appends `figure` to $KEEL_BENCH_FIGURES (when set). A file that cannot be written is
// reported on stderr once; the benchmark goes on.
void RecordFigure(const Figure& figure);

}  // namespace keel::bench

#endif  // KEEL_TOOLS_BENCH_FIGURES_H_
