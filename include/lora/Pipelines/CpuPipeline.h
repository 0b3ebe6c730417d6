//===- CpuPipeline.h - lowering a step to LLVM for the CPU ------*- C++ -*-===//

#ifndef LORA_PIPELINES_CPUPIPELINE_H
#define LORA_PIPELINES_CPUPIPELINE_H

#include "mlir/Pass/PassOptions.h"
#include "mlir/Support/LLVM.h"

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::lora {

/// lora ops -> linalg on tensors -> bufferized, results as out-parameters,
/// temporaries in one planned arena (both backends start so).
/// `flashAttention`: "none", or "cpu"/"gpu"/"gpu-bf16" to leave attention
/// to the runtime's flash kernels. Whole-tensor sums of `splitSumsFrom`
/// elements or more become parallel partial sums (lora-split-reductions):
/// on the CPU only where threads pay for themselves, on the GPU every sum a
/// host loop would otherwise run over managed memory. Row reductions over
/// `splitRowsFrom` elements or more (0: none) get several partials per row:
/// on the GPU, several threads per row instead of one. `adapterGradCalls`:
/// f32 adapter backwards (lora.adapter_grad) become calls to the runtime's
/// one-pass CPU kernel instead of three GEMMs. `bf16`: frozen parameters
/// stored in bf16 and every GEMM's inputs bf16 (lora-store-frozen-bf16,
/// lora-bf16-gemm-inputs).
LogicalResult buildBufferizationPipeline(OpPassManager &pm,
                                         StringRef flashAttention = "none",
                                         int64_t splitSumsFrom = 4096,
                                         int64_t splitRowsFrom = 0,
                                         bool adapterGradCalls = false,
                                         bool bf16 = false);

/// buildBufferizationPipeline, then GEMMs as OpenBLAS calls, the rest as
/// vectorized loops -> LLVM dialect. With `openmp`, each loop nest's
/// outermost parallel loop runs on OpenMP threads (the code then calls
/// libomp's __kmpc_* entry points, which the runtime links).
/// `bf16`: frozen parameters stored in bf16, GEMM inputs in bf16, fp32
/// accumulation (the bf16 GEMM). `splitRowsFrom` above 0 splits row
/// reductions, and whole-tensor sums, from that many elements as the GPU
/// pipeline does (buildBufferizationPipeline): slower on the CPU, there
/// so that tests run the GPU's form of them. Loop nests of fewer than
/// `parallelFrom` innermost iterations (vectors where vectorized) run on
/// one thread (lora-serialize-small-loops).
LogicalResult buildCpuLoweringPipeline(OpPassManager &pm,
                                       bool flashAttention = false,
                                       bool openmp = true, bool bf16 = false,
                                       int64_t splitRowsFrom = 0,
                                       int64_t parallelFrom = 2048);

struct CpuPipelineOptions : public PassPipelineOptions<CpuPipelineOptions> {
  Option<bool> flashAttention{
      *this, "flash-attention",
      llvm::cl::desc("Attention through the runtime's row-by-row flash "
                     "kernels (the GPU's algorithm) instead of score blocks "
                     "through BLAS"),
      llvm::cl::init(false)};
  Option<bool> openmp{
      *this, "openmp",
      llvm::cl::desc("Split each kernel's outermost parallel loop across "
                     "OpenMP threads (libomp)"),
      llvm::cl::init(true)};
  Option<bool> bf16{*this, "bf16",
                    llvm::cl::desc("Frozen parameters stored in bf16; GEMM "
                                   "inputs in bf16, accumulated in fp32"),
                    llvm::cl::init(false)};
  Option<int64_t> splitRowsFrom{
      *this, "split-rows-from",
      llvm::cl::desc("Split row reductions of this many elements or more "
                     "into partial sums, as the GPU pipeline does (0: none)"),
      llvm::cl::init(0)};
  Option<int64_t> parallelFrom{
      *this, "parallel-from",
      llvm::cl::desc("With openmp: loop nests of fewer innermost iterations "
                     "(vectors where vectorized) run on one thread"),
      llvm::cl::init(2048)};
};

/// Registers `lora-cpu-pipeline` for lora-opt.
void registerCpuPipeline();

} // namespace mlir::lora

#endif // LORA_PIPELINES_CPUPIPELINE_H
