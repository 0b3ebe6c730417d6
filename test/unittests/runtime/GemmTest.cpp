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

/// `size` values drawn uniformly from [-1, 1).
std::vector<float> randomValues(std::mt19937 &rng, size_t size) {
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::vector<float> v(size);
  for (float &x : v)
    x = uniform(rng);
  return v;
}

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
  auto random = [&](size_t size) { return randomValues(rng, size); };
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
      EXPECT_NEAR(c[i * (n + pad) + j], expected[i * (n + pad) + j],
                  std::max(1e-5, 2e-7 * double(k)))
          << i << "," << j << (j >= n ? " (padding must stay)" : "");
}

INSTANTIATE_TEST_SUITE_P(
    TransposesBetaAndShapes, GemmTest,
    ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Bool(),
                       ::testing::Values(Shape{5, 7, 3}, Shape{100, 7, 9},
                                         Shape{5, 100, 9},
                                         // Adapter shapes (skinnyGemm; with
                                         // B transposed, N the rank, B
                                         // transposed first): N of 32, 48
                                         // and 16 with row tails, M of 16
                                         // and 32, K in several chunks.
                                         Shape{300, 32, 200},
                                         Shape{259, 48, 130},
                                         Shape{263, 16, 300},
                                         Shape{16, 272, 150},
                                         Shape{32, 256, 70})));

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

namespace {

/// The shapes lora_sgemm_f32 gives to skinnyGemm: a side of 16 to 64 (the
/// rank) against a long one, B in place. Where the CPU lacks AVX-512 none
/// are, and OpenBLAS runs every GEMM (GemmTest covers that path).
TEST(SkinnyGemmTest, TakesTheAdapterShapes) {
  if (!__builtin_cpu_supports("avx512f")) {
    EXPECT_FALSE(lora::runtime::skinnyGemmApplies(0, 2048, 16, 1376));
    GTEST_SKIP() << "no AVX-512F: OpenBLAS runs every GEMM";
  }
  struct Case {
    int32_t transposeB;
    int64_t m, n, k;
    bool skinny;
  } cases[] = {
      // dU = dY·B, dB = dYᵀ·U, dA = dUᵀ·X of a rank-16 adapter, and rank 64.
      {0, 2048, 16, 1376, true},
      {0, 1376, 16, 2048, true},
      {0, 16, 512, 2048, true},
      {0, 2048, 64, 512, true},
      // Attention's P·V and dQ with head_dim 64 in 128-row query blocks;
      // smaller ones stay with OpenBLAS.
      {0, 128, 64, 256, true},
      {0, 64, 64, 128, false},
      {0, 128, 32, 128, false},
      // U = X·Aᵀ (A is r x in, so B transposed) with N the rank.
      {1, 2048, 16, 1376, true},
      {1, 2048, 64, 512, true},
      // B transposed otherwise (the rank-r update Y0 += U·Bᵀ has K = r;
      // the rank as M; attention's Q·Kᵀ), a rank not a multiple of 16, a
      // side of 80, short K, both sides short: OpenBLAS.
      {1, 2048, 512, 16, false},
      {1, 16, 2048, 512, false},
      {1, 128, 128, 64, false},
      {1, 128, 64, 256, false},
      {0, 2048, 8, 1376, false},
      {0, 2048, 80, 1376, false},
      {0, 2048, 16, 32, false},
      {0, 96, 64, 256, false},
      {0, 128, 48, 256, false},
  };
  for (const Case &c : cases)
    EXPECT_EQ(lora::runtime::skinnyGemmApplies(c.transposeB, c.m, c.n, c.k),
              c.skinny)
        << c.m << "x" << c.n << "x" << c.k << " transposeB=" << c.transposeB;
}

struct SkinnyCase {
  int64_t m, n, k;
  bool transposeA, accumulate;
  int threads;
};

class SkinnyGemmKernelTest : public ::testing::TestWithParam<SkinnyCase> {};

/// skinnyGemm itself against double-precision loops, on padded (strided)
/// operands: every tile width (N = 16..64), M-short tiles, row tails, K
/// shorter than a chunk and over several, one and two threads.
TEST_P(SkinnyGemmKernelTest, MatchesNaiveLoops) {
  if (!__builtin_cpu_supports("avx512f"))
    GTEST_SKIP() << "skinnyGemm needs AVX-512F";
  SkinnyCase t = GetParam();
  const int64_t pad = 5;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(-1, 1);
  int64_t aRows = t.transposeA ? t.k : t.m, aCols = t.transposeA ? t.m : t.k;
  int64_t lda = aCols + pad, ldb = t.n + pad, ldc = t.n + pad;
  std::vector<float> a(aRows * lda), b(t.k * ldb), c(t.m * ldc);
  for (float &x : a)
    x = uniform(rng);
  for (float &x : b)
    x = uniform(rng);
  for (int64_t i = 0; i < t.m; ++i)
    for (int64_t j = 0; j < ldc; ++j)
      c[i * ldc + j] = j < t.n && !t.accumulate
                           ? std::numeric_limits<float>::quiet_NaN()
                           : uniform(rng);
  std::vector<float> expected = c;
  for (int64_t i = 0; i < t.m; ++i)
    for (int64_t j = 0; j < t.n; ++j) {
      double sum = t.accumulate ? c[i * ldc + j] : 0;
      for (int64_t p = 0; p < t.k; ++p)
        sum += double(t.transposeA ? a[p * lda + i] : a[i * lda + p]) *
               double(b[p * ldb + j]);
      expected[i * ldc + j] = float(sum);
    }
  lora::runtime::skinnyGemm(t.transposeA, t.m, t.n, t.k, a.data(), lda,
                            b.data(), ldb, c.data(), ldc, t.accumulate,
                            t.threads);
  for (int64_t i = 0; i < t.m; ++i)
    for (int64_t j = 0; j < ldc; ++j)
      ASSERT_NEAR(c[i * ldc + j], expected[i * ldc + j], 2e-4)
          << i << "," << j << (j >= t.n ? " (padding must stay)" : "");
}

INSTANTIATE_TEST_SUITE_P(
    Tiles, SkinnyGemmKernelTest,
    ::testing::Values(SkinnyCase{263, 16, 300, true, false, 2},
                      SkinnyCase{263, 16, 300, false, true, 2},
                      SkinnyCase{250, 32, 129, true, true, 1},
                      SkinnyCase{259, 48, 64, false, false, 2},
                      SkinnyCase{257, 64, 257, true, false, 2},
                      SkinnyCase{16, 272, 300, true, false, 2},
                      SkinnyCase{32, 256, 100, false, true, 1},
                      SkinnyCase{48, 320, 130, true, true, 3},
                      // Attention's P·V and dV in 128-row query blocks.
                      SkinnyCase{128, 64, 256, false, false, 1},
                      SkinnyCase{128, 64, 128, true, false, 1}));

} // namespace

