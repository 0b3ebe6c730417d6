// lora-autodiff: gradients for trainable parameters only.
// RUN: lora-opt %s -split-input-file -verify-diagnostics -lora-autodiff | FileCheck %s

// An adapted frozen layer under a fully trained one. The frozen weight %w1
// gets no weight-gradient GEMM, and since %x is an input, no input
// gradient flows into it either.
// CHECK-LABEL: func.func @lora_and_full
// CHECK-SAME: (%[[X:[^:]+]]: tensor<2x16xf32>, %[[W1:[^:]+]]: tensor<16x16xf32> {{.+}}, %[[A:[^:]+]]: tensor<4x16xf32> {{.+}}, %[[B:[^:]+]]: tensor<16x4xf32> {{.+}}, %[[W2:[^:]+]]: tensor<8x16xf32> {{.+}}, %[[LABELS:[^:]+]]: tensor<2xi32>)
// CHECK-SAME: -> (tensor<f32> {lora.name = "loss"}, tensor<4x16xf32> {lora.name = "l1.lora_A.weight.grad"}, tensor<16x4xf32> {lora.name = "l1.lora_B.weight.grad"}, tensor<8x16xf32> {lora.name = "l2.weight.grad"})
// CHECK: %[[H:.+]] = lora.linear %[[X]], %[[W1]] adapter
// CHECK: %[[L:.+]] = lora.linear %[[H]], %[[W2]] :
// CHECK: %[[LOSS:.+]] = lora.cross_entropy %[[L]], %[[LABELS]]
// CHECK: %[[ONE:.+]] = arith.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[DL:.+]] = lora.cross_entropy_grad %[[L]], %[[LABELS]], %[[ONE]]
// CHECK: %[[DW2:.+]] = lora.linear_grad_weight %[[DL]], %[[H]] : tensor<2x8xf32>, tensor<2x16xf32> -> tensor<8x16xf32>
// CHECK: %[[DH:.+]] = lora.linear_grad_input %[[DL]], %[[W2]] : tensor<2x8xf32>, tensor<8x16xf32> -> tensor<2x16xf32>
// CHECK: %[[U:.+]] = lora.linear %[[X]], %[[A]] : tensor<2x16xf32>, tensor<4x16xf32> -> tensor<2x4xf32>
// CHECK: %[[DB:.+]] = lora.linear_grad_weight %[[DH]], %[[U]] scale(2.000000e+00) : tensor<2x16xf32>, tensor<2x4xf32> -> tensor<16x4xf32>
// CHECK: %[[DU:.+]] = lora.linear_grad_input %[[DH]], %[[B]] scale(2.000000e+00) : tensor<2x16xf32>, tensor<16x4xf32> -> tensor<2x4xf32>
// CHECK: %[[DA:.+]] = lora.linear_grad_weight %[[DU]], %[[X]] : tensor<2x4xf32>, tensor<2x16xf32> -> tensor<4x16xf32>
// CHECK-NOT: lora.linear_grad
// CHECK: return %[[LOSS]], %[[DA]], %[[DB]], %[[DW2]]
func.func @lora_and_full(%x: tensor<2x16xf32>,
    %w1: tensor<16x16xf32> {lora.role = #lora.role<frozen>, lora.name = "l1.weight"},
    %a: tensor<4x16xf32> {lora.role = #lora.role<lora>, lora.name = "l1.lora_A.weight"},
    %b: tensor<16x4xf32> {lora.role = #lora.role<lora>, lora.name = "l1.lora_B.weight"},
    %w2: tensor<8x16xf32> {lora.role = #lora.role<full>, lora.name = "l2.weight"},
    %labels: tensor<2xi32>) -> (tensor<f32> {lora.name = "loss"}) {
  %h = lora.linear %x, %w1 adapter(%a, %b : tensor<4x16xf32>, tensor<16x4xf32>) scale(2.0) : tensor<2x16xf32>, tensor<16x16xf32> -> tensor<2x16xf32>
  %l = lora.linear %h, %w2 : tensor<2x16xf32>, tensor<8x16xf32> -> tensor<2x8xf32>
  %loss = lora.cross_entropy %l, %labels ignore_index(-100) : tensor<2x8xf32>, tensor<2xi32>
  return %loss : tensor<f32>
}

// -----

// Only the top layer trains: the frozen embedding, norm and first layer
// below it get no backward op at all; adapter dropout reuses its seed in the
// backward; an adapter input that is active gets dX through W and A.
// CHECK-LABEL: func.func @top_layer_only
// CHECK-NOT: lora.embedding_grad
// CHECK-NOT: lora.rms_norm_grad
// CHECK: %[[D:.+]] = lora.dropout %[[N:.+]] rate(1.000000e-01) seed(%[[SEED:[^)]+]])
// CHECK: lora.linear %[[D]], %{{.+}} : tensor<2x3x16xf32>, tensor<4x16xf32> -> tensor<2x3x4xf32>
// CHECK: lora.linear_grad_weight %[[DU:[^,]+]], %[[D]] :
// CHECK-NOT: lora.linear_grad_input
// CHECK-NOT: lora.rms_norm_grad
// CHECK: return
func.func @top_layer_only(%ids: tensor<2x3xi32>, %labels: tensor<2x3xi32>, %seed: tensor<i64>,
    %embed: tensor<32x16xf32> {lora.role = #lora.role<frozen>, lora.name = "model.embed_tokens.weight"},
    %norm: tensor<16xf32> {lora.role = #lora.role<frozen>, lora.name = "model.norm.weight"},
    %w: tensor<32x16xf32> {lora.role = #lora.role<frozen>, lora.name = "lm_head.weight"},
    %a: tensor<4x16xf32> {lora.role = #lora.role<lora>, lora.name = "lm_head.lora_A.weight"},
    %b: tensor<32x4xf32> {lora.role = #lora.role<lora>, lora.name = "lm_head.lora_B.weight"}) -> tensor<f32> {
  %h = lora.embedding %embed[%ids] : tensor<32x16xf32>, tensor<2x3xi32> -> tensor<2x3x16xf32>
  %n = lora.rms_norm %h, %norm eps(1.0e-5) : tensor<2x3x16xf32>, tensor<16xf32>
  %l = lora.linear %n, %w adapter(%a, %b : tensor<4x16xf32>, tensor<32x4xf32>) scale(0.5) dropout(0.1, %seed) : tensor<2x3x16xf32>, tensor<32x16xf32> -> tensor<2x3x32xf32>
  %loss = lora.cross_entropy %l, %labels ignore_index(-100) : tensor<2x3x32xf32>, tensor<2x3xi32>
  return %loss : tensor<f32>
}

// -----

// Gradients flow through every forward op; a residual that uses a value
// twice accumulates both contributions; a trainable norm weight gets its
// gradient from rms_norm_grad; a parameter the loss ignores gets zeros.
// CHECK-LABEL: func.func @every_op
// CHECK-DAG: lora.embedding_grad
// CHECK-DAG: lora.rms_norm_grad
// CHECK-DAG: lora.rope_grad
// CHECK-DAG: lora.attention_grad
// CHECK-DAG: lora.swiglu_grad
// CHECK-DAG: %[[ZERO:.+]] = arith.constant dense<0.000000e+00> : tensor<8xf32>
// CHECK: return %{{.+}}, %{{.+}}, %{{.+}}, %[[ZERO]] :
func.func @every_op(%ids: tensor<1x4xi32>, %pos: tensor<1x4xi32>, %labels: tensor<1x4xi32>,
    %embed: tensor<16x8xf32> {lora.role = #lora.role<full>, lora.name = "model.embed_tokens.weight"},
    %norm: tensor<8xf32> {lora.role = #lora.role<full>, lora.name = "model.norm.weight"},
    %unused: tensor<8xf32> {lora.role = #lora.role<full>, lora.name = "unused.weight"}) -> tensor<f32> {
  %h = lora.embedding %embed[%ids] : tensor<16x8xf32>, tensor<1x4xi32> -> tensor<1x4x8xf32>
  %n = lora.rms_norm %h, %norm eps(1.0e-5) : tensor<1x4x8xf32>, tensor<8xf32>
  %r = lora.rope %n, %pos theta(10000.0) head_dim(4) : tensor<1x4x8xf32>, tensor<1x4xi32>
  %att = lora.attention %r, %n, %n heads(2) kv_heads(2) head_dim(4) : tensor<1x4x8xf32>, tensor<1x4x8xf32>, tensor<1x4x8xf32>
  %s = lora.swiglu %att, %h : tensor<1x4x8xf32>
  %res = lora.add %s, %s : tensor<1x4x8xf32>
  %logits = lora.linear %res, %embed : tensor<1x4x8xf32>, tensor<16x8xf32> -> tensor<1x4x16xf32>
  %loss = lora.cross_entropy %logits, %labels ignore_index(-100) : tensor<1x4x16xf32>, tensor<1x4xi32>
  return %loss : tensor<f32>
}

// -----

// Nothing trains: the function is left alone (an evaluation step).
// CHECK-LABEL: func.func @frozen
// CHECK-NOT: grad
// CHECK: return %{{.+}} : tensor<f32>
func.func @frozen(%x: tensor<2x16xf32>, %w: tensor<8x16xf32> {lora.role = #lora.role<frozen>}, %labels: tensor<2xi32>) -> tensor<f32> {
  %l = lora.linear %x, %w : tensor<2x16xf32>, tensor<8x16xf32> -> tensor<2x8xf32>
  %loss = lora.cross_entropy %l, %labels ignore_index(-100) : tensor<2x8xf32>, tensor<2xi32>
  return %loss : tensor<f32>
}

// -----

// expected-error @+1 {{lora-autodiff: @two_results must return exactly the loss (tensor<f32>), got 2 results; was the pass already applied?}}
func.func @two_results(%x: tensor<2x16xf32>, %w: tensor<8x16xf32> {lora.role = #lora.role<full>}, %labels: tensor<2xi32>) -> (tensor<f32>, tensor<f32>) {
  %l = lora.linear %x, %w : tensor<2x16xf32>, tensor<8x16xf32> -> tensor<2x8xf32>
  %loss = lora.cross_entropy %l, %labels ignore_index(-100) : tensor<2x8xf32>, tensor<2xi32>
  return %loss, %loss : tensor<f32>, tensor<f32>
}

// -----

func.func @no_rule(%x: tensor<2x16xf32>, %w: tensor<8x16xf32> {lora.role = #lora.role<full>}, %labels: tensor<2xi32>) -> tensor<f32> {
  %l = lora.linear %x, %w : tensor<2x16xf32>, tensor<8x16xf32> -> tensor<2x8xf32>
  // expected-error @+1 {{lora-autodiff: no gradient rule for 'arith.negf', which depends on a trainable parameter}}
  %n = arith.negf %l : tensor<2x8xf32>
  %loss = lora.cross_entropy %n, %labels ignore_index(-100) : tensor<2x8xf32>, tensor<2xi32>
  return %loss : tensor<f32>
}
