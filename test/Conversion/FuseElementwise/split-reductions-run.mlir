// lora-split-reductions computes what the reductions it splits computed:
// row sums, row maxima and a whole-tensor sum of a 4 x 64 tensor
// (X[i][j] = i + j, so every partial sum is exact), run on the CPU with
// and without the split.
// RUN: lora-opt %s -lora-split-reductions="min-elements=16 chunk=4 row-min-elements=16 max-row-parts=4" | FileCheck %s --check-prefix=IR
// RUN: lora-opt %s -lora-split-reductions="min-elements=16 chunk=4 row-min-elements=16 max-row-parts=4" \
// RUN:   | mlir-opt -one-shot-bufferize="bufferize-function-boundaries" -convert-linalg-to-loops \
// RUN:       -expand-strided-metadata -lower-affine -convert-scf-to-cf -convert-vector-to-llvm \
// RUN:       -finalize-memref-to-llvm -convert-arith-to-llvm -convert-func-to-llvm -convert-cf-to-llvm \
// RUN:       -reconcile-unrealized-casts \
// RUN:   | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_c_runner_utils | FileCheck %s
// RUN: mlir-opt %s -one-shot-bufferize="bufferize-function-boundaries" -convert-linalg-to-loops \
// RUN:       -expand-strided-metadata -lower-affine -convert-scf-to-cf -convert-vector-to-llvm \
// RUN:       -finalize-memref-to-llvm -convert-arith-to-llvm -convert-func-to-llvm -convert-cf-to-llvm \
// RUN:       -reconcile-unrealized-casts \
// RUN:   | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_c_runner_utils | FileCheck %s

// Rows of 64 in 4 partials of 16 (innermost); the whole sum of 256 in 64
// partials of 4.
// IR: tensor.expand_shape %{{.*}} output_shape [4, 4, 16] : tensor<4x64xf32>
// IR: iterator_types = ["parallel", "parallel", "reduction"]
// IR: arith.addf
// IR: tensor.expand_shape %{{.*}} output_shape [4, 4, 16] : tensor<4x64xf32>
// IR: iterator_types = ["parallel", "parallel", "reduction"]
// IR: arith.maximumf
// IR: tensor.expand_shape %{{.*}} output_shape [64, 4] : tensor<256xf32>
// IR: tensor.concat dim(0) %{{.*}}, %{{.*}} : (tensor<64xf32>, tensor<64xf32>) -> tensor<128xf32>
// IR: ins(%{{.*}} : tensor<128xf32>) outs(%{{.*}} : tensor<f32>)

// Row sums 64 i + 2016, row maxima 63 + i, the sum twice: 2 x 8448.
// CHECK: 2016
// CHECK-NEXT: 2080
// CHECK-NEXT: 2144
// CHECK-NEXT: 2208
// CHECK-NEXT: 63
// CHECK-NEXT: 64
// CHECK-NEXT: 65
// CHECK-NEXT: 66
// CHECK-NEXT: 16896

#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
#in = affine_map<(i) -> (i)>
#all = affine_map<(i) -> ()>

func.func @main() {
  %empty = tensor.empty() : tensor<4x64xf32>
  %x = linalg.generic {indexing_maps = [#id], iterator_types = ["parallel", "parallel"]}
      outs(%empty : tensor<4x64xf32>) {
  ^bb0(%o: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %s = arith.addi %i, %j : index
    %si = arith.index_cast %s : index to i32
    %f = arith.sitofp %si : i32 to f32
    linalg.yield %f : f32
  } -> tensor<4x64xf32>
  %zero = arith.constant 0.0 : f32
  %lowest = arith.constant -1.0e30 : f32
  %rowsEmpty = tensor.empty() : tensor<4xf32>
  %sumInit = linalg.fill ins(%zero : f32) outs(%rowsEmpty : tensor<4xf32>) -> tensor<4xf32>
  %sums = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x64xf32>) outs(%sumInit : tensor<4xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %a = arith.addf %acc, %v : f32
    linalg.yield %a : f32
  } -> tensor<4xf32>
  %maxInit = linalg.fill ins(%lowest : f32) outs(%rowsEmpty : tensor<4xf32>) -> tensor<4xf32>
  %maxima = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : tensor<4x64xf32>) outs(%maxInit : tensor<4xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %m = arith.maximumf %acc, %v : f32
    linalg.yield %m : f32
  } -> tensor<4xf32>
  %flat = tensor.collapse_shape %x [[0, 1]] : tensor<4x64xf32> into tensor<256xf32>
  %scalarEmpty = tensor.empty() : tensor<f32>
  %totalInit = linalg.fill ins(%zero : f32) outs(%scalarEmpty : tensor<f32>) -> tensor<f32>
  %total = linalg.generic {indexing_maps = [#in, #all], iterator_types = ["reduction"]}
      ins(%flat : tensor<256xf32>) outs(%totalInit : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %a = arith.addf %acc, %v : f32
    linalg.yield %a : f32
  } -> tensor<f32>
  // A second sum from the first (a chain, as the gradient norm's): their
  // partials are added up once, at the end.
  %total2 = linalg.generic {indexing_maps = [#in, #all], iterator_types = ["reduction"]}
      ins(%flat : tensor<256xf32>) outs(%total : tensor<f32>) {
  ^bb0(%v: f32, %acc: f32):
    %a = arith.addf %acc, %v : f32
    linalg.yield %a : f32
  } -> tensor<f32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.for %r = %c0 to %c4 step %c1 {
    %v = tensor.extract %sums[%r] : tensor<4xf32>
    vector.print %v : f32
  }
  scf.for %r = %c0 to %c4 step %c1 {
    %v = tensor.extract %maxima[%r] : tensor<4xf32>
    vector.print %v : f32
  }
  %t = tensor.extract %total2[] : tensor<f32>
  vector.print %t : f32
  return
}
