//===- LoraOps.cpp - lora dialect operations ------------------------------===//
//
// Verifiers, folds and canonicalization patterns of the lora ops. Every
// verifier message names the operand and the dimension at fault.
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/IR/LoraOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::lora;

//===----------------------------------------------------------------------===//
// Verifier helpers
//===----------------------------------------------------------------------===//

namespace {

/// A named ranked tensor, so that messages can say which operand is wrong.
struct Named {
  StringRef name;
  RankedTensorType type;

  Named(StringRef name, Value value)
      : name(name), type(cast<RankedTensorType>(value.getType())) {}
  Named(StringRef name, Type type)
      : name(name), type(cast<RankedTensorType>(type)) {}

  int64_t rank() const { return type.getRank(); }
  int64_t dim(int64_t index) const { return type.getDimSize(index); }
  /// The last dimension (features, vocabulary, ...).
  int64_t last() const { return type.getDimSize(type.getRank() - 1); }
};

/// Verifier checks of one op; each returns failure after emitting.
class Checker {
public:
  explicit Checker(Operation *op) : op(op) {}

  LogicalResult rank(const Named &t, int64_t expected, StringRef layout) {
    if (t.rank() == expected)
      return success();
    return op->emitOpError() << t.name << " must have rank " << expected << " ("
                             << layout << "), got " << t.type;
  }

  LogicalResult minRank(const Named &t, int64_t minimum, StringRef layout) {
    if (t.rank() >= minimum)
      return success();
    return op->emitOpError() << t.name << " must have rank >= " << minimum
                             << " (" << layout << "), got " << t.type;
  }

  /// `a` must have rank `b.rank() + offset`.
  LogicalResult rankRelation(const Named &a, const Named &b, int64_t offset) {
    if (a.rank() == b.rank() + offset)
      return success();
    return op->emitOpError()
           << a.name << " must have rank " << b.rank() + offset << " ("
           << b.name << " has rank " << b.rank() << "), got " << a.type;
  }

  /// Dimension `i` of `a` equals dimension `j` of `b`, unless one is dynamic.
  LogicalResult sameDim(const Named &a, int64_t i, const Named &b, int64_t j,
                        StringRef meaning) {
    int64_t x = a.dim(i), y = b.dim(j);
    if (ShapedType::isDynamic(x) || ShapedType::isDynamic(y) || x == y)
      return success();
    return op->emitOpError()
           << a.name << " dim " << i << " (" << x << ") must equal " << b.name
           << " dim " << j << " (" << y << "), the " << meaning;
  }

  /// Dimensions [0, count) of `a` and `b` agree.
  LogicalResult sameLeadingDims(const Named &a, const Named &b, int64_t count,
                                StringRef meaning = "batch/sequence dims") {
    for (int64_t i = 0; i < count; ++i)
      if (failed(sameDim(a, i, b, i, meaning)))
        return failure();
    return success();
  }

  /// Dimension `i` of `a` equals `expected`, which `why` explains.
  LogicalResult dimIs(const Named &a, int64_t i, int64_t expected,
                      const Twine &why) {
    int64_t x = a.dim(i);
    if (ShapedType::isDynamic(x) || x == expected)
      return success();
    return op->emitOpError() << a.name << " dim " << i << " (" << x
                             << ") must be " << expected << " = " << why;
  }

  LogicalResult sameElementType(const Named &a, const Named &b) {
    if (a.type.getElementType() == b.type.getElementType())
      return success();
    return op->emitOpError()
           << a.name << " element type " << a.type.getElementType()
           << " must match " << b.name << " element type "
           << b.type.getElementType();
  }

  /// `value` of attribute `name` lies in [low, high) (high exclusive only
  /// when `openHigh`).
  LogicalResult inRange(StringRef name, double value, double low, double high,
                        bool openHigh) {
    bool ok = value >= low && (openHigh ? value < high : value <= high);
    if (ok && std::isfinite(value))
      return success();
    return op->emitOpError() << name << " must be in [" << low << ", " << high
                             << (openHigh ? ")" : "]") << ", got " << value;
  }

  LogicalResult positive(StringRef name, double value) {
    if (value > 0 && std::isfinite(value))
      return success();
    return op->emitOpError() << name << " must be positive, got " << value;
  }

