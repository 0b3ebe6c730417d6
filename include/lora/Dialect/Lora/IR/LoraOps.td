//===- LoraOps.td - lora dialect operations ----------------*- tablegen -*-===//
//
// Forward ops of a Llama-family decoder, their backward ops, and AdamW.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_DIALECT_LORA_IR_LORAOPS_TD
#define LORA_DIALECT_LORA_IR_LORAOPS_TD

include "lora/Dialect/Lora/IR/LoraDialect.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/IR/CommonAttrConstraints.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Lora_FloatTensor : RankedTensorOf<[F32, F16, BF16]>;
def Lora_IdTensor : RankedTensorOf<[I32, I64]>;
def Lora_F32Scalar : 0DTensorOf<[F32]>,
    BuildableType<"::mlir::RankedTensorType::get({}, $_builder.getF32Type())">;
def Lora_I64Scalar : 0DTensorOf<[I64]>,
    BuildableType<"::mlir::RankedTensorType::get({}, $_builder.getI64Type())">;

def Lora_PositiveI64Attr : ConfinedAttr<I64Attr, [IntPositive]>;

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

def Lora_EmbeddingOp : Lora_Op<"embedding"> {
  let summary = "Token embedding lookup";
  let description = [{
    Gathers rows of `table` ([vocab, hidden]) at the token ids `ids`. The
    result has the shape of `ids` followed by `hidden`. An id outside
    `[0, vocab)` is a runtime error.

    ```mlir
    %h = lora.embedding %table[%ids]
        : tensor<256x64xf32>, tensor<2x16xi32> -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$table, Lora_IdTensor:$ids);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $table `[` $ids `]` attr-dict `:` type($table) `,` type($ids) `->`
    type($result)
  }];
}

def Lora_EmbeddingGradOp : Lora_Op<"embedding_grad"> {
  let summary = "Gradient of the embedding table (scatter-add of rows)";
  let description = [{
    `result[v, :] = sum over positions p with ids[p] == v of dy[p, :]`.
    The vocabulary size comes from the result type.

    ```mlir
    %dtable = lora.embedding_grad %dh[%ids]
        : tensor<2x16x64xf32>, tensor<2x16xi32> -> tensor<256x64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$grad, Lora_IdTensor:$ids);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `[` $ids `]` attr-dict `:` type($grad) `,` type($ids) `->`
    type($result)
  }];
}

//===----------------------------------------------------------------------===//
// RMSNorm
//===----------------------------------------------------------------------===//

