// Every verifier message of the lora dialect, one case each.
// RUN: lora-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// Parameter argument attributes
//===----------------------------------------------------------------------===//

// A role must be a #lora.role attribute.
// expected-error @+1 {{argument #0: 'lora.role' must be a #lora.role<frozen|lora|full>, got "frozen"}}
func.func @role_not_enum(%w: tensor<4x4xf32> {lora.role = "frozen"}) { return }

// -----

// Only float tensors can be parameters.
// expected-error @+1 {{argument #1: a parameter must be a ranked tensor or memref of floats, got 'tensor<4xi32>'}}
func.func @role_on_ids(%w: tensor<4x4xf32>, %ids: tensor<4xi32> {lora.role = #lora.role<lora>}) { return }

// -----

// expected-error @+1 {{argument #0: 'lora.name' must be a non-empty string (the tensor's name)}}
func.func @empty_name(%w: tensor<4x4xf32> {lora.name = ""}) { return }

// -----

// expected-error @+1 {{argument #0: unknown lora argument attribute 'lora.rank' (expected 'lora.role' or 'lora.name')}}
func.func @unknown_arg_attr(%w: tensor<4x4xf32> {lora.rank = 4 : i64}) { return }

// -----

// An unknown role does not parse.
// expected-error @+2 {{expected ::mlir::lora::Role to be one of: frozen, lora, full}}
// expected-error @+1 {{failed to parse Lora_RoleAttr parameter 'value'}}
func.func @unknown_role(%w: tensor<4x4xf32> {lora.role = #lora.role<trainable>}) { return }

//===----------------------------------------------------------------------===//
// embedding, embedding_grad
//===----------------------------------------------------------------------===//

// -----

func.func @embedding_table_rank(%t: tensor<256xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{table must have rank 2 ([vocab, hidden]), got 'tensor<256xf32>'}}
  %0 = lora.embedding %t[%ids] : tensor<256xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @embedding_result_rank(%t: tensor<256x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{result must have rank 3 (ids has rank 2), got 'tensor<32x64xf32>'}}
  %0 = lora.embedding %t[%ids] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<32x64xf32>
  return
}

// -----

func.func @embedding_result_batch(%t: tensor<256x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{result dim 1 (8) must equal ids dim 1 (16), the batch/sequence dims}}
  %0 = lora.embedding %t[%ids] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x8x64xf32>
  return
}

// -----

func.func @embedding_hidden(%t: tensor<256x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{result dim 2 (32) must equal table dim 1 (64), the hidden size}}
  %0 = lora.embedding %t[%ids] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x32xf32>
  return
}

// -----

func.func @embedding_element_type(%t: tensor<256x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{result element type 'bf16' must match table element type 'f32'}}
  %0 = lora.embedding %t[%ids] : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xbf16>
  return
}

// -----

func.func @embedding_float_ids(%t: tensor<256x64xf32>, %ids: tensor<2x16xf32>) {
  // expected-error @+1 {{operand #1 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values}}
  %0 = lora.embedding %t[%ids] : tensor<256x64xf32>, tensor<2x16xf32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @embedding_grad_rank(%d: tensor<2x16xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{grad must have rank 3 (ids has rank 2), got 'tensor<2x16xf32>'}}
  %0 = lora.embedding_grad %d[%ids] : tensor<2x16xf32>, tensor<2x16xi32> -> tensor<256x64xf32>
  return
}

// -----

func.func @embedding_grad_batch(%d: tensor<2x16x64xf32>, %ids: tensor<4x16xi32>) {
  // expected-error @+1 {{grad dim 0 (2) must equal ids dim 0 (4), the batch/sequence dims}}
  %0 = lora.embedding_grad %d[%ids] : tensor<2x16x64xf32>, tensor<4x16xi32> -> tensor<256x64xf32>
  return
}

// -----

func.func @embedding_grad_result_rank(%d: tensor<2x16x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{result must have rank 2 ([vocab, hidden]), got 'tensor<256x64x1xf32>'}}
  %0 = lora.embedding_grad %d[%ids] : tensor<2x16x64xf32>, tensor<2x16xi32> -> tensor<256x64x1xf32>
  return
}

// -----

func.func @embedding_grad_hidden(%d: tensor<2x16x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{result dim 1 (48) must equal grad dim 2 (64), the hidden size}}
  %0 = lora.embedding_grad %d[%ids] : tensor<2x16x64xf32>, tensor<2x16xi32> -> tensor<256x48xf32>
  return
}

// -----

func.func @embedding_grad_element_type(%d: tensor<2x16x64xf32>, %ids: tensor<2x16xi32>) {
  // expected-error @+1 {{result element type 'f16' must match grad element type 'f32'}}
  %0 = lora.embedding_grad %d[%ids] : tensor<2x16x64xf32>, tensor<2x16xi32> -> tensor<256x64xf16>
  return
}

//===----------------------------------------------------------------------===//
// rms_norm, rms_norm_grad
//===----------------------------------------------------------------------===//

// -----

func.func @rms_norm_scalar(%x: tensor<f32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{input must have rank >= 1 ([..., hidden]), got 'tensor<f32>'}}
  %0 = lora.rms_norm %x, %w eps(1.0e-5) : tensor<f32>, tensor<64xf32>
  return
}

// -----

