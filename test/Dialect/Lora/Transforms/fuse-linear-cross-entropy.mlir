// lora-fuse-linear-cross-entropy: the loss and its backward on the output
// projection without the [tokens, vocab] logits.
// RUN: lora-opt %s -split-input-file -lora-autodiff -lora-fuse-linear-cross-entropy="chunk=128" -canonicalize -cse | FileCheck %s
// RUN: not lora-opt %s -split-input-file -lora-fuse-linear-cross-entropy="chunk=0" 2>&1 | FileCheck %s --check-prefix=CHUNK

// The lm_head trains: one op for the loss (its log-sum-exp kept), one for
// dH and dW; no logits, no cross_entropy_grad, no separate GEMMs.
// CHECK-LABEL: func.func @head_trains
// CHECK-SAME: (%[[H:[^:]+]]: tensor<2x8x16xf32>, %[[W:[^:]+]]: tensor<300x16xf32> {{.+}}, %[[L:[^:]+]]: tensor<2x8xi32>)
// CHECK: arith.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[LOSS:.+]], %[[LSE:.+]] = lora.linear_cross_entropy %[[H]], %[[W]], %[[L]] ignore_index(-100) chunk(128) : tensor<2x8x16xf32>, tensor<300x16xf32>, tensor<2x8xi32> -> tensor<2x8xf32>
// CHECK: %{{.+}}, %[[DW:.+]] = lora.linear_cross_entropy_grad %[[H]], %[[W]], %[[L]], %[[LSE]], %{{.+}} ignore_index(-100) chunk(128) : {{.+}} -> (tensor<2x8x16xf32>, tensor<300x16xf32>)
// CHECK-NOT: lora.linear
// CHECK-NOT: lora.cross_entropy
// CHECK: return %[[LOSS]], %[[DW]]
func.func @head_trains(%h: tensor<2x8x16xf32>,
    %w: tensor<300x16xf32> {lora.role = #lora.role<full>, lora.name = "lm_head.weight"},
    %labels: tensor<2x8xi32>) -> (tensor<f32> {lora.name = "loss"}) {
  %logits = lora.linear %h, %w : tensor<2x8x16xf32>, tensor<300x16xf32> -> tensor<2x8x300xf32>
  %loss = lora.cross_entropy %logits, %labels ignore_index(-100) : tensor<2x8x300xf32>, tensor<2x8xi32>
  return %loss : tensor<f32>
}

// -----

// A frozen head over a trained layer: the gradient op has no weight result.
// CHECK-LABEL: func.func @head_frozen
// CHECK: lora.linear %{{.+}}, %{{.+}} : tensor<2x8x16xf32>, tensor<16x16xf32>
// CHECK: lora.linear_cross_entropy %{{.+}} ignore_index(7)
// CHECK: %[[DH:.+]] = lora.linear_cross_entropy_grad {{.+}} ignore_index(7) chunk(128) : {{.+}} -> tensor<2x8x16xf32>
// CHECK: lora.linear_grad_weight %[[DH]]
func.func @head_frozen(%x: tensor<2x8x16xf32>,
    %w0: tensor<16x16xf32> {lora.role = #lora.role<full>, lora.name = "l0.weight"},
    %w: tensor<300x16xf32> {lora.role = #lora.role<frozen>, lora.name = "lm_head.weight"},
    %labels: tensor<2x8xi32>) -> (tensor<f32> {lora.name = "loss"}) {
  %h = lora.linear %x, %w0 : tensor<2x8x16xf32>, tensor<16x16xf32> -> tensor<2x8x16xf32>
  %logits = lora.linear %h, %w : tensor<2x8x16xf32>, tensor<300x16xf32> -> tensor<2x8x300xf32>
  %loss = lora.cross_entropy %logits, %labels ignore_index(7) : tensor<2x8x300xf32>, tensor<2x8xi32>
  return %loss : tensor<f32>
}

// -----

// Logits that are also returned stay materialized: nothing is fused.
// CHECK-LABEL: func.func @logits_returned
// CHECK: lora.cross_entropy
// CHECK-NOT: lora.linear_cross_entropy
func.func @logits_returned(%h: tensor<2x8x16xf32>,
    %w: tensor<300x16xf32> {lora.role = #lora.role<frozen>, lora.name = "lm_head.weight"},
    %labels: tensor<2x8xi32>) -> (tensor<f32>, tensor<2x8x300xf32>) {
  %logits = lora.linear %h, %w : tensor<2x8x16xf32>, tensor<300x16xf32> -> tensor<2x8x300xf32>
  %loss = lora.cross_entropy %logits, %labels ignore_index(-100) : tensor<2x8x300xf32>, tensor<2x8xi32>
  return %loss, %logits : tensor<f32>, tensor<2x8x300xf32>
}

// CHUNK: lora-fuse-linear-cross-entropy: chunk must be > 0, got 0
