// Folds and canonicalization patterns of the lora ops.
// RUN: lora-opt %s -split-input-file -canonicalize | FileCheck %s

// An adapter whose scale is zero adds nothing: the layer loses it, and with
// it the dropout.
// CHECK-LABEL: func.func @zero_scale_adapter
// CHECK-SAME: (%[[X:.+]]: tensor<2x16x64xf32>, %[[W:.+]]: tensor<128x64xf32>
// CHECK: %[[Y:.+]] = lora.linear %[[X]], %[[W]] : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
// CHECK-NEXT: return %[[Y]]
func.func @zero_scale_adapter(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>,
                              %b: tensor<128x8xf32>, %seed: tensor<i64>) -> tensor<2x16x128xf32> {
  %y = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x8xf32>) scale(0.0) dropout(0.1, %seed) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return %y : tensor<2x16x128xf32>
}

// -----

// A non-zero scale keeps the adapter.
// CHECK-LABEL: func.func @nonzero_scale_adapter
// CHECK: lora.linear %{{.+}}, %{{.+}} adapter(%{{.+}}, %{{.+}} : tensor<8x64xf32>, tensor<128x8xf32>) scale(1.000000e-03)
func.func @nonzero_scale_adapter(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>,
                                 %b: tensor<128x8xf32>) -> tensor<2x16x128xf32> {
  %y = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x8xf32>) scale(0.001) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return %y : tensor<2x16x128xf32>
}

// -----

// Adapter dropout at rate zero is no dropout: the rate and the seed go, the
// adapter stays.
// CHECK-LABEL: func.func @zero_rate_adapter_dropout
// CHECK: lora.linear %{{.+}}, %{{.+}} adapter(%{{.+}}, %{{.+}} : tensor<8x64xf32>, tensor<128x8xf32>) scale(2.000000e+00) : tensor<2x16x64xf32>
// CHECK-NOT: dropout
func.func @zero_rate_adapter_dropout(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>,
                                     %b: tensor<128x8xf32>, %seed: tensor<i64>) -> tensor<2x16x128xf32> {
  %y = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x8xf32>) scale(2.0) dropout(0.0, %seed) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return %y : tensor<2x16x128xf32>
}

// -----

// Non-zero adapter dropout stays.
// CHECK-LABEL: func.func @adapter_dropout_kept
// CHECK: scale(2.000000e+00) dropout(5.000000e-01, %{{.+}})
func.func @adapter_dropout_kept(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>,
                                %b: tensor<128x8xf32>, %seed: tensor<i64>) -> tensor<2x16x128xf32> {
  %y = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x8xf32>) scale(2.0) dropout(0.5, %seed) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return %y : tensor<2x16x128xf32>
}

// -----

// Dropout at rate zero folds to its input; at a non-zero rate it stays.
// CHECK-LABEL: func.func @dropout
// CHECK-SAME: (%[[X:.+]]: tensor<4x8xf32>, %[[S:.+]]: tensor<i64>)
// CHECK: %[[D:.+]] = lora.dropout %[[X]] rate(2.500000e-01) seed(%[[S]])
// CHECK-NEXT: return %[[X]], %[[D]]
func.func @dropout(%x: tensor<4x8xf32>, %seed: tensor<i64>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %0 = lora.dropout %x rate(0.0) seed(%seed) : tensor<4x8xf32>
  %1 = lora.dropout %x rate(0.25) seed(%seed) : tensor<4x8xf32>
  return %0, %1 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// rope_grad undoes rope with the same positions, theta and head_dim.
// CHECK-LABEL: func.func @rope_roundtrip
// CHECK-SAME: (%[[X:.+]]: tensor<2x16x64xf32>
// CHECK-NOT: lora.rope
// CHECK: return %[[X]]
func.func @rope_roundtrip(%x: tensor<2x16x64xf32>, %pos: tensor<2x16xi32>) -> tensor<2x16x64xf32> {
  %r = lora.rope %x, %pos theta(10000.0) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16xi32>
  %g = lora.rope_grad %r, %pos theta(10000.0) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16xi32>
  return %g : tensor<2x16x64xf32>
}

// -----

// Different positions, theta or head_dim: no fold.
// CHECK-LABEL: func.func @rope_no_roundtrip
// CHECK-COUNT-3: lora.rope_grad
func.func @rope_no_roundtrip(%x: tensor<2x16x64xf32>, %pos: tensor<2x16xi32>, %pos2: tensor<2x16xi32>)
    -> (tensor<2x16x64xf32>, tensor<2x16x64xf32>, tensor<2x16x64xf32>) {
  %r = lora.rope %x, %pos theta(10000.0) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16xi32>
  %0 = lora.rope_grad %r, %pos2 theta(10000.0) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16xi32>
  %1 = lora.rope_grad %r, %pos theta(500000.0) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16xi32>
  %2 = lora.rope_grad %r, %pos theta(10000.0) head_dim(32) : tensor<2x16x64xf32>, tensor<2x16xi32>
  return %0, %1, %2 : tensor<2x16x64xf32>, tensor<2x16x64xf32>, tensor<2x16x64xf32>
}
