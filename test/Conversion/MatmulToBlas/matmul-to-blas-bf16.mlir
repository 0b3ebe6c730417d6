// lora-matmul-to-blas{precision=bf16}: A and B are rounded into new
// row-major bf16 buffers (a linalg.generic of arith.truncf each, which the
// pipelines lower like any other kernel, also for strided views) and the
// GEMM accumulates in fp32 into the f32 C through the bf16 entry point;
// the copies are freed after the call.
// RUN: lora-opt %s -lora-matmul-to-blas="precision=bf16" | FileCheck %s
// RUN: lora-opt %s -lora-matmul-to-blas="precision=bf16 bf16-callee=lora_gpu_gemm_bf16" | FileCheck %s --check-prefix=GPU
// RUN: not lora-opt %s -lora-matmul-to-blas="precision=fp8" 2>&1 | FileCheck %s --check-prefix=BAD

// CHECK: func.func private @lora_gemm_bf16(i32, i32, i32, memref<?x?xbf16, strided<[?, ?], offset: ?>>, memref<?x?xbf16, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}
// CHECK-NOT: lora_sgemm_f32
// CHECK-LABEL: func.func @gemm
// CHECK-SAME: (%[[X:.+]]: memref<6x8xf32>, %[[WA:.+]]: memref<20x8xf32>, %[[C:.+]]: memref<6x16xf32, strided<[20, 1]>>)
// CHECK: %[[W:.+]] = memref.subview %[[WA]][0, 0] [16, 8] [1, 1]
// CHECK: %[[XB:.+]] = memref.alloc() : memref<6x8xbf16>
// CHECK: linalg.generic {{.+}} ins(%[[X]] : memref<6x8xf32>) outs(%[[XB]] : memref<6x8xbf16>)
// CHECK: arith.truncf %{{.+}} : f32 to bf16
// CHECK: %[[CX:.+]] = memref.cast %[[XB]] : memref<6x8xbf16> to memref<?x?xbf16, strided<[?, ?], offset: ?>>
// CHECK: %[[WB:.+]] = memref.alloc() : memref<16x8xbf16>
// CHECK: linalg.generic {{.+}} ins(%[[W]] : memref<16x8xf32, strided<[8, 1]>>) outs(%[[WB]] : memref<16x8xbf16>)
// CHECK: %[[CW:.+]] = memref.cast %[[WB]]
// CHECK: %[[CC:.+]] = memref.cast %[[C]] : memref<6x16xf32, strided<[20, 1]>> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: call @lora_gemm_bf16(%{{.+}}, %{{.+}}, %{{.+}}, %[[CX]], %[[CW]], %[[CC]])
// CHECK: memref.dealloc %[[XB]]
// CHECK: memref.dealloc %[[WB]]
// CHECK-NOT: linalg.matmul
// GPU: call @lora_gpu_gemm_bf16(
// BAD: lora-matmul-to-blas: precision must be f32 or bf16, got 'fp8'
func.func @gemm(%x: memref<6x8xf32>, %wa: memref<20x8xf32>, %c: memref<6x16xf32, strided<[20, 1]>>) {
  %w = memref.subview %wa[0, 0] [16, 8] [1, 1] : memref<20x8xf32> to memref<16x8xf32, strided<[8, 1]>>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : memref<6x8xf32>, memref<16x8xf32, strided<[8, 1]>>) outs(%c : memref<6x16xf32, strided<[20, 1]>>)
  return
}

// An input that is bf16 already (a frozen weight stored in bf16) goes to
// the GEMM as it is; only the f32 one is rounded. Under precision=f32 the
// mixed GEMM is left alone (lowered to loops).
// CHECK-LABEL: func.func @mixed
// CHECK-SAME: (%[[X2:.+]]: memref<6x8xf32>, %[[W2:.+]]: memref<16x8xbf16>, %[[C2:.+]]: memref<6x16xf32>)
// CHECK: %[[XB2:.+]] = memref.alloc() : memref<6x8xbf16>
// CHECK: arith.truncf
// CHECK-NOT: memref.alloc
// CHECK: %[[CW2:.+]] = memref.cast %[[W2]] : memref<16x8xbf16> to memref<?x?xbf16, strided<[?, ?], offset: ?>>
// CHECK: call @lora_gemm_bf16(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[CW2]], %{{.+}})
// CHECK: memref.dealloc %[[XB2]]
// CHECK-NEXT: return
// RUN: lora-opt %s -lora-matmul-to-blas | FileCheck %s --check-prefix=F32
// F32-LABEL: func.func @mixed
// F32: linalg.matmul
func.func @mixed(%x: memref<6x8xf32>, %w: memref<16x8xbf16>, %c: memref<6x16xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : memref<6x8xf32>, memref<16x8xbf16>) outs(%c : memref<6x16xf32>)
  return
}
