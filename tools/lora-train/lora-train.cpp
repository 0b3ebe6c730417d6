//===- lora-train.cpp - train with an ahead-of-time compiled step ---------===//
//
// The runtime alone: loads the step.so + manifest.json that `lora-run
// compile` wrote and trains with it, with lora-run train's run flags. Builds
// and runs where MLIR is absent (-DLORA_BUILD_COMPILER=OFF).
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Artifact.h"
#include "lora/runtime/Cuda.h"
#include "lora/runtime/Gemm.h"
#include "lora/runtime/TrainingRun.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>

namespace rt = lora::runtime;

static int fail(const std::string &message) {
  std::fprintf(stderr, "lora-train: error: %s\n", message.c_str());
  return 1;
}

int main(int argc, char **argv) {
  CLI::App app{"lora-train: train with a step compiled ahead of time by "
               "`lora-run compile` (no MLIR needed)"};
  std::string artifact;
  rt::RunOptions run;
  app.add_option("--artifact", artifact,
                 "Folder with step.so and manifest.json")
      ->required();
  app.add_option("--train_file", run.trainFile,
                 "Training data: .jsonl, .txt or .bin (default: built-in)");
  app.add_option("--dataset", run.dataset,
                 "Built-in data: text or arithmetic (default text)");
  app.add_option("--model_weights", run.modelWeights,
                 "Base weights (safetensors file, index or folder)");
  app.add_option("--output_dir", run.outputDir, "Where outputs go");
  app.add_option("--max_steps", run.maxSteps, "Optimizer steps (default 300)");
  app.add_option("--learning_rate", run.learningRate,
                 "Peak learning rate (default 5e-3 lora, 5e-4 full)");
  app.add_option("--lr_scheduler_type", run.schedulerType,
                 "constant, linear or cosine (default linear)");
  app.add_option("--warmup_steps", run.warmupSteps, "Linear warmup steps");
  auto *seed = app.add_option("--seed", run.seed, "Seed (default 42)");
  app.add_option("--logging_steps", run.loggingSteps, "Log every N steps");
  app.add_option("--save_steps", run.saveSteps, "Checkpoint every N steps");
  app.add_option("--save_total_limit", run.saveTotalLimit,
                 "Keep the newest N checkpoints");
  app.add_option("--resume_from_checkpoint", run.resumeFrom,
                 "A checkpoint folder or 'latest'");
  app.add_option("--stop_at_step", run.stopAtStep,
                 "End this run after step N with a checkpoint");
  app.add_flag("--save_merged", run.saveMerged, "Also write the merged model");
  double ddpTimeout = 1800;
  app.add_option("--ddp_timeout", ddpTimeout,
                 "Under a launcher: seconds a collective may take");
  app.add_option("--ddp_bucket_cap_mb", run.bucketMiB,
                 "Under a launcher: MiB of gradients per all-reduce bucket");
  CLI11_PARSE(app, argc, argv);
  run.seedGiven = seed->count() > 0;
  run.programName = "lora-train";

  if (rt::Status status = rt::readFaultInjection(run.fault); !status.ok())
    return fail(status.message());
  rt::LaunchEnvironment launch;
  if (rt::Status status = rt::detectLaunch(launch); !status.ok())
    return fail(status.message());
  rt::configureThreads(launch.localWorldSize);
  // A GPU step's process takes GPU LOCAL_RANK before the driver opens.
  if (launch.distributed())
    if (rt::Status status = rt::cudaUseDevice(launch.localRank); !status.ok())
      return fail(status.message());

  std::unique_ptr<rt::ArtifactStep> step;
  if (rt::Status status = rt::ArtifactStep::open(artifact, step); !status.ok())
    return fail(status.message());
  std::unique_ptr<rt::Communicator> communicator;
  if (rt::Status status = rt::openCommunicator(launch, ddpTimeout,
                                               step->runsOnGpu(), communicator);
      !status.ok())
    return fail(status.message());
  run.communicator = communicator.get();
  // How the step was built: method, batch shape, adapter.
  nlohmann::json metadata = nlohmann::json::parse(step->metadata());
  run.method = metadata.value("method", "lora");
  run.batchSize = metadata.value("batch_size", int64_t(0));
  run.sequenceLength = metadata.value("max_seq_length", int64_t(0));
  if (run.batchSize <= 0 || run.sequenceLength <= 0)
    return fail(artifact + "/manifest.json: metadata lacks the batch shape");
  nlohmann::json adapter = metadata.value("adapter", nlohmann::json::object());
  run.adapter.rank = adapter.value("r", int64_t(8));
  run.adapter.alpha = adapter.value("lora_alpha", 16.0);
  run.adapter.useRsLora = adapter.value("use_rslora", false);
  run.adapter.dropout = adapter.value("lora_dropout", 0.0);
  run.adapter.baseModel = metadata.value("base_model", std::string());
  bool bf16 = metadata.value("gemm_precision", std::string("f32")) == "bf16";
  if (launch.rank == 0)
    std::fprintf(stderr,
                 "lora-train: %s step from %s (batch %lld x %lld tokens%s)\n",
                 run.method.c_str(), artifact.c_str(), (long long)run.batchSize,
                 (long long)run.sequenceLength,
                 bf16 ? "; frozen weights and GEMM inputs in bf16, fp32 "
                        "accumulation"
                      : "");
  if (rt::Status status = rt::runTraining(*step, run); !status.ok())
    return fail(status.message());
  return 0;
}
