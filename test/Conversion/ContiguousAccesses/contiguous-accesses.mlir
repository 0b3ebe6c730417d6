// lora-contiguous-accesses: loads and stores through static strided views
// become accesses of the identity-layout array the view is a window of,
// shifted by the window's origin, so that affine-super-vectorize handles
// them.
// RUN: lora-opt %s -split-input-file -lora-contiguous-accesses | FileCheck %s
// RUN: lora-opt %s -split-input-file -lora-contiguous-accesses -affine-super-vectorize="virtual-vector-size=8" 2>&1 | FileCheck %s --check-prefix=VEC

// The two column slices of a fused [Y | U] output, 3-D like the step's
// activations: Y = [.., 0:24] and U = [.., 24:32] of rows 32 wide.
// CHECK-LABEL: func.func @column_slices
// CHECK-DAG: %[[YROWS:.+]] = memref.reinterpret_cast %{{.+}} to offset: [0], sizes: [2, 4, 32], strides: [128, 32, 1] : memref<2x4x24xf32, strided<[128, 32, 1]>> to memref<2x4x32xf32>
// CHECK-DAG: %[[UROWS:.+]] = memref.reinterpret_cast %{{.+}} to offset: [0], sizes: [2, 4, 32], strides: [128, 32, 1] : memref<2x4x8xf32, strided<[128, 32, 1], offset: 24>> to memref<2x4x32xf32>
// CHECK: affine.for %[[I:.+]] = 0 to 2
// CHECK: affine.for %[[J:.+]] = 0 to 4
// CHECK: affine.for %[[K:.+]] = 0 to 24
// CHECK: affine.load %[[YROWS]][%[[I]], %[[J]], %[[K]]] : memref<2x4x32xf32>
// CHECK: affine.store %{{.+}}, %[[YROWS]][%[[I]], %[[J]], %[[K]]] : memref<2x4x32xf32>
// CHECK: affine.for %[[K2:.+]] = 0 to 8
// CHECK: affine.load %[[UROWS]][%{{.+}}, %{{.+}}, %[[K2]] + 24] : memref<2x4x32xf32>
// VEC-LABEL: func.func @column_slices
// VEC-NOT: NYI
// VEC: vector.transfer_read
// VEC: vector.transfer_write
func.func @column_slices(%yu: memref<2x4x32xf32>, %out: memref<2x4x8xf32>) {
  %y = memref.subview %yu[0, 0, 0] [2, 4, 24] [1, 1, 1] : memref<2x4x32xf32> to memref<2x4x24xf32, strided<[128, 32, 1]>>
  %u = memref.subview %yu[0, 0, 24] [2, 4, 8] [1, 1, 1] : memref<2x4x32xf32> to memref<2x4x8xf32, strided<[128, 32, 1], offset: 24>>
  %two = arith.constant 2.0 : f32
  affine.for %i = 0 to 2 {
    affine.for %j = 0 to 4 {
      affine.for %k = 0 to 24 {
        %v = affine.load %y[%i, %j, %k] : memref<2x4x24xf32, strided<[128, 32, 1]>>
        %w = arith.mulf %v, %two : f32
        affine.store %w, %y[%i, %j, %k] : memref<2x4x24xf32, strided<[128, 32, 1]>>
      }
      affine.for %k = 0 to 8 {
        %v = affine.load %u[%i, %j, %k] : memref<2x4x8xf32, strided<[128, 32, 1], offset: 24>>
        affine.store %v, %out[%i, %j, %k] : memref<2x4x8xf32>
      }
    }
  }
  return
}

// -----

