//===- Safetensors.cpp - read and write safetensors files -----------------===//
//
// Validation follows the format's own rules: the header is a JSON object,
// every tensor's byte range matches its dtype and shape, and the ranges
// tile the data section without gaps or overlaps.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lora::runtime {

namespace {

/// Headers beyond this are not model files; refuse them before parsing.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

std::string inQuotes(std::string_view text) {
  return "'" + std::string(text) + "'";
}

Status fileError(const std::string &path, const std::string &what) {
  return Status::error(path + ": " + what);
}

Status tensorError(const std::string &path, std::string_view tensor,
                   const std::string &what) {
  return Status::error(path + ": tensor " + inQuotes(tensor) + ": " + what);
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

/// Number of elements, or -1 when a dim is negative or the count overflows.
int64_t checkedNumElements(const std::vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0 || (dim != 0 && count > INT64_MAX / dim))
      return -1;
    count *= dim;
  }
  return count;
}

Status parseTensorEntry(const std::string &path, const std::string &name,
                        const nlohmann::json &entry, TensorInfo &info) {
  if (!entry.is_object())
    return tensorError(path, name, "header entry is not a JSON object");
  info.name = name;

  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string())
    return tensorError(path, name, "missing string field 'dtype'");
  std::optional<DType> parsed = parseDType(dtype->get<std::string>());
  if (!parsed)
    return tensorError(path, name,
                       "unknown dtype " + inQuotes(dtype->get<std::string>()));
  info.dtype = *parsed;

  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array())
    return tensorError(path, name, "missing array field 'shape'");
  for (const nlohmann::json &dim : *shape) {
    if (!dim.is_number_unsigned())
      return tensorError(path, name,
                         "shape holds " + dim.dump() +
                             ", not a non-negative integer");
    info.shape.push_back(dim.get<int64_t>());
  }

  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned())
    return tensorError(path, name,
                       "'data_offsets' must be two non-negative integers");
  info.begin = (*offsets)[0].get<uint64_t>();
  info.end = (*offsets)[1].get<uint64_t>();
  if (info.end < info.begin)
    return tensorError(path, name, "data_offsets end precedes begin");

  int64_t count = checkedNumElements(info.shape);
  uint64_t elementSize = dtypeSize(info.dtype);
  if (count < 0 || uint64_t(count) > UINT64_MAX / elementSize)
    return tensorError(path, name,
                       "shape " + shapeString(info.shape) + " is too large");
  if (info.end - info.begin != uint64_t(count) * elementSize)
    return tensorError(path, name,
                       "holds " + std::to_string(info.end - info.begin) +
                           " bytes but " + std::string(dtypeName(info.dtype)) +
                           " " + shapeString(info.shape) + " needs " +
                           std::to_string(uint64_t(count) * elementSize));
  return Status::success();
}

} // namespace

int64_t TensorInfo::numElements() const { return checkedNumElements(shape); }

SafetensorsFile::~SafetensorsFile() {
  if (mapping)
    munmap(mapping, mappingSize);
}

