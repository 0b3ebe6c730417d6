//===- lora-run.cpp - build, train and evaluate models --------------------===//
//
//   lora-run train      compile the training step for the CPU and train;
//                       with no arguments, a built-in small Llama on
//                       built-in data, writing a PEFT adapter
//   lora-run emit-mlir  print the forward pass and loss (or with --method
//                       the training step) as lora-dialect MLIR
//
// Flags are named as in PEFT's LoraConfig and Hugging Face's
// TrainingArguments.
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/IR/LoraDialect.h"
#include "lora/Dialect/Lora/Transforms/Passes.h"
#include "lora/Frontend/LlamaConfig.h"
#include "lora/Pipelines/Pipelines.h"
#include "lora/Runner/JitStep.h"
#include "lora/runtime/Cuda.h"
#include "lora/runtime/Data.h"
#include "lora/runtime/Gemm.h"
#include "lora/runtime/Trainer.h"
#include "lora/runtime/TrainingRun.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include <chrono>
#include <set>
#include <unistd.h>

namespace cl = llvm::cl;
namespace rt = lora::runtime;

static cl::SubCommand emitMlir("emit-mlir",
                               "Print a model's forward pass and loss (or "
                               "with --method its training step) as "
                               "lora-dialect MLIR");
static cl::SubCommand evalCommand(
    "eval", "Mean loss and perplexity of a model, with --adapter, on a data "
            "file (the study's learning and forgetting measure)");
static cl::SubCommand
    generateCommand("generate",
                    "Continue --prompt greedily or by temperature sampling");
static cl::SubCommand
    compileCommand("compile",
                   "Compile the training step ahead of time: step.so + "
                   "manifest.json, which lora-train runs without MLIR");
static cl::SubCommand
    exportCommand("export",
                  "Write the PEFT adapter and/or the merged model of a "
                  "checkpoint (give the flags the run was trained with)");
static cl::SubCommand train("train",
                            "Compile the training step for the CPU and "
                            "train; with no flags, a built-in small Llama on "
                            "built-in data");

// Flags of both subcommands.
#define BOTH                                                                   \
  cl::sub(emitMlir), cl::sub(train), cl::sub(compileCommand),                  \
      cl::sub(exportCommand)
#define USES_MODEL                                                             \
  cl::sub(emitMlir), cl::sub(train), cl::sub(evalCommand),                     \
      cl::sub(generateCommand), cl::sub(compileCommand),                       \
      cl::sub(exportCommand)
#define RUNS_MODEL                                                             \
  cl::sub(train), cl::sub(evalCommand), cl::sub(generateCommand),              \
      cl::sub(exportCommand)
static cl::OptionCategory modelCategory("Model and batch");
static cl::opt<std::string>
    configPath("config", USES_MODEL, cl::cat(modelCategory),
               cl::desc("Hugging Face config.json (train: default a built-in "
                        "2-layer Llama with the byte tokenizer)"),
               cl::value_desc("path"));
static cl::opt<int64_t>
    batchSize("per_device_train_batch_size", USES_MODEL, cl::cat(modelCategory),
              cl::desc("Sequences per step (emit-mlir: 1, train: 8)"),
              cl::init(0));
static cl::alias batchSizeAlias("batch-size", cl::aliasopt(batchSize),
                                cl::desc("Alias for "
                                         "--per_device_train_batch_size"));
static cl::opt<int64_t> seqLen(
    "max_seq_length", USES_MODEL, cl::cat(modelCategory),
    cl::desc("Tokens per sequence (emit-mlir: max_position_embeddings, at "
             "most 512; train: 64)"),
    cl::init(0));
static cl::alias seqLenAlias("seq-len", cl::aliasopt(seqLen),
                             cl::desc("Alias for --max_seq_length"));

// Training-step flags, as PEFT and the Hugging Face Trainer name them.
static cl::OptionCategory trainingCategory("Training step");
static cl::opt<std::string> method(
    "method", BOTH, cl::cat(trainingCategory),
    cl::desc("lora, full, mixed (LoRA on --target_modules, --full_modules "
             "in full) or frozen. emit-mlir without it prints the forward "
             "pass; train defaults to lora"));
static cl::opt<int64_t> loraRank("r", BOTH, cl::cat(trainingCategory),
                                 cl::desc("LoRA rank (default 8)"),
                                 cl::init(8));
static cl::opt<double> loraAlpha("lora_alpha", BOTH, cl::cat(trainingCategory),
                                 cl::desc("LoRA alpha (default 2 * r)"),
                                 cl::init(0.0));
static cl::list<std::string> targetModules(
    "target_modules", BOTH, cl::cat(trainingCategory), cl::CommaSeparated,
    cl::desc("Modules that get adapters: all-linear (default) or names "
             "such as q_proj,v_proj or self_attn"));
static cl::list<std::string>
    fullModules("full_modules", BOTH, cl::cat(trainingCategory),
                cl::CommaSeparated,
                cl::desc("Modules trained in full (method=full: default all)"));
static cl::opt<double> loraDropout("lora_dropout", BOTH,
                                   cl::cat(trainingCategory),
                                   cl::desc("Dropout on the adapter input"),
                                   cl::init(0.0));
static cl::opt<bool> useRsLora("use_rslora", BOTH, cl::cat(trainingCategory),
                               cl::desc("Scale adapters by alpha / sqrt(r)"));
static cl::opt<bool> fuseAdapters(
    "fuse_adapters", BOTH, cl::cat(trainingCategory),
    cl::desc("Fold adapter GEMMs into the base GEMMs (default true; "
             "--fuse_adapters=false compiles the unfused graph)"),
    cl::init(true));