// Left alone: a row window not a multiple of the vector width that stops
// short of the row's end (the vectorizer's last vector would read past
// it), a window that wraps into the next row, a dynamic offset, a
// non-unit innermost stride, and identity layouts.
// CHECK-LABEL: func.func @left_alone
// CHECK: memref.reinterpret_cast %{{.+}} to offset: [28]
// CHECK-NOT: memref.reinterpret_cast
// CHECK: affine.load %{{.+}} : memref<4x12xf32, strided<[32, 1]>>
// CHECK: affine.load %{{.+}} : memref<2x8xf32, strided<[32, 1], offset: 28>>
// CHECK: affine.load %{{.+}} : memref<4x8xf32, strided<[32, 1], offset: ?>>
// CHECK: affine.load %{{.+}} : memref<4x8xf32, strided<[32, 2]>>
// CHECK: affine.load %{{.+}} : memref<4x32xf32>
func.func @left_alone(%a: memref<4x32xf32>, %o: index) {
  %short = memref.subview %a[0, 0] [4, 12] [1, 1] : memref<4x32xf32> to memref<4x12xf32, strided<[32, 1]>>
  %wrap = memref.reinterpret_cast %a to offset: [28], sizes: [2, 8], strides: [32, 1] : memref<4x32xf32> to memref<2x8xf32, strided<[32, 1], offset: 28>>
  %dynamic = memref.subview %a[0, %o] [4, 8] [1, 1] : memref<4x32xf32> to memref<4x8xf32, strided<[32, 1], offset: ?>>
  %columns = memref.subview %a[0, 0] [4, 8] [1, 2] : memref<4x32xf32> to memref<4x8xf32, strided<[32, 2]>>
  affine.for %i = 0 to 2 {
    affine.for %k = 0 to 8 {
      %v0 = affine.load %short[%i, %k] : memref<4x12xf32, strided<[32, 1]>>
      %v1 = affine.load %wrap[%i, %k] : memref<2x8xf32, strided<[32, 1], offset: 28>>
      %v2 = affine.load %dynamic[%i, %k] : memref<4x8xf32, strided<[32, 1], offset: ?>>
      %v3 = affine.load %columns[%i, %k] : memref<4x8xf32, strided<[32, 2]>>
      %v4 = affine.load %a[%i, %k] : memref<4x32xf32>
      %s0 = arith.addf %v0, %v1 : f32
      %s1 = arith.addf %v2, %v3 : f32
      %s2 = arith.addf %s0, %s1 : f32
      %s3 = arith.addf %s2, %v4 : f32
      affine.store %s3, %a[%i, %k] : memref<4x32xf32>
    }
  }
  return
}

// -----

// Y0 of a [Y0 | U] row 20 wide, split into two heads of 8 (the heads do
// not divide the row): one flat parent, [rows, 20], indexed by the row and
// head·8 + d. Shifted by 8, the heads would run past the row's end: left
// alone.
// CHECK-LABEL: func.func @heads_of_a_wider_row
// CHECK: %[[P:.+]] = memref.reinterpret_cast %{{.+}} to offset: [0], sizes: [8, 20], strides: [20, 1] : memref<8x2x8xf32, strided<[20, 8, 1]>> to memref<8x20xf32>
// CHECK-NEXT: memref.reinterpret_cast %{{.+}} to offset: [8]
// CHECK-NOT: memref.reinterpret_cast
// CHECK: affine.for %[[I:.+]] = 0 to 8
// CHECK: affine.for %[[H:.+]] = 0 to 2
// CHECK: affine.for %[[D:.+]] = 0 to 8
// CHECK: affine.load %[[P]][%[[I]], %[[H]] * 8 + %[[D]]] : memref<8x20xf32>
// CHECK: affine.load %{{.+}}[%{{.+}}, %{{.+}}, %{{.+}}] : memref<8x2x8xf32, strided<[20, 8, 1], offset: 8>>
// VEC-LABEL: func.func @heads_of_a_wider_row
// VEC: vector.transfer_read %{{.+}} : memref<8x20xf32>, vector<8xf32>
func.func @heads_of_a_wider_row(%yu: memref<8x20xf32>, %out: memref<8x2x8xf32>) {
  %y = memref.subview %yu[0, 0] [8, 16] [1, 1] : memref<8x20xf32> to memref<8x16xf32, strided<[20, 1]>>
  %heads = memref.expand_shape %y [[0], [1, 2]] output_shape [8, 2, 8] : memref<8x16xf32, strided<[20, 1]>> into memref<8x2x8xf32, strided<[20, 8, 1]>>
  %late = memref.reinterpret_cast %yu to offset: [8], sizes: [8, 2, 8], strides: [20, 8, 1] : memref<8x20xf32> to memref<8x2x8xf32, strided<[20, 8, 1], offset: 8>>
  affine.for %i = 0 to 8 {
    affine.for %h = 0 to 2 {
      affine.for %d = 0 to 8 {
        %v = affine.load %heads[%i, %h, %d] : memref<8x2x8xf32, strided<[20, 8, 1]>>
        affine.store %v, %out[%i, %h, %d] : memref<8x2x8xf32>
      }
    }
  }
  affine.for %i = 0 to 8 {
    affine.for %h = 0 to 2 {
      affine.for %d = 0 to 8 {
        %w = affine.load %late[%i, %h, %d] : memref<8x2x8xf32, strided<[20, 8, 1], offset: 8>>
        affine.store %w, %out[%i, %h, %d] : memref<8x2x8xf32>
      }
    }
  }
  return
}
