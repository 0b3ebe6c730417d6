//===- SkinnyGemm.cpp - GEMMs with a side of 16 to 64, unpacked -----------===//
//
// A LoRA step's adapter GEMMs have one side of rank r: dA = dUᵀ·X
// (r x in, K = tokens), dB = dYᵀ·U (out x r), dU = dY·B (tokens x r).
// OpenBLAS packs both operands into panels first; with r = 16 the packing
// of the large operand costs about as much as the arithmetic, and in the
// benchmark step these GEMMs ran at 130-190 GFLOP/s against 400-460 for the
// base GEMMs (docs/Performance.md). Here no operand is copied: a tile of C
// (R rows x 16·V columns, R·V AVX-512 accumulators) stays in registers
// while K runs, each step of K loading one row segment of B and
// broadcasting R values of A. Where a tile would read the large operand
// across its rows (B in column strips, or A transposed), K goes in chunks
// with every tile of a thread's run through a chunk before the next, and
// the next tile's data is prefetched.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Gemm.h"

#ifdef LORA_HAVE_OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LORA_SKINNY_AVX512 1
#endif

namespace {

#ifdef LORA_SKINNY_AVX512
/// C[i, 0:16V] = Σ_{p in [begin, end)} A(i, p) · B[p, 0:16V] for the Rows
/// rows of one tile, added to C's contents when `load`, where A(i, p) =
/// a[i·aRow + p·aCol] (either layout of A). `prefetch`, when not null, is
/// the operand the next tile streams, fetched `prefetchStride` floats on
/// per step of p, a tile's run ahead of its use.
template <int V, int Rows>
__attribute__((target("avx512f"))) void
tile(const float *a, int64_t aRow, int64_t aCol, const float *b, int64_t ldb,
     int64_t begin, int64_t end, float *c, int64_t ldc, bool load,
     const float *prefetch, int64_t prefetchStride) {
  __m512 acc[Rows][V];
  for (int i = 0; i < Rows; ++i)
    for (int v = 0; v < V; ++v)
      acc[i][v] = load ? _mm512_loadu_ps(c + i * ldc + 16 * v)
                       : _mm512_setzero_ps();
  for (int64_t p = begin; p < end; ++p) {
    if (prefetch)
      _mm_prefetch((const char *)(prefetch + p * prefetchStride), _MM_HINT_T2);
    __m512 row[V];
    for (int v = 0; v < V; ++v)
      row[v] = _mm512_loadu_ps(b + p * ldb + 16 * v);
    for (int i = 0; i < Rows; ++i) {
      __m512 value = _mm512_set1_ps(a[i * aRow + p * aCol]);
      for (int v = 0; v < V; ++v)
        acc[i][v] = _mm512_fmadd_ps(value, row[v], acc[i][v]);
    }
  }
  for (int i = 0; i < Rows; ++i)
    for (int v = 0; v < V; ++v)
      _mm512_storeu_ps(c + i * ldc + 16 * v, acc[i][v]);
}

/// The whole C in tiles of R = 16 / V rows (the last rows one at a time)
/// by 16·V columns, each thread taking a run of tiles. Where K goes in
/// chunks, every tile of the run goes through one chunk before the next:
/// the operand the tiles share stays in L1 within a chunk, and the streamed
/// one is read a tile's width at a time along its rows, fetched one tile
/// ahead.
template <int V>
void tiles(const float *a, int64_t aRow, int64_t aCol, const float *b,
           int64_t ldb, float *c, int64_t ldc, int64_t m, int64_t n, int64_t k,
           bool accumulate, int threads) {
  constexpr int R = 16 / V;
  constexpr int64_t width = 16 * V;
  int64_t rowTiles = (m + R - 1) / R, columnTiles = n / width;
  // Chunks of K only where a tile reads the streamed operand across its
  // rows (B in column strips, or A transposed): A read along its rows is
  // streamed in order by the hardware's prefetchers, and chunks there cost
  // more than they save (docs/Performance.md has both figures).
  int64_t chunk = columnTiles > 1 || aCol != 1 ? 128 : k;
  int64_t count = rowTiles * columnTiles;
  auto run = [&](int64_t first, int64_t last) {
    for (int64_t begin = 0; begin < k; begin += chunk) {
      int64_t end = std::min(k, begin + chunk);
      bool load = accumulate || begin > 0;
      for (int64_t t = first; t < last; ++t) {
        int64_t row = (t / columnTiles) * R, column = (t % columnTiles) * width;
        const float *aTile = a + row * aRow, *bTile = b + column;
        float *cTile = c + row * ldc + column;
        // The next tile's new operand: B's next columns, or A's next rows
        // when A's rows are columns in memory (A's rows in place are read
        // in order and need no help).
        const float *prefetch = nullptr;
        int64_t stride = 0;
        if (t + 1 < last) {
          if (columnTiles > 1 && (t + 1) % columnTiles != 0)
            prefetch = bTile + width, stride = ldb;
          else if (aCol != 1)
            prefetch = aTile + R * aRow, stride = aCol;
        }
        if (row + R <= m) {
          tile<V, R>(aTile, aRow, aCol, bTile, ldb, begin, end, cTile, ldc,
                     load, prefetch, stride);
          continue;
        }
        for (int64_t i = 0; row + i < m; ++i)
          tile<V, 1>(aTile + i * aRow, aRow, aCol, bTile, ldb, begin, end,
                     cTile + i * ldc, ldc, load, nullptr, 0);
      }
    }
  };
#ifdef LORA_HAVE_OPENMP
  if (threads > 1 && count > 1) {
#pragma omp parallel num_threads(threads)
    {
      int64_t parts = omp_get_num_threads(), part = omp_get_thread_num();
      int64_t per = (count + parts - 1) / parts;
      run(std::min(count, part * per), std::min(count, (part + 1) * per));
    }
    return;
  }
#endif
  (void)threads;
  run(0, count);
}

#endif

} // namespace

