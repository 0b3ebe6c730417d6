//===- AdapterGrad.cpp - a LoRA adapter's backward in one pass ------------===//
//
// Given dY (tokens x out), the adapter's B (out x r), the forward's
// U = X·Aᵀ (tokens x r) and X (tokens x in):
//
//   dU = s·dY·B        dB = s·dYᵀ·U        dA = dUᵀ·X
//
// As three GEMMs, dY is read twice and X once, each read producing only r
// columns or rows: the GEMMs are bound by memory (docs/Performance.md).
// Here each thread walks its rows of dY and X once, R rows at a time:
//
//   - along `out`, one step per column k of dY: dU's R rows (in registers)
//     take dY[i, k]·B[k, :], and dB's row k (a thread's partial sum, r
//     floats in L1/L2) takes dY[i, k]·U[i, :] for the R rows;
//   - the R rows of dU are then complete: scaled by s, stored, and kept in
//     registers for the walk along `in`, where dA's column k (kept
//     transposed, row k of an in x r partial) takes X[i, k]·dU[i, :].
//
// The threads' partial sums of dB and dAᵀ are added (and dAᵀ transposed)
// at the end. B and the partial sums are out·r and in·r floats (88 KB for
// out = 1376, r = 16), read from cache once per R rows.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Gemm.h"

#ifdef LORA_HAVE_OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LORA_ADAPTER_GRAD_AVX512 1
#endif

namespace {

using lora::runtime::AdapterGradOperands;

#ifdef LORA_ADAPTER_GRAD_AVX512
/// Rows [row, row + R) of one thread: dU's rows stored, their terms added
/// to the partial sums `db` (out x 16V, dense) and `dat` (in x 16V, dense;
/// null without dA). Each partial-sum row takes its R terms in two chains
/// (even and odd rows), so consecutive FMAs do not wait on each other.
template <int V, int R>
__attribute__((target("avx512f"))) void
rows(const AdapterGradOperands &o, int64_t row, float *db, float *dat) {
  constexpr int64_t width = 16 * V;
  const float *dy = o.dy + row * o.ldy;
  __m512 u[R][V], du[R][V];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < V; ++v) {
      u[i][v] = _mm512_loadu_ps(o.u + (row + i) * o.ldu + 16 * v);
      du[i][v] = _mm512_setzero_ps();
    }
  // This block's X rows, for the walk along `in` that follows, fetched
  // while the walk along `out` runs: a few lines per 16 columns of dY.
  const float *x = dat ? o.x + row * o.ldx : nullptr;
  int64_t lines = dat ? (o.in + 15) / 16 : 0, line = 0;
  int64_t perStep = dat ? (R * lines * 16 + o.out - 1) / o.out : 0;
  for (int64_t k = 0; k < o.out; ++k) {
    if (k % 16 == 0) {
      for (int i = 0; i < R; ++i)
        _mm_prefetch((const char *)(dy + i * o.ldy + k + 128), _MM_HINT_T0);
      for (int64_t p = 0; p < perStep && line < R * lines; ++p, ++line)
        _mm_prefetch(
            (const char *)(x + (line / lines) * o.ldx + (line % lines) * 16),
            _MM_HINT_T0);
    }
    __m512 b[V], even[V], odd[V];
    for (int v = 0; v < V; ++v) {
      b[v] = _mm512_loadu_ps(o.b + k * o.ldb + 16 * v);
      even[v] = _mm512_loadu_ps(db + k * width + 16 * v);
      odd[v] = _mm512_setzero_ps();
    }
    for (int i = 0; i < R; ++i) {
      __m512 d = _mm512_set1_ps(dy[i * o.ldy + k]);
      for (int v = 0; v < V; ++v) {
        du[i][v] = _mm512_fmadd_ps(d, b[v], du[i][v]);
        if (i % 2 == 0)
          even[v] = _mm512_fmadd_ps(d, u[i][v], even[v]);
        else
          odd[v] = _mm512_fmadd_ps(d, u[i][v], odd[v]);
      }
    }
    for (int v = 0; v < V; ++v)
      _mm512_storeu_ps(db + k * width + 16 * v,
                       _mm512_add_ps(even[v], odd[v]));
  }
  __m512 scale = _mm512_set1_ps(o.scale);
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < V; ++v) {
      du[i][v] = _mm512_mul_ps(du[i][v], scale);
      _mm512_storeu_ps(o.du + (row + i) * o.lddu + 16 * v, du[i][v]);
    }
  if (!dat)
    return;
  for (int64_t k = 0; k < o.in; ++k) {
    if (k % 16 == 0)
      for (int i = 0; i < R; ++i)
        _mm_prefetch((const char *)(x + i * o.ldx + k + 128), _MM_HINT_T0);
    __m512 even[V], odd[V];
    for (int v = 0; v < V; ++v) {
      even[v] = _mm512_loadu_ps(dat + k * width + 16 * v);
      odd[v] = _mm512_setzero_ps();
    }
    for (int i = 0; i < R; ++i) {
      __m512 value = _mm512_set1_ps(x[i * o.ldx + k]);
      for (int v = 0; v < V; ++v) {
        if (i % 2 == 0)
          even[v] = _mm512_fmadd_ps(value, du[i][v], even[v]);
        else
          odd[v] = _mm512_fmadd_ps(value, du[i][v], odd[v]);
      }
    }
    for (int v = 0; v < V; ++v)
      _mm512_storeu_ps(dat + k * width + 16 * v,
                       _mm512_add_ps(even[v], odd[v]));
  }
}

