//===- LlamaBuilder.cpp - Llama forward pass in the lora dialect ----------===//
//
// Emits the forward pass and the loss exactly as transformers'
// LlamaForCausalLM computes them: pre-norm decoder layers with RMSNorm,
// half-split RoPE, causal grouped-query attention, SwiGLU MLP, a final norm
// and the LM head (tied to the embedding when the config says so).
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/IR/LoraOps.h"
#include "lora/Frontend/LlamaConfig.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::lora;

namespace {

/// Collects the function's arguments before the function exists.
struct ArgumentList {
  SmallVector<Type> types;
  SmallVector<std::string> names;
  SmallVector<bool> isParameter;

  unsigned add(std::string name, Type type, bool parameter) {
    types.push_back(type);
    names.push_back(std::move(name));
    isParameter.push_back(parameter);
    return types.size() - 1;
  }
};

/// Argument indices of one decoder layer's weights.
struct LayerParams {
  unsigned inputNorm, q, k, v, o, postNorm, gate, up, down;
};

} // namespace

llvm::Error mlir::lora::buildLlamaStep(ModuleOp module,
                                       const LlamaConfig &config,
                                       const BatchShape &shape,
                                       StepOutput output) {
  auto fail = [](const Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  };
  if (shape.batchSize <= 0)
    return fail("batch size must be positive, got " + Twine(shape.batchSize));
  if (shape.sequenceLength <= 0)
    return fail("sequence length must be positive, got " +
                Twine(shape.sequenceLength));
  if (shape.sequenceLength > config.maxPositionEmbeddings)
    return fail("sequence length " + Twine(shape.sequenceLength) +
                " exceeds max_position_embeddings (" +
                Twine(config.maxPositionEmbeddings) + ")");

  MLIRContext *context = module.getContext();
  context->loadDialect<LoraDialect, func::FuncDialect, arith::ArithDialect>();
  OpBuilder builder(context);
  Type f32 = builder.getF32Type();
  Type i32 = builder.getI32Type();
  auto tensor = [&](ArrayRef<int64_t> dims, Type element) {
    return RankedTensorType::get(dims, element);
  };

  const int64_t B = shape.batchSize, T = shape.sequenceLength;
  const int64_t D = config.hiddenSize, F = config.intermediateSize;
  const int64_t V = config.vocabSize, Dh = config.headDim;
  const int64_t Q = config.numAttentionHeads * Dh;
  const int64_t KV = config.numKeyValueHeads * Dh;

  // Parameters in Hugging Face's order, then the batch.
  ArgumentList args;
  auto param = [&](std::string name, ArrayRef<int64_t> dims) {
    return args.add(std::move(name), tensor(dims, f32), /*parameter=*/true);
  };
  unsigned embed = param("model.embed_tokens.weight", {V, D});
  SmallVector<LayerParams> layers;
  for (int64_t l = 0; l < config.numHiddenLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    LayerParams layer;
    layer.inputNorm = param(p + "input_layernorm.weight", {D});
    layer.q = param(p + "self_attn.q_proj.weight", {Q, D});
    layer.k = param(p + "self_attn.k_proj.weight", {KV, D});
    layer.v = param(p + "self_attn.v_proj.weight", {KV, D});
    layer.o = param(p + "self_attn.o_proj.weight", {D, Q});
    layer.postNorm = param(p + "post_attention_layernorm.weight", {D});
    layer.gate = param(p + "mlp.gate_proj.weight", {F, D});
    layer.up = param(p + "mlp.up_proj.weight", {F, D});
    layer.down = param(p + "mlp.down_proj.weight", {D, F});
    layers.push_back(layer);
  }
  unsigned finalNorm = param("model.norm.weight", {D});
  unsigned lmHead =
      config.tieWordEmbeddings ? embed : param("lm_head.weight", {V, D});
  unsigned ids = args.add("input_ids", tensor({B, T}, i32), false);
  unsigned positions = args.add("positions", tensor({B, T}, i32), false);
  bool withLoss = output == StepOutput::Loss;
  unsigned labels =
      withLoss ? args.add("labels", tensor({B, T}, i32), false) : 0;

  builder.setInsertionPointToEnd(module.getBody());
  auto function = func::FuncOp::create(
      builder, NameLoc::get(builder.getStringAttr("model")), "step",
      builder.getFunctionType(
          args.types, {withLoss ? tensor({}, f32) : tensor({B, T, V}, f32)}));
  for (unsigned i = 0; i < args.types.size(); ++i) {
    function.setArgAttr(i, LoraDialect::getParamNameAttrName(),
                        builder.getStringAttr(args.names[i]));
    if (args.isParameter[i])
      function.setArgAttr(i, LoraDialect::getRoleAttrName(),
                          RoleAttr::get(context, Role::frozen));
  }
  Block *entry = function.addEntryBlock();
  builder.setInsertionPointToStart(entry);
  auto arg = [&](unsigned index) -> Value { return entry->getArgument(index); };
  auto loc = [&](const Twine &name) {
    return NameLoc::get(builder.getStringAttr(name));
  };
  FloatAttr eps = builder.getF64FloatAttr(config.rmsNormEps);
  FloatAttr theta = builder.getF64FloatAttr(config.ropeTheta);
  auto linear = [&](Location at, Value x, unsigned weight, int64_t out) {
    return LinearOp::create(builder, at, tensor({B, T, out}, f32), x,
                            arg(weight), Value(), Value(), Value(), FloatAttr(),
                            FloatAttr())
        .getResult();
  };

  Value hidden =
      EmbeddingOp::create(builder, loc("model.embed_tokens"),
                          tensor({B, T, D}, f32), arg(embed), arg(ids));
  for (auto [l, layer] : llvm::enumerate(layers)) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    Value normed =
        RMSNormOp::create(builder, loc(p + "input_layernorm"), hidden.getType(),
                          hidden, arg(layer.inputNorm), eps);
    Value q = linear(loc(p + "self_attn.q_proj"), normed, layer.q, Q);
    Value k = linear(loc(p + "self_attn.k_proj"), normed, layer.k, KV);
    Value v = linear(loc(p + "self_attn.v_proj"), normed, layer.v, KV);
    Value qRot =
        RoPEOp::create(builder, loc(p + "self_attn.rotary_emb"), q.getType(), q,
                       arg(positions), theta, builder.getI64IntegerAttr(Dh));
    Value kRot =
        RoPEOp::create(builder, loc(p + "self_attn.rotary_emb"), k.getType(), k,
                       arg(positions), theta, builder.getI64IntegerAttr(Dh));
    Value attended = AttentionOp::create(
        builder, loc(p + "self_attn"), q.getType(), qRot, kRot, v,
        builder.getI64IntegerAttr(config.numAttentionHeads),
        builder.getI64IntegerAttr(config.numKeyValueHeads),
        builder.getI64IntegerAttr(Dh), FloatAttr());
    Value projected = linear(loc(p + "self_attn.o_proj"), attended, layer.o, D);
    hidden = AddOp::create(builder, loc(p + "residual"), hidden.getType(),
                           hidden, projected);
    normed =
        RMSNormOp::create(builder, loc(p + "post_attention_layernorm"),
                          hidden.getType(), hidden, arg(layer.postNorm), eps);
    Value gate = linear(loc(p + "mlp.gate_proj"), normed, layer.gate, F);
    Value up = linear(loc(p + "mlp.up_proj"), normed, layer.up, F);
    Value act = SwiGLUOp::create(builder, loc(p + "mlp.act_fn"), gate.getType(),
                                 gate, up);
    Value down = linear(loc(p + "mlp.down_proj"), act, layer.down, D);
    hidden = AddOp::create(builder, loc(p + "residual"), hidden.getType(),
                           hidden, down);
  }
  Value normed = RMSNormOp::create(builder, loc("model.norm"), hidden.getType(),
                                   hidden, arg(finalNorm), eps);
  Value logits = linear(loc("lm_head"), normed, lmHead, V);
  if (!withLoss) {
    func::ReturnOp::create(builder, loc("lm_head"), logits);
    function.setResultAttr(0, LoraDialect::getParamNameAttrName(),
                           builder.getStringAttr("logits"));
    return llvm::Error::success();
  }
  Value loss =
      CrossEntropyOp::create(builder, loc("loss"), tensor({}, f32), logits,
                             arg(labels), builder.getI64IntegerAttr(-100));
  func::ReturnOp::create(builder, loc("loss"), loss);
  function.setResultAttr(0, LoraDialect::getParamNameAttrName(),
                         builder.getStringAttr("loss"));
  return llvm::Error::success();
}