namespace {

struct AdapterGradCase {
  int64_t tokens, out, in, rank;
  bool withInput;
  int threads;
};

class AdapterGradTest : public ::testing::TestWithParam<AdapterGradCase> {};

/// lora_adapter_grad_f32's one-pass kernel (ranks 16-64 on AVX-512; three
/// GEMMs otherwise) against double-precision loops, on views of wider
/// buffers as a compiled step passes them: dY and dU in [dY | dU], U in
/// [Y0 | U]. Token counts leave tails of every block size; padding and the
/// dY columns next to dU must stay as they were.
TEST_P(AdapterGradTest, MatchesNaiveLoops) {
  AdapterGradCase t = GetParam();
  const float scale = 1.75f;
  const int64_t pad = 3;
  std::mt19937 rng(5);
  auto random = [&](size_t size) { return randomValues(rng, size); };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  int64_t wide = t.out + t.rank; // [dY | dU] and [Y0 | U]
  std::vector<float> dyu = random(t.tokens * wide), y0u = random(t.tokens * wide);
  std::vector<float> b = random(t.out * (t.rank + pad));
  std::vector<float> x = random(t.tokens * (t.in + pad));
  std::vector<float> db(t.out * (t.rank + pad), 7.0f),
      da(t.rank * (t.in + pad), 7.0f);
  // Outputs are written, not read: NaN where they go would show.
  for (int64_t i = 0; i < t.tokens; ++i)
    for (int64_t j = 0; j < t.rank; ++j)
      dyu[i * wide + t.out + j] = nan;
  for (int64_t i = 0; i < t.out; ++i)
    for (int64_t j = 0; j < t.rank; ++j)
      db[i * (t.rank + pad) + j] = nan;
  for (int64_t i = 0; i < t.rank; ++i)
    for (int64_t j = 0; j < t.in; ++j)
      da[i * (t.in + pad) + j] = nan;
  std::vector<float> dyuBefore = dyu;

  // The reference in double precision.
  std::vector<double> du(t.tokens * t.rank), dbRef(t.out * t.rank),
      daRef(t.rank * t.in);
  for (int64_t i = 0; i < t.tokens; ++i)
    for (int64_t j = 0; j < t.rank; ++j) {
      double sum = 0;
      for (int64_t k = 0; k < t.out; ++k)
        sum += double(dyu[i * wide + k]) * b[k * (t.rank + pad) + j];
      du[i * t.rank + j] = scale * sum;
    }
  for (int64_t k = 0; k < t.out; ++k)
    for (int64_t j = 0; j < t.rank; ++j) {
      double sum = 0;
      for (int64_t i = 0; i < t.tokens; ++i)
        sum += double(dyu[i * wide + k]) * y0u[i * wide + t.out + j];
      dbRef[k * t.rank + j] = scale * sum;
    }
  for (int64_t j = 0; j < t.rank; ++j)
    for (int64_t k = 0; k < t.in; ++k) {
      double sum = 0;
      for (int64_t i = 0; i < t.tokens; ++i)
        sum += du[i * t.rank + j] * x[i * (t.in + pad) + k];
      daRef[j * t.in + k] = sum;
    }

  LoraMemRef2DF32 dyView = view(dyu, t.tokens, t.out, wide),
                  duView = view(dyu, t.tokens, t.rank, wide, t.out),
                  uView = view(y0u, t.tokens, t.rank, wide, t.out),
                  bView = view(b, t.out, t.rank, t.rank + pad),
                  xView = view(x, t.tokens, t.in, t.in + pad),
                  dbView = view(db, t.out, t.rank, t.rank + pad),
                  daView = view(da, t.rank, t.in, t.in + pad);
  lora::runtime::configureThreads(1);
#ifdef LORA_HAVE_OPENMP
  omp_set_num_threads(t.threads);
#endif
  if (t.withInput)
    _mlir_ciface_lora_adapter_grad_f32(scale, &dyView, &bView, &uView, &xView,
                                       &duView, &dbView, &daView);
  else
    _mlir_ciface_lora_adapter_grad_ub_f32(scale, &dyView, &bView, &uView,
                                          &duView, &dbView);

  // Sums of up to a few thousand products of values in [-1, 1].
  auto tolerance = [](int64_t terms) { return std::max(1e-4, 4e-7 * terms); };
  for (int64_t i = 0; i < t.tokens; ++i) {
    for (int64_t k = 0; k < t.out; ++k)
      ASSERT_EQ(dyu[i * wide + k], dyuBefore[i * wide + k])
          << "dY changed at " << i << "," << k;
    for (int64_t j = 0; j < t.rank; ++j)
      ASSERT_NEAR(dyu[i * wide + t.out + j], du[i * t.rank + j],
                  tolerance(t.out))
          << "dU " << i << "," << j;
  }
  for (int64_t k = 0; k < t.out; ++k)
    for (int64_t j = 0; j < t.rank + pad; ++j)
      if (j < t.rank)
        ASSERT_NEAR(db[k * (t.rank + pad) + j], dbRef[k * t.rank + j],
                    tolerance(t.tokens))
            << "dB " << k << "," << j;
      else
        ASSERT_EQ(db[k * (t.rank + pad) + j], 7.0f) << "dB padding";
  for (int64_t j = 0; j < t.rank; ++j)
    for (int64_t k = 0; k < t.in + pad; ++k) {
      float got = da[j * (t.in + pad) + k];
      if (k >= t.in || !t.withInput)
        ASSERT_TRUE(k >= t.in ? got == 7.0f : std::isnan(got))
            << "dA " << j << "," << k << " must stay as it was";
      else
        ASSERT_NEAR(got, daRef[j * t.in + k],
                    tolerance(t.tokens) * t.out / 64)
            << "dA " << j << "," << k;
    }
}

// Tokens: 12-row blocks plus 8+4+2+1 (rank 16), 5-row blocks plus 4 (32),
// 3-row blocks plus 2 (48), 2-row blocks plus 1 (64); rank 8 takes the
// three GEMMs. One to three threads (more than the rows' blocks in one).
INSTANTIATE_TEST_SUITE_P(
    Shapes, AdapterGradTest,
    ::testing::Values(AdapterGradCase{12 * 9 + 15, 72, 40, 16, true, 2},
                      AdapterGradCase{12 * 4 + 15, 33, 17, 16, false, 1},
                      AdapterGradCase{5 * 7 + 4, 50, 70, 32, true, 3},
                      AdapterGradCase{3 * 11 + 2, 64, 16, 48, true, 2},
                      AdapterGradCase{2 * 9 + 1, 20, 90, 64, true, 2},
                      AdapterGradCase{2, 20, 9, 16, true, 3},
                      AdapterGradCase{37, 24, 30, 8, true, 2},
                      AdapterGradCase{37, 24, 30, 8, false, 1}));

} // namespace
