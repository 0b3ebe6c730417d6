//===- MemRefCopyTest.cpp - strided copies that compiled steps call -------===//

#include "lora/runtime/MemRef.h"

#include <gtest/gtest.h>

#include <vector>

namespace {

/// A rank-3 descriptor {allocated, aligned, offset, sizes[3], strides[3]}.
struct Descriptor3 {
  float *allocated, *aligned;
  int64_t offset, sizes[3], strides[3];
};

TEST(MemRefCopyTest, CopiesAStridedViewIntoAContiguousOne) {
  // Source: columns 2..5 of a [2, 3, 7] buffer (a column slice, as
  // lora-fuse-adapters makes); destination: a contiguous [2, 3, 4].
  std::vector<float> source(2 * 3 * 7);
  for (size_t i = 0; i < source.size(); ++i)
    source[i] = float(i);
  std::vector<float> target(2 * 3 * 4, -1.0f);
  Descriptor3 from{source.data(), source.data(), 2, {2, 3, 4}, {21, 7, 1}};
  Descriptor3 to{target.data(), target.data(), 0, {2, 3, 4}, {12, 4, 1}};
  LoraUnrankedMemRef src{3, &from}, dst{3, &to};
  memrefCopy(sizeof(float), &src, &dst);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t c = 0; c < 4; ++c)
        EXPECT_EQ(target[b * 12 + t * 4 + c], source[b * 21 + t * 7 + 2 + c])
            << b << "," << t << "," << c;
}

TEST(MemRefCopyTest, WalksAnInnerStrideOtherThanOne) {
  // A transposed [3, 2] view of a [2, 3] matrix: inner stride 3.
  std::vector<float> source = {0, 1, 2, 3, 4, 5};
  std::vector<float> target(6, -1.0f);
  struct Descriptor2 {
    float *allocated, *aligned;
    int64_t offset, sizes[2], strides[2];
  } from{source.data(), source.data(), 0, {3, 2}, {1, 3}},
      to{target.data(), target.data(), 0, {3, 2}, {2, 1}};
  LoraUnrankedMemRef src{2, &from}, dst{2, &to};
  memrefCopy(sizeof(float), &src, &dst);
  EXPECT_EQ(target, (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(MemRefCopyTest, EmptyViewsCopyNothing) {
  std::vector<float> source = {1}, target = {7};
  Descriptor3 from{source.data(), source.data(), 0, {0, 1, 1}, {1, 1, 1}};
  Descriptor3 to{target.data(), target.data(), 0, {0, 1, 1}, {1, 1, 1}};
  LoraUnrankedMemRef src{3, &from}, dst{3, &to};
  memrefCopy(sizeof(float), &src, &dst);
  EXPECT_EQ(target[0], 7.0f);
}

} // namespace
