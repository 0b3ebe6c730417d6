//===- LlamaConfig.cpp - Hugging Face Llama configs -----------------------===//
//
// Strict reading: a key we do not know or a feature we do not implement is
// an error naming the key, never silently ignored, because a model built
// without it would train and give wrong numbers.
//
//===----------------------------------------------------------------------===//

#include "lora/Frontend/LlamaConfig.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace mlir;
using namespace mlir::lora;
using llvm::StringRef;

namespace {

/// Reads one config object, remembering which keys were consumed.
class ConfigReader {
public:
  ConfigReader(const llvm::json::Object &object, std::string source)
      : object(object), source(std::move(source)) {}

  llvm::Error error(StringRef key, const llvm::Twine &what) const {
    std::string value;
    llvm::raw_string_ostream os(value);
    if (const llvm::json::Value *found = object.get(key))
      os << *found;
    else
      os << "(missing)";
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   llvm::Twine(source) + ": key '" + key +
                                       "' = " + value + ": " + what);
  }

  const llvm::json::Value *take(StringRef key) {
    used.insert(key);
    return object.get(key);
  }

  /// A positive integer; `fallback` when absent (0: required).
  llvm::Error positiveInt(StringRef key, int64_t &out, int64_t fallback = 0) {
    const llvm::json::Value *value = take(key);
    if (!value || value->kind() == llvm::json::Value::Null) {
      if (fallback > 0) {
        out = fallback;
        return llvm::Error::success();
      }
      return error(key, "is required");
    }
    std::optional<int64_t> number = value->getAsInteger();
    if (!number || *number <= 0)
      return error(key, "must be a positive integer");
    out = *number;
    return llvm::Error::success();
  }

  llvm::Error positiveNumber(StringRef key, double &out) {
    const llvm::json::Value *value = take(key);
    if (!value)
      return llvm::Error::success(); // keep the default
    std::optional<double> number = value->getAsNumber();
    if (!number || !(*number > 0))
      return error(key, "must be a positive number");
    out = *number;
    return llvm::Error::success();
  }

  llvm::Error boolean(StringRef key, bool &out) {
    const llvm::json::Value *value = take(key);
    if (!value)
      return llvm::Error::success();
    std::optional<bool> flag = value->getAsBoolean();
    if (!flag)
      return error(key, "must be true or false");
    out = *flag;
    return llvm::Error::success();
  }

  /// A key whose only implemented value is `absent`, null or `expected`.
  llvm::Error mustBe(StringRef key, const llvm::json::Value &expected,
                     StringRef feature) {
    const llvm::json::Value *value = take(key);
    if (!value || value->kind() == llvm::json::Value::Null ||
        *value == expected)
      return llvm::Error::success();
    return error(key, feature + llvm::Twine(" is not implemented"));
  }

  /// Every key not consumed: the first one is an error.
  llvm::Error rejectUnknownKeys(bool allowMetadata = true) const {
    // Metadata that does not change the computation.
    static const llvm::StringSet<> harmless = {"_name_or_path",
                                               "torch_dtype",
                                               "dtype",
                                               "transformers_version",
                                               "bos_token_id",
                                               "eos_token_id",
                                               "pad_token_id",
                                               "initializer_range",
                                               "use_cache",
                                               "output_attentions",
                                               "output_hidden_states",
                                               "return_dict",
                                               "tokenizer_class",
                                               "id2label",
                                               "label2id",
                                               "max_sequence_length",
                                               "attention_dropout"};
    std::vector<StringRef> unknown;
    for (const auto &entry : object)
      if (!used.contains(entry.first) &&
          !(allowMetadata && harmless.contains(entry.first)))
        unknown.push_back(entry.first);
    if (unknown.empty())
      return llvm::Error::success();
    std::sort(unknown.begin(), unknown.end());
    return error(unknown.front(),
                 "unknown key; lora-mlir implements the Llama architecture "
                 "and rejects keys it does not know rather than ignore them");
  }

private:
  const llvm::json::Object &object;
  std::string source;
  llvm::StringSet<> used;
};

} // namespace