Status SafetensorsFile::open(const std::string &path,
                             std::unique_ptr<SafetensorsFile> &result) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fileError(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return fileError(path, "not a regular file");
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->filePath = path;
  file->mappingSize = size_t(info.st_size);
  if (file->mappingSize < 8) {
    ::close(fd);
    return fileError(path, "too short for a safetensors header (" +
                               std::to_string(file->mappingSize) + " bytes)");
  }
  void *mapping =
      mmap(nullptr, file->mappingSize, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED)
    return fileError(path, std::string("cannot map: ") + std::strerror(errno));
  file->mapping = mapping;
  const auto *bytes = static_cast<const uint8_t *>(mapping);

  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i) // little endian
    headerSize = (headerSize << 8) | bytes[i];
  if (headerSize > kMaxHeaderBytes || headerSize > file->mappingSize - 8)
    return fileError(path, "header length " + std::to_string(headerSize) +
                               " exceeds the file (" +
                               std::to_string(file->mappingSize) + " bytes)");
  const char *headerText = reinterpret_cast<const char *>(bytes + 8);
  nlohmann::json header =
      nlohmann::json::parse(headerText, headerText + headerSize,
                            /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded())
    return fileError(path, "header is not valid JSON");
  if (!header.is_object())
    return fileError(path, "header is not a JSON object");

  file->dataStart = bytes + 8 + headerSize;
  uint64_t dataSize = file->mappingSize - 8 - headerSize;
  for (const auto &[name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        return fileError(path, "'__metadata__' is not a JSON object");
      for (const auto &[key, value] : entry.items()) {
        if (!value.is_string())
          return fileError(path,
                           "metadata " + inQuotes(key) + " is not a string");
        file->meta[key] = value.get<std::string>();
      }
      continue;
    }
    TensorInfo tensor;
    LORA_RETURN_IF_ERROR(parseTensorEntry(path, name, entry, tensor));
    file->tensorList.push_back(std::move(tensor));
  }

  // The byte ranges must tile [0, dataSize): no gap, no overlap.
  std::sort(file->tensorList.begin(), file->tensorList.end(),
            [](const TensorInfo &a, const TensorInfo &b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  uint64_t expected = 0;
  for (const TensorInfo &tensor : file->tensorList) {
    if (tensor.begin != expected)
      return tensorError(
          path, tensor.name,
          "data_offsets begin at " + std::to_string(tensor.begin) +
              ", expected " + std::to_string(expected) +
              (tensor.begin < expected ? " (overlap)" : " (gap)"));
    expected = tensor.end;
  }
  if (expected != dataSize)
    return fileError(path, "tensors cover " + std::to_string(expected) +
                               " bytes of a " + std::to_string(dataSize) +
                               "-byte data section (truncated or padded)");
  result = std::move(file);
  return Status::success();
}

const TensorInfo *SafetensorsFile::find(std::string_view name) const {
  for (const TensorInfo &tensor : tensorList)
    if (tensor.name == name)
      return &tensor;
  return nullptr;
}

Status
SafetensorsFile::readF32(std::string_view name, std::vector<float> &out,
                         const std::vector<int64_t> &expectedShape) const {
  const TensorInfo *tensor = find(name);
  if (!tensor)
    return tensorError(filePath, name, "not found");
  if (!expectedShape.empty() && tensor->shape != expectedShape)
    return tensorError(filePath, name,
                       "has shape " + shapeString(tensor->shape) +
                           ", expected " + shapeString(expectedShape));
  size_t count = size_t(tensor->numElements());
  out.resize(count);
  // The data section need not be aligned: widenToF32 copies element by
  // element.
  if (!widenToF32(tensor->dtype, bytes(*tensor), count, out.data()))
    return tensorError(filePath, name,
                       "has dtype " + std::string(dtypeName(tensor->dtype)) +
                           ", expected a float type");
  return Status::success();
}

Status ModelWeights::open(const std::string &path,
                          std::unique_ptr<ModelWeights> &result) {
  namespace fs = std::filesystem;
  std::unique_ptr<ModelWeights> weights(new ModelWeights());
  std::string file = path;
  if (fs::is_directory(path)) {
    if (fs::exists(fs::path(path) / "model.safetensors.index.json"))
      file = (fs::path(path) / "model.safetensors.index.json").string();
    else if (fs::exists(fs::path(path) / "model.safetensors"))
      file = (fs::path(path) / "model.safetensors").string();
    else
      return fileError(path, "no model.safetensors or "
                             "model.safetensors.index.json in this folder");
  }
  weights->source = file;
  if (file.size() < 5 || file.compare(file.size() - 5, 5, ".json") != 0) {
    std::unique_ptr<SafetensorsFile> single;
    LORA_RETURN_IF_ERROR(SafetensorsFile::open(file, single));
    for (const TensorInfo &tensor : single->tensors())
      weights->shardOf[tensor.name] = 0;
    weights->shards.push_back(std::move(single));
    result = std::move(weights);
    return Status::success();
  }
  std::ifstream in(file);
  if (!in)
    return fileError(file, "cannot open");
  nlohmann::json index = nlohmann::json::parse(in, nullptr, false);
  if (index.is_discarded() || !index.is_object() ||
      !index.contains("weight_map") || !index["weight_map"].is_object())
    return fileError(file, "expected a JSON object with a 'weight_map'");
  std::map<std::string, size_t> shardIndex;
  fs::path folder = fs::path(file).parent_path();
  for (const auto &[name, shard] : index["weight_map"].items()) {
    if (!shard.is_string())
      return fileError(file, "weight_map entry " + inQuotes(name) +
                                 " is not a file name");
    std::string shardName = shard.get<std::string>();
    auto it = shardIndex.find(shardName);
    if (it == shardIndex.end()) {
      std::unique_ptr<SafetensorsFile> opened;
      LORA_RETURN_IF_ERROR(
          SafetensorsFile::open((folder / shardName).string(), opened));
      it = shardIndex.emplace(shardName, weights->shards.size()).first;
      weights->shards.push_back(std::move(opened));
    }
    if (!weights->shards[it->second]->find(name))
      return fileError(file, "weight_map puts " + inQuotes(name) + " in " +
                                 shardName + ", which does not hold it");
    weights->shardOf[name] = it->second;
  }
  result = std::move(weights);
  return Status::success();
}

Status ModelWeights::readF32(std::string_view name, std::vector<float> &out,
                             const std::vector<int64_t> &expectedShape) const {
  auto it = shardOf.find(name);
  if (it == shardOf.end())
    return tensorError(source, name, "not found");
  return shards[it->second]->readF32(name, out, expectedShape);
}

Status writeSafetensors(const std::string &path,
                        const std::vector<TensorToWrite> &tensors,
                        const std::map<std::string, std::string> &metadata) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const TensorToWrite &tensor : tensors) {
    if (tensor.name.empty() || tensor.name == "__metadata__")
      return tensorError(path, tensor.name, "is not a valid tensor name");
    if (header.contains(tensor.name))
      return tensorError(path, tensor.name, "appears twice");
    int64_t count = checkedNumElements(tensor.shape);
    if (count < 0)
      return tensorError(path, tensor.name,
                         "has invalid shape " + shapeString(tensor.shape));
    if (count > 0 && !tensor.data)
      return tensorError(path, tensor.name, "has no data");
    uint64_t size = uint64_t(count) * dtypeSize(tensor.dtype);
    header[tensor.name] = {{"dtype", dtypeName(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::string headerText = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned.
  headerText.append((8 - headerText.size() % 8) % 8, ' ');

  std::string temporary = path + ".tmp." + std::to_string(getpid());
  FILE *out = std::fopen(temporary.c_str(), "wb");
  if (!out)
    return fileError(temporary,
                     std::string("cannot create: ") + std::strerror(errno));
  uint8_t sizeBytes[8];
  for (int i = 0; i < 8; ++i)
    sizeBytes[i] = uint8_t(uint64_t(headerText.size()) >> (8 * i));
  bool ok = std::fwrite(sizeBytes, 1, 8, out) == 8 &&
            std::fwrite(headerText.data(), 1, headerText.size(), out) ==
                headerText.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i) {
    const TensorToWrite &tensor = tensors[i];
    size_t size =
        size_t(checkedNumElements(tensor.shape)) * dtypeSize(tensor.dtype);
    ok = size == 0 || std::fwrite(tensor.data, 1, size, out) == size;
  }
  ok = std::fflush(out) == 0 && ok;
  ok = fsync(fileno(out)) == 0 && ok;
  ok = std::fclose(out) == 0 && ok;
  if (!ok) {
    std::string reason = std::strerror(errno);
    std::remove(temporary.c_str());
    return fileError(path, "write failed: " + reason);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::string reason = std::strerror(errno);
    std::remove(temporary.c_str());
    return fileError(path,
                     "cannot rename the temporary file into place: " + reason);
  }
  return Status::success();
}

} // namespace lora::runtime
