//===- JitStep.h - a lora step compiled in process for the CPU --*- C++ -*-===//
//
// Lowers a lora-dialect function with lora-cpu-pipeline and compiles it
// with MLIR's ExecutionEngine. Buffers are dense and row-major; the caller
// owns all of them.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNNER_JITSTEP_H
#define LORA_RUNNER_JITSTEP_H

#include "lora/runtime/DType.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <string>
#include <vector>

namespace mlir {
class ExecutionEngine;
} // namespace mlir

namespace mlir::lora {

/// Shape and element type of one argument or result of a step.
struct BufferSpec {
  std::string name; // lora.name, or "" when absent
  std::string role; // "frozen", "lora", "full" for parameters, else ""
  std::vector<int64_t> shape;
  Type elementType;
  int64_t numElements() const;
  /// The element type as the runtime and manifests name it: F32, BF16,
  /// I32, else I64.
  ::lora::runtime::DType dtype() const;
};

/// The buffer specs of @`name`: its arguments and results, by name and role.
llvm::Error collectBufferSpecs(ModuleOp module, StringRef name,
                               std::vector<BufferSpec> &arguments,
                               std::vector<BufferSpec> &results);

/// Records the buffer specs of @`name` and lowers `module` (modified in
/// place) to the LLVM dialect, with a C interface for @`name`. `bf16`:
/// GEMM inputs rounded to bf16, fp32 accumulation (lora-run --bf16).
/// `splitRowsFrom`: as buildCpuLoweringPipeline's (tests only).
llvm::Error lowerStepForCpu(ModuleOp module, StringRef name,
                            std::vector<BufferSpec> &arguments,
                            std::vector<BufferSpec> &results,
                            bool flashAttention = false, bool bf16 = false,
                            int64_t splitRowsFrom = 0);

/// The same for NVIDIA GPUs (lora-gpu-pipeline): kernels as PTX for each
/// of `chips` (comma-separated) inside gpu.binary ops, host code in the LLVM
/// dialect.
llvm::Error lowerStepForGpu(ModuleOp module, StringRef name,
                            std::vector<BufferSpec> &arguments,
                            std::vector<BufferSpec> &results,
                            StringRef chips, bool bf16 = false);

/// Where an artifact runs.
enum class Device { Cpu, Cuda };

/// Compiles @`name` ahead of time into `directory`: step.so (position
/// independent, for this machine's CPU) and manifest.json (its buffers and
/// `metadata`), which the runtime alone can load (runtime/Artifact.h).
/// For CUDA, step.so is the host code (it embeds the PTX and launches it
/// through the runtime's mgpu* entry points), and every kernel's PTX is also
/// written to ptx/<chip>/<kernel>.ptx, for ptxas and for people.
struct ArtifactOptions {
  Device device = Device::Cpu;
  /// CUDA: the SM targets, one PTX each.
  std::string chips = "sm_80,sm_90a";
  /// CPU: attention through the runtime's flash kernels.
  bool flashAttention = false;
  /// GEMM inputs in bf16 with fp32 accumulation (both devices).
  bool bf16 = false;
  /// The host code's CPU: "native" (this one; CPU steps by default),
  /// "generic" (any of this architecture; CUDA steps by default) or an LLVM
  /// CPU name.
  std::string cpu;
};
llvm::Error writeArtifact(ModuleOp module, StringRef name,
                          StringRef directory, const std::string &metadata,
                          const ArtifactOptions &options = {});

class JitStep {
public:
  /// Lowers `module` (modified in place) and compiles function `name`.
  /// `flashAttention`: attention through the runtime's flash kernels.
  /// `gpu`: lora-gpu-pipeline (PTX for sm_80, which the driver compiles for
  /// newer GPUs too), kernels launched through the runtime's CUDA backend;
  /// the caller checked that there is a GPU.
  /// `splitRowsFrom`: as buildCpuLoweringPipeline's (tests only).
  static llvm::Expected<std::unique_ptr<JitStep>>
  compile(ModuleOp module, StringRef name, bool flashAttention = false,
          bool gpu = false, bool bf16 = false, int64_t splitRowsFrom = 0);
  ~JitStep();

  const std::vector<BufferSpec> &arguments() const { return argumentSpecs; }
  const std::vector<BufferSpec> &results() const { return resultSpecs; }
  /// Bytes of the static arena lora-plan-memory laid the step's
  /// temporaries out in.
  uint64_t plannedArenaBytes() const { return arenaBytes; }
  /// Whether the step reduces its gradients over data-parallel ranks
  /// (lora-data-parallel ran).
  bool reducesGradients() const { return reduces; }
  /// Whether the step runs on a GPU (its buffers must be managed memory).
  bool runsOnGpu() const { return gpu; }

  /// Runs the step: one buffer per argument and one per result, each
  /// holding numElements() values of its element type.
  llvm::Error run(ArrayRef<void *> arguments, ArrayRef<void *> results);

private:
  JitStep() = default;
  std::unique_ptr<ExecutionEngine> engine;
  std::string entry;
  std::vector<BufferSpec> argumentSpecs, resultSpecs;
  uint64_t arenaBytes = 0;
  bool reduces = false;
  bool gpu = false;
};

/// The `lora.planned_arena_bytes` lora-plan-memory left on a lowered module
/// (0 when it did not run).
uint64_t plannedArenaBytes(ModuleOp module);

/// Whether a lowered module calls the runtime's gradient all-reduce.
bool reducesGradients(ModuleOp module);

} // namespace mlir::lora

#endif // LORA_RUNNER_JITSTEP_H
