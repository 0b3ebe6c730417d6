//===- FlashAttention.h - attention without the score matrix ----*- C++ -*-===//
//
// Causal grouped-query attention, forward and backward, one row at a time
// with an online softmax: no [seq, seq] matrix is ever stored, only a
// log-sum-exp and a dot product per query row. The same functions run on
// the CPU (FlashAttention.cpp, one call per row) and inside the CUDA
// kernels (cuda/FlashAttention.cu, one thread per row), so the CPU tests
// check the algorithm the GPU runs.
//
// Layouts (row-major): query and output [batch, seq, heads, head_dim]; key
// and value [batch, seq, kv_heads, head_dim]; query head h reads kv head
// h / (heads / kv_heads). Row statistics (log-sum-exp, delta) are
// [batch, heads, seq].
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_FLASHATTENTION_H
#define LORA_RUNTIME_FLASHATTENTION_H

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define LORA_HOST_DEVICE __host__ __device__
#else
#define LORA_HOST_DEVICE
#endif

namespace lora::runtime::flash {

/// The largest head_dim the row kernels hold in registers.
inline constexpr int64_t kMaxHeadDim = 256;

struct Shape {
  int64_t batch, seq, heads, kvHeads, headDim;
  float scale;

  LORA_HOST_DEVICE int64_t group() const { return heads / kvHeads; }
  /// Query rows in [batch, seq, heads] order; key rows in [batch, seq,
  /// kv_heads] order. The row functions take such a row number: a CPU
  /// loop or a GPU thread index.
  LORA_HOST_DEVICE int64_t queryRows() const { return batch * seq * heads; }
  LORA_HOST_DEVICE int64_t keyRows() const { return batch * seq * kvHeads; }
  LORA_HOST_DEVICE int64_t queryOffset(int64_t b, int64_t t, int64_t h) const {
    return ((b * seq + t) * heads + h) * headDim;
  }
  LORA_HOST_DEVICE int64_t kvOffset(int64_t b, int64_t t, int64_t g) const {
    return ((b * seq + t) * kvHeads + g) * headDim;
  }
  LORA_HOST_DEVICE int64_t statOffset(int64_t b, int64_t h, int64_t t) const {
    return (b * heads + h) * seq + t;
  }
};

LORA_HOST_DEVICE inline float dot(const float *x, const float *y, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i)
    sum += x[i] * y[i];
  return sum;
}

/// (b, t, h) of row `row` of [batch, seq, heads] (or kv heads) order.
LORA_HOST_DEVICE inline void splitRow(int64_t row, int64_t seq, int64_t heads,
                                      int64_t &b, int64_t &t, int64_t &h) {
  h = row % heads;
  t = (row / heads) % seq;
  b = row / (heads * seq);
}

/// Output query row `row` = (b, t, h) and its log-sum-exp: one pass over
/// keys 0..t with a running maximum, the running sum and output rescaled
/// when it grows.
LORA_HOST_DEVICE inline void forwardRow(const Shape &s, const float *q,
                                        const float *k, const float *v,
                                        float *out, float *lse, int64_t row) {
  int64_t b, t, h;
  splitRow(row, s.seq, s.heads, b, t, h);
  const float *qt = q + s.queryOffset(b, t, h);
  int64_t g = h / s.group();
  float acc[kMaxHeadDim];
  for (int64_t d = 0; d < s.headDim; ++d)
    acc[d] = 0;
  float running = -INFINITY, sum = 0;
  for (int64_t j = 0; j <= t; ++j) {
    float score = s.scale * dot(qt, k + s.kvOffset(b, j, g), s.headDim);
    float top = fmaxf(running, score);
    float shrink = expf(running - top), weight = expf(score - top);
    const float *vj = v + s.kvOffset(b, j, g);
    for (int64_t d = 0; d < s.headDim; ++d)
      acc[d] = acc[d] * shrink + weight * vj[d];
    sum = sum * shrink + weight;
    running = top;
  }
  float *ot = out + s.queryOffset(b, t, h);
  for (int64_t d = 0; d < s.headDim; ++d)
    ot[d] = acc[d] / sum;
  if (lse)
    lse[s.statOffset(b, h, t)] = running + logf(sum);
}

