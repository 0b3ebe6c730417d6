//===- Data.h - training examples, datasets and batches ---------*- C++ -*-===//
//
// An example is a token sequence with a per-token loss mask: prompt tokens
// of instruction data are masked out, as is padding. Batches give the
// step's `input_ids`, `positions` and `labels` (shifted by one, -100 where
// no loss is taken).
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_DATA_H
#define LORA_RUNTIME_DATA_H

#include "lora/runtime/Status.h"
#include "lora/runtime/Tokenizer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace lora::runtime {

/// Label value that the loss ignores (as PyTorch's ignore_index).
constexpr int32_t kIgnoreLabel = -100;

struct Example {
  std::vector<int32_t> tokens;
  /// 1 where predicting this token counts toward the loss.
  std::vector<uint8_t> lossMask;
};

/// The loaders append to `examples`; a file that adds none is an error.
///
/// JSONL with {"prompt": ..., "response": ...} per line (loss on the
/// response and the end-of-sequence token) or {"text": ...} (loss on all).
/// Errors name the file and the line.
Status loadJsonl(const std::string &path, const ByteTokenizer &tokenizer,
                 std::vector<Example> &examples);

/// Plain text for continued pretraining: one example per paragraph (blank
/// line separated), loss on every token.
Status loadText(const std::string &path, const ByteTokenizer &tokenizer,
                std::vector<Example> &examples);

/// Pre-tokenized little-endian int32 ids, split into `sequenceLength`
/// chunks; ids must lie in [0, vocabSize).
Status loadTokenFile(const std::string &path, int64_t sequenceLength,
                     int32_t vocabSize, std::vector<Example> &examples);

/// Reads `path` by its extension: .jsonl, .txt, .bin (token file, ids
/// checked against the model's `vocabSize`).
Status loadDataset(const std::string &path, const ByteTokenizer &tokenizer,
                   int64_t sequenceLength, int32_t vocabSize,
                   std::vector<Example> &examples);

/// The built-in data, generated (no network): "arithmetic" (prompt /
/// response pairs such as "12+7=" -> "19", the target domain) and "text"
/// (simple sentences, the source domain). "arithmetic-test" and
/// "text-test" are held-out splits: no example of them is ever in the
/// training split, whatever the seeds.
std::vector<Example> builtinDataset(const std::string &name, int64_t count,
                                    uint64_t seed,
                                    const ByteTokenizer &tokenizer);
/// builtinDataset after checking `name` (the error names `flag`); with
/// `heldOut`, the held-out split of the domain `name` names.
Status loadBuiltinDataset(const std::string &flag, const std::string &name,
                          int64_t count, uint64_t seed,
                          const ByteTokenizer &tokenizer,
                          std::vector<Example> &examples, bool heldOut = false);

/// One batch, row-major [batch, seq].
struct Batch {
  std::vector<int32_t> inputIds, positions, labels;
  int64_t countedTokens = 0;
};

/// `rows` (at most batchSize examples; missing rows count nothing) padded
/// or truncated into one [batchSize, sequenceLength] batch.
Batch makeBatch(const std::vector<const Example *> &rows, int64_t batchSize,
                int64_t sequenceLength);

/// Seeded shuffling and padding into fixed [batch, seq] batches. The state
/// (epoch, position) is what a checkpoint stores to resume exactly.
class Batcher {
public:
  Batcher(std::vector<Example> examples, int64_t batchSize,
          int64_t sequenceLength, uint64_t seed);

  /// The next batch; epochs reshuffle with seed + epoch.
  Batch next();

  /// Data parallelism: each next() draws the global batch of
  /// `worldSize` x batchSize examples and keeps rank `rank`'s rows, so that
  /// the ranks together see what one process with the global batch sees.
  void shard(int rank, int worldSize);

  int64_t epoch() const { return currentEpoch; }
  int64_t position() const { return cursor; }
  /// Moves to (epoch, position), as after that many batches.
  void seek(int64_t epoch, int64_t position);

private:
  void shuffle();
  std::vector<Example> examples;
  std::vector<size_t> order;
  int64_t batchSize, sequenceLength;
  uint64_t seed;
  int64_t currentEpoch = 0, cursor = 0;
  int shardRank = 0, shardCount = 1;
};

} // namespace lora::runtime

#endif // LORA_RUNTIME_DATA_H
