//===- MemRefCopy.cpp - strided memref copies for compiled steps ----------===//

#include "lora/runtime/MemRef.h"

#include <cstring>
#include <vector>

namespace {

struct RankedView {
  char *data;
  const int64_t *sizes, *strides;
};

/// The descriptor {allocated, aligned, offset, sizes[rank], strides[rank]}
/// read as the aligned pointer plus element offset, sizes and strides.
RankedView view(const LoraUnrankedMemRef &memref, int64_t elementSize) {
  auto *words = static_cast<int64_t *>(memref.descriptor);
  char *aligned = reinterpret_cast<char *>(words[1]);
  return {aligned + words[2] * elementSize, words + 3,
          words + 3 + memref.rank};
}

} // namespace

extern "C" void memrefCopy(int64_t elementSize, LoraUnrankedMemRef *src,
                           LoraUnrankedMemRef *dst) {
  int64_t rank = src->rank;
  RankedView from = view(*src, elementSize), to = view(*dst, elementSize);
  for (int64_t d = 0; d < rank; ++d)
    if (from.sizes[d] == 0)
      return;
  // The innermost dimension is copied as one run when both sides are
  // contiguous in it (the usual case: rows of a strided view).
  bool rows = rank > 0 && from.strides[rank - 1] == 1 &&
              to.strides[rank - 1] == 1;
  int64_t outer = rows ? rank - 1 : rank;
  int64_t run = rows ? from.sizes[rank - 1] * elementSize : elementSize;
  std::vector<int64_t> index(outer, 0);
  while (true) {
    int64_t a = 0, b = 0;
    for (int64_t d = 0; d < outer; ++d) {
      a += index[d] * from.strides[d];
      b += index[d] * to.strides[d];
    }
    std::memcpy(to.data + b * elementSize, from.data + a * elementSize, run);
    int64_t d = outer - 1;
    for (; d >= 0; --d) {
      if (++index[d] < from.sizes[d])
        break;
      index[d] = 0;
    }
    if (d < 0)
      return;
  }
}