func.func @rms_norm_weight_rank(%x: tensor<2x16x64xf32>, %w: tensor<1x64xf32>) {
  // expected-error @+1 {{weight must have rank 1 ([hidden]), got 'tensor<1x64xf32>'}}
  %0 = lora.rms_norm %x, %w eps(1.0e-5) : tensor<2x16x64xf32>, tensor<1x64xf32>
  return
}

// -----

func.func @rms_norm_hidden(%x: tensor<2x16x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{weight dim 0 (32) must equal input dim 2 (64), the hidden size}}
  %0 = lora.rms_norm %x, %w eps(1.0e-5) : tensor<2x16x64xf32>, tensor<32xf32>
  return
}

// -----

func.func @rms_norm_element_type(%x: tensor<2x16x64xf32>, %w: tensor<64xbf16>) {
  // expected-error @+1 {{weight element type 'bf16' must match input element type 'f32'}}
  %0 = lora.rms_norm %x, %w eps(1.0e-5) : tensor<2x16x64xf32>, tensor<64xbf16>
  return
}

// -----

func.func @rms_norm_epsilon(%x: tensor<2x16x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{epsilon must be positive, got 0.000000e+00}}
  %0 = lora.rms_norm %x, %w eps(0.0) : tensor<2x16x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @rms_norm_grad_hidden(%x: tensor<2x16x64xf32>, %w: tensor<32xf32>, %d: tensor<2x16x64xf32>) {
  // expected-error @+1 {{weight dim 0 (32) must equal input dim 2 (64), the hidden size}}
  %0, %1 = lora.rms_norm_grad %x, %w, %d eps(1.0e-5) : tensor<2x16x64xf32>, tensor<32xf32>
  return
}

//===----------------------------------------------------------------------===//
// linear
//===----------------------------------------------------------------------===//

// -----

func.func @linear_input_rank(%x: tensor<64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{input must have rank >= 2 ([tokens..., features]), got 'tensor<64xf32>'}}
  %0 = lora.linear %x, %w : tensor<64xf32>, tensor<128x64xf32> -> tensor<128xf32>
  return
}

// -----

func.func @linear_weight_rank(%x: tensor<2x16x64xf32>, %w: tensor<2x128x64xf32>) {
  // expected-error @+1 {{weight must have rank 2 ([out, in]), got 'tensor<2x128x64xf32>'}}
  %0 = lora.linear %x, %w : tensor<2x16x64xf32>, tensor<2x128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_in_features(%x: tensor<2x16x64xf32>, %w: tensor<128x32xf32>) {
  // expected-error @+1 {{weight dim 1 (32) must equal input dim 2 (64), the input features}}
  %0 = lora.linear %x, %w : tensor<2x16x64xf32>, tensor<128x32xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_result_rank(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{result must have rank 3 (input has rank 3), got 'tensor<32x128xf32>'}}
  %0 = lora.linear %x, %w : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<32x128xf32>
  return
}

// -----

func.func @linear_result_tokens(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{result dim 0 (4) must equal input dim 0 (2), the batch/sequence dims}}
  %0 = lora.linear %x, %w : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<4x16x128xf32>
  return
}

// -----

func.func @linear_out_features(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{result dim 2 (96) must equal weight dim 0 (128), the output features}}
  %0 = lora.linear %x, %w : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x96xf32>
  return
}

// -----

func.func @linear_weight_element_type(%x: tensor<2x16x64xf32>, %w: tensor<128x64xbf16>) {
  // expected-error @+1 {{weight element type 'bf16' must match input element type 'f32'}}
  %0 = lora.linear %x, %w : tensor<2x16x64xf32>, tensor<128x64xbf16> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_result_element_type(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{result element type 'f16' must match input element type 'f32'}}
  %0 = lora.linear %x, %w : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf16>
  return
}

// -----

