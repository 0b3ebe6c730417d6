//===- ArenaTest.cpp - the activation arena
//--------------------------------===//

#include "lora/runtime/Arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

using namespace lora::runtime;

TEST(ArenaTest, ReusesFreedBlocksOfTheSameSize) {
  ArenaStats before = activationArenaStats();
  // A "step": two temporaries, freed at its end.
  void *a = _mlir_memref_to_llvm_alloc(1000);
  void *b = _mlir_memref_to_llvm_alloc(4096);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 1, 1000);
  std::memset(b, 2, 4096);
  _mlir_memref_to_llvm_free(a);
  _mlir_memref_to_llvm_free(b);
  // The next "step" gets the same blocks back, without the system.
  void *b2 = _mlir_memref_to_llvm_alloc(4096);
  void *a2 = _mlir_memref_to_llvm_alloc(1000);
  EXPECT_EQ(a2, a);
  EXPECT_EQ(b2, b);
  ArenaStats after = activationArenaStats();
  EXPECT_EQ(after.systemAllocations - before.systemAllocations, 2u);
  EXPECT_EQ(after.reusedAllocations - before.reusedAllocations, 2u);
  EXPECT_EQ(after.reservedBytes - before.reservedBytes, 5096u);
  EXPECT_GE(after.peakLiveBytes, 5096u);
  // A size not seen before comes from the system.
  void *c = _mlir_memref_to_llvm_alloc(12);
  EXPECT_NE(c, a);
  EXPECT_EQ(activationArenaStats().systemAllocations - before.systemAllocations,
            3u);
  for (void *p : {a2, b2, c})
    _mlir_memref_to_llvm_free(p);
  _mlir_memref_to_llvm_free(nullptr); // harmless
}
