//===- TrainingRun.cpp - one training run, from data to exports -----------===//

#include "lora/runtime/TrainingRun.h"

#include "lora/runtime/Arena.h"
#include "lora/runtime/Cuda.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

namespace lora::runtime {

Status validateRunOptions(const RunOptions &options) {
  // Other unknown methods are the training pipeline's to name.
  if (options.method == "frozen")
    return Status::error("--method frozen trains nothing; use lora, full or "
                         "mixed");
  if (options.maxSteps <= 0)
    return Status::error("--max_steps must be > 0, got " +
                         std::to_string(options.maxSteps));
  Schedule::Kind kind;
  return Schedule::parseKind(options.schedulerType, kind);
}

Status readFaultInjection(FaultInjection &fault) {
  fault = FaultInjection();
  const char *text = std::getenv("LORA_TEST_FAULT");
  if (!text || !*text)
    return Status::success();
  char action[16] = {0};
  int rank = -1;
  long long step = -1;
  char extra = 0;
  if (std::sscanf(text, "%15[a-z]:%d:%lld%c", action, &rank, &step, &extra) !=
          3 ||
      (std::string(action) != "kill" && std::string(action) != "hang") ||
      rank < 0 || step < 1)
    return Status::error(std::string("LORA_TEST_FAULT='") + text +
                         "': expected kill:<rank>:<step> or "
                         "hang:<rank>:<step>");
  fault.action = action;
  fault.rank = rank;
  fault.step = step;
  return Status::success();
}

Status openCommunicator(const LaunchEnvironment &launch, double timeoutSeconds,
                        bool gpu, std::unique_ptr<Communicator> &communicator) {
  communicator.reset();
  if (!launch.distributed())
    return Status::success();
  if (!(timeoutSeconds > 0))
    return Status::error("--ddp_timeout must be > 0 seconds");
  if (gpu)
    return openNcclCommunicator(launch, timeoutSeconds, communicator);
  return openMpiCommunicator(launch, timeoutSeconds, communicator);
}

Status runTraining(CompiledStep &step, const RunOptions &options) {
  LORA_RETURN_IF_ERROR(validateRunOptions(options));
  Communicator *communicator = options.communicator;
  bool distributed = communicator && communicator->size() > 1;
  bool lead = !distributed || communicator->rank() == 0;
  if (distributed && !step.reducesGradients())
    return Status::error("this is a data-parallel run of " +
                         std::to_string(communicator->size()) +
                         " ranks, but the step does not reduce its "
                         "gradients; compile it with lora-data-parallel "
                         "(lora-run does under a launcher)");
  if (distributed && !(options.bucketMiB > 0))
    return Status::error("--ddp_bucket_cap_mb must be > 0");
  Schedule schedule;
  LORA_RETURN_IF_ERROR(
      Schedule::parseKind(options.schedulerType, schedule.kind));
  schedule.peak = options.learningRate > 0   ? options.learningRate
                  : options.method == "full" ? 5e-4
                                             : 5e-3;
  schedule.warmupSteps = options.warmupSteps;
  schedule.totalSteps = options.maxSteps;

  // A resumed run takes its seed (initialization, shuffling, dropout) and
  // its data position from the checkpoint.
  uint64_t seed = options.seed;
  std::string checkpoint;
  Trainer::CheckpointState resumed;
  if (!options.resumeFrom.empty()) {
    checkpoint = options.resumeFrom == "latest"
                     ? Trainer::latestCheckpoint(options.outputDir)
                     : options.resumeFrom;
    if (checkpoint.empty())
      return Status::error("--resume_from_checkpoint latest: no checkpoint "
                           "in " +
                           options.outputDir);
    LORA_RETURN_IF_ERROR(Trainer::readCheckpointState(checkpoint, resumed));
    if (options.seedGiven && options.seed != resumed.seed)
      return Status::error("--seed " + std::to_string(options.seed) +
                           " differs from the checkpoint's " +
                           std::to_string(resumed.seed) +
                           "; leave --seed out when resuming");
    if (resumed.step >= options.maxSteps)
      return Status::error(
          checkpoint + " is at step " + std::to_string(resumed.step) +
          ", not before --max_steps " + std::to_string(options.maxSteps));
    seed = resumed.seed;
  }

  ByteTokenizer tokenizer;
  std::vector<Example> examples;
  if (!options.trainFile.empty()) {
    // Token files are checked against the model's own vocabulary.
    int32_t vocab = ByteTokenizer::kVocabSize;
    for (const BufferInfo &info : step.arguments())
      if (info.name == "model.embed_tokens.weight")
        vocab = int32_t(info.shape[0]);
    LORA_RETURN_IF_ERROR(loadDataset(options.trainFile, tokenizer,
                                     options.sequenceLength, vocab, examples));
  } else {
    LORA_RETURN_IF_ERROR(loadBuiltinDataset("--dataset", options.dataset, 4096,
                                            seed, tokenizer, examples));
  }
  Batcher batcher(std::move(examples), options.batchSize,
                  options.sequenceLength, seed);
  if (distributed)
    batcher.shard(communicator->rank(), communicator->size());

  Trainer trainer(step);
  LORA_RETURN_IF_ERROR(trainer.initialize(options.modelWeights, seed));
  if (!checkpoint.empty()) {
    LORA_RETURN_IF_ERROR(trainer.loadCheckpoint(checkpoint));
    batcher.seek(resumed.epoch, resumed.position);
    if (lead)
      std::fprintf(stderr, "%s: resuming from %s at step %lld\n",
                   options.programName.c_str(), checkpoint.c_str(),
                   (long long)resumed.step);
  }
  std::error_code error;
  std::filesystem::create_directories(options.outputDir, error);
  if (error)
    return Status::error(options.outputDir +
                         ": cannot create: " + error.message());

  Trainer::MemoryPlan plan = trainer.plannedMemory();
  auto mib = [](uint64_t bytes) { return bytes / 1048576.0; };
  if (distributed && lead)
    std::fprintf(stderr,
                 "%s: data parallel over %d ranks: batch %lld per rank, "
                 "%lld in all; gradients reduced in buckets of %.3g MiB\n",
                 options.programName.c_str(), communicator->size(),
                 (long long)options.batchSize,
                 (long long)(options.batchSize * communicator->size()),
                 options.bucketMiB);
  if (lead)
    std::fprintf(stderr,
                 "%s: planned peak memory %.1f MiB: parameters, optimizer "
                 "state and batch %.1f MiB, step outputs %.1f MiB, "
                 "activations %.1f MiB (static plan)\n",
                 options.programName.c_str(), mib(plan.total()),
                 mib(plan.argumentBytes), mib(plan.resultBytes),
                 mib(plan.activationBytes));

  TrainOptions train;
  train.maxSteps = options.maxSteps;
  train.startStep = resumed.step;
  train.schedule = schedule;
  train.seed = seed;
  train.loggingSteps = options.loggingSteps;
  train.metricsPath = options.outputDir + "/metrics.jsonl";
  train.interactive = isatty(STDERR_FILENO);
  train.checkpointDir = options.outputDir;
  train.saveSteps = options.saveSteps;
  train.saveTotalLimit = options.saveTotalLimit;
  train.stopAtStep = options.stopAtStep;
  train.communicator = options.communicator;
  train.bucketBytes = size_t(options.bucketMiB * 1048576.0);
  train.fault = options.fault;
  int64_t lastStep = options.stopAtStep > 0
                         ? std::min(options.stopAtStep, options.maxSteps)
                         : options.maxSteps;
  double firstLoss = 0, lastLoss = 0;
  bool first = true;
  LORA_RETURN_IF_ERROR(trainer.train(batcher, train, [&](const StepMetrics &m) {
    if (first)
      firstLoss = m.loss;
    first = false;
    lastLoss = m.loss;
  }));
  if (distributed) {
    LORA_RETURN_IF_ERROR(trainer.checkRanksAgree(*communicator));
    if (lead) {
      std::fprintf(stderr,
                   "%s: trainable parameters and optimizer state identical "
                   "on all %d ranks\n",
                   options.programName.c_str(), communicator->size());
      const Trainer::ReductionStats &r = trainer.reductionStats();
      double steps = double(std::max<int64_t>(1, r.steps));
      double hidden = r.collectiveSeconds > 0
                          ? std::max(0.0, 1 - r.waitedSeconds /
                                                  r.collectiveSeconds)
                          : 0;
      std::fprintf(stderr,
                   "%s: gradient all-reduce: %zu bucket(s), %.3f MiB per "
                   "step; %.1f ms per step in collectives, %.1f ms waited "
                   "for (%.0f%% behind the backward)\n",
                   options.programName.c_str(), r.buckets,
                   r.bytes / 1048576.0, 1e3 * r.collectiveSeconds / steps,
                   1e3 * r.waitedSeconds / steps, 100 * hidden);
    }
  }
  if (!lead)
    return Status::success();
  std::fprintf(stderr,
               "%s: loss %.4f -> %.4f at step %lld; metrics in "
               "%s/metrics.jsonl, checkpoint in %s/checkpoint-%lld\n",
               options.programName.c_str(), firstLoss, lastLoss,
               (long long)lastStep, options.outputDir.c_str(),
               options.outputDir.c_str(), (long long)lastStep);
  // A GPU step's temporaries come from the CUDA backend's arena.
  ArenaStats arena =
      step.runsOnGpu() ? cudaArenaStats() : activationArenaStats();
  // Measured: the buffers the runtime holds plus the most the step's
  // allocations ever had in use at once (the planned arena and anything
  // the plan left out).
  uint64_t measured =
      plan.argumentBytes + plan.resultBytes + arena.peakLiveBytes;
  std::fprintf(stderr,
               "%s: measured peak memory %.1f MiB (%.3f of the plan); "
               "activations %.1f MiB in use at most, %llu allocations "
               "reused, %llu from the system\n",
               options.programName.c_str(), mib(measured),
               plan.total() ? double(measured) / double(plan.total()) : 0.0,
               mib(arena.peakLiveBytes),
               (unsigned long long)arena.reusedAllocations,
               (unsigned long long)arena.systemAllocations);
  if (lastStep < options.maxSteps) {
    std::fprintf(stderr,
                 "%s: stopped at step %lld (--stop_at_step); "
                 "continue with --resume_from_checkpoint latest\n",
                 options.programName.c_str(), (long long)lastStep);
    return Status::success();
  }
  if (options.method != "full") {
    LORA_RETURN_IF_ERROR(
        trainer.exportPeftAdapter(options.outputDir, options.adapter));
    std::fprintf(stderr,
                 "%s: wrote the PEFT adapter "
                 "%s/adapter_model.safetensors and adapter_config.json\n",
                 options.programName.c_str(), options.outputDir.c_str());
  }
  if (options.method != "lora" || options.saveMerged) {
    std::string merged = options.method == "lora"
                             ? options.outputDir + "/merged"
                             : options.outputDir;
    LORA_RETURN_IF_ERROR(trainer.exportMergedModel(merged, options.adapter));
    std::fprintf(stderr, "%s: wrote %s/model.safetensors\n",
                 options.programName.c_str(), merged.c_str());
  }
  return Status::success();
}

} // namespace lora::runtime
