//===- CpuPipeline.h - lowering a step to LLVM for the CPU ------*- C++ -*-===//

#ifndef LORA_PIPELINES_CPUPIPELINE_H
#define LORA_PIPELINES_CPUPIPELINE_H

#include "mlir/Support/LLVM.h"

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::lora {

/// lora ops -> linalg on tensors -> bufferized, results as out-parameters,
/// temporaries in one planned arena (both backends start so).
LogicalResult buildBufferizationPipeline(OpPassManager &pm);

/// buildBufferizationPipeline, then GEMMs as OpenBLAS calls, the rest as
/// vectorized loops -> LLVM dialect.
LogicalResult buildCpuLoweringPipeline(OpPassManager &pm);

/// Registers `lora-cpu-pipeline` for lora-opt.
void registerCpuPipeline();

} // namespace mlir::lora

#endif // LORA_PIPELINES_CPUPIPELINE_H
