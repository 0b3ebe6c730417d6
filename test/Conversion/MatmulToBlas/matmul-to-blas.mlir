// lora-matmul-to-blas: f32 GEMMs on memrefs become runtime BLAS calls with
// their transposes and whether they accumulate into C as flags; a zero
// fill of C just before a GEMM is folded into it; other matmuls are left
// alone.
// RUN: lora-opt %s -split-input-file -lora-matmul-to-blas | FileCheck %s

// CHECK: func.func private @lora_sgemm_f32(i32, i32, i32, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @gemms
// CHECK-SAME: (%[[X:.+]]: memref<6x8xf32>, %[[W:.+]]: memref<16x8xf32>, %[[C:.+]]: memref<6x16xf32>, %[[DY:.+]]: memref<6x16xf32>, %[[DW:.+]]: memref<16x8xf32>)
// X·Wᵀ: B transposed
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0 : i32
// CHECK-DAG: %[[ONE:.+]] = arith.constant 1 : i32
// CHECK: %[[CX:.+]] = memref.cast %[[X]] : memref<6x8xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[CW:.+]] = memref.cast %[[W]]
// CHECK: %[[CC:.+]] = memref.cast %[[C]]
// CHECK: call @lora_sgemm_f32(%[[ZERO]], %[[ONE]], %[[ONE]], %[[CX]], %[[CW]], %[[CC]])
// dYᵀ·X: A transposed
// CHECK: call @lora_sgemm_f32(%[[ONE]], %[[ZERO]], %[[ONE]],
// CHECK-NOT: linalg.matmul
func.func @gemms(%x: memref<6x8xf32>, %w: memref<16x8xf32>, %c: memref<6x16xf32>, %dy: memref<6x16xf32>, %dw: memref<16x8xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : memref<6x8xf32>, memref<16x8xf32>) outs(%c : memref<6x16xf32>)
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (k, m)>, affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%dy, %x : memref<6x16xf32>, memref<6x8xf32>) outs(%dw : memref<16x8xf32>)
  return
}

// -----

// Zero fills: folded when only effect-free ops (a view, a constant) come
// between the fill and the GEMM; kept when something else could see the
// zeros, when the value is not +0.0 or when the fill covers another buffer.
// CHECK-LABEL: func.func @fills
// CHECK-SAME: (%[[A:.+]]: memref<4x4xf32>, %[[C:.+]]: memref<4x4xf32>, %[[D:.+]]: memref<4x4xf32>, %[[E:.+]]: memref<8x4xf32>)
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0 : i32
// CHECK-DAG: %[[ONE:.+]] = arith.constant 1 : i32
// CHECK-NOT: linalg.fill ins(%{{.*}} : f32) outs(%[[C]]
// CHECK: call @lora_sgemm_f32(%[[ZERO]], %[[ZERO]], %[[ZERO]],
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[D]]
// CHECK: memref.copy %[[D]], %[[C]]
// CHECK: call @lora_sgemm_f32(%[[ZERO]], %[[ZERO]], %[[ONE]],
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[D]]
// CHECK: call @lora_sgemm_f32(%[[ZERO]], %[[ZERO]], %[[ONE]],
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[E]]
// CHECK: call @lora_sgemm_f32(%[[ZERO]], %[[ZERO]], %[[ONE]],
func.func @fills(%a: memref<4x4xf32>, %c: memref<4x4xf32>, %d: memref<4x4xf32>, %e: memref<8x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %negzero = arith.constant -0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<4x4xf32>)
  %cst = arith.constant 1.0 : f32
  linalg.matmul ins(%a, %a : memref<4x4xf32>, memref<4x4xf32>) outs(%c : memref<4x4xf32>)
  // The copy reads the zeros in %d: this fill must stay.
  linalg.fill ins(%zero : f32) outs(%d : memref<4x4xf32>)
  memref.copy %d, %c : memref<4x4xf32> to memref<4x4xf32>
  linalg.matmul ins(%a, %a : memref<4x4xf32>, memref<4x4xf32>) outs(%d : memref<4x4xf32>)
  linalg.fill ins(%negzero : f32) outs(%d : memref<4x4xf32>)
  linalg.matmul ins(%a, %a : memref<4x4xf32>, memref<4x4xf32>) outs(%d : memref<4x4xf32>)
  // The GEMM writes a view of the filled buffer, not the buffer itself.
  linalg.fill ins(%zero : f32) outs(%e : memref<8x4xf32>)
  %top = memref.subview %e[0, 0] [4, 4] [1, 1] : memref<8x4xf32> to memref<4x4xf32, strided<[4, 1]>>
  linalg.matmul ins(%a, %a : memref<4x4xf32>, memref<4x4xf32>) outs(%top : memref<4x4xf32, strided<[4, 1]>>)
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
