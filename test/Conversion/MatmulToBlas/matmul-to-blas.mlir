// lora-matmul-to-blas: f32 GEMMs on memrefs become runtime BLAS calls with
// their transposes as flags; other matmuls are left alone.
// RUN: lora-opt %s -split-input-file -lora-matmul-to-blas | FileCheck %s

// CHECK: func.func private @lora_sgemm_f32(i32, i32, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @gemms
// CHECK-SAME: (%[[X:.+]]: memref<6x8xf32>, %[[W:.+]]: memref<16x8xf32>, %[[C:.+]]: memref<6x16xf32>, %[[DY:.+]]: memref<6x16xf32>, %[[DW:.+]]: memref<16x8xf32>)
// X·Wᵀ: B transposed
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0 : i32
// CHECK-DAG: %[[ONE:.+]] = arith.constant 1 : i32
// CHECK: %[[CX:.+]] = memref.cast %[[X]] : memref<6x8xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[CW:.+]] = memref.cast %[[W]]
// CHECK: %[[CC:.+]] = memref.cast %[[C]]
// CHECK: call @lora_sgemm_f32(%[[ZERO]], %[[ONE]], %[[CX]], %[[CW]], %[[CC]])
// dYᵀ·X: A transposed
// CHECK: call @lora_sgemm_f32(%[[ONE]], %[[ZERO]],
// CHECK-NOT: linalg.matmul
func.func @gemms(%x: memref<6x8xf32>, %w: memref<16x8xf32>, %c: memref<6x16xf32>, %dy: memref<6x16xf32>, %dw: memref<16x8xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : memref<6x8xf32>, memref<16x8xf32>) outs(%c : memref<6x16xf32>)
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (k, m)>, affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%dy, %x : memref<6x16xf32>, memref<6x8xf32>) outs(%dw : memref<16x8xf32>)
  return
}

// -----

// Not for BLAS: f64, a column-strided operand, and tensors.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: lora_sgemm_f32
// CHECK-COUNT-3: linalg.matmul
func.func @left_alone(%a: memref<4x4xf64>, %c: memref<4x4xf64>,
                      %s: memref<4x4xf32, strided<[1, 4]>>, %d: memref<4x4xf32>,
                      %t: tensor<4x4xf32>) -> tensor<4x4xf32> {
  linalg.matmul ins(%a, %a : memref<4x4xf64>, memref<4x4xf64>) outs(%c : memref<4x4xf64>)
  linalg.matmul ins(%s, %d : memref<4x4xf32, strided<[1, 4]>>, memref<4x4xf32>) outs(%d : memref<4x4xf32>)
  %r = linalg.matmul ins(%t, %t : tensor<4x4xf32>, tensor<4x4xf32>) outs(%t : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %r : tensor<4x4xf32>
}
