//===- Gemm.h - GEMMs of compiled steps, through BLAS -----------*- C++ -*-===//
//
// Compiled CPU steps call these for every linalg.matmul that
// lora-matmul-to-blas rewrites: C += op(A) · op(B) in f32, row-major, with
// OpenBLAS doing the work, except for the adapter's GEMMs with a side of
// 16-64 (skinnyGemm, on AVX-512). The memref arguments follow MLIR's C interface
// (a pointer to a descriptor), hence the `_mlir_ciface_` names.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_GEMM_H
#define LORA_RUNTIME_GEMM_H

#include <cstdint>

extern "C" {

/// MLIR's descriptor of a rank-2 f32 memref.
struct LoraMemRef2DF32 {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[2];
  int64_t strides[2];
};

/// MLIR's descriptor of a rank-2 bf16 memref (the 16 bits of each value).
struct LoraMemRef2DBF16 {
  uint16_t *allocated;
  uint16_t *aligned;
  int64_t offset;
  int64_t sizes[2];
  int64_t strides[2];
};

/// C += op(A) · op(B) when `accumulate` is non-zero, C = op(A) · op(B)
/// otherwise (C's old contents are not read); op transposes when its flag
/// is non-zero. Rows must be contiguous (inner stride 1); the leading
/// dimensions come from the outer strides, so views of larger buffers work.
void _mlir_ciface_lora_sgemm_f32(int32_t transposeA, int32_t transposeB,
                                 int32_t accumulate, LoraMemRef2DF32 *a,
                                 LoraMemRef2DF32 *b, LoraMemRef2DF32 *c);

/// The same GEMM with bf16 A and B (lora-run --bf16), accumulated in fp32
/// into the f32 C. The CPU has no bf16 BLAS here (Debian's OpenBLAS leaves
/// sbgemm out): A and B are widened to f32, exactly, and go through
/// lora_sgemm_f32, which is the arithmetic of a bf16 GEMM with fp32
/// accumulation (each product of two bf16 values is exact in f32).
void _mlir_ciface_lora_gemm_bf16(int32_t transposeA, int32_t transposeB,
                                 int32_t accumulate, LoraMemRef2DBF16 *a,
                                 LoraMemRef2DBF16 *b, LoraMemRef2DF32 *c);

/// A LoRA adapter's backward in one pass over dY and X (AdapterGrad.cpp):
///   dU = scale·dY·B,  dB = scale·dYᵀ·U,  dA = dUᵀ·X
/// with dY tokens x out, B out x r, U tokens x r, X tokens x in. dU, dB
/// and dA are written, not read. Rows must be contiguous; views of larger
/// buffers (dY and dU in [dY | dU], U in [Y0 | U]) work.
void _mlir_ciface_lora_adapter_grad_f32(float scale, LoraMemRef2DF32 *dy,
                                        LoraMemRef2DF32 *b, LoraMemRef2DF32 *u,
                                        LoraMemRef2DF32 *x, LoraMemRef2DF32 *du,
                                        LoraMemRef2DF32 *db,
                                        LoraMemRef2DF32 *da);

/// The same without X and dA (the base weight trains too, and dA comes
/// from the [dW; dA] GEMM).
void _mlir_ciface_lora_adapter_grad_ub_f32(float scale, LoraMemRef2DF32 *dy,
                                           LoraMemRef2DF32 *b,
                                           LoraMemRef2DF32 *u,
                                           LoraMemRef2DF32 *du,
                                           LoraMemRef2DF32 *db);

} // extern "C"

