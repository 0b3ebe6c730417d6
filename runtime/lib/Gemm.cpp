//===- Gemm.cpp - GEMMs of compiled steps, through BLAS -------------------===//

#include "lora/runtime/Gemm.h"

#include <cblas.h>
#ifdef LORA_HAVE_OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

namespace {

/// With LORA_GEMM_TRACE=<file>, every GEMM shape the compiled code calls is
/// counted and timed, and the table is written to <file> at exit, one JSON
/// object per line: {"m","n","k","ta","tb","accumulate","calls","seconds"}.
/// bench/ uses it to time the same shapes alone (the step's GEMM limit).
class GemmTrace {
public:
  using Shape = std::tuple<int64_t, int64_t, int64_t, int, int, int>;
  static GemmTrace *get() {
    static GemmTrace trace;
    return trace.path ? &trace : nullptr;
  }
  void record(const Shape &shape, double seconds) {
    std::lock_guard<std::mutex> lock(mutex);
    auto &[calls, total] = table[shape];
    ++calls;
    total += seconds;
  }
  ~GemmTrace() {
    if (!path)
      return;
    FILE *file = std::fopen(path, "w");
    if (!file) {
      std::fprintf(stderr, "LORA_GEMM_TRACE: cannot write %s\n", path);
      return;
    }
    for (const auto &[shape, entry] : table)
      std::fprintf(file,
                   "{\"m\": %lld, \"n\": %lld, \"k\": %lld, \"ta\": %d, "
                   "\"tb\": %d, \"accumulate\": %d, \"calls\": %lld, "
                   "\"seconds\": %.9f}\n",
                   (long long)std::get<0>(shape), (long long)std::get<1>(shape),
                   (long long)std::get<2>(shape), std::get<3>(shape),
                   std::get<4>(shape), std::get<5>(shape),
                   (long long)entry.first, entry.second);
    std::fclose(file);
  }

private:
  GemmTrace() : path(std::getenv("LORA_GEMM_TRACE")) {}
  const char *path;
  std::mutex mutex;
  std::map<Shape, std::pair<long long, double>> table;
};

/// C (M x N) = op(A) op(B) + beta C as `parts` blocks of C's rows (or of
/// its columns when C is wider than tall), one per OpenMP thread, each an
/// OpenBLAS call on one thread. One pool runs the GEMMs and the compiled
/// kernels (the step's loops are OpenMP too): with OpenBLAS's own threads,
/// one set of threads spins while the other works.
void sgemmBlocks(int32_t transposeA, int32_t transposeB, float beta,
                 const LoraMemRef2DF32 &a, const LoraMemRef2DF32 &b,
                 const LoraMemRef2DF32 &c, int64_t m, int64_t n, int64_t k,
                 int parts) {
  bool byRows = m >= n;
  int64_t extent = byRows ? m : n, block = (extent + parts - 1) / parts;
  auto run = [&](int part) {
    int64_t begin = part * block, size = std::min(extent - begin, block);
    if (size <= 0)
      return;
    const float *aBlock = a.aligned + a.offset, *bBlock = b.aligned + b.offset;
    float *cBlock = c.aligned + c.offset;
    if (byRows) {
      // Rows of op(A): rows of A, or columns when A is transposed.
      aBlock += transposeA ? begin : begin * a.strides[0];
      cBlock += begin * c.strides[0];
    } else {
      // Columns of op(B): columns of B, or rows when B is transposed.
      bBlock += transposeB ? begin * b.strides[0] : begin;
      cBlock += begin;
    }
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
                transposeB ? CblasTrans : CblasNoTrans, int(byRows ? size : m),
                int(byRows ? n : size), int(k), 1.0f, aBlock, int(a.strides[0]),
                bBlock, int(b.strides[0]), beta, cBlock, int(c.strides[0]));
  };
#ifdef LORA_HAVE_OPENMP
  if (parts > 1) {
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int part = 0; part < parts; ++part)
      run(part);
    return;
  }
#endif
  for (int part = 0; part < parts; ++part)
    run(part);
}

/// Threads for one GEMM: the pool's size, but blocks of at least 32 rows
/// or columns (smaller ones lose more to packing than they gain), and one
/// thread inside a parallel region.
int gemmThreads(int64_t m, int64_t n) {
#ifdef LORA_HAVE_OPENMP
  if (omp_in_parallel())
    return 1;
  int64_t blocks = std::max(m, n) / 32;
  return int(
      std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), blocks)));
#else
  (void)m;
  (void)n;
  return 1;
#endif
}

} // namespace

bool lora::runtime::gemmTraceEnabled() { return GemmTrace::get() != nullptr; }