func.func @linear_a_without_b(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>) {
  // expected-error @+1 {{lora_a and lora_b must be given together}}
  %0 = "lora.linear"(%x, %w, %a) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>, scale = 1.0 : f64}> : (tensor<2x16x64xf32>, tensor<128x64xf32>, tensor<8x64xf32>) -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_scale_without_adapter(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{scale given without an adapter}}
  %0 = lora.linear %x, %w scale(2.0) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_dropout_without_adapter(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %s: tensor<i64>) {
  // expected-error @+1 {{dropout given without an adapter}}
  %0 = lora.linear %x, %w dropout(0.1, %s) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_a_rank(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<64xf32>, %b: tensor<128x8xf32>) {
  // expected-error @+1 {{lora_a must have rank 2 ([rank, in]), got 'tensor<64xf32>'}}
  %0 = lora.linear %x, %w adapter(%a, %b : tensor<64xf32>, tensor<128x8xf32>) scale(2.0) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_b_rank(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{lora_b must have rank 2 ([out, rank]), got 'tensor<128xf32>'}}
  %0 = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128xf32>) scale(2.0) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

// A stored as [in, rank] instead of PEFT's [rank, in].
func.func @linear_a_transposed(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<64x8xf32>, %b: tensor<128x8xf32>) {
  // expected-error @+1 {{lora_a dim 1 (8) must equal weight dim 1 (64), the input features}}
  %0 = lora.linear %x, %w adapter(%a, %b : tensor<64x8xf32>, tensor<128x8xf32>) scale(2.0) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_b_out(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>, %b: tensor<64x8xf32>) {
  // expected-error @+1 {{lora_b dim 0 (64) must equal weight dim 0 (128), the output features}}
  %0 = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<64x8xf32>) scale(2.0) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_rank_mismatch(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>, %b: tensor<128x16xf32>) {
  // expected-error @+1 {{lora_b dim 1 (16) must equal lora_a dim 0 (8), the adapter rank}}
  %0 = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x16xf32>) scale(2.0) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_a_element_type(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xbf16>, %b: tensor<128x8xf32>) {
  // expected-error @+1 {{lora_a element type 'bf16' must match weight element type 'f32'}}
  %0 = lora.linear %x, %w adapter(%a, %b : tensor<8x64xbf16>, tensor<128x8xf32>) scale(2.0) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_b_element_type(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>, %b: tensor<128x8xf16>) {
  // expected-error @+1 {{lora_b element type 'f16' must match weight element type 'f32'}}
  %0 = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x8xf16>) scale(2.0) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_adapter_without_scale(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>, %b: tensor<128x8xf32>) {
  // expected-error @+1 {{an adapter needs a scale (alpha / rank)}}
  %0 = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x8xf32>) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_infinite_scale(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>, %b: tensor<128x8xf32>) {
  // expected-error @+1 {{scale must be finite, got INF}}
  %0 = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x8xf32>) scale(0x7FF0000000000000) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_dropout_without_seed(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>, %b: tensor<128x8xf32>) {
  // expected-error @+1 {{dropout needs both a rate and a seed}}
  %0 = "lora.linear"(%x, %w, %a, %b) <{operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>, scale = 1.0 : f64, dropout = 0.1 : f64}> : (tensor<2x16x64xf32>, tensor<128x64xf32>, tensor<8x64xf32>, tensor<128x8xf32>) -> tensor<2x16x128xf32>
  return
}

// -----

func.func @linear_dropout_rate(%x: tensor<2x16x64xf32>, %w: tensor<128x64xf32>, %a: tensor<8x64xf32>, %b: tensor<128x8xf32>, %s: tensor<i64>) {
  // expected-error @+1 {{dropout must be in [0.000000e+00, 1.000000e+00), got 1.000000e+00}}
  %0 = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>, tensor<128x8xf32>) scale(2.0) dropout(1.0, %s) : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

//===----------------------------------------------------------------------===//
// linear_grad_input, linear_grad_weight, dropout
//===----------------------------------------------------------------------===//

// -----

func.func @grad_input_out_features(%dy: tensor<2x16x96xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{weight dim 0 (128) must equal grad dim 2 (96), the output features}}
  %0 = lora.linear_grad_input %dy, %w : tensor<2x16x96xf32>, tensor<128x64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @grad_input_result(%dy: tensor<2x16x128xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{result dim 2 (128) must equal weight dim 1 (64), the output features}}
  %0 = lora.linear_grad_input %dy, %w : tensor<2x16x128xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
  return
}

// -----

func.func @grad_input_scale(%dy: tensor<2x16x128xf32>, %w: tensor<128x64xf32>) {
  // expected-error @+1 {{scale must be finite, got nan}}
  %0 = lora.linear_grad_input %dy, %w scale(0x7FF8000000000000) : tensor<2x16x128xf32>, tensor<128x64xf32> -> tensor<2x16x64xf32>
  return
}

// -----

func.func @adapter_grad_rank(%dy: tensor<2x16x128xf32>, %b: tensor<128x4xf32>, %u: tensor<2x16x8xf32>) {
  // expected-error @+1 {{u dim 2 (8) must equal lora_b dim 1 (4), the rank}}
  %0:2 = lora.adapter_grad %dy, %b, %u : tensor<2x16x128xf32>, tensor<128x4xf32>, tensor<2x16x8xf32> -> tensor<2x16x8xf32>, tensor<128x4xf32>
  return
}

// -----

func.func @adapter_grad_du(%dy: tensor<2x16x128xf32>, %b: tensor<128x8xf32>, %u: tensor<2x16x8xf32>) {
  // expected-error @+1 {{du must have u's type 'tensor<2x16x8xf32>', got 'tensor<32x8xf32>'}}
  %0:2 = lora.adapter_grad %dy, %b, %u : tensor<2x16x128xf32>, tensor<128x8xf32>, tensor<2x16x8xf32> -> tensor<32x8xf32>, tensor<128x8xf32>
  return
}

// -----

func.func @adapter_grad_db(%dy: tensor<2x16x128xf32>, %b: tensor<128x8xf32>, %u: tensor<2x16x8xf32>) {
  // expected-error @+1 {{db must have lora_b's type 'tensor<128x8xf32>', got 'tensor<8x128xf32>'}}
  %0:2 = lora.adapter_grad %dy, %b, %u : tensor<2x16x128xf32>, tensor<128x8xf32>, tensor<2x16x8xf32> -> tensor<2x16x8xf32>, tensor<8x128xf32>
  return
}

// -----

func.func @adapter_grad_no_da(%dy: tensor<2x16x128xf32>, %b: tensor<128x8xf32>, %u: tensor<2x16x8xf32>, %x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{input given but no da result}}
  %0:2 = lora.adapter_grad %dy, %b, %u input(%x : tensor<2x16x64xf32>) : tensor<2x16x128xf32>, tensor<128x8xf32>, tensor<2x16x8xf32> -> tensor<2x16x8xf32>, tensor<128x8xf32>
  return
}

// -----

func.func @adapter_grad_no_input(%dy: tensor<2x16x128xf32>, %b: tensor<128x8xf32>, %u: tensor<2x16x8xf32>) {
  // expected-error @+1 {{da result without an input}}
  %0:3 = lora.adapter_grad %dy, %b, %u : tensor<2x16x128xf32>, tensor<128x8xf32>, tensor<2x16x8xf32> -> tensor<2x16x8xf32>, tensor<128x8xf32>, tensor<8x64xf32>
  return
}

// -----

func.func @adapter_grad_da(%dy: tensor<2x16x128xf32>, %b: tensor<128x8xf32>, %u: tensor<2x16x8xf32>, %x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{da dim 1 (32) must equal input dim 2 (64), the input features}}
  %0:3 = lora.adapter_grad %dy, %b, %u input(%x : tensor<2x16x64xf32>) : tensor<2x16x128xf32>, tensor<128x8xf32>, tensor<2x16x8xf32> -> tensor<2x16x8xf32>, tensor<128x8xf32>, tensor<8x32xf32>
  return
}

