//===- FlashAttention.cu - flash attention kernels for GPU steps ----------===//
//
// For head_dim <= 128, one block of 256 threads per tile of 64 rows,
// running the tile functions of FlashTiles.h (which the CPU tests run on
// their emulated block): the forward over query tiles; the backward over
// query tiles (log-sum-exp, delta, dQ), then over key tiles (dK, dV).
// Larger heads run the row functions of FlashAttention.h, one thread per
// row. Buffers are device-visible (managed) memory.
//
// The bf16 entry points (steps compiled with --bf16) run the products on
// the tensor cores instead, for head_dim a multiple of 16 up to 128: Q, K,
// V and dO tiles rounded to bf16 in shared memory, the probabilities and
// dS rounded to bf16 before their products, every product accumulated in
// fp32 (wmma 16x16x16), the softmax statistics in fp32. Other head sizes
// take the fp32 path.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Attention.h"
#include "lora/runtime/Cuda.h"
#include "lora/runtime/FlashTiles.h"

#include <cstdio>
#include <cstdlib>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>
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

/// Launches kernel<<<grid, threads, bytes>>>, raising the kernel's shared
/// memory limit first (above 48 KB it must be asked for).
template <class Kernel, class... Args>
void launchBlocks(Kernel kernel, dim3 grid, int threads, size_t bytes,
                  const char *what, Args... args) {
  if (cudaError_t error = cudaFuncSetAttribute(
          kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
      error != cudaSuccess) {
    std::fprintf(stderr, "lora: %s: %zu bytes of shared memory: %s\n", what,
                 bytes, cudaGetErrorString(error));
    std::exit(1);
  }
  kernel<<<grid, threads, bytes, stepStream()>>>(args...);
  finish(what);
}

/// The fp32 tiles: 256 threads, `sharedFloats` of shared memory.
template <class Kernel, class... Args>
void launchTiles(Kernel kernel, dim3 grid, int64_t sharedFloats,
                 const char *what, Args... args) {
  launchBlocks(kernel, grid, tiles::kThreads,
               size_t(sharedFloats) * sizeof(float), what, args...);
}

/// The key gradient into dk and dv: `launch(dkShares, dvShares)` writes
/// them, or with grouped heads one share per head of a group, which the
/// group-sum kernel then adds into dk and dv.
template <class Launch>
void keyGradient(const flash::Shape &s, float *dk, float *dv, Launch launch) {
  int64_t size = s.keyRows() * s.headDim;
  float *dkShares = dk, *dvShares = dv;
  if (s.group() > 1) {
    dkShares = shares(2 * s.group() * size);
    dvShares = dkShares + s.group() * size;
  }
  launch(dkShares, dvShares);
  if (s.group() > 1) {
    groupSumKernel<<<blocks(size), kThreads, 0, stepStream()>>>(
        s, dkShares, dvShares, dk, dv);
    finish("the flash attention group-sum kernel");
  }
}

/// The attention kernels' grid: x the 64-row tiles, y the query heads, z
/// the batch.
dim3 tileGrid(const flash::Shape &s) {
  return dim3(unsigned(tiles::tileCount(s.seq)), unsigned(s.heads),
              unsigned(s.batch));
}

const float *in(const LoraMemRef3DF32 *m) { return m->aligned + m->offset; }
float *out(LoraMemRef3DF32 *m) { return m->aligned + m->offset; }

//===----------------------------------------------------------------------===//
// bf16 tensor-core attention
//===----------------------------------------------------------------------===//

namespace mma {

using namespace nvcuda;
using bf16 = __nv_bfloat16;
using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

/// A block: 4 warps over a tile of 64 rows (queries, or keys in the key
/// gradient), 16 rows each; the other side passes in tiles of 64 rows. The
/// fp32 tiles' size, so that their tile count and last row serve here.
constexpr int kRows = tiles::kTile, kWarps = 4, kThreads = 32 * kWarps;
static_assert(kRows == 16 * kWarps, "a warp's 16 rows per 16 x 16 fragment");

/// Shared-memory strides in elements: rows padded (fragments start 32-byte
/// aligned; rows do not all start on one bank).
template <int D> struct Layout {
  static constexpr int kLd = D + 8;        // bf16 [64][D] tiles
  static constexpr int kLdScore = kRows + 4; // fp32 [64][64] scores
  static constexpr int kLdP = kRows + 8;   // bf16 [64][64] P or dS
  static constexpr int kLdOut = D + 4;     // fp32 [64][D] accumulator
  static constexpr size_t kTile = size_t(kRows) * kLd * sizeof(bf16);
  static constexpr size_t kScore = size_t(kRows) * kLdScore * sizeof(float);
  static constexpr size_t kP = size_t(kRows) * kLdP * sizeof(bf16);
  static constexpr size_t kOut = size_t(kRows) * kLdOut * sizeof(float);
  static constexpr size_t kStats = size_t(kRows) * sizeof(float);
  static constexpr size_t forwardBytes() {
    return 3 * kTile + kScore + kP + kOut + 2 * kStats;
  }
  static constexpr size_t queryGradBytes() {
    return 4 * kTile + 2 * kScore + kP + 4 * kStats;
  }
  static constexpr size_t keyGradBytes() {
    return 4 * kTile + 2 * kScore + 2 * kP + 2 * kStats;
  }
};

/// Carves a block's shared memory into its arrays, in order.
struct Carve {
  unsigned char *next;
  template <class T> __device__ T *take(size_t bytes) {
    T *p = reinterpret_cast<T *>(next);
    next += bytes;
    return p;
  }
};

/// Rows [first, first + 64) of one head of `x` into a bf16 tile; `offset`
/// gives a row's first element, rows at or past `seq` are zero.
template <int D, class Offset>
__device__ void loadTile(bf16 *tile, const float *x, int64_t first,
                         int64_t seq, Offset offset) {
  for (int i = threadIdx.x; i < kRows * D; i += kThreads) {
    int r = i / D, c = i % D;
    float value = first + r < seq ? x[offset(first + r) + c] : 0.0f;
    tile[r * Layout<D>::kLd + c] = __float2bfloat16(value);
  }
}

/// scores[16][64] = rows[16][D] · other[64][D]ᵀ, one warp.
template <int D>
__device__ void scoreTile(const bf16 *rows, const bf16 *other, float *scores) {
  using L = Layout<D>;
  for (int j = 0; j < kRows / 16; ++j) {
    FragC acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int kk = 0; kk < D / 16; ++kk) {
      FragA a;
      FragBt b;
      wmma::load_matrix_sync(a, rows + kk * 16, L::kLd);
      wmma::load_matrix_sync(b, other + j * 16 * L::kLd + kk * 16, L::kLd);
      wmma::mma_sync(acc, a, b, acc);
    }
    wmma::store_matrix_sync(scores + j * 16, acc, L::kLdScore,
                            wmma::mem_row_major);
  }
}

/// acc[n] += p[16][64] · other[64][D] columns 16n.., one warp.
template <int D>
__device__ void accumulate(FragC (&acc)[D / 16], const bf16 *p,
                           const bf16 *other) {
  using L = Layout<D>;
  for (int kk = 0; kk < kRows / 16; ++kk) {
    FragA a;
    wmma::load_matrix_sync(a, p + kk * 16, L::kLdP);
    for (int n = 0; n < D / 16; ++n) {
      FragB b;
      wmma::load_matrix_sync(b, other + kk * 16 * L::kLd + n * 16, L::kLd);
      wmma::mma_sync(acc[n], a, b, acc[n]);
    }
  }
}

/// Writes a warp's 16 rows of acc · factor to global memory through a
/// 16x16 scratch of its own; `offset(r)` gives row r's first element, or
/// -1 for a row past the sequence.
template <int D, class Offset>
__device__ void storeRows(FragC (&acc)[D / 16], float factor, float *scratch,
                          float *x, Offset offset) {
  int lane = threadIdx.x % 32;
  for (int n = 0; n < D / 16; ++n) {
    wmma::store_matrix_sync(scratch, acc[n], Layout<D>::kLdScore,
                            wmma::mem_row_major);
    __syncwarp();
    for (int i = lane; i < 256; i += 32) {
      int r = i / 16, c = i % 16;
      int64_t at = offset(r);
      if (at >= 0)
        x[at + n * 16 + c] = factor * scratch[r * Layout<D>::kLdScore + c];
    }
    __syncwarp();
  }
}

/// The online softmax over one warp's 16 score rows (two lanes a row, 32
/// columns each): masks keys after the row's query and past the sequence
/// (not tiles::attends, which masks whole rows past it: a padding row
/// keeps key 0, so its maximum stays finite), scales, and updates the
/// row's running maximum and sum.
/// With `p`, writes the probabilities against the new maximum there (bf16)
/// and returns the factor the row's earlier output shrinks by.
__device__ float softmaxStep(const flash::Shape &s, float *scoreRow,
                             bf16 *pRow, int64_t t, int64_t firstKey,
                             float *rowMax, float *rowSum, int r) {
  int half = threadIdx.x % 2;
  float top = -INFINITY;
  for (int c = half * 32; c < half * 32 + 32; ++c) {
    int64_t key = firstKey + c;
    float x = key <= t && key < s.seq ? scoreRow[c] * s.scale : -INFINITY;
    scoreRow[c] = x;
    top = fmaxf(top, x);
  }
  top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 1));
  // Key 0 is in the first tile and attends for every row: the maximum is
  // finite from then on.
  float old = rowMax[r], next = fmaxf(old, top), sum = 0;
  for (int c = half * 32; c < half * 32 + 32; ++c) {
    float p = expf(scoreRow[c] - next);
    if (pRow)
      pRow[c] = __float2bfloat16(p);
    sum += p;
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  float shrink = expf(old - next);
  __syncwarp();
  if (half == 0) {
    rowMax[r] = next;
    rowSum[r] = rowSum[r] * shrink + sum;
  }
  __syncwarp();
  return shrink;
}

