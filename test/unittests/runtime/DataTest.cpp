//===- DataTest.cpp - tokenizer, datasets, batches, schedules -------------===//

#include "lora/runtime/Data.h"
#include "lora/runtime/Schedule.h"

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

class DataTest : public lora::test::TempDirTest {
protected:
  std::string write(const std::string &name, const std::string &text) {
    std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  void expectError(const Status &status, const std::string &part) {
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.message().find(part), std::string::npos)
        << status.message();
  }
  ByteTokenizer tokenizer;
};

TEST_F(DataTest, ByteTokenizerRoundTripsUtf8) {
  std::string text = "héllo, wörld ✓";
  std::vector<int32_t> ids = tokenizer.encode(text);
  EXPECT_EQ(ids.size(), text.size()) << "one token per byte";
  ids.push_back(ByteTokenizer::kEndOfSequence);
  EXPECT_EQ(tokenizer.decode(ids), text);
}

TEST_F(DataTest, JsonlMasksThePrompt) {
  std::vector<Example> examples;
  ASSERT_TRUE(loadJsonl(write("d.jsonl", "{\"prompt\": \"2+2=\", \"response\": "
                                         "\"4\"}\n\n{\"text\": \"ab\"}\n"),
                        tokenizer, examples)
                  .ok());
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].tokens,
            (std::vector<int32_t>{'2', '+', '2', '=', '4', 256}));
  EXPECT_EQ(examples[0].lossMask, (std::vector<uint8_t>{0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(examples[1].lossMask, (std::vector<uint8_t>{1, 1, 1}));
}

TEST_F(DataTest, JsonlErrorsNameFileAndLine) {
  std::vector<Example> examples;
  expectError(loadJsonl(write("a.jsonl", "{\"text\": \"x\"}\n{oops\n"),
                        tokenizer, examples),
              "a.jsonl:2: not a JSON object");
  expectError(loadJsonl(write("b.jsonl", "{\"question\": \"x\"}\n"), tokenizer,
                        examples),
              "b.jsonl:1: expected {\"prompt\", \"response\"} or {\"text\"}");
  expectError(
      loadJsonl(write("c.jsonl", "{\"prompt\": 1, \"response\": \"x\"}"),
                tokenizer, examples),
      "c.jsonl:1: 'prompt' and 'response' must be strings");
  expectError(loadJsonl(write("e.jsonl", "\n"), tokenizer, examples),
              "e.jsonl: no examples");
  expectError(loadDataset((dir / "f.csv").string(), tokenizer, 8, 257,
                          examples),
              "unknown data format");
}

TEST_F(DataTest, TextSplitsParagraphs) {
  std::vector<Example> examples;
  ASSERT_TRUE(
      loadText(write("t.txt", "one\ntwo\n\n\nthree\n"), tokenizer, examples)
          .ok());
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(tokenizer.decode(examples[0].tokens), "one\ntwo");
  EXPECT_EQ(tokenizer.decode(examples[1].tokens), "three");
}

TEST_F(DataTest, TokenFilesChunkAndCheckIds) {
  std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6, 7};
  std::string bytes(reinterpret_cast<char *>(ids.data()), ids.size() * 4);
  std::vector<Example> examples;
  ASSERT_TRUE(loadTokenFile(write("t.bin", bytes), 3, 10, examples).ok());
  // Chunks of 4 overlapping by one token, so every token is a label once.
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].tokens, (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(examples[1].tokens, (std::vector<int32_t>{4, 5, 6, 7}));
  examples.clear();
  expectError(loadTokenFile(write("u.bin", bytes), 3, 5, examples),
              "token 4 is 5, outside the vocabulary [0, 5)");
  expectError(loadTokenFile(write("v.bin", "abc"), 3, 5, examples),
              "not a whole number of int32 tokens");
}

TEST_F(DataTest, BatchesShiftLabelsMaskAndPad) {
  Example example;
  example.tokens = {10, 11, 12, 13};
  example.lossMask = {0, 0, 1, 1};
  Batcher batcher({example}, /*batchSize=*/1, /*sequenceLength=*/6, 1);
  Batch batch = batcher.next();
  EXPECT_EQ(batch.inputIds, (std::vector<int32_t>{10, 11, 12, 13, 256, 256}));
  EXPECT_EQ(batch.positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5}));
  // label[t] = token[t + 1] where it counts: 12 and 13.
  EXPECT_EQ(batch.labels,
            (std::vector<int32_t>{-100, 12, 13, -100, -100, -100}));
  EXPECT_EQ(batch.countedTokens, 2);
}