  LogicalResult nonNegative(StringRef name, double value) {
    if (value >= 0 && std::isfinite(value))
      return success();
    return op->emitOpError() << name << " must be >= 0, got " << value;
  }

  LogicalResult finite(StringRef name, double value) {
    if (std::isfinite(value))
      return success();
    return op->emitOpError() << name << " must be finite, got " << value;
  }

private:
  Operation *op;
};

} // namespace

/// Checks `[..., in] x [out, in]`-style products: `input` features against
/// `weight` dim `weightDim`, and `result` = input with its last dim replaced
/// by `weight` dim `1 - weightDim`.
static LogicalResult verifyProjection(Checker &c, const Named &input,
                                      const Named &weight, int64_t weightDim,
                                      const Named &result,
                                      StringRef inputMeaning) {
  if (failed(c.minRank(input, 2, "[tokens..., features]")) ||
      failed(c.rank(weight, 2, "[out, in]")) ||
      failed(c.sameDim(weight, weightDim, input, input.rank() - 1,
                       inputMeaning)) ||
      failed(c.rankRelation(result, input, 0)) ||
      failed(c.sameLeadingDims(result, input, input.rank() - 1)) ||
      failed(c.sameDim(result, result.rank() - 1, weight, 1 - weightDim,
                       "output features")) ||
      failed(c.sameElementType(weight, input)) ||
      failed(c.sameElementType(result, input)))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  Checker c(*this);
  Named table("table", getTable()), ids("ids", getIds()),
      result("result", getResult());
  if (failed(c.rank(table, 2, "[vocab, hidden]")) ||
      failed(c.rankRelation(result, ids, 1)) ||
      failed(c.sameLeadingDims(result, ids, ids.rank())) ||
      failed(c.sameDim(result, result.rank() - 1, table, 1, "hidden size")) ||
      failed(c.sameElementType(result, table)))
    return failure();
  return success();
}

LogicalResult EmbeddingGradOp::verify() {
  Checker c(*this);
  Named grad("grad", getGrad()), ids("ids", getIds()),
      result("result", getResult());
  if (failed(c.rankRelation(grad, ids, 1)) ||
      failed(c.sameLeadingDims(grad, ids, ids.rank())) ||
      failed(c.rank(result, 2, "[vocab, hidden]")) ||
      failed(c.sameDim(result, 1, grad, grad.rank() - 1, "hidden size")) ||
      failed(c.sameElementType(result, grad)))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// RMSNorm
//===----------------------------------------------------------------------===//

static LogicalResult verifyRMSNorm(Operation *op, Value inputValue,
                                   Value weightValue, double epsilon) {
  Checker c(op);
  Named input("input", inputValue), weight("weight", weightValue);
  if (failed(c.minRank(input, 1, "[..., hidden]")) ||
      failed(c.rank(weight, 1, "[hidden]")) ||
      failed(c.sameDim(weight, 0, input, input.rank() - 1, "hidden size")) ||
      failed(c.sameElementType(weight, input)) ||
      failed(c.positive("epsilon", epsilon)))
    return failure();
  return success();
}

LogicalResult RMSNormOp::verify() {
  return verifyRMSNorm(*this, getInput(), getWeight(),
                       getEpsilon().convertToDouble());
}

LogicalResult RMSNormGradOp::verify() {
  return verifyRMSNorm(*this, getInput(), getWeight(),
                       getEpsilon().convertToDouble());
}

//===----------------------------------------------------------------------===//
// Linear
//===----------------------------------------------------------------------===//

int64_t LinearOp::getRank() {
  if (!hasAdapter())
    return 0;
  int64_t rank = cast<RankedTensorType>(getLoraA().getType()).getDimSize(0);
  return ShapedType::isDynamic(rank) ? 0 : rank;
}

LogicalResult LinearOp::verify() {
  Checker c(*this);
  Named input("input", getInput()), weight("weight", getWeight()),
      result("result", getResult());
  if (failed(verifyProjection(c, input, weight, /*weightDim=*/1, result,
                              "input features")))
    return failure();

  if (!getLoraA() != !getLoraB())
    return emitOpError("lora_a and lora_b must be given together");
  if (!hasAdapter()) {
    if (getScale())
      return emitOpError("scale given without an adapter");
    if (getDropout() || getSeed())
      return emitOpError("dropout given without an adapter");
    return success();
  }

  Named a("lora_a", getLoraA()), b("lora_b", getLoraB());
  if (failed(c.rank(a, 2, "[rank, in]")) ||
      failed(c.rank(b, 2, "[out, rank]")) ||
      failed(c.sameDim(a, 1, weight, 1, "input features")) ||
      failed(c.sameDim(b, 0, weight, 0, "output features")) ||
      failed(c.sameDim(b, 1, a, 0, "adapter rank")) ||
      failed(c.sameElementType(a, weight)) ||
      failed(c.sameElementType(b, weight)))
    return failure();
  if (!getScale())
    return emitOpError("an adapter needs a scale (alpha / rank)");
  if (failed(c.finite("scale", getScale()->convertToDouble())))
    return failure();
  if (getDropout().has_value() != (getSeed() != nullptr))
    return emitOpError("dropout needs both a rate and a seed");
  if (getDropout() &&
      failed(c.inRange("dropout", getDropout()->convertToDouble(), 0.0, 1.0,
                       /*openHigh=*/true)))
    return failure();
  return success();
}

namespace {

/// An adapter whose scale is 0 adds nothing to the output, and its
/// gradients are 0 too: drop it (and its dropout) from the layer.
struct DropZeroScaleAdapter : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasAdapter())
      return rewriter.notifyMatchFailure(op, "no adapter");
    if (!op.getScale() || op.getScale()->convertToDouble() != 0.0)
      return rewriter.notifyMatchFailure(op, "adapter scale is not zero");
    rewriter.replaceOpWithNewOp<LinearOp>(op, op.getType(), op.getInput(),
                                          op.getWeight(), Value(), Value(),
                                          Value(), FloatAttr(), FloatAttr());
    return success();
  }
};

