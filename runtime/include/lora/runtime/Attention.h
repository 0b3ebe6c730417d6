//===- Attention.h - flash attention entry points of compiled steps -*- C++
//-*-===//
//
// A step compiled with flash attention (lora-gpu-pipeline always; the CPU
// pipeline with --flash_attention) calls these for `lora.attention` and
// `lora.attention_grad`: the CPU ones in FlashAttention.cpp, the GPU ones
// (`lora_gpu_...`, device buffers) in cuda/FlashAttention.cu. Buffers are
// dense row-major [batch, seq, heads · head_dim].
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_ATTENTION_H
#define LORA_RUNTIME_ATTENTION_H

#include "lora/runtime/FlashAttention.h"

#include <cstdint>

extern "C" {

/// MLIR's descriptor of a rank-3 f32 memref.
struct LoraMemRef3DF32 {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[3];
  int64_t strides[3];
};

void _mlir_ciface_lora_attention_f32(LoraMemRef3DF32 *q, LoraMemRef3DF32 *k,
                                     LoraMemRef3DF32 *v, LoraMemRef3DF32 *out,
                                     int64_t heads, int64_t kvHeads,
                                     int64_t headDim, float scale);
void _mlir_ciface_lora_attention_grad_f32(
    LoraMemRef3DF32 *q, LoraMemRef3DF32 *k, LoraMemRef3DF32 *v,
    LoraMemRef3DF32 *out, LoraMemRef3DF32 *dOut, LoraMemRef3DF32 *dq,
    LoraMemRef3DF32 *dk, LoraMemRef3DF32 *dv, int64_t heads, int64_t kvHeads,
    int64_t headDim, float scale);

/// The same on GPU buffers (CUDA backend only).
void _mlir_ciface_lora_gpu_attention_f32(LoraMemRef3DF32 *q, LoraMemRef3DF32 *k,
                                         LoraMemRef3DF32 *v,
                                         LoraMemRef3DF32 *out, int64_t heads,
                                         int64_t kvHeads, int64_t headDim,
                                         float scale);
void _mlir_ciface_lora_gpu_attention_grad_f32(
    LoraMemRef3DF32 *q, LoraMemRef3DF32 *k, LoraMemRef3DF32 *v,
    LoraMemRef3DF32 *out, LoraMemRef3DF32 *dOut, LoraMemRef3DF32 *dq,
    LoraMemRef3DF32 *dk, LoraMemRef3DF32 *dv, int64_t heads, int64_t kvHeads,
    int64_t headDim, float scale);

/// The same with the products on bf16 tensor cores (steps compiled with
/// --bf16): Q, K, V, dO and the probabilities rounded to bf16, fp32
/// accumulation and softmax. Head sizes other than 16, 32, 64 and 128 run
/// the fp32 kernels.
void _mlir_ciface_lora_gpu_attention_bf16(LoraMemRef3DF32 *q,
                                          LoraMemRef3DF32 *k,
                                          LoraMemRef3DF32 *v,
                                          LoraMemRef3DF32 *out, int64_t heads,
                                          int64_t kvHeads, int64_t headDim,
                                          float scale);
void _mlir_ciface_lora_gpu_attention_grad_bf16(
    LoraMemRef3DF32 *q, LoraMemRef3DF32 *k, LoraMemRef3DF32 *v,
    LoraMemRef3DF32 *out, LoraMemRef3DF32 *dOut, LoraMemRef3DF32 *dq,
    LoraMemRef3DF32 *dk, LoraMemRef3DF32 *dv, int64_t heads, int64_t kvHeads,
    int64_t headDim, float scale);

} // extern "C"

namespace lora::runtime {
/// The shape of a call, checked (a mismatch is a compiler bug and ends the
/// process naming `caller`).
flash::Shape attentionShape(const LoraMemRef3DF32 &query,
                            const LoraMemRef3DF32 &key, int64_t heads,
                            int64_t kvHeads, int64_t headDim, float scale,
                            const char *caller);

/// The GPU's tiled flash attention (FlashTiles.h, head_dim <= 128) run on
/// the CPU, one block after another: the CPU step with --flash_attention
/// and the tests call it. `lse` may be null.
void flashTilesForwardCpu(const flash::Shape &s, const float *q,
                          const float *k, const float *v, float *out,
                          float *lse);
void flashTilesBackwardCpu(const flash::Shape &s, const float *q,
                           const float *k, const float *v, const float *out,
                           const float *dOut, float *dq, float *dk, float *dv);
} // namespace lora::runtime

#endif // LORA_RUNTIME_ATTENTION_H