TEST_F(DataTest, TruncationKeepsTheLastLabel) {
  Example example;
  example.tokens = {1, 2, 3, 4, 5};
  example.lossMask = {1, 1, 1, 1, 1};
  Batcher batcher({example}, 1, 3, 1);
  Batch batch = batcher.next();
  EXPECT_EQ(batch.inputIds, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(batch.labels, (std::vector<int32_t>{2, 3, 4}));
}

TEST_F(DataTest, ShufflingIsSeededAndSeekResumes) {
  std::vector<Example> examples =
      builtinDataset("arithmetic", 50, 7, tokenizer);
  auto firstTokens = [](Batcher &b, int n) {
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      Batch batch = b.next();
      out.insert(out.end(), batch.inputIds.begin(), batch.inputIds.end());
    }
    return out;
  };
  Batcher a(examples, 4, 8, 1), b(examples, 4, 8, 1), c(examples, 4, 8, 2);
  std::vector<int32_t> run = firstTokens(a, 30); // crosses epochs
  EXPECT_EQ(run, firstTokens(b, 30));
  EXPECT_NE(run, firstTokens(c, 30));
  // Resuming at (epoch, position) continues as the uninterrupted run.
  Batcher first(examples, 4, 8, 1);
  firstTokens(first, 17);
  Batcher resumed(examples, 4, 8, 1);
  resumed.seek(first.epoch(), first.position());
  std::vector<int32_t> tail(run.begin() + 17 * 32, run.end());
  EXPECT_EQ(firstTokens(resumed, 13), tail);
}

TEST_F(DataTest, BuiltinArithmeticIsCorrect) {
  for (const Example &example :
       builtinDataset("arithmetic", 200, 3, tokenizer)) {
    std::string text = tokenizer.decode(example.tokens);
    int a, b, c;
    char op;
    ASSERT_EQ(std::sscanf(text.c_str(), "%d%c%d=%d", &a, &op, &b, &c), 4)
        << text;
    EXPECT_EQ(c, op == '+' ? a + b : a - b) << text;
    EXPECT_GE(c, 0);
    // Loss on the answer and the end token only.
    size_t equals = text.find('=');
    for (size_t i = 0; i < example.tokens.size(); ++i)
      EXPECT_EQ(example.lossMask[i], i > equals ? 1 : 0) << text << " " << i;
  }
  EXPECT_EQ(builtinDataset("text", 5, 9, tokenizer)[3].tokens,
            builtinDataset("text", 5, 9, tokenizer)[3].tokens);
}

TEST(ScheduleTest, WarmupThenDecayAsTheHuggingFaceTrainer) {
  Schedule s;
  s.peak = 1.0;
  s.warmupSteps = 10;
  s.totalSteps = 110;
  s.kind = Schedule::Kind::Linear;
  EXPECT_DOUBLE_EQ(s.at(0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(5), 0.5);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_DOUBLE_EQ(s.at(60), 0.5);
  EXPECT_DOUBLE_EQ(s.at(110), 0.0);
  s.kind = Schedule::Kind::Cosine;
  EXPECT_NEAR(s.at(60), 0.5, 1e-12);
  EXPECT_NEAR(s.at(35), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-12);
  s.kind = Schedule::Kind::Constant;
  EXPECT_DOUBLE_EQ(s.at(100), 1.0);
  Schedule::Kind kind;
  Status status = Schedule::parseKind("polynomial", kind);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("--lr_scheduler_type"), std::string::npos);
  EXPECT_NE(status.message().find("'polynomial'"), std::string::npos);
}

} // namespace
