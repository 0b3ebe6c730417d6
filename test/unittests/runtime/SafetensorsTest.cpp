//===- SafetensorsTest.cpp - safetensors reading and writing --------------===//
//
// Reads a file written by Hugging Face's own `safetensors` package
// (scripts/fixtures/make_safetensors_reference.py), round-trips the writer,
// and feeds the reader one malformed file per rule it enforces.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Safetensors.h"

#include "TempDir.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace lora::runtime;
namespace fs = std::filesystem;

namespace {

/// A fresh directory per test, removed afterwards.
class SafetensorsTest : public lora::test::TempDirTest {
protected:
  /// Writes a file made of an 8-byte length, `header` and `data` bytes.
  std::string rawFile(const std::string &header, size_t dataBytes,
                      uint64_t declaredLength = UINT64_MAX) {
    std::string path = (dir / "raw.safetensors").string();
    std::ofstream out(path, std::ios::binary);
    uint64_t length =
        declaredLength == UINT64_MAX ? header.size() : declaredLength;
    for (int i = 0; i < 8; ++i)
      out.put(char(length >> (8 * i)));
    out << header << std::string(dataBytes, '\0');
    return path;
  }

  /// Opening must fail with a message containing every string in `parts`.
  void expectRejected(const std::string &path,
                      std::initializer_list<std::string> parts) {
    std::unique_ptr<SafetensorsFile> file;
    Status status = SafetensorsFile::open(path, file);
    ASSERT_FALSE(status.ok()) << "accepted " << path;
    EXPECT_EQ(file, nullptr);
    for (const std::string &part : parts)
      EXPECT_NE(status.message().find(part), std::string::npos)
          << "message '" << status.message() << "' lacks '" << part << "'";
  }
};

TEST_F(SafetensorsTest, ReadsFileWrittenByHuggingFaceSafetensors) {
  std::unique_ptr<SafetensorsFile> file;
  Status status =
      SafetensorsFile::open(LORA_TEST_INPUTS "/reference.safetensors", file);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(file->tensors().size(), 4u);
  EXPECT_EQ(file->metadata().at("format"), "pt");

  std::vector<float> q;
  status = file->readF32("model.layers.0.self_attn.q_proj.weight", q, {3, 4});
  ASSERT_TRUE(status.ok()) << status.message();
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(q[i], 0.5f * i - 1.0f) << i;

  std::vector<float> norm; // stored as F16
  ASSERT_TRUE(file->readF32("model.norm.weight", norm, {5}).ok());
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(norm[i], i / 8.0f);

  std::vector<float> embed; // stored as F64
  ASSERT_TRUE(file->readF32("model.embed_tokens.weight", embed, {2, 3}).ok());
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(embed[i], float(1.0 / std::pow(3.0, i)));

  const TensorInfo *step = file->find("step");
  ASSERT_NE(step, nullptr);
  EXPECT_EQ(step->dtype, DType::I64);
  for (int i = 0; i < 3; ++i) {
    int64_t value;
    std::memcpy(&value, file->bytes(*step) + 8 * i, 8);
    EXPECT_EQ(value, i * 1000000000000LL);
  }
}

TEST_F(SafetensorsTest, ReadF32NamesTheTensorAtFault) {
  std::unique_ptr<SafetensorsFile> file;
  ASSERT_TRUE(
      SafetensorsFile::open(LORA_TEST_INPUTS "/reference.safetensors", file)
          .ok());
  std::vector<float> out;
  Status missing = file->readF32("model.layers.9.mlp.up_proj.weight", out);
  EXPECT_NE(missing.message().find("'model.layers.9.mlp.up_proj.weight': not "
                                   "found"),
            std::string::npos)
      << missing.message();
  Status shape = file->readF32("model.norm.weight", out, {6});
  EXPECT_NE(shape.message().find("has shape [5], expected [6]"),
            std::string::npos)
      << shape.message();
  Status dtype = file->readF32("step", out);
  EXPECT_NE(dtype.message().find("dtype I64"), std::string::npos)
      << dtype.message();
}

TEST_F(SafetensorsTest, WriterRoundTripsEveryDTypeAndMetadata) {
  std::vector<float> weights = {1.5f, -2.25f, 3.0f, 0.0f, -0.0f, 1e-30f};
  std::vector<uint16_t> halves = {f32ToBF16(1.0f), f32ToBF16(-3.5f)};
  std::vector<int32_t> ids = {7, -1, 1 << 30};
  std::string path = (dir / "adapter_model.safetensors").string();
  Status status = writeSafetensors(
      path,
      {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
        DType::F32,
        {2, 3},
        weights.data()},
       {"half", DType::BF16, {2}, halves.data()},
       {"ids", DType::I32, {3}, ids.data()},
       {"empty", DType::F32, {0, 4}, nullptr}},
      {{"format", "pt"}});
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(fs::file_size(path) % 8, 0u) << "header padded to 8 bytes";

