//===- GemmTest.cpp - the BLAS entry point of compiled steps --------------===//

#include "lora/runtime/Gemm.h"

#include <gtest/gtest.h>

#ifdef LORA_HAVE_OPENMP
#include <omp.h>
#endif

#include <limits>
#include <random>
#include <vector>

namespace {

/// A row-major matrix view into `storage` with leading dimension `ld`.
LoraMemRef2DF32 view(std::vector<float> &storage, int64_t rows, int64_t cols,
                     int64_t ld, int64_t offset = 0) {
  return {storage.data(), storage.data(), offset, {rows, cols}, {ld, 1}};
}

/// Shapes: one block; C taller than wide (split by rows across threads);
/// C wider than tall (split by columns).
struct Shape {
  int64_t m, n, k;
};

class GemmTest
    : public ::testing::TestWithParam<std::tuple<bool, bool, bool, Shape>> {};

TEST_P(GemmTest, MatchesNaiveLoops) {
  auto [transposeA, transposeB, accumulate, shape] = GetParam();
  // Two threads even on one core, so that the split runs.
  lora::runtime::configureThreads(1);
#ifdef LORA_HAVE_OPENMP
  omp_set_num_threads(2);
#endif
  const int64_t m = shape.m, n = shape.n, k = shape.k, pad = 2;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1, 1);
  auto random = [&](size_t size) {
    std::vector<float> v(size);
    for (float &x : v)
      x = uniform(rng);
    return v;
  };
  // Stored shapes with padded rows, so leading dimensions matter.
  int64_t aRows = transposeA ? k : m, aCols = transposeA ? m : k;
  int64_t bRows = transposeB ? n : k, bCols = transposeB ? k : n;
  std::vector<float> a = random(aRows * (aCols + pad) + 1);
  std::vector<float> b = random(bRows * (bCols + pad));
  std::vector<float> c = random(m * (n + pad));
  // Without accumulate, C's old values must not be read: NaN would show.
  if (!accumulate)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        c[i * (n + pad) + j] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> expected = c;
  auto at = [&](const std::vector<float> &s, int64_t ld, int64_t offset,
                int64_t i, int64_t j) { return s[offset + i * ld + j]; };
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p)
        sum += double(transposeA ? at(a, aCols + pad, 1, p, i)
                                 : at(a, aCols + pad, 1, i, p)) *
               double(transposeB ? at(b, bCols + pad, 0, j, p)
                                 : at(b, bCols + pad, 0, p, j));
      float &out = expected[i * (n + pad) + j];
      out = accumulate ? out + float(sum) : float(sum);
    }
  LoraMemRef2DF32 av = view(a, aRows, aCols, aCols + pad, /*offset=*/1);
  LoraMemRef2DF32 bv = view(b, bRows, bCols, bCols + pad);
  LoraMemRef2DF32 cv = view(c, m, n, n + pad);
  _mlir_ciface_lora_sgemm_f32(transposeA, transposeB, accumulate, &av, &bv,
                              &cv);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n + pad; ++j)
      EXPECT_NEAR(c[i * (n + pad) + j], expected[i * (n + pad) + j], 1e-5)
          << i << "," << j << (j >= n ? " (padding must stay)" : "");
}

INSTANTIATE_TEST_SUITE_P(
    TransposesBetaAndShapes, GemmTest,
    ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Bool(),
                       ::testing::Values(Shape{5, 7, 3}, Shape{100, 7, 9},
                                         Shape{5, 100, 9})));

} // namespace
