//===- CpuPipeline.cpp - lowering a step to LLVM for the CPU --------------===//
//
// Results become out-parameters (buffer-results-to-out-params) so that the
// runtime owns every buffer the step reads or writes; the step allocates
// only its temporaries.
//
//===----------------------------------------------------------------------===//

#include "lora/Pipelines/CpuPipeline.h"

#include "lora/Conversion/Passes.h"

#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>

using namespace mlir;

/// Upstream passes after convert-lora-to-linalg, in textual form: the same
/// spelling a user would pass to mlir-opt.
/// Shared by the CPU and GPU lowerings: linalg on tensors to buffers, the
/// step's results as out-parameters, temporaries in one planned arena. A
/// formatv template: {0} and {1} are lora-split-reductions' min-elements
/// and row-min-elements.
static constexpr const char *kToBuffers =
    // eliminate-empty-tensors: producers write straight into the column
    // slices of concatenations (lora-fuse-adapters' [dY | dU]) instead of
    // a temporary that is copied in; lora-contiguous-accesses (CPU) lets
    // the vectorizer handle those strided buffers.
    // No CSE either: lora-recompute's clones must stay clones. The lora
    // level was CSE'd by lora-training-pipeline already.
    "func.func(convert-elementwise-to-linalg), canonicalize, "
    "lora-fuse-elementwise, canonicalize, "
    // Whole-tensor sums (loss, gradient norm) as parallel partial sums,
    // from {0} elements on; row reductions from {1} (0: none).
    "lora-split-reductions{{min-elements={0} row-min-elements={1}}, "
    "eliminate-empty-tensors, "
    "one-shot-bufferize{{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map}, canonicalize, "
    "buffer-results-to-out-params{{hoist-static-allocs "
    "modify-public-functions}, "
    "func.func(buffer-hoisting), buffer-deallocation-pipeline, "
    // lora-in-place-updates: the adapter's rank-r update accumulates into
    // Y0's columns of [Y0 | U] instead of into a copy of them.
    "convert-bufferization-to-memref, lora-in-place-updates, "
    "lora-plan-memory, canonicalize";

/// GEMMs to OpenBLAS calls, every other kernel to vectorized loops, then
/// the LLVM dialect. With `openmp`, each kernel's outermost parallel loop
/// is split across OpenMP threads: the same pool the runtime's GEMMs run
/// on (runtime/lib/Gemm.cpp), so no second set of threads spins against
/// it.
static std::string loweringPipeline(bool openmp, int64_t parallelFrom) {
  // [W; A] read where the runtime put W and A, when they are adjacent.
  std::string pipeline = "lora-adjacent-arguments, ";
  // GEMMs to BLAS: bf16 inputs (--bf16) to the bf16 GEMM.
  pipeline += "lora-matmul-to-blas, ";
  pipeline +=
      // Non-GEMM kernels: affine loops, whose innermost contiguous loops
      // the super-vectorizer turns into 8-wide vector code (reductions
      // included), then tiled by 32. (Tiling before vectorizing yields
      // invalid vector.transfer_write ops in MLIR 22.)
      // Kernels on column slices of wider buffers read and write them as
      // windows of identity-layout arrays, which the vectorizer handles.
      "lora-copies-to-loops, "
      "lora-lower-row-reductions, convert-linalg-to-affine-loops, "
      "lora-contiguous-accesses, ";
  // Before vectorizing: the dependence analysis that finds parallel loops
  // reads affine loads and stores, not vector transfers. Only the
  // outermost loop of a nest, and no reductions (results stay
  // deterministic).
  if (openmp)
    pipeline += "func.func(affine-parallelize{max-nested=1}), ";
  pipeline += "func.func(affine-super-vectorize{virtual-vector-size=8 "
              "vectorize-reductions=true}), "
              "func.func(affine-loop-tile{tile-size=32}), ";
  // After vectorizing, so that a nest's iterations count its vectors: small
  // nests run on one thread.
  if (openmp)
    pipeline += "lora-serialize-small-loops{min-iterations=" +
                std::to_string(parallelFrom) + "}, ";
  pipeline += "canonicalize, lora-approximate-math, "
              "expand-strided-metadata, lower-affine, convert-vector-to-scf, ";
  // scf.parallel -> omp.parallel + omp.wsloop; canonicalize inlines the
  // memref.alloca_scope around each body (the kernels allocate nothing on
  // the stack), which convert-scf-to-cf could not leave single-block.
  if (openmp)
    pipeline += "lora-parallel-to-openmp, convert-scf-to-openmp, canonicalize, ";
  pipeline +=
      "convert-scf-to-cf, convert-vector-to-llvm, convert-math-to-llvm, "
      "finalize-memref-to-llvm{use-generic-functions=true}, "
      "convert-arith-to-llvm, convert-cf-to-llvm, "
      "convert-func-to-llvm, convert-index-to-llvm, convert-ub-to-llvm, ";
  if (openmp)
    pipeline += "convert-openmp-to-llvm, ";
  return pipeline + "reconcile-unrealized-casts";
}

