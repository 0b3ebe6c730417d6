//===- GpuPipeline.cpp - lowering a step to PTX and host code -------------===//

#include "lora/Pipelines/GpuPipeline.h"

#include "lora/Conversion/Passes.h"
#include "lora/Pipelines/CpuPipeline.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"

#include <cstdlib>

using namespace mlir;

static std::string cudaToolkit(const std::string &given) {
  if (!given.empty())
    return given;
  if (const char *home = std::getenv("CUDA_HOME"); home && *home)
    return home;
  return "/usr/local/cuda";
}

LogicalResult
mlir::lora::buildGpuLoweringPipeline(OpPassManager &pm,
                                     const GpuPipelineOptions &options) {
  // Sums of 256 elements or more as kernels: left to the host code, a sum
  // reads its managed buffer (a gradient, the per-token losses) on the
  // host, moving it off the GPU and back every step. Rows of 1024 or more
  // (RMSNorm over the hidden size, the loss over a vocabulary chunk) get
  // up to 32 threads each instead of one.
  // bf16: attention's products on the tensor cores too.
  if (failed(buildBufferizationPipeline(pm, options.bf16 ? "gpu-bf16" : "gpu",
                                        /*splitSumsFrom=*/256,
                                        /*splitRowsFrom=*/1024,
                                        /*adapterGradCalls=*/false,
                                        options.bf16)))
    return failure();
  std::string toolkit = cudaToolkit(options.cudaPath);
  std::string pipeline = llvm::formatv(
      "lora-adjacent-arguments, "
      "lora-matmul-to-blas{{callee=lora_gpu_sgemm_f32 "
      "bf16-callee=lora_gpu_gemm_bf16}, "
      // Every copy a kernel: a memref.copy left to the host code would
      // pull the buffers (each frozen weight into [W; A], every step) from
      // the GPU into host memory and back.
      "lora-copies-to-loops{{min-elements=1}, "
      // Loop nests to kernels: one thread per element of the parallel
      // dimensions, reductions sequential within a thread; the tiling pass
      // also maps the tiles onto blocks and threads.
      "convert-linalg-to-parallel-loops, "
      "func.func(lora-tile-for-gpu{{threads={0}}), "
      "func.func(convert-parallel-loops-to-gpu), gpu-kernel-outlining, "
      "lora-host-shared-allocs, canonicalize, "
      // Kernels, GEMMs and attention in order on one stream; the host
      // waits only where it reads the GPU's results.
      "lora-async-launches, ",
      int64_t(options.threads));
  // One PTX per chip; libdevice gives exp, log and friends.
  std::string libdevice = toolkit + "/nvvm/libdevice/libdevice.10.bc";
  SmallVector<StringRef> chips;
  StringRef(options.chips).split(chips, ',', -1, false);
  if (chips.empty())
    return failure();
  for (StringRef chip : chips)
    pipeline += llvm::formatv("nvvm-attach-target{{chip={0} O=3 l={1}}, ",
                              chip.trim(), libdevice)
                    .str();
  pipeline +=
      "gpu.module(lower-affine, convert-scf-to-cf, convert-gpu-to-nvvm, "
      "canonicalize, cse, reconcile-unrealized-casts), "
      "gpu-module-to-binary{format=isa toolkit=" +
      toolkit +
      "}, "
      // The host: as for the CPU, with kernel launches as mgpu* calls.
      "expand-strided-metadata, lower-affine, convert-scf-to-cf, "
      "convert-math-to-llvm, "
      "finalize-memref-to-llvm{use-generic-functions=true}, "
      "convert-arith-to-llvm, convert-cf-to-llvm, convert-func-to-llvm, "
      "convert-index-to-llvm, convert-ub-to-llvm, gpu-to-llvm, "
      "reconcile-unrealized-casts, canonicalize";
  return parsePassPipeline(pipeline, pm);
}

void mlir::lora::registerGpuPipeline() {
  PassPipelineRegistration<GpuPipelineOptions>(
      "lora-gpu-pipeline",
      "Lower a lora step to PTX kernels and host code that launches them",
      [](OpPassManager &pm, const GpuPipelineOptions &options) {
        (void)buildGpuLoweringPipeline(pm, options);
      });
}