/// Dropout at rate 0 keeps every element: drop the rate and the seed.
struct DropZeroRateDropout : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getDropout() || op.getDropout()->convertToDouble() != 0.0)
      return rewriter.notifyMatchFailure(op, "no dropout at rate zero");
    rewriter.modifyOpInPlace(op, [&]() {
      op.getSeedMutable().clear();
      op.removeDropoutAttr();
    });
    return success();
  }
};

} // namespace

void LinearOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                           MLIRContext *context) {
  results.add<DropZeroScaleAdapter, DropZeroRateDropout>(context);
}

LogicalResult LinearGradInputOp::verify() {
  Checker c(*this);
  Named grad("grad", getGrad()), weight("weight", getWeight()),
      result("result", getResult());
  if (failed(verifyProjection(c, grad, weight, /*weightDim=*/0, result,
                              "output features")) ||
      failed(c.finite("scale", getScale().convertToDouble())))
    return failure();
  return success();
}

LogicalResult LowRankUpdateOp::verify() {
  Checker c(*this);
  Named base("base", getBase()), u("u", getU()), b("lora_b", getLoraB());
  if (failed(c.minRank(base, 2, "[tokens..., out]")) ||
      failed(c.rankRelation(u, base, 0)) ||
      failed(c.sameLeadingDims(u, base, base.rank() - 1)) ||
      failed(c.rank(b, 2, "[out, r]")) ||
      failed(c.sameDim(b, 0, base, base.rank() - 1, "output features")) ||
      failed(c.sameDim(b, 1, u, u.rank() - 1, "rank")) ||
      failed(c.sameElementType(u, base)) ||
      failed(c.sameElementType(b, base)) ||
      failed(c.finite("scale", getScale().convertToDouble())))
    return failure();
  return success();
}