/// One lane's half of a warp row of dS = P (dP − delta), P = exp(scale ·
/// S − lse) where `attends(c)`, else 0; lse and delta per column c (the
/// row's own in the query gradient, the query's in the key gradient). With
/// `pRow`, P too (bf16).
template <class Attends, class Lse, class Delta>
__device__ void gradientRow(const flash::Shape &s, const float *scoreRow,
                            const float *dpRow, bf16 *pRow, bf16 *dsRow,
                            Attends attends, Lse lse, Delta delta) {
  int half = threadIdx.x % 2;
  for (int c = half * 32; c < half * 32 + 32; ++c) {
    float p = attends(c) ? expf(scoreRow[c] * s.scale - lse(c)) : 0.0f;
    if (pRow)
      pRow[c] = __float2bfloat16(p);
    dsRow[c] = __float2bfloat16(p * (dpRow[c] - delta(c)));
  }
}

// Grids as the fp32 tiles': x the tiles (query tiles longest first), y
// the query heads, z the batch.
template <int D>
__global__ void __launch_bounds__(kThreads)
    forwardKernel(flash::Shape s, const float *q, const float *k,
                  const float *v, float *out) {
  using L = Layout<D>;
  extern __shared__ __align__(128) unsigned char shared[];
  Carve carve{shared};
  bf16 *qs = carve.take<bf16>(L::kTile), *ks = carve.take<bf16>(L::kTile),
       *vs = carve.take<bf16>(L::kTile);
  float *scores = carve.take<float>(L::kScore);
  bf16 *ps = carve.take<bf16>(L::kP);
  float *os = carve.take<float>(L::kOut);
  float *rowMax = carve.take<float>(L::kStats),
        *rowSum = carve.take<float>(L::kStats);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int64_t tile = tiles::tileCount(s.seq) - 1 - blockIdx.x, h = blockIdx.y,
          b = blockIdx.z, g = h / s.group(), first = tile * kRows;
  loadTile<D>(qs, q, first, s.seq,
              [&](int64_t t) { return s.queryOffset(b, t, h); });
  for (int i = threadIdx.x; i < kRows * L::kLdOut; i += kThreads)
    os[i] = 0;
  if (threadIdx.x < kRows) {
    rowMax[threadIdx.x] = -INFINITY;
    rowSum[threadIdx.x] = 0;
  }
  int r = warp * 16 + lane / 2, half = lane % 2;
  int64_t t = first + r;
  int64_t last = tiles::lastRow(first, s.seq);
  for (int64_t kt = 0; kt <= last / kRows; ++kt) {
    __syncthreads();
    auto kvRow = [&](int64_t j) { return s.kvOffset(b, j, g); };
    loadTile<D>(ks, k, kt * kRows, s.seq, kvRow);
    loadTile<D>(vs, v, kt * kRows, s.seq, kvRow);
    __syncthreads();
    float *warpScores = scores + warp * 16 * L::kLdScore;
    scoreTile<D>(qs + warp * 16 * L::kLd, ks, warpScores);
    __syncwarp();
    float shrink = softmaxStep(s, scores + r * L::kLdScore,
                                  ps + r * L::kLdP, t, kt * kRows, rowMax,
                                  rowSum, r);
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c)
      os[r * L::kLdOut + c] *= shrink;
    __syncwarp();
    FragC acc[D / 16];
    float *warpOut = os + warp * 16 * L::kLdOut;
    for (int n = 0; n < D / 16; ++n)
      wmma::load_matrix_sync(acc[n], warpOut + n * 16, L::kLdOut,
                             wmma::mem_row_major);
    accumulate<D>(acc, ps + warp * 16 * L::kLdP, vs);
    for (int n = 0; n < D / 16; ++n)
      wmma::store_matrix_sync(warpOut + n * 16, acc[n], L::kLdOut,
                              wmma::mem_row_major);
    __syncwarp();
  }
  if (t < s.seq) {
    float *o = out + s.queryOffset(b, t, h);
    float inverse = 1.0f / rowSum[r];
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c)
      o[c] = os[r * L::kLdOut + c] * inverse;
  }
}

