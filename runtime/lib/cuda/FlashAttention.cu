//===- FlashAttention.cu - flash attention kernels for GPU steps ----------===//
//
// For head_dim <= 128, one block of 256 threads per tile of 64 rows,
// running the tile functions of FlashTiles.h (which the CPU tests run on
// their emulated block): the forward over query tiles; the backward over
// query tiles (log-sum-exp, delta, dQ), then over key tiles (dK, dV).
// Larger heads run the row functions of FlashAttention.h, one thread per
// row. Buffers are device-visible (managed) memory.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Attention.h"
#include "lora/runtime/Cuda.h"
#include "lora/runtime/FlashTiles.h"

#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#include <string>
#include <type_traits>

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

namespace tiles = flash::tiles;

/// The tile functions' block: each thread runs its own part of a phase,
/// and phases meet at __syncthreads.
struct GpuBlock {
  template <class State> struct Local {
    State state;
    __host__ __device__ State &operator()(int) { return state; }
  };
  template <class F> __host__ __device__ void each(F &&f) {
#ifdef __CUDA_ARCH__
    f(int(threadIdx.x));
#endif
  }
  __host__ __device__ void sync() {
#ifdef __CUDA_ARCH__
    __syncthreads();
#endif
  }
};

// Grids: x the tiles, y the heads, z the batch. Query tiles run the
// longest last (causal): block x = 0 takes the last tile.
template <int C>
__global__ void __launch_bounds__(tiles::kThreads)
    forwardTileKernel(flash::Shape s, const float *q, const float *k,
                      const float *v, float *out) {
  extern __shared__ float shared[];
  GpuBlock block;
  int64_t tile = tiles::tileCount(s.seq) - 1 - blockIdx.x;
  tiles::forwardTile<C>(block, s, q, k, v, out, nullptr, blockIdx.z,
                        blockIdx.y, tile, shared);
}

template <int C>
__global__ void __launch_bounds__(tiles::kThreads)
    queryGradTileKernel(flash::Shape s, const float *q, const float *k,
                        const float *v, const float *out, const float *dOut,
                        float *lse, float *delta, float *dq) {
  extern __shared__ float shared[];
  GpuBlock block;
  int64_t tile = tiles::tileCount(s.seq) - 1 - blockIdx.x;
  tiles::queryGradTile<C>(block, s, q, k, v, out, dOut, lse, delta, dq,
                          blockIdx.z, blockIdx.y, tile, shared);
}

// Key tiles walk the query tiles after them: block x = 0 (the first tile)
// runs the longest. y is the query head: with grouped heads, dk and dv
// are the group's shares (shareOffset), which groupSumKernel adds.
template <int C>
__global__ void __launch_bounds__(tiles::kThreads)
    keyGradTileKernel(flash::Shape s, const float *q, const float *k,
                      const float *v, const float *dOut, const float *lse,
                      const float *delta, float *dk, float *dv) {
  extern __shared__ float shared[];
  GpuBlock block;
  int64_t h = blockIdx.y, share = tiles::shareOffset(s, h);
  tiles::keyGradTile<C>(block, s, q, k, v, dOut, lse, delta, dk + share,
                        dv + share, blockIdx.z, h, blockIdx.x, shared);
}

/// dK and dV from their group's shares (dkShares, then dvShares).
__global__ void groupSumKernel(flash::Shape s, const float *dkShares,
                               const float *dvShares, float *dk, float *dv) {
  int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e < s.keyRows() * s.headDim) {
    dk[e] = tiles::sumGroupShares(s, dkShares, e);
    dv[e] = tiles::sumGroupShares(s, dvShares, e);
  }
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

