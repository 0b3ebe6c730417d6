//===- TrainerTest.cpp - the training loop with a stand-in step -----------===//
//
// A hand-written CompiledStep (w' = w - lr, loss = Σ w) shows how the
// trainer binds buffers by name, feeds results back, follows the schedule,
// logs, initializes parameters as PEFT does, and exports adapters.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Trainer.h"
#include "lora/runtime/Safetensors.h"

#include <nlohmann/json.hpp>

#include "TempDir.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace lora::runtime;
namespace fs = std::filesystem;

namespace {

class FakeStep : public CompiledStep {
public:
  FakeStep() {
    args = {{"w.weight", {2, 3}, DType::F32, "full"},
            {"norm.weight", {3}, DType::F32, "frozen"},
            {"big.weight", {64, 64}, DType::F32, "frozen"},
            {"q.weight", {4, 3}, DType::F32, "frozen"},
            {"q.lora_A.weight", {2, 3}, DType::F32, "lora"},
            {"q.lora_B.weight", {4, 2}, DType::F32, "lora"},
            {"input_ids", {2, 4}, DType::I32, ""},
            {"positions", {2, 4}, DType::I32, ""},
            {"labels", {2, 4}, DType::I32, ""},
            {"lr", {}, DType::F32, ""},
            {"step", {}, DType::I64, ""}};
    outs = {{"loss", {}, DType::F32, ""},
            {"grad_norm", {}, DType::F32, ""},
            {"w.weight", {2, 3}, DType::F32, ""}};
  }
  const std::vector<BufferInfo> &arguments() const override { return args; }
  const std::vector<BufferInfo> &results() const override { return outs; }
  Status run(const std::vector<void *> &a,
             const std::vector<void *> &r) override {
    const float *w = static_cast<const float *>(a[0]);
    float lr = *static_cast<const float *>(a[9]);
    int64_t step = *static_cast<const int64_t *>(a[10]);
    learningRates.push_back(lr);
    steps.push_back(step);
    float sum = 0;
    for (int i = 0; i < 6; ++i) {
      sum += w[i];
      static_cast<float *>(r[2])[i] = w[i] - lr;
    }
    *static_cast<float *>(r[0]) = poisonAt == step ? NAN : sum;
    *static_cast<float *>(r[1]) = lr;
    return Status::success();
  }
  std::vector<BufferInfo> args, outs;
  std::vector<float> learningRates;
  std::vector<int64_t> steps;
  int64_t poisonAt = -1;
};

class TrainerTest : public lora::test::TempDirTest {
protected:
  Batcher batcher() {
    ByteTokenizer tokenizer;
    return Batcher(builtinDataset("text", 8, 1, tokenizer), 2, 4, 1);
  }
  std::vector<float> read(Trainer &trainer, const std::string &name) {
    std::vector<float> values;
    EXPECT_TRUE(trainer.read(name, values)) << name;
    return values;
  }
  FakeStep step;
};

TEST_F(TrainerTest, InitializesAsPeftAndTransformers) {
  Trainer trainer(step);
  ASSERT_TRUE(trainer.initialize("", 5).ok());
  for (float x : read(trainer, "norm.weight"))
    EXPECT_EQ(x, 1.0f);
  for (float x : read(trainer, "q.lora_B.weight"))
    EXPECT_EQ(x, 0.0f);
  std::vector<float> a = read(trainer, "q.lora_A.weight");
  double bound = 1.0 / std::sqrt(3.0); // kaiming_uniform(a=sqrt(5)), fan_in 3
  for (float x : a)
    EXPECT_LE(std::fabs(x), bound);
  EXPECT_NE(a[0], a[1]);
  std::vector<float> big = read(trainer, "big.weight");
  double sum = 0, squares = 0;
  for (float x : big) {
    sum += x;
    squares += double(x) * x;
  }
  double mean = sum / big.size(), std = std::sqrt(squares / big.size());
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(std, 0.02, 0.002) << "normal(0, 0.02) as initializer_range";

  Trainer same(step), other(step);
  ASSERT_TRUE(same.initialize("", 5).ok());
  ASSERT_TRUE(other.initialize("", 6).ok());
  EXPECT_EQ(read(same, "big.weight"), big);
  EXPECT_NE(read(other, "big.weight"), big);
}

TEST_F(TrainerTest, LoadsBaseWeightsByName) {
  std::vector<float> w = {1, 2, 3, 4, 5, 6}, norm = {7, 8, 9},
                     big(64 * 64, 0.5f), q(12, -1.0f);
  std::string path = (dir / "model.safetensors").string();
  ASSERT_TRUE(
      writeSafetensors(path, {{"w.weight", DType::F32, {2, 3}, w.data()},
                              {"norm.weight", DType::F32, {3}, norm.data()},
                              {"big.weight", DType::F32, {64, 64}, big.data()},
                              {"q.weight", DType::F32, {4, 3}, q.data()}})
          .ok());
  Trainer trainer(step);
  ASSERT_TRUE(trainer.initialize(path, 1).ok());
  EXPECT_EQ(read(trainer, "w.weight"), w);
  EXPECT_EQ(read(trainer, "norm.weight"), norm);

  std::string partial = (dir / "partial.safetensors").string();
  ASSERT_TRUE(
      writeSafetensors(partial, {{"w.weight", DType::F32, {2, 3}, w.data()}})
          .ok());
  Status status = Trainer(step).initialize(partial, 1);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("'norm.weight': not found"),
            std::string::npos)
      << status.message();
}

