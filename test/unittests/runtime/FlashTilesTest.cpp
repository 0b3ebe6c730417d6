//===- FlashTilesTest.cpp - tiled flash attention against the row functions ===//
//
// The GPU's tiles (FlashTiles.h) on the CPU's block, and on a GPU where one
// answers, against the row functions of FlashAttention.h (which the
// compiled-step tests check against the reference evaluator): the output,
// the log-sum-exp, dQ, dK and dV, for sequences that do and do not fill
// the last tile, grouped-query heads and every columns-per-thread width.
// The GPU's bf16 entry points (tensor cores) against the row functions on
// the same inputs rounded to bf16, within 1% of each tensor's largest
// magnitude (the kernels also round the probabilities and dS).
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Attention.h"
#include "lora/runtime/Cuda.h"
#include "lora/runtime/DType.h"
#include "lora/runtime/FlashTiles.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace {

using lora::runtime::flash::Shape;

struct Case {
  int64_t batch, seq, heads, kvHeads, headDim;
};

std::string describe(const Case &c) {
  return "b" + std::to_string(c.batch) + "_t" + std::to_string(c.seq) + "_h" +
         std::to_string(c.heads) + "_g" + std::to_string(c.kvHeads) + "_d" +
         std::to_string(c.headDim);
}

std::string name(const testing::TestParamInfo<Case> &info) {
  return describe(info.param);
}

void PrintTo(const Case &c, std::ostream *os) { *os << describe(c); }

/// Inputs, and every output of the row functions.
struct Attention {
  Shape s;
  std::vector<float> q, k, v, dOut;
  std::vector<float> out, lse, dq, dk, dv;

  explicit Attention(const Case &c)
      : s{c.batch, c.seq, c.heads, c.kvHeads, c.headDim,
          1.0f / std::sqrt(float(c.headDim))} {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> uniform(-2, 2);
    auto fill = [&](std::vector<float> &x, int64_t rows) {
      x.resize(size_t(rows * s.headDim));
      for (float &e : x)
        e = uniform(rng);
    };
    fill(q, s.queryRows());
    fill(k, s.keyRows());
    fill(v, s.keyRows());
    fill(dOut, s.queryRows());
  }

  /// Rounds the inputs to bf16 (nearest even), as the bf16 kernels read
  /// them.
  void roundInputs() {
    for (std::vector<float> *x : {&q, &k, &v, &dOut})
      for (float &e : *x)
        e = lora::runtime::bf16ToF32(lora::runtime::f32ToBF16(e));
  }

  /// The row functions' results (the reference).
  void rows() {
    namespace flash = lora::runtime::flash;
    out.assign(q.size(), 0);
    dq.assign(q.size(), 0);
    dk.assign(k.size(), 0);
    dv.assign(k.size(), 0);
    lse.assign(size_t(s.queryRows()), 0);
    std::vector<float> lse2(lse.size()), delta(lse.size());
    for (int64_t row = 0; row < s.queryRows(); ++row)
      flash::forwardRow(s, q.data(), k.data(), v.data(), out.data(), lse.data(),
                        row);
    for (int64_t row = 0; row < s.queryRows(); ++row)
      flash::backwardQueryRow(s, q.data(), k.data(), v.data(), out.data(),
                              dOut.data(), lse2.data(), delta.data(),
                              dq.data(), row);
    for (int64_t row = 0; row < s.keyRows(); ++row)
      flash::backwardKeyRow(s, q.data(), k.data(), v.data(), dOut.data(),
                            lse2.data(), delta.data(), dk.data(), dv.data(),
                            row);
  }
};