static cl::opt<std::string> recomputeMode(
    "recompute", BOTH, cl::cat(trainingCategory),
    cl::desc("Activation checkpointing: none (default), layer (recompute "
             "each decoder layer in the backward) or selective (only its "
             "elementwise ops)"),
    cl::init("none"));
static cl::opt<bool> gradientCheckpointing(
    "gradient_checkpointing", BOTH, cl::cat(trainingCategory),
    cl::desc("Same as --recompute layer (the Hugging Face flag)"));
static cl::opt<bool> flashAttention(
    "flash_attention", BOTH, cl::cat(trainingCategory),
    cl::desc("Attention row by row with an online softmax (the GPU's "
             "algorithm; the [seq, seq] scores are never stored) instead of "
             "score blocks through BLAS; always on with --device cuda"),
    cl::init(false));
static cl::opt<bool> bf16(
    "bf16", BOTH, cl::cat(trainingCategory),
    cl::desc("Mixed precision: frozen weights stored in bf16, every GEMM's "
             "inputs bf16 (tensor cores on a GPU), accumulated in fp32; the "
             "trainable parameters (fp32 master weights), the optimizer "
             "state and the other kernels stay fp32"),
    cl::init(false));
static cl::opt<bool> fuseLoss(
    "fuse_loss", BOTH, cl::cat(trainingCategory),
    cl::desc("Compute the loss and its gradient in vocabulary chunks, "
             "without the logits matrix (default true)"),
    cl::init(true));
static cl::opt<int64_t> lossChunk(
    "loss_chunk", BOTH, cl::cat(trainingCategory),
    cl::desc("Vocabulary rows per chunk of the fused loss (default 256 on "
             "the CPU, whose caches hold such a chunk's logits; 8192 with "
             "--device cuda, where each chunk costs kernel launches and a "
             "GEMM call)"),
    cl::init(0));
static cl::opt<double> weightDecay("weight_decay", BOTH,
                                   cl::cat(trainingCategory),
                                   cl::desc("AdamW weight decay (default 0)"),
                                   cl::init(0.0));
static cl::opt<double> adamBeta1("adam_beta1", BOTH, cl::cat(trainingCategory),
                                 cl::desc("AdamW beta1 (default 0.9)"),
                                 cl::init(0.9));
static cl::opt<double> adamBeta2("adam_beta2", BOTH, cl::cat(trainingCategory),
                                 cl::desc("AdamW beta2 (default 0.999)"),
                                 cl::init(0.999));
static cl::opt<double> adamEpsilon("adam_epsilon", BOTH,
                                   cl::cat(trainingCategory),
                                   cl::desc("AdamW epsilon (default 1e-8)"),
                                   cl::init(1e-8));
static cl::opt<double>
    maxGradNorm("max_grad_norm", BOTH, cl::cat(trainingCategory),
                cl::desc("Global-norm gradient clipping, 0 disables "
                         "(default 1.0)"),
                cl::init(1.0));

// emit-mlir only.
static cl::opt<std::string> outputPath("o", cl::sub(emitMlir),
                                       cl::desc("Output file (default -)"),
                                       cl::value_desc("path"), cl::init("-"));

// compile only.
static cl::opt<std::string> artifactDir(
    "o", cl::sub(compileCommand),
    cl::desc("Folder for step.so and manifest.json (default lora-step)"),
    cl::value_desc("dir"), cl::init("lora-step"));
static cl::opt<std::string> deviceFlag(
    "device", cl::sub(compileCommand), cl::sub(train),
    cl::desc("cpu (this machine's CPU) or cuda (PTX kernels and host code "
             "that launches them; train needs a GPU here, compile does not)"),
    cl::init("cpu"));
static cl::opt<std::string> targetCpu(
    "target_cpu", cl::sub(compileCommand),
    cl::desc("The CPU step.so's host code is built for: native (this one; "
             "the default for --device cpu), generic (any of this "
             "architecture; the default for --device cuda) or an LLVM CPU "
             "name such as x86-64-v3"),
    cl::init(""));
static cl::opt<std::string> cudaChips(
    "cuda_chips", cl::sub(compileCommand),
    cl::desc("With --device cuda: the SM targets, one PTX each"),
    cl::init("sm_80,sm_90a"));

// train only.
static cl::OptionCategory runCategory("Training run");
static cl::opt<std::string> modelWeights(
    "model_weights", RUNS_MODEL, cl::cat(runCategory),
    cl::desc("Base weights: model.safetensors, a sharded "
             "model.safetensors.index.json, or their folder (default: a "
             "seeded initialization)"),
    cl::value_desc("path"));
static cl::opt<std::string> trainFile(
    "train_file", cl::sub(train), cl::cat(runCategory),
    cl::desc("Training data: .jsonl (prompt/response or text), .txt or .bin "
             "(int32 tokens); default: built-in data (--dataset)"),
    cl::value_desc("path"));
static cl::opt<std::string>
    dataset("dataset", cl::sub(train), cl::sub(evalCommand),
            cl::cat(runCategory),
            cl::desc("Built-in data when no --train_file / --eval_file: "
                     "text (the source domain) or arithmetic (the target); "
                     "eval scores its held-out -test split (default text)"),
            cl::init("text"));
static cl::opt<std::string>
    outputDir("output_dir", cl::sub(train), cl::sub(exportCommand),
              cl::cat(runCategory),
              cl::desc("Where the adapter, metrics.jsonl and exports go "
                       "(default lora-run-output)"),
              cl::init("lora-run-output"));
