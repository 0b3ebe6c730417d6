//===- Arena.h - the activation arena of compiled steps ---------*- C++ -*-===//
//
// Compiled steps allocate their temporaries (activations, gradients)
// through these entry points (finalize-memref-to-llvm with generic
// functions). Freed blocks are kept by size and handed out again, so from
// the second step on a step makes no system allocation and touches no new
// page: the arena settles at the step's peak.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_ARENA_H
#define LORA_RUNTIME_ARENA_H

#include <cstdint>

extern "C" {
void *_mlir_memref_to_llvm_alloc(uint64_t size);
void _mlir_memref_to_llvm_free(void *pointer);
}

namespace lora::runtime {

struct ArenaStats {
  /// Bytes obtained from the system (the arena's size).
  uint64_t reservedBytes = 0;
  /// Most bytes handed out at once.
  uint64_t peakLiveBytes = 0;
  /// Allocations served from kept blocks / from the system.
  uint64_t reusedAllocations = 0, systemAllocations = 0;
};

ArenaStats activationArenaStats();

} // namespace lora::runtime

#endif // LORA_RUNTIME_ARENA_H
