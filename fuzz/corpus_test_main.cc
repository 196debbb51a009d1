// A keel_fuzzer's corpus test: `name_corpus_test DIR` registers one test case per file of
// DIR, each running that input through the target. A crash, a sanitizer report or a
// target's own check (abort) fails the case.
#include <cstdio>
#include <string>

#include "fuzz/inputs.h"
#include "gtest/gtest.h"

namespace {

class CorpusInput : public testing::Test {
 public:
  explicit CorpusInput(std::string path) : path_(std::move(path)) {}
  void TestBody() override {
    absl::StatusOr<std::string> bytes = keel::fuzz::ReadInput(path_);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    keel::fuzz::RunInput(*bytes);
  }

 private:
  std::string path_;
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  absl::StatusOr<std::vector<std::string>> files = keel::fuzz::ListInputs(argv[1]);
  if (!files.ok() || files->empty()) {
    std::fprintf(stderr, "%s: no corpus (%s)\n", argv[1],
                 files.ok() ? "empty" : files.status().ToString().c_str());
    return 1;
  }
  keel::fuzz::InitializeTarget(&argc, &argv);
  const std::string dir = argv[1];
  for (const std::string& file : *files) {
    std::string name = file.substr(dir.size() + 1);
    testing::RegisterTest("Corpus", name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [file]() -> testing::Test* { return new CorpusInput(file); });
  }
  return RUN_ALL_TESTS();
}