static cl::opt<int64_t> maxSteps("max_steps", cl::sub(train),
                                 cl::cat(runCategory),
                                 cl::desc("Optimizer steps (default 300)"),
                                 cl::init(300));
static cl::opt<double> learningRate(
    "learning_rate", cl::sub(train), cl::cat(runCategory),
    cl::desc("Peak learning rate (default 5e-3 for lora and mixed, 5e-4 "
             "for full: LoRA wants about 10x)"),
    cl::init(0.0));
static cl::opt<std::string>
    schedulerType("lr_scheduler_type", cl::sub(train), cl::cat(runCategory),
                  cl::desc("constant, linear or cosine (default linear)"),
                  cl::init("linear"));
static cl::opt<int64_t> warmupSteps("warmup_steps", cl::sub(train),
                                    cl::cat(runCategory),
                                    cl::desc("Linear warmup steps (default 0)"),
                                    cl::init(0));
static cl::opt<uint64_t> seed("seed", RUNS_MODEL, cl::cat(runCategory),
                              cl::desc("Seed of initialization, shuffling "
                                       "and dropout (default 42)"),
                              cl::init(42));
static cl::opt<int64_t> loggingSteps("logging_steps", cl::sub(train),
                                     cl::cat(runCategory),
                                     cl::desc("Log every N steps (default 10)"),
                                     cl::init(10));
static cl::opt<int64_t> saveSteps(
    "save_steps", cl::sub(train), cl::cat(runCategory),
    cl::desc("Write <output_dir>/checkpoint-<step> every N steps; one is "
             "always written at the end (default 0: only at the end)"),
    cl::init(0));
static cl::opt<int64_t> saveTotalLimit(
    "save_total_limit", cl::sub(train), cl::cat(runCategory),
    cl::desc("Keep only the newest N checkpoints (default 0: all)"),
    cl::init(0));
static cl::opt<std::string> resumeFrom(
    "resume_from_checkpoint", cl::sub(train), cl::cat(runCategory),
    cl::desc("Continue from a checkpoint folder, or 'latest' in "
             "--output_dir; the result is bit-identical to an uninterrupted "
             "run"),
    cl::value_desc("path|latest"));
static cl::opt<int64_t> stopAtStep(
    "stop_at_step", cl::sub(train), cl::cat(runCategory),
    cl::desc("End this run after step N with a checkpoint, as if "
             "interrupted (the schedule still spans --max_steps); continue "
             "with --resume_from_checkpoint latest"),
    cl::init(0));
// Data parallelism: the launcher (torchrun, mpirun, srun) sets the ranks.
static cl::opt<double> ddpTimeout(
    "ddp_timeout", cl::sub(train), cl::cat(runCategory),
    cl::desc("Under a launcher: seconds a collective may take before every "
             "rank gives up with an error naming its rank and step"),
    cl::init(1800));
static cl::opt<double> ddpBucketCapMb(
    "ddp_bucket_cap_mb", cl::sub(train), cl::cat(runCategory),
    cl::desc("Under a launcher: MiB of gradients per all-reduce bucket"),
    cl::init(25));
static cl::opt<std::string> exportCheckpoint(
    "checkpoint", cl::sub(exportCommand), cl::cat(runCategory),
    cl::desc("The checkpoint folder to export (default: the latest in "
             "--output_dir)"),
    cl::value_desc("path"));
static cl::opt<bool> saveMerged(
    "save_merged", cl::sub(train), cl::sub(exportCommand), cl::cat(runCategory),
    cl::desc("Also write the merged model (W + s·B·A) as model.safetensors "
             "under <output_dir>/merged"));
// eval and generate.
static cl::OptionCategory inferenceCategory("Evaluation and generation");
static cl::opt<std::string> adapterDir(
    "adapter", cl::sub(evalCommand), cl::sub(generateCommand),
    cl::cat(inferenceCategory),
    cl::desc("A PEFT adapter folder (adapter_config.json + "
             "adapter_model.safetensors) to apply to the base model"),
    cl::value_desc("dir"));
static cl::opt<std::string>
    evalFile("eval_file", cl::sub(evalCommand), cl::cat(inferenceCategory),
             cl::desc("Data to score (.jsonl, .txt, .bin); default: built-in "
                      "--dataset with a seed the training data does not use"),
             cl::value_desc("path"));
static cl::opt<std::string> promptsFile(
    "prompts_file", cl::sub(generateCommand), cl::cat(inferenceCategory),
    cl::desc("JSONL of {prompt, response}: decode each prompt greedily and "
             "report the exact-match accuracy as JSON"),
    cl::value_desc("path"));
static cl::opt<std::string> promptsDataset(
    "prompts_dataset", cl::sub(generateCommand), cl::cat(inferenceCategory),
    cl::desc("As --prompts_file, from built-in data (arithmetic-test)"));
static cl::opt<int64_t> numExamples(
    "num_examples", cl::sub(generateCommand), cl::cat(inferenceCategory),
    cl::desc("Examples of --prompts_dataset (default 100)"), cl::init(100));
static cl::opt<int64_t> numSamples(
    "num_samples", cl::sub(generateCommand), cl::cat(inferenceCategory),
    cl::desc("With --prompts_*: also sample N continuations of the first 20 "
             "prompts at --temperature (default 1 when 0) and report the "
             "mean fraction of distinct ones (diversity)"),
    cl::init(0));
static cl::opt<std::string> prompt("prompt", cl::sub(generateCommand),
                                   cl::cat(inferenceCategory),
                                   cl::desc("Text to continue"), cl::init(""));