def Lora_RMSNormOp : Lora_Op<"rms_norm",
    [AllTypesMatch<["input", "result"]>]> {
  let summary = "Root-mean-square layer norm over the last dimension";
  let description = [{
    `result = input / sqrt(mean(input², last dim) + epsilon) * weight`, as
    Llama's `LlamaRMSNorm` (the normalization is computed in f32).

    ```mlir
    %n = lora.rms_norm %h, %w eps(1.0e-05)
        : tensor<2x16x64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$input, Lora_FloatTensor:$weight,
                       F64Attr:$epsilon);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `eps` `(` $epsilon `)` attr-dict `:` type($input) `,`
    type($weight)
  }];
}

def Lora_RMSNormGradOp : Lora_Op<"rms_norm_grad",
    [AllTypesMatch<["input", "grad", "input_grad"]>,
     AllTypesMatch<["weight", "weight_grad"]>]> {
  let summary = "Gradients of rms_norm with respect to its input and weight";
  let description = [{
    Given the forward input, the weight and the gradient of the output,
    returns `(d input, d weight)`; `d weight` sums over all leading dims.

    ```mlir
    %dx, %dw = lora.rms_norm_grad %h, %w, %dn eps(1.0e-05)
        : tensor<2x16x64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$input, Lora_FloatTensor:$weight,
                       Lora_FloatTensor:$grad, F64Attr:$epsilon);
  let results = (outs Lora_FloatTensor:$input_grad,
                      Lora_FloatTensor:$weight_grad);
  let assemblyFormat = [{
    $input `,` $weight `,` $grad `eps` `(` $epsilon `)` attr-dict `:`
    type($input) `,` type($weight)
  }];
}

//===----------------------------------------------------------------------===//
// Linear layers with an optional low-rank adapter
//===----------------------------------------------------------------------===//

def Lora_LinearOp : Lora_Op<"linear", [AttrSizedOperandSegments]> {
  let summary = "Linear layer `X·Wᵀ`, optionally with a LoRA adapter";
  let description = [{
    Without an adapter: `result = input · weightᵀ`, `weight` being
    [out, in] as in PyTorch. With an adapter `A` ([rank, in]) and `B`
    ([out, rank]):

    `result = input · weightᵀ + scale · dropout(input) · Aᵀ · Bᵀ`

    where `scale` is `alpha / rank` (or `alpha / sqrt(rank)` for rsLoRA),
    decided by whoever attaches the adapter. Dropout, when its rate is not
    zero, applies only to the adapter's input and draws its mask from `seed`
    exactly as `lora.dropout` does, so the backward can rebuild it.

    ```mlir
    %y = lora.linear %x, %w : tensor<2x16x64xf32>, tensor<128x64xf32>
        -> tensor<2x16x128xf32>
    %z = lora.linear %x, %w adapter(%a, %b : tensor<8x64xf32>,
        tensor<128x8xf32>) scale(2.0) dropout(0.05, %seed)
        : tensor<2x16x64xf32>, tensor<128x64xf32> -> tensor<2x16x128xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$input, Lora_FloatTensor:$weight,
                       Optional<Lora_FloatTensor>:$lora_a,
                       Optional<Lora_FloatTensor>:$lora_b,
                       Optional<Lora_I64Scalar>:$seed,
                       OptionalAttr<F64Attr>:$scale,
                       OptionalAttr<F64Attr>:$dropout);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight
    (`adapter` `(` $lora_a^ `,` $lora_b `:` type($lora_a) `,` type($lora_b)
      `)`)?
    (`scale` `(` $scale^ `)`)?
    (`dropout` `(` $dropout^ `,` $seed `)`)?
    attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let extraClassDeclaration = [{
    /// True when the layer carries a low-rank adapter.
    bool hasAdapter() { return getLoraA() != nullptr; }
    /// The adapter's rank, or 0 without an adapter (or a dynamic rank).
    int64_t getRank();
  }];
  let hasCanonicalizer = 1;
}

def Lora_LinearGradInputOp : Lora_Op<"linear_grad_input"> {
  let summary = "Input gradient of a linear layer: `scale · dY · W`";
  let description = [{
    `grad` is [..., out], `weight` is [out, in]; the result is [..., in].
    With an adapter the backward uses it three times: `dX = dY·W + dU·A` and
    `dU = s·dY·B`.

    ```mlir
    %dx = lora.linear_grad_input %dy, %w
        : tensor<2x16x128xf32>, tensor<128x64xf32> -> tensor<2x16x64xf32>
    %du = lora.linear_grad_input %dy, %b scale(2.0)
        : tensor<2x16x128xf32>, tensor<128x8xf32> -> tensor<2x16x8xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$grad, Lora_FloatTensor:$weight,
                       DefaultValuedAttr<F64Attr, "1.0">:$scale);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $weight (`scale` `(` $scale^ `)`)? attr-dict `:` type($grad)
    `,` type($weight) `->` type($result)
  }];
}

