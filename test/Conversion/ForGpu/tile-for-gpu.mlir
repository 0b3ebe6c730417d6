// lora-tile-for-gpu: the innermost (contiguous) dimension of each outermost
// scf.parallel goes in tiles of `threads` with constant bounds and an
// in-bounds check; a short innermost dimension gets one warp-rounded tile;
// the result maps onto blocks and threads.
// RUN: lora-opt %s --pass-pipeline="builtin.module(func.func(lora-tile-for-gpu{threads=128}))" | FileCheck %s
// RUN: lora-opt %s --pass-pipeline="builtin.module(func.func(lora-tile-for-gpu{threads=128}), func.func(gpu-map-parallel-loops), func.func(convert-parallel-loops-to-gpu))" | FileCheck %s --check-prefix=LAUNCH
// RUN: not lora-opt %s --pass-pipeline="builtin.module(func.func(lora-tile-for-gpu{threads=2048}))" 2>&1 | FileCheck %s --check-prefix=BAD

// CHECK-LABEL: func.func @rows
// CHECK: %[[C128:.+]] = arith.constant 128 : index
// CHECK: %[[ONE:.+]] = arith.muli %{{.+}}, %{{.+}} : index
// CHECK: %[[STEP:.+]] = arith.muli %{{.+}}, %[[C128]] : index
// CHECK: scf.parallel (%{{.+}}, %{{.+}}) = (%{{.+}}, %{{.+}}) to (%{{.+}}, %{{.+}}) step (%[[ONE]], %[[STEP]])
// CHECK: scf.parallel
// CHECK: scf.if
// LAUNCH-LABEL: func.func @rows
// LAUNCH: gpu.launch blocks(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) threads(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}})
func.func @rows(%a: memref<30x1000xf32>, %b: memref<30x1000xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c30 = arith.constant 30 : index
  %c1000 = arith.constant 1000 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c30, %c1000) step (%c1, %c1) {
    %x = memref.load %a[%i, %j] : memref<30x1000xf32>
    %y = math.exp %x : f32
    memref.store %y, %b[%i, %j] : memref<30x1000xf32>
    scf.reduce
  }
  return
}

// 40 elements: one tile of 64 threads.
// CHECK-LABEL: func.func @short
// CHECK: %[[C64:.+]] = arith.constant 64 : index
// CHECK: %[[STEP64:.+]] = arith.muli %{{.+}}, %[[C64]] : index
// CHECK: scf.parallel (%{{.+}}) = (%{{.+}}) to (%{{.+}}) step (%[[STEP64]])
func.func @short(%a: memref<40xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c40 = arith.constant 40 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i) = (%c0) to (%c40) step (%c1) {
    memref.store %zero, %a[%i] : memref<40xf32>
    scf.reduce
  }
  return
}

// BAD: lora-tile-for-gpu: threads must be in [1, 1024], got 2048
