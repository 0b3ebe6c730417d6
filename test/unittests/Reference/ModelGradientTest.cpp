//===- ModelGradientTest.cpp - whole-model gradients vs finite differences ===//
//
// A 2-layer grouped-query Llama from the frontend, adapters and trainable
// weights chosen by the passes, the backward built by lora-autodiff and run
// by the reference evaluator: loss and gradients must match central finite
// differences of the forward loss, for LoRA, full and mixed training, with
// tied and untied embeddings. The same step after lora-fuse-adapters,
// lora-fuse-linear-cross-entropy and lora-recompute (per layer) must give
// the same numbers.
//
//===----------------------------------------------------------------------===//

#include "GradientCheck.h"

#include "lora/Dialect/Lora/Transforms/Passes.h"
#include "lora/Frontend/LlamaConfig.h"

#include "lora/Dialect/Lora/IR/LoraOps.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"

using namespace lora::test;
using mlir::lora::reference::Tensor;

namespace {

struct Method {
  const char *name;
  std::vector<std::string> loraModules; // empty: no adapters
  std::vector<std::string> fullModules;
  double dropout;
  bool tiedEmbeddings;
  bool adapterAndBaseTrain = false; // a layer whose W and adapter both train
};

/// gtest prints the method by name, not as bytes.
void PrintTo(const Method &method, std::ostream *os) { *os << method.name; }

class ModelGradientTest : public ::testing::TestWithParam<Method> {};

TEST_P(ModelGradientTest, LossAndGradientsMatchFiniteDifferences) {
  const Method &method = GetParam();
  auto context = makeContext();
  mlir::lora::LlamaConfig config;
  config.vocabSize = 11;
  config.hiddenSize = 8;
  config.intermediateSize = 12;
  config.numHiddenLayers = 2;
  config.numAttentionHeads = 4;
  config.numKeyValueHeads = 2;
  config.headDim = 2;
  config.maxPositionEmbeddings = 16;
  config.rmsNormEps = 1e-5;
  config.tieWordEmbeddings = method.tiedEmbeddings;
  mlir::lora::BatchShape shape{2, 4};

  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::ModuleOp::create(mlir::UnknownLoc::get(context.get()));
  ASSERT_FALSE(bool(mlir::lora::buildLlamaStep(*module, config, shape)));
  mlir::PassManager select(context.get());
  if (!method.loraModules.empty()) {
    mlir::lora::AttachAdaptersOptions options;
    options.targetModules.assign(method.loraModules.begin(),
                                 method.loraModules.end());
    options.rank = 2;
    options.dropout = method.dropout;
    select.addPass(mlir::lora::createAttachAdapters(options));
  }
  mlir::lora::SetTrainableOptions trainable;
  trainable.modules.assign(method.fullModules.begin(),
                           method.fullModules.end());
  select.addPass(mlir::lora::createSetTrainable(trainable));
  ASSERT_TRUE(mlir::succeeded(select.run(*module)));

  mlir::OwningOpRef<mlir::ModuleOp> forwardModule = module->clone();
  mlir::PassManager differentiate(context.get());
  differentiate.addPass(mlir::lora::createAutodiff());
  ASSERT_TRUE(mlir::succeeded(differentiate.run(*module)));
  auto forward = *forwardModule->getOps<mlir::func::FuncOp>().begin();
  auto step = *module->getOps<mlir::func::FuncOp>().begin();

  // Random parameters (adapter B too, so A's gradient is not zero) and a
  // batch with one ignored label.
  std::mt19937_64 rng(1234);
  std::vector<Tensor> args;
  std::vector<unsigned> trainableArgs;
  for (auto [i, arg] : llvm::enumerate(forward.getArguments())) {
    auto type = llvm::cast<mlir::RankedTensorType>(arg.getType());
    std::vector<int64_t> dims(type.getShape().begin(), type.getShape().end());
    auto name = forward.getArgAttrOfType<mlir::StringAttr>(i, "lora.name");
    ASSERT_TRUE(name);
    if (auto role = mlir::lora::getParameterRole(forward, i)) {
      args.push_back(randomTensor(dims, rng, 0.6));
      if (*role != mlir::lora::Role::frozen)
        trainableArgs.push_back(i);
    } else if (name.getValue() == "input_ids") {
      Tensor ids = Tensor::filled(dims, 0);
      for (double &id : ids.data)
        id = double(rng() % config.vocabSize);
      args.push_back(ids);
    } else if (name.getValue() == "positions") {
      args.push_back(Tensor(dims, {0, 1, 2, 3, 0, 1, 2, 3}));
    } else if (name.getValue() == "labels") {
      Tensor labels = Tensor::filled(dims, 0);
      for (double &label : labels.data)
        label = double(rng() % config.vocabSize);
      labels.data[5] = -100;
      args.push_back(labels);
    } else {
      ASSERT_EQ(name.getValue(), "dropout_seed");
      args.push_back(Tensor::scalar(42));
    }
  }
  ASSERT_FALSE(trainableArgs.empty());

  std::vector<Tensor> results = run(step, args);
  ASSERT_EQ(results.size(), trainableArgs.size() + 1)
      << "one gradient per trainable parameter, none for frozen ones";
  auto loss = [&](const std::vector<Tensor> &a) {
    return run(forward, a)[0].data[0];
  };
  EXPECT_NEAR(results[0].data[0], loss(args), 1e-12);

  // lora-fuse-adapters changes where the numbers are computed, not what
  // they are: the fused step equals the unfused one to rounding.
  mlir::OwningOpRef<mlir::ModuleOp> fusedModule = module->clone();
  mlir::PassManager fuse(context.get());
  fuse.addPass(mlir::lora::createFuseAdapters());
  fuse.addPass(mlir::lora::createFuseLinearCrossEntropy({/*chunk=*/4}));
  fuse.addPass(mlir::lora::createRecompute({/*mode=*/"layer"}));
  ASSERT_TRUE(mlir::succeeded(fuse.run(*fusedModule)));
  auto fusedStep = *fusedModule->getOps<mlir::func::FuncOp>().begin();
  int updates = 0, jointWeightGrads = 0, fusedLosses = 0, fusedLossGrads = 0;
  fusedStep.walk([&](mlir::lora::LowRankUpdateOp) { ++updates; });
  fusedStep.walk([&](mlir::lora::LinearCrossEntropyOp) { ++fusedLosses; });
  fusedStep.walk(
      [&](mlir::lora::LinearCrossEntropyGradOp) { ++fusedLossGrads; });
  EXPECT_EQ(fusedLosses, 1) << "the loss is computed without logits";
  int checkpoints = 0;
  fusedStep.walk([&](mlir::lora::CheckpointOp) { ++checkpoints; });
  EXPECT_EQ(checkpoints, 2) << "each of the 2 layers is recomputed from one "
                               "kept input";
  EXPECT_EQ(fusedLossGrads, 1) << "and so is its gradient";
  fusedStep.walk([&](mlir::lora::CrossEntropyOp) {
    ADD_FAILURE() << "a cross_entropy on materialized logits is left";
  });
  fusedStep.walk([&](mlir::tensor::ExtractSliceOp slice) {
    jointWeightGrads += bool(
        slice.getSource().getDefiningOp<mlir::lora::LinearGradWeightOp>());
  });
  // Every adapter's rank-r update goes into its base output, with dropout
  // too (then U = dropout(X)·Aᵀ is a GEMM of its own); only a layer
  // without dropout reads X once for both ([W; A]).
  int concatenated = 0;
  fusedStep.walk([&](mlir::tensor::ConcatOp) { ++concatenated; });
  if (method.loraModules.empty())
    EXPECT_EQ(updates, 0) << "no adapter, nothing to fuse";
  else
    EXPECT_GT(updates, 0) << "adapters are fused, with or without dropout";
  EXPECT_EQ(concatenated > 0, !method.loraModules.empty() &&
                                  method.dropout == 0.0)
      << "[W; A] exactly for adapters without dropout";
  EXPECT_EQ(jointWeightGrads > 0, method.adapterAndBaseTrain)
      << "[dW; dA] from one GEMM exactly when W and A both train";
  std::vector<Tensor> fused = run(fusedStep, args);
  ASSERT_EQ(fused.size(), results.size());
  for (size_t k = 0; k < fused.size(); ++k) {
    ASSERT_EQ(fused[k].shape, results[k].shape) << "result " << k;
    for (size_t i = 0; i < fused[k].data.size(); ++i)
      ASSERT_NEAR(fused[k].data[i], results[k].data[i],
                  1e-12 * std::max(1.0, std::fabs(results[k].data[i])))
          << "result " << k << " element " << i;
  }
  EXPECT_GT(results[0].data[0], 0.5) << "a random model's loss is ~log(11)";

  for (auto [k, argIndex] : llvm::enumerate(trainableArgs)) {
    const Tensor &grad = results[k + 1];
    std::string name =
        forward.getArgAttrOfType<mlir::StringAttr>(argIndex, "lora.name")
            .getValue()
            .str();
    ASSERT_EQ(grad.shape, args[argIndex].shape) << name;
    double largest = 0;
    for (double g : grad.data)
      largest = std::max(largest, std::fabs(g));
    EXPECT_GT(largest, 1e-6) << name << " gets a non-zero gradient";
    // Six elements per parameter keep the test fast; the op tests cover
    // every element.
    for (int sample = 0; sample < 6; ++sample) {
      int64_t index = int64_t(rng() % grad.data.size());
      expectMatchesFiniteDifference(loss, args, argIndex, index,
                                    grad.data[index], name);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Methods, ModelGradientTest,
    ::testing::Values(
        Method{"LoraAllLinear", {"all-linear"}, {}, 0.0, false},
        Method{"LoraQVDropoutTied", {"q_proj", "v_proj"}, {}, 0.2, true},
        Method{"Full", {}, {"all"}, 0.0, false},
        Method{"FullTied", {}, {"all"}, 0.0, true},
        Method{"MixedAttentionLoraMlpFull", {"self_attn"}, {"mlp"}, 0.0, true},
        Method{"LoraAndFullOnQueries", {"q_proj", "v_proj"}, {"q_proj"}, 0.0,
               false, true},
        // W and its adapter both train, the adapter with dropout: dW and
        // the fused adapter gradients on dropout(X), no joint GEMM.
        Method{"LoraAndFullOnQueriesDropout", {"q_proj", "v_proj"},
               {"q_proj"}, 0.1, false, false}),
    [](const ::testing::TestParamInfo<Method> &info) {
      return std::string(info.param.name);
    });

} // namespace
