//===- Passes.h - lora dialect passes ---------------------------*- C++ -*-===//

#ifndef LORA_DIALECT_LORA_TRANSFORMS_PASSES_H
#define LORA_DIALECT_LORA_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>

namespace mlir::lora {

#define GEN_PASS_DECL
#include "lora/Dialect/Lora/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "lora/Dialect/Lora/Transforms/Passes.h.inc"

} // namespace mlir::lora

#endif // LORA_DIALECT_LORA_TRANSFORMS_PASSES_H