static cl::opt<int64_t> maxNewTokens("max_new_tokens", cl::sub(generateCommand),
                                     cl::cat(inferenceCategory),
                                     cl::desc("Tokens to add (default 64)"),
                                     cl::init(64));
static cl::opt<double> temperature(
    "temperature", cl::sub(generateCommand), cl::cat(inferenceCategory),
    cl::desc("0: greedy (default); > 0: sample from softmax(logits / T)"),
    cl::init(0.0));
#undef BOTH
#undef USES_MODEL
#undef RUNS_MODEL

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "lora-run") << message << "\n";
  return 1;
}

/// A batch-shape flag the user gave must be positive; 0 means "not given".
static int checkShapeFlags() {
  if (batchSize.getNumOccurrences() && batchSize <= 0)
    return fail("--per_device_train_batch_size must be > 0, got " +
                llvm::Twine(batchSize));
  if (seqLen.getNumOccurrences() && seqLen <= 0)
    return fail("--max_seq_length must be > 0, got " + llvm::Twine(seqLen));
  return 0;
}

/// The built-in model: a 2-layer Llama for the byte tokenizer.
static mlir::lora::LlamaConfig builtinConfig() {
  mlir::lora::LlamaConfig config;
  config.vocabSize = rt::ByteTokenizer::kVocabSize;
  config.hiddenSize = 64;
  config.intermediateSize = 128;
  config.numHiddenLayers = 2;
  config.numAttentionHeads = 4;
  config.numKeyValueHeads = 2;
  config.headDim = 16;
  config.maxPositionEmbeddings = 256;
  config.rmsNormEps = 1e-5;
  return config;
}

/// --device: false for cpu, true for cuda; anything else is an error.
static bool parseDevice(bool &cuda) {
  cuda = deviceFlag == "cuda";
  if (deviceFlag == "cpu" || cuda)
    return true;
  fail("--device must be cpu or cuda, got '" + deviceFlag + "'");
  return false;
}

/// The model of --config, or the built-in one.
static llvm::Expected<mlir::lora::LlamaConfig> modelConfig() {
  if (configPath.empty())
    return builtinConfig();
  return mlir::lora::readLlamaConfig(configPath);
}

/// Builds the step into `module`: the forward pass and loss, then the
/// training pipeline when `withTraining`.
static int buildStep(mlir::ModuleOp module,
                     const mlir::lora::LlamaConfig &config,
                     const mlir::lora::BatchShape &shape, bool withTraining,
                     llvm::StringRef trainingMethod,
                     bool dataParallel = false) {
  if (llvm::Error error = mlir::lora::buildLlamaStep(module, config, shape))
    return fail(llvm::toString(std::move(error)));
  if (mlir::failed(mlir::verify(module)))
    return fail("internal error: the emitted module does not verify");
  if (!withTraining)
    return 0;
  // Flags are checked here so that errors name the flag the user typed.
  if (loraRank <= 0)
    return fail("--r must be > 0, got " + llvm::Twine(loraRank));
  if (!(loraDropout >= 0 && loraDropout < 1))
    return fail("--lora_dropout must be in [0, 1), got " +
                llvm::formatv("{0}", double(loraDropout)));
  mlir::lora::TrainingPipelineOptions options;
  options.method = trainingMethod.str();
  options.targetModules = targetModules;
  options.fullModules = fullModules;
  options.rank = loraRank;
  options.alpha = loraAlpha;
  options.useRsLora = useRsLora;
  options.dropout = loraDropout;
  options.beta1 = adamBeta1;
  options.beta2 = adamBeta2;
  options.epsilon = adamEpsilon;
  options.weightDecay = weightDecay;
  options.maxGradNorm = maxGradNorm;
  options.fuseAdapters = fuseAdapters;
  options.fuseLoss = fuseLoss;
  if (lossChunk < 0)
    return fail("--loss_chunk must be > 0, got " + llvm::Twine(lossChunk));
  options.lossChunk = lossChunk ? int64_t(lossChunk)
                                : deviceFlag == "cuda" ? 8192 : 256;
  options.dataParallel = dataParallel;
  if (gradientCheckpointing && recomputeMode != "none" &&
      recomputeMode != "layer")
    return fail("--gradient_checkpointing means --recompute layer, but "
                "--recompute " +
                recomputeMode + " was given");
  options.recompute = gradientCheckpointing ? std::string("layer")
                                            : std::string(recomputeMode);
  mlir::PassManager pm(module.getContext());
  if (mlir::failed(mlir::lora::buildTrainingPipeline(
          pm, options, [](const llvm::Twine &message) {
            fail(message);
            return mlir::failure();
          })))
    return 1;
  // The passes report their own errors (unknown target modules, ...).
  if (mlir::failed(pm.run(module)))
    return 1;
  return 0;
}

/// The training step `run` asks for, in a new module of `context`; 0, or
/// the exit status of a failure (already reported).
static int buildTrainingStep(mlir::MLIRContext &context,
                             const mlir::lora::LlamaConfig &config,
                             const rt::RunOptions &run,
                             mlir::OwningOpRef<mlir::ModuleOp> &module,
                             bool dataParallel = false) {
  module = mlir::ModuleOp::create(mlir::UnknownLoc::get(&context));
  return buildStep(*module, config, {run.batchSize, run.sequenceLength}, true,
                   run.method, dataParallel);
}

