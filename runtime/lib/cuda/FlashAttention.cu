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

/// The stream of the step's kernels (CudaBackend.cpp): attention runs in
/// order with them, and the host code waits where it needs the results.
cudaStream_t stepStream() { return static_cast<cudaStream_t>(cudaStepStream()); }

/// A launch that failed ends the process naming the kernel. (A fault while
/// it runs surfaces at the host code's next wait.)
void finish(const char *kernel) {
  cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) {
    std::fprintf(stderr, "lora: %s failed: %s\n", kernel,
                 cudaGetErrorString(error));
    std::exit(1);
  }
}

/// The backward's per-row statistics (log-sum-exp, delta): two buffers per
/// thread, kept between calls because freeing one while the stream still
/// runs kernels that use it would need a wait. Grown (after a wait) when a
/// call needs more rows.
float *statistics(int64_t rows, int which) {
  struct Buffers {
    float *data[2] = {nullptr, nullptr};
    int64_t rows = 0;
  };
  static thread_local Buffers buffers;
  if (rows > buffers.rows) {
    if (cudaError_t error = cudaStreamSynchronize(stepStream());
        error != cudaSuccess) {
      std::fprintf(stderr,
                   "lora: waiting to grow the attention statistics: %s\n",
                   cudaGetErrorString(error));
      std::exit(1);
    }
    for (float *&data : buffers.data) {
      if (data)
        cudaFreeShared(data);
      data = static_cast<float *>(
          cudaAllocateShared(size_t(rows) * sizeof(float)));
      if (!data) {
        std::fprintf(stderr,
                     "lora: cannot allocate the attention statistics\n");
        std::exit(1);
      }
    }
    buffers.rows = rows;
  }
  return buffers.data[which];
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
  CudaProfileScope span([] { return "flash attention forward"; });
  forwardKernel<<<blocks(s.queryRows()), kThreads, 0, stepStream()>>>(
      s, in(q), in(k), in(v), out(o));
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
  float *lse = statistics(s.queryRows(), 0), *delta = statistics(s.queryRows(), 1);
  {
    CudaProfileScope span([] { return "flash attention query gradient"; });
    queryKernel<<<blocks(s.queryRows()), kThreads, 0, stepStream()>>>(
        s, in(q), in(k), in(v), in(o), in(dOut), lse, delta, out(dq));
    finish("the flash attention query-gradient kernel");
  }
  CudaProfileScope span([] { return "flash attention key gradient"; });
  keyKernel<<<blocks(s.keyRows()), kThreads, 0, stepStream()>>>(
      s, in(q), in(k), in(v), in(dOut), lse, delta, out(dk), out(dv));
  finish("the flash attention key-gradient kernel");
}
