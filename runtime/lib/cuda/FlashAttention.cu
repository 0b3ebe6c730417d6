//===- FlashAttention.cu - flash attention kernels for GPU steps ----------===//
//
// One thread per row, running the row functions of FlashAttention.h (the
// ones the CPU tests check): the forward over query rows; the backward
// over query rows (log-sum-exp, delta, dQ), then over key rows (dK, dV).
// Buffers are device-visible (managed) memory.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Attention.h"
#include "lora/runtime/Cuda.h"

#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#include <string>

using namespace lora::runtime;

namespace {

constexpr int kThreads = 128;

__global__ void forwardKernel(flash::Shape s, const float *q, const float *k,
                              const float *v, float *out) {
  int64_t row = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row < s.queryRows())
    flash::forwardRow(s, q, k, v, out, nullptr, row);
}

__global__ void queryKernel(flash::Shape s, const float *q, const float *k,
                            const float *v, const float *out, const float *dOut,
                            float *lse, float *delta, float *dq) {
  int64_t row = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row < s.queryRows())
    flash::backwardQueryRow(s, q, k, v, out, dOut, lse, delta, dq, row);
}

__global__ void keyKernel(flash::Shape s, const float *q, const float *k,
                          const float *v, const float *dOut, const float *lse,
                          const float *delta, float *dk, float *dv) {
  int64_t row = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row < s.keyRows())
    flash::backwardKeyRow(s, q, k, v, dOut, lse, delta, dk, dv, row);
}

unsigned blocks(int64_t rows) {
  return unsigned((rows + kThreads - 1) / kThreads);
}

/// The runtime API launches on its current device: make it the driver's
/// (GPU LOCAL_RANK under a launcher), once per thread.
void useDriversDevice() {
  static thread_local bool set = false;
  if (set)
    return;
  std::string name;
  if (!cudaDevice(name).ok() ||
      cudaSetDevice(cudaDeviceOrdinal()) != cudaSuccess) {
    std::fprintf(stderr, "lora: no CUDA device for the attention kernels\n");
    std::exit(1);
  }
  set = true;
}

/// Kernel launches and waits; a failure ends the process naming the kernel.
void finish(const char *kernel) {
  cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess)
    error = cudaDeviceSynchronize();
  if (error != cudaSuccess) {
    std::fprintf(stderr, "lora: %s failed: %s\n", kernel,
                 cudaGetErrorString(error));
    std::exit(1);
  }
}

const float *in(const LoraMemRef3DF32 *m) { return m->aligned + m->offset; }
float *out(LoraMemRef3DF32 *m) { return m->aligned + m->offset; }

} // namespace

extern "C" void
_mlir_ciface_lora_gpu_attention_f32(LoraMemRef3DF32 *q, LoraMemRef3DF32 *k,
                                    LoraMemRef3DF32 *v, LoraMemRef3DF32 *o,
                                    int64_t heads, int64_t kvHeads,
                                    int64_t headDim, float scale) {
  flash::Shape s = attentionShape(*q, *k, heads, kvHeads, headDim, scale,
                                  "lora_gpu_attention_f32");
  useDriversDevice();
  forwardKernel<<<blocks(s.queryRows()), kThreads>>>(s, in(q), in(k), in(v),
                                                     out(o));
  finish("the flash attention forward kernel");
}

extern "C" void _mlir_ciface_lora_gpu_attention_grad_f32(
    LoraMemRef3DF32 *q, LoraMemRef3DF32 *k, LoraMemRef3DF32 *v,
    LoraMemRef3DF32 *o, LoraMemRef3DF32 *dOut, LoraMemRef3DF32 *dq,
    LoraMemRef3DF32 *dk, LoraMemRef3DF32 *dv, int64_t heads, int64_t kvHeads,
    int64_t headDim, float scale) {
  flash::Shape s = attentionShape(*q, *k, heads, kvHeads, headDim, scale,
                                  "lora_gpu_attention_grad_f32");
  useDriversDevice();
  size_t statBytes = size_t(s.queryRows()) * sizeof(float);
  auto *lse = static_cast<float *>(cudaAllocateShared(statBytes));
  auto *delta = static_cast<float *>(cudaAllocateShared(statBytes));
  if (!lse || !delta) {
    std::fprintf(stderr, "lora: cannot allocate the attention statistics\n");
    std::exit(1);
  }
  queryKernel<<<blocks(s.queryRows()), kThreads>>>(
      s, in(q), in(k), in(v), in(o), in(dOut), lse, delta, out(dq));
  finish("the flash attention query-gradient kernel");
  keyKernel<<<blocks(s.keyRows()), kThreads>>>(s, in(q), in(k), in(v), in(dOut),
                                               lse, delta, out(dk), out(dv));
  finish("the flash attention key-gradient kernel");
  cudaFreeShared(lse);
  cudaFreeShared(delta);
}