static int runEmitMlir() {
  if (int status = checkShapeFlags())
    return status;
  if (configPath.empty())
    return fail("emit-mlir needs --config");
  llvm::Expected<mlir::lora::LlamaConfig> config =
      mlir::lora::readLlamaConfig(configPath);
  if (!config)
    return fail(llvm::toString(config.takeError()));
  mlir::lora::BatchShape shape;
  shape.batchSize = batchSize > 0 ? batchSize : 1;
  shape.sequenceLength =
      seqLen > 0 ? seqLen
                 : std::min<int64_t>(config->maxPositionEmbeddings, 512);
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::ModuleOp::create(mlir::UnknownLoc::get(&context));
  if (int status = buildStep(*module, *config, shape, !method.empty(), method))
    return status;
  std::string message;
  auto output = mlir::openOutputFile(outputPath, &message);
  if (!output)
    return fail(message);
  module->print(output->os());
  output->os() << "\n";
  output->keep();
  return 0;
}

/// A compiler-side buffer spec as the runtime describes buffers.
static rt::BufferInfo toBufferInfo(const mlir::lora::BufferSpec &spec) {
  rt::BufferInfo info;
  info.name = spec.name;
  info.shape = spec.shape;
  info.role = spec.role;
  info.dtype = spec.dtype();
  return info;
}

namespace {
/// The JIT-compiled step, as the runtime's trainer sees it.
class JitCompiledStep : public rt::CompiledStep {
public:
  explicit JitCompiledStep(std::unique_ptr<mlir::lora::JitStep> jit)
      : jit(std::move(jit)) {
    for (const auto &spec : this->jit->arguments())
      argumentInfo.push_back(toBufferInfo(spec));
    for (const auto &spec : this->jit->results())
      resultInfo.push_back(toBufferInfo(spec));
  }
  const std::vector<rt::BufferInfo> &arguments() const override {
    return argumentInfo;
  }
  const std::vector<rt::BufferInfo> &results() const override {
    return resultInfo;
  }
  uint64_t plannedArenaBytes() const override {
    return jit->plannedArenaBytes();
  }
  bool reducesGradients() const override { return jit->reducesGradients(); }
  bool runsOnGpu() const override { return jit->runsOnGpu(); }
  rt::Status run(const std::vector<void *> &arguments,
                 const std::vector<void *> &results) override {
    if (llvm::Error error = jit->run(arguments, results))
      return rt::Status::error(llvm::toString(std::move(error)));
    return rt::Status::success();
  }

private:
  std::unique_ptr<mlir::lora::JitStep> jit;
  std::vector<rt::BufferInfo> argumentInfo, resultInfo;
};
} // namespace

/// The training-run flags, for the runtime's driver.
static rt::RunOptions runOptions() {
  rt::RunOptions run;
  run.method = method.empty() ? "lora" : method.getValue();
  run.batchSize = batchSize > 0 ? batchSize : 8;
  run.sequenceLength = seqLen > 0 ? seqLen : 64;
  run.trainFile = trainFile;
  run.dataset = dataset;
  run.modelWeights = modelWeights;
  run.outputDir = outputDir;
  run.maxSteps = maxSteps;
  run.learningRate = learningRate;
  run.schedulerType = schedulerType;
  run.warmupSteps = warmupSteps;
  run.seed = seed;
  run.seedGiven = seed.getNumOccurrences() > 0;
  run.loggingSteps = loggingSteps;
  run.saveSteps = saveSteps;
  run.saveTotalLimit = saveTotalLimit;
  run.stopAtStep = stopAtStep;
  run.resumeFrom = resumeFrom;
  run.saveMerged = saveMerged;
  run.adapter.rank = loraRank;
  run.adapter.alpha = loraAlpha > 0 ? double(loraAlpha) : 2.0 * loraRank;
  run.adapter.useRsLora = useRsLora;
  run.adapter.dropout = loraDropout;
  run.adapter.baseModel = configPath.empty() ? std::string("lora-run builtin")
                                             : configPath.getValue();
  return run;
}

