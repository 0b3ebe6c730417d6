// One LoRA training step of a one-layer Llama-style decoder, written by
// hand in the lora dialect: forward, loss, backward for the adapters only,
// global-norm clipping and AdamW.
//
// hidden 32, 4 query heads sharing 2 kv heads of dim 8, MLP 64, vocab 64,
// batch 2 x 8 tokens. Adapters of rank 4 with alpha 8 (scale 2) on q_proj
// and v_proj, PEFT's default targets. Everything else is frozen, so no
// gradient GEMM for a base weight appears below.
//
//   lora-opt examples/tiny-llama-lora-step.mlir -canonicalize -cse

func.func @train_step(
    %embed: tensor<64x32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.embed_tokens.weight"},
    %ln1: tensor<32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.input_layernorm.weight"},
    %wq: tensor<32x32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.self_attn.q_proj.weight"},
    %wk: tensor<16x32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.self_attn.k_proj.weight"},
    %wv: tensor<16x32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.self_attn.v_proj.weight"},
    %wo: tensor<32x32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.self_attn.o_proj.weight"},
    %ln2: tensor<32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.post_attention_layernorm.weight"},
    %wg: tensor<64x32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.mlp.gate_proj.weight"},
    %wu: tensor<64x32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.mlp.up_proj.weight"},
    %wd: tensor<32x64xf32> {lora.role = #lora.role<frozen>, lora.name = "model.layers.0.mlp.down_proj.weight"},
    %lnf: tensor<32xf32> {lora.role = #lora.role<frozen>, lora.name = "model.norm.weight"},
    %lm: tensor<64x32xf32> {lora.role = #lora.role<frozen>, lora.name = "lm_head.weight"},
    %qa: tensor<4x32xf32> {lora.role = #lora.role<lora>, lora.name = "model.layers.0.self_attn.q_proj.lora_A.weight"},
    %qb: tensor<32x4xf32> {lora.role = #lora.role<lora>, lora.name = "model.layers.0.self_attn.q_proj.lora_B.weight"},
    %va: tensor<4x32xf32> {lora.role = #lora.role<lora>, lora.name = "model.layers.0.self_attn.v_proj.lora_A.weight"},
    %vb: tensor<16x4xf32> {lora.role = #lora.role<lora>, lora.name = "model.layers.0.self_attn.v_proj.lora_B.weight"},
    %qa_m: tensor<4x32xf32>, %qa_v: tensor<4x32xf32>, %qb_m: tensor<32x4xf32>, %qb_v: tensor<32x4xf32>,
    %va_m: tensor<4x32xf32>, %va_v: tensor<4x32xf32>, %vb_m: tensor<16x4xf32>, %vb_v: tensor<16x4xf32>,
    %ids: tensor<2x8xi32>, %positions: tensor<2x8xi32>, %labels: tensor<2x8xi32>,
    %lr: tensor<f32>, %step: tensor<i64>)
    -> (tensor<f32>, tensor<4x32xf32>, tensor<32x4xf32>, tensor<4x32xf32>, tensor<16x4xf32>,
        tensor<4x32xf32>, tensor<4x32xf32>, tensor<32x4xf32>, tensor<32x4xf32>,
        tensor<4x32xf32>, tensor<4x32xf32>, tensor<16x4xf32>, tensor<16x4xf32>) {
  // ---- forward ----
  %h0 = lora.embedding %embed[%ids] : tensor<64x32xf32>, tensor<2x8xi32> -> tensor<2x8x32xf32>
  %n1 = lora.rms_norm %h0, %ln1 eps(1.0e-5) : tensor<2x8x32xf32>, tensor<32xf32>
  %q = lora.linear %n1, %wq adapter(%qa, %qb : tensor<4x32xf32>, tensor<32x4xf32>) scale(2.0) : tensor<2x8x32xf32>, tensor<32x32xf32> -> tensor<2x8x32xf32>
  %k = lora.linear %n1, %wk : tensor<2x8x32xf32>, tensor<16x32xf32> -> tensor<2x8x16xf32>
  %v = lora.linear %n1, %wv adapter(%va, %vb : tensor<4x32xf32>, tensor<16x4xf32>) scale(2.0) : tensor<2x8x32xf32>, tensor<16x32xf32> -> tensor<2x8x16xf32>
  %qr = lora.rope %q, %positions theta(10000.0) head_dim(8) : tensor<2x8x32xf32>, tensor<2x8xi32>
  %kr = lora.rope %k, %positions theta(10000.0) head_dim(8) : tensor<2x8x16xf32>, tensor<2x8xi32>
  %att = lora.attention %qr, %kr, %v heads(4) kv_heads(2) head_dim(8) : tensor<2x8x32xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>
  %o = lora.linear %att, %wo : tensor<2x8x32xf32>, tensor<32x32xf32> -> tensor<2x8x32xf32>
  %h1 = lora.add %h0, %o : tensor<2x8x32xf32>
  %n2 = lora.rms_norm %h1, %ln2 eps(1.0e-5) : tensor<2x8x32xf32>, tensor<32xf32>
  %g = lora.linear %n2, %wg : tensor<2x8x32xf32>, tensor<64x32xf32> -> tensor<2x8x64xf32>
  %u = lora.linear %n2, %wu : tensor<2x8x32xf32>, tensor<64x32xf32> -> tensor<2x8x64xf32>
  %m = lora.swiglu %g, %u : tensor<2x8x64xf32>
  %d = lora.linear %m, %wd : tensor<2x8x64xf32>, tensor<32x64xf32> -> tensor<2x8x32xf32>
  %h2 = lora.add %h1, %d : tensor<2x8x32xf32>
  %nf = lora.rms_norm %h2, %lnf eps(1.0e-5) : tensor<2x8x32xf32>, tensor<32xf32>
  %logits = lora.linear %nf, %lm : tensor<2x8x32xf32>, tensor<64x32xf32> -> tensor<2x8x64xf32>
  %loss = lora.cross_entropy %logits, %labels ignore_index(-100) : tensor<2x8x64xf32>, tensor<2x8xi32>

  // ---- backward: activation gradients down to the adapted layers ----
  %one = arith.constant dense<1.0> : tensor<f32>
  %dlogits = lora.cross_entropy_grad %logits, %labels, %one ignore_index(-100) : tensor<2x8x64xf32>, tensor<2x8xi32>
  %dnf = lora.linear_grad_input %dlogits, %lm : tensor<2x8x64xf32>, tensor<64x32xf32> -> tensor<2x8x32xf32>
  %dh2, %dlnf = lora.rms_norm_grad %h2, %lnf, %dnf eps(1.0e-5) : tensor<2x8x32xf32>, tensor<32xf32>
  %dm = lora.linear_grad_input %dh2, %wd : tensor<2x8x32xf32>, tensor<32x64xf32> -> tensor<2x8x64xf32>
  %dg, %du = lora.swiglu_grad %g, %u, %dm : tensor<2x8x64xf32>
  %dn2g = lora.linear_grad_input %dg, %wg : tensor<2x8x64xf32>, tensor<64x32xf32> -> tensor<2x8x32xf32>
  %dn2u = lora.linear_grad_input %du, %wu : tensor<2x8x64xf32>, tensor<64x32xf32> -> tensor<2x8x32xf32>
  %dn2 = lora.add %dn2g, %dn2u : tensor<2x8x32xf32>
  %dh1n, %dln2 = lora.rms_norm_grad %h1, %ln2, %dn2 eps(1.0e-5) : tensor<2x8x32xf32>, tensor<32xf32>
  %dh1 = lora.add %dh2, %dh1n : tensor<2x8x32xf32>
  %datt = lora.linear_grad_input %dh1, %wo : tensor<2x8x32xf32>, tensor<32x32xf32> -> tensor<2x8x32xf32>
  %dqr, %dkr, %dv = lora.attention_grad %qr, %kr, %v, %att, %datt heads(4) kv_heads(2) head_dim(8) : tensor<2x8x32xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>
  %dq = lora.rope_grad %dqr, %positions theta(10000.0) head_dim(8) : tensor<2x8x32xf32>, tensor<2x8xi32>

  // ---- backward: adapter weight gradients, U = n1·Aᵀ, dU = s·dY·B ----
  %uq = lora.linear %n1, %qa : tensor<2x8x32xf32>, tensor<4x32xf32> -> tensor<2x8x4xf32>
  %dqb = lora.linear_grad_weight %dq, %uq scale(2.0) : tensor<2x8x32xf32>, tensor<2x8x4xf32> -> tensor<32x4xf32>
  %duq = lora.linear_grad_input %dq, %qb scale(2.0) : tensor<2x8x32xf32>, tensor<32x4xf32> -> tensor<2x8x4xf32>
  %dqa = lora.linear_grad_weight %duq, %n1 : tensor<2x8x4xf32>, tensor<2x8x32xf32> -> tensor<4x32xf32>
  %uv = lora.linear %n1, %va : tensor<2x8x32xf32>, tensor<4x32xf32> -> tensor<2x8x4xf32>
  %dvb = lora.linear_grad_weight %dv, %uv scale(2.0) : tensor<2x8x16xf32>, tensor<2x8x4xf32> -> tensor<16x4xf32>
  %duv = lora.linear_grad_input %dv, %vb scale(2.0) : tensor<2x8x16xf32>, tensor<16x4xf32> -> tensor<2x8x4xf32>
  %dva = lora.linear_grad_weight %duv, %n1 : tensor<2x8x4xf32>, tensor<2x8x32xf32> -> tensor<4x32xf32>

  // ---- optimizer: clip to global norm 1, AdamW ----
  %norm = lora.global_norm %dqa, %dqb, %dva, %dvb : tensor<4x32xf32>, tensor<32x4xf32>, tensor<4x32xf32>, tensor<16x4xf32>
  %qa2, %qa_m2, %qa_v2 = lora.adamw %qa, %dqa, %qa_m, %qa_v lr(%lr) step(%step) clip(%norm, 1.0) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<4x32xf32>, tensor<4x32xf32>, tensor<4x32xf32>
  %qb2, %qb_m2, %qb_v2 = lora.adamw %qb, %dqb, %qb_m, %qb_v lr(%lr) step(%step) clip(%norm, 1.0) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<32x4xf32>, tensor<32x4xf32>, tensor<32x4xf32>
  %va2, %va_m2, %va_v2 = lora.adamw %va, %dva, %va_m, %va_v lr(%lr) step(%step) clip(%norm, 1.0) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<4x32xf32>, tensor<4x32xf32>, tensor<4x32xf32>
  %vb2, %vb_m2, %vb_v2 = lora.adamw %vb, %dvb, %vb_m, %vb_v lr(%lr) step(%step) clip(%norm, 1.0) betas(0.9, 0.999) eps(1.0e-8) weight_decay(0.0) : tensor<16x4xf32>, tensor<16x4xf32>, tensor<16x4xf32>
  return %loss, %qa2, %qb2, %va2, %vb2, %qa_m2, %qa_v2, %qb_m2, %qb_v2, %va_m2, %va_v2, %vb_m2, %vb_v2
      : tensor<f32>, tensor<4x32xf32>, tensor<32x4xf32>, tensor<4x32xf32>, tensor<16x4xf32>,
        tensor<4x32xf32>, tensor<4x32xf32>, tensor<32x4xf32>, tensor<32x4xf32>,
        tensor<4x32xf32>, tensor<4x32xf32>, tensor<16x4xf32>, tensor<16x4xf32>
}