void lora::runtime::recordGemm(GemmShape shape, int32_t transposeA,
                               int32_t transposeB, bool accumulate,
                               double seconds) {
  if (GemmTrace *trace = GemmTrace::get())
    trace->record({shape.m, shape.n, shape.k, transposeA, transposeB,
                   accumulate},
                  seconds);
}

int lora::runtime::configureThreads(int processesOnMachine) {
#ifdef LORA_HAVE_OPENMP
  // OpenBLAS runs on the OpenMP threads (sgemmBlocks), one thread per call.
  openblas_set_num_threads(1);
  if (!std::getenv("OMP_NUM_THREADS") && processesOnMachine > 1)
    omp_set_num_threads(std::max(1, omp_get_num_procs() / processesOnMachine));
  return omp_get_max_threads();
#else
  // No OpenMP: OpenBLAS keeps its own threads (OPENBLAS_NUM_THREADS).
  (void)processesOnMachine;
  return openblas_get_num_threads();
#endif
}

lora::runtime::GemmShape lora::runtime::checkedGemmShape(
    const char *caller, int32_t transposeA, const MatrixLayout &a,
    const MatrixLayout &b, const MatrixLayout &c) {
  // op(A) is M x K, op(B) is K x N, C is M x N.
  if (a.strides[1] != 1 || b.strides[1] != 1 || c.strides[1] != 1) {
    std::fprintf(stderr, "%s: operand rows are not contiguous\n", caller);
    std::abort();
  }
  return {c.sizes[0], c.sizes[1], transposeA ? a.sizes[0] : a.sizes[1]};
}

extern "C" void
_mlir_ciface_lora_sgemm_f32(int32_t transposeA, int32_t transposeB,
                            int32_t accumulate, LoraMemRef2DF32 *a,
                            LoraMemRef2DF32 *b, LoraMemRef2DF32 *c) {
  auto [m, n, k] =
      lora::runtime::checkedGemmShape("lora_sgemm_f32", transposeA, *a, *b, *c);
  if (m == 0 || n == 0)
    return;
  static const int configured = lora::runtime::configureThreads(1);
  (void)configured;
  auto gemm = [&] {
    if (lora::runtime::skinnyGemmApplies(transposeB, m, n, k)) {
      const float *bData = b->aligned + b->offset;
      int64_t ldb = b->strides[0];
      if (transposeB) {
        // B is N x K (N the rank): K x N, dense, for skinnyGemm.
        static thread_local std::vector<float> transposed;
        transposed.resize(size_t(k * n));
        for (int64_t j = 0; j < n; ++j)
          for (int64_t l = 0; l < k; ++l)
            transposed[size_t(l * n + j)] = bData[j * ldb + l];
        bData = transposed.data();
        ldb = n;
      }
      return lora::runtime::skinnyGemm(
          transposeA, m, n, k, a->aligned + a->offset, a->strides[0], bData,
          ldb, c->aligned + c->offset, c->strides[0], accumulate != 0,
          gemmThreads(m, n));
    }
    sgemmBlocks(transposeA, transposeB, accumulate ? 1.0f : 0.0f, *a, *b, *c, m,
                n, k, gemmThreads(m, n));
  };
  GemmTrace *trace = GemmTrace::get();
  if (!trace)
    return gemm();
  // Timed only when traced: nothing extra on the usual path.
  auto start = std::chrono::steady_clock::now();
  gemm();
  trace->record(
      {m, n, k, transposeA, transposeB, accumulate != 0},
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count());
}

namespace {
/// `m` widened to a dense row-major f32 matrix in `storage` (bf16 is the
/// upper half of an f32, so this is exact).
LoraMemRef2DF32 widened(const LoraMemRef2DBF16 &m, std::vector<float> &storage) {
  int64_t rows = m.sizes[0], columns = m.sizes[1];
  storage.resize(size_t(rows * columns));
  const uint16_t *source = m.aligned + m.offset;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; ++c) {
      uint32_t bits = uint32_t(source[r * m.strides[0] + c * m.strides[1]])
                      << 16;
      std::memcpy(&storage[size_t(r * columns + c)], &bits, sizeof bits);
    }
  return {storage.data(), storage.data(), 0, {rows, columns}, {columns, 1}};
}
} // namespace

extern "C" void
_mlir_ciface_lora_gemm_bf16(int32_t transposeA, int32_t transposeB,
                            int32_t accumulate, LoraMemRef2DBF16 *a,
                            LoraMemRef2DBF16 *b, LoraMemRef2DF32 *c) {
  (void)lora::runtime::checkedGemmShape("lora_gemm_bf16", transposeA, *a, *b,
                                        *c);
  static thread_local std::vector<float> aWide, bWide;
  LoraMemRef2DF32 wideA = widened(*a, aWide), wideB = widened(*b, bWide);
  _mlir_ciface_lora_sgemm_f32(transposeA, transposeB, accumulate, &wideA,
                              &wideB, c);
}