/// Per query tile: the log-sum-exp (a pass over the keys), delta = dO·O,
/// then dQ = scale · Σ_keys P (dP − delta) K with dP = dO·Vᵀ.
template <int D>
__global__ void __launch_bounds__(kThreads)
    queryGradKernel(flash::Shape s, const float *q, const float *k,
                    const float *v, const float *out, const float *dOut,
                    float *lse, float *delta, float *dq) {
  using L = Layout<D>;
  extern __shared__ __align__(128) unsigned char shared[];
  Carve carve{shared};
  bf16 *qs = carve.take<bf16>(L::kTile), *dos = carve.take<bf16>(L::kTile),
       *ks = carve.take<bf16>(L::kTile), *vs = carve.take<bf16>(L::kTile);
  float *scores = carve.take<float>(L::kScore),
        *dps = carve.take<float>(L::kScore);
  bf16 *dss = carve.take<bf16>(L::kP);
  float *rowMax = carve.take<float>(L::kStats),
        *rowSum = carve.take<float>(L::kStats),
        *rowLse = carve.take<float>(L::kStats),
        *rowDelta = carve.take<float>(L::kStats);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int64_t tile = tiles::tileCount(s.seq) - 1 - blockIdx.x, h = blockIdx.y,
          b = blockIdx.z, g = h / s.group(), first = tile * kRows;
  auto queryRow = [&](int64_t t) { return s.queryOffset(b, t, h); };
  auto kvRow = [&](int64_t j) { return s.kvOffset(b, j, g); };
  loadTile<D>(qs, q, first, s.seq, queryRow);
  loadTile<D>(dos, dOut, first, s.seq, queryRow);
  if (threadIdx.x < kRows) {
    rowMax[threadIdx.x] = -INFINITY;
    rowSum[threadIdx.x] = 0;
  }
  int r = warp * 16 + lane / 2, half = lane % 2;
  int64_t t = first + r;
  int64_t last = tiles::lastRow(first, s.seq);
  float *warpScores = scores + warp * 16 * L::kLdScore,
        *warpDp = dps + warp * 16 * L::kLdScore;
  for (int64_t kt = 0; kt <= last / kRows; ++kt) {
    __syncthreads();
    loadTile<D>(ks, k, kt * kRows, s.seq, kvRow);
    __syncthreads();
    scoreTile<D>(qs + warp * 16 * L::kLd, ks, warpScores);
    __syncwarp();
    softmaxStep(s, scores + r * L::kLdScore, nullptr, t, kt * kRows,
                   rowMax, rowSum, r);
  }
  // delta: each lane of the row's pair half of dO·O, in fp32.
  float partial = 0;
  if (t < s.seq)
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c)
      partial += dOut[queryRow(t) + c] * out[queryRow(t) + c];
  partial += __shfl_xor_sync(0xffffffffu, partial, 1);
  if (half == 0) {
    rowLse[r] = rowMax[r] + logf(rowSum[r]);
    rowDelta[r] = partial;
    if (t < s.seq) {
      lse[s.statOffset(b, h, t)] = rowLse[r];
      delta[s.statOffset(b, h, t)] = partial;
    }
  }
  __syncwarp();
  FragC acc[D / 16];
  for (int n = 0; n < D / 16; ++n)
    wmma::fill_fragment(acc[n], 0.0f);
  for (int64_t kt = 0; kt <= last / kRows; ++kt) {
    __syncthreads();
    loadTile<D>(ks, k, kt * kRows, s.seq, kvRow);
    loadTile<D>(vs, v, kt * kRows, s.seq, kvRow);
    __syncthreads();
    scoreTile<D>(qs + warp * 16 * L::kLd, ks, warpScores);
    scoreTile<D>(dos + warp * 16 * L::kLd, vs, warpDp);
    __syncwarp();
    gradientRow(
        s, scores + r * L::kLdScore, dps + r * L::kLdScore, nullptr,
        dss + r * L::kLdP,
        [&](int c) {
          int64_t key = kt * kRows + c;
          return key <= t && key < s.seq;
        },
        [&](int) { return rowLse[r]; }, [&](int) { return rowDelta[r]; });
    __syncwarp();
    accumulate<D>(acc, dss + warp * 16 * L::kLdP, ks);
  }
  storeRows<D>(acc, s.scale, warpScores, dq, [&](int row) -> int64_t {
    int64_t at = first + warp * 16 + row;
    return at < s.seq ? queryRow(at) : -1;
  });
}

