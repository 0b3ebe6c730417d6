// lora-split-reductions: a whole-tensor sum becomes partial sums over
// contiguous chunks (a parallel loop) and a sum of the partials.
// RUN: lora-opt %s -split-input-file -lora-split-reductions | FileCheck %s
// RUN: lora-opt %s -split-input-file -lora-split-reductions="min-elements=16 chunk=4 max-parts=8" | FileCheck %s --check-prefix=SMALL

#in = affine_map<(i) -> (i)>
#all = affine_map<(i) -> ()>

// A gradient's sum of squares, accumulated onto a running total: 128
// partials of 64 elements, then the partials onto the total.
// CHECK-LABEL: func.func @sum_of_squares
// CHECK-SAME: (%[[X:.*]]: tensor<8192xf32>, %[[TOTAL:.*]]: tensor<f32>)
// CHECK: %[[CHUNKS:.*]] = tensor.expand_shape %[[X]] {{\[\[}}0, 1]] output_shape [128, 64]
// CHECK: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[INIT:.*]] = linalg.fill ins(%[[ZERO]] : f32) outs(%{{.*}} : tensor<128xf32>)
// CHECK: %[[PARTS:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[CHUNKS]] : tensor<128x64xf32>) outs(%[[INIT]] : tensor<128xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} iterator_types = ["reduction"]} ins(%[[PARTS]] : tensor<128xf32>) outs(%[[TOTAL]] : tensor<f32>)
// CHECK: arith.addf
// CHECK: return %[[SUM]]
func.func @sum_of_squares(%x: tensor<8192xf32>, %total: tensor<f32>) -> tensor<f32> {
  %r = linalg.generic {indexing_maps = [#in, #all], iterator_types = ["reduction"]}
      ins(%x : tensor<8192xf32>) outs(%total : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %s = arith.addf %acc, %sq : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  return %r : tensor<f32>
}

// -----

#in = affine_map<(i) -> (i)>
#all = affine_map<(i) -> ()>

// 22016 = 2^9 * 43: 512 parts would leave chunks of 43, under 64, so 256.
// The loss's shape: labels and values read together.
// CHECK-LABEL: func.func @largest_power_of_two
// CHECK-DAG: tensor.expand_shape %{{.*}} output_shape [256, 86] : tensor<22016xi32>
// CHECK-DAG: tensor.expand_shape %{{.*}} output_shape [256, 86] : tensor<22016xf32>
// CHECK: iterator_types = ["parallel", "reduction"]
// CHECK: arith.select
// SMALL-LABEL: func.func @largest_power_of_two
// SMALL: output_shape [8, 2752]
func.func @largest_power_of_two(%labels: tensor<22016xi32>, %x: tensor<22016xf32>, %total: tensor<f32>) -> tensor<f32> {
  %r = linalg.generic {indexing_maps = [#in, #in, #all], iterator_types = ["reduction"]}
      ins(%labels, %x : tensor<22016xi32>, tensor<22016xf32>) outs(%total : tensor<f32>) {
  ^bb0(%l: i32, %v: f32, %acc: f32):
    %ignore = arith.constant -100 : i32
    %zero = arith.constant 0.0 : f32
    %keep = arith.cmpi ne, %l, %ignore : i32
    %term = arith.select %keep, %v, %zero : f32
    %s = arith.addf %acc, %term : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  return %r : tensor<f32>
}

// -----

#in = affine_map<(i) -> (i)>
#all = affine_map<(i) -> ()>

// Left alone: under min-elements (2048), an odd size (4097), and a
// combiner with no identity (subtraction). With the small options, 2048
// splits into 8 parts.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: tensor.expand_shape
// CHECK: return
// SMALL-LABEL: func.func @left_alone
// SMALL: output_shape [8, 256] : tensor<2048xf32>
// SMALL-NOT: tensor.expand_shape
// SMALL: return
func.func @left_alone(%a: tensor<2048xf32>, %b: tensor<4097xf32>, %c: tensor<8192xf32>, %total: tensor<f32>) -> (tensor<f32>, tensor<f32>, tensor<f32>) {
  %ra = linalg.generic {indexing_maps = [#in, #all], iterator_types = ["reduction"]}
      ins(%a : tensor<2048xf32>) outs(%total : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  %rb = linalg.generic {indexing_maps = [#in, #all], iterator_types = ["reduction"]}
      ins(%b : tensor<4097xf32>) outs(%total : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  %rc = linalg.generic {indexing_maps = [#in, #all], iterator_types = ["reduction"]}
      ins(%c : tensor<8192xf32>) outs(%total : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.subf %acc, %v : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  return %ra, %rb, %rc : tensor<f32>, tensor<f32>, tensor<f32>
}

// -----

#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>

// A row reduction already has a parallel loop.
// CHECK-LABEL: func.func @rows
// CHECK-NOT: tensor.expand_shape
func.func @rows(%x: tensor<64x4096xf32>, %out: tensor<64xf32>) -> tensor<64xf32> {
  %r = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<64x4096xf32>) outs(%out : tensor<64xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  } -> tensor<64xf32>
  return %r : tensor<64xf32>
}

// -----

#in = affine_map<(i) -> (i)>
#all = affine_map<(i) -> ()>

// A chain (the gradient norm: each sum starts from the one before) keeps
// every sum's partials, concatenates them and adds them all up once, into
// the chain's first total.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%[[A:.*]]: tensor<8192xf32>, %[[B:.*]]: tensor<4096xf32>, %[[TOTAL:.*]]: tensor<f32>)
// CHECK: %[[PA:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<128x64xf32>) outs(%{{.*}} : tensor<128xf32>)
// CHECK-NOT: iterator_types = ["reduction"]
// CHECK: %[[PB:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<64x64xf32>) outs(%{{.*}} : tensor<64xf32>)
// CHECK: %[[ALL:.*]] = tensor.concat dim(0) %[[PA]], %[[PB]] : (tensor<128xf32>, tensor<64xf32>) -> tensor<192xf32>
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} iterator_types = ["reduction"]} ins(%[[ALL]] : tensor<192xf32>) outs(%[[TOTAL]] : tensor<f32>)
// CHECK-NOT: linalg.generic
// CHECK: return %[[SUM]]
func.func @chain(%a: tensor<8192xf32>, %b: tensor<4096xf32>, %total: tensor<f32>) -> tensor<f32> {
  %ra = linalg.generic {indexing_maps = [#in, #all], iterator_types = ["reduction"]}
      ins(%a : tensor<8192xf32>) outs(%total : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %s = arith.addf %acc, %sq : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  %rb = linalg.generic {indexing_maps = [#in, #all], iterator_types = ["reduction"]}
      ins(%b : tensor<4096xf32>) outs(%ra : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %sq = arith.mulf %v, %v : f32
    %s = arith.addf %acc, %sq : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  return %rb : tensor<f32>
}