/// Within 2e-5 + 2e-4 |expected| of each element, or with `ofLargest`
/// above 0 within that fraction of the largest |expected|.
void expectClose(const std::vector<float> &actual,
                 const std::vector<float> &expected, const char *what,
                 float ofLargest = 0) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  float largest = 0;
  for (float e : expected)
    largest = std::max(largest, std::fabs(e));
  size_t wrong = 0, first = 0;
  for (size_t i = 0; i < actual.size(); ++i)
    if (!(std::fabs(actual[i] - expected[i]) <=
          (ofLargest > 0 ? ofLargest * largest
                         : 2e-5f + 2e-4f * std::fabs(expected[i]))) &&
        wrong++ == 0)
      first = i;
  EXPECT_EQ(wrong, 0u) << what << ": " << wrong << " of " << actual.size()
                       << " differ; first at " << first << ": "
                       << actual[first] << " against " << expected[first];
}

/// The entry points of compiled steps (CPU or GPU: tiles for head_dim <=
/// 128, rows above) on buffers from `allocate`, against the rows: the
/// forward, then the backward from the rows' output, as a step passes its
/// forward's. `ofLargest`: expectClose's tolerance.
template <class Allocate, class Release, class Forward, class Backward,
          class Wait>
void checkEntryPoints(Attention &a, const char *side, Allocate allocate,
                      Release release, Forward forward, Backward backward,
                      Wait wait, float ofLargest = 0) {
  const Shape &s = a.s;
  std::vector<float *> owned;
  auto buffer = [&](const std::vector<float> &init, int64_t heads) {
    auto *data = allocate(init.size());
    owned.push_back(data);
    std::memcpy(data, init.data(), init.size() * sizeof(float));
    return LoraMemRef3DF32{data, data, 0,
                           {s.batch, s.seq, heads * s.headDim},
                           {s.seq * heads * s.headDim, heads * s.headDim, 1}};
  };
  std::vector<float> poison(a.q.size(), -7), poisonKv(a.k.size(), -7);
  LoraMemRef3DF32 q = buffer(a.q, s.heads), k = buffer(a.k, s.kvHeads),
                  v = buffer(a.v, s.kvHeads), out = buffer(poison, s.heads),
                  dOut = buffer(a.dOut, s.heads), dq = buffer(poison, s.heads),
                  dk = buffer(poisonKv, s.kvHeads),
                  dv = buffer(poisonKv, s.kvHeads);
  auto copy = [](const LoraMemRef3DF32 &m, size_t size) {
    return std::vector<float>(m.aligned, m.aligned + size);
  };
  std::string what = side;
  forward(&q, &k, &v, &out, s.heads, s.kvHeads, s.headDim, s.scale);
  wait();
  expectClose(copy(out, a.q.size()), a.out, (what + " output").c_str(),
              ofLargest);
  std::memcpy(out.aligned, a.out.data(), a.out.size() * sizeof(float));
  backward(&q, &k, &v, &out, &dOut, &dq, &dk, &dv, s.heads, s.kvHeads,
           s.headDim, s.scale);
  wait();
  expectClose(copy(dq, a.q.size()), a.dq, (what + " dQ").c_str(), ofLargest);
  expectClose(copy(dk, a.k.size()), a.dk, (what + " dK").c_str(), ofLargest);
  expectClose(copy(dv, a.k.size()), a.dv, (what + " dV").c_str(), ofLargest);
  for (float *data : owned)
    release(data);
}

class FlashTilesTest : public testing::TestWithParam<Case> {};

/// The tiles on the CPU's block, and their log-sum-exp.
TEST_P(FlashTilesTest, CpuBlockMatchesRows) {
  Attention a(GetParam());
  if (a.s.headDim > lora::runtime::flash::tiles::kMaxTileHeadDim)
    GTEST_SKIP() << "head_dim " << a.s.headDim << " runs the row functions";
  a.rows();
  std::vector<float> out(a.q.size(), -7), lse(a.lse.size(), -7);
  lora::runtime::flashTilesForwardCpu(a.s, a.q.data(), a.k.data(), a.v.data(),
                                      out.data(), lse.data());
  expectClose(out, a.out, "output");
  expectClose(lse, a.lse, "log-sum-exp");
  std::vector<float> dq(a.q.size(), -7), dk(a.k.size(), -7),
      dv(a.k.size(), -7);
  lora::runtime::flashTilesBackwardCpu(a.s, a.q.data(), a.k.data(), a.v.data(),
                                       a.out.data(), a.dOut.data(), dq.data(),
                                       dk.data(), dv.data());
  expectClose(dq, a.dq, "dQ");
  expectClose(dk, a.dk, "dK");
  expectClose(dv, a.dv, "dV");
}

