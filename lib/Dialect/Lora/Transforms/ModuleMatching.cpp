//===- ModuleMatching.cpp - PEFT-style module selection -------------------===//

#include "ModuleMatching.h"

#include "lora/Dialect/Lora/IR/LoraDialect.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mlir::lora;

llvm::StringRef mlir::lora::getModulePath(llvm::StringRef parameterName) {
  parameterName.consume_back(".weight");
  return parameterName;
}

llvm::StringRef mlir::lora::getModuleLeaf(llvm::StringRef path) {
  auto [head, leaf] = path.rsplit('.');
  return leaf.empty() ? head : leaf;
}

void mlir::lora::addKnownModule(std::vector<std::string> &known,
                                llvm::StringRef path) {
  std::string leaf = getModuleLeaf(path).str();
  if (!llvm::is_contained(known, leaf))
    known.push_back(leaf);
}

bool mlir::lora::matchesModule(llvm::StringRef path, llvm::StringRef target) {
  if (target.empty())
    return false;
  // `target` must be a run of whole components: "q_proj", "self_attn.q_proj"
  // (as PEFT matches), or a parent such as "mlp" or "layers.0".
  for (size_t at = path.find(target); at != llvm::StringRef::npos;
       at = path.find(target, at + 1)) {
    size_t end = at + target.size();
    if ((at == 0 || path[at - 1] == '.') &&
        (end == path.size() || path[end] == '.'))
      return true;
  }
  return false;
}

bool mlir::lora::isExcludedFromAllLinear(llvm::StringRef path) {
  return matchesModule(path, "lm_head") || matchesModule(path, "embed_tokens");
}

llvm::StringRef mlir::lora::getArgName(func::FuncOp function, unsigned index) {
  if (auto name = function.getArgAttrOfType<StringAttr>(
          index, LoraDialect::getParamNameAttrName()))
    return name.getValue();
  return "";
}

LogicalResult
mlir::lora::checkTargetsMatched(Operation *anchor, llvm::StringRef pass,
                                llvm::ArrayRef<std::string> targets,
                                llvm::ArrayRef<bool> matched,
                                llvm::ArrayRef<std::string> known) {
  for (auto [target, found] : llvm::zip(targets, matched)) {
    if (found)
      continue;
    std::string list;
    for (const std::string &name : known)
      list += (list.empty() ? "" : ", ") + name;
    return anchor->emitError()
           << pass << ": target module '" << target
           << "' matches no module of the model (modules: " << list << ")";
  }
  return success();
}
