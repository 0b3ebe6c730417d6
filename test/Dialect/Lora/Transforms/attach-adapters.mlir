// lora-attach-adapters: which layers get adapters, their parameters, scale
// and dropout, and the errors for bad options.
// RUN: lora-opt %s -split-input-file -lora-attach-adapters | FileCheck %s --check-prefix=ALL
// RUN: lora-opt %s -split-input-file -lora-attach-adapters="target-modules=self_attn.q_proj,down_proj rank=4 alpha=16" | FileCheck %s --check-prefix=SOME
// RUN: lora-opt %s -split-input-file -lora-attach-adapters="target-modules=q_proj rank=4 alpha=16 use-rslora=true dropout=0.1" | FileCheck %s --check-prefix=RS
// RUN: not lora-opt %s -split-input-file -lora-attach-adapters="rank=0" 2>&1 | FileCheck %s --check-prefix=RANK
// RUN: not lora-opt %s -split-input-file -lora-attach-adapters="target-modules=qkv_proj" 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not lora-opt %s -split-input-file -lora-attach-adapters="dropout=1.0" 2>&1 | FileCheck %s --check-prefix=DROPOUT

// all-linear (the default) adapts q_proj and down_proj but not lm_head,
// with rank 8 and alpha 2 * rank, so scale 2. A follows its weight.
// ALL-LABEL: func.func @layer
// ALL-SAME: %[[Q:[^:]+]]: tensor<32x16xf32> {lora.name = "model.layers.0.self_attn.q_proj.weight", lora.role = #lora.role<frozen>}
// ALL-SAME: %[[QA:[^:]+]]: tensor<8x16xf32> {lora.name = "model.layers.0.self_attn.q_proj.lora_A.weight", lora.role = #lora.role<lora>}
// ALL-SAME: %[[QB:[^:]+]]: tensor<32x8xf32> {lora.name = "model.layers.0.self_attn.q_proj.lora_B.weight", lora.role = #lora.role<lora>}
// ALL-SAME: {lora.name = "model.layers.0.mlp.down_proj.weight"
// ALL-SAME: tensor<8x32xf32> {lora.name = "model.layers.0.mlp.down_proj.lora_A.weight"
// ALL-SAME: tensor<16x8xf32> {lora.name = "model.layers.0.mlp.down_proj.lora_B.weight"
// ALL-SAME: %[[LM:[^:]+]]: tensor<64x16xf32> {lora.name = "lm_head.weight", lora.role = #lora.role<frozen>}
// ALL-NOT: lm_head.lora
// ALL: lora.linear %{{.+}}, %[[Q]] adapter(%[[QA]], %[[QB]] : tensor<8x16xf32>, tensor<32x8xf32>) scale(2.000000e+00)
// ALL: lora.linear %{{.+}}, %{{.+}} adapter(%{{.+}}) scale(2.000000e+00)
// ALL: lora.linear %{{.+}}, %[[LM]] :

// Targets match the end of the module path; alpha 16 / rank 4 = 4.
// SOME-LABEL: func.func @layer
// SOME-SAME: tensor<4x16xf32> {lora.name = "model.layers.0.self_attn.q_proj.lora_A.weight"
// SOME-SAME: tensor<16x4xf32> {lora.name = "model.layers.0.mlp.down_proj.lora_B.weight"
// SOME: adapter({{.+}}) scale(4.000000e+00) :
// SOME: adapter({{.+}}) scale(4.000000e+00) :
// SOME-NOT: adapter

// rsLoRA scales by alpha / sqrt(rank) = 16 / 2; dropout adds a seed
// argument, and each adapted layer gets seed + its index.
// RS-LABEL: func.func @layer
// RS-SAME: %[[SEED:[^:]+]]: tensor<i64> {lora.name = "dropout_seed"})
// RS: %[[ZERO:.+]] = arith.constant dense<0> : tensor<i64>
// RS: %[[S0:.+]] = arith.addi %[[SEED]], %[[ZERO]] : tensor<i64>
// RS: adapter({{.+}}) scale(8.000000e+00) dropout(1.000000e-01, %[[S0]])
// RS-NOT: adapter(

// RANK: error: lora-attach-adapters: rank must be > 0, got 0
// UNKNOWN: error: lora-attach-adapters: target module 'qkv_proj' matches no module of the model (modules: q_proj, down_proj, lm_head)
// DROPOUT: error: lora-attach-adapters: dropout must be in [0, 1), got 1.000000e+00
func.func @layer(%x: tensor<2x16xf32>,
                 %wq: tensor<32x16xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.self_attn.q_proj.weight"},
                 %wd: tensor<16x32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.mlp.down_proj.weight"},
                 %lm: tensor<64x16xf32> {lora.role = #lora.role<frozen>, lora.name = "lm_head.weight"})
    -> tensor<2x64xf32> {
  %q = lora.linear %x, %wq : tensor<2x16xf32>, tensor<32x16xf32> -> tensor<2x32xf32>
  %d = lora.linear %q, %wd : tensor<2x32xf32>, tensor<16x32xf32> -> tensor<2x16xf32>
  %l = lora.linear %d, %lm : tensor<2x16xf32>, tensor<64x16xf32> -> tensor<2x64xf32>
  return %l : tensor<2x64xf32>
}
