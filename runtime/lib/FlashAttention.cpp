//===- FlashAttention.cpp - the CPU's row-by-row flash attention ----------===//
//
// What a CPU step compiled with flash attention calls: the row functions
// of FlashAttention.h, one row after another. The CPU's default lowering
// (score blocks through BLAS) is faster; this one exists so that the
// algorithm the GPU kernels run is checked on every machine.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/FlashAttention.h"

#include "lora/runtime/Attention.h"

#include <cstdio>
#include <cstdlib>
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

extern "C" void _mlir_ciface_lora_attention_f32(LoraMemRef3DF32 *q,
                                                LoraMemRef3DF32 *k,
                                                LoraMemRef3DF32 *v,
                                                LoraMemRef3DF32 *out,
                                                int64_t heads, int64_t kvHeads,
                                                int64_t headDim, float scale) {
  flash::Shape s = attentionShape(*q, *k, heads, kvHeads, headDim, scale,
                                  "lora_attention_f32");
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
  std::vector<float> lse(size_t(s.queryRows())), delta(lse.size());
  for (int64_t row = 0; row < s.queryRows(); ++row)
    flash::backwardQueryRow(s, data(q), data(k), data(v), data(out), data(dOut),
                            lse.data(), delta.data(), data(dq), row);
  for (int64_t row = 0; row < s.keyRows(); ++row)
    flash::backwardKeyRow(s, data(q), data(k), data(v), data(dOut), lse.data(),
                          delta.data(), data(dk), data(dv), row);
}
