// Every lora op parses, prints and re-parses, in the custom and the generic
// form (the second RUN line goes through the generic printer).
// RUN: lora-opt %s -split-input-file | lora-opt -split-input-file | FileCheck %s
// RUN: lora-opt %s -split-input-file --mlir-print-op-generic | lora-opt -split-input-file | FileCheck %s

// Parameter roles and names survive as argument attributes.
// CHECK-LABEL: func.func @roles
// CHECK-SAME: lora.name = "model.embed_tokens.weight", lora.role = #lora.role<frozen>
// CHECK-SAME: lora.name = "model.layers.0.self_attn.q_proj.lora_A.weight", lora.role = #lora.role<lora>
// CHECK-SAME: lora.role = #lora.role<full>
func.func @roles(%e: tensor<256x64xf32> {lora.role = #lora.role<frozen>, lora.name = "model.embed_tokens.weight"},
                 %a: tensor<8x64xf32> {lora.role = #lora.role<lora>, lora.name = "model.layers.0.self_attn.q_proj.lora_A.weight"},
                 %w: tensor<64x64xbf16> {lora.role = #lora.role<full>}) {
  return
}

// -----

// CHECK-LABEL: func.func @embedding
// CHECK: %[[H:.+]] = lora.embedding %{{.+}}[%{{.+}}] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
// CHECK: lora.embedding_grad %[[H]][%{{.+}}] : tensor<2x16x64xf32>, tensor<2x16xi32> -> tensor<256x64xf32>
func.func @embedding(%table: tensor<256x64xf32>, %ids: tensor<2x16xi32>) -> tensor<256x64xf32> {
  %h = lora.embedding %table[%ids] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
  %d = lora.embedding_grad %h[%ids] : tensor<2x16x64xf32>, tensor<2x16xi32> -> tensor<256x64xf32>
  return %d : tensor<256x64xf32>
}

// -----

// CHECK-LABEL: func.func @rms_norm
// CHECK: %[[N:.+]] = lora.rms_norm %[[X:.+]], %[[W:.+]] eps(1.000000e-05) : tensor<2x16x64xf32>, tensor<64xf32>
// CHECK: lora.rms_norm_grad %[[X]], %[[W]], %[[N]] eps(1.000000e-05) : tensor<2x16x64xf32>, tensor<64xf32>
func.func @rms_norm(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>) -> (tensor<2x16x64xf32>, tensor<64xf32>) {
  %n = lora.rms_norm %x, %w eps(1.0e-5) : tensor<2x16x64xf32>, tensor<64xf32>
  %dx, %dw = lora.rms_norm_grad %x, %w, %n eps(1.0e-5) : tensor<2x16x64xf32>, tensor<64xf32>
  return %dx, %dw : tensor<2x16x64xf32>, tensor<64xf32>
}

// -----

// A linear layer without an adapter, with one, and with adapter dropout;
// dynamic batch and sequence dims are allowed.
// CHECK-LABEL: func.func @linear
// CHECK: lora.linear %{{.+}}, %{{.+}} : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
// CHECK: lora.linear %{{.+}}, %{{.+}} adapter(%{{.+}}, %{{.+}} : tensor<8x64xf32>, tensor<128x8xf32>) scale(2.000000e+00) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
// CHECK: lora.linear %{{.+}}, %{{.+}} adapter(%{{.+}}, %{{.+}} : tensor<8x64xf32>, tensor<128x8xf32>) scale(5.000000e-01) dropout(1.000000e-01, %{{.+}}) : tensor<?x?x64xf32>, tensor<128x64xf32> -> tensor<?x?x128xf32>
func.func @linear(%x: tensor<2x16x64xf32>, %xd: tensor<?x?x64xf32>, %w: tensor<128x64xf32>,
                  %a: tensor<8x64xf32>, %b: tensor<128x8xf32>, %seed: tensor<i64>) {
  %0 = lora.linear %x, %w : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  %1 = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x8xf32>) scale(2.0) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  %2 = lora.linear %xd, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x8xf32>) scale(0.5) dropout(0.1, %seed) : tensor<?x?x64xf32>, tensor<128x64xf32> -> tensor<?x?x128xf32>
  return
}

// -----

// The three GEMMs of a linear layer's backward and the dropout they share.
// CHECK-LABEL: func.func @linear_grads
// CHECK: lora.linear_grad_input %{{.+}}, %{{.+}} : tensor<2x16x128xf32>, tensor<128x64xf32> -> tensor<2x16x64xf32>
// CHECK: lora.linear_grad_input %{{.+}}, %{{.+}} scale(2.000000e+00) : tensor<2x16x128xf32>, tensor<128x8xf32> -> tensor<2x16x8xf32>
// CHECK: lora.linear_grad_weight %{{.+}}, %{{.+}} : tensor<2x16x128xf32>, tensor<2x16x64xf32> -> tensor<128x64xf32>
// CHECK: lora.linear_grad_weight %{{.+}}, %{{.+}} scale(2.000000e+00) : tensor<2x16x128xf32>, tensor<2x16x8xf32> -> tensor<128x8xf32>
// CHECK: lora.dropout %{{.+}} rate(1.000000e-01) seed(%{{.+}}) : tensor<2x16x64xf32>
func.func @linear_grads(%dy: tensor<2x16x128xf32>, %x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>,
                        %b: tensor<128x8xf32>, %u: tensor<2x16x8xf32>, %seed: tensor<i64>) {
  %dx = lora.linear_grad_input %dy, %w : tensor<2x16x128xf32>, tensor<128x64xf32> -> tensor<2x16x64xf32>
  %du = lora.linear_grad_input %dy, %b scale(2.0) : tensor<2x16x128xf32>, tensor<128x8xf32> -> tensor<2x16x8xf32>
  %dw = lora.linear_grad_weight %dy, %x : tensor<2x16x128xf32>, tensor<2x16x64xf32> -> tensor<128x64xf32>
  %db = lora.linear_grad_weight %dy, %u scale(2.0) : tensor<2x16x128xf32>, tensor<2x16x8xf32> -> tensor<128x8xf32>
  %xd = lora.dropout %x rate(0.1) seed(%seed) : tensor<2x16x64xf32>
  return
}

// -----

// The adapter's backward in one op, with and without dA.
// CHECK-LABEL: func.func @adapter_grad
// CHECK: lora.adapter_grad %{{.+}}, %{{.+}}, %{{.+}} input(%{{.+}} : tensor<2x16x64xf32>) scale(2.000000e+00) : tensor<2x16x128xf32>, tensor<128x8xf32>, tensor<2x16x8xf32> -> tensor<2x16x8xf32>, tensor<128x8xf32>, tensor<8x64xf32>
// CHECK: lora.adapter_grad %{{.+}}, %{{.+}}, %{{.+}} : tensor<2x16x128xf32>, tensor<128x8xf32>, tensor<2x16x8xf32> -> tensor<2x16x8xf32>, tensor<128x8xf32>
func.func @adapter_grad(%dy: tensor<2x16x128xf32>, %b: tensor<128x8xf32>, %u: tensor<2x16x8xf32>, %x: tensor<2x16x64xf32>) {
  %du, %db, %da = lora.adapter_grad %dy, %b, %u input(%x : tensor<2x16x64xf32>) scale(2.0) : tensor<2x16x128xf32>, tensor<128x8xf32>, tensor<2x16x8xf32> -> tensor<2x16x8xf32>, tensor<128x8xf32>, tensor<8x64xf32>
  %du2, %db2 = lora.adapter_grad %dy, %b, %u : tensor<2x16x128xf32>, tensor<128x8xf32>, tensor<2x16x8xf32> -> tensor<2x16x8xf32>, tensor<128x8xf32>
  return
}

// -----

// The rank-r update that lora-fuse-adapters accumulates into a GEMM output.
// CHECK-LABEL: func.func @low_rank_update
// CHECK: lora.low_rank_update %{{.+}}, %{{.+}}, %{{.+}} scale(2.000000e+00) : tensor<2x16x128xf32>, tensor<2x16x8xf32>, tensor<128x8xf32>
// CHECK: lora.low_rank_update %{{.+}}, %{{.+}}, %{{.+}} : tensor<2x16x128xf32>
func.func @low_rank_update(%y: tensor<2x16x128xf32>, %u: tensor<2x16x8xf32>, %b: tensor<128x8xf32>) -> (tensor<2x16x128xf32>, tensor<2x16x128xf32>) {
  %r = lora.low_rank_update %y, %u, %b scale(2.0) : tensor<2x16x128xf32>, tensor<2x16x8xf32>, tensor<128x8xf32>
  %s = lora.low_rank_update %y, %u, %b : tensor<2x16x128xf32>, tensor<2x16x8xf32>, tensor<128x8xf32>
  return %r, %s : tensor<2x16x128xf32>, tensor<2x16x128xf32>
}

// -----

// CHECK-LABEL: func.func @rope
// CHECK: %[[R:.+]] = lora.rope %{{.+}}, %[[P:.+]] theta(1.000000e+04) head_dim(16) : tensor<2x16x64xbf16>, tensor<2x16xi64>
// CHECK: lora.rope_grad %[[R]], %[[P]] theta(5.000000e+05) head_dim(16) : tensor<2x16x64xbf16>, tensor<2x16xi64>
func.func @rope(%q: tensor<2x16x64xbf16>, %pos: tensor<2x16xi64>) -> tensor<2x16x64xbf16> {
  %r = lora.rope %q, %pos theta(10000.0) head_dim(16) : tensor<2x16x64xbf16>, tensor<2x16xi64>
  // A different theta keeps rope_grad from folding into rope.
  %g = lora.rope_grad %r, %pos theta(500000.0) head_dim(16) : tensor<2x16x64xbf16>, tensor<2x16xi64>
  return %g : tensor<2x16x64xbf16>
}

// -----

// Grouped-query attention (4 query heads share 2 kv heads) and its grad.
// CHECK-LABEL: func.func @attention
// CHECK: %[[O:.+]] = lora.attention %[[Q:.+]], %[[K:.+]], %[[V:.+]] heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
// CHECK: lora.attention_grad %[[Q]], %[[K]], %[[V]], %[[O]], %{{.+}} heads(4) kv_heads(2) head_dim(16) scale(1.250000e-01) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
func.func @attention(%q: tensor<2x16x64xf32>, %k: tensor<2x16x32xf32>, %v: tensor<2x16x32xf32>,
                     %do: tensor<2x16x64xf32>) {
  %o = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
  %dq, %dk, %dv = lora.attention_grad %q, %k, %v, %o, %do heads(4) kv_heads(2) head_dim(16) scale(0.125) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
  return
}

// -----

// CHECK-LABEL: func.func @elementwise
// CHECK: %[[M:.+]] = lora.swiglu %[[G:.+]], %[[U:.+]] : tensor<2x16x128xf32>
// CHECK: lora.swiglu_grad %[[G]], %[[U]], %[[M]] : tensor<2x16x128xf32>
// CHECK: lora.add %[[G]], %[[M]] : tensor<2x16x128xf32>
func.func @elementwise(%g: tensor<2x16x128xf32>, %u: tensor<2x16x128xf32>) {
  %m = lora.swiglu %g, %u : tensor<2x16x128xf32>
  %dg, %du = lora.swiglu_grad %g, %u, %m : tensor<2x16x128xf32>
  %s = lora.add %g, %m : tensor<2x16x128xf32>
  return
}

// -----

// CHECK-LABEL: func.func @loss
// CHECK: %[[L:.+]] = lora.cross_entropy %[[X:.+]], %[[Y:.+]] ignore_index(-100) : tensor<2x16x256xf32>, tensor<2x16xi64>
// CHECK: lora.cross_entropy_grad %[[X]], %[[Y]], %[[L]] ignore_index(0) : tensor<2x16x256xf32>, tensor<2x16xi64>
func.func @loss(%logits: tensor<2x16x256xf32>, %labels: tensor<2x16xi64>) -> tensor<f32> {
  %l = lora.cross_entropy %logits, %labels ignore_index(-100) : tensor<2x16x256xf32>, tensor<2x16xi64>
  %d = lora.cross_entropy_grad %logits, %labels, %l ignore_index(0) : tensor<2x16x256xf32>, tensor<2x16xi64>
  return %l : tensor<f32>
}

// -----

// Global-norm clipping and AdamW with and without clipping; a bf16
// parameter keeps f32 moments.
// CHECK-LABEL: func.func @optimizer
// CHECK: %[[N:.+]] = lora.global_norm %{{.+}}, %{{.+}} : tensor<8x64xf32>, tensor<64x64xbf16>
// CHECK: lora.adamw %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} lr(%{{.+}}) step(%{{.+}}) clip(%[[N]], 1.000000e+00) betas(9.000000e-01, 0.99899999999999999) eps(1.000000e-08) weight_decay(0.000000e+00) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
// CHECK: lora.adamw %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} lr(%{{.+}}) step(%{{.+}}) betas(9.000000e-01, {{.+}}) eps({{.+}}) weight_decay(1.000000e-02) : tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<64x64xf32>
func.func @optimizer(%p: tensor<8x64xf32>, %g: tensor<8x64xf32>, %m: tensor<8x64xf32>, %v: tensor<8x64xf32>,
                     %pw: tensor<64x64xbf16>, %gw: tensor<64x64xbf16>, %mw: tensor<64x64xf32>, %vw: tensor<64x64xf32>,
                     %lr: tensor<f32>, %step: tensor<i64>) {
  %n = lora.global_norm %g, %gw : tensor<8x64xf32>, tensor<64x64xbf16>
  %p2, %m2, %v2 = lora.adamw %p, %g, %m, %v lr(%lr) step(%step) clip(%n, 1.0) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
  %p3, %m3, %v3 = lora.adamw %pw, %gw, %mw, %vw lr(%lr) step(%step) betas(0.9, 0.95) eps(1.0e-6) weight_decay(0.01) : tensor<64x64xbf16>, tensor<64x64xbf16>, tensor<64x64xf32>
  return
}

// -----

// The loss on the output projection without logits, and its gradients
// (with and without the weight's).
// CHECK-LABEL: func.func @linear_cross_entropy
// CHECK: %{{.+}}, %[[LSE:.+]] = lora.linear_cross_entropy %{{.+}}, %{{.+}}, %{{.+}} ignore_index(-100) chunk(64) : tensor<2x16x64xf32>, tensor<1000x64xf32>, tensor<2x16xi32> -> tensor<2x16xf32>
// CHECK: lora.linear_cross_entropy_grad %{{.+}}, %{{.+}}, %{{.+}}, %[[LSE]], %{{.+}} ignore_index(-100) chunk(64) : (tensor<2x16x64xf32>, tensor<1000x64xf32>, tensor<2x16xi32>, tensor<2x16xf32>, tensor<f32>) -> (tensor<2x16x64xf32>, tensor<1000x64xf32>)
// CHECK: lora.linear_cross_entropy_grad %{{.+}} ignore_index(0) : (tensor<2x16x64xf32>, tensor<1000x64xf32>, tensor<2x16xi32>, tensor<2x16xf32>, tensor<f32>) -> tensor<2x16x64xf32>
func.func @linear_cross_entropy(%h: tensor<2x16x64xf32>, %w: tensor<1000x64xf32>, %labels: tensor<2x16xi32>, %dloss: tensor<f32>) {
  %loss, %lse = lora.linear_cross_entropy %h, %w, %labels ignore_index(-100) chunk(64) : tensor<2x16x64xf32>, tensor<1000x64xf32>, tensor<2x16xi32> -> tensor<2x16xf32>
  %dh, %dw = lora.linear_cross_entropy_grad %h, %w, %labels, %lse, %dloss ignore_index(-100) chunk(64) : (tensor<2x16x64xf32>, tensor<1000x64xf32>, tensor<2x16xi32>, tensor<2x16xf32>, tensor<f32>) -> (tensor<2x16x64xf32>, tensor<1000x64xf32>)
  %dh2 = lora.linear_cross_entropy_grad %h, %w, %labels, %lse, %dloss ignore_index(0) : (tensor<2x16x64xf32>, tensor<1000x64xf32>, tensor<2x16xi32>, tensor<2x16xf32>, tensor<f32>) -> tensor<2x16x64xf32>
  return
}

// -----

// A kept activation that lora-recompute recomputes a layer from.
// CHECK-LABEL: func.func @all_reduce
// CHECK: %[[H:.+]] = lora.all_reduce_start %{{.+}} : tensor<8x16xf32>
// CHECK: lora.all_reduce_wait %[[H]] : tensor<8x16xf32>
func.func @all_reduce(%g: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %h = lora.all_reduce_start %g : tensor<8x16xf32>
  %r = lora.all_reduce_wait %h : tensor<8x16xf32>
  return %r : tensor<8x16xf32>
}

// CHECK-LABEL: func.func @checkpoint
// CHECK: lora.checkpoint %{{.+}} : tensor<2x16x64xf32>
func.func @checkpoint(%x: tensor<2x16x64xf32>) -> tensor<2x16x64xf32> {
  %kept = lora.checkpoint %x : tensor<2x16x64xf32>
  return %kept : tensor<2x16x64xf32>
}
