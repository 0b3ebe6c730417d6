//===- Recompute.cpp - activation checkpointing ---------------------------===//
//
// On a differentiated step, the backward of decoder layer N reads the
// layer's forward activations, which therefore stay alive from the forward
// to the backward. This pass clones the layer's forward ops (all of them,
// or with `selective` only the cheap elementwise ones) right before the
// first backward op that needs them and points the backward at the clones:
// the forward's copies then die as soon as the forward is done with them,
// at the price of computing them twice. The values a recomputed layer starts
// from go through `lora.checkpoint`, so that CSE cannot merge the clones
// back into the originals.
//
// Layers are recognized by their locations, `model.layers.<N>...`, which
// the frontend gives every op of a decoder layer and lora-autodiff copies
// onto the backward.
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/IR/LoraOps.h"
#include "lora/Dialect/Lora/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include <map>
#include <optional>

namespace mlir::lora {
#define GEN_PASS_DEF_RECOMPUTE
#include "lora/Dialect/Lora/Transforms/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

/// N for an op located in `model.layers.N` or below it.
std::optional<int64_t> layerOf(Location loc) {
  if (auto fused = dyn_cast<FusedLoc>(loc)) {
    for (Location inner : fused.getLocations())
      if (auto layer = layerOf(inner))
        return layer;
    return std::nullopt;
  }
  auto name = dyn_cast<NameLoc>(loc);
  if (!name)
    return std::nullopt;
  StringRef text = name.getName().getValue();
  if (!text.consume_front("model.layers."))
    return std::nullopt;
  int64_t layer;
  if (text.consumeInteger(10, layer) || !(text.empty() || text.starts_with(".")))
    return std::nullopt;
  return layer;
}

/// The ops `selective` recomputes: elementwise and cheap next to a GEMM or
/// attention, whose outputs it keeps, and views.
bool isCheap(Operation *op) {
  return isa<RMSNormOp, RoPEOp, SwiGLUOp, AddOp, DropoutOp,
             tensor::ExtractSliceOp>(op);
}

struct RecomputePass : public lora::impl::RecomputeBase<RecomputePass> {
  using Base::Base;

  void runOnOperation() override {
    if (mode != "none" && mode != "layer" && mode != "selective") {
      getOperation()->emitError()
          << "lora-recompute: mode must be none, layer or selective, got '"
          << mode << "'";
      return signalPassFailure();
    }
    if (mode == "none")
      return;
    for (auto function : getOperation().getOps<func::FuncOp>())
      if (!function.isExternal())
        recompute(function);
  }

  void recompute(func::FuncOp function) {
    Block &block = function.getBody().front();
    // The backward starts with the loss gradient.
    Operation *firstBackward = nullptr;
    for (Operation &op : block)
      if (isa<CrossEntropyGradOp, LinearCrossEntropyGradOp>(op)) {
        firstBackward = &op;
        break;
      }
    if (!firstBackward)
      return; // not a training step
    DenseMap<Operation *, int64_t> position;
    int64_t counter = 0;
    for (Operation &op : block)
      position[&op] = counter++;
    int64_t backwardStart = position[firstBackward];
    // An op of the backward: at or after the loss gradient in the block
    // (clones made below are in no position and are not).
    auto isBackward = [&](Operation *user) {
      auto it = position.find(block.findAncestorOpInBlock(*user));
      return it != position.end() && it->second >= backwardStart;
    };

    // The forward ops of each layer, in order.
    std::map<int64_t, SmallVector<Operation *>> layers;
    for (Operation &op : block) {
      if (&op == firstBackward)
        break;
      if (op.hasTrait<OpTrait::ConstantLike>() || isa<CheckpointOp>(op) ||
          op.getNumRegions() != 0 || !isMemoryEffectFree(&op))
        continue;
      if (mode == "selective" && !isCheap(&op))
        continue;
      if (auto layer = layerOf(op.getLoc()))
        layers[*layer].push_back(&op);
    }

    for (auto &[layer, ops] : layers) {
      DenseSet<Operation *> recomputed(ops.begin(), ops.end());
      // Where the backward first reads one of these values.
      Operation *firstUse = nullptr;
      for (Operation *op : ops)
        for (Operation *user : op->getUsers()) {
          Operation *inBlock = block.findAncestorOpInBlock(*user);
          if (isBackward(user) &&
              (!firstUse || position[inBlock] < position[firstUse]))
            firstUse = inBlock;
        }
      if (!firstUse)
        continue;
      OpBuilder b(firstUse);
      IRMapping mapping;
      // The activations the layer starts from, kept, each once.
      for (Operation *op : ops)
        for (Value operand : op->getOperands()) {
          Operation *producer = operand.getDefiningOp();
          if (!producer || recomputed.contains(producer) ||
              mapping.contains(operand) || producer->hasTrait<OpTrait::ConstantLike>())
            continue;
          if (!isa<RankedTensorType>(operand.getType()) ||
              !isa<FloatType>(
                  cast<RankedTensorType>(operand.getType()).getElementType()))
            continue;
          mapping.map(operand, CheckpointOp::create(b, producer->getLoc(),
                                                    operand)
                                   .getResult());
        }
      for (Operation *op : ops)
        b.clone(*op, mapping);
      // The backward reads the clones.
      for (Operation *op : ops)
        for (Value result : op->getResults())
          result.replaceUsesWithIf(mapping.lookup(result), [&](OpOperand &use) {
            return isBackward(use.getOwner());
          });
    }
  }
};

} // namespace