/// Per key tile and query head: over the query tiles from the key tile's
/// on, dV = Σ Pᵀ dO and dK = scale · Σ dSᵀ Q, with the key rows as the
/// warps' rows (Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ). With grouped heads, dk and dv
/// are the head's share (shareOffset), which groupSumKernel adds.
template <int D>
__global__ void __launch_bounds__(kThreads)
    keyGradKernel(flash::Shape s, const float *q, const float *k,
                  const float *v, const float *dOut, const float *lse,
                  const float *delta, float *dk, float *dv) {
  using L = Layout<D>;
  extern __shared__ __align__(128) unsigned char shared[];
  Carve carve{shared};
  bf16 *ks = carve.take<bf16>(L::kTile), *vs = carve.take<bf16>(L::kTile),
       *qs = carve.take<bf16>(L::kTile), *dos = carve.take<bf16>(L::kTile);
  float *scores = carve.take<float>(L::kScore),
        *dps = carve.take<float>(L::kScore);
  bf16 *ps = carve.take<bf16>(L::kP), *dss = carve.take<bf16>(L::kP);
  float *colLse = carve.take<float>(L::kStats),
        *colDelta = carve.take<float>(L::kStats);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int64_t h = blockIdx.y, b = blockIdx.z, g = h / s.group(),
          first = int64_t(blockIdx.x) * kRows;
  int64_t share = tiles::shareOffset(s, h);
  auto queryRow = [&](int64_t t) { return s.queryOffset(b, t, h); };
  auto kvRow = [&](int64_t j) { return s.kvOffset(b, j, g); };
  loadTile<D>(ks, k, first, s.seq, kvRow);
  loadTile<D>(vs, v, first, s.seq, kvRow);
  int r = warp * 16 + lane / 2;
  int64_t key = first + r;
  float *warpScores = scores + warp * 16 * L::kLdScore,
        *warpDp = dps + warp * 16 * L::kLdScore;
  FragC dkAcc[D / 16], dvAcc[D / 16];
  for (int n = 0; n < D / 16; ++n) {
    wmma::fill_fragment(dkAcc[n], 0.0f);
    wmma::fill_fragment(dvAcc[n], 0.0f);
  }
  for (int64_t qt = blockIdx.x; qt < tiles::tileCount(s.seq); ++qt) {
    __syncthreads();
    loadTile<D>(qs, q, qt * kRows, s.seq, queryRow);
    loadTile<D>(dos, dOut, qt * kRows, s.seq, queryRow);
    if (threadIdx.x < kRows) {
      int64_t t = qt * kRows + threadIdx.x;
      colLse[threadIdx.x] = t < s.seq ? lse[s.statOffset(b, h, t)] : 0.0f;
      colDelta[threadIdx.x] = t < s.seq ? delta[s.statOffset(b, h, t)] : 0.0f;
    }
    __syncthreads();
    scoreTile<D>(ks + warp * 16 * L::kLd, qs, warpScores);
    scoreTile<D>(vs + warp * 16 * L::kLd, dos, warpDp);
    __syncwarp();
    gradientRow(
        s, scores + r * L::kLdScore, dps + r * L::kLdScore, ps + r * L::kLdP,
        dss + r * L::kLdP,
        [&](int c) {
          return tiles::attends(qt * kRows + c, key, s.seq);
        },
        [&](int c) { return colLse[c]; }, [&](int c) { return colDelta[c]; });
    __syncwarp();
    accumulate<D>(dvAcc, ps + warp * 16 * L::kLdP, dos);
    accumulate<D>(dkAcc, dss + warp * 16 * L::kLdP, qs);
  }
  auto keyRow = [&](int row) -> int64_t {
    int64_t j = first + warp * 16 + row;
    return j < s.seq ? share + kvRow(j) : -1;
  };
  storeRows<D>(dkAcc, s.scale, warpScores, dk, keyRow);
  storeRows<D>(dvAcc, 1.0f, warpScores, dv, keyRow);
}

