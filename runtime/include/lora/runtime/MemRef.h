//===- MemRef.h - buffers as compiled steps take them -----------*- C++ -*-===//
//
// A compiled step's C interface takes one memref descriptor per buffer:
// {allocated, aligned, offset, sizes[rank], strides[rank]}, all 8 bytes
// wide, dense row-major here. The JIT (lib/Runner) and the artifact loader
// both build them with this.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_MEMREF_H
#define LORA_RUNTIME_MEMREF_H

#include <cstdint>
#include <vector>

namespace lora::runtime {

class MemRefDescriptors {
public:
  /// Appends the descriptor of dense row-major `data` of `shape`.
  void add(void *data, const std::vector<int64_t> &shape) {
    auto address = int64_t(reinterpret_cast<intptr_t>(data));
    std::vector<int64_t> d = {address, address, 0};
    d.insert(d.end(), shape.begin(), shape.end());
    std::vector<int64_t> strides(shape.size(), 1);
    for (int64_t i = int64_t(shape.size()) - 2; i >= 0; --i)
      strides[i] = strides[i + 1] * shape[i + 1];
    d.insert(d.end(), strides.begin(), strides.end());
    storage.push_back(std::move(d));
  }

  /// One pointer per descriptor, in the order they were added; valid while
  /// this object lives and nothing is added.
  std::vector<void *> &pointers() {
    table.clear();
    for (std::vector<int64_t> &d : storage)
      table.push_back(d.data());
    return table;
  }

private:
  std::vector<std::vector<int64_t>> storage;
  std::vector<void *> table;
};

} // namespace lora::runtime

extern "C" {

/// MLIR's unranked memref: the rank and a pointer to the ranked descriptor
/// {allocated, aligned, offset, sizes[rank], strides[rank]}.
struct LoraUnrankedMemRef {
  int64_t rank;
  void *descriptor;
};

/// What finalize-memref-to-llvm calls for a memref.copy between
/// non-contiguous (strided) memrefs: copies `src` into `dst`, element by
/// element of `elementSize` bytes, walking both layouts.
void memrefCopy(int64_t elementSize, LoraUnrankedMemRef *src,
                LoraUnrankedMemRef *dst);

} // extern "C"

#endif // LORA_RUNTIME_MEMREF_H
