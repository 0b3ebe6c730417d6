//===- LoraDialect.h - the lora dialect -------------------------*- C++ -*-===//
//
// Declares the lora dialect and its attributes.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_DIALECT_LORA_IR_LORADIALECT_H
#define LORA_DIALECT_LORA_IR_LORADIALECT_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/DialectImplementation.h"

#include "lora/Dialect/Lora/IR/LoraDialect.h.inc"
#include "lora/Dialect/Lora/IR/LoraEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "lora/Dialect/Lora/IR/LoraAttrs.h.inc"

namespace mlir::lora {

/// The role of function argument `index` of `funcOp`, or std::nullopt when
/// it is not a parameter (token ids, labels, learning rate, ...).
std::optional<Role> getParameterRole(Operation *funcOp, unsigned index);

/// Indices of the arguments of `funcOp` that train (role lora or full), in
/// argument order.
llvm::SmallVector<unsigned> getTrainableArguments(Operation *funcOp);

} // namespace mlir::lora

#endif // LORA_DIALECT_LORA_IR_LORADIALECT_H
