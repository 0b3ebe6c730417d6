// lora-store-frozen-bf16: frozen f32 parameters become bf16 arguments
// (widened where they are read); trainable ones and the rest keep f32.
// lora-bf16-gemm-inputs: every GEMM gets bf16 inputs on tensors. A frozen
// weight feeds its GEMMs as stored, [W; A] is made in bf16 from W and the
// rounded A where each GEMM runs, gathered embedding rows and the loss's
// vocabulary chunks read the bf16 table and widen what they take, and
// activations are rounded (arith.truncf, which lora-fuse-elementwise merges
// into their producers).
// RUN: lora-opt %s -lora-store-frozen-bf16 | FileCheck %s --check-prefix=STORE
// RUN: lora-opt %s -lora-store-frozen-bf16 -lora-bf16-gemm-inputs | FileCheck %s

// STORE-LABEL: func.func @step
// STORE-SAME: %[[W:[^:]+]]: tensor<16x8xbf16> {lora.role = #lora.role<frozen>}
// STORE-SAME: %[[A:[^:]+]]: tensor<4x8xf32> {lora.role = #lora.role<lora>}
// STORE-SAME: %[[E:[^:]+]]: tensor<10x8xbf16> {lora.role = #lora.role<frozen>}
// STORE-SAME: %[[X:[^:]+]]: tensor<6x8xf32>
// STORE-SAME: %[[G:[^:]+]]: tensor<8xbf16> {lora.role = #lora.role<frozen>}
// STORE-NEXT: arith.extf %[[W]] : tensor<16x8xbf16> to tensor<16x8xf32>
// STORE-NEXT: arith.extf %[[E]] : tensor<10x8xbf16> to tensor<10x8xf32>
// STORE-NEXT: arith.extf %[[G]] : tensor<8xbf16> to tensor<8xf32>