bool lora::runtime::skinnyGemmEnabled() {
#ifdef LORA_SKINNY_AVX512
  static const bool on = [] {
    const char *value = std::getenv("LORA_SKINNY_GEMM");
    return __builtin_cpu_supports("avx512f") &&
           (!value || std::strcmp(value, "0") != 0);
  }();
  return on;
#else
  return false;
#endif
}

bool lora::runtime::skinnyGemmApplies(int32_t transposeB, int64_t m, int64_t n,
                                      int64_t k) {
#ifdef LORA_SKINNY_AVX512
  if (!skinnyGemmEnabled() || k < 64)
    return false;
  // One side of 16, 32, 48 or 64 (the rank), the other long enough that
  // the tiles keep every thread busy; B's rows give the vectors, so N must
  // come in whole vectors.
  auto rankSide = [](int64_t side) { return side % 16 == 0 && side <= 64; };
  if (n % 16 != 0)
    return false;
  // Attention's per-head GEMMs with N = head_dim = 64 (P·V, dQ, dV in
  // 128-row query blocks) gain too from M = 128 on: without packing, they
  // ran 1.2-1.3x OpenBLAS's speed on one thread (docs/Performance.md).
  // B transposed: only as N x K with N the rank (the backward's U = X·Aᵀ
  // when the adapter is merged into the weight), which lora_sgemm_f32
  // transposes into K x N first (K·N floats, against M·K·N FMAs).
  if (transposeB)
    return rankSide(n) && m >= 256;
  return (rankSide(n) && (m >= 256 || (n == 64 && m >= 128))) ||
         (rankSide(m) && n >= 256);
#else
  (void)transposeB, (void)m, (void)n, (void)k;
  return false;
#endif
}

void lora::runtime::skinnyGemm(int32_t transposeA, int64_t m, int64_t n,
                               int64_t k, const float *a, int64_t lda,
                               const float *b, int64_t ldb, float *c,
                               int64_t ldc, bool accumulate, int threads) {
#ifdef LORA_SKINNY_AVX512
  // A(i, p) of op(A): A is M x K row-major, or K x M when transposed.
  int64_t aRow = transposeA ? 1 : lda, aCol = transposeA ? lda : 1;
  // A short C (M = rank) takes 16-row tiles along N; a narrow one (N =
  // rank) takes tiles as wide as C.
  switch (n <= 64 ? n / 16 : 1) {
  case 1:
    return tiles<1>(a, aRow, aCol, b, ldb, c, ldc, m, n, k, accumulate,
                    threads);
  case 2:
    return tiles<2>(a, aRow, aCol, b, ldb, c, ldc, m, n, k, accumulate,
                    threads);
  case 3:
    return tiles<3>(a, aRow, aCol, b, ldb, c, ldc, m, n, k, accumulate,
                    threads);
  default:
    return tiles<4>(a, aRow, aCol, b, ldb, c, ldc, m, n, k, accumulate,
                    threads);
  }
#else
  (void)transposeA, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b,
      (void)ldb, (void)c, (void)ldc, (void)accumulate, (void)threads;
  std::abort();
#endif
}
