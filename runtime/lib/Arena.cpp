//===- Arena.cpp - the activation arena of compiled steps -----------------===//

#include "lora/runtime/Arena.h"

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace lora::runtime {
namespace {

/// Blocks by exact size. A step allocates the same sizes every time, so
/// exact-size reuse is enough and never wastes space.
struct Arena {
  std::mutex lock;
  std::unordered_map<uint64_t, std::vector<void *>> freeBlocks;
  std::unordered_map<void *, uint64_t> liveBlocks;
  uint64_t liveBytes = 0;
  ArenaStats stats;
};

Arena &arena() {
  // Never destroyed: compiled code may free blocks during static teardown.
  static Arena *instance = new Arena();
  return *instance;
}

} // namespace

ArenaStats activationArenaStats() {
  Arena &a = arena();
  std::lock_guard<std::mutex> guard(a.lock);
  return a.stats;
}

} // namespace lora::runtime

using lora::runtime::arena;

extern "C" void *_mlir_memref_to_llvm_alloc(uint64_t size) {
  auto &a = arena();
  std::lock_guard<std::mutex> guard(a.lock);
  void *block = nullptr;
  auto kept = a.freeBlocks.find(size);
  if (kept != a.freeBlocks.end() && !kept->second.empty()) {
    block = kept->second.back();
    kept->second.pop_back();
    ++a.stats.reusedAllocations;
  } else {
    // 64-byte aligned, as the lowering asks for vectors and BLAS.
    block = std::aligned_alloc(64, (size + 63) / 64 * 64 + 64);
    if (!block)
      return nullptr;
    a.stats.reservedBytes += size;
    ++a.stats.systemAllocations;
  }
  a.liveBlocks[block] = size;
  a.liveBytes += size;
  if (a.liveBytes > a.stats.peakLiveBytes)
    a.stats.peakLiveBytes = a.liveBytes;
  return block;
}

extern "C" void _mlir_memref_to_llvm_free(void *pointer) {
  if (!pointer)
    return;
  auto &a = arena();
  std::lock_guard<std::mutex> guard(a.lock);
  auto live = a.liveBlocks.find(pointer);
  if (live == a.liveBlocks.end())
    return; // not ours: never happens for code this runtime runs
  a.liveBytes -= live->second;
  a.freeBlocks[live->second].push_back(pointer);
  a.liveBlocks.erase(live);
}
