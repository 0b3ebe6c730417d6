// convert-lora-to-linalg: GEMMs become linalg.matmul with transposes in
// their indexing maps, everything else linalg.generic; only f32 lowers.
// RUN: lora-opt %s -split-input-file -verify-diagnostics -convert-lora-to-linalg | FileCheck %s

// An adapted layer: X·Wᵀ, then U = X·Aᵀ, then (s·U)·Bᵀ accumulated into the
// base GEMM's output; leading dims collapsed to rows and expanded back.
// CHECK-DAG: #[[A:.+]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[BT:.+]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[C:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @linear_adapter
// CHECK-SAME: (%[[X:.+]]: tensor<2x3x8xf32>, %[[W:.+]]: tensor<16x8xf32>, %[[LA:.+]]: tensor<4x8xf32>, %[[LB:.+]]: tensor<16x4xf32>)
// CHECK: %[[X2:.+]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<2x3x8xf32> into tensor<6x8xf32>
// CHECK: %[[Y:.+]] = linalg.matmul indexing_maps = [#[[A]], #[[BT]], #[[C]]] ins(%[[X2]], %[[W]] : tensor<6x8xf32>, tensor<16x8xf32>)
// CHECK: %[[U:.+]] = linalg.matmul indexing_maps = [#[[A]], #[[BT]], #[[C]]] ins(%[[X2]], %[[LA]] : tensor<6x8xf32>, tensor<4x8xf32>)
// CHECK: %[[US:.+]] = linalg.generic {{.+}} ins(%[[U]] : tensor<6x4xf32>)
// CHECK: arith.constant 2.500000e+00 : f32
// CHECK: %[[Y2:.+]] = linalg.matmul indexing_maps = [#[[A]], #[[BT]], #[[C]]] ins(%[[US]], %[[LB]] : tensor<6x4xf32>, tensor<16x4xf32>) outs(%[[Y]] : tensor<6x16xf32>)
// CHECK: tensor.expand_shape %[[Y2]] {{\[}}[0, 1], [2]] output_shape [2, 3, 16]
func.func @linear_adapter(%x: tensor<2x3x8xf32>, %w: tensor<16x8xf32>, %a: tensor<4x8xf32>, %b: tensor<16x4xf32>) -> tensor<2x3x16xf32> {
  %y = lora.linear %x, %w adapter(%a, %b : tensor<4x8xf32>, tensor<16x4xf32>) scale(2.5) : tensor<2x3x8xf32>, tensor<16x8xf32> -> tensor<2x3x16xf32>
  return %y : tensor<2x3x16xf32>
}

// -----

// Weight gradients contract the token dim: dYᵀ·X with A transposed.
// CHECK-DAG: #[[AT:.+]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// CHECK-DAG: #[[B:.+]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-LABEL: func.func @grad_weight
// CHECK: linalg.matmul indexing_maps = [#[[AT]], #[[B]], #{{.+}}] ins(%{{.+}}, %{{.+}} : tensor<6x16xf32>, tensor<6x8xf32>) outs(%{{.+}} : tensor<16x8xf32>)
func.func @grad_weight(%dy: tensor<2x3x16xf32>, %x: tensor<2x3x8xf32>) -> tensor<16x8xf32> {
  %dw = lora.linear_grad_weight %dy, %x : tensor<2x3x16xf32>, tensor<2x3x8xf32> -> tensor<16x8xf32>
  return %dw : tensor<16x8xf32>
}

// -----

