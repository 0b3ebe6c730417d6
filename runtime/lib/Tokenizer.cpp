//===- Tokenizer.cpp - the byte-level tokenizer ---------------------------===//

#include "lora/runtime/Tokenizer.h"

namespace lora::runtime {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (unsigned char byte : text)
    ids.push_back(int32_t(byte));
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t> &ids) const {
  std::string text;
  for (int32_t id : ids)
    if (id >= 0 && id < 256)
      text.push_back(char(id));
  return text;
}

} // namespace lora::runtime
