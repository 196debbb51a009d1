// Support for keel_fuzzer targets: their property checks, and inputs on disk for the
// mains of targets built without libFuzzer.
#ifndef KEEL_FUZZ_INPUTS_H_
#define KEEL_FUZZ_INPUTS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

// The fuzz target's entry points (libFuzzer's names). LLVMFuzzerInitialize is optional.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace keel::fuzz {

// `path` itself when it is a file; every regular file below it, sorted, when it is a
// directory. NotFound / InvalidArgument name the path.
absl::StatusOr<std::vector<std::string>> ListInputs(const std::string& path);

// The whole file.
absl::StatusOr<std::string> ReadInput(const std::string& path);

// Calls LLVMFuzzerInitialize, when the target has one.
void InitializeTarget(int* argc, char*** argv);

// Runs one input through the target, as libFuzzer would: from a heap copy of exactly
// its size, so that ASan sees a read past its end.
void RunInput(const std::string& bytes);

// A fuzz target's property: when `condition` is false, prints `what` and aborts (which
// libFuzzer, and a corpus test, report as a crash with this input).
void Check(bool condition, const char* what = "a property of the target failed");

}  // namespace keel::fuzz

#endif  // KEEL_FUZZ_INPUTS_H_