// CHECK-LABEL: func.func @step
// CHECK-SAME: %[[W:[^:]+]]: tensor<16x8xbf16>
// CHECK-SAME: %[[A:[^:]+]]: tensor<4x8xf32>
// CHECK-SAME: %[[E:[^:]+]]: tensor<10x8xbf16>
// CHECK-SAME: %[[X:[^:]+]]: tensor<6x8xf32>
// CHECK-SAME: %[[G:[^:]+]]: tensor<8xbf16>
// Only the norm weight, read by a kernel of its own, is widened whole.
// CHECK-NOT: arith.extf %[[W]]
// CHECK-NOT: arith.extf %[[E]]
// CHECK: arith.extf %[[G]] : tensor<8xbf16> to tensor<8xf32>
// CHECK-NOT: arith.extf %[[W]]
// CHECK-NOT: arith.extf %[[E]]
// The gather reads one bf16 element and widens it.
// CHECK: %[[ONE:.+]] = tensor.extract %[[E]][%{{.+}}, %{{.+}}] : tensor<10x8xbf16>
// CHECK: arith.extf %[[ONE]] : bf16 to f32
// [X·Wᵀ | X·Aᵀ]: X rounded, [W; A] concatenated in bf16.
// CHECK: %[[XB:.+]] = arith.truncf %[[X]] : tensor<6x8xf32> to tensor<6x8xbf16>
// CHECK: %[[AB:.+]] = arith.truncf %[[A]] : tensor<4x8xf32> to tensor<4x8xbf16>
// CHECK: %[[WA:.+]] = tensor.concat dim(0) %[[W]], %[[AB]] : (tensor<16x8xbf16>, tensor<4x8xbf16>) -> tensor<20x8xbf16>
// CHECK: linalg.matmul{{.*}} ins(%[[XB]], %[[WA]] : tensor<6x8xbf16>, tensor<20x8xbf16>) outs(%{{.+}} : tensor<6x20xf32>)
// A chunk of the table: a bf16 slice, no widening.
// CHECK: %[[CHUNK:.+]] = tensor.extract_slice %[[E]][0, 0] [5, 8] [1, 1] : tensor<10x8xbf16> to tensor<5x8xbf16>
// CHECK: linalg.matmul{{.*}} ins(%{{.+}}, %[[CHUNK]] : tensor<6x8xbf16>, tensor<5x8xbf16>)
// The same [W; A] read by a second GEMM is made again there.
// CHECK: %[[AB2:.+]] = arith.truncf %[[A]]
// CHECK: %[[WA2:.+]] = tensor.concat dim(0) %[[W]], %[[AB2]]
// CHECK: linalg.matmul{{.*}} ins(%{{.+}}, %[[WA2]] : tensor<6x20xbf16>, tensor<20x8xbf16>)
// CHECK-NOT: tensor<20x8xf32>
// CHECK: return
func.func @step(%w: tensor<16x8xf32> {lora.role = #lora.role<frozen>},
                %a: tensor<4x8xf32> {lora.role = #lora.role<lora>},
                %e: tensor<10x8xf32> {lora.role = #lora.role<frozen>},
                %x: tensor<6x8xf32>,
                %g: tensor<8xf32> {lora.role = #lora.role<frozen>},
                %ids: tensor<6xindex>, %dy: tensor<6x20xf32>)
    -> (tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x20xf32>, tensor<6x5xf32>, tensor<6x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %normed = linalg.generic {indexing_maps = [affine_map<(n, d) -> (n, d)>, affine_map<(n, d) -> (d)>, affine_map<(n, d) -> (n, d)>], iterator_types = ["parallel", "parallel"]}
      ins(%x, %g : tensor<6x8xf32>, tensor<8xf32>) outs(%x : tensor<6x8xf32>) {
  ^bb0(%in: f32, %scale: f32, %out: f32):
    %p = arith.mulf %in, %scale : f32
    linalg.yield %p : f32
  } -> tensor<6x8xf32>
  %rows = linalg.generic {indexing_maps = [affine_map<(n, d) -> (n)>, affine_map<(n, d) -> (n, d)>], iterator_types = ["parallel", "parallel"]}
      ins(%ids : tensor<6xindex>) outs(%x : tensor<6x8xf32>) {
  ^bb0(%id: index, %out: f32):
    %d = linalg.index 1 : index
    %v = tensor.extract %e[%id, %d] : tensor<10x8xf32>
    linalg.yield %v : f32
  } -> tensor<6x8xf32>
  %wa = tensor.concat dim(0) %w, %a : (tensor<16x8xf32>, tensor<4x8xf32>) -> tensor<20x8xf32>
  %empty = tensor.empty() : tensor<6x20xf32>
  %c = linalg.fill ins(%zero : f32) outs(%empty : tensor<6x20xf32>) -> tensor<6x20xf32>
  %y = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %wa : tensor<6x8xf32>, tensor<20x8xf32>) outs(%c : tensor<6x20xf32>) -> tensor<6x20xf32>
  %chunk = tensor.extract_slice %e[0, 0] [5, 8] [1, 1] : tensor<10x8xf32> to tensor<5x8xf32>
  %empty5 = tensor.empty() : tensor<6x5xf32>
  %c5 = linalg.fill ins(%zero : f32) outs(%empty5 : tensor<6x5xf32>) -> tensor<6x5xf32>
  %logits = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %chunk : tensor<6x8xf32>, tensor<5x8xf32>) outs(%c5 : tensor<6x5xf32>) -> tensor<6x5xf32>
  %empty8 = tensor.empty() : tensor<6x8xf32>
  %c8 = linalg.fill ins(%zero : f32) outs(%empty8 : tensor<6x8xf32>) -> tensor<6x8xf32>
  %dx = linalg.matmul ins(%dy, %wa : tensor<6x20xf32>, tensor<20x8xf32>) outs(%c8 : tensor<6x8xf32>) -> tensor<6x8xf32>
  return %normed, %rows, %y, %logits, %dx : tensor<6x8xf32>, tensor<6x8xf32>, tensor<6x20xf32>, tensor<6x5xf32>, tensor<6x8xf32>
}
