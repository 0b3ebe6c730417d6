//===- Autodiff.cpp - reverse-mode gradients of trainable parameters ------===//
//
// Activity analysis first: a value is active when it depends on a trainable
// parameter. The backward sweep then visits the forward ops in reverse and
// emits, for each op with a gradient on a result, only the gradients of its
// active operands. Frozen weights are never active, so no weight-gradient
// GEMM is ever emitted for them; layers below the lowest trainable
// parameter get no backward at all.
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/IR/LoraOps.h"
#include "lora/Dialect/Lora/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::lora {
#define GEN_PASS_DEF_AUTODIFF
#include "lora/Dialect/Lora/Transforms/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

/// Differentiates one function.
class Differentiator {
public:
  explicit Differentiator(func::FuncOp function)
      : function(function), builder(function.getContext()) {}

  LogicalResult run();

private:
  bool isActive(Value value) const { return active.contains(value); }

  /// Adds `grad` to the gradient of `value`, if `value` needs one.
  void accumulate(Value value, Value grad) {
    if (!isActive(value))
      return;
    auto [it, inserted] = grads.try_emplace(value, grad);
    if (!inserted)
      it->second = AddOp::create(builder, grad.getLoc(), grad.getType(),
                                 it->second, grad);
  }

  FloatAttr f64(double value) { return builder.getF64FloatAttr(value); }

  Value constant(Location loc, Type type, double value) {
    auto shaped = cast<ShapedType>(type);
    return arith::ConstantOp::create(
        builder, loc,
        DenseElementsAttr::get(
            shaped, builder.getFloatAttr(shaped.getElementType(), value)));
  }

  LogicalResult backward(Operation *op);
  void backwardLinear(LinearOp op, Value grad);

  func::FuncOp function;
  OpBuilder builder;
  DenseSet<Value> active;
  DenseMap<Value, Value> grads;
};

LogicalResult Differentiator::run() {
  SmallVector<unsigned> trainable = getTrainableArguments(function);
  if (trainable.empty())
    return success(); // an evaluation function: nothing to differentiate

  if (!function.getBody().hasOneBlock())
    return function.emitError(
        "lora-autodiff: expected a function with a single block");
  Block &block = function.getBody().front();
  auto ret = cast<func::ReturnOp>(block.getTerminator());
  auto lossType = RankedTensorType::get({}, builder.getF32Type());
  if (ret.getNumOperands() != 1 || ret.getOperand(0).getType() != lossType)
    return function.emitError()
           << "lora-autodiff: @" << function.getSymName()
           << " must return exactly the loss (tensor<f32>), got "
           << ret.getNumOperands() << " results; was the pass already applied?";

  for (unsigned index : trainable)
    active.insert(function.getArgument(index));
  for (Operation &op : block.without_terminator()) {
    if (llvm::none_of(op.getOperands(),
                      [&](Value value) { return isActive(value); }))
      continue;
    for (Value result : op.getResults())
      if (auto type = dyn_cast<RankedTensorType>(result.getType());
          type && isa<FloatType>(type.getElementType()))
        active.insert(result);
  }

  builder.setInsertionPoint(ret);
  Value loss = ret.getOperand(0);
  if (isActive(loss))
    grads[loss] = constant(ret.getLoc(), lossType, 1.0);
  for (Operation &op : llvm::reverse(block.without_terminator())) {
    if (llvm::none_of(op.getResults(),
                      [&](Value value) { return grads.contains(value); }))
      continue;
    if (failed(backward(&op)))
      return failure();
  }

  SmallVector<Value> results = {loss};
  SmallVector<Attribute> names = {
      function.getResultAttr(0, LoraDialect::getParamNameAttrName())
          ?: builder.getStringAttr("loss")};
  for (unsigned index : trainable) {
    BlockArgument parameter = function.getArgument(index);
    Value grad = grads.lookup(parameter);
    if (!grad) // the loss does not depend on it
      grad = constant(ret.getLoc(), parameter.getType(), 0.0);
    results.push_back(grad);
    auto name = function.getArgAttrOfType<StringAttr>(
        index, LoraDialect::getParamNameAttrName());
    names.push_back(builder.getStringAttr(
        (name ? name.getValue() : StringRef("arg" + std::to_string(index))) +
        ".grad"));
  }
  func::ReturnOp::create(builder, ret.getLoc(), results);
  ret.erase();
  function.setType(builder.getFunctionType(function.getArgumentTypes(),
                                           ValueRange(results).getTypes()));
  for (auto [i, name] : llvm::enumerate(names))
    function.setResultAttrs(i, builder.getDictionaryAttr(builder.getNamedAttr(
                                   LoraDialect::getParamNameAttrName(), name)));
  return success();
}

