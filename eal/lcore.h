// lcores: the threads of an EAL process, each pinned to its CPUs.
//
// The main lcore is the thread that called eal::Init(); every other lcore of the
// process gets a worker thread that waits for work. Launch a function on one worker or
// on all, then wait for it:
//
//   keel::eal::LaunchOnAllWorkers([] {
//     std::printf("hello from lcore %u\n", keel::eal::LcoreId());
//     return 0;
//   }, keel::eal::CallMain::kCall);
//   keel::eal::WaitAllLcores();
//
// lcore ids are unique within a process group (the EAL refuses overlap), so per-lcore
// data in shared memory is only ever touched by one thread.
#ifndef KEEL_EAL_LCORE_H_
#define KEEL_EAL_LCORE_H_

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "eal/options.h"

namespace keel::eal {

// LcoreId() of a thread that is not an lcore.
inline constexpr unsigned kLcoreIdAny = ~0u;

}  // namespace keel::eal

namespace keel::eal_internal {
// The calling thread's lcore id (lcore.cc); a plain TLS variable, so reading it is one
// load.
extern __thread unsigned t_lcore_id;
}  // namespace keel::eal_internal

namespace keel::eal {

// This thread's lcore id, or kLcoreIdAny. Thread-local read; never blocks.
inline unsigned LcoreId() { return eal_internal::t_lcore_id; }
// The main lcore. Requires Initialized().
unsigned MainLcore();
// This process's lcores, ascending (main included).
std::vector<unsigned> Lcores();
// This process's worker lcores, ascending (main excluded).
std::vector<unsigned> WorkerLcores();
// True when `lcore` is one of this process's lcores.
bool IsLcoreEnabled(unsigned lcore);

enum class LcoreState { kIdle, kRunning, kFinished };
LcoreState GetLcoreState(unsigned lcore);

// Runs `fn` on worker `lcore` and returns at once. InvalidArgument when `lcore` is not
// a worker lcore of this process; FailedPrecondition when it is busy (running, or
// finished and not yet waited for). Call from the main lcore.
absl::Status RemoteLaunch(std::function<int()> fn, unsigned lcore);

enum class CallMain { kSkip, kCall };
// Runs `fn` on every worker; with kCall, also on the main lcore, synchronously, before
// returning. FailedPrecondition (launching nothing) when any worker is busy.
absl::Status LaunchOnAllWorkers(const std::function<int()>& fn, CallMain call_main);

// Blocks until worker `lcore` finished, makes it idle again and returns what its
// function returned (0 when it was idle).
int WaitLcore(unsigned lcore);
// WaitLcore() on every worker.
void WaitAllLcores();

}  // namespace keel::eal

#endif  // KEEL_EAL_LCORE_H_