// -----

func.func @low_rank_update_u_rank(%y: tensor<2x16x128xf32>, %u: tensor<32x8xf32>, %b: tensor<128x8xf32>) {
  // expected-error @+1 {{u must have rank 3 (base has rank 3), got 'tensor<32x8xf32>'}}
  %0 = lora.low_rank_update %y, %u, %b : tensor<2x16x128xf32>, tensor<32x8xf32>, tensor<128x8xf32>
  return
}

// -----

func.func @low_rank_update_tokens(%y: tensor<2x16x128xf32>, %u: tensor<2x8x8xf32>, %b: tensor<128x8xf32>) {
  // expected-error @+1 {{u dim 1 (8) must equal base dim 1 (16), the batch/sequence dims}}
  %0 = lora.low_rank_update %y, %u, %b : tensor<2x16x128xf32>, tensor<2x8x8xf32>, tensor<128x8xf32>
  return
}

// -----

func.func @low_rank_update_out(%y: tensor<2x16x128xf32>, %u: tensor<2x16x8xf32>, %b: tensor<64x8xf32>) {
  // expected-error @+1 {{lora_b dim 0 (64) must equal base dim 2 (128), the output features}}
  %0 = lora.low_rank_update %y, %u, %b : tensor<2x16x128xf32>, tensor<2x16x8xf32>, tensor<64x8xf32>
  return
}

// -----

func.func @low_rank_update_rank(%y: tensor<2x16x128xf32>, %u: tensor<2x16x8xf32>, %b: tensor<128x4xf32>) {
  // expected-error @+1 {{lora_b dim 1 (4) must equal u dim 2 (8), the rank}}
  %0 = lora.low_rank_update %y, %u, %b : tensor<2x16x128xf32>, tensor<2x16x8xf32>, tensor<128x4xf32>
  return
}

// -----

func.func @grad_weight_rank(%dy: tensor<128xf32>, %x: tensor<64xf32>) {
  // expected-error @+1 {{grad must have rank >= 2 ([tokens..., out]), got 'tensor<128xf32>'}}
  %0 = lora.linear_grad_weight %dy, %x : tensor<128xf32>, tensor<64xf32> -> tensor<128x64xf32>
  return
}

// -----

func.func @grad_weight_input_rank(%dy: tensor<2x16x128xf32>, %x: tensor<32x64xf32>) {
  // expected-error @+1 {{input must have rank 3 (grad has rank 3), got 'tensor<32x64xf32>'}}
  %0 = lora.linear_grad_weight %dy, %x : tensor<2x16x128xf32>, tensor<32x64xf32> -> tensor<128x64xf32>
  return
}

// -----

func.func @grad_weight_tokens(%dy: tensor<2x16x128xf32>, %x: tensor<2x8x64xf32>) {
  // expected-error @+1 {{input dim 1 (8) must equal grad dim 1 (16), the batch/sequence dims}}
  %0 = lora.linear_grad_weight %dy, %x : tensor<2x16x128xf32>, tensor<2x8x64xf32> -> tensor<128x64xf32>
  return
}

// -----

func.func @grad_weight_result_rank(%dy: tensor<2x16x128xf32>, %x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{result must have rank 2 ([out, in]), got 'tensor<8192xf32>'}}
  %0 = lora.linear_grad_weight %dy, %x : tensor<2x16x128xf32>, tensor<2x16x64xf32> -> tensor<8192xf32>
  return
}

// -----

func.func @grad_weight_out(%dy: tensor<2x16x128xf32>, %x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{result dim 0 (64) must equal grad dim 2 (128), the output features}}
  %0 = lora.linear_grad_weight %dy, %x : tensor<2x16x128xf32>, tensor<2x16x64xf32> -> tensor<64x128xf32>
  return
}

// -----

func.func @grad_weight_in(%dy: tensor<2x16x128xf32>, %x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{result dim 1 (32) must equal input dim 2 (64), the input features}}
  %0 = lora.linear_grad_weight %dy, %x : tensor<2x16x128xf32>, tensor<2x16x64xf32> -> tensor<128x32xf32>
  return
}

// -----

