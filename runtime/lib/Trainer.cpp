//===- Trainer.cpp - the training loop around a compiled step -------------===//

#include "lora/runtime/Trainer.h"

#include "lora/runtime/Collective.h"
#include "lora/runtime/Cuda.h"

#include "lora/runtime/Dropout.h"
#include "lora/runtime/Safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

namespace lora::runtime {

int64_t BufferInfo::numElements() const {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

std::vector<size_t> bufferOffsets(const std::vector<BufferInfo> &buffers,
                                  size_t &total) {
  std::vector<size_t> offsets;
  total = 0;
  for (const BufferInfo &info : buffers) {
    offsets.push_back(total);
    size_t bytes = size_t(info.numElements()) * dtypeSize(info.dtype);
    total += (bytes + 63) / 64 * 64;
  }
  return offsets;
}

double AdapterConfig::scale() const {
  return useRsLora ? alpha / std::sqrt(double(rank)) : alpha / double(rank);
}

namespace {

bool endsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The key of tensor `name`'s random stream: element `index` of it draws
/// dropoutUniform(key, index), independent of initialization order and of
/// the threads that fill the tensor.
int64_t streamKey(uint64_t seed, const std::string &name) {
  uint64_t key = seed;
  for (unsigned char c : name)
    key = splitmix64(key ^ c);
  return int64_t(key);
}

/// data[e] = value(e) for e in [0, count), on the runtime's OpenMP threads
/// where it has them: an 8B model's 8e9 draws take minutes on one core.
template <typename Element, typename Value>
void fillElements(Element *data, int64_t count, Value value) {
#ifdef LORA_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
  for (int64_t e = 0; e < count; ++e)
    data[e] = value(e);
}

} // namespace

void Trainer::FreeDeleter::operator()(uint8_t *p) const {
  if (gpu)
    cudaFreeShared(p);
  else
    std::free(p);
}

Trainer::Trainer(CompiledStep &step) : step(step) {
  // Lays `buffers` out in one 64-byte aligned, zeroed allocation (managed
  // GPU memory for a GPU step; the tool checked for a GPU before).
  bool gpu = step.runsOnGpu();
  auto layout = [gpu](const std::vector<BufferInfo> &buffers,
                      std::unique_ptr<uint8_t, FreeDeleter> &arena,
                      std::vector<Span> &spans, uint64_t &bytesOut) {
    size_t total = 0;
    std::vector<size_t> offsets = bufferOffsets(buffers, total);
    bytesOut = total;
    arena = std::unique_ptr<uint8_t, FreeDeleter>(
        static_cast<uint8_t *>(gpu ? cudaAllocateShared(total + 64)
                                   : std::aligned_alloc(64, total + 64)),
        FreeDeleter{gpu});
    if (!arena) {
      std::fprintf(stderr,
                   "lora: cannot allocate %zu bytes for the step's "
                   "buffers\n",
                   total + 64);
      std::exit(1);
    }
    std::memset(arena.get(), 0, total + 64);
    for (size_t i = 0; i < buffers.size(); ++i)
      spans.push_back(
          {arena.get() + offsets[i],
           size_t(buffers[i].numElements()) * dtypeSize(buffers[i].dtype)});
  };
  layout(step.arguments(), argumentArena, argumentData, argumentBytes);
  layout(step.results(), resultArena, resultData, resultBytes);
  for (size_t i = 0; i < step.arguments().size(); ++i)
    argumentIndex[step.arguments()[i].name] = i;
}

Status Trainer::initialize(const std::string &baseWeights, uint64_t seed) {
  std::unique_ptr<ModelWeights> base;
  if (!baseWeights.empty())
    LORA_RETURN_IF_ERROR(ModelWeights::open(baseWeights, base));
  for (size_t i = 0; i < argumentData.size(); ++i) {
    const BufferInfo &info = step.arguments()[i];
    if (info.role.empty())
      continue; // batches, moments, lr, step: set elsewhere or zero
    // Frozen parameters may be stored in bf16 (lora-store-frozen-bf16):
    // made in f32 as below, then rounded to nearest even at the end.
    bool bf16 = info.dtype == DType::BF16 && info.role == "frozen";
    if (info.dtype != DType::F32 && !bf16)
      return Status::error("parameter '" + info.name + "' is " +
                           std::string(dtypeName(info.dtype)) +
                           ": only f32, or bf16 for a frozen one");
    int64_t count = info.numElements();
    std::vector<float> staging(bf16 ? count : 0);
    auto *data = bf16 ? staging.data()
                      : reinterpret_cast<float *>(argumentData[i].data());
    if (info.role == "lora") {
      if (endsWith(info.name, "lora_B.weight")) {
        std::fill(data, data + count, 0.0f);
      } else {
        // kaiming_uniform_(a = sqrt(5)): bound = 1 / sqrt(fan_in).
        double bound = 1.0 / std::sqrt(double(info.shape.back()));
        int64_t key = streamKey(seed, info.name);
        fillElements(data, count, [&](int64_t e) {
          return float((2 * dropoutUniform(key, e) - 1) * bound);
        });
      }
      continue;
    }
    if (base) {
      std::vector<float> values;
      LORA_RETURN_IF_ERROR(base->readF32(info.name, values, info.shape));
      std::memcpy(data, values.data(), count * sizeof(float));
    } else if (info.shape.size() == 1) {
      std::fill(data, data + count, 1.0f); // norm weights
    } else {
      // normal(0, 0.02) by Box-Muller, as transformers' initializer_range.
      int64_t key = streamKey(seed, info.name);
      fillElements(data, count, [&](int64_t e) {
        double u1 = dropoutUniform(key, 2 * e) + 1e-12;
        double u2 = dropoutUniform(key, 2 * e + 1);
        return float(0.02 * std::sqrt(-2 * std::log(u1)) *
                     std::cos(2 * M_PI * u2));
      });
    }
    if (bf16)
      fillElements(reinterpret_cast<uint16_t *>(argumentData[i].data()),
                   count, [&](int64_t e) { return f32ToBF16(data[e]); });
  }
  return Status::success();
}

bool Trainer::read(const std::string &name, std::vector<float> &out) const {
  auto it = argumentIndex.find(name);
  if (it == argumentIndex.end())
    return false;
  const BufferInfo &info = step.arguments()[it->second];
  out.resize(size_t(info.numElements()));
  return widenToF32(info.dtype, argumentData[it->second].data(), out.size(),
                    out.data());
}

Trainer::Span *Trainer::argument(const char *name) {
  auto it = argumentIndex.find(name);
  return it == argumentIndex.end() ? nullptr : &argumentData[it->second];
}

Status Trainer::runStep() {
  std::vector<void *> arguments, results;
  for (Span &data : argumentData)
    arguments.push_back(data.data());
  for (Span &data : resultData)
    results.push_back(data.data());
  return step.run(arguments, results);
}

Status Trainer::train(Batcher &batcher, const TrainOptions &options,
                      const std::function<void(const StepMetrics &)> &onLog) {
  Span *ids = argument("input_ids"), *positions = argument("positions"),
       *labels = argument("labels"), *lr = argument("lr"),
       *stepCount = argument("step"), *dropoutSeed = argument("dropout_seed");
  if (!ids || !positions || !labels || !lr || !stepCount)
    return Status::error("the compiled step lacks input_ids, positions, "
                         "labels, lr or step: is it a training step?");
  // Each result feeds the argument of the same name; loss and grad_norm
  // are read.
  std::vector<int64_t> feedsArgument;
  int64_t lossResult = -1, normResult = -1;
  for (size_t r = 0; r < step.results().size(); ++r) {
    const std::string &name = step.results()[r].name;
    auto it = argumentIndex.find(name);
    feedsArgument.push_back(it == argumentIndex.end() ? -1
                                                      : int64_t(it->second));
    if (name == "loss")
      lossResult = int64_t(r);
    if (name == "grad_norm")
      normResult = int64_t(r);
  }
  if (lossResult < 0)
    return Status::error("the compiled step returns no 'loss'");
  std::vector<bool> copiesBack(feedsArgument.size(), false);
  bool copiesOnGpu = false;
  for (size_t r = 0; r < feedsArgument.size(); ++r) {
    copiesBack[r] = feedsArgument[r] >= 0 &&
                    step.arguments()[feedsArgument[r]].role == "lora";
    copiesOnGpu = copiesOnGpu || (copiesBack[r] && step.runsOnGpu());
  }
  // A GPU step's parameters were written on the host (initialization, a
  // checkpoint): moved to the GPU once, not page by page in the first
  // kernels that read them.
  if (step.runsOnGpu()) {
    cudaPrefetchToGpu(argumentArena.get(), argumentBytes);
    cudaPrefetchToGpu(resultArena.get(), resultBytes);
  }

  // Data parallelism: the compiled step's all-reduce calls go to this
  // reducer while training runs; rank 0 alone logs and writes.
  Communicator *communicator = options.communicator;
  bool distributed = communicator && communicator->size() > 1;
  int worldSize = distributed ? communicator->size() : 1;
  int rank = distributed ? communicator->rank() : 0;
  bool lead = rank == 0;
  std::FILE *metrics = nullptr;
  if (!options.metricsPath.empty() && lead) {
    metrics = std::fopen(options.metricsPath.c_str(), "a");
    if (!metrics)
      return Status::error(options.metricsPath + ": cannot open for writing");
  }
  std::unique_ptr<GradientReducer> reducer;
  if (distributed)
    reducer =
        std::make_unique<GradientReducer>(*communicator, options.bucketBytes);
  struct Installed {
    explicit Installed(GradientReducer *r) { installGradientReducer(r); }
    ~Installed() { installGradientReducer(nullptr); }
  } installed(reducer.get());

  auto start = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  auto save = [&](int64_t t) -> Status {
    if (options.checkpointDir.empty() || !lead)
      return Status::success();
    LORA_RETURN_IF_ERROR(saveCheckpoint(options.checkpointDir + "/checkpoint-" +
                                            std::to_string(t),
                                        t, options.seed, batcher));
    if (options.saveTotalLimit > 0) {
      // Oldest first: checkpoint-<N> sorted by N.
      std::vector<std::pair<int64_t, std::filesystem::path>> all;
      for (const auto &entry :
           std::filesystem::directory_iterator(options.checkpointDir)) {
        std::string name = entry.path().filename().string();
        if (name.rfind("checkpoint-", 0) == 0 &&
            name.find(".tmp") == std::string::npos)
          all.push_back({std::stoll(name.substr(11)), entry.path()});
      }
      std::sort(all.begin(), all.end());
      for (size_t i = 0; i + size_t(options.saveTotalLimit) < all.size(); ++i)
        std::filesystem::remove_all(all[i].second);
    }
    return Status::success();
  };
  int64_t lastStep = options.stopAtStep > 0
                         ? std::min(options.stopAtStep, options.maxSteps)
                         : options.maxSteps;
  for (int64_t t = options.startStep + 1; t <= lastStep; ++t) {
    Batch batch = batcher.next();
    std::memcpy(ids->data(), batch.inputIds.data(), ids->size());
    std::memcpy(positions->data(), batch.positions.data(), positions->size());
    std::memcpy(labels->data(), batch.labels.data(), labels->size());
    float rate = float(options.schedule.at(t - 1));
    std::memcpy(lr->data(), &rate, sizeof rate);
    int64_t count = t;
    std::memcpy(stepCount->data(), &count, sizeof count);
    if (dropoutSeed) {
      // A new mask every step, reproducible from the seed.
      // Ranks draw different masks (rank 0 the one-process mask).
      int64_t seed = int64_t(
          splitmix64(options.seed ^ uint64_t(t) ^ (uint64_t(rank) << 40)));
      std::memcpy(dropoutSeed->data(), &seed, sizeof seed);
    }
    const FaultInjection &fault = options.fault;
    if (!fault.action.empty() && fault.step == t && fault.rank == rank) {
      std::fprintf(stderr, "LORA_TEST_FAULT: rank %d: %s at step %lld\n",
                   fault.rank, fault.action.c_str(), (long long)t);
      std::fflush(stderr);
      if (fault.action == "kill")
        std::raise(SIGKILL);
      while (true)
        std::this_thread::sleep_for(std::chrono::seconds(60));
    }
    // Each rank's gradient weighs its share of the global batch's counted
    // tokens: the sum is the gradient of the global mean loss.
    double weight = 1;
    if (distributed) {
      communicator->setStep(t);
      double counted = double(batch.countedTokens);
      communicator->sum(&counted, 1, "token count all-reduce");
      weight =
          counted > 0 ? double(batch.countedTokens) / counted : 1.0 / worldSize;
      reducer->beginStep(t, float(weight));
    }
    LORA_RETURN_IF_ERROR(runStep());
    if (distributed)
      LORA_RETURN_IF_ERROR(reducer->endStep());
    if (step.runsOnGpu())
      cudaProfileStep(t);
    for (size_t r = 0; r < resultData.size(); ++r) {
      if (feedsArgument[r] < 0)
        continue;
      Span &result = resultData[r], &next = argumentData[feedsArgument[r]];
      // Adapter weights go back where they were: right after their frozen
      // weight, where the step reads [W; A] without copying it
      // (lora-adjacent-arguments). They are small; other results (full
      // weights, moments) trade buffers instead. A GPU step's buffers are
      // managed memory, which a host copy would pull to the host: the GPU
      // copies them, after the step's kernels on its stream.
      if (!copiesBack[r])
        std::swap(result, next);
      else if (step.runsOnGpu())
        cudaCopyOnStepStream(next.data(), result.data(), next.size());
      else
        std::memcpy(next.data(), result.data(), next.size());
    }
    // The host reads adapters (checkpoints, exports) only after the copies.
    if (copiesOnGpu)
      cudaSynchronizeStepStream();
    tokens += int64_t(batch.inputIds.size()) * worldSize;

    float loss, norm = 0;
    std::memcpy(&loss, resultData[lossResult].data(), sizeof loss);
    if (distributed) {
      double global = double(loss) * weight;
      communicator->sum(&global, 1, "loss all-reduce");
      loss = float(global);
    }
    if (normResult >= 0)
      std::memcpy(&norm, resultData[normResult].data(), sizeof norm);
    if (!std::isfinite(loss)) {
      if (metrics)
        std::fclose(metrics);
      return Status::error("the loss is " + std::to_string(loss) + " at step " +
                           std::to_string(t) +
                           "; lower --learning_rate or check the data");
    }
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    StepMetrics m{t,      loss, norm, rate, tokens / std::max(elapsed, 1e-9),
                  elapsed};
    bool logNow = t % std::max<int64_t>(1, options.loggingSteps) == 0 ||
                  t == lastStep || t == options.startStep + 1;
    if (lead && (options.interactive || logNow)) {
      double eta = elapsed / double(t - options.startStep) *
                   double(options.maxSteps - t);
      std::fprintf(stderr,
                   "%sstep %lld/%lld  loss %.4f  grad_norm %.3f  lr %.2e  "
                   "%.0f tok/s  ETA %.0fs%s",
                   options.interactive ? "\r" : "", (long long)t,
                   (long long)options.maxSteps, loss, norm, rate,
                   m.tokensPerSecond, eta,
                   options.interactive && t < lastStep ? "" : "\n");
    }
    if (logNow) {
      if (metrics) {
        nlohmann::json line = {{"step", t},
                               {"loss", loss},
                               {"grad_norm", norm},
                               {"learning_rate", rate},
                               {"tokens_per_second", m.tokensPerSecond},
                               {"elapsed_s", elapsed}};
        std::fprintf(metrics, "%s\n", line.dump().c_str());
        std::fflush(metrics);
      }
      if (onLog)
        onLog(m);
    }
    if ((options.saveSteps > 0 && t % options.saveSteps == 0) ||
        t == lastStep) {
      Status saved = save(t);
      if (!saved.ok()) {
        if (metrics)
          std::fclose(metrics);
        return saved;
      }
    }
  }
  if (metrics)
    std::fclose(metrics);
  if (reducer) {
    GradientReducer::Overlap overlap = reducer->overlap();
    reduction = {overlap.steps, reducer->bucketsLastStep(),
                 reducer->bytesLastStep(), overlap.collectiveSeconds,
                 overlap.waitedSeconds};
  }
  return Status::success();
}

Status Trainer::checkRanksAgree(Communicator &communicator) const {
  // FNV-1a over the training state's bytes.
  uint64_t hash = 0xcbf29ce484222325ull;
  for (const BufferInfo &result : step.results()) {
    auto it = argumentIndex.find(result.name);
    if (it == argumentIndex.end())
      continue;
    const Span &data = argumentData[it->second];
    for (size_t i = 0; i < data.size(); ++i)
      hash = (hash ^ data.data()[i]) * 0x100000001b3ull;
  }
  // Sixteen-bit pieces and their squares, summed exactly in doubles: every
  // rank holds the same hash exactly when each piece's sum is n times it
  // and so is its square's (no spread).
  double sums[8];
  for (int i = 0; i < 4; ++i) {
    double piece = double((hash >> (16 * i)) & 0xffff);
    sums[i] = piece;
    sums[4 + i] = piece * piece;
  }
  double expected[8];
  std::copy(sums, sums + 8, expected);
  communicator.sum(sums, 8, "parameter checksum all-reduce");
  for (int i = 0; i < 8; ++i)
    if (sums[i] != expected[i] * communicator.size())
      return Status::error(
          "rank " + std::to_string(communicator.rank()) +
          ": the trainable parameters and optimizer state differ between "
          "the ranks after training");
  return Status::success();
}

Status Trainer::saveCheckpoint(const std::string &directory, int64_t step,
                               uint64_t seed, const Batcher &batcher) const {
  namespace fs = std::filesystem;
  // The state: every argument a result feeds (trainable parameters and
  // their moments).
  std::vector<TensorToWrite> tensors;
  for (const BufferInfo &result : this->step.results()) {
    auto it = argumentIndex.find(result.name);
    if (it == argumentIndex.end())
      continue;
    const BufferInfo &info = this->step.arguments()[it->second];
    tensors.push_back(
        {info.name, info.dtype, info.shape, argumentData[it->second].data()});
  }
  std::string temporary = directory + ".tmp";
  std::error_code error;
  fs::remove_all(temporary, error);
  fs::create_directories(temporary, error);
  if (error)
    return Status::error(temporary + ": cannot create: " + error.message());
  LORA_RETURN_IF_ERROR(
      writeSafetensors(temporary + "/state.safetensors", tensors));
  nlohmann::json state = {{"global_step", step},
                          {"seed", seed},
                          {"epoch", batcher.epoch()},
                          {"position", batcher.position()}};
  {
    std::ofstream out(temporary + "/trainer_state.json");
    out << state.dump(2) << "\n";
    if (!out)
      return Status::error(temporary + "/trainer_state.json: write failed");
  }
  fs::remove_all(directory, error);
  fs::rename(temporary, directory, error);
  if (error)
    return Status::error(directory +
                         ": cannot move the checkpoint into "
                         "place: " +
                         error.message());
  return Status::success();
}

Status Trainer::readCheckpointState(const std::string &directory,
                                    CheckpointState &state) {
  std::ifstream in(directory + "/trainer_state.json");
  if (!in)
    return Status::error(directory +
                         ": not a checkpoint (no trainer_state.json)");
  nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
  auto has = [&](const char *key) {
    return json.is_object() && json.contains(key) &&
           json[key].is_number_integer();
  };
  if (!has("global_step") || !has("seed") || !has("epoch") || !has("position"))
    return Status::error(directory + "/trainer_state.json: malformed");
  state.step = json["global_step"].get<int64_t>();
  state.seed = json["seed"].get<uint64_t>();
  state.epoch = json["epoch"].get<int64_t>();
  state.position = json["position"].get<int64_t>();
  return Status::success();
}

Status Trainer::loadCheckpoint(const std::string &directory) {
  std::unique_ptr<SafetensorsFile> file;
  LORA_RETURN_IF_ERROR(
      SafetensorsFile::open(directory + "/state.safetensors", file));
  for (const BufferInfo &result : this->step.results()) {
    auto it = argumentIndex.find(result.name);
    if (it == argumentIndex.end())
      continue;
    const BufferInfo &info = this->step.arguments()[it->second];
    const TensorInfo *saved = file->find(info.name);
    if (!saved || saved->shape != info.shape || saved->dtype != info.dtype)
      return Status::error(directory + "/state.safetensors: tensor '" +
                           info.name +
                           "' is missing or has another shape: the "
                           "checkpoint is from a different model or method");
    std::memcpy(argumentData[it->second].data(), file->bytes(*saved),
                argumentData[it->second].size());
  }
  return Status::success();
}

std::string Trainer::latestCheckpoint(const std::string &directory) {
  std::error_code error;
  int64_t best = -1;
  std::string found;
  for (const auto &entry :
       std::filesystem::directory_iterator(directory, error)) {
    std::string name = entry.path().filename().string();
    // A *.tmp folder is a checkpoint that was never completed.
    if (name.rfind("checkpoint-", 0) != 0 ||
        name.find(".tmp") != std::string::npos ||
        !std::filesystem::exists(entry.path() / "trainer_state.json"))
      continue;
    int64_t step = std::atoll(name.c_str() + 11);
    if (step > best) {
      best = step;
      found = entry.path().string();
    }
  }
  return found;
}

Status Trainer::loadPeftAdapter(const std::string &directory) {
  std::unique_ptr<SafetensorsFile> file;
  LORA_RETURN_IF_ERROR(
      SafetensorsFile::open(directory + "/adapter_model.safetensors", file));
  int64_t loaded = 0;
  for (size_t i = 0; i < argumentData.size(); ++i) {
    const BufferInfo &info = step.arguments()[i];
    if (info.role != "lora")
      continue;
    std::vector<float> values;
    LORA_RETURN_IF_ERROR(
        file->readF32("base_model.model." + info.name, values, info.shape));
    std::memcpy(argumentData[i].data(), values.data(),
                values.size() * sizeof(float));
    ++loaded;
  }
  if (loaded == 0)
    return Status::error(directory + ": the model has no adapter "
                                     "parameters to load");
  return Status::success();
}

Status Trainer::evaluate(const std::vector<Example> &examples,
                         int64_t batchSize, int64_t sequenceLength,
                         Evaluation &result) {
  Span *ids = argument("input_ids"), *positions = argument("positions"),
       *labels = argument("labels");
  if (!ids || !positions || !labels || step.results().size() != 1 ||
      step.results()[0].name != "loss")
    return Status::error("evaluation needs a step from input_ids, positions "
                         "and labels to the loss alone");
  double weighted = 0;
  int64_t tokens = 0;
  for (size_t start = 0; start < examples.size(); start += size_t(batchSize)) {
    std::vector<const Example *> rows;
    for (size_t i = start;
         i < std::min(examples.size(), start + size_t(batchSize)); ++i)
      rows.push_back(&examples[i]);
    Batch batch = makeBatch(rows, batchSize, sequenceLength);
    if (batch.countedTokens == 0)
      continue;
    std::memcpy(ids->data(), batch.inputIds.data(), ids->size());
    std::memcpy(positions->data(), batch.positions.data(), positions->size());
    std::memcpy(labels->data(), batch.labels.data(), labels->size());
    LORA_RETURN_IF_ERROR(runStep());
    float loss;
    std::memcpy(&loss, resultData[0].data(), sizeof loss);
    // The step's loss is the mean over this batch's counted tokens.
    weighted += double(loss) * double(batch.countedTokens);
    tokens += batch.countedTokens;
  }
  if (tokens == 0)
    return Status::error("the evaluation data has no token to score");
  result.tokens = tokens;
  result.examples = int64_t(examples.size());
  result.loss = weighted / double(tokens);
  result.perplexity = std::exp(result.loss);
  return Status::success();
}

Status Trainer::generate(std::vector<int32_t> &tokens, int64_t maxNewTokens,
                         double temperature, uint64_t seed) {
  Span *ids = argument("input_ids"), *positions = argument("positions");
  if (!ids || !positions || step.results().size() != 1 ||
      step.results()[0].name != "logits" ||
      step.results()[0].shape.size() != 3 || step.results()[0].shape[0] != 1)
    return Status::error("generation needs a batch-1 step from input_ids "
                         "and positions to the logits");
  int64_t window = step.results()[0].shape[1];
  int64_t vocab = step.results()[0].shape[2];
  if (tokens.empty())
    return Status::error("generation needs at least one prompt token");
  auto *idData = reinterpret_cast<int32_t *>(ids->data());
  auto *posData = reinterpret_cast<int32_t *>(positions->data());
  for (int64_t t = 0; t < window; ++t)
    posData[t] = int32_t(t);
  const float *logits = reinterpret_cast<const float *>(resultData[0].data());
  for (int64_t n = 0; n < maxNewTokens; ++n) {
    if (int64_t(tokens.size()) >= window)
      break; // the window is full
    // Causal attention: padding after the sequence does not change it.
    std::fill(idData, idData + window, ByteTokenizer::kEndOfSequence);
    std::copy(tokens.begin(), tokens.end(), idData);
    LORA_RETURN_IF_ERROR(runStep());
    const float *row = logits + (int64_t(tokens.size()) - 1) * vocab;
    int32_t next = int32_t(std::max_element(row, row + vocab) - row);
    if (temperature > 0) {
      double maximum = row[next], total = 0;
      std::vector<double> weights(vocab);
      for (int64_t v = 0; v < vocab; ++v)
        total += weights[v] = std::exp((row[v] - maximum) / temperature);
      double u = dropoutUniform(int64_t(seed), tokens.size()) * total;
      for (next = 0; next + 1 < vocab && u >= weights[next]; ++next)
        u -= weights[next];
    }
    tokens.push_back(next);
    if (next == ByteTokenizer::kEndOfSequence)
      break;
  }
  return Status::success();
}

Status Trainer::exportPeftAdapter(const std::string &directory,
                                  const AdapterConfig &config) const {
  std::vector<TensorToWrite> tensors;
  std::set<std::string> modules;
  for (size_t i = 0; i < argumentData.size(); ++i) {
    const BufferInfo &info = step.arguments()[i];
    if (info.role != "lora")
      continue;
    // PEFT's key: base_model.model.<module>.lora_A.weight
    tensors.push_back({"base_model.model." + info.name, DType::F32, info.shape,
                       argumentData[i].data()});
    std::string module = info.name.substr(0, info.name.rfind(".lora_"));
    modules.insert(module.substr(module.rfind('.') + 1));
  }
  if (tensors.empty())
    return Status::error("the model has no adapters to export (method "
                         "full?); export the merged model instead");
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error)
    return Status::error(directory + ": cannot create: " + error.message());
  LORA_RETURN_IF_ERROR(writeSafetensors(
      directory + "/adapter_model.safetensors", tensors, {{"format", "pt"}}));
  nlohmann::json adapter = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", config.baseModel},
      {"r", config.rank},
      {"lora_alpha", config.alpha},
      {"lora_dropout", config.dropout},
      {"use_rslora", config.useRsLora},
      {"target_modules",
       std::vector<std::string>(modules.begin(), modules.end())},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"init_lora_weights", true},
      {"inference_mode", true},
      {"modules_to_save", nullptr},
  };
  std::string path = directory + "/adapter_config.json";
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary);
    out << adapter.dump(2) << "\n";
    if (!out)
      return Status::error(temporary + ": write failed");
  }
  std::filesystem::rename(temporary, path, error);
  if (error)
    return Status::error(path + ": " + error.message());
  return Status::success();
}