// Dropout hashes the flat index with splitmix64 (its constants appear as
// signed i64) and compares with the rate in f64.
// CHECK-LABEL: func.func @dropout
// CHECK-DAG: arith.constant -7046029254386353131 : i64
// CHECK-DAG: arith.constant -4658895280553007687 : i64
// CHECK-DAG: arith.constant -7723592293110705685 : i64
// CHECK: linalg.generic
// CHECK: linalg.index 0
// CHECK: arith.cmpf oge, %{{.+}}, %{{.+}} : f64
func.func @dropout(%x: tensor<4x8xf32>, %s: tensor<i64>) -> tensor<4x8xf32> {
  %y = lora.dropout %x rate(0.25) seed(%s) : tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// Grouped-query attention keeps K and V at kv-head size. Per head (batch,
// kv head, group member) the [seq, seq] block is made and used at once:
// Q·Kᵀ and P·V are linalg.matmul on strided 2-D slices (BLAS later), the
// masked softmax runs on the block, and the output slice is written in
// place. Each query group reads its kv head (index %[[KV]]). The causal
// mask is an additive [seq, seq] tensor (0 / -inf) made once, outside the
// head loops, so the per-head kernels read no index.
// CHECK-LABEL: func.func @attention
// CHECK: %[[Q:.+]] = tensor.expand_shape %{{.+}} {{\[}}[0], [1], [2, 3, 4]] output_shape [1, 5, 2, 2, 4] : tensor<1x5x16xf32> into tensor<1x5x2x2x4xf32>
// CHECK: %[[K:.+]] = tensor.expand_shape %{{.+}} {{\[}}[0], [1], [2, 3]] output_shape [1, 5, 2, 4] : tensor<1x5x8xf32> into tensor<1x5x2x4xf32>
// CHECK: %[[MASK:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<5x5xf32>)
// CHECK: arith.cmpi ule
// CHECK: arith.select %{{.+}}, %{{.+}}, %{{.+}} : f32
// CHECK: scf.for %[[B:.+]] = %{{.+}} to %c1
// CHECK: scf.for %[[KV:.+]] = %{{.+}} to %c2
// CHECK: scf.for %[[G:.+]] = %{{.+}} to %c2
// CHECK-DAG: %[[QH:.+]] = tensor.extract_slice %[[Q]][%[[B]], 0, %[[KV]], %[[G]], 0] [1, 5, 1, 1, 4] [1, 1, 1, 1, 1] : tensor<1x5x2x2x4xf32> to tensor<5x4xf32>
// CHECK-DAG: %[[KH:.+]] = tensor.extract_slice %[[K]][%[[B]], 0, %[[KV]], 0] [1, 5, 1, 4] [1, 1, 1, 1] : tensor<1x5x2x4xf32> to tensor<5x4xf32>
// CHECK: %[[S:.+]] = linalg.matmul {{.+}} ins(%[[QH]], %[[KH]] : tensor<5x4xf32>, tensor<5x4xf32>) outs(%{{.+}} : tensor<5x5xf32>)
// CHECK: linalg.generic {{.+}} ins(%[[S]], %[[MASK]] : tensor<5x5xf32>, tensor<5x5xf32>)
// CHECK-NOT: arith.cmpi
// CHECK: math.exp
// CHECK: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<5x5xf32>, tensor<5x4xf32>) outs(%{{.+}} : tensor<5x4xf32>)
// CHECK: tensor.insert_slice %{{.+}} into %{{.+}}[%[[B]], 0, %[[KV]], %[[G]], 0] [1, 5, 1, 1, 4]
// CHECK: tensor.collapse_shape %{{.+}} {{\[}}[0], [1], [2, 3, 4]] : tensor<1x5x2x2x4xf32> into tensor<1x5x16xf32>
func.func @attention(%q: tensor<1x5x16xf32>, %k: tensor<1x5x8xf32>, %v: tensor<1x5x8xf32>) -> tensor<1x5x16xf32> {
  %o = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(4) : tensor<1x5x16xf32>, tensor<1x5x8xf32>, tensor<1x5x8xf32>
  return %o : tensor<1x5x16xf32>
}

// -----

// AdamW is one elementwise kernel with three results; bias corrections are
// computed once, outside it.
// CHECK-LABEL: func.func @adamw
// CHECK: math.powf
// CHECK: math.powf
// CHECK: arith.minimumf
// CHECK: %{{.+}}:3 = linalg.generic
// CHECK-NOT: lora.adamw
func.func @adamw(%p: tensor<4x8xf32>, %g: tensor<4x8xf32>, %lr: tensor<f32>, %s: tensor<i64>, %n: tensor<f32>) -> tensor<4x8xf32> {
  %p2, %m2, %v2 = lora.adamw %p, %g, %g, %g lr(%lr) step(%s) clip(%n, 1.0) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.1) : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
  return %p2 : tensor<4x8xf32>
}

// -----

// bf16 is not lowered yet: the op stays and the conversion fails.
func.func @bf16(%x: tensor<4x8xbf16>, %w: tensor<16x8xbf16>) -> tensor<4x16xbf16> {
  // expected-error @+1 {{failed to legalize operation 'lora.linear' that was explicitly marked illegal}}
  %y = lora.linear %x, %w : tensor<4x8xbf16>, tensor<16x8xbf16> -> tensor<4x16xbf16>
  return %y : tensor<4x16xbf16>
}

// -----

// The rank-r update: base += U·(s·B)ᵀ, a GEMM with B transposed that
// accumulates into a copy of the base; the scale goes on B (out x r), not
// on U (tokens x r).
// CHECK-DAG: #[[BT:.+]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-LABEL: func.func @low_rank_update
// CHECK-SAME: (%[[Y0:[^:]+]]: tensor<2x3x16xf32>, %[[U:[^:]+]]: tensor<2x3x4xf32>, %[[B:[^:]+]]: tensor<16x4xf32>)
// CHECK: %[[U2:.+]] = tensor.collapse_shape %[[U]]
// CHECK: %[[SB:.+]] = linalg.generic {{.+}} ins(%[[B]] : tensor<16x4xf32>)
// CHECK: arith.mulf %{{.+}}, %{{.+}} : f32
// CHECK: %[[BASE:.+]] = bufferization.alloc_tensor() copy(%{{.+}}) : tensor<6x16xf32>
// CHECK: linalg.matmul indexing_maps = [#{{.+}}, #[[BT]], #{{.+}}] ins(%[[U2]], %[[SB]] : tensor<6x4xf32>, tensor<16x4xf32>) outs(%[[BASE]] : tensor<6x16xf32>)
func.func @low_rank_update(%y0: tensor<2x3x16xf32>, %u: tensor<2x3x4xf32>, %b: tensor<16x4xf32>) -> tensor<2x3x16xf32> {
  %y = lora.low_rank_update %y0, %u, %b scale(2.0) : tensor<2x3x16xf32>, tensor<2x3x4xf32>, tensor<16x4xf32>
  return %y : tensor<2x3x16xf32>
}
