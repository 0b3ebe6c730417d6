//===- Trainer.h - the training loop around a compiled step -----*- C++ -*-===//
//
// The trainer owns every buffer of the step: parameters (loaded or
// initialized), AdamW moments, the batch, the learning rate and the step
// count. It binds them to the step's arguments by name, runs the step, and
// feeds each result back into the argument of the same name.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_TRAINER_H
#define LORA_RUNTIME_TRAINER_H

#include "lora/runtime/DType.h"
#include "lora/runtime/Data.h"
#include "lora/runtime/Schedule.h"
#include "lora/runtime/Status.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lora::runtime {

/// An argument or result of a compiled step.
struct BufferInfo {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
  /// "frozen", "lora" or "full" for parameters, "" otherwise.
  std::string role;
  int64_t numElements() const;
};

/// How the trainer lays a step's buffers out in one block: each at a
/// multiple of 64 bytes, in order, so that a step's arguments lie back to
/// back (lora-adjacent-arguments reads [W; A] in place when they do).
/// Returns each buffer's offset and sets `total` to the block's size.
std::vector<size_t> bufferOffsets(const std::vector<BufferInfo> &buffers,
                                  size_t &total);

/// A compiled training step: the JIT of lora-run, or a loaded artifact.
class CompiledStep {
public:
  virtual ~CompiledStep() = default;
  virtual const std::vector<BufferInfo> &arguments() const = 0;
  virtual const std::vector<BufferInfo> &results() const = 0;
  /// One buffer per argument and per result, dense row-major.
  virtual Status run(const std::vector<void *> &arguments,
                     const std::vector<void *> &results) = 0;
  /// Bytes of the static arena the compiler planned for the step's
  /// temporaries (0: not planned).
  virtual uint64_t plannedArenaBytes() const { return 0; }
  /// Whether the step reduces its trainable gradients over data-parallel
  /// ranks (compiled with lora-data-parallel).
  virtual bool reducesGradients() const { return false; }
  /// Whether the step runs on a CUDA GPU: its buffers then live in managed
  /// memory, which its kernels and its host code both reach.
  virtual bool runsOnGpu() const { return false; }
};

/// What an adapter was attached with, for adapter_config.json.
struct AdapterConfig {
  int64_t rank = 8;
  double alpha = 16;
  bool useRsLora = false;
  double dropout = 0;
  std::string baseModel;

  double scale() const;
};

class Communicator;

/// A deliberate fault, for the fault-tolerance tests (LORA_TEST_FAULT).
struct FaultInjection {
  /// "" (none), "kill" (SIGKILL itself) or "hang" (stop calling
  /// collectives and sleep), on rank `rank` at step `step`.
  std::string action;
  int rank = 0;
  int64_t step = 0;
};

struct TrainOptions {
  int64_t maxSteps = 100;
  Schedule schedule;
  uint64_t seed = 42;
  int64_t loggingSteps = 10;
  /// Where metrics.jsonl goes; "" for none.
  std::string metricsPath;
  /// Live progress line (a terminal) or periodic plain lines.
  bool interactive = false;
  /// Write <checkpointDir>/checkpoint-<step> every `saveSteps` steps (0:
  /// never) and at the end; keep the newest `saveTotalLimit` (0: all).
  std::string checkpointDir;
  int64_t saveSteps = 0;
  int64_t saveTotalLimit = 0;
  /// The last step already done (a resumed run starts after it).
  int64_t startStep = 0;
  /// End this run after this step (checkpointing there) although the
  /// schedule runs to maxSteps: a run cut into time slices. 0: maxSteps.
  int64_t stopAtStep = 0;
  /// Data parallelism (nullptr: one process). The batcher must be sharded
  /// alike. Only rank 0 logs and writes checkpoints; the logged loss is
  /// the global batch's.
  Communicator *communicator = nullptr;
  /// Gradient bucket size for the all-reduce.
  size_t bucketBytes = size_t(4) << 20;
  FaultInjection fault;
};

/// One logged step.
struct StepMetrics {
  int64_t step = 0;
  double loss = 0, gradNorm = 0, learningRate = 0, tokensPerSecond = 0,
         elapsedSeconds = 0;
};

class Trainer {
public:
  explicit Trainer(CompiledStep &step);

  /// The step's memory as planned before it runs: the arguments
  /// (parameters, optimizer state, batch), the results, and the static
  /// activation arena the compiler planned.
  struct MemoryPlan {
    uint64_t argumentBytes = 0, resultBytes = 0, activationBytes = 0;
    uint64_t total() const {
      return argumentBytes + resultBytes + activationBytes;
    }
  };
  MemoryPlan plannedMemory() const {
    return {argumentBytes, resultBytes, step.plannedArenaBytes()};
  }

