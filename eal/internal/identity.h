// Process tokens: how components name a process of the group in shared memory.
//
// A token is nonzero and fits in kTokenBits bits: the process's slot in the group's
// process table and the low bits of its registration's incarnation, so a later process
// in the same slot gets another token. Components that record "who holds this" (a timer
// being armed, a wheel's owner) store tokens, and ask TokenAlive() when the holder may
// have died. All three calls are lock-free and safe from any thread after eal::Init.
#ifndef KEEL_EAL_INTERNAL_IDENTITY_H_
#define KEEL_EAL_INTERNAL_IDENTITY_H_

#include <cstdint>

namespace keel::eal_internal {

inline constexpr uint32_t kTokenBits = 22;

// This process's token; 0 before eal::Init and after eal::Cleanup.
uint32_t SelfToken();
// Whether the process `token` names is still registered and holds its liveness lock
// (one fcntl). False for 0, for a malformed token and before eal::Init.
bool TokenAlive(uint32_t token);
// The token of the process owning `lcore` now, 0 when none (or before eal::Init).
uint32_t LcoreOwnerToken(unsigned lcore);

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_IDENTITY_H_
