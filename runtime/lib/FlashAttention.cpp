//===- FlashAttention.cpp - the CPU's flash attention ---------------------===//
//
// What a CPU step compiled with flash attention calls: the GPU's tiles
// (FlashTiles.h) one block after another, or for head_dim > 128 the row
// functions of FlashAttention.h, one row after another, as the GPU runs
// them. The CPU's default lowering (score blocks through BLAS) is faster;
// this one exists so that the algorithm the GPU kernels run is checked on
// every machine.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/FlashAttention.h"

#include "lora/runtime/Attention.h"
#include "lora/runtime/FlashTiles.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <vector>

using namespace lora::runtime;

flash::Shape lora::runtime::attentionShape(const LoraMemRef3DF32 &query,
                                           const LoraMemRef3DF32 &key,
                                           int64_t heads, int64_t kvHeads,
                                           int64_t headDim, float scale,
                                           const char *caller) {
  flash::Shape shape{query.sizes[0], query.sizes[1], heads,
                     kvHeads,        headDim,        scale};
  bool fits = heads > 0 && kvHeads > 0 && heads % kvHeads == 0 && headDim > 0 &&
              headDim <= flash::kMaxHeadDim &&
              query.sizes[2] == heads * headDim &&
              key.sizes[2] == kvHeads * headDim;
  if (!fits) {
    // The compiler checked the shapes; anything else is a compiler bug.
    std::fprintf(stderr,
                 "%s: unsupported attention shape (heads %lld, kv heads "
                 "%lld, head_dim %lld, at most %lld)\n",
                 caller, (long long)heads, (long long)kvHeads,
                 (long long)headDim, (long long)flash::kMaxHeadDim);
    std::exit(1);
  }
  return shape;
}

static float *data(LoraMemRef3DF32 *m) { return m->aligned + m->offset; }

void lora::runtime::flashTilesForwardCpu(const flash::Shape &s, const float *q,
                                         const float *k, const float *v,
                                         float *out, float *lse) {
  namespace tiles = flash::tiles;
  std::vector<float> shared(size_t(tiles::forwardSharedFloats(s.headDim)));
  tiles::CpuBlock block;
  tiles::withColumns(s.headDim, [&](auto columns) {
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.heads; ++h)
        for (int64_t tile = 0; tile < tiles::tileCount(s.seq); ++tile)
          tiles::forwardTile<decltype(columns)::value>(
              block, s, q, k, v, out, lse, b, h, tile, shared.data());
  });
}

void lora::runtime::flashTilesBackwardCpu(const flash::Shape &s,
                                          const float *q, const float *k,
                                          const float *v, const float *out,
                                          const float *dOut, float *dq,
                                          float *dk, float *dv) {
  namespace tiles = flash::tiles;
  std::vector<float> lse(size_t(s.queryRows())), delta(lse.size());
  std::vector<float> shared(size_t(
      std::max(tiles::queryGradSharedFloats(s.headDim),
               tiles::keyGradSharedFloats(s.headDim))));
  tiles::CpuBlock block;
  tiles::withColumns(s.headDim, [&](auto columns) {
    constexpr int C = decltype(columns)::value;
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.heads; ++h)
        for (int64_t tile = 0; tile < tiles::tileCount(s.seq); ++tile)
          tiles::queryGradTile<C>(block, s, q, k, v, out, dOut, lse.data(),
                                  delta.data(), dq, b, h, tile, shared.data());
    // With grouped heads, one share of dK and dV per query head of a
    // group (laid out as on the GPU), added after.
    int64_t size = s.keyRows() * s.headDim, group = s.group();
    std::vector<float> shares(size_t(group > 1 ? 2 * group * size : 0));
    float *dkShares = group > 1 ? shares.data() : dk;
    float *dvShares = group > 1 ? shares.data() + group * size : dv;
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.heads; ++h)
        for (int64_t tile = 0; tile < tiles::tileCount(s.seq); ++tile) {
          int64_t share = tiles::shareOffset(s, h);
          tiles::keyGradTile<C>(block, s, q, k, v, dOut, lse.data(),
                                delta.data(), dkShares + share,
                                dvShares + share, b, h, tile, shared.data());
        }
    if (group > 1)
      for (int64_t e = 0; e < size; ++e) {
        dk[e] = tiles::sumGroupShares(s, dkShares, e);
        dv[e] = tiles::sumGroupShares(s, dvShares, e);
      }
  });
}

extern "C" void _mlir_ciface_lora_attention_f32(LoraMemRef3DF32 *q,
                                                LoraMemRef3DF32 *k,
                                                LoraMemRef3DF32 *v,
                                                LoraMemRef3DF32 *out,
                                                int64_t heads, int64_t kvHeads,
                                                int64_t headDim, float scale) {
  flash::Shape s = attentionShape(*q, *k, heads, kvHeads, headDim, scale,
                                  "lora_attention_f32");
  if (s.headDim <= flash::tiles::kMaxTileHeadDim)
    return flashTilesForwardCpu(s, data(q), data(k), data(v), data(out),
                                nullptr);
  for (int64_t row = 0; row < s.queryRows(); ++row)
    flash::forwardRow(s, data(q), data(k), data(v), data(out), nullptr, row);
}

extern "C" void _mlir_ciface_lora_attention_grad_f32(
    LoraMemRef3DF32 *q, LoraMemRef3DF32 *k, LoraMemRef3DF32 *v,
    LoraMemRef3DF32 *out, LoraMemRef3DF32 *dOut, LoraMemRef3DF32 *dq,
    LoraMemRef3DF32 *dk, LoraMemRef3DF32 *dv, int64_t heads, int64_t kvHeads,
    int64_t headDim, float scale) {
  flash::Shape s = attentionShape(*q, *k, heads, kvHeads, headDim, scale,
                                  "lora_attention_grad_f32");
  if (s.headDim <= flash::tiles::kMaxTileHeadDim)
    return flashTilesBackwardCpu(s, data(q), data(k), data(v), data(out),
                                 data(dOut), data(dq), data(dk), data(dv));
  std::vector<float> lse(size_t(s.queryRows())), delta(lse.size());
  for (int64_t row = 0; row < s.queryRows(); ++row)
    flash::backwardQueryRow(s, data(q), data(k), data(v), data(out), data(dOut),
                            lse.data(), delta.data(), data(dq), row);
  for (int64_t row = 0; row < s.keyRows(); ++row)
    flash::backwardKeyRow(s, data(q), data(k), data(v), data(dOut), lse.data(),
                          delta.data(), data(dk), data(dv), row);
}
