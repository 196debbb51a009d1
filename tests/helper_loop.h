// The start and the command loop of the test helpers (tests/*_helper.cc): after joining
// its group, a helper reads commands from stdin, one per line, until "quit" or the end of input,
// and prints each command's answer on a line of its own; then it leaves the group.
//
//   return keel::testing::ServeCommands([](const std::vector<std::string>& cmd) {
//     return cmd[0] == "ping" ? std::string("PONG") : "UNKNOWN " + cmd[0];
//   });
#ifndef KEEL_TESTS_HELPER_LOOP_H_
#define KEEL_TESTS_HELPER_LOOP_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace keel::testing {

// Makes stdout line-buffered (the test reads line by line) and joins the group with the
// EAL options in argv (claiming KEEL_TEST_LAYOUT=COMPONENT=N's layout version, when set,
// to test refusals). Returns the application arguments, or prints "INIT-FAILED:
// <status>" and returns nullopt: the helper then exits with 2.
std::optional<std::vector<std::string>> JoinGroup(int argc, char** argv);

// Returns the helper's exit code: 0, or 3 when eal::Cleanup failed (CLEANUP-FAILED is
// printed). Prints BYE after a clean Cleanup.
int ServeCommands(const std::function<std::string(const std::vector<std::string>&)>& run);

}  // namespace keel::testing

#endif  // KEEL_TESTS_HELPER_LOOP_H_
