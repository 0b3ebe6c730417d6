//===- CompiledStepTest.cpp - compiled CPU step against the evaluator -----===//
//
// The training step of a 2-layer grouped-query Llama, built by the
// frontend and lora-training-pipeline, compiled by lora-cpu-pipeline and
// the JIT, must give what the reference evaluator gives on the same inputs:
// loss, gradient norm, new parameters and new moments, for LoRA (with
// adapter dropout), full and mixed training. The reference runs the step
// without lora-fuse-adapters, lora-fuse-linear-cross-entropy and
// lora-recompute, so the fused (recomputing) compiled step is checked
// against the plain graph.
//
//===----------------------------------------------------------------------===//

#include "../Reference/GradientCheck.h"

#include "lora/Frontend/LlamaConfig.h"
#include "lora/Pipelines/Pipelines.h"
#include "lora/Runner/JitStep.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"

#include <cstring>

using namespace lora::test;
using mlir::lora::reference::Tensor;

namespace {

struct Method {
  const char *name;
  const char *pipeline; // lora-training-pipeline options
  /// Attention through the runtime's flash kernels (the GPU's algorithm).
  bool flashAttention = false;
  /// Tokens per sequence: 256 and more split causal attention into blocks
  /// of 128 query rows.
  int64_t sequence = 6;
  int64_t vocabulary = 24;
  /// Row reductions split as on the GPU, from this many elements (0: not).
  int64_t splitRowsFrom = 0;
};

void PrintTo(const Method &method, std::ostream *os) { *os << method.name; }

class CompiledStepTest : public ::testing::TestWithParam<Method> {};

TEST_P(CompiledStepTest, MatchesTheReferenceEvaluator) {
  auto context = makeContext();
  mlir::lora::LlamaConfig config;
  config.vocabSize = GetParam().vocabulary;
  config.hiddenSize = 16;
  config.intermediateSize = 20;
  config.numHiddenLayers = 2;
  config.numAttentionHeads = 4;
  config.numKeyValueHeads = 2;
  config.headDim = 4;
  config.maxPositionEmbeddings = std::max<int64_t>(32, GetParam().sequence);
  config.rmsNormEps = 1e-5;
  auto buildStep = [&](bool fuse) {
    mlir::OwningOpRef<mlir::ModuleOp> module =
        mlir::ModuleOp::create(mlir::UnknownLoc::get(context.get()));
    EXPECT_FALSE(bool(
        mlir::lora::buildLlamaStep(*module, config, {2, GetParam().sequence})));
    mlir::lora::TrainingPipelineOptions options;
    EXPECT_TRUE(mlir::succeeded(options.parseFromString(GetParam().pipeline)));
    if (!fuse) {
      options.fuseAdapters = false;
      options.fuseLoss = false;
      options.recompute = "none";
    }
    mlir::PassManager pm(context.get());
    EXPECT_TRUE(mlir::succeeded(mlir::lora::buildTrainingPipeline(
        pm, options, [](const llvm::Twine &message) {
          ADD_FAILURE() << message.str();
          return mlir::failure();
        })));
    EXPECT_TRUE(mlir::succeeded(pm.run(*module)));
    return module;
  };
  mlir::OwningOpRef<mlir::ModuleOp> module = buildStep(/*fuse=*/true);
  mlir::OwningOpRef<mlir::ModuleOp> reference = buildStep(/*fuse=*/false);
  ASSERT_FALSE(HasFailure());
  auto evaluated = *reference->getOps<mlir::func::FuncOp>().begin();

  auto compiled =
      mlir::lora::JitStep::compile(*module, "step", GetParam().flashAttention,
                                   /*gpu=*/false, /*bf16=*/false,
                                   GetParam().splitRowsFrom);
  ASSERT_TRUE(bool(compiled)) << llvm::toString(compiled.takeError());
  mlir::lora::JitStep &step = **compiled;

  // Inputs: random weights and moments (second moments positive), a batch
  // with an ignored label, step 3.
  std::mt19937_64 rng(99);
  std::vector<Tensor> args;
  for (const mlir::lora::BufferSpec &spec : step.arguments()) {
    std::string name = spec.name;
    if (name == "input_ids" || name == "labels") {
      Tensor t = Tensor::filled(spec.shape, 0);
      for (double &x : t.data)
        x = double(rng() % config.vocabSize);
      if (name == "labels")
        t.data[1] = -100;
      args.push_back(t);
    } else if (name == "positions") {
      Tensor t = Tensor::filled(spec.shape, 0);
      for (size_t i = 0; i < t.data.size(); ++i)
        t.data[i] = double(i % spec.shape[1]);
      args.push_back(t);
    } else if (name == "lr") {
      args.push_back(Tensor::scalar(1e-3));
    } else if (name == "step") {
      args.push_back(Tensor::scalar(3));
    } else if (name == "dropout_seed") {
      args.push_back(Tensor::scalar(17));
    } else if (llvm::StringRef(name).ends_with(".exp_avg_sq")) {
      Tensor t = randomTensor(spec.shape, rng, 1e-3);
      for (double &x : t.data)
        x = std::fabs(x);
      args.push_back(t);
    } else if (llvm::StringRef(name).ends_with(".exp_avg")) {
      args.push_back(randomTensor(spec.shape, rng, 1e-2));
    } else {
      args.push_back(randomTensor(spec.shape, rng, 0.5));
    }
  }

  // The compiled step's buffers: f32, i32 or i64 as its types say. Two
  // layouts: each argument in a buffer of its own, and all of them one
  // after the other in one 64-byte aligned block as the runtime's Trainer
  // lays them out, where lora-adjacent-arguments reads [W; A] in place
  // instead of copying it. Both must give the reference's results.
  auto fill = [&](size_t i, char *into) {
    const auto &spec = step.arguments()[i];
    const Tensor &value = args[i];
    unsigned width = spec.elementType.getIntOrFloatBitWidth() / 8;
    for (int64_t e = 0; e < spec.numElements(); ++e) {
      char *at = into + e * width;
      if (spec.elementType.isF32()) {
        float x = float(value.data[e]);
        std::memcpy(at, &x, 4);
      } else if (width == 4) {
        int32_t x = int32_t(value.data[e]);
        std::memcpy(at, &x, 4);
      } else {
        int64_t x = int64_t(value.data[e]);
        std::memcpy(at, &x, 8);
      }
    }
  };
  auto bytesOf = [&](size_t i) {
    const auto &spec = step.arguments()[i];
    return size_t(spec.numElements()) *
           (spec.elementType.getIntOrFloatBitWidth() / 8);
  };
  std::vector<std::vector<char>> separate(step.arguments().size());
  std::vector<void *> separateBuffers;
  for (size_t i = 0; i < step.arguments().size(); ++i) {
    separate[i].resize(bytesOf(i));
    fill(i, separate[i].data());
    separateBuffers.push_back(separate[i].data());
  }
  size_t total = 0;
  std::vector<size_t> offsets;
  for (size_t i = 0; i < step.arguments().size(); ++i) {
    offsets.push_back(total);
    total += (bytesOf(i) + 63) / 64 * 64;
  }
  std::vector<char> block(total + 64);
  char *base = block.data() + (64 - uintptr_t(block.data()) % 64) % 64;
  std::vector<void *> packedBuffers;
  for (size_t i = 0; i < step.arguments().size(); ++i) {
    fill(i, base + offsets[i]);
    packedBuffers.push_back(base + offsets[i]);
  }
  std::vector<std::vector<std::vector<float>>> results;
  for (bool packed : {false, true}) {
    SCOPED_TRACE(packed ? "arguments in one block" : "arguments apart");
    std::vector<std::vector<float>> outputs;
    std::vector<void *> resultBuffers;
    for (const mlir::lora::BufferSpec &spec : step.results())
      outputs.emplace_back(spec.numElements(), std::nanf(""));
    for (std::vector<float> &output : outputs)
      resultBuffers.push_back(output.data());
    llvm::Error error =
        step.run(packed ? packedBuffers : separateBuffers, resultBuffers);
    ASSERT_FALSE(bool(error)) << llvm::toString(std::move(error));
    results.push_back(std::move(outputs));
  }
  std::vector<Tensor> expected = run(evaluated, args);
  for (const std::vector<std::vector<float>> &outputs : results) {
    ASSERT_EQ(expected.size(), outputs.size());
    EXPECT_NEAR(outputs[0][0], expected[0].data[0],
                1e-5 * std::fabs(expected[0].data[0]))
        << "loss";
    for (size_t k = 1; k < outputs.size(); ++k) {
      double largest = 0;
      for (double x : expected[k].data)
        largest = std::max(largest, std::fabs(x));
      for (size_t i = 0; i < outputs[k].size(); ++i)
        ASSERT_NEAR(outputs[k][i], expected[k].data[i],
                    1e-4 * largest + 1e-7)
            << step.results()[k].name << " element " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Methods, CompiledStepTest,
    ::testing::Values(
        Method{"LoraWithDropout", "method=lora rank=4 dropout=0.1"},
        Method{"Lora", "method=lora rank=4"},
        Method{"LoraUnfused", "method=lora rank=4 fuse-adapters=false"},
        // Ranks the runtime's one-pass adapter backward takes (16-64 on
        // AVX-512; rank 4 above runs its three-GEMM fallback), with 74
        // tokens: row blocks with tails on two threads.
        Method{"LoraRank16", "method=lora rank=16", false, 37},
        // The same kernel on dropout(X) (lora-fuse-adapters' dropout form),
        // with a layer whose W trains too.
        Method{"LoraRank16Dropout", "method=mixed target-modules=q_proj,v_proj "
                                    "full-modules=q_proj rank=16 dropout=0.1",
               false, 37},
        Method{"LoraAndFullRank32", "method=mixed target-modules=q_proj,o_proj "
                                    "full-modules=q_proj rank=32",
               false, 37},
        Method{"LoraAndFullOnQueries", "method=mixed target-modules=q_proj "
                                       "full-modules=q_proj rank=2"},
        Method{"Full", "method=full weight-decay=0.01"},
        // 24-word vocabulary in chunks of 10: two full chunks and a tail of
        // 4; the lm_head trains, so the fused loss makes its gradient too.
        Method{"FullLossInChunks", "method=full loss-chunk=10"},
        Method{"LoraLossInChunks", "method=lora rank=4 loss-chunk=7"},
        // Activation checkpointing recomputes, and must not change a number.
        Method{"LoraRecomputeLayers",
               "method=lora rank=4 dropout=0.1 recompute=layer"},
        Method{"FullRecomputeSelective", "method=full recompute=selective"},
        Method{"MixedNoClipping", "method=mixed target-modules=self_attn "
                                  "full-modules=mlp rank=2 max-grad-norm=0"},
        // Row-by-row online softmax: every attention gradient flows into
        // the queries, keys and values of trained projections.
        Method{"FullFlashAttention", "method=full", true},
        Method{"LoraFlashAttention", "method=lora rank=4 dropout=0.1", true},
        Method{"LoraCausalBlocks", "method=lora rank=4", false, 256},
        Method{"FullCausalBlocks", "method=full", false, 384},
        // 256 x 16 embedding and lm_head gradients: lora-split-reductions
        // sums their squares for the gradient norm as 64 partial sums.
        Method{"FullSplitSums", "method=full", false, 6, 256},
        // The GPU's row reductions: the loss's rows over the 256-word
        // vocabulary in 4 partials each.
        Method{"LoraSplitRows", "method=lora rank=4", false, 6, 256, 256},
        Method{"FullSplitRows", "method=full", false, 6, 256, 256}),
    [](const ::testing::TestParamInfo<Method> &info) {
      return std::string(info.param.name);
    });

} // namespace