func.func @grad_weight_element_type(%dy: tensor<2x16x128xf32>, %x: tensor<2x16x64xbf16>) {
  // expected-error @+1 {{input element type 'bf16' must match grad element type 'f32'}}
  %0 = lora.linear_grad_weight %dy, %x : tensor<2x16x128xf32>, tensor<2x16x64xbf16> -> tensor<128x64xf32>
  return
}

// -----

func.func @grad_weight_result_element_type(%dy: tensor<2x16x128xf32>, %x: tensor<2x16x64xf32>) {
  // expected-error @+1 {{result element type 'bf16' must match grad element type 'f32'}}
  %0 = lora.linear_grad_weight %dy, %x : tensor<2x16x128xf32>, tensor<2x16x64xf32> -> tensor<128x64xbf16>
  return
}

// -----

func.func @dropout_rate(%x: tensor<2x16x64xf32>, %s: tensor<i64>) {
  // expected-error @+1 {{rate must be in [0.000000e+00, 1.000000e+00), got -1.000000e-01}}
  %0 = lora.dropout %x rate(-0.1) seed(%s) : tensor<2x16x64xf32>
  return
}

// -----

func.func @dropout_seed_type(%x: tensor<2x16x64xf32>, %s: tensor<i32>) {
  // expected-error @+1 {{operand #1 must be 0D tensor of 64-bit signless integer values}}
  %0 = "lora.dropout"(%x, %s) <{rate = 0.1 : f64}> : (tensor<2x16x64xf32>, tensor<i32>) -> tensor<2x16x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// rope, rope_grad
//===----------------------------------------------------------------------===//

// -----

func.func @rope_rank(%x: tensor<64xf32>, %p: tensor<i32>) {
  // expected-error @+1 {{input must have rank >= 2 ([..., seq, heads * head_dim]), got 'tensor<64xf32>'}}
  %0 = lora.rope %x, %p theta(10000.0) head_dim(16) : tensor<64xf32>, tensor<i32>
  return
}

// -----

func.func @rope_positions_rank(%x: tensor<2x16x64xf32>, %p: tensor<16xi32>) {
  // expected-error @+1 {{positions must have rank 2 (input has rank 3), got 'tensor<16xi32>'}}
  %0 = lora.rope %x, %p theta(10000.0) head_dim(16) : tensor<2x16x64xf32>, tensor<16xi32>
  return
}

// -----

func.func @rope_positions_shape(%x: tensor<2x16x64xf32>, %p: tensor<2x8xi32>) {
  // expected-error @+1 {{positions dim 1 (8) must equal input dim 1 (16), the batch/sequence dims}}
  %0 = lora.rope %x, %p theta(10000.0) head_dim(16) : tensor<2x16x64xf32>, tensor<2x8xi32>
  return
}

// -----

func.func @rope_theta(%x: tensor<2x16x64xf32>, %p: tensor<2x16xi32>) {
  // expected-error @+1 {{theta must be positive, got -1.000000e+04}}
  %0 = lora.rope %x, %p theta(-10000.0) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16xi32>
  return
}

// -----

func.func @rope_odd_head_dim(%x: tensor<2x16x63xf32>, %p: tensor<2x16xi32>) {
  // expected-error @+1 {{head_dim (21) must be even: RoPE rotates pairs}}
  %0 = lora.rope %x, %p theta(10000.0) head_dim(21) : tensor<2x16x63xf32>, tensor<2x16xi32>
  return
}

// -----

func.func @rope_heads_do_not_divide(%x: tensor<2x16x72xf32>, %p: tensor<2x16xi32>) {
  // expected-error @+1 {{input dim 2 (72) must be a multiple of head_dim (16)}}
  %0 = lora.rope %x, %p theta(10000.0) head_dim(16) : tensor<2x16x72xf32>, tensor<2x16xi32>
  return
}

// -----

func.func @rope_zero_head_dim(%x: tensor<2x16x64xf32>, %p: tensor<2x16xi32>) {
  // expected-error @+1 {{attribute 'head_dim' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %0 = lora.rope %x, %p theta(10000.0) head_dim(0) : tensor<2x16x64xf32>, tensor<2x16xi32>
  return
}

// -----

func.func @rope_grad_heads_do_not_divide(%d: tensor<2x16x72xf32>, %p: tensor<2x16xi32>) {
  // expected-error @+1 {{grad dim 2 (72) must be a multiple of head_dim (16)}}
  %0 = lora.rope_grad %d, %p theta(10000.0) head_dim(16) : tensor<2x16x72xf32>, tensor<2x16xi32>
  return
}

//===----------------------------------------------------------------------===//
// attention, attention_grad
//===----------------------------------------------------------------------===//

// -----

func.func @attention_query_rank(%q: tensor<16x64xf32>, %k: tensor<2x16x32xf32>, %v: tensor<2x16x32xf32>) {
  // expected-error @+1 {{query must have rank 3 ([batch, seq, heads * head_dim]), got 'tensor<16x64xf32>'}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
  return
}

// -----

func.func @attention_key_rank(%q: tensor<2x16x64xf32>, %k: tensor<2x16x2x16xf32>, %v: tensor<2x16x32xf32>) {
  // expected-error @+1 {{key must have rank 3 ([batch, seq, heads * head_dim]), got 'tensor<2x16x2x16xf32>'}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x2x16xf32>, tensor<2x16x32xf32>
  return
}

// -----

func.func @attention_value_rank(%q: tensor<2x16x64xf32>, %k: tensor<2x16x32xf32>, %v: tensor<32xf32>) {
  // expected-error @+1 {{value must have rank 3 ([batch, seq, heads * head_dim]), got 'tensor<32xf32>'}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<32xf32>
  return
}

// -----

func.func @attention_kv_heads_do_not_divide(%q: tensor<2x16x64xf32>, %k: tensor<2x16x48xf32>, %v: tensor<2x16x48xf32>) {
  // expected-error @+1 {{num_kv_heads (3) must divide num_heads (4)}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(3) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x48xf32>, tensor<2x16x48xf32>
  return
}

// -----

func.func @attention_key_batch(%q: tensor<2x16x64xf32>, %k: tensor<1x16x32xf32>, %v: tensor<2x16x32xf32>) {
  // expected-error @+1 {{key dim 0 (1) must equal query dim 0 (2), the batch size}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<1x16x32xf32>, tensor<2x16x32xf32>
  return
}

// -----

func.func @attention_value_batch(%q: tensor<2x16x64xf32>, %k: tensor<2x16x32xf32>, %v: tensor<3x16x32xf32>) {
  // expected-error @+1 {{value dim 0 (3) must equal query dim 0 (2), the batch size}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<3x16x32xf32>
  return
}

// -----

func.func @attention_key_seq(%q: tensor<2x16x64xf32>, %k: tensor<2x8x32xf32>, %v: tensor<2x16x32xf32>) {
  // expected-error @+1 {{key dim 1 (8) must equal query dim 1 (16), the sequence length}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x8x32xf32>, tensor<2x16x32xf32>
  return
}

// -----

func.func @attention_value_seq(%q: tensor<2x16x64xf32>, %k: tensor<2x16x32xf32>, %v: tensor<2x8x32xf32>) {
  // expected-error @+1 {{value dim 1 (8) must equal query dim 1 (16), the sequence length}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x8x32xf32>
  return
}

// -----

func.func @attention_query_heads(%q: tensor<2x16x64xf32>, %k: tensor<2x16x32xf32>, %v: tensor<2x16x32xf32>) {
  // expected-error @+1 {{query dim 2 (64) must be 48 = num_heads (4) * head_dim (12)}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(12) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
  return
}

// -----

func.func @attention_key_heads(%q: tensor<2x16x64xf32>, %k: tensor<2x16x64xf32>, %v: tensor<2x16x32xf32>) {
  // expected-error @+1 {{key dim 2 (64) must be 32 = num_kv_heads (2) * head_dim (16)}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x64xf32>, tensor<2x16x32xf32>
  return
}

// -----

func.func @attention_value_heads(%q: tensor<2x16x64xf32>, %k: tensor<2x16x32xf32>, %v: tensor<2x16x16xf32>) {
  // expected-error @+1 {{value dim 2 (16) must be 32 = num_kv_heads (2) * head_dim (16)}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x16xf32>
  return
}

// -----

func.func @attention_key_element_type(%q: tensor<2x16x64xf32>, %k: tensor<2x16x32xbf16>, %v: tensor<2x16x32xf32>) {
  // expected-error @+1 {{key element type 'bf16' must match query element type 'f32'}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x32xbf16>, tensor<2x16x32xf32>
  return
}

// -----

func.func @attention_value_element_type(%q: tensor<2x16x64xf32>, %k: tensor<2x16x32xf32>, %v: tensor<2x16x32xf16>) {
  // expected-error @+1 {{value element type 'f16' must match query element type 'f32'}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf16>
  return
}

// -----

func.func @attention_scale(%q: tensor<2x16x64xf32>, %k: tensor<2x16x32xf32>, %v: tensor<2x16x32xf32>) {
  // expected-error @+1 {{scale must be positive, got 0.000000e+00}}
  %0 = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16) scale(0.0) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
  return
}

