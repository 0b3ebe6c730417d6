//===- lora-run.cpp - build, train and evaluate models --------------------===//
//
// Subcommands:
//   lora-run emit-mlir --config config.json [--batch-size N] [--seq-len N]
//     prints the model's forward pass and loss in the lora dialect, ready
//     for `lora-opt --lora-training-pipeline`.
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/IR/LoraDialect.h"
#include "lora/Frontend/LlamaConfig.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
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
  std::string message;
  auto output = mlir::openOutputFile(outputPath, &message);
  if (!output)
    return fail(message);
  module->print(output->os());
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
