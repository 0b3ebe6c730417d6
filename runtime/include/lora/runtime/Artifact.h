//===- Artifact.h - load an ahead-of-time compiled step ---------*- C++ -*-===//
//
// `lora-run compile` writes step.so and manifest.json; this loads them with
// dlopen, without MLIR or LLVM, for `lora-train` and any program that links
// the runtime. The program must export the runtime's GEMM entry point
// (link with -rdynamic), which step.so calls.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_ARTIFACT_H
#define LORA_RUNTIME_ARTIFACT_H

#include "lora/runtime/Trainer.h"

#include <memory>
#include <string>

namespace lora::runtime {

class ArtifactStep : public CompiledStep {
public:
  static Status open(const std::string &directory,
                     std::unique_ptr<ArtifactStep> &result);
  ~ArtifactStep() override;

  const std::vector<BufferInfo> &arguments() const override { return args; }
  const std::vector<BufferInfo> &results() const override { return outs; }
  Status run(const std::vector<void *> &arguments,
             const std::vector<void *> &results) override;

  uint64_t plannedArenaBytes() const override { return arenaBytes; }
  bool reducesGradients() const override { return reduces; }
  bool runsOnGpu() const override { return gpu; }

  /// The manifest's "metadata" object as JSON text (how it was built).
  const std::string &metadata() const { return metadataText; }

private:
  ArtifactStep() = default;
  void *library = nullptr;
  void (*entry)(void **) = nullptr;
  std::vector<BufferInfo> args, outs;
  std::string metadataText, path;
  uint64_t arenaBytes = 0;
  bool reduces = false;
  bool gpu = false;
};

} // namespace lora::runtime

#endif // LORA_RUNTIME_ARTIFACT_H