def Lora_LinearGradWeightOp : Lora_Op<"linear_grad_weight"> {
  let summary = "Weight gradient of a linear layer: `scale · dYᵀ · X`";
  let description = [{
    `grad` is [..., out] and `input` is [..., in] with the same leading
    dims, which are all contracted; the result is [out, in]. For an adapter
    `dB = s·dYᵀ·U` and `dA = dUᵀ·dropout(X)`.

    ```mlir
    %dw = lora.linear_grad_weight %dy, %x
        : tensor<2x16x128xf32>, tensor<2x16x64xf32> -> tensor<128x64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$grad, Lora_FloatTensor:$input,
                       DefaultValuedAttr<F64Attr, "1.0">:$scale);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $input (`scale` `(` $scale^ `)`)? attr-dict `:` type($grad)
    `,` type($input) `->` type($result)
  }];
}

def Lora_AdapterGradOp : Lora_Op<"adapter_grad"> {
  let summary = "A LoRA adapter's backward: `dU`, `dB` and `dA` at once";
  let description = [{
    With `grad` = dY ([..., out]), `lora_b` = B ([out, r]), `u` = the
    forward's U = X·Aᵀ ([..., r]) and, when present, `input` = X ([..., in]):

    `du = scale · dY · B`, `db = scale · dYᵀ · U`, `da = duᵀ · X`

    `lora-fuse-adapters` emits it in place of the adapter's two or three
    gradient GEMMs, which each read a whole activation for r output
    columns or rows. Without `input` (the base weight trains too, and dA
    comes from the `[dW; dA]` GEMM) there is no `da`. On the CPU it becomes
    one runtime call (`lora_adapter_grad_f32`) that reads dY and X once;
    elsewhere `convert-lora-to-linalg` lowers it to the three GEMMs.

    ```mlir
    %du, %db, %da = lora.adapter_grad %dy, %b, %u input(%x : tensor<2x16x64xf32>)
        scale(2.0) : tensor<2x16x128xf32>, tensor<128x8xf32>,
        tensor<2x16x8xf32> -> tensor<2x16x8xf32>, tensor<128x8xf32>,
        tensor<8x64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$grad, Lora_FloatTensor:$lora_b,
                       Lora_FloatTensor:$u, Optional<Lora_FloatTensor>:$input,
                       DefaultValuedAttr<F64Attr, "1.0">:$scale);
  let results = (outs Lora_FloatTensor:$du, Lora_FloatTensor:$db,
                      Optional<Lora_FloatTensor>:$da);
  let assemblyFormat = [{
    $grad `,` $lora_b `,` $u (`input` `(` $input^ `:` type($input) `)`)?
    (`scale` `(` $scale^ `)`)? attr-dict `:` type($grad) `,` type($lora_b)
    `,` type($u) `->` type(results)
  }];
}

def Lora_LowRankUpdateOp : Lora_Op<"low_rank_update",
    [AllTypesMatch<["base", "result"]>]> {
  let summary = "Rank-r update of a GEMM's output: `base + scale · U · Bᵀ`";
  let description = [{
    `base` is [..., out], `u` is [..., r] with the same leading dims and
    `lora_b` is [out, r]. `lora-fuse-adapters` emits it for the adapter's
    second GEMM, whose product is accumulated into the base GEMM's output
    (a GEMM epilogue with β = 1) instead of being added afterwards.

    ```mlir
    %y = lora.low_rank_update %y0, %u, %b scale(2.0)
        : tensor<2x16x128xf32>, tensor<2x16x8xf32>, tensor<128x8xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$base, Lora_FloatTensor:$u,
                       Lora_FloatTensor:$lora_b,
                       DefaultValuedAttr<F64Attr, "1.0">:$scale);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $base `,` $u `,` $lora_b (`scale` `(` $scale^ `)`)? attr-dict `:`
    type($base) `,` type($u) `,` type($lora_b)
  }];
}

def Lora_DropoutOp : Lora_Op<"dropout",
    [AllTypesMatch<["input", "result"]>]> {
  let summary = "Inverted dropout with a mask derived from a seed";
  let description = [{
    `result[i] = keep(seed, i) ? input[i] / (1 - rate) : 0` with `i` the
    row-major flat index and

    `keep(seed, i) = (splitmix64(splitmix64(seed) xor i) >> 11) · 2^-53 >= rate`

    (`runtime/include/lora/runtime/Dropout.h`), so the same seed gives the
    same mask in the forward and the backward, on every backend. Applying
    the op to a gradient with the same seed is the dropout's backward.

    ```mlir
    %d = lora.dropout %x rate(0.1) seed(%seed) : tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$input, Lora_I64Scalar:$seed,
                       F64Attr:$rate);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $input `rate` `(` $rate `)` `seed` `(` $seed `)` attr-dict `:`
    type($input)
  }];
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Rotary position embedding
//===----------------------------------------------------------------------===//

def Lora_RoPEOp : Lora_Op<"rope", [AllTypesMatch<["input", "result"]>]> {
  let summary = "Rotary position embedding, Hugging Face half-split layout";
  let description = [{
    `input` is [..., seq, heads·head_dim]; `positions` is [..., seq] with
    the same leading dims. In each head, element `i < head_dim/2` is rotated
    with element `i + head_dim/2` by the angle
    `position · theta^(-2i/head_dim)` (`rotate_half` in transformers).

    ```mlir
    %qr = lora.rope %q, %pos theta(10000.0) head_dim(16)
        : tensor<2x16x64xf32>, tensor<2x16xi32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$input, Lora_IdTensor:$positions,
                       F64Attr:$theta, Lora_PositiveI64Attr:$head_dim);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $positions `theta` `(` $theta `)` `head_dim` `(` $head_dim `)`
    attr-dict `:` type($input) `,` type($positions)
  }];
}

def Lora_RoPEGradOp : Lora_Op<"rope_grad",
    [AllTypesMatch<["grad", "result"]>]> {
  let summary = "Gradient of rope: the rotation by the negative angle";
  let description = [{
    The rotation is orthogonal, so its gradient rotates `grad` back.

    ```mlir
    %dq = lora.rope_grad %dqr, %pos theta(10000.0) head_dim(16)
        : tensor<2x16x64xf32>, tensor<2x16xi32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$grad, Lora_IdTensor:$positions,
                       F64Attr:$theta, Lora_PositiveI64Attr:$head_dim);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $positions `theta` `(` $theta `)` `head_dim` `(` $head_dim `)`
    attr-dict `:` type($grad) `,` type($positions)
  }];
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

def Lora_AttentionOp : Lora_Op<"attention",
    [AllTypesMatch<["query", "result"]>]> {
  let summary = "Causal self-attention with grouped-query heads";
  let description = [{
    `query` is [batch, seq, num_heads·head_dim], `key` and `value` are
    [batch, seq, num_kv_heads·head_dim]; query head `h` attends to kv head
    `h / (num_heads / num_kv_heads)`. Position `t` sees positions `<= t`.
    Scores are scaled by `scale`, `1/sqrt(head_dim)` when absent.

    ```mlir
    %o = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(16)
        : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$query, Lora_FloatTensor:$key,
                       Lora_FloatTensor:$value,
                       Lora_PositiveI64Attr:$num_heads,
                       Lora_PositiveI64Attr:$num_kv_heads,
                       Lora_PositiveI64Attr:$head_dim,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `heads` `(` $num_heads `)` `kv_heads` `(`
    $num_kv_heads `)` `head_dim` `(` $head_dim `)` (`scale` `(` $scale^ `)`)?
    attr-dict `:` type($query) `,` type($key) `,` type($value)
  }];
  let extraClassDeclaration = [{
    /// The score scale: the attribute, or 1/sqrt(head_dim).
    double getScaleOrDefault();
  }];
}

def Lora_AttentionGradOp : Lora_Op<"attention_grad",
    [AllTypesMatch<["query", "output", "grad", "query_grad"]>,
     AllTypesMatch<["key", "key_grad"]>,
     AllTypesMatch<["value", "value_grad"]>]> {
  let summary = "Gradients of attention with respect to query, key, value";
  let description = [{
    Takes the forward operands, the forward output and its gradient;
    returns `(d query, d key, d value)`. Gradients of query heads that share
    a kv head are summed into it.

    ```mlir
    %dq, %dk, %dv = lora.attention_grad %q, %k, %v, %o, %do heads(4)
        kv_heads(2) head_dim(16)
        : tensor<2x16x64xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$query, Lora_FloatTensor:$key,
                       Lora_FloatTensor:$value, Lora_FloatTensor:$output,
                       Lora_FloatTensor:$grad,
                       Lora_PositiveI64Attr:$num_heads,
                       Lora_PositiveI64Attr:$num_kv_heads,
                       Lora_PositiveI64Attr:$head_dim,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Lora_FloatTensor:$query_grad,
                      Lora_FloatTensor:$key_grad,
                      Lora_FloatTensor:$value_grad);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $output `,` $grad `heads` `(` $num_heads
    `)` `kv_heads` `(` $num_kv_heads `)` `head_dim` `(` $head_dim `)`
    (`scale` `(` $scale^ `)`)? attr-dict `:` type($query) `,` type($key) `,`
    type($value)
  }];
  let extraClassDeclaration = [{
    /// The score scale: the attribute, or 1/sqrt(head_dim).
    double getScaleOrDefault();
  }];
}

