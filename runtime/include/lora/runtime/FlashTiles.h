//===- FlashTiles.h - flash attention in tiles of 64 rows -------*- C++ -*-===//
//
// The GPU's flash attention (cuda/FlashAttention.cu) for head_dim <= 128:
// a block of 256 threads (16 x 16) holds a tile of 64 query rows (or key
// rows) of one head and walks the other side's tiles through shared
// memory. Each thread owns a 4 x 4 piece of every 64 x 64 score tile (rows
// 4·ty.., columns tx + 16·j) and 4 rows x ceil(head_dim / 16) columns of
// its output tile (columns tx + 16·c). The softmax is online, as in the row
// functions of FlashAttention.h: scores never leave shared memory.
//
// - forwardTile: O and the log-sum-exp of a query tile.
// - queryGradTile: the log-sum-exp again, delta = dO·O and dQ of a query
//   tile (scores and dO·Vᵀ recomputed per key tile).
// - keyGradTile: one query head's share of dK and dV for a key tile, over
//   the query tiles at or after it; a group's shares are then added
//   (sumGroupShares), so no atomics.
//
// The functions are written against a Block: `each(f)` runs f(thread) for
// the block's threads and `sync()` is a barrier between such phases. On
// the GPU (GpuBlock in the .cu file) each thread runs f for itself and
// sync is __syncthreads; on the CPU, CpuBlock below runs the 256 calls one
// after another. The CPU step compiled with --flash_attention and the unit
// tests run these same functions, so the arithmetic, the masks and the
// indexing the GPU runs are checked on every machine.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_FLASHTILES_H
#define LORA_RUNTIME_FLASHTILES_H

#include "lora/runtime/FlashAttention.h"

#include <type_traits>
#include <vector>

#ifdef __CUDACC__
// The tile functions are host-device templates; GpuBlock's are too, so no
// call crosses execution spaces, but nvcc checks templates eagerly.
#define LORA_NO_EXEC_CHECK _Pragma("nv_exec_check_disable")
#else
#define LORA_NO_EXEC_CHECK
#endif