void Differentiator::backwardLinear(LinearOp op, Value grad) {
  Location loc = op.getLoc();
  Value input = op.getInput(), weight = op.getWeight();
  auto inputType = cast<RankedTensorType>(input.getType());
  if (isActive(weight))
    accumulate(weight,
               LinearGradWeightOp::create(builder, loc, weight.getType(), grad,
                                          input, f64(1.0)));
  Value inputGrad;
  if (isActive(input))
    inputGrad = LinearGradInputOp::create(builder, loc, inputType, grad, weight,
                                          f64(1.0));

  if (op.hasAdapter()) {
    Value a = op.getLoraA(), b = op.getLoraB();
    bool needA = isActive(a), needB = isActive(b), needX = isActive(input);
    double scale = op.getScale()->convertToDouble();
    if (needA || needB || needX) {
      // The adapter sees dropout(X); the same seed rebuilds the mask.
      Value dropped = input;
      if (op.getDropout())
        dropped = DropoutOp::create(builder, loc, inputType, input,
                                    op.getSeed(), op.getDropoutAttr());
      SmallVector<int64_t> lowRankShape(inputType.getShape());
      lowRankShape.back() = cast<RankedTensorType>(a.getType()).getDimSize(0);
      auto lowRankType =
          RankedTensorType::get(lowRankShape, inputType.getElementType());
      if (needB) {
        // U = X·Aᵀ, dB = s·dYᵀ·U
        Value u =
            LinearOp::create(builder, loc, lowRankType, dropped, a, Value(),
                             Value(), Value(), FloatAttr(), FloatAttr());
        accumulate(b, LinearGradWeightOp::create(builder, loc, b.getType(),
                                                 grad, u, f64(scale)));
      }
      if (needA || needX) {
        // dU = s·dY·B, dA = dUᵀ·X, dX += dU·A
        Value du = LinearGradInputOp::create(builder, loc, lowRankType, grad, b,
                                             f64(scale));
        if (needA)
          accumulate(a, LinearGradWeightOp::create(builder, loc, a.getType(),
                                                   du, dropped, f64(1.0)));
        if (needX) {
          Value adapterGrad = LinearGradInputOp::create(builder, loc, inputType,
                                                        du, a, f64(1.0));
          if (op.getDropout())
            adapterGrad =
                DropoutOp::create(builder, loc, inputType, adapterGrad,
                                  op.getSeed(), op.getDropoutAttr());
          inputGrad = inputGrad ? AddOp::create(builder, loc, inputType,
                                                inputGrad, adapterGrad)
                                : adapterGrad;
        }
      }
    }
  }
  if (inputGrad)
    accumulate(input, inputGrad);
}

LogicalResult Differentiator::backward(Operation *op) {
  Location loc = op->getLoc();
  auto gradOf = [&](Value result) -> Value {
    if (Value grad = grads.lookup(result))
      return grad;
    return constant(loc, result.getType(), 0.0);
  };
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](EmbeddingOp op) {
        accumulate(op.getTable(), EmbeddingGradOp::create(
                                      builder, loc, op.getTable().getType(),
                                      gradOf(op.getResult()), op.getIds()));
        return success();
      })
      .Case([&](RMSNormOp op) {
        auto grad = RMSNormGradOp::create(
            builder, loc, op.getInput().getType(), op.getWeight().getType(),
            op.getInput(), op.getWeight(), gradOf(op.getResult()),
            op.getEpsilonAttr());
        accumulate(op.getInput(), grad.getInputGrad());
        accumulate(op.getWeight(), grad.getWeightGrad());
        return success();
      })
      .Case([&](LinearOp op) {
        backwardLinear(op, gradOf(op.getResult()));
        return success();
      })
      .Case([&](RoPEOp op) {
        accumulate(op.getInput(),
                   RoPEGradOp::create(builder, loc, op.getType(),
                                      gradOf(op.getResult()), op.getPositions(),
                                      op.getThetaAttr(), op.getHeadDimAttr()));
        return success();
      })
      .Case([&](AttentionOp op) {
        auto grad = AttentionGradOp::create(
            builder, loc, op.getQuery().getType(), op.getKey().getType(),
            op.getValue().getType(), op.getQuery(), op.getKey(), op.getValue(),
            op.getResult(), gradOf(op.getResult()), op.getNumHeadsAttr(),
            op.getNumKvHeadsAttr(), op.getHeadDimAttr(), op.getScaleAttr());
        accumulate(op.getQuery(), grad.getQueryGrad());
        accumulate(op.getKey(), grad.getKeyGrad());
        accumulate(op.getValue(), grad.getValueGrad());
        return success();
      })
      .Case([&](SwiGLUOp op) {
        auto grad = SwiGLUGradOp::create(builder, loc, op.getType(),
                                         op.getType(), op.getGate(), op.getUp(),
                                         gradOf(op.getResult()));
        accumulate(op.getGate(), grad.getGateGrad());
        accumulate(op.getUp(), grad.getUpGrad());
        return success();
      })
      .Case([&](AddOp op) {
        Value grad = gradOf(op.getResult());
        accumulate(op.getLhs(), grad);
        accumulate(op.getRhs(), grad);
        return success();
      })
      .Case([&](CrossEntropyOp op) {
        accumulate(op.getLogits(),
                   CrossEntropyGradOp::create(
                       builder, loc, op.getLogits().getType(), op.getLogits(),
                       op.getLabels(), gradOf(op.getLoss()),
                       op.getIgnoreIndexAttr()));
        return success();
      })
      .Case([&](DropoutOp op) {
        accumulate(op.getInput(),
                   DropoutOp::create(builder, loc, op.getType(),
                                     gradOf(op.getResult()), op.getSeed(),
                                     op.getRateAttr()));
        return success();
      })
      .Default([&](Operation *op) {
        return op->emitError()
               << "lora-autodiff: no gradient rule for '" << op->getName()
               << "', which depends on a trainable parameter";
      });
}

struct AutodiffPass : public lora::impl::AutodiffBase<AutodiffPass> {
  void runOnOperation() override {
    for (auto function : getOperation().getOps<func::FuncOp>())
      if (failed(Differentiator(function).run()))
        return signalPassFailure();
  }
};

} // namespace
