//===- AttachAdapters.cpp - give linear layers LoRA adapters --------------===//

#include "ModuleMatching.h"

#include "lora/Dialect/Lora/IR/LoraOps.h"
#include "lora/Dialect/Lora/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <cmath>

namespace mlir::lora {
#define GEN_PASS_DEF_ATTACHADAPTERS
#include "lora/Dialect/Lora/Transforms/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

struct AttachAdaptersPass
    : public lora::impl::AttachAdaptersBase<AttachAdaptersPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fail = [&](StringRef option, StringRef rule, auto value) {
      module.emitError() << "lora-attach-adapters: " << option << " must be "
                         << rule << ", got " << value;
      signalPassFailure();
    };
    if (rank <= 0)
      return fail("rank", "> 0", int64_t(rank));
    if (alpha < 0 || !std::isfinite(alpha))
      return fail("alpha", ">= 0 (0 means 2 * rank)", double(alpha));
    if (!(dropout >= 0 && dropout < 1))
      return fail("dropout", "in [0, 1)", double(dropout));

    std::vector<std::string> targets(targetModules.begin(),
                                     targetModules.end());
    if (targets.empty())
      targets.push_back("all-linear");
    SmallVector<bool> matched(targets.size(), false);
    double effectiveAlpha = alpha > 0 ? alpha : 2.0 * rank;
    double scale = useRsLora ? effectiveAlpha / std::sqrt(double(rank))
                             : effectiveAlpha / double(rank);

    std::vector<std::string> known;
    for (auto function : module.getOps<func::FuncOp>())
      if (failed(attach(function, targets, matched, scale, known)))
        return signalPassFailure();
    if (failed(checkTargetsMatched(module, "lora-attach-adapters", targets,
                                   matched, known)))
      return signalPassFailure();
  }

  /// The targeted linear layers of `function`, in program order.
  LogicalResult selectLayers(func::FuncOp function,
                             ArrayRef<std::string> targets,
                             SmallVectorImpl<bool> &matched,
                             std::vector<std::string> &known,
                             SmallVectorImpl<LinearOp> &selected) {
    DenseMap<Value, LinearOp> layerOfWeight;
    WalkResult walk = function.walk([&](LinearOp op) -> WalkResult {
      auto weight = dyn_cast<BlockArgument>(op.getWeight());
      if (!weight || weight.getOwner()->getParentOp() != function)
        return WalkResult::advance();
      StringRef path =
          getModulePath(getArgName(function, weight.getArgNumber()));
      if (path.empty())
        return WalkResult::advance();
      addKnownModule(known, path);
      bool hit = false;
      for (auto [i, target] : llvm::enumerate(targets)) {
        bool here = target == "all-linear" ? !isExcludedFromAllLinear(path)
                                           : matchesModule(path, target);
        if (here)
          matched[i] = true;
        hit |= here;
      }
      if (!hit)
        return WalkResult::advance();
      if (op.hasAdapter()) {
        op.emitError() << "lora-attach-adapters: '" << path
                       << "' already has an adapter";
        return WalkResult::interrupt();
      }
      auto [it, inserted] = layerOfWeight.try_emplace(op.getWeight(), op);
      if (!inserted) {
        op.emitError() << "lora-attach-adapters: weight '" << path
                       << "' is shared by several linear layers; an adapter "
                          "belongs to one layer";
        return WalkResult::interrupt();
      }
      selected.push_back(op);
      return WalkResult::advance();
    });
    return failure(walk.wasInterrupted());
  }

  LogicalResult attach(func::FuncOp function, ArrayRef<std::string> targets,
                       SmallVectorImpl<bool> &matched, double scale,
                       std::vector<std::string> &known) {
    SmallVector<LinearOp> layers;
    if (failed(selectLayers(function, targets, matched, known, layers)))
      return failure();
    if (layers.empty())
      return success();

    MLIRContext *context = function.getContext();
    OpBuilder builder(context);
    Value seed;
    if (dropout > 0) {
      unsigned index = function.getNumArguments();
      auto seedType = RankedTensorType::get({}, builder.getI64Type());
      auto attrs = builder.getDictionaryAttr(
          builder.getNamedAttr(LoraDialect::getParamNameAttrName(),
                               builder.getStringAttr("dropout_seed")));
      if (failed(function.insertArgument(index, seedType, attrs,
                                         function.getLoc())))
        return failure();
      seed = function.getArgument(index);
    }

    for (auto [layerIndex, layer] : llvm::enumerate(layers)) {
      auto weight = cast<BlockArgument>(layer.getWeight());
      unsigned index = weight.getArgNumber();
      std::string path = getModulePath(getArgName(function, index)).str();
      auto weightType = cast<RankedTensorType>(weight.getType());
      int64_t out = weightType.getDimSize(0), in = weightType.getDimSize(1);
      Type element = weightType.getElementType();
      auto parameter = [&](StringRef suffix) {
        return builder.getDictionaryAttr(
            {builder.getNamedAttr(LoraDialect::getParamNameAttrName(),
                                  builder.getStringAttr(path + suffix)),
             builder.getNamedAttr(LoraDialect::getRoleAttrName(),
                                  RoleAttr::get(context, Role::lora))});
      };
      if (failed(function.insertArgument(
              index + 1, RankedTensorType::get({rank, in}, element),
              parameter(".lora_A.weight"), layer.getLoc())) ||
          failed(function.insertArgument(
              index + 2, RankedTensorType::get({out, rank}, element),
              parameter(".lora_B.weight"), layer.getLoc())))
        return failure();

      builder.setInsertionPoint(layer);
      Value layerSeed;
      FloatAttr rate;
      if (seed) {
        // Each adapted layer draws its own mask: seed + layer index.
        Value offset = arith::ConstantOp::create(
            builder, layer.getLoc(),
            DenseElementsAttr::get(
                cast<ShapedType>(seed.getType()),
                builder.getI64IntegerAttr(layerIndex).getValue()));
        layerSeed =
            arith::AddIOp::create(builder, layer.getLoc(), seed, offset);
        rate = builder.getF64FloatAttr(dropout);
      }
      auto adapted = LinearOp::create(
          builder, layer.getLoc(), layer.getType(), layer.getInput(),
          layer.getWeight(), function.getArgument(index + 1),
          function.getArgument(index + 2), layerSeed,
          builder.getF64FloatAttr(scale), rate);
      layer.replaceAllUsesWith(adapted.getResult());
      layer.erase();
    }
    return success();
  }
};

} // namespace
