//===- Passes.td - lora dialect passes ---------------------*- tablegen -*-===//
//
// Passes that turn a model's forward pass and loss into a training step.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_DIALECT_LORA_TRANSFORMS_PASSES_TD
#define LORA_DIALECT_LORA_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def AttachAdapters : Pass<"lora-attach-adapters", "ModuleOp"> {
  let summary = "Give linear layers low-rank adapters (LoRA)";
  let description = [{
    For every `lora.linear` whose weight argument names a targeted module,
    adds two parameters `<module>.lora_A.weight` ([rank, in]) and
    `<module>.lora_B.weight` ([out, rank]) with role `lora`, right after the
    weight, and sets the layer's scale to `alpha / rank` (`alpha /
    sqrt(rank)` with rsLoRA). Targets are PEFT's: `all-linear` (every linear
    layer but `lm_head`) or module names, each matching a run of whole
    components of the weight's module path: the module (`q_proj`,
    `self_attn.q_proj`, `layers.0.mlp.up_proj`) or a parent (`mlp`,
    `self_attn`, `layers.3`). A target that matches nothing is an error.

    With `dropout` > 0 the function gets an argument `dropout_seed`
    (`tensor<i64>`) and each adapted layer draws its mask from
    `dropout_seed + k`, k being the layer's index among the adapted ones.
  }];
  let options = [
    ListOption<"targetModules", "target-modules", "std::string",
               "Modules to adapt: all-linear or PEFT-style names">,
    Option<"rank", "rank", "int64_t", "8", "Adapter rank r (> 0)">,
    Option<"alpha", "alpha", "double", "0.0",
           "LoRA alpha; 0 means 2 * rank, as the study recommends">,
    Option<"useRsLora", "use-rslora", "bool", "false",
           "Scale by alpha / sqrt(rank) (rank-stabilized LoRA)">,
    Option<"dropout", "dropout", "double", "0.0",
           "Dropout rate on the adapter input, in [0, 1)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def SetTrainable : Pass<"lora-set-trainable", "ModuleOp"> {
  let summary = "Mark base weights for full finetuning";
  let description = [{
    Gives role `full` to the parameters of the listed modules; the rest keep
    their role. `all` selects every parameter (embeddings, norms, lm_head:
    full finetuning as the Hugging Face Trainer does it), `all-linear`
    every linear layer but lm_head, `norm` every RMSNorm weight,
    `embed_tokens` and `lm_head` those, and other names match module
    paths as in `lora-attach-adapters` (`mlp` selects gate, up and down). With adapters attached
    first, this gives mixed training (LoRA on attention, full on the MLP).
  }];
  let options = [
    ListOption<"modules", "full", "std::string",
               "Modules whose weights train in full">,
  ];
}

def Autodiff : Pass<"lora-autodiff", "ModuleOp"> {
  let summary = "Append the backward pass for the trainable parameters";
  let description = [{
    For every function returning one loss and having parameters with role
    `lora` or `full`, emits reverse-mode gradients of the loss and returns
    them after it, one per trainable parameter in argument order, named
    `<parameter>.grad`. Only values that depend on a trainable parameter
    get a gradient: a frozen weight never gets a weight-gradient GEMM, and a
    layer below every trainable parameter gets no backward at all.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def Optimizer : Pass<"lora-optimizer", "ModuleOp"> {
  let summary = "Append an AdamW update with global-norm clipping";
  let description = [{
    Runs after `lora-autodiff`. Adds arguments `<parameter>.exp_avg` and
    `<parameter>.exp_avg_sq` (f32, the parameter's shape) for each
    trainable parameter only, then `lr` (`tensor<f32>`) and `step`
    (`tensor<i64>`, counted from 1), so learning-rate schedules live in the
    runtime. The step returns the loss, the gradients' global norm (before
    clipping), the new parameters and the new moments, named like the
    arguments. As the Hugging Face Trainer, weight decay skips 1-d
    parameters (norm weights).
  }];
  let options = [
    Option<"beta1", "beta1", "double", "0.9", "AdamW beta1">,
    Option<"beta2", "beta2", "double", "0.999", "AdamW beta2">,
    Option<"epsilon", "epsilon", "double", "1e-8", "AdamW epsilon">,
    Option<"weightDecay", "weight-decay", "double", "0.0",
           "Decoupled weight decay">,
    Option<"maxGradNorm", "max-grad-norm", "double", "1.0",
           "Clip gradients to this global norm; 0 disables clipping">,
  ];
}

def FuseAdapters : Pass<"lora-fuse-adapters", "ModuleOp"> {
  let summary = "Fold each adapter's GEMMs into its base layer's GEMMs";
  let description = [{
    Runs on a differentiated step (after `lora-autodiff`). For every
    `lora.linear` with an adapter and no adapter dropout, it stores the
    base weight and the adapter's A as one matrix `Wcat = [W; A]`
    (`tensor.concat`) and rewrites:

    - the forward into one GEMM `[Y0 | U] = X·Wcatᵀ` (X is read once for
      the base output and the adapter input) and a `lora.low_rank_update`
      `Y = Y0 + s·U·Bᵀ` that accumulates into the base output;
    - the backward's recomputation of `U` into the forward's `U`;
    - `dX = dY·W + dU·A` (two GEMMs and an add) into one GEMM
      `[dY | dU]·Wcat` with K = out + r;
    - when W trains too, `dW = dYᵀ·X` and `dA = dUᵀ·X` into one GEMM
      `[dY | dU]ᵀ·X` whose rows are split into dW and dA;
    - `dU = s·dY·B`, `dB = s·dYᵀ·U` and (unless it comes from the GEMM
      above) `dA = dUᵀ·X` into one `lora.adapter_grad`, which the CPU runs
      as one pass over dY and X (`lora_adapter_grad_f32`) instead of three
      GEMMs that each read a whole activation for r columns or rows.

    A layer with adapter dropout reads dropout(X) in its adapter, which no
    concatenation with X can express. It gets the rest: `Y0 = X·Wᵀ`,
    `U = dropout(X)·Aᵀ` and the `lora.low_rank_update` into Y0; the
    backward's dropout(X) and U are the forward's (dropout(X) is kept from
    the forward to the backward instead of made again); and `dU`, `dB`,
    `dA = dUᵀ·dropout(X)` are one `lora.adapter_grad`. Its
    `dX = dY·W + dropout'(dU·A)` keeps its two GEMMs. Fused and unfused
    steps are compared on the reference evaluator and compiled.
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

def FuseLinearCrossEntropy
    : Pass<"lora-fuse-linear-cross-entropy", "ModuleOp"> {
  let summary = "Compute the loss and its gradient without the logits matrix";
  let description = [{
    Rewrites `lora.cross_entropy` of a `lora.linear` without adapter (the
    output projection) into `lora.linear_cross_entropy`, and in a training
    step its backward (`lora.cross_entropy_grad` and the projection's input
    and weight gradients) into `lora.linear_cross_entropy_grad`. Both walk
    the vocabulary `chunk` rows at a time, so the [tokens, vocab] logits
    and their gradient never exist: for a 128k vocabulary at 4k tokens that
    is 2 GiB of f32 not stored. The rewrite is skipped when the logits have
    any other use (a step that returns them).
  }];
  let options = [
    Option<"chunk", "chunk", "int64_t", "256",
           "Vocabulary rows per chunk">
  ];
}

def DataParallel : Pass<"lora-data-parallel", "ModuleOp"> {
  let summary = "Reduce the trainable gradients over data-parallel ranks";
  let description = [{
    Runs on a step with an optimizer (after `lora-optimizer`, best after
    every pass that rewrites the backward). Each trainable gradient the
    optimizer reads (the operands of `lora.global_norm`, or of `lora.adamw`
    without clipping) gets a `lora.all_reduce_start` right after the op
    that produces it, and the optimizer reads the matching
    `lora.all_reduce_wait`, placed right before the first optimizer op.
    The runtime packs the started gradients into buckets in the order the
    backward finishes them and reduces each bucket while the backward goes
    on. Frozen weights have no gradient and so are never communicated.
  }];
}

def Recompute : Pass<"lora-recompute", "ModuleOp"> {
  let summary = "Activation checkpointing: recompute layers in the backward";
  let description = [{
    Runs on a differentiated step. With `mode=layer`, every decoder layer's
    forward ops (located in `model.layers.<N>`) are cloned right before the
    first backward op that reads them, and the backward reads the clones;
    with `mode=selective`, only the cheap elementwise ones (RMSNorm, RoPE,
    SwiGLU, residual adds, dropout) are, and the outputs of GEMMs and
    attention are kept. The forward's activations then die within the
    forward, which `lora-plan-memory` turns into a smaller arena; the price
    is computing them again. The values a recomputed layer starts from pass
    through `lora.checkpoint` so that CSE does not merge the clones away.
    `mode=none` (the default) changes nothing.
  }];
  let options = [
    Option<"mode", "mode", "std::string", "\"none\"",
           "none, layer or selective">
  ];
}

#endif // LORA_DIALECT_LORA_TRANSFORMS_PASSES_TD
