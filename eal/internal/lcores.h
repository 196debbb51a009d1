// Starting and stopping this process's lcore threads (the public API is eal/lcore.h).
#ifndef KEEL_EAL_INTERNAL_LCORES_H_
#define KEEL_EAL_INTERNAL_LCORES_H_

#include "absl/status/status.h"
#include "eal/options.h"

namespace keel::eal_internal {

// Pins the calling thread to the main lcore's CPUs and starts a pinned worker thread
// for every other lcore of `options`. InvalidArgument names the lcore and CPUs when
// pinning fails. On failure nothing is left running.
absl::Status StartLcores(const eal::Options& options);

// Stops and joins the workers (they must be idle) and restores the calling thread's
// original affinity. FailedPrecondition (stopping nothing) when a worker is busy.
absl::Status StopLcores();

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_LCORES_H_