/// Rows [begin, end) in blocks of R; the tail in blocks of 8, 4, 2, 1
/// (those not above R), so every block keeps its rows in registers.
template <int V, int R>
void rowRange(const AdapterGradOperands &o, int64_t begin, int64_t end,
              float *db, float *dat) {
  int64_t row = begin;
  for (; row + R <= end; row += R)
    rows<V, R>(o, row, db, dat);
  auto tail = [&](auto size) {
    constexpr int S = decltype(size)::value;
    if constexpr (S < R)
      for (; row + S <= end; row += S)
        rows<V, S>(o, row, db, dat);
  };
  tail(std::integral_constant<int, 8>());
  tail(std::integral_constant<int, 4>());
  tail(std::integral_constant<int, 2>());
  tail(std::integral_constant<int, 1>());
}

/// The whole backward for r = 16·V on `threads` threads.
template <int V>
void adapterGradAvx512(const AdapterGradOperands &o, int threads) {
  // Rows per block: R·V accumulators of dU and R·V rows of U in registers,
  // plus B's row and the partial sums' two chains (32 AVX-512 registers).
  constexpr int R = V == 1 ? 12 : V == 2 ? 5 : V == 3 ? 3 : 2;
  constexpr int64_t width = 16 * V;
  int64_t perThread = o.out * width + (o.x ? o.in * width : 0);
  // The partial sums, one set per thread: grown, never shrunk, and owned
  // by the calling thread (a step's GEMMs run one at a time).
  static thread_local std::vector<float> storage;
  storage.resize(size_t(perThread * threads));
  float *partials = storage.data();
  auto work = [&](int part, int parts) {
    float *db = partials + part * perThread;
    float *dat = o.x ? db + o.out * width : nullptr;
    std::fill(db, db + perThread, 0.0f);
    // Whole blocks of R rows per thread where the rows allow.
    int64_t blocks = (o.tokens + R - 1) / R;
    int64_t begin = std::min(o.tokens, (blocks * part / parts) * R);
    int64_t end = std::min(o.tokens, (blocks * (part + 1) / parts) * R);
    rowRange<V, R>(o, begin, end, db, dat);
  };
  // dB = s·Σ partials, dA = (Σ partials)ᵀ over the `parts` threads that
  // ran, rows split among them.
  auto reduce = [&](int part, int parts) {
    int64_t total = o.out + (o.x ? o.in : 0);
    int64_t begin = total * part / parts, end = total * (part + 1) / parts;
    for (int64_t k = begin; k < end; ++k) {
      bool isB = k < o.out;
      int64_t offset = isB ? k * width : o.out * width + (k - o.out) * width;
      for (int64_t j = 0; j < width; ++j) {
        float sum = 0;
        for (int t = 0; t < parts; ++t)
          sum += partials[t * perThread + offset + j];
        if (isB)
          o.db[k * o.lddb + j] = o.scale * sum;
        else
          o.da[j * o.ldda + (k - o.out)] = sum;
      }
    }
  };
#ifdef LORA_HAVE_OPENMP
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    {
      int parts = omp_get_num_threads(), part = omp_get_thread_num();
      work(part, parts);
#pragma omp barrier
      reduce(part, parts);
    }
    return;
  }
