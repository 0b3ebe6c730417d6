//===- SetTrainable.cpp - select weights for full finetuning --------------===//

#include "ModuleMatching.h"

#include "lora/Dialect/Lora/IR/LoraOps.h"
#include "lora/Dialect/Lora/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::lora {
#define GEN_PASS_DEF_SETTRAINABLE
#include "lora/Dialect/Lora/Transforms/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

/// True when argument `arg` is the weight of some lora.linear.
static bool isLinearWeight(BlockArgument arg) {
  return llvm::any_of(arg.getUses(), [](OpOperand &use) {
    auto linear = dyn_cast<LinearOp>(use.getOwner());
    return linear && linear.getWeight() == use.get();
  });
}

struct SetTrainablePass
    : public lora::impl::SetTrainableBase<SetTrainablePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::vector<std::string> targets(modules.begin(), modules.end());
    if (targets.empty())
      return;
    SmallVector<bool> matched(targets.size(), false);
    std::vector<std::string> known;
    for (auto function : module.getOps<func::FuncOp>()) {
      for (BlockArgument arg : function.getArguments()) {
        std::optional<Role> role =
            getParameterRole(function, arg.getArgNumber());
        // Adapters stay adapters; inputs are not parameters.
        if (!role || *role == Role::lora)
          continue;
        StringRef path =
            getModulePath(getArgName(function, arg.getArgNumber()));
        addKnownModule(known, path);
        bool hit = false;
        for (auto [i, target] : llvm::enumerate(targets)) {
          bool here;
          if (target == "all")
            here = true;
          else if (target == "all-linear")
            here = isLinearWeight(arg) && !isExcludedFromAllLinear(path);
          else if (target == "norm")
            here = getModuleLeaf(path).ends_with("norm");
          else
            here = matchesModule(path, target);
          if (here)
            matched[i] = true;
          hit |= here;
        }
        if (hit)
          function.setArgAttr(arg.getArgNumber(),
                              LoraDialect::getRoleAttrName(),
                              RoleAttr::get(&getContext(), Role::full));
      }
    }
    if (failed(checkTargetsMatched(module, "lora-set-trainable", targets,
                                   matched, known)))
      signalPassFailure();
  }
};

} // namespace
