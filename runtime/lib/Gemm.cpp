//===- Gemm.cpp - GEMMs of compiled steps, through BLAS -------------------===//

#include "lora/runtime/Gemm.h"

#include <cblas.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

namespace {

/// With LORA_GEMM_TRACE=<file>, every GEMM shape the compiled code calls is
/// counted and timed, and the table is written to <file> at exit, one JSON
/// object per line: {"m","n","k","ta","tb","accumulate","calls","seconds"}. bench/ uses
/// it to time the same shapes alone (the step's GEMM limit).
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

} // namespace

lora::runtime::GemmShape lora::runtime::checkedGemmShape(
    const char *caller, int32_t transposeA, const LoraMemRef2DF32 &a,
    const LoraMemRef2DF32 &b, const LoraMemRef2DF32 &c) {
  // op(A) is M x K, op(B) is K x N, C is M x N.
  if (a.strides[1] != 1 || b.strides[1] != 1 || c.strides[1] != 1) {
    std::fprintf(stderr, "%s: operand rows are not contiguous\n", caller);
    std::abort();
  }
  return {c.sizes[0], c.sizes[1], transposeA ? a.sizes[0] : a.sizes[1]};
}

extern "C" void _mlir_ciface_lora_sgemm_f32(int32_t transposeA,
                                            int32_t transposeB,
                                            int32_t accumulate,
                                            LoraMemRef2DF32 *a,
                                            LoraMemRef2DF32 *b,
                                            LoraMemRef2DF32 *c) {
  auto [m, n, k] = lora::runtime::checkedGemmShape("lora_sgemm_f32",
                                                   transposeA, *a, *b, *c);
  if (m == 0 || n == 0)
    return;
  auto gemm = [&] {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
                transposeB ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
                1.0f, a->aligned + a->offset, int(a->strides[0]),
                b->aligned + b->offset, int(b->strides[0]),
                accumulate ? 1.0f : 0.0f,
                c->aligned + c->offset, int(c->strides[0]));
  };
  GemmTrace *trace = GemmTrace::get();
  if (!trace)
    return gemm();
  // Timed only when traced: nothing extra on the usual path.
  auto start = std::chrono::steady_clock::now();
  gemm();
  trace->record({m, n, k, transposeA, transposeB, accumulate != 0},
                std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - start)
                    .count());
}