#endif
  work(0, 1);
  reduce(0, 1);
}

#endif

/// The same arithmetic as three GEMMs through lora_sgemm_f32 (ranks the
/// kernel does not take, CPUs without AVX-512): dU first, scaled in place,
/// then dA from it, and dB scaled after its GEMM.
void adapterGradByGemms(const AdapterGradOperands &o) {
  auto matrix = [](const float *data, int64_t rows, int64_t columns,
                   int64_t ld) {
    float *p = const_cast<float *>(data);
    return LoraMemRef2DF32{p, p, 0, {rows, columns}, {ld, 1}};
  };
  LoraMemRef2DF32 dy = matrix(o.dy, o.tokens, o.out, o.ldy),
                  b = matrix(o.b, o.out, o.rank, o.ldb),
                  u = matrix(o.u, o.tokens, o.rank, o.ldu),
                  du = matrix(o.du, o.tokens, o.rank, o.lddu),
                  db = matrix(o.db, o.out, o.rank, o.lddb);
  _mlir_ciface_lora_sgemm_f32(0, 0, 0, &dy, &b, &du);
  _mlir_ciface_lora_sgemm_f32(1, 0, 0, &dy, &u, &db);
  for (int64_t i = 0; i < o.tokens; ++i)
    for (int64_t j = 0; j < o.rank; ++j)
      o.du[i * o.lddu + j] *= o.scale;
  for (int64_t i = 0; i < o.out; ++i)
    for (int64_t j = 0; j < o.rank; ++j)
      o.db[i * o.lddb + j] *= o.scale;
  if (!o.x)
    return;
  LoraMemRef2DF32 x = matrix(o.x, o.tokens, o.in, o.ldx),
                  da = matrix(o.da, o.rank, o.in, o.ldda);
  _mlir_ciface_lora_sgemm_f32(1, 0, 0, &du, &x, &da);
}

/// The operands of the C entry points, checked: a mismatch is a compiler
/// bug, and a wrong gradient must not pass silently.
AdapterGradOperands operands(float scale, const LoraMemRef2DF32 &dy,
                             const LoraMemRef2DF32 &b,
                             const LoraMemRef2DF32 &u,
                             const LoraMemRef2DF32 *x,
                             const LoraMemRef2DF32 &du,
                             const LoraMemRef2DF32 &db,
                             const LoraMemRef2DF32 *da) {
  int64_t tokens = dy.sizes[0], out = dy.sizes[1], rank = b.sizes[1];
  int64_t in = x ? x->sizes[1] : 0;
  bool ok = b.sizes[0] == out && u.sizes[0] == tokens && u.sizes[1] == rank &&
            du.sizes[0] == tokens && du.sizes[1] == rank &&
            db.sizes[0] == out && db.sizes[1] == rank;
  if (x)
    ok = ok && x->sizes[0] == tokens && da->sizes[0] == rank &&
         da->sizes[1] == in;
  for (const LoraMemRef2DF32 *m : {&dy, &b, &u, &du, &db, x, da})
    ok = ok && (!m || m->strides[1] == 1);
  if (!ok) {
    std::fprintf(stderr, "lora_adapter_grad_f32: operand shapes do not match "
                         "(or rows are not contiguous)\n");
    std::abort();
  }
  auto at = [](const LoraMemRef2DF32 &m) { return m.aligned + m.offset; };
  return {tokens,
          out,
          in,
          rank,
          scale,
          at(dy),
          dy.strides[0],
          at(b),
          b.strides[0],
          at(u),
          u.strides[0],
          x ? at(*x) : nullptr,
          x ? x->strides[0] : 0,
          at(du),
          du.strides[0],
          at(db),
          db.strides[0],
          da ? at(*da) : nullptr,
          da ? da->strides[0] : 0};
}