llvm::Expected<LlamaConfig> mlir::lora::parseLlamaConfig(StringRef jsonText,
                                                         StringRef source) {
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(jsonText);
  if (!parsed)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   llvm::Twine(source) + ": not valid JSON: " +
                                       llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
  if (!object)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   llvm::Twine(source) +
                                       ": expected a JSON object");
  ConfigReader reader(*object, source.str());
  LlamaConfig config;

  // The architecture itself.
  if (const llvm::json::Value *type = reader.take("model_type")) {
    std::optional<StringRef> name = type->getAsString();
    if (!name || (*name != "llama" && *name != "mistral"))
      return reader.error("model_type",
                          "only 'llama' and 'mistral' are implemented");
  }
  if (const llvm::json::Value *architectures = reader.take("architectures")) {
    const llvm::json::Array *list = architectures->getAsArray();
    bool ok = list && !list->empty();
    for (const llvm::json::Value &name : list ? *list : llvm::json::Array())
      ok &= name.getAsString() == StringRef("LlamaForCausalLM") ||
            name.getAsString() == StringRef("MistralForCausalLM");
    if (!ok)
      return reader.error("architectures",
                          "only LlamaForCausalLM and MistralForCausalLM are "
                          "implemented");
  }

  if (llvm::Error error = reader.positiveInt("vocab_size", config.vocabSize))
    return std::move(error);
  if (llvm::Error error = reader.positiveInt("hidden_size", config.hiddenSize))
    return std::move(error);
  if (llvm::Error error =
          reader.positiveInt("intermediate_size", config.intermediateSize))
    return std::move(error);
  if (llvm::Error error =
          reader.positiveInt("num_hidden_layers", config.numHiddenLayers))
    return std::move(error);
  if (llvm::Error error =
          reader.positiveInt("num_attention_heads", config.numAttentionHeads))
    return std::move(error);
  if (llvm::Error error =
          reader.positiveInt("num_key_value_heads", config.numKeyValueHeads,
                             config.numAttentionHeads))
    return std::move(error);
  if (config.numAttentionHeads % config.numKeyValueHeads != 0)
    return reader.error("num_key_value_heads",
                        "must divide num_attention_heads (" +
                            llvm::Twine(config.numAttentionHeads) + ")");
  const llvm::json::Value *headDim = object->get("head_dim");
  if ((!headDim || headDim->kind() == llvm::json::Value::Null) &&
      config.hiddenSize % config.numAttentionHeads != 0)
    return reader.error("hidden_size",
                        "is not divisible by num_attention_heads (" +
                            llvm::Twine(config.numAttentionHeads) +
                            ") and no head_dim is given");
  if (llvm::Error error =
          reader.positiveInt("head_dim", config.headDim,
                             config.hiddenSize / config.numAttentionHeads))
    return std::move(error);
  if (config.headDim % 2 != 0)
    return reader.error("head_dim", "must be even for rotary embeddings");
  if (llvm::Error error = reader.positiveInt("max_position_embeddings",
                                             config.maxPositionEmbeddings,
                                             config.maxPositionEmbeddings))
    return std::move(error);
  if (llvm::Error error =
          reader.positiveNumber("rms_norm_eps", config.rmsNormEps))
    return std::move(error);
  if (llvm::Error error = reader.positiveNumber("rope_theta", config.ropeTheta))
    return std::move(error);
  // transformers >= 4.56 nests RoPE settings: {"rope_type": "default",
  // "rope_theta": ...}. Only the default (unscaled) RoPE is implemented.
  if (const llvm::json::Value *rope = reader.take("rope_parameters");
      rope && rope->kind() != llvm::json::Value::Null) {
    const llvm::json::Object *fields = rope->getAsObject();
    if (!fields)
      return reader.error("rope_parameters", "must be a JSON object");
    ConfigReader nested(*fields, (Twine(source) + ": rope_parameters").str());
    if (llvm::Error error = nested.mustBe("rope_type", "default",
                                          "a rope_type other than default"))
      return std::move(error);
    if (llvm::Error error =
            nested.positiveNumber("rope_theta", config.ropeTheta))
      return std::move(error);
    if (llvm::Error error = nested.rejectUnknownKeys(/*allowMetadata=*/false))
      return std::move(error);
  }
  if (llvm::Error error =
          reader.boolean("tie_word_embeddings", config.tieWordEmbeddings))
    return std::move(error);

  // Features that change the computation; only their neutral value is
  // implemented.
  if (llvm::Error error =
          reader.mustBe("hidden_act", "silu", "an activation other than silu"))
    return std::move(error);
  if (llvm::Error error =
          reader.mustBe("attention_bias", false, "attention bias"))
    return std::move(error);
  if (llvm::Error error = reader.mustBe("mlp_bias", false, "MLP bias"))
    return std::move(error);
  if (llvm::Error error =
          reader.mustBe("rope_scaling", nullptr, "rope scaling"))
    return std::move(error);
  if (llvm::Error error =
          reader.mustBe("sliding_window", nullptr, "sliding-window attention"))
    return std::move(error);
  if (llvm::Error error = reader.mustBe("pretraining_tp", int64_t(1),
                                        "tensor-parallel pretraining slices"))
    return std::move(error);
  if (const llvm::json::Value *dropout = object->get("attention_dropout"))
    if (dropout->getAsNumber().value_or(1.0) != 0.0)
      return reader.error("attention_dropout",
                          "attention dropout is not implemented");
  if (llvm::Error error = reader.rejectUnknownKeys())
    return std::move(error);
  return config;
}

llvm::Expected<LlamaConfig> mlir::lora::readLlamaConfig(StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return llvm::createStringError(
        buffer.getError(),
        llvm::Twine(path) + ": cannot read: " + buffer.getError().message());
  return parseLlamaConfig((*buffer)->getBuffer(), path);
}
