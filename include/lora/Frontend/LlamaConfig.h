//===- LlamaConfig.h - Hugging Face Llama configs ---------------*- C++ -*-===//
//
// Reads the config.json of a LlamaForCausalLM (or a Mistral model with the
// same architecture) and builds its forward pass and loss in the lora
// dialect.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_FRONTEND_LLAMACONFIG_H
#define LORA_FRONTEND_LLAMACONFIG_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace mlir::lora {

/// The architecture hyper-parameters of a Llama-family decoder, with
/// Hugging Face's defaults for keys a config may omit.
struct LlamaConfig {
  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;
  int64_t numHiddenLayers = 0;
  int64_t numAttentionHeads = 0;
  int64_t numKeyValueHeads = 0; // defaults to numAttentionHeads
  int64_t headDim = 0;          // defaults to hiddenSize / numAttentionHeads
  int64_t maxPositionEmbeddings = 2048;
  double rmsNormEps = 1e-6;
  double ropeTheta = 10000.0;
  bool tieWordEmbeddings = false;
};

/// Parses and validates a config.json text. Errors name `sourceName`, the
/// key and its value: an unknown key, a feature the compiler does not
/// implement (rope_scaling, attention biases, sliding windows, ...), a
/// missing or non-positive size, heads that do not divide.
llvm::Expected<LlamaConfig> parseLlamaConfig(llvm::StringRef jsonText,
                                             llvm::StringRef sourceName);

/// Reads and parses the file at `path`.
llvm::Expected<LlamaConfig> readLlamaConfig(llvm::StringRef path);

/// Shapes of one training batch.
struct BatchShape {
  int64_t batchSize = 1;
  int64_t sequenceLength = 0;
};

/// What the built function returns.
enum class StepOutput {
  /// The mean token cross-entropy, named "loss" (training, evaluation).
  Loss,
  /// The logits [batch, seq, vocab], named "logits" (generation).
  Logits,
};

/// Builds `func.func @step` into `module`: the forward pass of `config` and
/// the mean token cross-entropy, returning the loss (or the logits).
/// Parameter arguments carry their Hugging Face names and the role frozen;
/// then come `input_ids`, `positions` and, for the loss, `labels` ([batch,
/// seq] i32, labels already shifted, -100 ignored). Fails when the sequence
/// exceeds max_position_embeddings.
llvm::Error buildLlamaStep(ModuleOp module, const LlamaConfig &config,
                           const BatchShape &shape,
                           StepOutput output = StepOutput::Loss);

} // namespace mlir::lora

#endif // LORA_FRONTEND_LLAMACONFIG_H
