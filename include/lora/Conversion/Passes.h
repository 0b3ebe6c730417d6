//===- Passes.h - lora conversion passes ------------------------*- C++ -*-===//

#ifndef LORA_CONVERSION_PASSES_H
#define LORA_CONVERSION_PASSES_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
class ConversionTarget;
} // namespace mlir

namespace mlir::lora {

#define GEN_PASS_DECL
#include "lora/Conversion/Passes.h.inc"

/// Patterns lowering every lora op to linalg/tensor/arith/math on tensors.
void populateLoraToLinalgConversionPatterns(RewritePatternSet &patterns);


#define GEN_PASS_REGISTRATION
#include "lora/Conversion/Passes.h.inc"

} // namespace mlir::lora

#endif // LORA_CONVERSION_PASSES_H
