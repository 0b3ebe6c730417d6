// lora-in-place-updates: a buffer first written by a copy of a column
// slice of another buffer (Y0 of the fused adapter GEMM's [Y0 | U]) is
// replaced by that slice when nothing else touches those columns after the
// copy: the rank-r GEMM then accumulates where Y0 lies, and Y's readers
// read the strided view (reshapes retyped). Reads of the same columns
// after the copy, or users that need the identity layout, keep the copy.
// RUN: lora-opt %s -split-input-file -lora-in-place-updates | FileCheck %s

#mm_a = affine_map<(m, n, k) -> (m, k)>
#mm_bt = affine_map<(m, n, k) -> (n, k)>
#mm_c = affine_map<(m, n, k) -> (m, n)>
#id = affine_map<(i, j, k) -> (i, j, k)>

// CHECK-LABEL: func.func @update
// CHECK: %[[YU:.+]] = memref.alloc() : memref<16x36xf32>
// CHECK: %[[E:.+]] = memref.expand_shape %[[YU]]
// CHECK: %[[Y0:.+]] = memref.subview %[[E]][0, 0, 0] [2, 8, 32] [1, 1, 1]
// CHECK: %[[U:.+]] = memref.subview %[[E]][0, 0, 32] [2, 8, 4] [1, 1, 1]
// CHECK: %[[Y:.+]] = memref.collapse_shape %[[Y0]] {{.+}} into memref<16x32xf32, strided<[36, 1]>>
// CHECK-NOT: memref.copy
// CHECK: linalg.matmul {{.+}} outs(%[[Y]] : memref<16x32xf32, strided<[36, 1]>>)
// CHECK: %[[Y3:.+]] = memref.expand_shape %[[Y]] {{.+}} : memref<16x32xf32, strided<[36, 1]>> into memref<2x8x32xf32, strided<[288, 36, 1]>>
// CHECK: linalg.generic {{.+}} ins(%[[Y3]], %[[U2:.+]] : memref<2x8x32xf32, strided<[288, 36, 1]>>,
// CHECK-NOT: memref.dealloc %{{.+}} : memref<16x32xf32>
func.func @update(%x: memref<16x36xf32>, %us: memref<16x4xf32>, %b: memref<32x4xf32>, %out: memref<2x8x32xf32>) {
  %yu = memref.alloc() : memref<16x36xf32>
  memref.copy %x, %yu : memref<16x36xf32> to memref<16x36xf32>
  %e = memref.expand_shape %yu [[0, 1], [2]] output_shape [2, 8, 36] : memref<16x36xf32> into memref<2x8x36xf32>
  %y0 = memref.subview %e[0, 0, 0] [2, 8, 32] [1, 1, 1] : memref<2x8x36xf32> to memref<2x8x32xf32, strided<[288, 36, 1]>>
  %u = memref.subview %e[0, 0, 32] [2, 8, 4] [1, 1, 1] : memref<2x8x36xf32> to memref<2x8x4xf32, strided<[288, 36, 1], offset: 32>>
  %c = memref.collapse_shape %y0 [[0, 1], [2]] : memref<2x8x32xf32, strided<[288, 36, 1]>> into memref<16x32xf32, strided<[36, 1]>>
  %y = memref.alloc() : memref<16x32xf32>
  memref.copy %c, %y : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
  linalg.matmul indexing_maps = [#mm_a, #mm_bt, #mm_c] ins(%us, %b : memref<16x4xf32>, memref<32x4xf32>) outs(%y : memref<16x32xf32>)
  %y3 = memref.expand_shape %y [[0, 1], [2]] output_shape [2, 8, 32] : memref<16x32xf32> into memref<2x8x32xf32>
  // U is read after the copy: other columns, no conflict.
  %u2 = memref.subview %u[0, 0, 0] [2, 8, 1] [1, 1, 1] : memref<2x8x4xf32, strided<[288, 36, 1], offset: 32>> to memref<2x8x1xf32, strided<[288, 36, 1], offset: 32>>
  linalg.generic {indexing_maps = [#id, affine_map<(i, j, k) -> (i, j, 0)>, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%y3, %u2 : memref<2x8x32xf32>, memref<2x8x1xf32, strided<[288, 36, 1], offset: 32>>) outs(%out : memref<2x8x32xf32>) {
  ^bb0(%a: f32, %s: f32, %o: f32):
    %r = arith.addf %a, %s : f32
    linalg.yield %r : f32
  }
  memref.dealloc %y : memref<16x32xf32>
  memref.dealloc %yu : memref<16x36xf32>
  return
}

// -----

#mm_a = affine_map<(m, n, k) -> (m, k)>
#mm_bt = affine_map<(m, n, k) -> (n, k)>
#mm_c = affine_map<(m, n, k) -> (m, n)>

// Y0's columns are read again after the copy: the copy stays.
// CHECK-LABEL: func.func @read_again
// CHECK: %[[Y:.+]] = memref.alloc() : memref<16x32xf32>
// CHECK: memref.copy %{{.+}}, %[[Y]] : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
// CHECK: linalg.matmul {{.+}} outs(%[[Y]] : memref<16x32xf32>)
func.func @read_again(%x: memref<16x36xf32>, %us: memref<16x4xf32>, %b: memref<32x4xf32>, %out: memref<16x32xf32>) {
  %yu = memref.alloc() : memref<16x36xf32>
  memref.copy %x, %yu : memref<16x36xf32> to memref<16x36xf32>
  %y0 = memref.subview %yu[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  %y = memref.alloc() : memref<16x32xf32>
  memref.copy %y0, %y : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
  linalg.matmul indexing_maps = [#mm_a, #mm_bt, #mm_c] ins(%us, %b : memref<16x4xf32>, memref<32x4xf32>) outs(%y : memref<16x32xf32>)
  %again = memref.subview %yu[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  memref.copy %again, %out : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
  memref.copy %y, %out : memref<16x32xf32> to memref<16x32xf32>
  return
}

// -----

#mm_a = affine_map<(m, n, k) -> (m, k)>
#mm_bt = affine_map<(m, n, k) -> (n, k)>
#mm_c = affine_map<(m, n, k) -> (m, n)>

func.func private @needs_identity(memref<16x32xf32>)

// A user that takes only the identity layout (a call): the copy stays.
// CHECK-LABEL: func.func @identity_user
// CHECK: %[[Y:.+]] = memref.alloc() : memref<16x32xf32>
// CHECK: memref.copy %{{.+}}, %[[Y]] : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
// CHECK: call @needs_identity(%[[Y]])
func.func @identity_user(%x: memref<16x36xf32>, %us: memref<16x4xf32>, %b: memref<32x4xf32>) {
  %yu = memref.alloc() : memref<16x36xf32>
  memref.copy %x, %yu : memref<16x36xf32> to memref<16x36xf32>
  %y0 = memref.subview %yu[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  %y = memref.alloc() : memref<16x32xf32>
  memref.copy %y0, %y : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
  linalg.matmul indexing_maps = [#mm_a, #mm_bt, #mm_c] ins(%us, %b : memref<16x4xf32>, memref<32x4xf32>) outs(%y : memref<16x32xf32>)
  call @needs_identity(%y) : (memref<16x32xf32>) -> ()
  return
}

// -----

#mm_a = affine_map<(m, n, k) -> (m, k)>
#mm_b = affine_map<(m, n, k) -> (k, n)>
#mm_c = affine_map<(m, n, k) -> (m, n)>
#id2 = affine_map<(i, j) -> (i, j)>

// The other direction: dY, made in a buffer of its own and copied into its
// columns of [dY | dU], where the dX GEMM reads it. Its producer writes
// straight into those columns and its other reader reads them there; the
// view's subview moves up to dominate the producer.
// CHECK-LABEL: func.func @into_view
// CHECK: %[[CAT:.+]] = memref.alloc() : memref<16x36xf32>
// CHECK-NEXT: %[[DY:.+]] = memref.subview %[[CAT]][0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
// CHECK-NOT: memref.alloc() : memref<16x32xf32>
// CHECK: linalg.generic {{.+}} outs(%[[DY]] : memref<16x32xf32, strided<[36, 1]>>)
// CHECK-NOT: memref.copy %{{.+}}, %[[DY]] :
// CHECK: linalg.matmul ins(%[[CAT]], %{{.+}} : memref<16x36xf32>, memref<36x8xf32>)
// CHECK: linalg.generic {{.+}} ins(%[[DY]] : memref<16x32xf32, strided<[36, 1]>>)
func.func @into_view(%g: memref<16x32xf32>, %du: memref<16x4xf32>, %wa: memref<36x8xf32>, %dx: memref<16x8xf32>, %out: memref<16x32xf32>) {
  %cat = memref.alloc() : memref<16x36xf32>
  %dy = memref.alloc() : memref<16x32xf32>
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%g : memref<16x32xf32>) outs(%dy : memref<16x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %a : f32
    linalg.yield %r : f32
  }
  %left = memref.subview %cat[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  memref.copy %dy, %left : memref<16x32xf32> to memref<16x32xf32, strided<[36, 1]>>
  %right = memref.subview %cat[0, 32] [16, 4] [1, 1] : memref<16x36xf32> to memref<16x4xf32, strided<[36, 1], offset: 32>>
  memref.copy %du, %right : memref<16x4xf32> to memref<16x4xf32, strided<[36, 1], offset: 32>>
  linalg.matmul indexing_maps = [#mm_a, #mm_b, #mm_c] ins(%cat, %wa : memref<16x36xf32>, memref<36x8xf32>) outs(%dx : memref<16x8xf32>)
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%dy : memref<16x32xf32>) outs(%out : memref<16x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  }
  memref.dealloc %dy : memref<16x32xf32>
  memref.dealloc %cat : memref<16x36xf32>
  return
}

// -----

#id2 = affine_map<(i, j) -> (i, j)>

// dY is written again after the copy: [dY | dU] must keep the old values,
// so the copy stays.
// CHECK-LABEL: func.func @written_after
// CHECK: memref.copy %{{.+}}, %{{.+}} : memref<16x32xf32> to memref<16x32xf32, strided<[36, 1]>>
func.func @written_after(%g: memref<16x32xf32>, %out: memref<16x36xf32>) {
  %cat = memref.alloc() : memref<16x36xf32>
  %dy = memref.alloc() : memref<16x32xf32>
  memref.copy %g, %dy : memref<16x32xf32> to memref<16x32xf32>
  %left = memref.subview %cat[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  memref.copy %dy, %left : memref<16x32xf32> to memref<16x32xf32, strided<[36, 1]>>
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%g : memref<16x32xf32>) outs(%dy : memref<16x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %o : f32
    linalg.yield %r : f32
  }
  memref.copy %cat, %out : memref<16x36xf32> to memref<16x36xf32>
  return
}

// -----

#mm_a = affine_map<(m, n, k) -> (m, k)>
#mm_bt = affine_map<(m, n, k) -> (n, k)>
#mm_c = affine_map<(m, n, k) -> (m, n)>

// The same columns through a view made before the copy and read after it:
// the copy stays (where a view is made does not matter, where it is read
// does).
// CHECK-LABEL: func.func @early_view
// CHECK: %[[Y:.+]] = memref.alloc() : memref<16x32xf32>
// CHECK: memref.copy %{{.+}}, %[[Y]] : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
// CHECK: linalg.matmul {{.+}} outs(%[[Y]] : memref<16x32xf32>)
func.func @early_view(%x: memref<16x36xf32>, %us: memref<16x4xf32>, %b: memref<32x4xf32>, %out: memref<16x32xf32>) {
  %yu = memref.alloc() : memref<16x36xf32>
  memref.copy %x, %yu : memref<16x36xf32> to memref<16x36xf32>
  %again = memref.subview %yu[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  %y0 = memref.subview %yu[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  %y = memref.alloc() : memref<16x32xf32>
  memref.copy %y0, %y : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
  linalg.matmul indexing_maps = [#mm_a, #mm_bt, #mm_c] ins(%us, %b : memref<16x4xf32>, memref<32x4xf32>) outs(%y : memref<16x32xf32>)
  memref.copy %again, %out : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
  memref.copy %y, %out : memref<16x32xf32> to memref<16x32xf32>
  return
}

// -----

#mm_a = affine_map<(m, n, k) -> (m, k)>
#mm_b = affine_map<(m, n, k) -> (k, n)>
#mm_c = affine_map<(m, n, k) -> (m, n)>

func.func private @lora_adapter_grad_ub_f32(f32, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>)

// dU made by a runtime call (lora.adapter_grad) into a buffer allocated
// before [dY | dU]'s: the concatenation's buffer moves up, the call writes
// dU into its columns through the cast, and both copies go.
// CHECK-LABEL: func.func @call_into_view
// CHECK: %[[CAT:.+]] = memref.alloc() : memref<16x36xf32>
// CHECK: %[[RIGHT:.+]] = memref.subview %[[CAT]][0, 32] [16, 4] [1, 1]
// CHECK: %[[LEFT:.+]] = memref.subview %[[CAT]][0, 0] [16, 32] [1, 1]
// CHECK: linalg.generic {{.+}} outs(%[[LEFT]] : memref<16x32xf32, strided<[36, 1]>>)
// CHECK: %[[DUARG:.+]] = memref.cast %[[RIGHT]] : memref<16x4xf32, strided<[36, 1], offset: 32>> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: call @lora_adapter_grad_ub_f32({{.+}}, %[[DUARG]], {{.+}})
// CHECK-NOT: memref.copy
// CHECK: linalg.matmul ins(%[[CAT]], %{{.+}} : memref<16x36xf32>, memref<36x8xf32>)
func.func @call_into_view(%g: memref<16x32xf32>, %b: memref<32x4xf32>, %u: memref<16x4xf32>, %wa: memref<36x8xf32>, %dx: memref<16x8xf32>, %db: memref<32x4xf32>) {
  %s = arith.constant 2.0 : f32
  %dy = memref.alloc() : memref<16x32xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]}
      ins(%g : memref<16x32xf32>) outs(%dy : memref<16x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %a : f32
    linalg.yield %r : f32
  }
  %du = memref.alloc() : memref<16x4xf32>
  %c0 = memref.cast %dy : memref<16x32xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %c1 = memref.cast %b : memref<32x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %c2 = memref.cast %u : memref<16x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %c3 = memref.cast %du : memref<16x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %c4 = memref.cast %db : memref<32x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @lora_adapter_grad_ub_f32(%s, %c0, %c1, %c2, %c3, %c4) : (f32, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) -> ()
  %cat = memref.alloc() : memref<16x36xf32>
  %left = memref.subview %cat[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  memref.copy %dy, %left : memref<16x32xf32> to memref<16x32xf32, strided<[36, 1]>>
  %right = memref.subview %cat[0, 32] [16, 4] [1, 1] : memref<16x36xf32> to memref<16x4xf32, strided<[36, 1], offset: 32>>
  memref.copy %du, %right : memref<16x4xf32> to memref<16x4xf32, strided<[36, 1], offset: 32>>
  linalg.matmul indexing_maps = [#mm_a, #mm_b, #mm_c] ins(%cat, %wa : memref<16x36xf32>, memref<36x8xf32>) outs(%dx : memref<16x8xf32>)
  memref.dealloc %du : memref<16x4xf32>
  memref.dealloc %dy : memref<16x32xf32>
  memref.dealloc %cat : memref<16x36xf32>
  return
}

// -----

func.func private @lora_adapter_grad_ub_f32(f32, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>)

// A runtime call uses dY after its copy into [dY | dU]: the call may
// write, so the copy stays.
// CHECK-LABEL: func.func @call_after_copy
// CHECK: %[[DY:.+]] = memref.alloc() : memref<16x32xf32>
// CHECK: memref.cast %[[DY]]
// CHECK: memref.copy %[[DY]], %{{.+}} : memref<16x32xf32> to memref<16x32xf32, strided<[36, 1]>>
func.func @call_after_copy(%g: memref<16x32xf32>, %b: memref<32x4xf32>, %u: memref<16x4xf32>, %du: memref<16x4xf32>, %db: memref<32x4xf32>, %out: memref<16x36xf32>) {
  %s = arith.constant 2.0 : f32
  %cat = memref.alloc() : memref<16x36xf32>
  %dy = memref.alloc() : memref<16x32xf32>
  memref.copy %g, %dy : memref<16x32xf32> to memref<16x32xf32>
  %c0 = memref.cast %dy : memref<16x32xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %left = memref.subview %cat[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  memref.copy %dy, %left : memref<16x32xf32> to memref<16x32xf32, strided<[36, 1]>>
  %c1 = memref.cast %b : memref<32x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %c2 = memref.cast %u : memref<16x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %c3 = memref.cast %du : memref<16x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %c4 = memref.cast %db : memref<32x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @lora_adapter_grad_ub_f32(%s, %c0, %c1, %c2, %c3, %c4) : (f32, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) -> ()
  memref.copy %cat, %out : memref<16x36xf32> to memref<16x36xf32>
  return
}

// -----

#mm_a = affine_map<(m, n, k) -> (m, k)>
#mm_bt = affine_map<(m, n, k) -> (n, k)>
#mm_c = affine_map<(m, n, k) -> (m, n)>

func.func private @reads(memref<?x?xf32, strided<[?, ?], offset: ?>>)

// Y0's columns are cast for a runtime call before the copy, and the call
// reads them after it: the call, not the cast, is where they are used, so
// the copy stays (updating Y0 in place would change what the call reads).
// CHECK-LABEL: func.func @cast_before_call_after
// CHECK: %[[Y:.+]] = memref.alloc() : memref<16x32xf32>
// CHECK: memref.copy %{{.+}}, %[[Y]] : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
func.func @cast_before_call_after(%x: memref<16x36xf32>, %us: memref<16x4xf32>, %b: memref<32x4xf32>, %out: memref<16x32xf32>) {
  %yu = memref.alloc() : memref<16x36xf32>
  memref.copy %x, %yu : memref<16x36xf32> to memref<16x36xf32>
  %y0 = memref.subview %yu[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  %arg = memref.cast %y0 : memref<16x32xf32, strided<[36, 1]>> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %y = memref.alloc() : memref<16x32xf32>
  memref.copy %y0, %y : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
  linalg.matmul indexing_maps = [#mm_a, #mm_bt, #mm_c] ins(%us, %b : memref<16x4xf32>, memref<32x4xf32>) outs(%y : memref<16x32xf32>)
  call @reads(%arg) : (memref<?x?xf32, strided<[?, ?], offset: ?>>) -> ()
  memref.copy %y, %out : memref<16x32xf32> to memref<16x32xf32>
  return
}

// -----

#mm_a = affine_map<(m, n, k) -> (m, k)>
#mm_bt = affine_map<(m, n, k) -> (n, k)>
#mm_c = affine_map<(m, n, k) -> (m, n)>

func.func private @reads(memref<?x?xf32, strided<[?, ?], offset: ?>>)

// The same through another view of Y0's columns: the walk over the root's
// columns follows the cast to the call.
// CHECK-LABEL: func.func @cast_of_other_view
// CHECK: %[[Y:.+]] = memref.alloc() : memref<16x32xf32>
// CHECK: memref.copy %{{.+}}, %[[Y]] : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
func.func @cast_of_other_view(%x: memref<16x36xf32>, %us: memref<16x4xf32>, %b: memref<32x4xf32>, %out: memref<16x32xf32>) {
  %yu = memref.alloc() : memref<16x36xf32>
  memref.copy %x, %yu : memref<16x36xf32> to memref<16x36xf32>
  %again = memref.subview %yu[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  %arg = memref.cast %again : memref<16x32xf32, strided<[36, 1]>> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %y0 = memref.subview %yu[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  %y = memref.alloc() : memref<16x32xf32>
  memref.copy %y0, %y : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
  linalg.matmul indexing_maps = [#mm_a, #mm_bt, #mm_c] ins(%us, %b : memref<16x4xf32>, memref<32x4xf32>) outs(%y : memref<16x32xf32>)
  call @reads(%arg) : (memref<?x?xf32, strided<[?, ?], offset: ?>>) -> ()
  memref.copy %y, %out : memref<16x32xf32> to memref<16x32xf32>
  return
}

// -----

#id2 = affine_map<(i, j) -> (i, j)>

// [dY | dU]'s dY columns are read through the copy's own target view
// before dY is copied in: dY's producer must not write there earlier, so
// the copy stays.
// CHECK-LABEL: func.func @target_read_before_copy
// CHECK: %[[DY:.+]] = memref.alloc() : memref<16x32xf32>
// CHECK: memref.copy %[[DY]], %{{.+}} : memref<16x32xf32> to memref<16x32xf32, strided<[36, 1]>>
func.func @target_read_before_copy(%g: memref<16x32xf32>, %old: memref<16x32xf32>, %out: memref<16x36xf32>) {
  %cat = memref.alloc() : memref<16x36xf32>
  %dy = memref.alloc() : memref<16x32xf32>
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%g : memref<16x32xf32>) outs(%dy : memref<16x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %a : f32
    linalg.yield %r : f32
  }
  %left = memref.subview %cat[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  memref.copy %left, %old : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
  memref.copy %dy, %left : memref<16x32xf32> to memref<16x32xf32, strided<[36, 1]>>
  memref.copy %cat, %out : memref<16x36xf32> to memref<16x36xf32>
  return
}

// -----

#mm_a = affine_map<(m, n, k) -> (m, k)>
#mm_bt = affine_map<(m, n, k) -> (n, k)>
#mm_c = affine_map<(m, n, k) -> (m, n)>
#id2 = affine_map<(i, j) -> (i, j)>

// Y (v_proj's output) is read per head inside a loop, through rank-reducing
// subviews of its [batch, seq, heads, dim] view (attention's blocks): those
// subviews are retyped too, and Y's rank-r update goes where Y0 lies.
// CHECK-LABEL: func.func @per_head_reader
// CHECK-NOT: memref.alloc() : memref<16x32xf32>
// CHECK: linalg.matmul {{.+}} outs(%[[Y:.+]] : memref<16x32xf32, strided<[36, 1]>>)
// CHECK: %[[H:.+]] = memref.expand_shape %[[Y]] {{.+}} into memref<2x8x4x8xf32, strided<[288, 36, 8, 1]>>
// CHECK: scf.for
// CHECK: %[[HEAD:.+]] = memref.subview %[[H]][%{{.+}}, 0, %{{.+}}, 0] [1, 8, 1, 8] [1, 1, 1, 1] : memref<2x8x4x8xf32, strided<[288, 36, 8, 1]>> to memref<8x8xf32, strided<[36, 1], offset: ?>>
// CHECK: linalg.generic {{.+}} ins(%[[HEAD]] : memref<8x8xf32, strided<[36, 1], offset: ?>>)
func.func @per_head_reader(%x: memref<16x36xf32>, %us: memref<16x4xf32>, %b: memref<32x4xf32>, %out: memref<8x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %yu = memref.alloc() : memref<16x36xf32>
  memref.copy %x, %yu : memref<16x36xf32> to memref<16x36xf32>
  %y0 = memref.subview %yu[0, 0] [16, 32] [1, 1] : memref<16x36xf32> to memref<16x32xf32, strided<[36, 1]>>
  %y = memref.alloc() : memref<16x32xf32>
  memref.copy %y0, %y : memref<16x32xf32, strided<[36, 1]>> to memref<16x32xf32>
  linalg.matmul indexing_maps = [#mm_a, #mm_bt, #mm_c] ins(%us, %b : memref<16x4xf32>, memref<32x4xf32>) outs(%y : memref<16x32xf32>)
  %h = memref.expand_shape %y [[0, 1], [2, 3]] output_shape [2, 8, 4, 8] : memref<16x32xf32> into memref<2x8x4x8xf32>
  scf.for %i = %c0 to %c2 step %c1 {
    %head = memref.subview %h[%i, 0, %i, 0] [1, 8, 1, 8] [1, 1, 1, 1] : memref<2x8x4x8xf32> to memref<8x8xf32, strided<[32, 1], offset: ?>>
    linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
        ins(%head : memref<8x8xf32, strided<[32, 1], offset: ?>>) outs(%out : memref<8x8xf32>) {
    ^bb0(%a: f32, %o: f32):
      %r = arith.addf %a, %o : f32
      linalg.yield %r : f32
    }
  }
  memref.dealloc %y : memref<16x32xf32>
  memref.dealloc %yu : memref<16x36xf32>
  return
}

// -----

#mm_a = affine_map<(m, n, k) -> (m, k)>
#mm_b = affine_map<(m, n, k) -> (k, n)>
#mm_c = affine_map<(m, n, k) -> (m, n)>
#id2 = affine_map<(i, j) -> (i, j)>

// dV, written per head inside a loop into a [batch, seq, heads, dim]
// buffer, then collapsed to [batch, seq, 32] and copied into its columns of
// [dY | dU]: the loop writes there directly (the collapse undone by an
// expand_shape of the view).
// CHECK-LABEL: func.func @collapsed_into_view
// CHECK: %[[CAT:.+]] = memref.alloc() : memref<2x8x36xf32>
// CHECK-NEXT: %[[LEFT:.+]] = memref.subview %[[CAT]][0, 0, 0] [2, 8, 32] [1, 1, 1]
// CHECK-NEXT: %[[DV:.+]] = memref.expand_shape %[[LEFT]] {{\[}}[0], [1], [2, 3]] output_shape [2, 8, 4, 8] : memref<2x8x32xf32, strided<[288, 36, 1]>> into memref<2x8x4x8xf32, strided<[288, 36, 8, 1]>>
// CHECK-NOT: memref.alloc() : memref<2x8x4x8xf32>
// CHECK: memref.subview %[[DV]][%{{.+}}, 0, %{{.+}}, 0] [1, 8, 1, 8] [1, 1, 1, 1] : memref<2x8x4x8xf32, strided<[288, 36, 8, 1]>> to memref<8x8xf32, strided<[36, 1], offset: ?>>
// CHECK-NOT: memref.copy %{{.+}}, %[[LEFT]] :
func.func @collapsed_into_view(%g: memref<8x8xf32>, %du: memref<2x8x4xf32>, %wa: memref<36x8xf32>, %dx: memref<16x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %cat = memref.alloc() : memref<2x8x36xf32>
  %dv = memref.alloc() : memref<2x8x4x8xf32>
  scf.for %i = %c0 to %c2 step %c1 {
    %head = memref.subview %dv[%i, 0, %i, 0] [1, 8, 1, 8] [1, 1, 1, 1] : memref<2x8x4x8xf32> to memref<8x8xf32, strided<[32, 1], offset: ?>>
    linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
        ins(%g : memref<8x8xf32>) outs(%head : memref<8x8xf32, strided<[32, 1], offset: ?>>) {
    ^bb0(%a: f32, %o: f32):
      linalg.yield %a : f32
    }
  }
  %flat = memref.collapse_shape %dv [[0], [1], [2, 3]] : memref<2x8x4x8xf32> into memref<2x8x32xf32>
  %left = memref.subview %cat[0, 0, 0] [2, 8, 32] [1, 1, 1] : memref<2x8x36xf32> to memref<2x8x32xf32, strided<[288, 36, 1]>>
  memref.copy %flat, %left : memref<2x8x32xf32> to memref<2x8x32xf32, strided<[288, 36, 1]>>
  %right = memref.subview %cat[0, 0, 32] [2, 8, 4] [1, 1, 1] : memref<2x8x36xf32> to memref<2x8x4xf32, strided<[288, 36, 1], offset: 32>>
  memref.copy %du, %right : memref<2x8x4xf32> to memref<2x8x4xf32, strided<[288, 36, 1], offset: 32>>
  %cat2 = memref.collapse_shape %cat [[0, 1], [2]] : memref<2x8x36xf32> into memref<16x36xf32>
  linalg.matmul indexing_maps = [#mm_a, #mm_b, #mm_c] ins(%cat2, %wa : memref<16x36xf32>, memref<36x8xf32>) outs(%dx : memref<16x8xf32>)
  memref.dealloc %dv : memref<2x8x4x8xf32>
  memref.dealloc %cat : memref<2x8x36xf32>
  return
}

// -----

#id4 = affine_map<(i, j, k, l) -> (i, j, k, l)>

// dK after rope_grad: made as [tokens, heads, 2, half], collapsed to
// [tokens, 32], expanded to [batch, seq, 32] and copied into [dY | dU]:
// both reshapes are undone (an expand_shape, then a collapse_shape).
// CHECK-LABEL: func.func @reshaped_twice_into_view
// CHECK: %[[CAT:.+]] = memref.alloc() : memref<2x8x36xf32>
// CHECK-NEXT: %[[LEFT:.+]] = memref.subview %[[CAT]][0, 0, 0] [2, 8, 32] [1, 1, 1]
// CHECK-NEXT: %[[FLAT:.+]] = memref.collapse_shape %[[LEFT]] {{\[}}[0, 1], [2]] : memref<2x8x32xf32, strided<[288, 36, 1]>> into memref<16x32xf32, strided<[36, 1]>>
// CHECK-NEXT: %[[DK:.+]] = memref.expand_shape %[[FLAT]] {{\[}}[0], [1, 2, 3]] output_shape [16, 4, 2, 4] : memref<16x32xf32, strided<[36, 1]>> into memref<16x4x2x4xf32, strided<[36, 8, 4, 1]>>
// CHECK: linalg.generic {{.+}} outs(%[[DK]] : memref<16x4x2x4xf32, strided<[36, 8, 4, 1]>>)
// CHECK-NOT: memref.copy %{{.+}}, %[[LEFT]] :
func.func @reshaped_twice_into_view(%g: memref<16x4x2x4xf32>, %out: memref<2x8x36xf32>) {
  %cat = memref.alloc() : memref<2x8x36xf32>
  %dk = memref.alloc() : memref<16x4x2x4xf32>
  linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g : memref<16x4x2x4xf32>) outs(%dk : memref<16x4x2x4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %a : f32
    linalg.yield %r : f32
  }
  %flat = memref.collapse_shape %dk [[0], [1, 2, 3]] : memref<16x4x2x4xf32> into memref<16x32xf32>
  %bsd = memref.expand_shape %flat [[0, 1], [2]] output_shape [2, 8, 32] : memref<16x32xf32> into memref<2x8x32xf32>
  %left = memref.subview %cat[0, 0, 0] [2, 8, 32] [1, 1, 1] : memref<2x8x36xf32> to memref<2x8x32xf32, strided<[288, 36, 1]>>
  memref.copy %bsd, %left : memref<2x8x32xf32> to memref<2x8x32xf32, strided<[288, 36, 1]>>
  memref.copy %cat, %out : memref<2x8x36xf32> to memref<2x8x36xf32>
  return
}
