// lora-serialize-small-loops: a parallel loop nest with fewer innermost
// iterations than min-iterations runs on one thread (affine.for again);
// larger nests, nests with a trip count not known, and loops with
// reductions stay parallel.
// RUN: lora-opt %s -split-input-file -lora-serialize-small-loops | FileCheck %s
// RUN: lora-opt %s -split-input-file -lora-serialize-small-loops="min-iterations=64" | FileCheck %s --check-prefix=LOW

// An adapter's A, 16 x 512 values, vectorized: 16 x 64 = 1024 iterations,
// serial by default; at a threshold of 64 it stays parallel.
// CHECK-LABEL: func.func @adapter_sized
// CHECK-NOT: affine.parallel
// CHECK: affine.for %[[I:.+]] = 0 to 16 {
// CHECK-NEXT: affine.for %[[J:.+]] = 0 to 512 step 8 {
// CHECK-NEXT: vector.transfer_read %{{.+}}[%[[I]], %[[J]]]
// LOW-LABEL: func.func @adapter_sized
// LOW: affine.parallel (%{{.+}}) = (0) to (16)
func.func @adapter_sized(%a: memref<16x512xf32>, %b: memref<16x512xf32>) {
  %zero = arith.constant 0.0 : f32
  affine.parallel (%i) = (0) to (16) {
    affine.for %j = 0 to 512 step 8 {
      %x = vector.transfer_read %a[%i, %j], %zero : memref<16x512xf32>, vector<8xf32>
      %y = arith.addf %x, %x : vector<8xf32>
      vector.transfer_write %y, %b[%i, %j] : vector<8xf32>, memref<16x512xf32>
    }
  }
  return
}

// -----

// 2048 x 512 iterations, in two sibling inner loops of 256: parallel.
// CHECK-LABEL: func.func @activation_sized
// CHECK: affine.parallel (%{{.+}}) = (0) to (2048)
func.func @activation_sized(%a: memref<2048x512xf32>) {
  affine.parallel (%i) = (0) to (2048) {
    affine.for %j = 0 to 256 {
      %x = affine.load %a[%i, %j] : memref<2048x512xf32>
      affine.store %x, %a[%i, %j] : memref<2048x512xf32>
    }
    affine.for %j = 256 to 512 {
      %x = affine.load %a[%i, %j] : memref<2048x512xf32>
      affine.store %x, %a[%i, %j] : memref<2048x512xf32>
    }
  }
  return
}

// -----

// Sibling inner loops add up: 8 x (150 + 150) = 2400 iterations, more
// than 2048 though each loop alone has fewer: parallel.
// CHECK-LABEL: func.func @siblings
// CHECK: affine.parallel (%{{.+}}) = (0) to (8)
func.func @siblings(%a: memref<8x150xf32>) {
  affine.parallel (%i) = (0) to (8) {
    affine.for %j = 0 to 150 {
      %x = affine.load %a[%i, %j] : memref<8x150xf32>
      affine.store %x, %a[%i, %j] : memref<8x150xf32>
    }
    affine.for %j = 0 to 150 {
      %x = affine.load %a[%i, %j] : memref<8x150xf32>
      affine.store %x, %a[%i, %j] : memref<8x150xf32>
    }
  }
  return
}

// -----

// A step of 2 over 32: 16 trips x 100 = 1600 iterations, serial.
// CHECK-LABEL: func.func @step
// CHECK-NOT: affine.parallel
// CHECK: affine.for %{{.+}} = 0 to 32 step 2 {
func.func @step(%a: memref<32x100xf32>) {
  affine.parallel (%i) = (0) to (32) step (2) {
    affine.for %j = 0 to 100 {
      %x = affine.load %a[%i, %j] : memref<32x100xf32>
      affine.store %x, %a[%i, %j] : memref<32x100xf32>
    }
  }
  return
}

// -----

// An inner trip count that is not a constant: the work is not known, the
// loop stays parallel.
// CHECK-LABEL: func.func @unknown_work
// CHECK: affine.parallel
func.func @unknown_work(%a: memref<4x?xf32>, %n: index) {
  affine.parallel (%i) = (0) to (4) {
    affine.for %j = 0 to %n {
      %x = affine.load %a[%i, %j] : memref<4x?xf32>
      affine.store %x, %a[%i, %j] : memref<4x?xf32>
    }
  }
  return
}

// -----

// A reduction: left alone.
// CHECK-LABEL: func.func @reduction
// CHECK: affine.parallel (%{{.+}}) = (0) to (4) reduce ("addf")
func.func @reduction(%a: memref<4xf32>) -> f32 {
  %sum = affine.parallel (%i) = (0) to (4) reduce ("addf") -> f32 {
    %x = affine.load %a[%i] : memref<4xf32>
    affine.yield %x : f32
  }
  return %sum : f32
}
