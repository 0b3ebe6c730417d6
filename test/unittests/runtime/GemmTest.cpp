//===- GemmTest.cpp - the BLAS entry point of compiled steps --------------===//

#include "lora/runtime/Gemm.h"

#include <gtest/gtest.h>

#ifdef LORA_HAVE_OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
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

namespace {

/// The bf16 bits of `x`, rounded to nearest even (as arith.truncf does).
uint16_t toBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits += 0x7fff + ((bits >> 16) & 1);
  return uint16_t(bits >> 16);
}

float fromBf16(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

/// lora_gemm_bf16 (lora-run --bf16 on the CPU): the GEMM of the bf16
/// values, accumulated in f32, through strided views; its result differs
/// from the f32 GEMM of the unrounded inputs by about bf16's rounding.
TEST(GemmBf16Test, MultipliesTheBf16ValuesInFp32) {
  lora::runtime::configureThreads(1);
  const int64_t m = 9, n = 70, k = 33, pad = 3;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1, 1);
  // A (k x m, transposed in the GEMM) and B (k x n), padded rows.
  std::vector<float> a(k * (m + pad)), b(k * (n + pad));
  for (float &x : a)
    x = uniform(rng);
  for (float &x : b)
    x = uniform(rng);
  std::vector<uint16_t> a16(a.size()), b16(b.size());
  for (size_t i = 0; i < a.size(); ++i)
    a16[i] = toBf16(a[i]);
  for (size_t i = 0; i < b.size(); ++i)
    b16[i] = toBf16(b[i]);
  std::vector<float> c(m * n, 1.0f);
  LoraMemRef2DBF16 av{a16.data(), a16.data(), 0, {k, m}, {m + pad, 1}};
  LoraMemRef2DBF16 bv{b16.data(), b16.data(), 0, {k, n}, {n + pad, 1}};
  LoraMemRef2DF32 cv{c.data(), c.data(), 0, {m, n}, {n, 1}};
  _mlir_ciface_lora_gemm_bf16(/*transposeA=*/1, /*transposeB=*/0,
                              /*accumulate=*/1, &av, &bv, &cv);
  double largestRounding = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double rounded = 1, exact = 1;
      for (int64_t p = 0; p < k; ++p) {
        rounded += double(fromBf16(a16[p * (m + pad) + i])) *
                   double(fromBf16(b16[p * (n + pad) + j]));
        exact += double(a[p * (m + pad) + i]) * double(b[p * (n + pad) + j]);
      }
      EXPECT_NEAR(c[i * n + j], rounded, 1e-5) << i << "," << j;
      largestRounding = std::max(largestRounding, std::abs(rounded - exact));
    }
  // The inputs were rounded (bf16 keeps 8 bits): the test would not see a
  // GEMM of the f32 values otherwise.
  EXPECT_GT(largestRounding, 1e-3);
}

} // namespace