// -----

func.func @attention_zero_heads(%q: tensor<2x16x64xf32>, %k: tensor<2x16x32xf32>, %v: tensor<2x16x32xf32>) {
  // expected-error @+1 {{attribute 'num_heads' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %0 = lora.attention %q, %k, %v heads(0) kv_heads(2) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
  return
}

// -----

func.func @attention_grad_kv_heads(%q: tensor<2x16x64xf32>, %k: tensor<2x16x48xf32>, %v: tensor<2x16x48xf32>, %o: tensor<2x16x64xf32>) {
  // expected-error @+1 {{num_kv_heads (3) must divide num_heads (4)}}
  %0:3 = lora.attention_grad %q, %k, %v, %o, %o heads(4) kv_heads(3) head_dim(16) : tensor<2x16x64xf32>, tensor<2x16x48xf32>, tensor<2x16x48xf32>
  return
}

//===----------------------------------------------------------------------===//
// swiglu, add
//===----------------------------------------------------------------------===//

// -----

func.func @swiglu_shapes(%g: tensor<2x16x128xf32>, %u: tensor<2x16x64xf32>) {
  // expected-error @+1 {{all of {gate, up, result} have same type}}
  %0 = "lora.swiglu"(%g, %u) : (tensor<2x16x128xf32>, tensor<2x16x64xf32>) -> tensor<2x16x128xf32>
  return
}

// -----

