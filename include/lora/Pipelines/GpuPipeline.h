//===- GpuPipeline.h - lowering a step to PTX and host code -----*- C++ -*-===//

#ifndef LORA_PIPELINES_GPUPIPELINE_H
#define LORA_PIPELINES_GPUPIPELINE_H

#include "mlir/Pass/PassOptions.h"
#include "mlir/Support/LLVM.h"

#include <string>

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::lora {

struct GpuPipelineOptions : public PassPipelineOptions<GpuPipelineOptions> {
  Option<std::string> chips{
      *this, "chips",
      llvm::cl::desc("Comma-separated SM targets, one PTX each"),
      llvm::cl::init("sm_80,sm_90a")};
  Option<int64_t> threads{*this, "threads", llvm::cl::desc("Threads per block"),
                          llvm::cl::init(256)};
  Option<std::string> cudaPath{
      *this, "cuda-path",
      llvm::cl::desc("CUDA toolkit whose libdevice the kernels link "
                     "(default: $CUDA_HOME, else /usr/local/cuda)"),
      llvm::cl::init("")};
  Option<bool> bf16{*this, "bf16",
                    llvm::cl::desc("Frozen parameters stored in bf16; GEMM "
                                   "inputs in bf16 (tensor cores), "
                                   "accumulated in fp32"),
                    llvm::cl::init(false)};
};

/// buildBufferizationPipeline, then: GEMMs as calls to the runtime's
/// cuBLASLt GEMM (`lora_gpu_sgemm_f32`); every other loop nest as a GPU
/// kernel (blocks of `threads` threads along the contiguous dimension),
/// outlined into a gpu.module and compiled to PTX for each chip
/// (gpu.binary); the host code to the LLVM dialect, launching the kernels
/// through the runtime's `mgpu*` entry points.
LogicalResult buildGpuLoweringPipeline(OpPassManager &pm,
                                       const GpuPipelineOptions &options);

/// Registers `lora-gpu-pipeline` for lora-opt.
void registerGpuPipeline();

} // namespace mlir::lora

#endif // LORA_PIPELINES_GPUPIPELINE_H
