// lora-adjacent-arguments: a buffer filled row block by row block with
// copies of function arguments ([W; A]) and otherwise only read becomes a
// choice on the arguments' addresses: the first argument reinterpreted as
// the whole when each argument starts where the previous one ends, the
// copies otherwise. Buffers that are written by anything else, filled
// from non-arguments or only partly, stay.
// RUN: lora-opt %s -split-input-file -lora-adjacent-arguments | FileCheck %s

// CHECK-LABEL: func.func @concat
// CHECK-SAME: (%[[W:.+]]: memref<32x8xf32>, %[[A:.+]]: memref<4x8xf32>, %[[X:.+]]: memref<6x8xf32>, %[[Y:.+]]: memref<6x36xf32>)
// CHECK: %[[VIEW:.+]] = memref.view
// CHECK: %[[PW:.+]] = memref.extract_aligned_pointer_as_index %[[W]]
// CHECK: %[[PA:.+]] = memref.extract_aligned_pointer_as_index %[[A]]
// CHECK: %[[BYTES:.+]] = arith.constant 1024 : index
// CHECK: %[[END:.+]] = arith.addi %[[PW]], %[[BYTES]]
// CHECK: %[[ADJ:.+]] = arith.cmpi eq, %[[PA]], %[[END]]
// CHECK: %[[WA:.+]] = scf.if %[[ADJ]] -> (memref<36x8xf32>) {
// CHECK:   %[[WHOLE:.+]] = memref.reinterpret_cast %[[W]] to offset: [0], sizes: [36, 8], strides: [8, 1] : memref<32x8xf32> to memref<36x8xf32>
// CHECK:   scf.yield %[[WHOLE]]
// CHECK: } else {
// CHECK:   memref.copy %[[W]]
// CHECK:   memref.copy %[[A]]
// CHECK:   scf.yield %[[VIEW]]
// CHECK: }
// CHECK: linalg.matmul {{.+}} ins(%[[X]], %[[WA]] : memref<6x8xf32>, memref<36x8xf32>) outs(%[[Y]] : memref<6x36xf32>)
func.func @concat(%w: memref<32x8xf32>, %a: memref<4x8xf32>, %x: memref<6x8xf32>, %y: memref<6x36xf32>) {
  %c0 = arith.constant 0 : index
  %arena = memref.alloc() : memref<4096xi8>
  %wa = memref.view %arena[%c0][] : memref<4096xi8> to memref<36x8xf32>
  %top = memref.subview %wa[0, 0] [32, 8] [1, 1] : memref<36x8xf32> to memref<32x8xf32, strided<[8, 1]>>
  memref.copy %w, %top : memref<32x8xf32> to memref<32x8xf32, strided<[8, 1]>>
  %bottom = memref.subview %wa[32, 0] [4, 8] [1, 1] : memref<36x8xf32> to memref<4x8xf32, strided<[8, 1], offset: 256>>
  memref.copy %a, %bottom : memref<4x8xf32> to memref<4x8xf32, strided<[8, 1], offset: 256>>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %wa : memref<6x8xf32>, memref<36x8xf32>) outs(%y : memref<6x36xf32>)
  return
}

// -----

// Written after the copies (an init of a linalg op): stays.
// CHECK-LABEL: func.func @written
// CHECK-NOT: scf.if
// CHECK-NOT: reinterpret_cast
func.func @written(%w: memref<32x8xf32>, %a: memref<4x8xf32>, %x: memref<36x8xf32>) {
  %c0 = arith.constant 0 : index
  %arena = memref.alloc() : memref<4096xi8>
  %wa = memref.view %arena[%c0][] : memref<4096xi8> to memref<36x8xf32>
  %top = memref.subview %wa[0, 0] [32, 8] [1, 1] : memref<36x8xf32> to memref<32x8xf32, strided<[8, 1]>>
  memref.copy %w, %top : memref<32x8xf32> to memref<32x8xf32, strided<[8, 1]>>
  %bottom = memref.subview %wa[32, 0] [4, 8] [1, 1] : memref<36x8xf32> to memref<4x8xf32, strided<[8, 1], offset: 256>>
  memref.copy %a, %bottom : memref<4x8xf32> to memref<4x8xf32, strided<[8, 1], offset: 256>>
  linalg.copy ins(%x : memref<36x8xf32>) outs(%wa : memref<36x8xf32>)
  return
}

