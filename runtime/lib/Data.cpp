//===- Data.cpp - training examples, datasets and batches -----------------===//

#include "lora/runtime/Data.h"

#include "lora/runtime/Dropout.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

namespace lora::runtime {

namespace {

Status lineError(const std::string &path, size_t line,
                 const std::string &what) {
  return Status::error(path + ":" + std::to_string(line) + ": " + what);
}

/// `text` with loss mask `counted`, appended to `example`.
void append(Example &example, const std::vector<int32_t> &tokens,
            bool counted) {
  example.tokens.insert(example.tokens.end(), tokens.begin(), tokens.end());
  example.lossMask.insert(example.lossMask.end(), tokens.size(),
                          counted ? 1 : 0);
}

/// A deterministic generator: splitmix64 over a counter, the same on every
/// platform (std::mt19937 distributions are not).
class Random {
public:
  explicit Random(uint64_t seed) : state(seed) {}
  uint64_t next() { return splitmix64(state++); }
  uint64_t below(uint64_t n) { return next() % n; }

private:
  uint64_t state;
};

} // namespace

Status loadJsonl(const std::string &path, const ByteTokenizer &tokenizer,
                 std::vector<Example> &examples) {
  std::ifstream in(path);
  if (!in)
    return Status::error(path + ": cannot open");
  std::string line;
  size_t number = 0, before = examples.size();
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.is_object())
      return lineError(path, number, "not a JSON object");
    Example example;
    auto field = [&](const char *name) -> const nlohmann::json * {
      auto it = record.find(name);
      return it == record.end() ? nullptr : &*it;
    };
    const nlohmann::json *prompt = field("prompt");
    const nlohmann::json *response = field("response");
    const nlohmann::json *text = field("text");
    if (prompt && response) {
      if (!prompt->is_string() || !response->is_string())
        return lineError(path, number,
                         "'prompt' and 'response' must be strings");
      append(example, tokenizer.encode(prompt->get<std::string>()), false);
      append(example, tokenizer.encode(response->get<std::string>()), true);
    } else if (text) {
      if (!text->is_string())
        return lineError(path, number, "'text' must be a string");
      append(example, tokenizer.encode(text->get<std::string>()), true);
    } else {
      return lineError(path, number,
                       "expected {\"prompt\", \"response\"} or {\"text\"}");
    }
    append(example, {ByteTokenizer::kEndOfSequence}, true);
    examples.push_back(std::move(example));
  }
  if (examples.size() == before)
    return Status::error(path + ": no examples");
  return Status::success();
}

Status loadText(const std::string &path, const ByteTokenizer &tokenizer,
                std::vector<Example> &examples) {
  std::ifstream in(path);
  if (!in)
    return Status::error(path + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string all = buffer.str(), paragraph;
  size_t before = examples.size();
  auto flush = [&]() {
    if (paragraph.find_first_not_of(" \t\r\n") != std::string::npos) {
      Example example;
      append(example, tokenizer.encode(paragraph), true);
      append(example, {ByteTokenizer::kEndOfSequence}, true);
      examples.push_back(std::move(example));
    }
    paragraph.clear();
  };
  std::istringstream lines(all);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      flush();
    else
      paragraph += (paragraph.empty() ? "" : "\n") + line;
  }
  flush();
  if (examples.size() == before)
    return Status::error(path + ": no text");
  return Status::success();
}

Status loadTokenFile(const std::string &path, int64_t sequenceLength,
                     int32_t vocabSize, std::vector<Example> &examples) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  if (bytes.size() % 4 != 0)
    return Status::error(path + ": size " + std::to_string(bytes.size()) +
                         " is not a whole number of int32 tokens");
  size_t count = bytes.size() / 4;
  // Chunks of seq + 1 tokens: the extra one is the last label.
  size_t chunk = size_t(sequenceLength) + 1, before = examples.size();
  for (size_t start = 0; start + 1 < count; start += chunk - 1) {
    Example example;
    for (size_t i = start; i < std::min(count, start + chunk); ++i) {
      int32_t id;
      std::memcpy(&id, bytes.data() + 4 * i, 4);
      if (id < 0 || id >= vocabSize)
        return Status::error(path + ": token " + std::to_string(i) + " is " +
                             std::to_string(id) +
                             ", outside the vocabulary [0, " +
                             std::to_string(vocabSize) + ")");
      example.tokens.push_back(id);
      example.lossMask.push_back(1);
    }
    examples.push_back(std::move(example));
  }
  if (examples.size() == before)
    return Status::error(path + ": fewer than 2 tokens");
  return Status::success();
}

Status loadDataset(const std::string &path, const ByteTokenizer &tokenizer,
                   int64_t sequenceLength, int32_t vocabSize,
                   std::vector<Example> &examples) {
  auto endsWith = [&](const char *suffix) {
    size_t n = std::strlen(suffix);
    return path.size() >= n && path.compare(path.size() - n, n, suffix) == 0;
  };
  if (endsWith(".jsonl"))
    return loadJsonl(path, tokenizer, examples);
  if (endsWith(".txt"))
    return loadText(path, tokenizer, examples);
  if (endsWith(".bin"))
    return loadTokenFile(path, sequenceLength, vocabSize, examples);
  return Status::error(path + ": unknown data format; expected .jsonl (prompt/"
                              "response or text), .txt or .bin (int32 tokens)");
}

