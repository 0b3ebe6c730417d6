// lora-tile-for-gpu: the innermost (contiguous) dimension of each outermost
// scf.parallel goes in tiles of `threads` with constant bounds and an
// in-bounds check; a short innermost dimension gets one warp-rounded tile;
// the tiles map onto blocks and threads within the hardware's limits (the
// tile's innermost dimension on threadIdx.x, which holds 1024 where z holds
// 64; the most blocks on blockIdx.x, which holds 2^31 - 1 where y and z
// hold 65535).
// RUN: lora-opt %s --pass-pipeline="builtin.module(func.func(lora-tile-for-gpu{threads=128}))" | FileCheck %s
// RUN: lora-opt %s --pass-pipeline="builtin.module(func.func(lora-tile-for-gpu{threads=128}), func.func(convert-parallel-loops-to-gpu), canonicalize)" | FileCheck %s --check-prefix=LAUNCH
// RUN: not lora-opt %s --pass-pipeline="builtin.module(func.func(lora-tile-for-gpu{threads=2048}))" 2>&1 | FileCheck %s --check-prefix=BAD

// CHECK-LABEL: func.func @rows
// CHECK: %[[C128:.+]] = arith.constant 128 : index
// CHECK: %[[ONE:.+]] = arith.muli %{{.+}}, %{{.+}} : index
// CHECK: %[[STEP:.+]] = arith.muli %{{.+}}, %[[C128]] : index
// CHECK: scf.parallel (%{{.+}}, %{{.+}}) = (%{{.+}}, %{{.+}}) to (%{{.+}}, %{{.+}}) step (%[[ONE]], %[[STEP]])
// CHECK: scf.parallel
// CHECK: scf.if
// CHECK: {mapping = [#gpu.loop_dim_map<processor = sequential, {{.+}}>, #gpu.loop_dim_map<processor = thread_x, {{.+}}>]}
// CHECK: {mapping = [#gpu.loop_dim_map<processor = block_x, {{.+}}>, #gpu.loop_dim_map<processor = block_y, {{.+}}>]}
// 30 rows x 8 tiles of 128: grid 30 x 8.
// LAUNCH-LABEL: func.func @rows
// LAUNCH-DAG: %[[C1:.+]] = arith.constant 1 : index
// LAUNCH-DAG: %[[C8:.+]] = arith.constant 8 : index
// LAUNCH-DAG: %[[C30:.+]] = arith.constant 30 : index
// LAUNCH-DAG: %[[C128:.+]] = arith.constant 128 : index
// LAUNCH: gpu.launch blocks(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %[[C30]], %{{.+}} = %[[C8]], %{{.+}} = %[[C1]]) threads(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %[[C128]], %{{.+}} = %[[C1]], %{{.+}} = %[[C1]])
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

// Three dimensions: the innermost on threadIdx.x (256 threads would not fit
// on z); its 16 tiles on blockIdx.z, the 2048 rows on blockIdx.x.
// LAUNCH-LABEL: func.func @heads
// LAUNCH-DAG: %[[H1:.+]] = arith.constant 1 : index
// LAUNCH-DAG: %[[H16:.+]] = arith.constant 16 : index
// LAUNCH-DAG: %[[H128:.+]] = arith.constant 128 : index
// LAUNCH-DAG: %[[H2048:.+]] = arith.constant 2048 : index
// LAUNCH: gpu.launch blocks(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %[[H2048]], %{{.+}} = %[[H1]], %{{.+}} = %[[H16]]) threads(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %[[H128]], %{{.+}} = %[[H1]], %{{.+}} = %[[H1]])
func.func @heads(%a: memref<1x2048x2048xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2048 = arith.constant 2048 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i, %j, %k) = (%c0, %c0, %c0) to (%c1, %c2048, %c2048) step (%c1, %c1, %c1) {
    memref.store %zero, %a[%i, %j, %k] : memref<1x2048x2048xf32>
    scf.reduce
  }
  return
}

// 128256 rows (a vocabulary) of 64: more blocks than y or z holds, so the
// rows go on blockIdx.x.
// LAUNCH-LABEL: func.func @vocab
// LAUNCH-DAG: %[[V1:.+]] = arith.constant 1 : index
// LAUNCH-DAG: %[[V64:.+]] = arith.constant 64 : index
// LAUNCH-DAG: %[[VROWS:.+]] = arith.constant 128256 : index
// LAUNCH: gpu.launch blocks(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %[[VROWS]], %{{.+}} = %[[V1]], %{{.+}} = %[[V1]]) threads(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %[[V64]], %{{.+}} = %[[V1]], %{{.+}} = %[[V1]])
func.func @vocab(%a: memref<128256x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %rows = arith.constant 128256 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i, %j) = (%c0, %c0) to (%rows, %c64) step (%c1, %c1) {
    memref.store %zero, %a[%i, %j] : memref<128256x64xf32>
    scf.reduce
  }
  return
}

// BAD: lora-tile-for-gpu: threads must be in [1, 1024], got 2048