LogicalResult AdapterGradOp::verify() {
  Checker c(*this);
  Named grad("grad", getGrad()), b("lora_b", getLoraB()), u("u", getU()),
      du("du", getDu()), db("db", getDb());
  if (failed(c.minRank(grad, 2, "[tokens..., out]")) ||
      failed(c.rank(b, 2, "[out, r]")) ||
      failed(c.sameDim(b, 0, grad, grad.rank() - 1, "output features")) ||
      failed(c.rankRelation(u, grad, 0)) ||
      failed(c.sameLeadingDims(u, grad, grad.rank() - 1)) ||
      failed(c.sameDim(u, u.rank() - 1, b, 1, "rank")) ||
      failed(c.sameElementType(b, grad)) || failed(c.sameElementType(u, grad)))
    return failure();
  if (du.type != u.type)
    return emitOpError() << "du must have u's type " << u.type << ", got "
                         << du.type;
  if (db.type != b.type)
    return emitOpError() << "db must have lora_b's type " << b.type
                         << ", got " << db.type;
  if (bool(getInput()) != bool(getDa()))
    return emitOpError() << (getInput() ? "input given but no da result"
                                        : "da result without an input");
  if (getInput()) {
    Named x("input", getInput()), da("da", getDa());
    if (failed(c.rankRelation(x, grad, 0)) ||
        failed(c.sameLeadingDims(x, grad, grad.rank() - 1)) ||
        failed(c.sameElementType(x, grad)) ||
        failed(c.rank(da, 2, "[r, in]")) ||
        failed(c.sameDim(da, 0, b, 1, "rank")) ||
        failed(c.sameDim(da, 1, x, x.rank() - 1, "input features")) ||
        failed(c.sameElementType(da, grad)))
      return failure();
  }
  return c.finite("scale", getScale().convertToDouble());
}

LogicalResult LinearGradWeightOp::verify() {
  Checker c(*this);
  Named grad("grad", getGrad()), input("input", getInput()),
      result("result", getResult());
  if (failed(c.minRank(grad, 2, "[tokens..., out]")) ||
      failed(c.rankRelation(input, grad, 0)) ||
      failed(c.sameLeadingDims(input, grad, grad.rank() - 1)) ||
      failed(c.rank(result, 2, "[out, in]")) ||
      failed(c.sameDim(result, 0, grad, grad.rank() - 1, "output features")) ||
      failed(c.sameDim(result, 1, input, input.rank() - 1, "input features")) ||
      failed(c.sameElementType(input, grad)) ||
      failed(c.sameElementType(result, grad)) ||
      failed(c.finite("scale", getScale().convertToDouble())))
    return failure();
  return success();
}

LogicalResult DropoutOp::verify() {
  Checker c(*this);
  return c.inRange("rate", getRate().convertToDouble(), 0.0, 1.0,
                   /*openHigh=*/true);
}

OpFoldResult DropoutOp::fold(FoldAdaptor) {
  // Rate 0 keeps every element and scales by 1.
  if (getRate().convertToDouble() == 0.0)
    return getInput();
  return {};
}

//===----------------------------------------------------------------------===//
// RoPE
//===----------------------------------------------------------------------===//

static LogicalResult verifyRoPE(Operation *op, Value inputValue,
                                StringRef inputName, Value positionsValue,
                                double theta, int64_t headDim) {
  Checker c(op);
  Named input(inputName, inputValue), positions("positions", positionsValue);
  if (failed(c.minRank(input, 2, "[..., seq, heads * head_dim]")) ||
      failed(c.rankRelation(positions, input, -1)) ||
      failed(c.sameLeadingDims(positions, input, positions.rank())) ||
      failed(c.positive("theta", theta)))
    return failure();
  if (headDim % 2 != 0)
    return op->emitOpError()
           << "head_dim (" << headDim << ") must be even: RoPE rotates pairs";
  int64_t features = input.last();
  if (!ShapedType::isDynamic(features) && features % headDim != 0)
    return op->emitOpError()
           << inputName << " dim " << input.rank() - 1 << " (" << features
           << ") must be a multiple of head_dim (" << headDim << ")";
  return success();
}

LogicalResult RoPEOp::verify() {
  return verifyRoPE(*this, getInput(), "input", getPositions(),
                    getTheta().convertToDouble(), getHeadDim());
}

LogicalResult RoPEGradOp::verify() {
  return verifyRoPE(*this, getGrad(), "grad", getPositions(),
                    getTheta().convertToDouble(), getHeadDim());
}

