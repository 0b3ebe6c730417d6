//===- Tokenizer.h - the byte-level tokenizer -------------------*- C++ -*-===//
//
// Token i < 256 is byte i; 256 is end-of-sequence. For the built-in models
// and data; Hugging Face tokenizer.json BPE comes later.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_TOKENIZER_H
#define LORA_RUNTIME_TOKENIZER_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lora::runtime {

class ByteTokenizer {
public:
  static constexpr int32_t kEndOfSequence = 256;
  static constexpr int32_t kVocabSize = 257;

  std::vector<int32_t> encode(std::string_view text) const;
  /// Bytes for ids < 256; end-of-sequence and anything else are dropped.
  std::string decode(const std::vector<int32_t> &ids) const;
};

} // namespace lora::runtime

#endif // LORA_RUNTIME_TOKENIZER_H
