//===- ModuleMatching.h - PEFT-style module selection -----------*- C++ -*-===//
//
// Matching of module names as PEFT's target_modules does (a target names a
// module if it ends its path after a dot), extended to parents ("mlp").
//
//===----------------------------------------------------------------------===//

#ifndef LORA_LIB_DIALECT_LORA_TRANSFORMS_MODULEMATCHING_H
#define LORA_LIB_DIALECT_LORA_TRANSFORMS_MODULEMATCHING_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <string>
#include <vector>

namespace mlir::lora {

/// The module path of a parameter: its name without the trailing
/// ".weight" ("model.layers.0.self_attn.q_proj").
llvm::StringRef getModulePath(llvm::StringRef parameterName);

/// The last component of a module path ("q_proj").
llvm::StringRef getModuleLeaf(llvm::StringRef path);

/// Records the leaf of `path` in `known` (once), for error messages.
void addKnownModule(std::vector<std::string> &known, llvm::StringRef path);

/// True when `target` is a run of whole components of `path`: the module
/// itself ("q_proj", "self_attn.q_proj") or a parent ("mlp", "layers.0").
bool matchesModule(llvm::StringRef path, llvm::StringRef target);

/// Linear layers that `all-linear` leaves out, as PEFT does: the output
/// head (and the embedding table when the head is tied to it).
bool isExcludedFromAllLinear(llvm::StringRef path);

/// The `lora.name` of function argument `index`, or "".
llvm::StringRef getArgName(func::FuncOp function, unsigned index);

/// Fails with a message listing `known` when some target of `targets` is
/// not in `matched` (targets keywords like all-linear are exempt).
LogicalResult checkTargetsMatched(Operation *anchor, llvm::StringRef pass,
                                  llvm::ArrayRef<std::string> targets,
                                  llvm::ArrayRef<bool> matched,
                                  llvm::ArrayRef<std::string> known);

} // namespace mlir::lora

#endif // LORA_LIB_DIALECT_LORA_TRANSFORMS_MODULEMATCHING_H
