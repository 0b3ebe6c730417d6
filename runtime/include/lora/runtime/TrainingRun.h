//===- TrainingRun.h - one training run, from data to exports ---*- C++ -*-===//
//
// What `lora-run train` (JIT) and `lora-train` (an ahead-of-time artifact)
// both do once they hold a compiled step: pick the data, initialize or load
// the weights, resume from a checkpoint, train, and export. Messages name
// the command-line flags both tools share.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_TRAININGRUN_H
#define LORA_RUNTIME_TRAININGRUN_H

#include "lora/runtime/Collective.h"
#include "lora/runtime/Launch.h"
#include "lora/runtime/Trainer.h"

#include <memory>

#include <string>

namespace lora::runtime {

struct RunOptions {
  /// Prefix of progress messages: the program's name.
  std::string programName = "lora-run";
  std::string method = "lora"; // lora, full or mixed
  int64_t batchSize = 8, sequenceLength = 64;
  std::string trainFile; // "" for the built-in --dataset
  std::string dataset = "text";
  std::string modelWeights; // "" for a seeded initialization
  std::string outputDir = "lora-run-output";
  int64_t maxSteps = 300;
  /// 0: 5e-3 for lora and mixed, 5e-4 for full.
  double learningRate = 0;
  std::string schedulerType = "linear";
  int64_t warmupSteps = 0;
  uint64_t seed = 42;
  bool seedGiven = false;
  int64_t loggingSteps = 10;
  int64_t saveSteps = 0, saveTotalLimit = 0, stopAtStep = 0;
  std::string resumeFrom; // a checkpoint folder, "latest" or ""
  bool saveMerged = false;
  AdapterConfig adapter;
  /// Data parallelism: the ranks' communicator (nullptr: one process),
  /// opened by the tool from the launcher's environment before compiling.
  /// The step must reduce its gradients (lora-data-parallel).
  Communicator *communicator = nullptr;
  /// Gradient bucket size of the all-reduce (--ddp_bucket_cap_mb).
  double bucketMiB = 25;
  /// LORA_TEST_FAULT, read by readFaultInjection.
  FaultInjection fault;
};

/// LORA_TEST_FAULT=<kill|hang>:<rank>:<step>, a fault the tests inject: the
/// rank kills itself (SIGKILL) or stops calling collectives at that step.
Status readFaultInjection(FaultInjection &fault);

/// The communicator for `launch` (nullptr when it is one process): NCCL
/// for a step that runs on GPUs, MPI on CPUs. `timeoutSeconds` bounds
/// every collective (--ddp_timeout).
Status openCommunicator(const LaunchEnvironment &launch, double timeoutSeconds,
                        bool gpu, std::unique_ptr<Communicator> &communicator);

/// Checks the flags that need no data or step (method, steps, schedule), so
/// a tool can fail before compiling.
Status validateRunOptions(const RunOptions &options);

/// Runs training with `step`; progress and a summary go to stderr.
Status runTraining(CompiledStep &step, const RunOptions &options);

} // namespace lora::runtime

#endif // LORA_RUNTIME_TRAININGRUN_H