TEST_F(TrainerTest, FeedsResultsBackFollowsTheScheduleAndLogs) {
  Trainer trainer(step);
  ASSERT_TRUE(trainer.initialize("", 1).ok());
  std::vector<float> w0 = read(trainer, "w.weight");
  TrainOptions options;
  options.maxSteps = 5;
  options.schedule.kind = Schedule::Kind::Linear;
  options.schedule.peak = 0.1;
  options.schedule.warmupSteps = 2;
  options.schedule.totalSteps = 5;
  options.loggingSteps = 2;
  options.metricsPath = (dir / "metrics.jsonl").string();
  std::vector<int64_t> logged;
  Batcher data = batcher();
  ASSERT_TRUE(
      trainer
          .train(data, options,
                 [&](const StepMetrics &m) { logged.push_back(m.step); })
          .ok());
  EXPECT_EQ(step.steps, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  std::vector<float> expectedRates = {0.0f, 0.05f, 0.1f, 0.0666667f,
                                      0.0333333f};
  ASSERT_EQ(step.learningRates.size(), 5u);
  double total = 0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(step.learningRates[i], expectedRates[i], 1e-6);
    total += step.learningRates[i];
  }
  // Each step's w' fed the next step: w moved by the sum of the rates.
  std::vector<float> w = read(trainer, "w.weight");
  for (int i = 0; i < 6; ++i)
    EXPECT_NEAR(w[i], w0[i] - total, 1e-6);
  EXPECT_EQ(logged, (std::vector<int64_t>{1, 2, 4, 5}));
  std::ifstream metrics(options.metricsPath);
  std::string line;
  std::vector<int64_t> lines;
  while (std::getline(metrics, line)) {
    auto record = nlohmann::json::parse(line);
    lines.push_back(record["step"]);
    EXPECT_TRUE(record.contains("loss") && record.contains("learning_rate") &&
                record.contains("tokens_per_second"));
  }
  EXPECT_EQ(lines, logged);
}

TEST_F(TrainerTest, StopsOnANonFiniteLoss) {
  Trainer trainer(step);
  ASSERT_TRUE(trainer.initialize("", 1).ok());
  step.poisonAt = 3;
  TrainOptions options;
  options.maxSteps = 10;
  Batcher data = batcher();
  Status status = trainer.train(data, options);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("at step 3"), std::string::npos)
      << status.message();
  EXPECT_EQ(step.steps.size(), 3u);
}

TEST_F(TrainerTest, ExportsPeftAdapterAndMergedModel) {
  Trainer trainer(step);
  ASSERT_TRUE(trainer.initialize("", 1).ok());
  AdapterConfig config;
  config.rank = 2;
  config.alpha = 8;
  std::string out = (dir / "out").string();
  ASSERT_TRUE(trainer.exportPeftAdapter(out, config).ok());
  std::unique_ptr<SafetensorsFile> adapter;
  ASSERT_TRUE(
      SafetensorsFile::open(out + "/adapter_model.safetensors", adapter).ok());
  ASSERT_EQ(adapter->tensors().size(), 2u);
  ASSERT_NE(adapter->find("base_model.model.q.lora_A.weight"), nullptr);
  EXPECT_EQ(adapter->find("base_model.model.q.lora_B.weight")->shape,
            (std::vector<int64_t>{4, 2}));
  std::ifstream json(out + "/adapter_config.json");
  nlohmann::json adapterConfig = nlohmann::json::parse(json);
  EXPECT_EQ(adapterConfig["peft_type"], "LORA");
  EXPECT_EQ(adapterConfig["r"], 2);
  EXPECT_EQ(adapterConfig["lora_alpha"], 8.0);
  EXPECT_EQ(adapterConfig["target_modules"], nlohmann::json({"q"}));

  // B is zero after initialization; the merge must use whatever B holds,
  // so check it against W + s·B·A with the values the trainer has.
  std::string merged = (dir / "merged").string();
  ASSERT_TRUE(trainer.exportMergedModel(merged, config).ok());
  std::unique_ptr<SafetensorsFile> model;
  ASSERT_TRUE(SafetensorsFile::open(merged + "/model.safetensors", model).ok());
  EXPECT_EQ(model->find("q.lora_A.weight"), nullptr);
  std::vector<float> q;
  ASSERT_TRUE(model->readF32("q.weight", q, {4, 3}).ok());
  EXPECT_EQ(q, read(trainer, "q.weight")) << "B = 0: the merge changes nothing";
}