// -----

// Filled from a buffer that is not an argument: stays.
// CHECK-LABEL: func.func @not_arguments
// CHECK-NOT: scf.if
func.func @not_arguments(%w: memref<32x8xf32>, %x: memref<6x8xf32>, %y: memref<6x36xf32>) {
  %c0 = arith.constant 0 : index
  %arena = memref.alloc() : memref<4096xi8>
  %a = memref.alloc() : memref<4x8xf32>
  %wa = memref.view %arena[%c0][] : memref<4096xi8> to memref<36x8xf32>
  %top = memref.subview %wa[0, 0] [32, 8] [1, 1] : memref<36x8xf32> to memref<32x8xf32, strided<[8, 1]>>
  memref.copy %w, %top : memref<32x8xf32> to memref<32x8xf32, strided<[8, 1]>>
  %bottom = memref.subview %wa[32, 0] [4, 8] [1, 1] : memref<36x8xf32> to memref<4x8xf32, strided<[8, 1], offset: 256>>
  memref.copy %a, %bottom : memref<4x8xf32> to memref<4x8xf32, strided<[8, 1], offset: 256>>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %wa : memref<6x8xf32>, memref<36x8xf32>) outs(%y : memref<6x36xf32>)
  return
}

// -----

// Rows 32-35 never filled: stays.
// CHECK-LABEL: func.func @partly
// CHECK-NOT: scf.if
func.func @partly(%w: memref<32x8xf32>, %x: memref<6x8xf32>, %y: memref<6x36xf32>) {
  %c0 = arith.constant 0 : index
  %arena = memref.alloc() : memref<4096xi8>
  %wa = memref.view %arena[%c0][] : memref<4096xi8> to memref<36x8xf32>
  %top = memref.subview %wa[0, 0] [32, 8] [1, 1] : memref<36x8xf32> to memref<32x8xf32, strided<[8, 1]>>
  memref.copy %w, %top : memref<32x8xf32> to memref<32x8xf32, strided<[8, 1]>>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %wa : memref<6x8xf32>, memref<36x8xf32>) outs(%y : memref<6x36xf32>)
  return
}

// -----

// A is also written in the step (here after the GEMM): reading it in place
// would see what the copy did not, so the copies stay.
// CHECK-LABEL: func.func @argument_written
// CHECK-NOT: scf.if
func.func @argument_written(%w: memref<32x8xf32>, %a: memref<4x8xf32>, %x: memref<6x8xf32>, %y: memref<6x36xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %arena = memref.alloc() : memref<4096xi8>
  %wa = memref.view %arena[%c0][] : memref<4096xi8> to memref<36x8xf32>
  %top = memref.subview %wa[0, 0] [32, 8] [1, 1] : memref<36x8xf32> to memref<32x8xf32, strided<[8, 1]>>
  memref.copy %w, %top : memref<32x8xf32> to memref<32x8xf32, strided<[8, 1]>>
  %bottom = memref.subview %wa[32, 0] [4, 8] [1, 1] : memref<36x8xf32> to memref<4x8xf32, strided<[8, 1], offset: 256>>
  memref.copy %a, %bottom : memref<4x8xf32> to memref<4x8xf32, strided<[8, 1], offset: 256>>
  linalg.fill ins(%zero : f32) outs(%a : memref<4x8xf32>)
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %wa : memref<6x8xf32>, memref<36x8xf32>) outs(%y : memref<6x36xf32>)
  return
}