namespace lora::runtime {

/// The threads compiled steps use: one OpenMP pool runs both the compiled
/// kernels' loops and the GEMMs (each GEMM split into blocks of C, one
/// single-threaded OpenBLAS call per thread). Its size is OMP_NUM_THREADS,
/// or else the machine's cores divided among the `processesOnMachine` a
/// launcher started on it. lora-run and lora-train call it before the first
/// step; the first GEMM calls it with 1 as well, which changes no thread
/// count set before and makes OpenBLAS single-threaded for programs that
/// did not call it (tests, the JIT alone). Returns the thread count.
int configureThreads(int processesOnMachine);

/// C's M x N and the inner K of C += op(A) · op(B). Operands whose rows are
/// not contiguous are a compiler bug (lora-matmul-to-blas rewrites only
/// row-contiguous ones): `caller` says so and the process ends, since a
/// wrong GEMM must not pass silently.
struct GemmShape {
  int64_t m, n, k;
};
struct MatrixLayout {
  int64_t sizes[2], strides[2];
  template <typename MemRef>
  MatrixLayout(const MemRef &m)
      : sizes{m.sizes[0], m.sizes[1]}, strides{m.strides[0], m.strides[1]} {}
};
GemmShape checkedGemmShape(const char *caller, int32_t transposeA,
                           const MatrixLayout &a, const MatrixLayout &b,
                           const MatrixLayout &c);

/// Whether lora_sgemm_f32 runs C (+)= op(A) · op(B) through skinnyGemm
/// instead of OpenBLAS: on x86-64 CPUs with AVX-512F, one side of C of 16,
/// 32, 48 or 64 (a LoRA rank) and the other at least 256 (or N = 64 and M
/// at least 128: attention's per-head GEMMs), N a multiple of 16, K at
/// least 64, and LORA_SKINNY_GEMM not "0" (the environment switch that
/// keeps OpenBLAS for every GEMM, for A/B runs). With B transposed, only N
/// the rank and M at least 256 (B, N x K, is transposed first).
bool skinnyGemmApplies(int32_t transposeB, int64_t m, int64_t n, int64_t k);

/// C (M x N, row stride ldc) = op(A) · B, or C += op(A) · B when
/// `accumulate`, without packing either operand: A is M x K (lda), or K x M
/// when `transposeA`; B is K x N (ldb). Tiles of C stay in registers
/// through the whole K loop, spread over `threads` OpenMP threads. Only for
/// shapes skinnyGemmApplies accepts (SkinnyGemm.cpp says why it exists).
void skinnyGemm(int32_t transposeA, int64_t m, int64_t n, int64_t k,
                const float *a, int64_t lda, const float *b, int64_t ldb,
                float *c, int64_t ldc, bool accumulate, int threads);

/// Whether the runtime's own AVX-512 kernels (skinnyGemm, adapterGrad's
/// one-pass kernel) may run: an x86-64 CPU with AVX-512F, and
/// LORA_SKINNY_GEMM not "0" (which leaves every GEMM to OpenBLAS).
bool skinnyGemmEnabled();

/// With LORA_GEMM_TRACE set: records a GEMM of `shape` that took `seconds`
/// (kernels that do a GEMM's work outside lora_sgemm_f32 use it).
bool gemmTraceEnabled();
void recordGemm(GemmShape shape, int32_t transposeA, int32_t transposeB,
                bool accumulate, double seconds);

/// The operands of adapterGrad (the C entry points' views, unpacked): x and
/// da null for dU and dB alone; ld* are row strides.
struct AdapterGradOperands {
  int64_t tokens, out, in, rank;
  float scale;
  const float *dy;
  int64_t ldy;
  const float *b;
  int64_t ldb;
  const float *u;
  int64_t ldu;
  const float *x;
  int64_t ldx;
  float *du;
  int64_t lddu;
  float *db;
  int64_t lddb;
  float *da;
  int64_t ldda;
};

/// Whether adapterGrad runs its one-pass kernel for this rank (16, 32, 48
/// or 64 on AVX-512 CPUs, unless LORA_ADAPTER_GRAD or LORA_SKINNY_GEMM is
/// "0") rather than three GEMMs.
bool adapterGradFused(int64_t rank);

/// The adapter's backward (see lora_adapter_grad_f32) on `threads` OpenMP
/// threads (0: the pool's size, or 1 inside a parallel region).
void adapterGrad(const AdapterGradOperands &operands, int threads = 0);

} // namespace lora::runtime

#endif // LORA_RUNTIME_GEMM_H
