//===- FuseLinearCrossEntropy.cpp - the loss without the logits -----------===//
//
// `cross_entropy(linear(h, W), labels)` and, in a training step, its
// backward `cross_entropy_grad` -> `linear_grad_input` / `linear_grad_weight`
// become `lora.linear_cross_entropy` and `lora.linear_cross_entropy_grad`,
// which walk the vocabulary in chunks: the [tokens, vocab] logits and their
// gradient are never stored.
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/IR/LoraOps.h"
#include "lora/Dialect/Lora/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::lora {
#define GEN_PASS_DEF_FUSELINEARCROSSENTROPY
#include "lora/Dialect/Lora/Transforms/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

struct FuseLinearCrossEntropyPass
    : public lora::impl::FuseLinearCrossEntropyBase<
          FuseLinearCrossEntropyPass> {
  using Base::Base;

  void runOnOperation() override {
    if (chunk <= 0) {
      getOperation()->emitError()
          << "lora-fuse-linear-cross-entropy: chunk must be > 0, got "
          << static_cast<int64_t>(chunk);
      return signalPassFailure();
    }
    SmallVector<CrossEntropyOp> losses;
    getOperation()->walk([&](CrossEntropyOp op) { losses.push_back(op); });
    for (CrossEntropyOp loss : losses)
      fuse(loss);
  }

  void fuse(CrossEntropyOp loss) {
    auto projection = loss.getLogits().getDefiningOp<LinearOp>();
    if (!projection || projection.hasAdapter())
      return;
    Value logits = projection.getResult(), h = projection.getInput(),
          w = projection.getWeight(), labels = loss.getLabels();
    int64_t ignore = loss.getIgnoreIndex();
    // Every use of the logits must be this loss or its gradient, and every
    // use of that gradient a GEMM of the projection's backward.
    CrossEntropyGradOp grad;
    for (Operation *user : logits.getUsers()) {
      if (user == loss.getOperation())
        continue;
      auto g = dyn_cast<CrossEntropyGradOp>(user);
      if (!g || grad || g.getLabels() != labels ||
          g.getIgnoreIndex() != ignore)
        return;
      grad = g;
    }
    LinearGradInputOp inputGrad;
    LinearGradWeightOp weightGrad;
    if (grad) {
      for (Operation *user : grad.getResult().getUsers()) {
        if (auto gi = dyn_cast<LinearGradInputOp>(user);
            gi && !inputGrad && gi.getWeight() == w &&
            gi.getScale().convertToDouble() == 1.0) {
          inputGrad = gi;
          continue;
        }
        if (auto gw = dyn_cast<LinearGradWeightOp>(user);
            gw && !weightGrad && gw.getInput() == h &&
            gw.getScale().convertToDouble() == 1.0) {
          weightGrad = gw;
          continue;
        }
        return;
      }
    }

    OpBuilder b(loss);
    auto lseType = RankedTensorType::get(
        cast<RankedTensorType>(labels.getType()).getShape(), b.getF32Type());
    auto fused = LinearCrossEntropyOp::create(
        b, loss.getLoc(), loss.getType(), lseType, h, w, labels,
        b.getI64IntegerAttr(ignore), b.getI64IntegerAttr(chunk));
    loss.getResult().replaceAllUsesWith(fused.getLoss());
    if (grad) {
      b.setInsertionPoint(grad);
      SmallVector<Type> types = {h.getType()};
      if (weightGrad)
        types.push_back(w.getType());
      auto fusedGrad = LinearCrossEntropyGradOp::create(
          b, grad.getLoc(), types, h, w, labels, fused.getLse(),
          grad.getLossGrad(), b.getI64IntegerAttr(ignore),
          b.getI64IntegerAttr(chunk));
      if (inputGrad) {
        inputGrad.getResult().replaceAllUsesWith(fusedGrad.getInputGrad());
        inputGrad.erase();
      }
      if (weightGrad) {
        weightGrad.getResult().replaceAllUsesWith(fusedGrad.getWeightGrad());
        weightGrad.erase();
      }
      grad.erase();
    }
    loss.erase();
    if (projection.getResult().use_empty())
      projection.erase();
  }
};

} // namespace
