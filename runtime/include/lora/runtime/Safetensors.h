//===- Safetensors.h - read and write safetensors files ---------*- C++ -*-===//
//
// The format of Hugging Face base models and PEFT adapters: an 8-byte
// little-endian header length, a JSON header mapping tensor names to
// {dtype, shape, data_offsets}, then the tensor bytes. Files are memory
// mapped; every malformed header or offset is rejected with a message that
// names the file and the tensor.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_SAFETENSORS_H
#define LORA_RUNTIME_SAFETENSORS_H

#include "lora/runtime/DType.h"
#include "lora/runtime/Status.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lora::runtime {

/// One tensor of a safetensors file.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  /// Byte range [begin, end) within the data section.
  uint64_t begin = 0, end = 0;

  int64_t numElements() const;
};

/// A read-only, memory-mapped safetensors file.
class SafetensorsFile {
public:
  /// Opens and validates `path`.
  static Status open(const std::string &path,
                     std::unique_ptr<SafetensorsFile> &result);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile &) = delete;
  SafetensorsFile &operator=(const SafetensorsFile &) = delete;

  const std::string &path() const { return filePath; }
  /// Tensors in the order of their data.
  const std::vector<TensorInfo> &tensors() const { return tensorList; }
  /// The `__metadata__` string map of the header.
  const std::map<std::string, std::string> &metadata() const { return meta; }
  /// The tensor called `name`, or nullptr.
  const TensorInfo *find(std::string_view name) const;
  /// The raw bytes of `tensor`.
  const uint8_t *bytes(const TensorInfo &tensor) const {
    return dataStart + tensor.begin;
  }
  /// Copies tensor `name` into `out` as f32, converting from F32, BF16, F16
  /// or F64. Fails when it is missing, of another dtype, or when
  /// `expectedShape` is non-empty and differs.
  Status readF32(std::string_view name, std::vector<float> &out,
                 const std::vector<int64_t> &expectedShape = {}) const;

private:
  SafetensorsFile() = default;
  std::string filePath;
  void *mapping = nullptr;
  size_t mappingSize = 0;
  const uint8_t *dataStart = nullptr;
  std::vector<TensorInfo> tensorList;
  std::map<std::string, std::string> meta;
};

/// The weights of a model: one safetensors file, or the shards listed by a
/// Hugging Face `model.safetensors.index.json` ({"weight_map": {tensor:
/// shard file}}). `path` may be either file or a folder holding one.
class ModelWeights {
public:
  static Status open(const std::string &path,
                     std::unique_ptr<ModelWeights> &result);
  /// As SafetensorsFile::readF32, from whichever shard holds `name`.
  Status readF32(std::string_view name, std::vector<float> &out,
                 const std::vector<int64_t> &expectedShape = {}) const;
  /// Where the weights come from, for messages.
  const std::string &path() const { return source; }

private:
  std::string source;
  std::vector<std::unique_ptr<SafetensorsFile>> shards;
  std::map<std::string, size_t, std::less<>> shardOf;
};

/// A tensor to write: `data` holds numElements * dtypeSize(dtype) bytes.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void *data = nullptr;
};

/// Writes `tensors` to `path` atomically (a temporary file, then a rename),
/// so a reader never sees a half-written file.
Status
writeSafetensors(const std::string &path,
                 const std::vector<TensorToWrite> &tensors,
                 const std::map<std::string, std::string> &metadata = {});

} // namespace lora::runtime

#endif // LORA_RUNTIME_SAFETENSORS_H