func.func @add_shapes(%a: tensor<2x16x64xf32>, %b: tensor<2x16x64xbf16>) {
  // expected-error @+1 {{all of {lhs, rhs, result} have same type}}
  %0 = "lora.add"(%a, %b) : (tensor<2x16x64xf32>, tensor<2x16x64xbf16>) -> tensor<2x16x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// cross_entropy, cross_entropy_grad
//===----------------------------------------------------------------------===//

// -----

func.func @cross_entropy_logits_rank(%l: tensor<256xf32>, %y: tensor<i32>) {
  // expected-error @+1 {{logits must have rank >= 2 ([tokens..., vocab]), got 'tensor<256xf32>'}}
  %0 = lora.cross_entropy %l, %y ignore_index(-100) : tensor<256xf32>, tensor<i32>
  return
}

// -----

func.func @cross_entropy_labels_rank(%l: tensor<2x16x256xf32>, %y: tensor<32xi32>) {
  // expected-error @+1 {{labels must have rank 2 (logits has rank 3), got 'tensor<32xi32>'}}
  %0 = lora.cross_entropy %l, %y ignore_index(-100) : tensor<2x16x256xf32>, tensor<32xi32>
  return
}

// -----

func.func @cross_entropy_labels_shape(%l: tensor<2x16x256xf32>, %y: tensor<2x15xi32>) {
  // expected-error @+1 {{labels dim 1 (15) must equal logits dim 1 (16), the batch/sequence dims}}
  %0 = lora.cross_entropy %l, %y ignore_index(-100) : tensor<2x16x256xf32>, tensor<2x15xi32>
  return
}

// -----

func.func @cross_entropy_grad_labels_shape(%l: tensor<2x16x256xf32>, %y: tensor<4x16xi32>, %d: tensor<f32>) {
  // expected-error @+1 {{labels dim 0 (4) must equal logits dim 0 (2), the batch/sequence dims}}
  %0 = lora.cross_entropy_grad %l, %y, %d ignore_index(-100) : tensor<2x16x256xf32>, tensor<4x16xi32>
  return
}

//===----------------------------------------------------------------------===//
// global_norm, adamw
//===----------------------------------------------------------------------===//

// -----

func.func @global_norm_empty() {
  // expected-error @+1 {{needs at least one tensor}}
  %0 = "lora.global_norm"() : () -> tensor<f32>
  return
}

// -----

func.func @adamw_grad_rank(%p: tensor<8x64xf32>, %g: tensor<512xf32>, %m: tensor<8x64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{grad must have rank 2 (param has rank 2), got 'tensor<512xf32>'}}
  %0:3 = lora.adamw %p, %g, %m, %m lr(%lr) step(%s) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<8x64xf32>, tensor<512xf32>, tensor<8x64xf32>
  return
}

// -----

func.func @adamw_grad_shape(%p: tensor<8x64xf32>, %g: tensor<64x8xf32>, %m: tensor<8x64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{grad dim 0 (64) must equal param dim 0 (8), the parameter shape}}
  %0:3 = lora.adamw %p, %g, %m, %m lr(%lr) step(%s) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<8x64xf32>, tensor<64x8xf32>, tensor<8x64xf32>
  return
}

// -----

func.func @adamw_moment_rank(%p: tensor<8x64xf32>, %m: tensor<512xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{first_moment must have rank 2 (param has rank 2), got 'tensor<512xf32>'}}
  %0:3 = lora.adamw %p, %p, %m, %m lr(%lr) step(%s) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<512xf32>
  return
}

// -----

func.func @adamw_moment_shape(%p: tensor<8x64xf32>, %m: tensor<8x32xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{first_moment dim 1 (32) must equal param dim 1 (64), the parameter shape}}
  %0:3 = lora.adamw %p, %p, %m, %m lr(%lr) step(%s) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x32xf32>
  return
}

// -----

func.func @adamw_bf16_moment(%p: tensor<8x64xbf16>, %m: tensor<8x64xbf16>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{operand #2 must be ranked tensor of 32-bit float values}}
  %0:3 = lora.adamw %p, %p, %m, %m lr(%lr) step(%s) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<8x64xbf16>, tensor<8x64xbf16>, tensor<8x64xbf16>
  return
}

// -----

func.func @adamw_beta1(%p: tensor<8x64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{beta1 must be in [0.000000e+00, 1.000000e+00), got 1.000000e+00}}
  %0:3 = lora.adamw %p, %p, %p, %p lr(%lr) step(%s) betas(1.0, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
  return
}

// -----

func.func @adamw_beta2(%p: tensor<8x64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{beta2 must be in [0.000000e+00, 1.000000e+00), got -5.000000e-01}}
  %0:3 = lora.adamw %p, %p, %p, %p lr(%lr) step(%s) betas(0.9, -0.5) eps(1.0e-8) weight_decay(0.0) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
  return
}

// -----

func.func @adamw_epsilon(%p: tensor<8x64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{epsilon must be positive, got 0.000000e+00}}
  %0:3 = lora.adamw %p, %p, %p, %p lr(%lr) step(%s) betas(0.9, 0.999) eps(0.0) weight_decay(0.0) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
  return
}

// -----

func.func @adamw_weight_decay(%p: tensor<8x64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{weight_decay must be >= 0, got -1.000000e-02}}
  %0:3 = lora.adamw %p, %p, %p, %p lr(%lr) step(%s) betas(0.9, 0.999) eps(1.0e-8) weight_decay(-0.01) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
  return
}

// -----

