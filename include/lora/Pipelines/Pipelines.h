//===- Pipelines.h - named pass pipelines -----------------------*- C++ -*-===//
//
// The pipelines lora-opt registers and lora-run runs, built by one function
// each so that both tools run the same passes.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_PIPELINES_PIPELINES_H
#define LORA_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassOptions.h"
#include "llvm/ADT/Twine.h"

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::lora {

/// Options of `lora-training-pipeline`: the finetuning method, the adapter
/// and the optimizer.
struct TrainingPipelineOptions
    : public PassPipelineOptions<TrainingPipelineOptions> {
  Option<std::string> method{
      *this, "method",
      llvm::cl::desc("lora (adapters on target-modules), full (every "
                     "parameter, or full-modules), mixed (adapters on "
                     "target-modules and full-modules in full), frozen (no "
                     "training: the loss only)"),
      llvm::cl::init("lora")};
  ListOption<std::string> targetModules{
      *this, "target-modules",
      llvm::cl::desc("Modules that get adapters (default all-linear)")};
  ListOption<std::string> fullModules{
      *this, "full-modules",
      llvm::cl::desc("Modules trained in full (method=full: default all)")};
  Option<int64_t> rank{*this, "rank", llvm::cl::desc("Adapter rank"),
                       llvm::cl::init(8)};
  Option<double> alpha{*this, "alpha",
                       llvm::cl::desc("LoRA alpha (0: 2 * rank)"),
                       llvm::cl::init(0.0)};
  Option<bool> useRsLora{*this, "use-rslora",
                         llvm::cl::desc("Scale adapters by alpha/sqrt(rank)"),
                         llvm::cl::init(false)};
  Option<double> dropout{*this, "dropout",
                         llvm::cl::desc("Adapter input dropout"),
                         llvm::cl::init(0.0)};
  Option<double> beta1{*this, "beta1", llvm::cl::desc("AdamW beta1"),
                       llvm::cl::init(0.9)};
  Option<double> beta2{*this, "beta2", llvm::cl::desc("AdamW beta2"),
                       llvm::cl::init(0.999)};
  Option<double> epsilon{*this, "epsilon", llvm::cl::desc("AdamW epsilon"),
                         llvm::cl::init(1e-8)};
  Option<double> weightDecay{*this, "weight-decay",
                             llvm::cl::desc("AdamW weight decay"),
                             llvm::cl::init(0.0)};
  Option<double> maxGradNorm{*this, "max-grad-norm",
                             llvm::cl::desc("Global-norm clipping (0: off)"),
                             llvm::cl::init(1.0)};
  Option<bool> fuseAdapters{
      *this, "fuse-adapters",
      llvm::cl::desc("Fold adapter GEMMs into the base GEMMs "
                     "(lora-fuse-adapters)"),
      llvm::cl::init(true)};
  Option<bool> fuseLoss{
      *this, "fuse-loss",
      llvm::cl::desc("Compute the loss without the logits matrix "
                     "(lora-fuse-linear-cross-entropy)"),
      llvm::cl::init(true)};
  Option<int64_t> lossChunk{*this, "loss-chunk",
                            llvm::cl::desc("Vocabulary rows per loss chunk"),
                            llvm::cl::init(256)};
  Option<std::string> recompute{
      *this, "recompute",
      llvm::cl::desc("Activation checkpointing: none, layer or selective "
                     "(lora-recompute)"),
      llvm::cl::init("none")};
  Option<bool> dataParallel{
      *this, "data-parallel",
      llvm::cl::desc("Reduce the trainable gradients over data-parallel "
                     "ranks, overlapped with the backward "
                     "(lora-data-parallel)"),
      llvm::cl::init(false)};
};

/// Adds the passes that turn a model's forward pass and loss into a
/// training step. Fails, through `error`, on inconsistent options.
LogicalResult buildTrainingPipeline(
    OpPassManager &pm, const TrainingPipelineOptions &options,
    llvm::function_ref<LogicalResult(const llvm::Twine &)> error);

/// Registers `lora-training-pipeline` for lora-opt.
void registerLoraPipelines();

} // namespace mlir::lora

#endif // LORA_PIPELINES_PIPELINES_H