  /// Base weights from a safetensors file, a sharded index or a folder
  /// holding either ("" for a seeded initialization:
  /// normal(0, 0.02), norm weights 1); adapters as PEFT initializes them
  /// (A kaiming-uniform with a = sqrt(5), B zeros); moments zero.
  Status initialize(const std::string &baseWeights, uint64_t seed);

  /// Replaces the adapter parameters by those of a PEFT adapter folder
  /// (adapter_model.safetensors, keys base_model.model.<name>).
  Status loadPeftAdapter(const std::string &directory);

  /// With a loss-only step (no optimizer): the mean loss over every counted
  /// token of `examples`, each example once.
  struct Evaluation {
    double loss = 0, perplexity = 0;
    int64_t tokens = 0, examples = 0;
  };
  Status evaluate(const std::vector<Example> &examples, int64_t batchSize,
                  int64_t sequenceLength, Evaluation &result);

  /// With a logits step of batch 1: appends up to `maxNewTokens` tokens to
  /// `tokens` (stopping at end-of-sequence), greedily when `temperature`
  /// is 0, else sampling from softmax(logits / temperature) with `seed`.
  Status generate(std::vector<int32_t> &tokens, int64_t maxNewTokens,
                  double temperature, uint64_t seed);

  /// Runs `options.maxSteps` steps on `batcher`'s batches; `onLog` sees
  /// every logged step.
  Status train(Batcher &batcher, const TrainOptions &options,
               const std::function<void(const StepMetrics &)> &onLog = {});

  /// Writes the training state to `directory` atomically (a temporary
  /// folder, then a rename): every trainable parameter and moment
  /// (state.safetensors) and the step, seed and data position
  /// (trainer_state.json).
  Status saveCheckpoint(const std::string &directory, int64_t step,
                        uint64_t seed, const Batcher &batcher) const;

  /// What trainer_state.json of a checkpoint holds.
  struct CheckpointState {
    int64_t step = 0;
    uint64_t seed = 0;
    int64_t epoch = 0, position = 0;
  };
  /// Reads trainer_state.json of checkpoint `directory`.
  static Status readCheckpointState(const std::string &directory,
                                    CheckpointState &state);
  /// Restores the trainable parameters and moments of a checkpoint written
  /// by saveCheckpoint (after initialize(), which sets the frozen ones).
  Status loadCheckpoint(const std::string &directory);

  /// The newest complete checkpoint-<N> folder of `directory`, or "".
  static std::string latestCheckpoint(const std::string &directory);

  /// PEFT's adapter_config.json + adapter_model.safetensors in `directory`.
  Status exportPeftAdapter(const std::string &directory,
                           const AdapterConfig &config) const;

  /// Every base weight, with adapters merged in (W + s·B·A), as a Hugging
  /// Face model.safetensors in `directory`.
  Status exportMergedModel(const std::string &directory,
                           const AdapterConfig &config) const;

  /// Data parallelism: what the last train() spent reducing gradients
  /// (per step: buckets and bytes; in all: seconds the collectives ran and
  /// seconds the steps waited for them).
  struct ReductionStats {
    int64_t steps = 0;
    size_t buckets = 0, bytes = 0;
    double collectiveSeconds = 0, waitedSeconds = 0;
  };
  const ReductionStats &reductionStats() const { return reduction; }

  /// Data parallelism: whether every rank holds the same trainable
  /// parameters and moments (a checksum compared over the ranks); an
  /// error naming this rank when not.
  Status checkRanksAgree(Communicator &communicator) const;

  /// Copies the current value of float argument `name` (a parameter, a
  /// moment; bf16 ones widened) into `out`; false when there is no such
  /// argument or it holds integers.
  bool read(const std::string &name, std::vector<float> &out) const;

private:
  /// A buffer within one of the arenas.
  struct Span {
    uint8_t *pointer = nullptr;
    size_t length = 0;
    uint8_t *data() const { return pointer; }
    size_t size() const { return length; }
  };
  struct FreeDeleter {
    bool gpu; // value-initialized: false
    void operator()(uint8_t *p) const;
  };

  /// The buffer of argument `name`, or nullptr.
  Span *argument(const char *name);
  /// Runs the step on the current buffers.
  Status runStep();

  CompiledStep &step;
  /// Two arenas, one allocation each: the arguments (parameters, moments,
  /// the batch) and the results. After a step, a result and the argument it
  /// feeds trade places (a pointer swap, no copy).
  std::unique_ptr<uint8_t, FreeDeleter> argumentArena, resultArena;
  uint64_t argumentBytes = 0, resultBytes = 0;
  std::vector<Span> argumentData, resultData;
  std::map<std::string, size_t> argumentIndex;
  ReductionStats reduction;
};

} // namespace lora::runtime

#endif // LORA_RUNTIME_TRAINER_H
