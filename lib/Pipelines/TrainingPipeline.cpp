//===- TrainingPipeline.cpp - forward pass to training step ---------------===//

#include "lora/Pipelines/Pipelines.h"

#include "lora/Dialect/Lora/Transforms/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::lora;

LogicalResult mlir::lora::buildTrainingPipeline(
    OpPassManager &pm, const TrainingPipelineOptions &options,
    llvm::function_ref<LogicalResult(const llvm::Twine &)> error) {
  StringRef method = options.method;
  if (method != "lora" && method != "full" && method != "mixed" &&
      method != "frozen")
    return error("lora-training-pipeline: method must be lora, full, mixed "
                 "or frozen, got '" +
                 method + "'");
  bool adapters = method == "lora" || method == "mixed";
  if (!adapters && !options.targetModules.empty())
    return error("lora-training-pipeline: target-modules needs method=lora "
                 "or method=mixed, got method=" +
                 method);
  if (method == "mixed" &&
      (options.targetModules.empty() || options.fullModules.empty()))
    return error("lora-training-pipeline: method=mixed needs both "
                 "target-modules and full-modules");
  StringRef recompute = options.recompute;
  if (recompute != "none" && recompute != "layer" && recompute != "selective")
    return error("lora-training-pipeline: recompute must be none, layer or "
                 "selective, got '" +
                 recompute + "'");
  if (method == "frozen" && !options.fullModules.empty())
    return error("lora-training-pipeline: method=frozen trains nothing; "
                 "full-modules needs another method");

  if (adapters) {
    AttachAdaptersOptions adapter;
    adapter.targetModules.assign(options.targetModules.begin(),
                                 options.targetModules.end());
    adapter.rank = options.rank;
    adapter.alpha = options.alpha;
    adapter.useRsLora = options.useRsLora;
    adapter.dropout = options.dropout;
    pm.addPass(createAttachAdapters(adapter));
  }
  SetTrainableOptions trainable;
  trainable.modules.assign(options.fullModules.begin(),
                           options.fullModules.end());
  if (method == "full" && trainable.modules.empty())
    trainable.modules.push_back("all");
  pm.addPass(createSetTrainable(trainable));
  pm.addPass(createAutodiff());
  OptimizerOptions optimizer;
  optimizer.beta1 = options.beta1;
  optimizer.beta2 = options.beta2;
  optimizer.epsilon = options.epsilon;
  optimizer.weightDecay = options.weightDecay;
  optimizer.maxGradNorm = options.maxGradNorm;
  pm.addPass(createOptimizer(optimizer));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  if (adapters && options.fuseAdapters)
    pm.addPass(createFuseAdapters());
  if (options.fuseLoss) {
    FuseLinearCrossEntropyOptions loss;
    loss.chunk = options.lossChunk;
    pm.addPass(createFuseLinearCrossEntropy(loss));
  }
  if ((adapters && options.fuseAdapters) || options.fuseLoss) {
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
  }
  // Last: CSE would merge the recomputed ops back into the forward's.
  if (options.recompute != "none") {
    RecomputeOptions recompute;
    recompute.mode = options.recompute;
    pm.addPass(createRecompute(recompute));
  }
  // After every pass that rewrites the backward: the reductions start right
  // after the final gradients.
  if (options.dataParallel)
    pm.addPass(createDataParallel());
  return success();
}

void mlir::lora::registerLoraPipelines() {
  registerPassPipeline(
      "lora-training-pipeline",
      "Turn a model's forward pass and loss into a training step: attach "
      "adapters, select trainable weights, differentiate, add AdamW",
      [](OpPassManager &pm, StringRef text,
         llvm::function_ref<LogicalResult(const llvm::Twine &)> error) {
        TrainingPipelineOptions options;
        if (failed(options.parseFromString(text)))
          return failure();
        return buildTrainingPipeline(pm, options, error);
      },
      [](llvm::function_ref<void(const detail::PassOptions &)> print) {
        print(TrainingPipelineOptions());
      });
}