/// The backward's scratch memory, per thread: slots 0 and 1 the per-row
/// statistics (log-sum-exp, delta), slot 2 the key gradient's group
/// shares. Kept between calls, because freeing a buffer while the stream
/// still runs kernels that use it would need a wait; grown (after a wait)
/// when a call needs more.
float *scratch(int slot, int64_t floats) {
  struct Buffer {
    float *data = nullptr;
    int64_t floats = 0;
  };
  static thread_local Buffer buffers[3];
  Buffer &buffer = buffers[slot];
  if (floats > buffer.floats) {
    if (cudaError_t error = cudaStreamSynchronize(stepStream());
        error != cudaSuccess) {
      std::fprintf(stderr,
                   "lora: waiting to grow the attention's scratch memory: "
                   "%s\n",
                   cudaGetErrorString(error));
      std::exit(1);
    }
    if (buffer.data)
      cudaFreeShared(buffer.data);
    buffer.data = static_cast<float *>(
        cudaAllocateShared(size_t(floats) * sizeof(float)));
    if (!buffer.data) {
      std::fprintf(stderr,
                   "lora: cannot allocate %lld floats of the attention's "
                   "scratch memory\n",
                   (long long)floats);
      std::exit(1);
    }
    buffer.floats = floats;
  }
  return buffer.data;
}

float *statistics(int64_t rows, int which) { return scratch(which, rows); }
float *shares(int64_t floats) { return scratch(2, floats); }

/// Launches kernel<<<grid, 256, bytes>>>, raising the kernel's shared
/// memory limit first (above 48 KB it must be asked for).
template <class Kernel, class... Args>
void launchTiles(Kernel kernel, dim3 grid, int64_t sharedFloats,
                 const char *what, Args... args) {
  size_t bytes = size_t(sharedFloats) * sizeof(float);
  if (cudaError_t error = cudaFuncSetAttribute(
          kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
      error != cudaSuccess) {
    std::fprintf(stderr, "lora: %s: %zu bytes of shared memory: %s\n", what,
                 bytes, cudaGetErrorString(error));
    std::exit(1);
  }
  kernel<<<grid, tiles::kThreads, bytes, stepStream()>>>(args...);
  finish(what);
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
  if (s.headDim <= tiles::kMaxTileHeadDim) {
    dim3 grid(unsigned(tiles::tileCount(s.seq)), unsigned(s.heads),
              unsigned(s.batch));
    tiles::withColumns(s.headDim, [&](auto columns) {
      constexpr int C = decltype(columns)::value;
      launchTiles(forwardTileKernel<C>, grid,
                  tiles::forwardSharedFloats(s.headDim),
                  "the flash attention forward kernel", s, in(q), in(k),
                  in(v), out(o));
    });
    return;
  }
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
  if (s.headDim <= tiles::kMaxTileHeadDim) {
    tiles::withColumns(s.headDim, [&](auto columns) {
      constexpr int C = decltype(columns)::value;
      {
        CudaProfileScope span(
            [] { return "flash attention query gradient"; });
        launchTiles(queryGradTileKernel<C>,
                    dim3(unsigned(tiles::tileCount(s.seq)), unsigned(s.heads),
                         unsigned(s.batch)),
                    tiles::queryGradSharedFloats(s.headDim),
                    "the flash attention query-gradient kernel", s, in(q),
                    in(k), in(v), in(o), in(dOut), lse, delta, out(dq));
      }
      CudaProfileScope span([] { return "flash attention key gradient"; });
      int64_t size = s.keyRows() * s.headDim;
      float *dkShares = out(dk), *dvShares = out(dv);
      if (s.group() > 1) {
        dkShares = shares(2 * s.group() * size);
        dvShares = dkShares + s.group() * size;
      }
      launchTiles(keyGradTileKernel<C>,
                  dim3(unsigned(tiles::tileCount(s.seq)), unsigned(s.heads),
                       unsigned(s.batch)),
                  tiles::keyGradSharedFloats(s.headDim),
                  "the flash attention key-gradient kernel", s, in(q), in(k),
                  in(v), in(dOut), lse, delta, dkShares, dvShares);
      if (s.group() > 1) {
        groupSumKernel<<<blocks(size), kThreads, 0, stepStream()>>>(
            s, dkShares, dvShares, out(dk), out(dv));
        finish("the flash attention group-sum kernel");
      }
    });
    return;
  }
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