TEST_F(TrainerTest, MergeAddsScaledLowRankProduct) {
  // A base weight and an adapter with non-zero B, loaded from a file.
  std::vector<float> w(6, 0.0f), norm(3, 1.0f), big(64 * 64, 0.0f),
      q = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
  std::string base = (dir / "base.safetensors").string();
  ASSERT_TRUE(
      writeSafetensors(base, {{"w.weight", DType::F32, {2, 3}, w.data()},
                              {"norm.weight", DType::F32, {3}, norm.data()},
                              {"big.weight", DType::F32, {64, 64}, big.data()},
                              {"q.weight", DType::F32, {4, 3}, q.data()}})
          .ok());
  // A stand-in step whose result sets B to ones, to merge something.
  class SettingB : public FakeStep {
  public:
    SettingB() { outs.push_back({"q.lora_B.weight", {4, 2}, DType::F32, ""}); }
    Status run(const std::vector<void *> &a,
               const std::vector<void *> &r) override {
      LORA_RETURN_IF_ERROR(FakeStep::run(a, r));
      std::fill_n(static_cast<float *>(r[3]), 8, 1.0f);
      return Status::success();
    }
  } settingB;
  Trainer trainer(settingB);
  ASSERT_TRUE(trainer.initialize(base, 3).ok());
  TrainOptions options;
  options.maxSteps = 1;
  Batcher data = batcher();
  ASSERT_TRUE(trainer.train(data, options).ok());
  std::vector<float> a = read(trainer, "q.lora_A.weight");
  for (bool rsLora : {false, true}) {
    AdapterConfig config;
    config.rank = 2;
    config.alpha = 8;
    config.useRsLora = rsLora;
    double s = rsLora ? 8 / std::sqrt(2.0) : 4.0;
    std::string merged = (dir / (rsLora ? "rs" : "plain")).string();
    ASSERT_TRUE(trainer.exportMergedModel(merged, config).ok());
    std::unique_ptr<SafetensorsFile> model;
    ASSERT_TRUE(
        SafetensorsFile::open(merged + "/model.safetensors", model).ok());
    std::vector<float> got;
    ASSERT_TRUE(model->readF32("q.weight", got, {4, 3}).ok());
    for (int o = 0; o < 4; ++o)
      for (int i = 0; i < 3; ++i) // B = 1: (B·A)[o, i] = A[0, i] + A[1, i]
        EXPECT_NEAR(got[o * 3 + i], q[o * 3 + i] + s * (a[i] + a[3 + i]), 1e-5);
  }
}

} // namespace

namespace {

TEST_F(TrainerTest, CheckpointsAreAtomicAndChecked) {
  Trainer trainer(step);
  ASSERT_TRUE(trainer.initialize("", 1).ok());
  Batcher data = batcher();
  data.next();
  std::string root = dir.string();
  ASSERT_TRUE(trainer.saveCheckpoint(root + "/checkpoint-3", 3, 9, data).ok());
  // A checkpoint that was being written when the run died: never loaded.
  fs::create_directories(root + "/checkpoint-5.tmp");
  std::ofstream(root + "/checkpoint-5.tmp/trainer_state.json") << "{";
  EXPECT_EQ(Trainer::latestCheckpoint(root), root + "/checkpoint-3");
  Trainer::CheckpointState state;
  ASSERT_TRUE(Trainer::readCheckpointState(root + "/checkpoint-3", state).ok());
  EXPECT_EQ(state.step, 3);
  EXPECT_EQ(state.seed, 9u);
  EXPECT_EQ(state.epoch, data.epoch());
  EXPECT_EQ(state.position, data.position());
  EXPECT_FALSE(fs::exists(root + "/checkpoint-3.tmp"));

  // Only trainable state is stored: w and nothing frozen.
  std::unique_ptr<SafetensorsFile> file;
  ASSERT_TRUE(
      SafetensorsFile::open(root + "/checkpoint-3/state.safetensors", file)
          .ok());
  ASSERT_EQ(file->tensors().size(), 1u);
  EXPECT_EQ(file->tensors()[0].name, "w.weight");

  // Restoring brings w back.
  std::vector<float> saved = read(trainer, "w.weight");
  Trainer other(step);
  ASSERT_TRUE(other.initialize("", 2).ok());
  ASSERT_TRUE(other.loadCheckpoint(root + "/checkpoint-3").ok());
  EXPECT_EQ(read(other, "w.weight"), saved);

  // A checkpoint of another model is refused, naming the tensor.
  std::vector<float> wrong(4, 0.0f);
  fs::create_directories(root + "/checkpoint-7");
  ASSERT_TRUE(writeSafetensors(root + "/checkpoint-7/state.safetensors",
                               {{"w.weight", DType::F32, {4}, wrong.data()}})
                  .ok());
  Status status = other.loadCheckpoint(root + "/checkpoint-7");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("'w.weight' is missing or has another shape"),
            std::string::npos)
      << status.message();
  status = Trainer::readCheckpointState(root + "/checkpoint-5.tmp", state);
  EXPECT_NE(status.message().find("malformed"), std::string::npos)
      << status.message();
}

} // namespace
