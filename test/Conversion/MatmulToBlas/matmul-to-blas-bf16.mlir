// lora-matmul-to-blas picks the GEMM by the inputs' type: both bf16 (what
// lora-bf16-gemm-inputs gives every GEMM under --bf16) go to the bf16 entry
// point as they are (fp32 accumulation into the f32 C, strided views
// included); both f32 to the f32 one; one of each is left to the loops.
// RUN: lora-opt %s -lora-matmul-to-blas | FileCheck %s
// RUN: lora-opt %s -lora-matmul-to-blas="bf16-callee=lora_gpu_gemm_bf16" | FileCheck %s --check-prefix=GPU

// CHECK-DAG: func.func private @lora_gemm_bf16(i32, i32, i32, memref<?x?xbf16, strided<[?, ?], offset: ?>>, memref<?x?xbf16, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @lora_sgemm_f32(i32, i32, i32, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}

// CHECK-LABEL: func.func @gemm
// CHECK-SAME: (%[[X:.+]]: memref<6x8xbf16>, %[[WA:.+]]: memref<20x8xbf16>, %[[C:.+]]: memref<6x16xf32, strided<[20, 1]>>)
// CHECK: %[[W:.+]] = memref.subview %[[WA]][0, 0] [16, 8] [1, 1]
// CHECK-NOT: memref.alloc
// CHECK: %[[CX:.+]] = memref.cast %[[X]] : memref<6x8xbf16> to memref<?x?xbf16, strided<[?, ?], offset: ?>>
// CHECK: %[[CW:.+]] = memref.cast %[[W]] : memref<16x8xbf16, strided<[8, 1]>> to memref<?x?xbf16, strided<[?, ?], offset: ?>>
// CHECK: %[[CC:.+]] = memref.cast %[[C]] : memref<6x16xf32, strided<[20, 1]>> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: call @lora_gemm_bf16(%{{.+}}, %{{.+}}, %{{.+}}, %[[CX]], %[[CW]], %[[CC]])
// CHECK-NOT: linalg.matmul
// CHECK: return
// GPU-LABEL: func.func @gemm
// GPU: call @lora_gpu_gemm_bf16(
func.func @gemm(%x: memref<6x8xbf16>, %wa: memref<20x8xbf16>, %c: memref<6x16xf32, strided<[20, 1]>>) {
  %w = memref.subview %wa[0, 0] [16, 8] [1, 1] : memref<20x8xbf16> to memref<16x8xbf16, strided<[8, 1]>>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : memref<6x8xbf16>, memref<16x8xbf16, strided<[8, 1]>>) outs(%c : memref<6x16xf32, strided<[20, 1]>>)
  return
}

// CHECK-LABEL: func.func @single
// CHECK: call @lora_sgemm_f32(
// CHECK-NOT: linalg.matmul
// CHECK: return
func.func @single(%x: memref<6x8xf32>, %w: memref<16x8xf32>, %c: memref<6x16xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : memref<6x8xf32>, memref<16x8xf32>) outs(%c : memref<6x16xf32>)
  return
}

// CHECK-LABEL: func.func @mixed
// CHECK-NOT: call
// CHECK: linalg.matmul
// CHECK: return
func.func @mixed(%x: memref<6x8xf32>, %w: memref<16x8xbf16>, %c: memref<6x16xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : memref<6x8xf32>, memref<16x8xbf16>) outs(%c : memref<6x16xf32>)
  return
}