/// What a CPU step compiled with --flash_attention calls.
TEST_P(FlashTilesTest, CpuEntryPointsMatchRows) {
  Attention a(GetParam());
  a.rows();
  checkEntryPoints(
      a, "CPU", [](size_t n) { return new float[n]; },
      [](float *p) { delete[] p; }, _mlir_ciface_lora_attention_f32,
      _mlir_ciface_lora_attention_grad_f32, [] {});
}

#ifdef LORA_TEST_HAVE_CUDA
/// A GPU step's entry points on managed buffers, against the rows.
template <class Forward, class Backward>
void checkGpuEntryPoints(Attention &a, const char *side, Forward forward,
                         Backward backward, float ofLargest = 0) {
  checkEntryPoints(
      a, side,
      [](size_t n) {
        return static_cast<float *>(
            lora::runtime::cudaAllocateShared(n * sizeof(float)));
      },
      [](float *p) { lora::runtime::cudaFreeShared(p); }, forward, backward,
      [] { lora::runtime::cudaSynchronizeStepStream(); }, ofLargest);
}
#endif

/// Skips the test where no GPU can run it.
#define SKIP_WITHOUT_GPU()                                                     \
  do {                                                                         \
    std::string device;                                                        \
    if (!lora::runtime::cudaDevice(device).ok())                               \
      GTEST_SKIP() << "no CUDA GPU";                                           \
  } while (false)

/// What a GPU step calls.
TEST_P(FlashTilesTest, GpuEntryPointsMatchRows) {
#ifndef LORA_TEST_HAVE_CUDA
  GTEST_SKIP() << "the runtime was built without the CUDA backend";
#else
  SKIP_WITHOUT_GPU();
  Attention a(GetParam());
  a.rows();
  checkGpuEntryPoints(a, "GPU", _mlir_ciface_lora_gpu_attention_f32,
                      _mlir_ciface_lora_gpu_attention_grad_f32);
#endif
}

/// What a GPU step compiled with --bf16 calls: the tensor-core kernels for
/// head_dim 16, 32, 64 and 128 (the fp32 ones for the others), against the
/// rows on bf16-rounded inputs.
TEST_P(FlashTilesTest, GpuBf16EntryPointsMatchRows) {
#ifndef LORA_TEST_HAVE_CUDA
  GTEST_SKIP() << "the runtime was built without the CUDA backend";
#else
  SKIP_WITHOUT_GPU();
  Attention a(GetParam());
  a.roundInputs();
  a.rows();
  checkGpuEntryPoints(a, "GPU bf16", _mlir_ciface_lora_gpu_attention_bf16,
                      _mlir_ciface_lora_gpu_attention_grad_bf16, 1e-2f);
#endif
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, FlashTilesTest,
    testing::Values(Case{1, 1, 2, 1, 8},     // one row
                    Case{2, 100, 4, 2, 8},   // a partial second tile, GQA
                    Case{1, 64, 2, 2, 16},   // one full tile
                    Case{1, 65, 6, 3, 24},   // one row past a tile, 2 columns
                    Case{1, 130, 2, 1, 64},  // three tiles, 4 columns
                    Case{2, 200, 4, 2, 128}, // four tiles, batch 2, GQA
                    Case{1, 70, 4, 1, 128},  // 8 columns, group of 4
                    Case{1, 40, 2, 1, 160}), // past the tiles: the entry points
                                             // must fall back to the rows
    name);

} // namespace