/// Backward over query row `row` = (b, t, h): its log-sum-exp
/// (recomputed, the forward output is given), delta = dO·O, and
/// dQ = scale · Σ_j P_tj (dO·V_j − delta) K_j.
LORA_HOST_DEVICE inline void
backwardQueryRow(const Shape &s, const float *q, const float *k, const float *v,
                 const float *out, const float *dOut, float *lse, float *delta,
                 float *dq, int64_t row) {
  int64_t b, t, h;
  splitRow(row, s.seq, s.heads, b, t, h);
  int64_t g = h / s.group();
  const float *qt = q + s.queryOffset(b, t, h);
  const float *dot_ = dOut + s.queryOffset(b, t, h);
  float running = -INFINITY, sum = 0;
  for (int64_t j = 0; j <= t; ++j) {
    float score = s.scale * dot(qt, k + s.kvOffset(b, j, g), s.headDim);
    float top = fmaxf(running, score);
    sum = sum * expf(running - top) + expf(score - top);
    running = top;
  }
  float rowLse = running + logf(sum);
  float rowDelta = dot(dot_, out + s.queryOffset(b, t, h), s.headDim);
  lse[s.statOffset(b, h, t)] = rowLse;
  delta[s.statOffset(b, h, t)] = rowDelta;
  float *dqt = dq + s.queryOffset(b, t, h);
  for (int64_t d = 0; d < s.headDim; ++d)
    dqt[d] = 0;
  for (int64_t j = 0; j <= t; ++j) {
    const float *kj = k + s.kvOffset(b, j, g);
    float p = expf(s.scale * dot(qt, kj, s.headDim) - rowLse);
    float ds = p * (dot(dot_, v + s.kvOffset(b, j, g), s.headDim) - rowDelta);
    for (int64_t d = 0; d < s.headDim; ++d)
      dqt[d] += s.scale * ds * kj[d];
  }
}

/// Backward over key row `row` = (b, j, kv head g), after every query
/// row's backwardQueryRow: over the group's query heads and the rows
/// t >= j, dV_j = Σ P_tj dO_t and dK_j = scale · Σ P_tj (dO_t·V_j − delta_t)
/// Q_t.
LORA_HOST_DEVICE inline void backwardKeyRow(const Shape &s, const float *q,
                                            const float *k, const float *v,
                                            const float *dOut, const float *lse,
                                            const float *delta, float *dk,
                                            float *dv, int64_t row) {
  int64_t b, j, g;
  splitRow(row, s.seq, s.kvHeads, b, j, g);
  const float *kj = k + s.kvOffset(b, j, g);
  const float *vj = v + s.kvOffset(b, j, g);
  float *dkj = dk + s.kvOffset(b, j, g);
  float *dvj = dv + s.kvOffset(b, j, g);
  for (int64_t d = 0; d < s.headDim; ++d)
    dkj[d] = dvj[d] = 0;
  for (int64_t h = g * s.group(); h < (g + 1) * s.group(); ++h)
    for (int64_t t = j; t < s.seq; ++t) {
      const float *qt = q + s.queryOffset(b, t, h);
      const float *dot_ = dOut + s.queryOffset(b, t, h);
      float p =
          expf(s.scale * dot(qt, kj, s.headDim) - lse[s.statOffset(b, h, t)]);
      float ds = p * (dot(dot_, vj, s.headDim) - delta[s.statOffset(b, h, t)]);
      for (int64_t d = 0; d < s.headDim; ++d) {
        dvj[d] += p * dot_[d];
        dkj[d] += s.scale * ds * qt[d];
      }
    }
}

} // namespace lora::runtime::flash

#endif // LORA_RUNTIME_FLASHATTENTION_H
