// lora-lower-row-reductions: a last-dim reduction on buffers becomes
// parallel affine loops around an innermost loop that carries the
// accumulator in iter_args (one load and one store per row), which the
// super-vectorizer then vectorizes. Other generics are left alone.
// RUN: lora-opt %s -split-input-file -lora-lower-row-reductions | FileCheck %s
// RUN: lora-opt %s -split-input-file -lora-lower-row-reductions -affine-super-vectorize="virtual-vector-size=8 vectorize-reductions=true" | FileCheck %s --check-prefix=VEC

// CHECK-LABEL: func.func @row_sum_of_squares
// CHECK-SAME: (%[[X:.+]]: memref<4x64xf32>, %[[OUT:.+]]: memref<4xf32>)
// CHECK: affine.for %[[I:.+]] = 0 to 4 {
// CHECK: %[[INIT:.+]] = affine.load %[[OUT]][%[[I]]] : memref<4xf32>
// CHECK: %[[SUM:.+]] = affine.for %[[J:.+]] = 0 to 64 iter_args(%[[ACC:.+]] = %[[INIT]]) -> (f32) {
// CHECK: %[[V:.+]] = affine.load %[[X]][%[[I]], %[[J]]] : memref<4x64xf32>
// CHECK: %[[SQ:.+]] = arith.mulf %[[V]], %[[V]] : f32
// CHECK: %[[NEXT:.+]] = arith.addf %[[ACC]], %[[SQ]] : f32
// CHECK: affine.yield %[[NEXT]] : f32
// CHECK: affine.store %[[SUM]], %[[OUT]][%[[I]]] : memref<4xf32>
// CHECK-NOT: linalg.generic
// VEC-LABEL: func.func @row_sum_of_squares
// VEC: vector.transfer_read {{.+}} : memref<4x64xf32>, vector<8xf32>
// VEC: vector.reduction <add>
func.func @row_sum_of_squares(%x: memref<4x64xf32>, %out: memref<4xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<4x64xf32>) outs(%out : memref<4xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %next = arith.addf %acc, %sq : f32
    linalg.yield %next : f32
  }
  return
}

// -----

// A row maximum whose body reads a loop index: the index becomes the
// loop's induction variable.
// CHECK-LABEL: func.func @masked_row_max
// CHECK: affine.for %[[I:.+]] = 0 to 8 {
// CHECK: affine.for %[[J:.+]] = 0 to 8 iter_args
// CHECK: arith.cmpi ule, %[[J]], %[[I]] : index
// CHECK: arith.maximumf
func.func @masked_row_max(%x: memref<8x8xf32>, %out: memref<8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<8x8xf32>) outs(%out : memref<8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %visible = arith.cmpi ule, %j, %i : index
    %m = arith.maximumf %acc, %v : f32
    %r = arith.select %visible, %m, %acc : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Not a last-dim reduction (a column sum) and an elementwise kernel: left
// for convert-linalg-to-affine-loops.
// CHECK-LABEL: func.func @left_alone
// CHECK: linalg.generic {{.+}} iterator_types = ["reduction", "parallel"]
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "parallel"]
func.func @left_alone(%x: memref<4x8xf32>, %col: memref<8xf32>, %y: memref<4x8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>],
                  iterator_types = ["reduction", "parallel"]}
      ins(%x : memref<4x8xf32>) outs(%col : memref<8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %next = arith.addf %acc, %v : f32
    linalg.yield %next : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<4x8xf32>) outs(%y : memref<4x8xf32>) {
  ^bb0(%v: f32, %o: f32):
    %d = arith.addf %v, %v : f32
    linalg.yield %d : f32
  }
  return
}