OpFoldResult RoPEGradOp::fold(FoldAdaptor) {
  // rope_grad(rope(x)) with the same positions and angles is x: the
  // rotation is orthogonal.
  auto rope = getGrad().getDefiningOp<RoPEOp>();
  if (rope && rope.getPositions() == getPositions() &&
      rope.getTheta() == getTheta() && rope.getHeadDim() == getHeadDim())
    return rope.getInput();
  return {};
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

static LogicalResult verifyAttention(Operation *op, Value queryValue,
                                     Value keyValue, Value valueValue,
                                     int64_t numHeads, int64_t numKvHeads,
                                     int64_t headDim,
                                     std::optional<double> scale) {
  Checker c(op);
  Named query("query", queryValue), key("key", keyValue),
      value("value", valueValue);
  const char *layout = "[batch, seq, heads * head_dim]";
  if (failed(c.rank(query, 3, layout)) || failed(c.rank(key, 3, layout)) ||
      failed(c.rank(value, 3, layout)))
    return failure();
  if (numHeads % numKvHeads != 0)
    return op->emitOpError() << "num_kv_heads (" << numKvHeads
                             << ") must divide num_heads (" << numHeads << ")";
  if (failed(c.sameDim(key, 0, query, 0, "batch size")) ||
      failed(c.sameDim(value, 0, query, 0, "batch size")) ||
      failed(c.sameDim(key, 1, query, 1, "sequence length")) ||
      failed(c.sameDim(value, 1, query, 1, "sequence length")) ||
      failed(c.dimIs(query, 2, numHeads * headDim,
                     Twine("num_heads (") + Twine(numHeads) + ") * head_dim (" +
                         Twine(headDim) + ")")) ||
      failed(c.dimIs(key, 2, numKvHeads * headDim,
                     Twine("num_kv_heads (") + Twine(numKvHeads) +
                         ") * head_dim (" + Twine(headDim) + ")")) ||
      failed(c.dimIs(value, 2, numKvHeads * headDim,
                     Twine("num_kv_heads (") + Twine(numKvHeads) +
                         ") * head_dim (" + Twine(headDim) + ")")) ||
      failed(c.sameElementType(key, query)) ||
      failed(c.sameElementType(value, query)))
    return failure();
  if (scale && failed(c.positive("scale", *scale)))
    return failure();
  return success();
}

static std::optional<double> toDouble(std::optional<APFloat> value) {
  if (!value)
    return std::nullopt;
  return value->convertToDouble();
}

double AttentionOp::getScaleOrDefault() {
  if (auto scale = getScale())
    return scale->convertToDouble();
  return 1.0 / std::sqrt(static_cast<double>(getHeadDim()));
}

LogicalResult AttentionOp::verify() {
  return verifyAttention(*this, getQuery(), getKey(), getValue(), getNumHeads(),
                         getNumKvHeads(), getHeadDim(), toDouble(getScale()));
}

double AttentionGradOp::getScaleOrDefault() {
  if (auto scale = getScale())
    return scale->convertToDouble();
  return 1.0 / std::sqrt(static_cast<double>(getHeadDim()));
}

LogicalResult AttentionGradOp::verify() {
  return verifyAttention(*this, getQuery(), getKey(), getValue(), getNumHeads(),
                         getNumKvHeads(), getHeadDim(), toDouble(getScale()));
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

static LogicalResult verifyCrossEntropy(Operation *op, Value logitsValue,
                                        Value labelsValue) {
  Checker c(op);
  Named logits("logits", logitsValue), labels("labels", labelsValue);
  if (failed(c.minRank(logits, 2, "[tokens..., vocab]")) ||
      failed(c.rankRelation(labels, logits, -1)) ||
      failed(c.sameLeadingDims(labels, logits, labels.rank())))
    return failure();
  return success();
}

LogicalResult CrossEntropyOp::verify() {
  return verifyCrossEntropy(*this, getLogits(), getLabels());
}

LogicalResult CrossEntropyGradOp::verify() {
  return verifyCrossEntropy(*this, getLogits(), getLabels());
}

/// input [..., hidden], weight [vocab, hidden], labels [...] (the input's
/// leading dims), and a per-token tensor `perToken` shaped like labels.
static LogicalResult verifyLinearCrossEntropy(Operation *op, Value inputValue,
                                              Value weightValue,
                                              Value labelsValue,
                                              Value perTokenValue,
                                              StringRef perTokenName) {
  Checker c(op);
  Named input("input", inputValue), weight("weight", weightValue),
      labels("labels", labelsValue), perToken(perTokenName, perTokenValue);
  if (failed(c.minRank(input, 2, "[tokens..., hidden]")) ||
      failed(c.rank(weight, 2, "[vocab, hidden]")) ||
      failed(c.sameDim(weight, 1, input, input.rank() - 1, "hidden size")) ||
      failed(c.sameElementType(weight, input)) ||
      failed(c.rankRelation(labels, input, -1)) ||
      failed(c.sameLeadingDims(labels, input, labels.rank())) ||
      failed(c.rankRelation(perToken, input, -1)) ||
      failed(c.sameLeadingDims(perToken, input, perToken.rank())))
    return failure();
  return success();
}

LogicalResult LinearCrossEntropyOp::verify() {
  return verifyLinearCrossEntropy(*this, getInput(), getWeight(), getLabels(),
                                  getLse(), "lse");
}

LogicalResult LinearCrossEntropyGradOp::verify() {
  if (failed(verifyLinearCrossEntropy(*this, getInput(), getWeight(),
                                      getLabels(), getLse(), "lse")))
    return failure();
  if (getInputGrad().getType() != getInput().getType())
    return emitOpError("input_grad type ")
           << getInputGrad().getType() << " must match input type "
           << getInput().getType();
  if (getWeightGrad() && getWeightGrad().getType() != getWeight().getType())
    return emitOpError("weight_grad type ")
           << getWeightGrad().getType() << " must match weight type "
           << getWeight().getType();
  return success();
}

//===----------------------------------------------------------------------===//
// Data parallelism
//===----------------------------------------------------------------------===//

LogicalResult AllReduceStartOp::verify() {
  if (!getGradient().getType().getElementType().isF32())
    return emitOpError("reduces f32 gradients (fp32 master gradients), got ")
           << getGradient().getType();
  // The in-flight value is the runtime's until the wait: nothing else may
  // read it.
  if (!getInFlight().hasOneUse() ||
      !isa<AllReduceWaitOp>(*getInFlight().getUsers().begin()))
    return emitOpError("must have exactly one use, a lora.all_reduce_wait");
  return success();
}

LogicalResult AllReduceWaitOp::verify() {
  if (!getInFlight().getDefiningOp<AllReduceStartOp>())
    return emitOpError("waits for a lora.all_reduce_start's result");
  return success();
}

//===----------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------===//

LogicalResult GlobalNormOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one tensor");
  return success();
}

LogicalResult AdamWOp::verify() {
  Checker c(*this);
  Named param("param", getParam()), grad("grad", getGrad()),
      moment("first_moment", getFirstMoment());
  if (failed(c.rankRelation(grad, param, 0)) ||
      failed(c.sameLeadingDims(grad, param, param.rank(), "parameter shape")) ||
      failed(c.rankRelation(moment, param, 0)) ||
      failed(
          c.sameLeadingDims(moment, param, param.rank(), "parameter shape")) ||
      failed(c.inRange("beta1", getBeta1().convertToDouble(), 0.0, 1.0,
                       /*openHigh=*/true)) ||
      failed(c.inRange("beta2", getBeta2().convertToDouble(), 0.0, 1.0,
                       /*openHigh=*/true)) ||
      failed(c.positive("epsilon", getEpsilon().convertToDouble())) ||
      failed(c.nonNegative("weight_decay", getWeightDecay().convertToDouble())))
    return failure();
  if (getGradNorm() && !getMaxGradNorm())
    return emitOpError("grad_norm given without max_grad_norm");
  if (getMaxGradNorm() && !getGradNorm())
    return emitOpError("max_grad_norm given without grad_norm");
  if (getMaxGradNorm() &&
      failed(c.positive("max_grad_norm", getMaxGradNorm()->convertToDouble())))
    return failure();
  return success();
}

#define GET_OP_CLASSES
#include "lora/Dialect/Lora/IR/LoraOps.cpp.inc"