/// The built-in generators; `held out` examples are those whose text
/// hashes to 0 mod 10, so the "-test" splits never overlap training.
std::vector<Example> builtinDataset(const std::string &name, int64_t count,
                                    uint64_t seed,
                                    const ByteTokenizer &tokenizer) {
  bool heldOut =
      name.size() > 5 && name.compare(name.size() - 5, 5, "-test") == 0;
  std::string domain = heldOut ? name.substr(0, name.size() - 5) : name;
  Random random(seed);
  std::vector<Example> examples;
  static const char *subjects[] = {"the cat",     "a dog",       "the old man",
                                   "my sister",   "the bird",    "a child",
                                   "the teacher", "our neighbor"};
  static const char *verbs[] = {"sees",    "likes",   "follows", "finds",
                                "carries", "watches", "calls",   "helps"};
  static const char *objects[] = {
      "the ball",       "a red apple", "the river",   "a small house",
      "the green tree", "the book",    "a warm coat", "the garden"};
  // Bounded: the held-out split keeps about 1 draw in 10.
  for (int64_t draws = 0;
       int64_t(examples.size()) < count && draws < 100 * count + 1000;
       ++draws) {
    std::string prompt, response;
    if (domain == "arithmetic") {
      int a = int(random.below(100)), b = int(random.below(100));
      bool add = random.below(2) == 0;
      if (!add && b > a)
        std::swap(a, b);
      prompt = std::to_string(a) + (add ? "+" : "-") + std::to_string(b) + "=";
      response = std::to_string(add ? a + b : a - b);
    } else {
      int sentences = 1 + int(random.below(3));
      for (int s = 0; s < sentences; ++s)
        response += std::string(s ? " " : "") + subjects[random.below(8)] +
                    " " + verbs[random.below(8)] + " " +
                    objects[random.below(8)] + ".";
    }
    uint64_t hash = 0;
    for (unsigned char c : prompt + "|" + response)
      hash = splitmix64(hash ^ c);
    if ((hash % 10 == 0) != heldOut)
      continue;
    Example example;
    append(example, tokenizer.encode(prompt), false);
    append(example, tokenizer.encode(response), true);
    append(example, {ByteTokenizer::kEndOfSequence}, true);
    examples.push_back(std::move(example));
  }
  return examples;
}

Status loadBuiltinDataset(const std::string &flag, const std::string &name,
                          int64_t count, uint64_t seed,
                          const ByteTokenizer &tokenizer,
                          std::vector<Example> &examples, bool heldOut) {
  if (name != "text" && name != "text-test" && name != "arithmetic" &&
      name != "arithmetic-test")
    return Status::error(flag +
                         ": expected text, arithmetic, text-test or "
                         "arithmetic-test, got '" +
                         name + "'");
  bool isTest =
      name.size() > 5 && name.compare(name.size() - 5, 5, "-test") == 0;
  examples = builtinDataset(heldOut && !isTest ? name + "-test" : name, count,
                            seed, tokenizer);
  return Status::success();
}

Batcher::Batcher(std::vector<Example> examples, int64_t batchSize,
                 int64_t sequenceLength, uint64_t seed)
    : examples(std::move(examples)), batchSize(batchSize),
      sequenceLength(sequenceLength), seed(seed) {
  shuffle();
}

void Batcher::shuffle() {
  order.resize(examples.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  // Fisher-Yates with the portable generator.
  Random random(seed * 0x9e3779b97f4a7c15ull + uint64_t(currentEpoch));
  for (size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[random.below(i)]);
}

void Batcher::seek(int64_t epoch, int64_t position) {
  currentEpoch = epoch;
  shuffle();
  cursor = position;
}

Batch makeBatch(const std::vector<const Example *> &rows, int64_t batchSize,
                int64_t sequenceLength) {
  Batch batch;
  size_t cells = size_t(batchSize * sequenceLength);
  batch.inputIds.assign(cells, ByteTokenizer::kEndOfSequence);
  batch.labels.assign(cells, kIgnoreLabel);
  batch.positions.resize(cells);
  for (int64_t row = 0; row < batchSize; ++row) {
    for (int64_t t = 0; t < sequenceLength; ++t)
      batch.positions[size_t(row * sequenceLength + t)] = int32_t(t);
    if (row >= int64_t(rows.size()))
      continue;
    const Example &example = *rows[row];
    int64_t length =
        std::min<int64_t>(int64_t(example.tokens.size()), sequenceLength + 1);
    for (int64_t t = 0; t < sequenceLength; ++t) {
      size_t cell = size_t(row * sequenceLength + t);
      if (t < length)
        batch.inputIds[cell] = example.tokens[t];
      // The label at t is the token at t + 1, when it counts.
      if (t + 1 < length && example.lossMask[t + 1]) {
        batch.labels[cell] = example.tokens[t + 1];
        ++batch.countedTokens;
      }
    }
  }
  return batch;
}

void Batcher::shard(int rank, int worldSize) {
  shardRank = rank;
  shardCount = worldSize;
}

Batch Batcher::next() {
  std::vector<const Example *> rows;
  int64_t first = shardRank * batchSize, last = first + batchSize;
  for (int64_t row = 0; row < batchSize * shardCount; ++row) {
    if (cursor >= int64_t(order.size())) {
      ++currentEpoch;
      shuffle();
      cursor = 0;
    }
    const Example *example = &examples[order[cursor++]];
    if (row >= first && row < last)
      rows.push_back(example);
  }
  return makeBatch(rows, batchSize, sequenceLength);
}

} // namespace lora::runtime