/// Calls f(std::integral_constant<int, D>) for the head sizes the tensor
/// cores take; false for the others.
template <class F> bool withHeadDim(int64_t headDim, F &&f) {
  switch (headDim) {
  case 16:
    f(std::integral_constant<int, 16>());
    return true;
  case 32:
    f(std::integral_constant<int, 32>());
    return true;
  case 64:
    f(std::integral_constant<int, 64>());
    return true;
  case 128:
    f(std::integral_constant<int, 128>());
    return true;
  default:
    return false;
  }
}

} // namespace mma

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
    tiles::withColumns(s.headDim, [&](auto columns) {
      constexpr int C = decltype(columns)::value;
      launchTiles(forwardTileKernel<C>, tileGrid(s),
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
        launchTiles(queryGradTileKernel<C>, tileGrid(s),
                    tiles::queryGradSharedFloats(s.headDim),
                    "the flash attention query-gradient kernel", s, in(q),
                    in(k), in(v), in(o), in(dOut), lse, delta, out(dq));
      }
      CudaProfileScope span([] { return "flash attention key gradient"; });
      keyGradient(s, out(dk), out(dv), [&](float *dkShares, float *dvShares) {
        launchTiles(keyGradTileKernel<C>, tileGrid(s),
                    tiles::keyGradSharedFloats(s.headDim),
                    "the flash attention key-gradient kernel", s, in(q),
                    in(k), in(v), in(dOut), lse, delta, dkShares, dvShares);
      });
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

extern "C" void
_mlir_ciface_lora_gpu_attention_bf16(LoraMemRef3DF32 *q, LoraMemRef3DF32 *k,
                                     LoraMemRef3DF32 *v, LoraMemRef3DF32 *o,
                                     int64_t heads, int64_t kvHeads,
                                     int64_t headDim, float scale) {
  flash::Shape s = attentionShape(*q, *k, heads, kvHeads, headDim, scale,
                                  "lora_gpu_attention_bf16");
  useDriversDevice();
  bool ran = mma::withHeadDim(s.headDim, [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    CudaProfileScope span([] { return "flash attention forward (bf16)"; });
    launchBlocks(mma::forwardKernel<D>, tileGrid(s), mma::kThreads,
                 mma::Layout<D>::forwardBytes(),
                 "the bf16 flash attention forward kernel", s, in(q), in(k),
                 in(v), out(o));
  });
  if (!ran)
    _mlir_ciface_lora_gpu_attention_f32(q, k, v, o, heads, kvHeads, headDim,
                                        scale);
}

extern "C" void _mlir_ciface_lora_gpu_attention_grad_bf16(
    LoraMemRef3DF32 *q, LoraMemRef3DF32 *k, LoraMemRef3DF32 *v,
    LoraMemRef3DF32 *o, LoraMemRef3DF32 *dOut, LoraMemRef3DF32 *dq,
    LoraMemRef3DF32 *dk, LoraMemRef3DF32 *dv, int64_t heads, int64_t kvHeads,
    int64_t headDim, float scale) {
  flash::Shape s = attentionShape(*q, *k, heads, kvHeads, headDim, scale,
                                  "lora_gpu_attention_grad_bf16");
  useDriversDevice();
  bool ran = mma::withHeadDim(s.headDim, [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    float *lse = statistics(s.queryRows(), 0),
          *delta = statistics(s.queryRows(), 1);
    dim3 grid = tileGrid(s);
    {
      CudaProfileScope span(
          [] { return "flash attention query gradient (bf16)"; });
      launchBlocks(mma::queryGradKernel<D>, grid, mma::kThreads,
                   mma::Layout<D>::queryGradBytes(),
                   "the bf16 flash attention query-gradient kernel", s, in(q),
                   in(k), in(v), in(o), in(dOut), lse, delta, out(dq));
    }
    CudaProfileScope span([] { return "flash attention key gradient (bf16)"; });
    keyGradient(s, out(dk), out(dv), [&](float *dkShares, float *dvShares) {
      launchBlocks(mma::keyGradKernel<D>, grid, mma::kThreads,
                   mma::Layout<D>::keyGradBytes(),
                   "the bf16 flash attention key-gradient kernel", s, in(q),
                   in(k), in(v), in(dOut), lse, delta, dkShares, dvShares);
    });
  });
  if (!ran)
    _mlir_ciface_lora_gpu_attention_grad_f32(q, k, v, o, dOut, dq, dk, dv,
                                             heads, kvHeads, headDim, scale);
}
