//===- Gemm.cpp - GEMMs of compiled steps, through BLAS -------------------===//

#include "lora/runtime/Gemm.h"

#include <cblas.h>

#include <cstdio>
#include <cstdlib>

extern "C" void _mlir_ciface_lora_sgemm_f32(int32_t transposeA,
                                            int32_t transposeB,
                                            LoraMemRef2DF32 *a,
                                            LoraMemRef2DF32 *b,
                                            LoraMemRef2DF32 *c) {
  // op(A) is M x K, op(B) is K x N, C is M x N.
  int64_t m = c->sizes[0], n = c->sizes[1];
  int64_t k = transposeA ? a->sizes[0] : a->sizes[1];
  if (a->strides[1] != 1 || b->strides[1] != 1 || c->strides[1] != 1) {
    // lora-matmul-to-blas only rewrites row-contiguous operands; anything
    // else is a compiler bug, and a wrong GEMM must not pass silently.
    std::fprintf(stderr, "lora_sgemm_f32: operand rows are not contiguous\n");
    std::abort();
  }
  if (m == 0 || n == 0)
    return;
  cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
              transposeB ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              1.0f, a->aligned + a->offset, int(a->strides[0]),
              b->aligned + b->offset, int(b->strides[0]), 1.0f,
              c->aligned + c->offset, int(c->strides[0]));
}