Status Trainer::exportMergedModel(const std::string &directory,
                                  const AdapterConfig &config) const {
  std::map<std::string, std::vector<float>> merged;
  std::vector<TensorToWrite> tensors;
  for (size_t i = 0; i < argumentData.size(); ++i) {
    const BufferInfo &info = step.arguments()[i];
    if (info.role == "frozen" || info.role == "full")
      read(info.name, merged[info.name]);
  }
  double scale = config.scale();
  for (const BufferInfo &a : step.arguments()) {
    if (a.role != "lora" || !endsWith(a.name, ".lora_A.weight"))
      continue;
    std::string module =
        a.name.substr(0, a.name.size() - std::strlen(".lora_A.weight"));
    std::vector<float> matrixA, matrixB;
    auto weight = merged.find(module + ".weight");
    if (!read(a.name, matrixA) || !read(module + ".lora_B.weight", matrixB) ||
        weight == merged.end())
      return Status::error("adapter '" + module +
                           "' lacks lora_B or its base weight");
    // W[o, i] += s · Σ_r B[o, r] · A[r, i]
    int64_t rank = a.shape[0], in = a.shape[1];
    int64_t out = int64_t(weight->second.size()) / in;
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        double sum = 0;
        for (int64_t r = 0; r < rank; ++r)
          sum += double(matrixB[o * rank + r]) * matrixA[r * in + i];
        weight->second[o * in + i] += float(scale * sum);
      }
  }
  for (const BufferInfo &info : step.arguments())
    if (merged.count(info.name))
      tensors.push_back(
          {info.name, DType::F32, info.shape, merged[info.name].data()});
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error)
    return Status::error(directory + ": cannot create: " + error.message());
  return writeSafetensors(directory + "/model.safetensors", tensors,
                          {{"format", "pt"}});
}

} // namespace lora::runtime
