//===- lora-run.cpp - build, train and evaluate models --------------------===//
//
// Subcommands:
//   lora-run emit-mlir --config config.json [--batch-size N] [--seq-len N]
//                      [--method lora|full|mixed|frozen] [--r N] ...
//     prints the model's forward pass and loss in the lora dialect, or with
//     --method the training step that lora-training-pipeline makes of it.
//     Flags are named as in PEFT's LoraConfig and Hugging Face's
//     TrainingArguments.
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/IR/LoraDialect.h"
#include "lora/Frontend/LlamaConfig.h"
#include "lora/Pipelines/Pipelines.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

namespace cl = llvm::cl;

static cl::SubCommand emitMlir("emit-mlir",
                               "Print a model's forward pass and loss as "
                               "lora-dialect MLIR");
static cl::opt<std::string> configPath("config", cl::sub(emitMlir),
                                       cl::desc("Hugging Face config.json"),
                                       cl::value_desc("path"), cl::Required);
static cl::opt<int64_t>
    batchSize("per_device_train_batch_size", cl::sub(emitMlir),
              cl::desc("Sequences per step (default 1)"), cl::init(1));
static cl::alias batchSizeAlias("batch-size", cl::aliasopt(batchSize),
                                cl::desc("Alias for "
                                         "--per_device_train_batch_size"));
static cl::opt<int64_t>
    seqLen("seq-len", cl::sub(emitMlir),
           cl::desc("Tokens per sequence (default: max_position_embeddings, "
                    "at most 512)"),
           cl::init(0));
static cl::opt<std::string> outputPath("o", cl::sub(emitMlir),
                                       cl::desc("Output file (default -)"),
                                       cl::value_desc("path"), cl::init("-"));

// Training-step flags, as PEFT and the Hugging Face Trainer name them.
static cl::OptionCategory trainingCategory("Training step (with --method)");
static cl::opt<std::string> method(
    "method", cl::sub(emitMlir), cl::cat(trainingCategory),
    cl::desc("Emit a training step: lora, full, mixed (LoRA on "
             "--target_modules, --full_modules in full) or frozen (the loss "
             "only). Without it, the forward pass and loss."));
static cl::opt<int64_t> loraRank("r", cl::sub(emitMlir),
                                 cl::cat(trainingCategory),
                                 cl::desc("LoRA rank (default 8)"),
                                 cl::init(8));
static cl::opt<double>
    loraAlpha("lora_alpha", cl::sub(emitMlir), cl::cat(trainingCategory),
              cl::desc("LoRA alpha (default 2 * r)"), cl::init(0.0));
static cl::list<std::string> targetModules(
    "target_modules", cl::sub(emitMlir), cl::cat(trainingCategory),
    cl::CommaSeparated,
    cl::desc("Modules that get adapters: all-linear (default) or names "
             "such as q_proj,v_proj or self_attn"));
static cl::list<std::string> fullModules(
    "full_modules", cl::sub(emitMlir), cl::cat(trainingCategory),
    cl::CommaSeparated,
    cl::desc("Modules trained in full (method=full: default all)"));
static cl::opt<double> loraDropout("lora_dropout", cl::sub(emitMlir),
                                   cl::cat(trainingCategory),
                                   cl::desc("Dropout on the adapter input"),
                                   cl::init(0.0));
static cl::opt<bool> useRsLora("use_rslora", cl::sub(emitMlir),
                               cl::cat(trainingCategory),
                               cl::desc("Scale adapters by alpha / sqrt(r)"));
static cl::opt<double> weightDecay("weight_decay", cl::sub(emitMlir),
                                   cl::cat(trainingCategory),
                                   cl::desc("AdamW weight decay (default 0)"),
                                   cl::init(0.0));
static cl::opt<double> adamBeta1("adam_beta1", cl::sub(emitMlir),
                                 cl::cat(trainingCategory),
                                 cl::desc("AdamW beta1 (default 0.9)"),
                                 cl::init(0.9));
static cl::opt<double> adamBeta2("adam_beta2", cl::sub(emitMlir),
                                 cl::cat(trainingCategory),
                                 cl::desc("AdamW beta2 (default 0.999)"),
                                 cl::init(0.999));
static cl::opt<double> adamEpsilon("adam_epsilon", cl::sub(emitMlir),
                                   cl::cat(trainingCategory),
                                   cl::desc("AdamW epsilon (default 1e-8)"),
                                   cl::init(1e-8));
static cl::opt<double>
    maxGradNorm("max_grad_norm", cl::sub(emitMlir), cl::cat(trainingCategory),
                cl::desc("Global-norm gradient clipping, 0 disables "
                         "(default 1.0)"),
                cl::init(1.0));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "lora-run") << message << "\n";
  return 1;
}

static int runEmitMlir() {
  llvm::Expected<mlir::lora::LlamaConfig> config =
      mlir::lora::readLlamaConfig(configPath);
  if (!config)
    return fail(llvm::toString(config.takeError()));
  mlir::lora::BatchShape shape;
  shape.batchSize = batchSize;
  shape.sequenceLength =
      seqLen > 0 ? seqLen : std::min<int64_t>(config->maxPositionEmbeddings,
                                              512);
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::ModuleOp::create(mlir::UnknownLoc::get(&context));
  if (llvm::Error error = mlir::lora::buildLlamaStep(*module, *config, shape))
    return fail(llvm::toString(std::move(error)));
  if (mlir::failed(mlir::verify(*module)))
    return fail("internal error: the emitted module does not verify");
  if (!method.empty()) {
    // Flags are checked here so that errors name the flag the user typed.
    if (loraRank <= 0)
      return fail("--r must be > 0, got " + llvm::Twine(loraRank));
    if (!(loraDropout >= 0 && loraDropout < 1))
      return fail("--lora_dropout must be in [0, 1), got " +
                  llvm::formatv("{0}", double(loraDropout)));
    mlir::lora::TrainingPipelineOptions options;
    options.method = method;
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
    mlir::PassManager pm(&context);
    if (mlir::failed(mlir::lora::buildTrainingPipeline(
            pm, options, [](const llvm::Twine &message) {
              fail(message);
              return mlir::failure();
            })))
      return 1;
    // The passes report their own errors (unknown target modules, ...).
    if (mlir::failed(pm.run(*module)))
      return 1;
  }
  std::string message;
  auto output = mlir::openOutputFile(outputPath, &message);
  if (!output)
    return fail(message);
  module->print(output->os());
  output->os() << "\n";
  output->keep();
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv,
      "lora-run: build, finetune (LoRA or full) and evaluate language models\n");
  if (emitMlir)
    return runEmitMlir();
  cl::PrintHelpMessage();
  return 1;
}