LogicalResult mlir::lora::buildBufferizationPipeline(OpPassManager &pm,
                                                     StringRef flashAttention,
                                                     int64_t splitSumsFrom,
                                                     int64_t splitRowsFrom,
                                                     bool adapterGradCalls,
                                                     bool bf16) {
  // The textual pipeline names upstream passes; make sure they are known
  // when a program other than lora-opt (lora-run, tests) builds it.
  // Registering a pass again is harmless.
  static std::once_flag registered;
  std::call_once(registered, [] {
    registerAllPasses();
    registerLoraConversionPasses();
  });
  ConvertLoraToLinalgOptions options;
  options.flashAttention = flashAttention.str();
  options.adapterGradCalls = adapterGradCalls;
  // bf16: frozen weights stored in bf16, every GEMM's inputs in bf16
  // (rounded on tensors, so the rounding joins its producer's kernel).
  if (bf16)
    pm.addPass(createStoreFrozenBf16());
  pm.addPass(createConvertLoraToLinalg(options));
  if (bf16)
    pm.addPass(createBf16GemmInputs());
  return parsePassPipeline(
      llvm::formatv(kToBuffers, splitSumsFrom, splitRowsFrom).str(), pm);
}

LogicalResult mlir::lora::buildCpuLoweringPipeline(OpPassManager &pm,
                                                   bool flashAttention,
                                                   bool openmp, bool bf16,
                                                   int64_t splitRowsFrom,
                                                   int64_t parallelFrom) {
  // Tests lower both thresholds to split what the GPU would.
  int64_t splitSumsFrom =
      splitRowsFrom > 0 ? std::min<int64_t>(4096, splitRowsFrom) : 4096;
  // The adapter's backward in one pass (runtime/lib/AdapterGrad.cpp),
  // except where bf16 GEMM inputs are asked for: its three GEMMs round them.
  if (failed(buildBufferizationPipeline(pm, flashAttention ? "cpu" : "none",
                                        splitSumsFrom, splitRowsFrom,
                                        /*adapterGradCalls=*/!bf16, bf16)))
    return failure();
  // LORA_PROFILE_IR=<file>: the loop-level IR goes to <file> and becomes
  // the code's line table, so a profiler (perf report --sort srcline)
  // names the kernel behind each sample by its line in <file>.
  const char *profileIr = std::getenv("LORA_PROFILE_IR");
  if (profileIr &&
      failed(parsePassPipeline(
          (llvm::Twine("snapshot-op-locations{filename=") + profileIr + "}")
              .str(),
          pm)))
    return failure();
  if (failed(
          parsePassPipeline(loweringPipeline(openmp, parallelFrom), pm)))
    return failure();
  if (profileIr)
    return parsePassPipeline(
        "ensure-debug-info-scope-on-llvm-func{emission-kind=LineTablesOnly}",
        pm);
  return success();
}

void mlir::lora::registerCpuPipeline() {
  PassPipelineRegistration<CpuPipelineOptions>(
      "lora-cpu-pipeline", "Lower a lora step to the LLVM dialect for the CPU",
      [](OpPassManager &pm, const CpuPipelineOptions &options) {
        (void)buildCpuLoweringPipeline(pm, options.flashAttention,
                                       options.openmp, options.bf16,
                                       options.splitRowsFrom,
                                       options.parallelFrom);
      });
}
