// lora-set-trainable: which base weights become `full`.
// RUN: lora-opt %s -lora-set-trainable="full=mlp.gate_proj,up_proj" | FileCheck %s --check-prefix=MLP
// RUN: lora-opt %s -lora-set-trainable="full=all" | FileCheck %s --check-prefix=ALL
// RUN: lora-opt %s -lora-set-trainable="full=all-linear" | FileCheck %s --check-prefix=LINEAR
// RUN: lora-opt %s -lora-set-trainable="full=norm,lm_head" | FileCheck %s --check-prefix=NORM
// RUN: not lora-opt %s -lora-set-trainable="full=gate" 2>&1 | FileCheck %s --check-prefix=UNKNOWN

// Listed modules train in full; adapters stay adapters, inputs stay inputs.
// MLP-LABEL: func.func @model
// MLP-SAME: {lora.name = "model.layers.0.post_attention_layernorm.weight", lora.role = #lora.role<frozen>}
// MLP-SAME: {lora.name = "model.layers.0.mlp.gate_proj.weight", lora.role = #lora.role<full>}
// MLP-SAME: {lora.name = "model.layers.0.mlp.gate_proj.lora_A.weight", lora.role = #lora.role<lora>}
// MLP-SAME: {lora.name = "model.layers.0.mlp.up_proj.weight", lora.role = #lora.role<full>}
// MLP-SAME: {lora.name = "lm_head.weight", lora.role = #lora.role<frozen>}
// MLP-SAME: {lora.name = "input"})

// ALL-LABEL: func.func @model
// ALL-SAME: "model.layers.0.post_attention_layernorm.weight", lora.role = #lora.role<full>}
// ALL-SAME: "model.layers.0.mlp.gate_proj.weight", lora.role = #lora.role<full>}
// ALL-SAME: "model.layers.0.mlp.gate_proj.lora_A.weight", lora.role = #lora.role<lora>}
// ALL-SAME: "model.layers.0.mlp.up_proj.weight", lora.role = #lora.role<full>}
// ALL-SAME: "lm_head.weight", lora.role = #lora.role<full>}
// ALL-SAME: {lora.name = "input"})

// all-linear leaves lm_head and norms out.
// LINEAR-LABEL: func.func @model
// LINEAR-SAME: "model.layers.0.post_attention_layernorm.weight", lora.role = #lora.role<frozen>}
// LINEAR-SAME: "model.layers.0.mlp.gate_proj.weight", lora.role = #lora.role<full>}
// LINEAR-SAME: "model.layers.0.mlp.up_proj.weight", lora.role = #lora.role<full>}
// LINEAR-SAME: "lm_head.weight", lora.role = #lora.role<frozen>}

// NORM-LABEL: func.func @model
// NORM-SAME: "model.layers.0.post_attention_layernorm.weight", lora.role = #lora.role<full>}
// NORM-SAME: "model.layers.0.mlp.gate_proj.weight", lora.role = #lora.role<frozen>}
// NORM-SAME: "lm_head.weight", lora.role = #lora.role<full>}

// UNKNOWN: error: lora-set-trainable: target module 'gate' matches no module of the model (modules: post_attention_layernorm, gate_proj, up_proj, lm_head)
func.func @model(%norm: tensor<16xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.post_attention_layernorm.weight"},
                 %gate: tensor<32x16xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.mlp.gate_proj.weight"},
                 %gate_a: tensor<4x16xf32> {lora.role = #lora.role<lora>, lora.name = "model.layers.0.mlp.gate_proj.lora_A.weight"},
                 %gate_b: tensor<32x4xf32> {lora.role = #lora.role<lora>, lora.name = "model.layers.0.mlp.gate_proj.lora_B.weight"},
                 %up: tensor<32x16xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.mlp.up_proj.weight"},
                 %lm: tensor<64x32xf32> {lora.role = #lora.role<frozen>, lora.name = "lm_head.weight"},
                 %x: tensor<2x16xf32> {lora.name = "input"}) -> tensor<2x64xf32> {
  %n = lora.rms_norm %x, %norm eps(1.0e-5) : tensor<2x16xf32>, tensor<16xf32>
  %g = lora.linear %n, %gate adapter(%gate_a, %gate_b : tensor<4x16xf32>, tensor<32x4xf32>) scale(2.0) : tensor<2x16xf32>, tensor<32x16xf32> -> tensor<2x32xf32>
  %u = lora.linear %n, %up : tensor<2x16xf32>, tensor<32x16xf32> -> tensor<2x32xf32>
  %m = lora.swiglu %g, %u : tensor<2x32xf32>
  %l = lora.linear %m, %lm : tensor<2x32xf32>, tensor<64x32xf32> -> tensor<2x64xf32>
  return %l : tensor<2x64xf32>
}