  std::unique_ptr<SafetensorsFile> file;
  status = SafetensorsFile::open(path, file);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(file->metadata().at("format"), "pt");
  std::vector<float> back;
  ASSERT_TRUE(file->readF32("base_model.model.model.layers.0.self_attn.q_proj."
                            "lora_A.weight",
                            back, {2, 3})
                  .ok());
  EXPECT_EQ(std::memcmp(back.data(), weights.data(), 6 * sizeof(float)), 0);
  ASSERT_TRUE(file->readF32("half", back, {2}).ok());
  EXPECT_EQ(back, (std::vector<float>{1.0f, -3.5f}));
  const TensorInfo *idInfo = file->find("ids");
  ASSERT_NE(idInfo, nullptr);
  EXPECT_EQ(std::memcmp(file->bytes(*idInfo), ids.data(), 12), 0);
  ASSERT_NE(file->find("empty"), nullptr);
  EXPECT_EQ(file->find("empty")->numElements(), 0);
}

TEST_F(SafetensorsTest, WriterIsAtomicAndReportsFailures) {
  std::vector<float> one = {1.0f};
  std::string path = (dir / "model.safetensors").string();
  ASSERT_TRUE(
      writeSafetensors(path, {{"a", DType::F32, {1}, one.data()}}).ok());
  // A failing write leaves the old file untouched and no temporary behind.
  Status duplicate =
      writeSafetensors(path, {{"a", DType::F32, {1}, one.data()},
                              {"a", DType::F32, {1}, one.data()}});
  EXPECT_NE(duplicate.message().find("'a': appears twice"), std::string::npos)
      << duplicate.message();
  std::unique_ptr<SafetensorsFile> file;
  ASSERT_TRUE(SafetensorsFile::open(path, file).ok());
  EXPECT_NE(file->find("a"), nullptr);
  EXPECT_EQ(
      std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);

  std::string missingDir = (dir / "no-such-dir" / "x.safetensors").string();
  Status status = writeSafetensors(missingDir, {});
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("no-such-dir"), std::string::npos);
}

TEST_F(SafetensorsTest, RejectsMissingAndShortFiles) {
  expectRejected((dir / "absent.safetensors").string(),
                 {"absent.safetensors", "cannot open"});
  std::string path = (dir / "short.safetensors").string();
  std::ofstream(path) << "abc";
  expectRejected(path, {"short.safetensors", "too short"});
  expectRejected(dir.string(), {"not a regular file"});
}

TEST_F(SafetensorsTest, RejectsBadHeaders) {
  expectRejected(rawFile("{}", 0, 1000), {"header length 1000 exceeds"});
  expectRejected(rawFile("{not json", 0), {"not valid JSON"});
  expectRejected(rawFile("[1, 2]", 0), {"not a JSON object"});
  expectRejected(rawFile(R"({"__metadata__": {"k": 1}})", 0),
                 {"metadata 'k' is not a string"});
  expectRejected(rawFile(R"({"w": 3})", 0), {"'w'", "not a JSON object"});
  expectRejected(rawFile(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4),
                 {"'w'", "'dtype'"});
  expectRejected(
      rawFile(R"({"w": {"dtype": "F8", "shape": [1], "data_offsets": [0, 4]}})",
              4),
      {"'w'", "unknown dtype 'F8'"});
  expectRejected(
      rawFile(
          R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
          4),
      {"'w'", "not a non-negative integer"});
  expectRejected(
      rawFile(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})",
              8),
      {"'w'", "data_offsets"});
  expectRejected(
      rawFile(
          R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 0]}})",
          8),
      {"'w'", "end precedes begin"});
  expectRejected(
      rawFile(
          R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})",
          8),
      {"'w'", "holds 8 bytes but F32 [3] needs 12"});
  expectRejected(
      rawFile(
          R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 8]}})",
          8),
      {"'w'", "too large"});
}