namespace lora::runtime::flash::tiles {

inline constexpr int kTile = 64;                // rows of a tile
inline constexpr int kSide = 16;                // threads per block side
inline constexpr int kThreads = kSide * kSide;  // threads per block
inline constexpr int kPer = kTile / kSide;      // rows per thread
inline constexpr int kScoreStride = kTile + 1;  // a score tile's row
inline constexpr int kReduceStride = kSide + 1; // a reduction tile's row
/// The largest head_dim the tiles take (8 columns per thread); larger
/// heads run the row functions.
inline constexpr int64_t kMaxTileHeadDim = 8 * kSide;

/// Columns per thread of a [kTile, headDim] tile: 1, 2, 4 or 8.
LORA_HOST_DEVICE constexpr int columnsPerThread(int64_t headDim) {
  return headDim <= kSide ? 1 : headDim <= 2 * kSide ? 2
                            : headDim <= 4 * kSide   ? 4
                                                     : 8;
}

/// A [kTile, headDim] tile's row in shared memory: odd, so that the 16
/// threads walking a column of different rows hit different banks.
LORA_HOST_DEVICE constexpr int64_t rowStride(int64_t headDim) {
  return headDim | 1;
}

LORA_HOST_DEVICE constexpr int64_t tileCount(int64_t seq) {
  return (seq + kTile - 1) / kTile;
}

/// Floats of shared memory per block.
LORA_HOST_DEVICE constexpr int64_t forwardSharedFloats(int64_t headDim) {
  return 3 * kTile * rowStride(headDim) + kTile * kScoreStride +
         kTile * kReduceStride;
}
LORA_HOST_DEVICE constexpr int64_t queryGradSharedFloats(int64_t headDim) {
  return 4 * kTile * rowStride(headDim) + kTile * kScoreStride +
         kTile * kReduceStride;
}
LORA_HOST_DEVICE constexpr int64_t keyGradSharedFloats(int64_t headDim) {
  return 4 * kTile * rowStride(headDim) + 2 * kTile * kScoreStride + 2 * kTile;
}

/// Copies rows first.. of a [seq, .., headDim] tensor (row `t` at
/// offset(t)) into a [kTile, headDim] tile, zeros past the sequence; the
/// threads take consecutive elements, so a row's reads are coalesced.
template <class Offset>
LORA_HOST_DEVICE inline void loadTile(int thread, float *tile,
                                      const float *source, int64_t first,
                                      int64_t seq, int64_t headDim,
                                      const Offset &offset) {
  int64_t stride = rowStride(headDim);
  for (int64_t e = thread; e < kTile * headDim; e += kThreads) {
    int64_t r = e / headDim, d = e % headDim, t = first + r;
    tile[r * stride + d] = t < seq ? source[offset(t) + d] : 0.0f;
  }
}

/// acc[i][j] += Σ_d A[4·ty + i][d] · B[tx + 16·j][d] over two tiles in
/// shared memory: a 4 x 4 piece of A·Bᵀ.
LORA_HOST_DEVICE inline void scorePiece(const float *a, const float *b,
                                        int64_t headDim, int ty, int tx,
                                        float (&acc)[kPer][kPer]) {
  int64_t stride = rowStride(headDim);
  for (int64_t d = 0; d < headDim; ++d) {
    float x[kPer], y[kPer];
    for (int i = 0; i < kPer; ++i) {
      x[i] = a[(ty * kPer + i) * stride + d];
      y[i] = b[(tx + kSide * i) * stride + d];
    }
    for (int i = 0; i < kPer; ++i)
      for (int j = 0; j < kPer; ++j)
        acc[i][j] += x[i] * y[j];
  }
}

/// out[i][c] += Σ_r W[4·ty + i][r] · M[r][tx + 16·c] for a [kTile,
/// kScoreStride] weight tile and a [kTile, headDim] tile.
template <int C>
LORA_HOST_DEVICE inline void accumulatePiece(const float *w, const float *m,
                                             int64_t headDim, int ty, int tx,
                                             float (&out)[kPer][C]) {
  int64_t stride = rowStride(headDim);
  for (int r = 0; r < kTile; ++r) {
    float x[kPer], y[C];
    for (int i = 0; i < kPer; ++i)
      x[i] = w[(ty * kPer + i) * kScoreStride + r];
    for (int c = 0; c < C; ++c) {
      int64_t d = tx + kSide * c;
      y[c] = d < headDim ? m[r * stride + d] : 0.0f;
    }
    for (int i = 0; i < kPer; ++i)
      for (int c = 0; c < C; ++c)
        out[i][c] += x[i] * y[c];
  }
}

/// Whether query row t attends to key row `key`: causal, and t (so also
/// the key) inside the sequence; a tile's rows past it are padding.
LORA_HOST_DEVICE inline bool attends(int64_t t, int64_t key, int64_t seq) {
  return key <= t && t < seq;
}

/// A thread's piece of the scaled, causally masked scores of query rows
/// first.. against key rows keys.. (-inf where masked), and each of its
/// rows' maximum over the piece into red[row][tx].
LORA_HOST_DEVICE inline void maskedScores(const Shape &s, const float *qs,
                                          const float *ks, int64_t first,
                                          int64_t keys, int ty, int tx,
                                          float (&score)[kPer][kPer],
                                          float *red) {
  float acc[kPer][kPer] = {};
  scorePiece(qs, ks, s.headDim, ty, tx, acc);
  for (int i = 0; i < kPer; ++i) {
    int64_t t = first + ty * kPer + i;
    float top = -INFINITY;
    for (int j = 0; j < kPer; ++j) {
      int64_t key = keys + tx + kSide * j;
      score[i][j] = attends(t, key, s.seq) ? s.scale * acc[i][j] : -INFINITY;
      top = fmaxf(top, score[i][j]);
    }
    red[(ty * kPer + i) * kReduceStride + tx] = top;
  }
}

/// The maximum (of `start` and) the sum over row r's 16 partial values in
/// a reduction tile.
LORA_HOST_DEVICE inline float rowMax(const float *red, int r, float start) {
  for (int u = 0; u < kSide; ++u)
    start = fmaxf(start, red[r * kReduceStride + u]);
  return start;
}
LORA_HOST_DEVICE inline float rowSum(const float *red, int r) {
  float sum = 0;
  for (int u = 0; u < kSide; ++u)
    sum += red[r * kReduceStride + u];
  return sum;
}

/// A thread's value for each of its rows into red[row][tx], for rowSum.
LORA_HOST_DEVICE inline void shareRowValues(int thread, float *red,
                                            const float (&values)[kPer]) {
  int ty = thread / kSide, tx = thread % kSide;
  for (int i = 0; i < kPer; ++i)
    red[(ty * kPer + i) * kReduceStride + tx] = values[i];
}

/// The online softmax's step for a thread's rows, after maskedScores and a
/// barrier: each row's new maximum from `red`, its running sum rescaled
/// (the factor into `shrink`) and the piece's weights exp(score − max)
/// added, and written to `weights` ([kTile, kScoreStride]) when given.
LORA_HOST_DEVICE inline void softmaxStep(int thread, const float *red,
                                         const float (&score)[kPer][kPer],
                                         float (&top)[kPer],
                                         float (&sum)[kPer],
                                         float (&shrink)[kPer],
                                         float *weights) {
  int ty = thread / kSide, tx = thread % kSide;
  for (int i = 0; i < kPer; ++i) {
    int r = ty * kPer + i;
    float grown = rowMax(red, r, top[i]);
    // A row past the sequence has no key: it stays empty.
    shrink[i] = grown == -INFINITY ? 1.0f : expf(top[i] - grown);
    sum[i] *= shrink[i];
    for (int j = 0; j < kPer; ++j) {
      float p = score[i][j] == -INFINITY ? 0.0f : expf(score[i][j] - grown);
      sum[i] += p;
      if (weights)
        weights[r * kScoreStride + tx + kSide * j] = p;
    }
    top[i] = grown;
  }
}

/// The last row a query tile starting at `first` holds.
LORA_HOST_DEVICE inline int64_t lastRow(int64_t first, int64_t seq) {
  return (first + kTile < seq ? first + kTile : seq) - 1;
}

/// The online softmax of a query tile (rows first.., already in `qs`) over
/// the key tiles it sees: per key tile, K into `ks` (and V into `vs` when
/// given), masked scores and the rows' maxima, then softmaxStep on each
/// thread's state (`score`, `top`, `sum`; the weights into `ps` when
/// given), `rescale(thread, shrink)` in the same phase and, with V, after
/// a barrier `accumulate(thread)` (the forward's P·V). At the end each
/// thread's `sum` holds its rows' whole sums.
LORA_NO_EXEC_CHECK
template <class Block, class KeyAt, class Local, class Rescale,
          class Accumulate>
LORA_HOST_DEVICE void softmaxPass(Block &block, const Shape &s, int64_t first,
                                  const float *k, const float *v,
                                  const KeyAt &keyAt, const float *qs,
                                  float *ks, float *vs, float *ps, float *red,
                                  Local &state, Rescale &&rescale,
                                  Accumulate &&accumulate) {
  // Causal: the keys up to the tile's last row.
  int64_t last = lastRow(first, s.seq);
  for (int64_t keyTile = 0; keyTile <= last / kTile; ++keyTile) {
    int64_t keys = keyTile * kTile;
    block.sync();
    block.each([&](int thread) {
      loadTile(thread, ks, k, keys, s.seq, s.headDim, keyAt);
      if (vs)
        loadTile(thread, vs, v, keys, s.seq, s.headDim, keyAt);
    });
    block.sync();
    block.each([&](int thread) {
      maskedScores(s, qs, ks, first, keys, thread / kSide, thread % kSide,
                   state(thread).score, red);
    });
    block.sync();
    block.each([&](int thread) {
      auto &x = state(thread);
      float shrink[kPer];
      softmaxStep(thread, red, x.score, x.top, x.sum, shrink, ps);
      rescale(thread, shrink);
    });
    if (vs) {
      block.sync();
      block.each([&](int thread) { accumulate(thread); });
    }
  }
  // Each thread summed its own columns' weights: the rows' sums.
  block.sync();
  block.each(
      [&](int thread) { shareRowValues(thread, red, state(thread).sum); });
  block.sync();
  block.each([&](int thread) {
    auto &x = state(thread);
    for (int i = 0; i < kPer; ++i)
      x.sum[i] = rowSum(red, thread / kSide * kPer + i);
  });
}

template <int C> struct ForwardState {
  float o[kPer][C];
  float score[kPer][kPer];
  float top[kPer], sum[kPer];
};

/// Output rows tile·64.. of query head h, batch b, and their log-sum-exp
/// (when `lse` is given).
LORA_NO_EXEC_CHECK
template <int C, class Block>
LORA_HOST_DEVICE void forwardTile(Block &block, const Shape &s,
                                  const float *q, const float *k,
                                  const float *v, float *out, float *lse,
                                  int64_t b, int64_t h, int64_t tile,
                                  float *shared) {
  const int64_t D = s.headDim, stride = rowStride(D), g = h / s.group();
  const int64_t first = tile * kTile;
  float *qs = shared, *ks = qs + kTile * stride, *vs = ks + kTile * stride;
  float *ps = vs + kTile * stride, *red = ps + kTile * kScoreStride;
  auto queryAt = [&](int64_t t) { return s.queryOffset(b, t, h); };
  auto keyAt = [&](int64_t t) { return s.kvOffset(b, t, g); };
  typename Block::template Local<ForwardState<C>> state;
  block.each([&](int thread) {
    loadTile(thread, qs, q, first, s.seq, D, queryAt);
    ForwardState<C> &x = state(thread);
    for (int i = 0; i < kPer; ++i) {
      x.top[i] = -INFINITY;
      x.sum[i] = 0;
      for (int c = 0; c < C; ++c)
        x.o[i][c] = 0;
    }
  });
  softmaxPass(block, s, first, k, v, keyAt, qs, ks, vs, ps, red, state,
              [&](int thread, const float (&shrink)[kPer]) {
                ForwardState<C> &x = state(thread);
                for (int i = 0; i < kPer; ++i)
                  for (int c = 0; c < C; ++c)
                    x.o[i][c] *= shrink[i];
              },
              [&](int thread) {
                accumulatePiece<C>(ps, vs, D, thread / kSide, thread % kSide,
                                   state(thread).o);
              });
  block.each([&](int thread) {
    int ty = thread / kSide, tx = thread % kSide;
    ForwardState<C> &x = state(thread);
    for (int i = 0; i < kPer; ++i) {
      int r = ty * kPer + i;
      int64_t t = first + r;
      if (t >= s.seq)
        continue;
      float sum = x.sum[i];
      float *row = out + queryAt(t);
      for (int c = 0; c < C; ++c) {
        int64_t d = tx + kSide * c;
        if (d < D)
          row[d] = x.o[i][c] / sum;
      }
      if (lse && tx == 0)
        lse[s.statOffset(b, h, t)] = x.top[i] + logf(sum);
    }
  });
}

template <int C> struct QueryGradState {
  float dq[kPer][C];
  float score[kPer][kPer];
  float top[kPer], sum[kPer], lse[kPer], delta[kPer];
};

/// For query rows tile·64.. of head h, batch b: their log-sum-exp and
/// delta = dO·O into `lse` and `delta` ([batch, heads, seq]), and
/// dQ = scale · Σ_j P_tj (dO_t·V_j − delta_t) K_j.
LORA_NO_EXEC_CHECK
template <int C, class Block>
LORA_HOST_DEVICE void queryGradTile(Block &block, const Shape &s,
                                    const float *q, const float *k,
                                    const float *v, const float *out,
                                    const float *dOut, float *lse,
                                    float *delta, float *dq, int64_t b,
                                    int64_t h, int64_t tile, float *shared) {
  const int64_t D = s.headDim, stride = rowStride(D), g = h / s.group();
  const int64_t first = tile * kTile;
  float *qs = shared, *dos = qs + kTile * stride, *ks = dos + kTile * stride;
  float *vs = ks + kTile * stride, *ss = vs + kTile * stride;
  float *red = ss + kTile * kScoreStride;
  auto queryAt = [&](int64_t t) { return s.queryOffset(b, t, h); };
  auto keyAt = [&](int64_t t) { return s.kvOffset(b, t, g); };
  typename Block::template Local<QueryGradState<C>> state;
  // delta: each thread's columns of dO·O, then summed over the row.
  block.each([&](int thread) {
    loadTile(thread, qs, q, first, s.seq, D, queryAt);
    loadTile(thread, dos, dOut, first, s.seq, D, queryAt);
  });
  block.sync();
  block.each([&](int thread) {
    int ty = thread / kSide, tx = thread % kSide;
    QueryGradState<C> &x = state(thread);
    for (int i = 0; i < kPer; ++i) {
      int r = ty * kPer + i;
      int64_t t = first + r;
      float part = 0;
      for (int c = 0; c < C; ++c) {
        int64_t d = tx + kSide * c;
        if (d < D && t < s.seq)
          part += dos[r * stride + d] * out[queryAt(t) + d];
      }
      red[r * kReduceStride + tx] = part;
      x.top[i] = -INFINITY;
      x.sum[i] = 0;
      for (int c = 0; c < C; ++c)
        x.dq[i][c] = 0;
    }
  });
  block.sync();
  block.each([&](int thread) {
    int ty = thread / kSide;
    QueryGradState<C> &x = state(thread);
    for (int i = 0; i < kPer; ++i)
      x.delta[i] = rowSum(red, ty * kPer + i);
  });
  // Pass 1: the log-sum-exp (scores only).
  softmaxPass(block, s, first, k, nullptr, keyAt, qs, ks, nullptr, nullptr,
              red, state, [](int, const float (&)[kPer]) {}, [](int) {});
  int64_t last = lastRow(first, s.seq);
  block.each([&](int thread) {
    int ty = thread / kSide, tx = thread % kSide;
    QueryGradState<C> &x = state(thread);
    for (int i = 0; i < kPer; ++i) {
      int r = ty * kPer + i;
      x.lse[i] = x.top[i] + logf(x.sum[i]);
      int64_t t = first + r;
      if (tx == 0 && t < s.seq) {
        lse[s.statOffset(b, h, t)] = x.lse[i];
        delta[s.statOffset(b, h, t)] = x.delta[i];
      }
    }
  });
  // Pass 2: dS = P (dO·Vᵀ − delta), dQ += dS·K.
  for (int64_t keyTile = 0; keyTile <= last / kTile; ++keyTile) {
    int64_t keys = keyTile * kTile;
    block.sync();
    block.each([&](int thread) {
      loadTile(thread, ks, k, keys, s.seq, D, keyAt);
      loadTile(thread, vs, v, keys, s.seq, D, keyAt);
    });
    block.sync();
    block.each([&](int thread) {
      int ty = thread / kSide, tx = thread % kSide;
      QueryGradState<C> &x = state(thread);
      float score[kPer][kPer] = {}, dp[kPer][kPer] = {};
      scorePiece(qs, ks, D, ty, tx, score);
      scorePiece(dos, vs, D, ty, tx, dp);
      for (int i = 0; i < kPer; ++i) {
        int64_t t = first + ty * kPer + i;
        for (int j = 0; j < kPer; ++j) {
          int64_t key = keys + tx + kSide * j;
          float p = attends(t, key, s.seq)
                        ? expf(s.scale * score[i][j] - x.lse[i])
                        : 0.0f;
          ss[(ty * kPer + i) * kScoreStride + tx + kSide * j] =
              p * (dp[i][j] - x.delta[i]);
        }
      }
    });
    block.sync();
    block.each([&](int thread) {
      accumulatePiece<C>(ss, ks, D, thread / kSide, thread % kSide,
                         state(thread).dq);
    });
  }
  block.each([&](int thread) {
    int ty = thread / kSide, tx = thread % kSide;
    QueryGradState<C> &x = state(thread);
    for (int i = 0; i < kPer; ++i) {
      int64_t t = first + ty * kPer + i;
      if (t >= s.seq)
        continue;
      float *row = dq + queryAt(t);
      for (int c = 0; c < C; ++c) {
        int64_t d = tx + kSide * c;
        if (d < D)
          row[d] = s.scale * x.dq[i][c];
      }
    }
  });
}

template <int C> struct KeyGradState {
  float dk[kPer][C], dv[kPer][C];
};

/// For key rows tile·64.. of kv head g = h / group, batch b, after
/// queryGradTile has written every query row's log-sum-exp and delta: query
/// head h's share, over the query tiles at or after this one, of
/// dV = Σ_t P_tj dO_t and dK = scale · Σ_t P_tj (dO_t·V_j − delta_t) Q_t,
/// written (not added) at the key rows' places in `dk` and `dv`. With
/// grouped-query heads each of a group's heads writes its own copy and
/// sumGroupShares adds them: one block per query head, not per kv head,
/// so the longest block walks a quarter as far when a group has 4 heads.
/// Here a thread's score piece is [key rows 4·ty.., query rows tx + 16·j].
LORA_NO_EXEC_CHECK
template <int C, class Block>
LORA_HOST_DEVICE void keyGradTile(Block &block, const Shape &s, const float *q,
                                  const float *k, const float *v,
                                  const float *dOut, const float *lse,
                                  const float *delta, float *dk, float *dv,
                                  int64_t b, int64_t h, int64_t tile,
                                  float *shared) {
  const int64_t D = s.headDim, stride = rowStride(D), g = h / s.group();
  const int64_t keys = tile * kTile;
  float *ks = shared, *vs = ks + kTile * stride, *qs = vs + kTile * stride;
  float *dos = qs + kTile * stride, *ps = dos + kTile * stride;
  float *ss = ps + kTile * kScoreStride, *ls = ss + kTile * kScoreStride;
  float *deltas = ls + kTile;
  auto keyAt = [&](int64_t t) { return s.kvOffset(b, t, g); };
  typename Block::template Local<KeyGradState<C>> state;
  block.each([&](int thread) {
    loadTile(thread, ks, k, keys, s.seq, D, keyAt);
    loadTile(thread, vs, v, keys, s.seq, D, keyAt);
    KeyGradState<C> &x = state(thread);
    for (int i = 0; i < kPer; ++i)
      for (int c = 0; c < C; ++c)
        x.dk[i][c] = x.dv[i][c] = 0;
  });
  auto queryAt = [&](int64_t t) { return s.queryOffset(b, t, h); };
  for (int64_t queryTile = tile; queryTile < tileCount(s.seq); ++queryTile) {
    int64_t first = queryTile * kTile;
    block.sync();
    block.each([&](int thread) {
      loadTile(thread, qs, q, first, s.seq, D, queryAt);
      loadTile(thread, dos, dOut, first, s.seq, D, queryAt);
      if (thread < kTile) {
        int64_t t = first + thread;
        ls[thread] = t < s.seq ? lse[s.statOffset(b, h, t)] : 0.0f;
        deltas[thread] = t < s.seq ? delta[s.statOffset(b, h, t)] : 0.0f;
      }
    });
    block.sync();
    block.each([&](int thread) {
      int ty = thread / kSide, tx = thread % kSide;
      float score[kPer][kPer] = {}, dp[kPer][kPer] = {};
      scorePiece(ks, qs, D, ty, tx, score);
      scorePiece(vs, dos, D, ty, tx, dp);
      for (int i = 0; i < kPer; ++i) {
        int64_t key = keys + ty * kPer + i;
        for (int j = 0; j < kPer; ++j) {
          int r = tx + kSide * j;
          int64_t t = first + r;
          float p = attends(t, key, s.seq)
                        ? expf(s.scale * score[i][j] - ls[r])
                        : 0.0f;
          ps[(ty * kPer + i) * kScoreStride + r] = p;
          ss[(ty * kPer + i) * kScoreStride + r] =
              p * (dp[i][j] - deltas[r]);
        }
      }
    });
    block.sync();
    block.each([&](int thread) {
      int ty = thread / kSide, tx = thread % kSide;
      KeyGradState<C> &x = state(thread);
      accumulatePiece<C>(ps, dos, D, ty, tx, x.dv);
      accumulatePiece<C>(ss, qs, D, ty, tx, x.dk);
    });
  }
  block.each([&](int thread) {
    int ty = thread / kSide, tx = thread % kSide;
    KeyGradState<C> &x = state(thread);
    for (int i = 0; i < kPer; ++i) {
      int64_t j = keys + ty * kPer + i;
      if (j >= s.seq)
        continue;
      float *dkRow = dk + keyAt(j), *dvRow = dv + keyAt(j);
      for (int c = 0; c < C; ++c) {
        int64_t d = tx + kSide * c;
        if (d < D) {
          dkRow[d] = s.scale * x.dk[i][c];
          dvRow[d] = x.dv[i][c];
        }
      }
    }
  });
}

/// Where query head h's share of dK (or dV) starts in a group's shares
/// (group() tensors of [batch, seq, kv_heads, head_dim], one after
/// another); 0 without grouped heads, where the head writes dK itself.
LORA_HOST_DEVICE inline int64_t shareOffset(const Shape &s, int64_t h) {
  return s.group() > 1 ? (h % s.group()) * s.keyRows() * s.headDim : 0;
}

/// dK (or dV) element `e` of [batch, seq, kv_heads, head_dim]: the sum
/// of its group's shares, `shares` holding group() tensors of that shape
/// one after another (keyGradTile of head h wrote share h % group).
LORA_HOST_DEVICE inline float sumGroupShares(const Shape &s,
                                             const float *shares, int64_t e) {
  int64_t size = s.keyRows() * s.headDim;
  float sum = 0;
  for (int64_t j = 0; j < s.group(); ++j)
    sum += shares[j * size + e];
  return sum;
}

/// f(std::integral_constant<int, C>) with C the columns per thread of
/// head_dim (host code: picks the tile functions' instantiation).
template <class F> void withColumns(int64_t headDim, F &&f) {
  switch (columnsPerThread(headDim)) {
  case 1:
    return f(std::integral_constant<int, 1>());
  case 2:
    return f(std::integral_constant<int, 2>());
  case 4:
    return f(std::integral_constant<int, 4>());
  default:
    return f(std::integral_constant<int, 8>());
  }
}

/// The block of the CPU: the threads' phases one after another, each
/// thread's registers in a vector.
struct CpuBlock {
  template <class State> struct Local {
    std::vector<State> states = std::vector<State>(kThreads);
    State &operator()(int thread) { return states[thread]; }
  };
  template <class F> void each(F &&f) {
    for (int thread = 0; thread < kThreads; ++thread)
      f(thread);
  }
  void sync() {}
};

} // namespace lora::runtime::flash::tiles

#endif // LORA_RUNTIME_FLASHTILES_H