void traced(const AdapterGradOperands &o) {
  // The fallback's GEMMs trace themselves.
  if (!lora::runtime::gemmTraceEnabled() ||
      !lora::runtime::adapterGradFused(o.rank))
    return lora::runtime::adapterGrad(o);
  auto start = std::chrono::steady_clock::now();
  lora::runtime::adapterGrad(o);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  // Recorded as the three GEMMs it replaces (the benchmark's GEMM limit and
  // FLOP count read the trace), its time split by their FLOPs.
  double total = double(o.out * 2 + o.in);
  lora::runtime::recordGemm({o.tokens, o.rank, o.out}, 0, 0, false,
                            seconds * o.out / total);
  lora::runtime::recordGemm({o.out, o.rank, o.tokens}, 1, 0, false,
                            seconds * o.out / total);
  if (o.x)
    lora::runtime::recordGemm({o.rank, o.in, o.tokens}, 1, 0, false,
                              seconds * o.in / total);
}

} // namespace

bool lora::runtime::adapterGradFused(int64_t rank) {
#ifdef LORA_ADAPTER_GRAD_AVX512
  // LORA_ADAPTER_GRAD=0 runs the three GEMMs instead (for A/B runs), as
  // does LORA_SKINNY_GEMM=0 (every GEMM through OpenBLAS).
  static const bool enabled = [] {
    const char *value = std::getenv("LORA_ADAPTER_GRAD");
    return !value || std::strcmp(value, "0") != 0;
  }();
  return rank % 16 == 0 && rank >= 16 && rank <= 64 && enabled &&
         skinnyGemmEnabled();
#else
  (void)rank;
  return false;
#endif
}

void lora::runtime::adapterGrad(const AdapterGradOperands &o, int threads) {
  if (o.tokens == 0 || o.rank == 0)
    return;
  if (threads <= 0) {
    static const int configured = configureThreads(1);
    (void)configured;
#ifdef LORA_HAVE_OPENMP
    threads = omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    threads = 1;
#endif
  }
#ifdef LORA_ADAPTER_GRAD_AVX512
  if (adapterGradFused(o.rank)) {
    switch (o.rank / 16) {
    case 1:
      return adapterGradAvx512<1>(o, threads);
    case 2:
      return adapterGradAvx512<2>(o, threads);
    case 3:
      return adapterGradAvx512<3>(o, threads);
    default:
      return adapterGradAvx512<4>(o, threads);
    }
  }
#endif
  adapterGradByGemms(o);
}

extern "C" void _mlir_ciface_lora_adapter_grad_f32(
    float scale, LoraMemRef2DF32 *dy, LoraMemRef2DF32 *b, LoraMemRef2DF32 *u,
    LoraMemRef2DF32 *x, LoraMemRef2DF32 *du, LoraMemRef2DF32 *db,
    LoraMemRef2DF32 *da) {
  traced(operands(scale, *dy, *b, *u, x, *du, *db, da));
}

extern "C" void _mlir_ciface_lora_adapter_grad_ub_f32(
    float scale, LoraMemRef2DF32 *dy, LoraMemRef2DF32 *b, LoraMemRef2DF32 *u,
    LoraMemRef2DF32 *du, LoraMemRef2DF32 *db) {
  traced(operands(scale, *dy, *b, *u, nullptr, *du, *db, nullptr));
}
