//===- Optimizer.cpp - AdamW with global-norm clipping --------------------===//

#include "ModuleMatching.h"

#include "lora/Dialect/Lora/IR/LoraOps.h"
#include "lora/Dialect/Lora/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <cmath>

namespace mlir::lora {
#define GEN_PASS_DEF_OPTIMIZER
#include "lora/Dialect/Lora/Transforms/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

struct OptimizerPass : public lora::impl::OptimizerBase<OptimizerPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto invalid = [&](StringRef name, double value, StringRef rule) {
      module.emitError() << "lora-optimizer: " << name << " must be " << rule
                         << ", got " << value;
      signalPassFailure();
    };
    if (!(beta1 >= 0 && beta1 < 1))
      return invalid("beta1", beta1, "in [0, 1)");
    if (!(beta2 >= 0 && beta2 < 1))
      return invalid("beta2", beta2, "in [0, 1)");
    if (!(epsilon > 0))
      return invalid("epsilon", epsilon, "positive");
    if (!(weightDecay >= 0) || !std::isfinite(weightDecay))
      return invalid("weight-decay", weightDecay, ">= 0");
    if (!(maxGradNorm >= 0) || !std::isfinite(maxGradNorm))
      return invalid("max-grad-norm", maxGradNorm, ">= 0 (0: no clipping)");
    for (auto function : module.getOps<func::FuncOp>())
      if (failed(addOptimizer(function)))
        return signalPassFailure();
  }

  LogicalResult addOptimizer(func::FuncOp function) {
    SmallVector<unsigned> trainable = getTrainableArguments(function);
    if (trainable.empty())
      return success();

    auto ret = cast<func::ReturnOp>(function.getBody().back().getTerminator());
    if (ret.getNumOperands() != trainable.size() + 1)
      return function.emitError()
             << "lora-optimizer: expected the loss and one gradient per "
                "trainable parameter ("
             << trainable.size() + 1 << " results), got "
             << ret.getNumOperands() << "; run lora-autodiff first";
    for (auto [i, index] : llvm::enumerate(trainable))
      if (ret.getOperand(i + 1).getType() !=
          function.getArgument(index).getType())
        return function.emitError() << "lora-optimizer: result #" << i + 1
                                    << " is not the gradient of '"
                                    << getArgName(function, index) << "'";

    MLIRContext *context = function.getContext();
    OpBuilder builder(context);
    Type f32 = builder.getF32Type();
    auto named = [&](const Twine &name) {
      return builder.getDictionaryAttr(builder.getNamedAttr(
          LoraDialect::getParamNameAttrName(), builder.getStringAttr(name)));
    };
    auto append = [&](Type type, const Twine &name) -> Value {
      unsigned index = function.getNumArguments();
      (void)function.insertArgument(index, type, named(name),
                                    function.getLoc());
      return function.getArgument(index);
    };

    SmallVector<Value> firstMoments, secondMoments;
    for (unsigned index : trainable) {
      auto type = cast<RankedTensorType>(function.getArgument(index).getType());
      auto momentType = RankedTensorType::get(type.getShape(), f32);
      std::string name = getArgName(function, index).str();
      firstMoments.push_back(append(momentType, name + ".exp_avg"));
      secondMoments.push_back(append(momentType, name + ".exp_avg_sq"));
    }
    Value lr = append(RankedTensorType::get({}, f32), "lr");
    Value step =
        append(RankedTensorType::get({}, builder.getI64Type()), "step");

    builder.setInsertionPoint(ret);
    Location loc = ret.getLoc();
    SmallVector<Value> gradients(ret.getOperands().drop_front());
    Value norm = GlobalNormOp::create(builder, loc, gradients);
    bool clip = maxGradNorm > 0;
    SmallVector<Value> results = {ret.getOperand(0), norm};
    SmallVector<DictionaryAttr> names = {named("loss"), named("grad_norm")};
    SmallVector<Value> newFirst, newSecond;
    for (auto [i, index] : llvm::enumerate(trainable)) {
      Value param = function.getArgument(index);
      // As the Hugging Face Trainer: no weight decay on norm weights.
      double decay = cast<RankedTensorType>(param.getType()).getRank() >= 2
                         ? weightDecay
                         : 0.0;
      auto update = AdamWOp::create(
          builder, loc, param.getType(), firstMoments[i].getType(),
          firstMoments[i].getType(), param, gradients[i], firstMoments[i],
          secondMoments[i], lr, step, clip ? norm : Value(),
          clip ? builder.getF64FloatAttr(maxGradNorm) : FloatAttr(),
          builder.getF64FloatAttr(beta1), builder.getF64FloatAttr(beta2),
          builder.getF64FloatAttr(epsilon), builder.getF64FloatAttr(decay));
      std::string name = getArgName(function, index).str();
      results.push_back(update.getNewParam());
      names.push_back(named(name));
      newFirst.push_back(update.getNewFirstMoment());
      newSecond.push_back(update.getNewSecondMoment());
    }
    for (auto [i, index] : llvm::enumerate(trainable)) {
      std::string name = getArgName(function, index).str();
      results.push_back(newFirst[i]);
      names.push_back(named(name + ".exp_avg"));
    }
    for (auto [i, index] : llvm::enumerate(trainable)) {
      std::string name = getArgName(function, index).str();
      results.push_back(newSecond[i]);
      names.push_back(named(name + ".exp_avg_sq"));
    }
    func::ReturnOp::create(builder, loc, results);
    ret.erase();
    function.setType(builder.getFunctionType(function.getArgumentTypes(),
                                             ValueRange(results).getTypes()));
    function.setAllResultAttrs(names);
    return success();
  }
};

} // namespace
