//===- DataParallel.cpp - reduce trainable gradients over ranks -----------===//

#include "lora/Dialect/Lora/IR/LoraOps.h"
#include "lora/Dialect/Lora/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::lora {
#define GEN_PASS_DEF_DATAPARALLEL
#include "lora/Dialect/Lora/Transforms/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

struct DataParallelPass
    : public lora::impl::DataParallelBase<DataParallelPass> {
  void runOnOperation() override {
    for (auto function : getOperation().getOps<func::FuncOp>())
      if (failed(reduceGradients(function)))
        return signalPassFailure();
  }

  LogicalResult reduceGradients(func::FuncOp function) {
    if (function.isExternal())
      return success();
    // The optimizer's ops, in order; the gradient is operand 1 of adamw.
    SmallVector<AdamWOp> updates;
    function.walk([&](AdamWOp op) { updates.push_back(op); });
    if (updates.empty())
      return success();
    for (auto op : function.getOps<AllReduceStartOp>())
      return op.emitOpError("lora-data-parallel: the step already reduces "
                            "its gradients");
    Block &body = function.getBody().front();
    Operation *firstOptimizerOp = updates.front();
    for (auto norm : function.getOps<GlobalNormOp>())
      if (norm->isBeforeInBlock(firstOptimizerOp))
        firstOptimizerOp = norm;

    // Each distinct gradient starts right after its last write (a block
    // argument: at the top of the step).
    llvm::SetVector<Value> gradients;
    for (AdamWOp update : updates) {
      gradients.insert(update.getGrad());
      Operation *producer = update.getGrad().getDefiningOp();
      if (producer && producer->getBlock() != &body)
        return update.emitOpError("lora-data-parallel: the gradient is not "
                                  "defined at the top level of the step");
    }
    OpBuilder builder(function.getContext());
    SmallVector<AllReduceStartOp> starts;
    for (Value gradient : gradients) {
      if (Operation *producer = gradient.getDefiningOp())
        builder.setInsertionPointAfter(producer);
      else
        builder.setInsertionPointToStart(&body);
      starts.push_back(
          AllReduceStartOp::create(builder, gradient.getLoc(), gradient));
    }
    // The waits, in the order the starts run (the order buckets fill).
    llvm::stable_sort(starts, [](AllReduceStartOp a, AllReduceStartOp b) {
      return a->isBeforeInBlock(b);
    });
    builder.setInsertionPoint(firstOptimizerOp);
    llvm::DenseMap<Value, Value> reduced;
    for (AllReduceStartOp start : starts)
      reduced[start.getGradient()] =
          AllReduceWaitOp::create(builder, start.getLoc(), start);
    // Only the optimizer reads the reduced value; the backward's own uses
    // (none for a parameter's gradient, in practice) keep the local one.
    for (Operation &op : body)
      if (isa<GlobalNormOp, AdamWOp>(op))
        for (OpOperand &operand : op.getOpOperands())
          if (Value r = reduced.lookup(operand.get()))
            operand.set(r);
    return success();
  }
};

} // namespace