TEST_F(SafetensorsTest, RejectsOffsetsThatDoNotTileTheData) {
  expectRejected(
      rawFile(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
              12),
      {"'b'", "overlap"});
  expectRejected(
      rawFile(
          R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
          8),
      {"'a'", "gap"});
  expectRejected(
      rawFile(
          R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
          4),
      {"cover 8 bytes of a 4-byte data section"});
  expectRejected(
      rawFile(
          R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
          12),
      {"cover 4 bytes of a 12-byte data section"});
}

} // namespace

namespace {

TEST_F(SafetensorsTest, ModelWeightsReadShardsThroughTheIndex) {
  std::vector<float> a = {1, 2}, b = {3, 4, 5};
  std::string folder = dir.string();
  ASSERT_TRUE(writeSafetensors(
                  folder + "/model-00001-of-00002.safetensors",
                  {{"model.embed_tokens.weight", DType::F32, {2}, a.data()}})
                  .ok());
  ASSERT_TRUE(writeSafetensors(folder + "/model-00002-of-00002.safetensors",
                               {{"lm_head.weight", DType::F32, {3}, b.data()}})
                  .ok());
  std::ofstream(folder + "/model.safetensors.index.json")
      << R"({"metadata": {"total_size": 20}, "weight_map": {
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00002-of-00002.safetensors"}})";
  for (std::string path : {folder, folder + "/model.safetensors.index.json"}) {
    std::unique_ptr<ModelWeights> weights;
    Status status = ModelWeights::open(path, weights);
    ASSERT_TRUE(status.ok()) << status.message();
    std::vector<float> out;
    ASSERT_TRUE(weights->readF32("lm_head.weight", out, {3}).ok());
    EXPECT_EQ(out, b);
    ASSERT_TRUE(weights->readF32("model.embed_tokens.weight", out, {2}).ok());
    EXPECT_EQ(out, a);
    Status missing = weights->readF32("model.norm.weight", out);
    EXPECT_NE(missing.message().find("'model.norm.weight': not found"),
              std::string::npos);
  }
}

TEST_F(SafetensorsTest, ModelWeightsRejectABadIndex) {
  std::vector<float> a = {1, 2};
  std::string folder = dir.string();
  ASSERT_TRUE(writeSafetensors(folder + "/shard.safetensors",
                               {{"x", DType::F32, {2}, a.data()}})
                  .ok());
  std::unique_ptr<ModelWeights> weights;
  std::ofstream(folder + "/model.safetensors.index.json")
      << R"({"weight_map": {"y": "shard.safetensors"}})";
  Status status = ModelWeights::open(folder, weights);
  EXPECT_NE(status.message().find("weight_map puts 'y' in shard.safetensors, "
                                  "which does not hold it"),
            std::string::npos)
      << status.message();
  std::ofstream(folder + "/model.safetensors.index.json")
      << R"({"weight_map": {"x": "missing.safetensors"}})";
  status = ModelWeights::open(folder, weights);
  EXPECT_NE(status.message().find("missing.safetensors: cannot open"),
            std::string::npos)
      << status.message();
  std::ofstream(folder + "/model.safetensors.index.json") << "[]";
  status = ModelWeights::open(folder, weights);
  EXPECT_NE(status.message().find("expected a JSON object with a 'weight_map'"),
            std::string::npos)
      << status.message();
  status = ModelWeights::open((dir / "empty").string(), weights);
  EXPECT_FALSE(status.ok());
}

} // namespace
