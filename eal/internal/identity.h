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
// The low kTokenSlotBits bits of a token are its process-table slot plus one.
inline constexpr uint32_t kTokenSlotBits = 7;
// How many process slots a group has (eal/internal/layout.h's kMaxProcesses).
inline constexpr int kTokenSlots = 64;

// The process-table slot a token names (0..kTokenSlots-1), or -1 for a malformed token.
// Processes alive at the same time have distinct slots: per-process tables in shared
// memory index by it.
inline int TokenSlot(uint32_t token) {
  const int slot = static_cast<int>(token & ((1u << kTokenSlotBits) - 1)) - 1;
  return token >> kTokenBits != 0 || slot < 0 || slot >= kTokenSlots ? -1 : slot;
}

// This process's token; 0 before eal::Init and after eal::Cleanup.
uint32_t SelfToken();
// Whether the process `token` names is still registered and holds its liveness lock
// (one fcntl). False for 0, for a malformed token and before eal::Init.
bool TokenAlive(uint32_t token);
// The token of the process owning `lcore` now, 0 when none (or before eal::Init).
uint32_t LcoreOwnerToken(unsigned lcore);

}  // namespace keel::eal_internal

#endif  // KEEL_EAL_INTERNAL_IDENTITY_H_
