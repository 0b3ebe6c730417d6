// lora-fuse-adapters: one GEMM per adapted layer and direction.
// RUN: lora-opt %s -split-input-file -lora-autodiff -lora-fuse-adapters -canonicalize -cse | FileCheck %s

// LoRA on a frozen layer whose input needs a gradient (%h comes from a
// trained layer). Forward: [Y0 | U] = X·[W; A]ᵀ, then Y0 += s·U·Bᵀ.
// Backward: U is the forward's; dX = [dY | dU]·[W; A] is one GEMM with
// K = out + r; no add, no dY·W or dU·A of their own.
// CHECK-LABEL: func.func @lora_layer
// CHECK-SAME: (%[[X:[^:]+]]: tensor<2x16xf32>, %[[W0:[^:]+]]: tensor<16x16xf32> {{.+}}, %[[W:[^:]+]]: tensor<16x16xf32> {{.+}}, %[[A:[^:]+]]: tensor<4x16xf32> {{.+}}, %[[B:[^:]+]]: tensor<16x4xf32>
// CHECK: %[[H:.+]] = lora.linear %[[X]], %[[W0]] :
// CHECK: %[[WCAT:.+]] = tensor.concat dim(0) %[[W]], %[[A]] : (tensor<16x16xf32>, tensor<4x16xf32>) -> tensor<20x16xf32>
// CHECK: %[[YU:.+]] = lora.linear %[[H]], %[[WCAT]] : tensor<2x16xf32>, tensor<20x16xf32> -> tensor<2x20xf32>
// CHECK-DAG: %[[Y0:.+]] = tensor.extract_slice %[[YU]][0, 0] [2, 16] [1, 1]
// CHECK-DAG: %[[U:.+]] = tensor.extract_slice %[[YU]][0, 16] [2, 4] [1, 1]
// CHECK: %[[Y:.+]] = lora.low_rank_update %[[Y0]], %[[U]], %[[B]] scale(2.000000e+00)
// CHECK: lora.cross_entropy %[[Y]]
// CHECK: %[[DY:.+]] = lora.cross_entropy_grad
// CHECK-NOT: lora.linear %[[H]], %[[A]]
// dU = s·dY·B, dB = s·dYᵀ·U and dA = dUᵀ·X from one op (one pass over dY
// and X on the CPU), and no GEMM of their own.
// CHECK: %[[DU:[^,]+]], %{{[^,]+}}, %{{[^ ]+}} = lora.adapter_grad %[[DY]], %[[B]], %[[U]] input(%[[H]] : tensor<2x16xf32>) scale(2.000000e+00) : tensor<2x16xf32>, tensor<16x4xf32>, tensor<2x4xf32> -> tensor<2x4xf32>, tensor<16x4xf32>, tensor<4x16xf32>
// CHECK-NOT: lora.linear_grad_weight %[[DY]], %[[U]]
// CHECK-NOT: lora.linear_grad_input %[[DY]], %[[B]]
// CHECK: %[[DYU:.+]] = tensor.concat dim(1) %[[DY]], %[[DU]] : (tensor<2x16xf32>, tensor<2x4xf32>) -> tensor<2x20xf32>
// CHECK-NOT: lora.linear_grad_weight %[[DU]]
// CHECK: %[[DH:.+]] = lora.linear_grad_input %[[DYU]], %[[WCAT]] : tensor<2x20xf32>, tensor<20x16xf32> -> tensor<2x16xf32>
// CHECK-NOT: lora.add
// CHECK-NOT: lora.linear_grad_input %[[DY]], %[[W]]
// CHECK-NOT: lora.linear_grad_input %[[DU]], %[[A]]
// CHECK: lora.linear_grad_weight %[[DH]], %[[X]]
func.func @lora_layer(%x: tensor<2x16xf32>,
    %w0: tensor<16x16xf32> {lora.role = #lora.role<full>, lora.name = "l0.weight"},
    %w: tensor<16x16xf32> {lora.role = #lora.role<frozen>, lora.name = "l1.weight"},
    %a: tensor<4x16xf32> {lora.role = #lora.role<lora>, lora.name = "l1.lora_A.weight"},
    %b: tensor<16x4xf32> {lora.role = #lora.role<lora>, lora.name = "l1.lora_B.weight"},
    %labels: tensor<2xi32>) -> (tensor<f32> {lora.name = "loss"}) {
  %h = lora.linear %x, %w0 : tensor<2x16xf32>, tensor<16x16xf32> -> tensor<2x16xf32>
  %y = lora.linear %h, %w adapter(%a, %b : tensor<4x16xf32>, tensor<16x4xf32>) scale(2.0) : tensor<2x16xf32>, tensor<16x16xf32> -> tensor<2x16xf32>
  %loss = lora.cross_entropy %y, %labels ignore_index(-100) : tensor<2x16xf32>, tensor<2xi32>
  return %loss : tensor<f32>
}

// -----

// W trains too (full and LoRA on one layer): [dW; dA] = [dY | dU]ᵀ·X is one
// GEMM, split by rows; lora.adapter_grad makes dU and dB only.
// CHECK-LABEL: func.func @base_and_adapter_train
// CHECK: %[[DU:[^,]+]], %{{[^ ]+}} = lora.adapter_grad %{{.+}}, %{{.+}}, %{{.+}} scale(2.000000e+00) : tensor<2x3x16xf32>, tensor<16x4xf32>, tensor<2x3x4xf32> -> tensor<2x3x4xf32>, tensor<16x4xf32>
// CHECK: %[[DYU:.+]] = tensor.concat dim(2) %{{.+}}, %[[DU]] : (tensor<2x3x16xf32>, tensor<2x3x4xf32>) -> tensor<2x3x20xf32>
// CHECK: %[[BOTH:.+]] = lora.linear_grad_weight %[[DYU]], %{{.+}} : tensor<2x3x20xf32>, tensor<2x3x16xf32> -> tensor<20x16xf32>
// CHECK-DAG: tensor.extract_slice %[[BOTH]][0, 0] [16, 16] [1, 1] : tensor<20x16xf32> to tensor<16x16xf32>
// CHECK-DAG: tensor.extract_slice %[[BOTH]][16, 0] [4, 16] [1, 1] : tensor<20x16xf32> to tensor<4x16xf32>
// CHECK-NOT: lora.linear_grad_weight %{{.+}} : tensor<2x3x16xf32>, tensor<2x3x16xf32> -> tensor<16x16xf32>
func.func @base_and_adapter_train(%x: tensor<2x3x16xf32>,
    %w: tensor<16x16xf32> {lora.role = #lora.role<full>, lora.name = "l1.weight"},
    %a: tensor<4x16xf32> {lora.role = #lora.role<lora>, lora.name = "l1.lora_A.weight"},
    %b: tensor<16x4xf32> {lora.role = #lora.role<lora>, lora.name = "l1.lora_B.weight"},
    %labels: tensor<2x3xi32>) -> (tensor<f32> {lora.name = "loss"}) {
  %y = lora.linear %x, %w adapter(%a, %b : tensor<4x16xf32>, tensor<16x4xf32>) scale(2.0) : tensor<2x3x16xf32>, tensor<16x16xf32> -> tensor<2x3x16xf32>
  %loss = lora.cross_entropy %y, %labels ignore_index(-100) : tensor<2x3x16xf32>, tensor<2x3xi32>
  return %loss : tensor<f32>
}

// -----

// Adapter dropout: the adapter reads dropout(X), so nothing is
// concatenated with X, but the rank-r update goes into the base output and
// dU, dB, dA = dUᵀ·dropout(X) are one op, on the forward's dropout(X) and
// U (the backward computes neither again).
// CHECK-LABEL: func.func @dropout
// CHECK-SAME: (%[[X:[^:]+]]: tensor<2x16xf32>, %[[W:[^:]+]]: tensor<16x16xf32> {{.+}}, %[[A:[^:]+]]: tensor<4x16xf32> {{.+}}, %[[B:[^:]+]]: tensor<16x4xf32> {{.+}}, %{{.+}}: tensor<2xi32>, %[[SEED:[^:]+]]: tensor<i64>)
// CHECK-NOT: tensor.concat
// CHECK: %[[Y0:.+]] = lora.linear %[[X]], %[[W]] : tensor<2x16xf32>, tensor<16x16xf32> -> tensor<2x16xf32>
// CHECK: %[[XD:.+]] = lora.dropout %[[X]] rate(1.000000e-01) seed(%[[SEED]])
// CHECK: %[[U:.+]] = lora.linear %[[XD]], %[[A]] : tensor<2x16xf32>, tensor<4x16xf32> -> tensor<2x4xf32>
// CHECK: %[[Y:.+]] = lora.low_rank_update %[[Y0]], %[[U]], %[[B]] scale(2.000000e+00)
// CHECK-NOT: lora.dropout %[[X]]
// CHECK-NOT: lora.linear %[[XD]]
// CHECK: lora.adapter_grad %{{.+}}, %[[B]], %[[U]] input(%[[XD]] : tensor<2x16xf32>) scale(2.000000e+00)
// CHECK-NOT: lora.linear_grad_weight
func.func @dropout(%x: tensor<2x16xf32>,
    %w: tensor<16x16xf32> {lora.role = #lora.role<frozen>, lora.name = "l1.weight"},
    %a: tensor<4x16xf32> {lora.role = #lora.role<lora>, lora.name = "l1.lora_A.weight"},
    %b: tensor<16x4xf32> {lora.role = #lora.role<lora>, lora.name = "l1.lora_B.weight"},
    %labels: tensor<2xi32>, %seed: tensor<i64>) -> (tensor<f32> {lora.name = "loss"}) {
  %y = lora.linear %x, %w adapter(%a, %b : tensor<4x16xf32>, tensor<16x4xf32>) scale(2.0) dropout(0.1, %seed) : tensor<2x16xf32>, tensor<16x16xf32> -> tensor<2x16xf32>
  %loss = lora.cross_entropy %y, %labels ignore_index(-100) : tensor<2x16xf32>, tensor<2xi32>
  return %loss : tensor<f32>
}
