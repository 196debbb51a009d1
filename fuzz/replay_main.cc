// A keel_fuzzer built without libFuzzer: `name FILE_OR_DIR...` runs each input once.
#include <cstdio>

#include "fuzz/inputs.h"

int main(int argc, char** argv) {
  keel::fuzz::InitializeTarget(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s FILE_OR_DIR...\n(built without libFuzzer, this replays inputs; "
                 "to fuzz, build with --config=fuzz or run tools/fuzz)\n",
                 argv[0]);
    return 2;
  }
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    absl::StatusOr<std::vector<std::string>> files = keel::fuzz::ListInputs(argv[i]);
    if (!files.ok()) {
      std::fprintf(stderr, "%s\n", files.status().ToString().c_str());
      return 2;
    }
    for (const std::string& file : *files) {
      absl::StatusOr<std::string> bytes = keel::fuzz::ReadInput(file);
      if (!bytes.ok()) {
        std::fprintf(stderr, "%s\n", bytes.status().ToString().c_str());
        return 2;
      }
      std::fprintf(stderr, "running %s (%zu bytes)\n", file.c_str(), bytes->size());
      keel::fuzz::RunInput(*bytes);
      ++inputs;
    }
  }
  std::fprintf(stderr, "%d inputs ran\n", inputs);
  return 0;
}