//===----------------------------------------------------------------------===//
// Elementwise: SwiGLU and residual add
//===----------------------------------------------------------------------===//

def Lora_SwiGLUOp : Lora_Op<"swiglu",
    [AllTypesMatch<["gate", "up", "result"]>]> {
  let summary = "SwiGLU: `silu(gate) · up`";
  let description = [{
    ```mlir
    %m = lora.swiglu %g, %u : tensor<2x16x128xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$gate, Lora_FloatTensor:$up);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
  // AllTypesMatch checks everything there is to check.
  let hasVerifier = 0;
}

def Lora_SwiGLUGradOp : Lora_Op<"swiglu_grad",
    [AllTypesMatch<["gate", "up", "grad", "gate_grad", "up_grad"]>]> {
  let summary = "Gradients of swiglu with respect to gate and up";
  let description = [{
    ```mlir
    %dg, %du = lora.swiglu_grad %g, %u, %dm : tensor<2x16x128xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$gate, Lora_FloatTensor:$up,
                       Lora_FloatTensor:$grad);
  let results = (outs Lora_FloatTensor:$gate_grad, Lora_FloatTensor:$up_grad);
  let assemblyFormat = "$gate `,` $up `,` $grad attr-dict `:` type($grad)";
  // AllTypesMatch checks everything there is to check.
  let hasVerifier = 0;
}

def Lora_AddOp : Lora_Op<"add", [Commutative,
    AllTypesMatch<["lhs", "rhs", "result"]>]> {
  let summary = "Elementwise sum: residual connections, gradient accumulation";
  let description = [{
    ```mlir
    %h2 = lora.add %h, %o : tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$lhs, Lora_FloatTensor:$rhs);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
  // AllTypesMatch checks everything there is to check.
  let hasVerifier = 0;
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

def Lora_CrossEntropyOp : Lora_Op<"cross_entropy"> {
  let summary = "Mean token cross-entropy with ignored positions";
  let description = [{
    `logits` is [..., vocab], `labels` is [...] (already shifted: the label
    at position t is the token at t+1). Positions whose label equals
    `ignore_index` (prompt tokens, padding) do not count; the result is the
    mean over the others, and 0 when none counts.

    ```mlir
    %loss = lora.cross_entropy %logits, %labels ignore_index(-100)
        : tensor<2x16x256xf32>, tensor<2x16xi32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$logits, Lora_IdTensor:$labels,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs Lora_F32Scalar:$loss);
  let assemblyFormat = [{
    $logits `,` $labels `ignore_index` `(` $ignore_index `)` attr-dict `:`
    type($logits) `,` type($labels)
  }];
}

def Lora_CrossEntropyGradOp : Lora_Op<"cross_entropy_grad",
    [AllTypesMatch<["logits", "logits_grad"]>]> {
  let summary = "Gradient of the mean cross-entropy with respect to logits";
  let description = [{
    `(softmax(logits) - onehot(label)) · loss_grad / count` on counted
    positions, 0 on ignored ones.

    ```mlir
    %dlogits = lora.cross_entropy_grad %logits, %labels, %dloss
        ignore_index(-100) : tensor<2x16x256xf32>, tensor<2x16xi32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$logits, Lora_IdTensor:$labels,
                       Lora_F32Scalar:$loss_grad,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs Lora_FloatTensor:$logits_grad);
  let assemblyFormat = [{
    $logits `,` $labels `,` $loss_grad `ignore_index` `(` $ignore_index `)`
    attr-dict `:` type($logits) `,` type($labels)
  }];
}

//===----------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------===//

def Lora_LinearCrossEntropyOp : Lora_Op<"linear_cross_entropy"> {
  let summary = "Output projection and mean cross-entropy, vocabulary in chunks";
  let description = [{
    The loss of `cross_entropy(linear(input, weight), labels)` without the
    [tokens, vocab] logits: the vocabulary is walked `chunk` rows of
    `weight` at a time, each chunk's logits made by one GEMM and folded into
    a running max and sum of exponentials per token (an online
    log-sum-exp). `input` is [..., hidden], `weight` is [vocab, hidden],
    `labels` is [...]. The second result is each token's log-sum-exp, which
    `lora.linear_cross_entropy_grad` reuses. `lora-fuse-linear-cross-entropy`
    emits it.

    ```mlir
    %loss, %lse = lora.linear_cross_entropy %h, %w, %labels
        ignore_index(-100) chunk(256)
        : tensor<2x16x64xf32>, tensor<1024x64xf32>, tensor<2x16xi32>
        -> tensor<2x16xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$input, Lora_FloatTensor:$weight,
                       Lora_IdTensor:$labels,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
                       DefaultValuedAttr<Lora_PositiveI64Attr, "256">:$chunk);
  let results = (outs Lora_F32Scalar:$loss, Lora_FloatTensor:$lse);
  let assemblyFormat = [{
    $input `,` $weight `,` $labels `ignore_index` `(` $ignore_index `)`
    (`chunk` `(` $chunk^ `)`)? attr-dict `:` type($input) `,` type($weight)
    `,` type($labels) `->` type($lse)
  }];
}

def Lora_LinearCrossEntropyGradOp : Lora_Op<"linear_cross_entropy_grad"> {
  let summary = "Gradients of `lora.linear_cross_entropy`, vocabulary in chunks";
  let description = [{
    For each chunk of the vocabulary, the chunk's logits are made again by
    one GEMM, turned into `softmax · loss_grad / count` with the forward's
    log-sum-exp `lse`, and used at once: `input_grad += dlogits · W_chunk`
    and, when the op has a second result, `weight_grad[chunk] =
    dlogitsᵀ · input`. The one-hot part of the gradient is applied once per
    token afterwards. The [tokens, vocab] matrix never exists.

    ```mlir
    %dh, %dw = lora.linear_cross_entropy_grad %h, %w, %labels, %lse, %dloss
        ignore_index(-100) chunk(256)
        : (tensor<2x16x64xf32>, tensor<1024x64xf32>, tensor<2x16xi32>,
           tensor<2x16xf32>, tensor<f32>)
        -> (tensor<2x16x64xf32>, tensor<1024x64xf32>)
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$input, Lora_FloatTensor:$weight,
                       Lora_IdTensor:$labels, Lora_FloatTensor:$lse,
                       Lora_F32Scalar:$loss_grad,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
                       DefaultValuedAttr<Lora_PositiveI64Attr, "256">:$chunk);
  let results = (outs Lora_FloatTensor:$input_grad,
                      Optional<Lora_FloatTensor>:$weight_grad);
  let assemblyFormat = [{
    $input `,` $weight `,` $labels `,` $lse `,` $loss_grad
    `ignore_index` `(` $ignore_index `)` (`chunk` `(` $chunk^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Lora_CheckpointOp : Lora_Op<"checkpoint",
    [AllTypesMatch<["input", "result"]>]> {
  let summary = "A kept activation from which the backward recomputes a layer";
  let description = [{
    The identity. `lora-recompute` passes the activations a recomputed
    layer starts from through it, so that the recomputed ops read other
    values than the forward's and are not merged back into them (CSE); the
    forward's own intermediate values then die at the end of the forward.
    The lowering replaces it by its input (the CPU pipeline runs no CSE
    after convert-lora-to-linalg), so it costs nothing.

    ```mlir
    %h = lora.checkpoint %x : tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$input);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 0; // AllTypesMatch says it all
}

//===----------------------------------------------------------------------===//
// Data parallelism
//===----------------------------------------------------------------------===//

// Not Pure: the reduction talks to the other ranks, so neither CSE nor DCE
// may touch it, and the order of the calls is the order of the buckets.
class Lora_CollectiveOp<string mnemonic, list<Trait> traits = []>
    : Op<Lora_Dialect, mnemonic,
         !listconcat(traits, [MemoryEffects<[MemRead, MemWrite]>])> {
  let hasVerifier = 1;
}

def Lora_AllReduceStartOp : Lora_CollectiveOp<"all_reduce_start",
    [AllTypesMatch<["gradient", "in_flight"]>]> {
  let summary = "Starts reducing a trainable gradient over the ranks";
  let description = [{
    Hands `gradient` to the runtime's reducer, which sums it over every
    data-parallel rank, each rank's gradient weighted by its share of the
    step's counted tokens: the result is the gradient of the mean loss over
    the global batch. The reduction runs in the background; its one use is
    the `lora.all_reduce_wait` that gives the reduced value.
    `lora-data-parallel` places it right after the gradient's last write,
    so the reduction overlaps the rest of the backward. In one process it
    leaves the gradient as it is.

    It bufferizes in place: the call reads the gradient's buffer, and the
    wait writes the sum back into it.

    ```mlir
    %h = lora.all_reduce_start %dqa : tensor<8x64xf32>
    ...
    %r = lora.all_reduce_wait %h : tensor<8x64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$gradient);
  let results = (outs Lora_FloatTensor:$in_flight);
  let assemblyFormat = "$gradient attr-dict `:` type($gradient)";
}

def Lora_AllReduceWaitOp : Lora_CollectiveOp<"all_reduce_wait",
    [AllTypesMatch<["in_flight", "result"]>]> {
  let summary = "Waits for a gradient's reduction over the ranks";
  let description = [{
    The reduced gradient that `lora.all_reduce_start` began. Its operand
    must be a `lora.all_reduce_start`'s result.

    ```mlir
    %r = lora.all_reduce_wait %h : tensor<8x64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$in_flight);
  let results = (outs Lora_FloatTensor:$result);
  let assemblyFormat = "$in_flight attr-dict `:` type($in_flight)";
}

def Lora_GlobalNormOp : Lora_Op<"global_norm"> {
  let summary = "L2 norm over all elements of all operands";
  let description = [{
    The norm that global gradient clipping compares with its maximum.

    ```mlir
    %n = lora.global_norm %dqa, %dqb : tensor<8x64xf32>, tensor<64x8xf32>
    ```
  }];
  let arguments = (ins Variadic<Lora_FloatTensor>:$inputs);
  let results = (outs Lora_F32Scalar:$norm);
  let assemblyFormat = "$inputs attr-dict `:` type($inputs)";
}

def Lora_AdamWOp : Lora_Op<"adamw", [
    AllTypesMatch<["param", "new_param"]>,
    AllTypesMatch<["first_moment", "second_moment", "new_first_moment",
                   "new_second_moment"]>]> {
  let summary = "One AdamW update of one parameter";
  let description = [{
    With `g = grad · c`, where `c = min(1, max_grad_norm / (norm + 1e-6))`
    when clipping is on and 1 otherwise, and `step` counted from 1:

    ```
    m' = beta1·m + (1 - beta1)·g
    v' = beta2·v + (1 - beta2)·g²
    p' = p - lr·weight_decay·p
           - lr·(m' / (1 - beta1^step)) / (sqrt(v' / (1 - beta2^step)) + eps)
    ```

    as `torch.optim.AdamW`. The learning rate is an operand so schedules
    live in the runtime. Moments have the parameter's shape and are f32.

    ```mlir
    %p2, %m2, %v2 = lora.adamw %p, %g, %m, %v lr(%lr) step(%step)
        clip(%norm, 1.0) betas(0.9, 0.999) eps(1.0e-08) weight_decay(0.01)
        : tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x64xf32>
    ```
  }];
  let arguments = (ins Lora_FloatTensor:$param, Lora_FloatTensor:$grad,
                       RankedTensorOf<[F32]>:$first_moment,
                       RankedTensorOf<[F32]>:$second_moment,
                       Lora_F32Scalar:$lr, Lora_I64Scalar:$step,
                       Optional<Lora_F32Scalar>:$grad_norm,
                       OptionalAttr<F64Attr>:$max_grad_norm,
                       F64Attr:$beta1, F64Attr:$beta2, F64Attr:$epsilon,
                       F64Attr:$weight_decay);
  let results = (outs Lora_FloatTensor:$new_param,
                      RankedTensorOf<[F32]>:$new_first_moment,
                      RankedTensorOf<[F32]>:$new_second_moment);
  let assemblyFormat = [{
    $param `,` $grad `,` $first_moment `,` $second_moment `lr` `(` $lr `)`
    `step` `(` $step `)`
    (`clip` `(` $grad_norm^ `,` $max_grad_norm `)`)?
    `betas` `(` $beta1 `,` $beta2 `)` `eps` `(` $epsilon `)`
    `weight_decay` `(` $weight_decay `)` attr-dict `:` type($param) `,`
    type($grad) `,` type($first_moment)
  }];
}

#endif // LORA_DIALECT_LORA_IR_LORAOPS_TD
