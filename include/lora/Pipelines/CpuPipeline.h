//===- CpuPipeline.h - lowering a step to LLVM for the CPU ------*- C++ -*-===//

#ifndef LORA_PIPELINES_CPUPIPELINE_H
#define LORA_PIPELINES_CPUPIPELINE_H

#include "mlir/Support/LLVM.h"

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::lora {

/// lora ops -> linalg on tensors -> bufferized, results as out-parameters
/// -> loops -> LLVM dialect.
LogicalResult buildCpuLoweringPipeline(OpPassManager &pm);

/// Registers `lora-cpu-pipeline` for lora-opt.
void registerCpuPipeline();

} // namespace mlir::lora

#endif // LORA_PIPELINES_CPUPIPELINE_H