func.func @adamw_norm_without_max(%p: tensor<8x64xf32>, %lr: tensor<f32>, %s: tensor<i64>, %n: tensor<f32>) {
  // expected-error @+1 {{grad_norm given without max_grad_norm}}
  %0:3 = "lora.adamw"(%p, %p, %p, %p, %lr, %s, %n) <{beta1 = 0.9 : f64, beta2 = 0.999 : f64, epsilon = 1.0e-8 : f64, weight_decay = 0.0 : f64}> : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @adamw_max_without_norm(%p: tensor<8x64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{max_grad_norm given without grad_norm}}
  %0:3 = "lora.adamw"(%p, %p, %p, %p, %lr, %s) <{beta1 = 0.9 : f64, beta2 = 0.999 : f64, epsilon = 1.0e-8 : f64, weight_decay = 0.0 : f64, max_grad_norm = 1.0 : f64}> : (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<f32>, tensor<i64>) -> (tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>)
  return
}

// -----

func.func @adamw_max_grad_norm(%p: tensor<8x64xf32>, %lr: tensor<f32>, %s: tensor<i64>, %n: tensor<f32>) {
  // expected-error @+1 {{max_grad_norm must be positive, got 0.000000e+00}}
  %0:3 = lora.adamw %p, %p, %p, %p lr(%lr) step(%s) clip(%n, 0.0) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// Result attributes
//===----------------------------------------------------------------------===//

// -----

// expected-error @+1 {{result #0: 'lora.name' must be a non-empty string (the tensor's name)}}
func.func @result_name_not_string(%x: tensor<f32>) -> (tensor<f32> {lora.name = 3 : i64}) { return %x : tensor<f32> }

// -----

// expected-error @+1 {{result #0: unknown lora result attribute 'lora.role' (expected 'lora.name')}}
func.func @result_role(%x: tensor<f32>) -> (tensor<f32> {lora.role = #lora.role<lora>}) { return %x : tensor<f32> }

// -----

func.func @linear_cross_entropy_hidden(%h: tensor<2x16x64xf32>, %w: tensor<1000x32xf32>, %labels: tensor<2x16xi32>) {
  // expected-error @+1 {{weight dim 1 (32) must equal input dim 2 (64), the hidden size}}
  %loss, %lse = lora.linear_cross_entropy %h, %w, %labels ignore_index(-100) : tensor<2x16x64xf32>, tensor<1000x32xf32>, tensor<2x16xi32> -> tensor<2x16xf32>
  return
}

// -----

func.func @linear_cross_entropy_labels(%h: tensor<2x16x64xf32>, %w: tensor<1000x64xf32>, %labels: tensor<2x8xi32>) {
  // expected-error @+1 {{labels dim 1 (8) must equal input dim 1 (16), the batch/sequence dims}}
  %loss, %lse = lora.linear_cross_entropy %h, %w, %labels ignore_index(-100) : tensor<2x16x64xf32>, tensor<1000x64xf32>, tensor<2x8xi32> -> tensor<2x16xf32>
  return
}

// -----

func.func @linear_cross_entropy_chunk(%h: tensor<2x16x64xf32>, %w: tensor<1000x64xf32>, %labels: tensor<2x16xi32>) {
  // expected-error @+1 {{attribute 'chunk' failed to satisfy constraint}}
  %loss, %lse = lora.linear_cross_entropy %h, %w, %labels ignore_index(-100) chunk(0) : tensor<2x16x64xf32>, tensor<1000x64xf32>, tensor<2x16xi32> -> tensor<2x16xf32>
  return
}

// -----

func.func @linear_cross_entropy_grad_weight(%h: tensor<2x16x64xf32>, %w: tensor<1000x64xf32>, %labels: tensor<2x16xi32>, %lse: tensor<2x16xf32>, %d: tensor<f32>) {
  // expected-error @+1 {{weight_grad type 'tensor<64x1000xf32>' must match weight type 'tensor<1000x64xf32>'}}
  %dh, %dw = lora.linear_cross_entropy_grad %h, %w, %labels, %lse, %d ignore_index(-100) : (tensor<2x16x64xf32>, tensor<1000x64xf32>, tensor<2x16xi32>, tensor<2x16xf32>, tensor<f32>) -> (tensor<2x16x64xf32>, tensor<64x1000xf32>)
  return
}

// -----

func.func @all_reduce_bf16(%g: tensor<8x16xbf16>) -> tensor<8x16xbf16> {
  // expected-error @+1 {{reduces f32 gradients (fp32 master gradients), got 'tensor<8x16xbf16>'}}
  %h = lora.all_reduce_start %g : tensor<8x16xbf16>
  %r = lora.all_reduce_wait %h : tensor<8x16xbf16>
  return %r : tensor<8x16xbf16>
}

// -----

func.func @all_reduce_read_in_flight(%g: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{must have exactly one use, a lora.all_reduce_wait}}
  %h = lora.all_reduce_start %g : tensor<8x16xf32>
  %r = lora.all_reduce_wait %h : tensor<8x16xf32>
  %s = lora.add %h, %r : tensor<8x16xf32>
  return %s : tensor<8x16xf32>
}

// -----

func.func @all_reduce_wait_alone(%g: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{waits for a lora.all_reduce_start's result}}
  %r = lora.all_reduce_wait %g : tensor<8x16xf32>
  return %r : tensor<8x16xf32>
}
