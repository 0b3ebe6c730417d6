// lora-copies-to-loops: large static copies become linalg.copy kernels
// (vectorized and threaded like the others); small or dynamic ones stay
// memref.copy (a memcpy).
// RUN: lora-opt %s -lora-copies-to-loops="min-elements=64" | FileCheck %s

// CHECK-LABEL: func.func @copies
// CHECK-SAME: (%[[W:.+]]: memref<16x8xf32>, %[[WA:.+]]: memref<20x8xf32>, %[[S:.+]]: memref<2x2xf32>, %[[T:.+]]: memref<2x2xf32>, %[[D:.+]]: memref<?xf32>, %[[E:.+]]: memref<?xf32>)
// CHECK: %[[TOP:.+]] = memref.subview %[[WA]]
// CHECK: linalg.copy ins(%[[W]] : memref<16x8xf32>) outs(%[[TOP]] : memref<16x8xf32, strided<[8, 1]>>)
// CHECK: memref.copy %[[S]], %[[T]]
// CHECK: memref.copy %[[D]], %[[E]]
// CHECK-NOT: linalg.copy
func.func @copies(%w: memref<16x8xf32>, %wa: memref<20x8xf32>, %s: memref<2x2xf32>, %t: memref<2x2xf32>, %d: memref<?xf32>, %e: memref<?xf32>) {
  %top = memref.subview %wa[0, 0] [16, 8] [1, 1] : memref<20x8xf32> to memref<16x8xf32, strided<[8, 1]>>
  memref.copy %w, %top : memref<16x8xf32> to memref<16x8xf32, strided<[8, 1]>>
  memref.copy %s, %t : memref<2x2xf32> to memref<2x2xf32>
  memref.copy %d, %e : memref<?xf32> to memref<?xf32>
  return
}