static int runTrain() {
  if (int status = checkShapeFlags())
    return status;
  llvm::Expected<mlir::lora::LlamaConfig> readConfig = modelConfig();
  if (!readConfig)
    return fail(llvm::toString(readConfig.takeError()));
  const mlir::lora::LlamaConfig &config = *readConfig;
  if (config.vocabSize < rt::ByteTokenizer::kVocabSize &&
      (trainFile.empty() || !llvm::StringRef(trainFile).ends_with(".bin")))
    return fail("vocab_size " + llvm::Twine(config.vocabSize) +
                " is smaller than the byte tokenizer's " +
                llvm::Twine(rt::ByteTokenizer::kVocabSize) +
                "; use a .bin token file with ids below it");
  rt::RunOptions run = runOptions();
  // Cheap flag checks first, before the compile.
  if (rt::Status status = rt::validateRunOptions(run); !status.ok())
    return fail(status.message());
  if (rt::Status status = rt::readFaultInjection(run.fault); !status.ok())
    return fail(status.message());
  bool gpu;
  if (!parseDevice(gpu))
    return 1;
  // Under a launcher: the ranks meet before compiling, so that a bad
  // launch fails at once; so does a missing GPU.
  rt::LaunchEnvironment launch;
  if (rt::Status status = rt::detectLaunch(launch); !status.ok())
    return fail(status.message());
  rt::configureThreads(launch.localWorldSize);
  if (gpu) {
    std::string name;
    if (rt::Status status = rt::cudaUseDevice(launch.localRank);
        !status.ok())
      return fail(status.message());
    if (rt::Status status = rt::cudaDevice(name); !status.ok())
      return fail("--device cuda: " + status.message());
  }
  std::unique_ptr<rt::Communicator> communicator;
  if (rt::Status status =
          rt::openCommunicator(launch, ddpTimeout, gpu, communicator);
      !status.ok())
    return fail(status.message());
  run.communicator = communicator.get();
  run.bucketMiB = ddpBucketCapMb;
  bool lead = launch.rank == 0;

  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  if (int status = buildTrainingStep(context, config, run, module,
                                     launch.distributed()))
    return status;
  if (lead)
    llvm::errs() << "lora-run: compiling the " << run.method
                 << " training step (batch " << run.batchSize << " x "
                 << run.sequenceLength << " tokens"
                 << (launch.distributed()
                         ? " per rank, " + std::to_string(launch.worldSize) +
                               " ranks from " + launch.launcher
                         : std::string())
                 << ")...\n";
  auto start = std::chrono::steady_clock::now();
  auto jit =
      mlir::lora::JitStep::compile(*module, "step", flashAttention, gpu, bf16);
  if (!jit)
    return fail(llvm::toString(jit.takeError()));
  if (lead)
    llvm::errs() << llvm::formatv(
        "lora-run: compiled in {0:f1}s\n",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
  JitCompiledStep step(std::move(*jit));
  if (rt::Status status = rt::runTraining(step, run); !status.ok())
    return fail(status.message());
  return 0;
}

static int runCompile() {
  if (int status = checkShapeFlags())
    return status;
  llvm::Expected<mlir::lora::LlamaConfig> readConfig = modelConfig();
  if (!readConfig)
    return fail(llvm::toString(readConfig.takeError()));
  const mlir::lora::LlamaConfig &config = *readConfig;
  rt::RunOptions run = runOptions();
  if (rt::Status status = rt::validateRunOptions(run); !status.ok())
    return fail(status.message());
  bool cuda;
  if (!parseDevice(cuda))
    return 1;
  mlir::lora::ArtifactOptions artifactOptions;
  artifactOptions.device =
      cuda ? mlir::lora::Device::Cuda : mlir::lora::Device::Cpu;
  artifactOptions.chips = cudaChips;
  artifactOptions.flashAttention = flashAttention;
  artifactOptions.bf16 = bf16;
  artifactOptions.cpu = targetCpu;
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  // Artifacts reduce their gradients when lora-train runs them under a
  // launcher; in one process the calls leave the gradients alone.
  if (int status = buildTrainingStep(context, config, run, module,
                                     /*dataParallel=*/true))
    return status;
  // What lora-train needs to know about the step besides its buffers.
  llvm::json::Object metadata{
      {"method", run.method},
      {"batch_size", run.batchSize},
      {"max_seq_length", run.sequenceLength},
      {"gemm_precision", bf16 ? "bf16" : "f32"},
      {"base_model", run.adapter.baseModel},
      {"adapter", llvm::json::Object{{"r", run.adapter.rank},
                                     {"lora_alpha", run.adapter.alpha},
                                     {"use_rslora", run.adapter.useRsLora},
                                     {"lora_dropout", run.adapter.dropout}}}};
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(std::move(metadata));
  if (llvm::Error error =
          mlir::lora::writeArtifact(*module, "step", artifactDir, text,
                                    artifactOptions))
    return fail(llvm::toString(std::move(error)));
  llvm::errs() << "lora-run: wrote " << artifactDir << "/step.so and "
               << artifactDir << "/manifest.json\n";
  return 0;
}

namespace {
/// A step known only by its buffers: enough to hold a checkpoint's state
/// and export it, with nothing compiled.
class BuffersOnlyStep : public rt::CompiledStep {
public:
  BuffersOnlyStep(std::vector<rt::BufferInfo> arguments,
                  std::vector<rt::BufferInfo> results)
      : argumentInfo(std::move(arguments)), resultInfo(std::move(results)) {}
  const std::vector<rt::BufferInfo> &arguments() const override {
    return argumentInfo;
  }
  const std::vector<rt::BufferInfo> &results() const override {
    return resultInfo;
  }
  rt::Status run(const std::vector<void *> &,
                 const std::vector<void *> &) override {
    return rt::Status::error("this step is not compiled");
  }

private:
  std::vector<rt::BufferInfo> argumentInfo, resultInfo;
};
} // namespace

static int runExport() {
  if (int status = checkShapeFlags())
    return status;
  llvm::Expected<mlir::lora::LlamaConfig> readConfig = modelConfig();
  if (!readConfig)
    return fail(llvm::toString(readConfig.takeError()));
  const mlir::lora::LlamaConfig &config = *readConfig;
  rt::RunOptions run = runOptions();
  std::string checkpoint = exportCheckpoint.empty()
                               ? rt::Trainer::latestCheckpoint(outputDir)
                               : exportCheckpoint.getValue();
  if (checkpoint.empty())
    return fail("no checkpoint in " + outputDir + "; pass --checkpoint");
  rt::Trainer::CheckpointState state;
  if (rt::Status status = rt::Trainer::readCheckpointState(checkpoint, state);
      !status.ok())
    return fail(status.message());
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  if (int status = buildTrainingStep(context, config, run, module))
    return status;
  std::vector<mlir::lora::BufferSpec> arguments, results;
  if (llvm::Error error =
          mlir::lora::collectBufferSpecs(*module, "step", arguments, results))
    return fail(llvm::toString(std::move(error)));
  auto convert = [](const std::vector<mlir::lora::BufferSpec> &specs) {
    std::vector<rt::BufferInfo> out;
    for (const auto &spec : specs)
      out.push_back(toBufferInfo(spec));
    return out;
  };
  BuffersOnlyStep step(convert(arguments), convert(results));
  rt::Trainer trainer(step);
  if (rt::Status status = trainer.initialize(modelWeights, state.seed);
      !status.ok())
    return fail(status.message());
  if (rt::Status status = trainer.loadCheckpoint(checkpoint); !status.ok())
    return fail(status.message());
  if (run.method != "full") {
    if (rt::Status status = trainer.exportPeftAdapter(outputDir, run.adapter);
        !status.ok())
      return fail(status.message());
    llvm::errs() << "lora-run: wrote the PEFT adapter of " << checkpoint
                 << " to " << outputDir << "\n";
  }
  if (run.method != "lora" || saveMerged) {
    std::string merged =
        run.method == "lora" ? outputDir + "/merged" : outputDir.getValue();
    if (rt::Status status = trainer.exportMergedModel(merged, run.adapter);
        !status.ok())
      return fail(status.message());
    llvm::errs() << "lora-run: wrote " << merged << "/model.safetensors\n";
  }
  return 0;
}

/// Attaches the adapter of --adapter, as adapter_config.json describes it.
static int attachAdapter(mlir::ModuleOp module) {
  if (adapterDir.empty())
    return 0;
  std::string path = adapterDir + "/adapter_config.json";
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return fail(path + ": cannot read: " + buffer.getError().message());
  auto json = llvm::json::parse((*buffer)->getBuffer());
  if (!json)
    return fail(path + ": not valid JSON: " + llvm::toString(json.takeError()));
  const llvm::json::Object *object = json->getAsObject();
  if (!object)
    return fail(path + ": expected a JSON object");
  mlir::lora::AttachAdaptersOptions options;
  std::optional<int64_t> rank = object->getInteger("r");
  std::optional<double> alpha = object->getNumber("lora_alpha");
  if (!rank || *rank <= 0)
    return fail(path + ": key 'r' must be a positive integer");
  if (!alpha || *alpha <= 0)
    return fail(path + ": key 'lora_alpha' must be a positive number");
  options.rank = *rank;
  options.alpha = *alpha;
  options.useRsLora = object->getBoolean("use_rslora").value_or(false);
  if (const llvm::json::Array *targets = object->getArray("target_modules")) {
    for (const llvm::json::Value &target : *targets) {
      if (!target.getAsString())
        return fail(path + ": key 'target_modules' must hold strings");
      options.targetModules.push_back(target.getAsString()->str());
    }
  } else if (auto target = object->getString("target_modules")) {
    options.targetModules.push_back(target->str());
  } else {
    return fail(path + ": key 'target_modules' is missing");
  }
  mlir::PassManager pm(module.getContext());
  pm.addPass(mlir::lora::createAttachAdapters(options));
  if (mlir::failed(pm.run(module)))
    return 1;
  return 0;
}

/// Builds, compiles and loads a model for eval or generate.
static int prepareInference(mlir::MLIRContext &context,
                            const mlir::lora::LlamaConfig &config,
                            const mlir::lora::BatchShape &shape,
                            mlir::lora::StepOutput output,
                            std::unique_ptr<JitCompiledStep> &step,
                            std::unique_ptr<rt::Trainer> &model) {
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::ModuleOp::create(mlir::UnknownLoc::get(&context));
  if (llvm::Error error =
          mlir::lora::buildLlamaStep(*module, config, shape, output))
    return fail(llvm::toString(std::move(error)));
  if (int status = attachAdapter(*module))
    return status;
  auto jit = mlir::lora::JitStep::compile(*module, "step");
  if (!jit)
    return fail(llvm::toString(jit.takeError()));
  step = std::make_unique<JitCompiledStep>(std::move(*jit));
  model = std::make_unique<rt::Trainer>(*step);
  if (rt::Status status = model->initialize(modelWeights, seed); !status.ok())
    return fail(status.message());
  if (!adapterDir.empty())
    if (rt::Status status = model->loadPeftAdapter(adapterDir); !status.ok())
      return fail(status.message());
  return 0;
}

static int runEval() {
  if (int status = checkShapeFlags())
    return status;
  auto config = modelConfig();
  if (!config)
    return fail(llvm::toString(config.takeError()));
  mlir::lora::BatchShape shape{batchSize > 0 ? batchSize : 8,
                               seqLen > 0 ? seqLen : 64};
  rt::ByteTokenizer tokenizer;
  std::vector<rt::Example> examples;
  if (!evalFile.empty()) {
    if (rt::Status status =
            rt::loadDataset(evalFile, tokenizer, shape.sequenceLength,
                            int32_t(config->vocabSize), examples);
        !status.ok())
      return fail(status.message());
  } else {
    // The held-out split of the domain.
    if (rt::Status status =
            rt::loadBuiltinDataset("--dataset", dataset, 512, ~uint64_t(seed),
                                   tokenizer, examples, /*heldOut=*/true);
        !status.ok())
      return fail(status.message());
  }
  mlir::MLIRContext context;
  std::unique_ptr<JitCompiledStep> step;
  std::unique_ptr<rt::Trainer> model;
  if (int status = prepareInference(context, *config, shape,
                                    mlir::lora::StepOutput::Loss, step, model))
    return status;
  rt::Trainer::Evaluation result;
  if (rt::Status status = model->evaluate(examples, shape.batchSize,
                                          shape.sequenceLength, result);
      !status.ok())
    return fail(status.message());
  llvm::outs() << llvm::formatv("{{\"eval_loss\": {0:f6}, \"perplexity\": "
                                "{1:f4}, \"eval_tokens\": {2}, "
                                "\"eval_examples\": {3}}\n",
                                result.loss, result.perplexity, result.tokens,
                                result.examples);
  return 0;
}

/// Greedy exact match (and sampled diversity) over prompt/response data.
static int runGenerateBatch(const mlir::lora::LlamaConfig &config) {
  rt::ByteTokenizer tokenizer;
  std::vector<rt::Example> examples;
  if (!promptsFile.empty()) {
    if (rt::Status status = rt::loadJsonl(promptsFile, tokenizer, examples);
        !status.ok())
      return fail(status.message());
  } else {
    if (rt::Status status = rt::loadBuiltinDataset(
            "--prompts_dataset", promptsDataset, numExamples, ~uint64_t(seed),
            tokenizer, examples);
        !status.ok())
      return fail(status.message());
  }
  // Split each example into its prompt (no loss) and response (loss, less
  // the end token).
  std::vector<std::pair<std::vector<int32_t>, std::string>> cases;
  int64_t longest = 0;
  for (const rt::Example &example : examples) {
    std::vector<int32_t> promptTokens, responseTokens;
    for (size_t i = 0; i < example.tokens.size(); ++i)
      (example.lossMask[i] ? responseTokens : promptTokens)
          .push_back(example.tokens[i]);
    if (promptTokens.empty())
      return fail("an example has no prompt: exact match needs "
                  "prompt/response data");
    longest = std::max<int64_t>(longest, int64_t(promptTokens.size()));
    cases.push_back({promptTokens, tokenizer.decode(responseTokens)});
  }
  int64_t window =
      std::min<int64_t>(config.maxPositionEmbeddings, longest + maxNewTokens);
  mlir::MLIRContext context;
  std::unique_ptr<JitCompiledStep> step;
  std::unique_ptr<rt::Trainer> model;
  if (int status =
          prepareInference(context, config, {1, window},
                           mlir::lora::StepOutput::Logits, step, model))
    return status;
  int64_t correct = 0;
  for (auto &[promptTokens, response] : cases) {
    std::vector<int32_t> tokens = promptTokens;
    if (rt::Status status = model->generate(tokens, maxNewTokens, 0.0, seed);
        !status.ok())
      return fail(status.message());
    std::vector<int32_t> added(tokens.begin() + promptTokens.size(),
                               tokens.end());
    correct += tokenizer.decode(added) == response;
  }
  double diversity = -1;
  if (numSamples > 0) {
    double sampleTemperature = temperature > 0 ? double(temperature) : 1.0;
    double total = 0;
    size_t prompts = std::min<size_t>(20, cases.size());
    for (size_t c = 0; c < prompts; ++c) {
      std::set<std::string> distinct;
      for (int64_t k = 0; k < numSamples; ++k) {
        std::vector<int32_t> tokens = cases[c].first;
        if (rt::Status status = model->generate(
                tokens, maxNewTokens, sampleTemperature, seed * 1000003 + k);
            !status.ok())
          return fail(status.message());
        distinct.insert(tokenizer.decode(std::vector<int32_t>(
            tokens.begin() + cases[c].first.size(), tokens.end())));
      }
      total += double(distinct.size()) / double(numSamples);
    }
    diversity = total / double(prompts);
  }
  llvm::outs() << llvm::formatv(
      "{{\"exact_match\": {0:f4}, \"examples\": "
      "{1}, \"diversity\": {2}}\n",
      double(correct) / double(cases.size()), cases.size(),
      diversity < 0 ? std::string("null")
                    : llvm::formatv("{0:f4}", diversity).str());
  return 0;
}

static int runGenerate() {
  auto config = modelConfig();
  if (!config)
    return fail(llvm::toString(config.takeError()));
  if (maxNewTokens <= 0)
    return fail("--max_new_tokens must be > 0, got " +
                llvm::Twine(maxNewTokens));
  if (temperature < 0)
    return fail("--temperature must be >= 0, got " +
                llvm::formatv("{0}", double(temperature)));
  if (!promptsFile.empty() || !promptsDataset.empty())
    return runGenerateBatch(*config);
  rt::ByteTokenizer tokenizer;
  std::vector<int32_t> tokens = tokenizer.encode(prompt);
  if (tokens.empty())
    return fail("--prompt is empty");
  int64_t window = std::min<int64_t>(config->maxPositionEmbeddings,
                                     int64_t(tokens.size()) + maxNewTokens);
  if (int64_t(tokens.size()) >= window)
    return fail("the prompt (" + llvm::Twine(tokens.size()) +
                " tokens) fills max_position_embeddings (" +
                llvm::Twine(config->maxPositionEmbeddings) + ")");
  mlir::MLIRContext context;
  std::unique_ptr<JitCompiledStep> step;
  std::unique_ptr<rt::Trainer> model;
  if (int status =
          prepareInference(context, *config, {1, window},
                           mlir::lora::StepOutput::Logits, step, model))
    return status;
  size_t promptLength = tokens.size();
  if (rt::Status status =
          model->generate(tokens, maxNewTokens, temperature, seed);
      !status.ok())
    return fail(status.message());
  std::vector<int32_t> added(tokens.begin() + promptLength, tokens.end());
  llvm::outs() << prompt << tokenizer.decode(added) << "\n";
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv,
                              "lora-run: build, finetune (LoRA or full) and "
                              "evaluate language models\n");
  if (emitMlir)
    return runEmitMlir();
  if (train)
    return runTrain();
  if (evalCommand)
    return runEval();
  if (compileCommand)
    return runCompile();
  if (exportCommand)
    return runExport();
  if (generateCommand)
    return runGenerate();
  cl::PrintHelpMessage();
  return 1;
}
