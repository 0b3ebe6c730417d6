//===- ForwardTest.cpp - forward values against closed forms --------------===//
//
// Values the evaluator must produce whatever its loops look like: attention
// over one position returns its value, AdamW's first step moves each
// element by lr·sign(g), clipping scales the step, dropout keeps about
// 1 - rate of the elements, bad token ids are errors.
//
//===----------------------------------------------------------------------===//

#include "GradientCheck.h"

#include "mlir/IR/BuiltinOps.h"

using namespace lora::test;
using mlir::lora::reference::Tensor;

namespace {

class ForwardTest : public ::testing::Test {
protected:
  mlir::func::FuncOp parse(const char *text) {
    module = mlir::parseSourceString<mlir::ModuleOp>(text, context.get());
    EXPECT_TRUE(module);
    return module ? *module->getOps<mlir::func::FuncOp>().begin() : nullptr;
  }
  std::unique_ptr<mlir::MLIRContext> context = makeContext();
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::mt19937_64 rng{7};
};

TEST_F(ForwardTest, CausalAttentionFirstPositionReturnsItsValue) {
  auto f = parse(R"mlir(
    func.func @f(%q: tensor<1x3x4xf32>, %k: tensor<1x3x2xf32>, %v: tensor<1x3x2xf32>) -> tensor<1x3x4xf32> {
      %o = lora.attention %q, %k, %v heads(2) kv_heads(1) head_dim(2) : tensor<1x3x4xf32>, tensor<1x3x2xf32>, tensor<1x3x2xf32>
      return %o : tensor<1x3x4xf32>
    })mlir");
  Tensor q = randomTensor({1, 3, 4}, rng), k = randomTensor({1, 3, 2}, rng),
         v = randomTensor({1, 3, 2}, rng);
  std::vector<Tensor> out = run(f, {q, k, v});
  ASSERT_EQ(out.size(), 1u);
  // Position 0 sees only itself; both query heads read kv head 0.
  for (int head = 0; head < 2; ++head)
    for (int d = 0; d < 2; ++d)
      EXPECT_DOUBLE_EQ(out[0].data[head * 2 + d], v.data[d]);
  // Position 1 with equal keys averages the first two values.
  k.data = {1, 1, 1, 1, 5, 5};
  out = run(f, {q, k, v});
  for (int d = 0; d < 2; ++d)
    EXPECT_NEAR(out[0].data[4 + d], (v.data[d] + v.data[2 + d]) / 2, 1e-12);
}

TEST_F(ForwardTest, AdamWFirstStepAndClipping) {
  auto f = parse(R"mlir(
    func.func @f(%p: tensor<3xf32>, %g: tensor<3xf32>, %m: tensor<3xf32>, %v: tensor<3xf32>, %lr: tensor<f32>, %step: tensor<i64>, %n: tensor<f32>)
        -> (tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) {
      %p1, %m1, %v1 = lora.adamw %p, %g, %m, %v lr(%lr) step(%step) betas(0.9, 0.999) eps(1.0e-12) weight_decay(0.5) : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
      %p2, %m2, %v2 = lora.adamw %p, %g, %m, %v lr(%lr) step(%step) clip(%n, 1.0) betas(0.9, 0.999) eps(1.0e-12) weight_decay(0.0) : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
      return %p1, %m1, %v1, %m2 : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
    })mlir");
  Tensor p({3}, {1.0, -2.0, 0.5}), g({3}, {0.3, -4.0, 2.0});
  Tensor zeros = Tensor::filled({3}, 0.0);
  std::vector<Tensor> out = run(f, {p, g, zeros, zeros, Tensor::scalar(0.01),
                                    Tensor::scalar(1), Tensor::scalar(4.0)});
  ASSERT_EQ(out.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    // Step 1 with bias correction: m̂ = g, v̂ = g², so the update is
    // lr·g/|g| plus the decoupled decay lr·wd·p.
    double sign = g.data[i] > 0 ? 1.0 : -1.0;
    EXPECT_NEAR(out[0].data[i],
                p.data[i] - 0.01 * 0.5 * p.data[i] - 0.01 * sign, 1e-9);
    EXPECT_NEAR(out[1].data[i], 0.1 * g.data[i], 1e-12);
    EXPECT_NEAR(out[2].data[i], 0.001 * g.data[i] * g.data[i], 1e-12);
    // Norm 4 against max 1: gradients scale by 1 / (4 + 1e-6).
    EXPECT_NEAR(out[3].data[i], 0.1 * g.data[i] / (4.0 + 1e-6), 1e-12);
  }
}

TEST_F(ForwardTest, DropoutKeepsAboutOneMinusRateAndRescales) {
  auto f = parse(R"mlir(
    func.func @f(%x: tensor<100x100xf32>, %s: tensor<i64>) -> (tensor<100x100xf32>, tensor<100x100xf32>) {
      %a = lora.dropout %x rate(0.25) seed(%s) : tensor<100x100xf32>
      %b = lora.dropout %x rate(0.25) seed(%s) : tensor<100x100xf32>
      return %a, %b : tensor<100x100xf32>, tensor<100x100xf32>
    })mlir");
  Tensor ones = Tensor::filled({100, 100}, 1.0);
  std::vector<Tensor> first = run(f, {ones, Tensor::scalar(1)});
  std::vector<Tensor> second = run(f, {ones, Tensor::scalar(2)});
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(first[0].data, first[1].data) << "same seed, same mask";
  EXPECT_NE(first[0].data, second[0].data) << "another seed, another mask";
  int kept = 0;
  for (double x : first[0].data) {
    ASSERT_TRUE(x == 0.0 || std::fabs(x - 1.0 / 0.75) < 1e-12) << x;
    kept += x != 0.0;
  }
  // 10000 Bernoulli(0.75) draws: mean 7500, standard deviation 43.
  EXPECT_NEAR(kept, 7500, 5 * 43);
}

TEST_F(ForwardTest, TokenIdOutOfRangeIsAnError) {
  auto f = parse(R"mlir(
    func.func @f(%t: tensor<4x2xf32>, %ids: tensor<1x2xi32>) -> tensor<1x2x2xf32> {
      %y = lora.embedding %t[%ids] : tensor<4x2xf32>, tensor<1x2xi32> -> tensor<1x2x2xf32>
      return %y : tensor<1x2x2xf32>
    })mlir");
  auto result = mlir::lora::reference::evaluate(
      f, {Tensor::filled({4, 2}, 0.0), Tensor({1, 2}, {3, 4})});
  ASSERT_FALSE(bool(result));
  std::string message = llvm::toString(result.takeError());
  EXPECT_NE(message.find("token id 4 at position 1 is outside the vocabulary "
                         "[0, 4)"),
            std::string::npos)
      << message;
}

TEST_F(ForwardTest, LabelOutOfRangeIsAnError) {
  auto f = parse(R"mlir(
    func.func @f(%l: tensor<2x3xf32>, %y: tensor<2xi32>) -> tensor<f32> {
      %loss = lora.cross_entropy %l, %y ignore_index(-100) : tensor<2x3xf32>, tensor<2xi32>
      return %loss : tensor<f32>
    })mlir");
  auto result = mlir::lora::reference::evaluate(
      f, {Tensor::filled({2, 3}, 0.0), Tensor({2}, {-100, -1})});
  ASSERT_FALSE(bool(result));
  std::string message = llvm::toString(result.takeError());
  EXPECT_NE(message.find("label -1 at position 1"), std::string::npos)
      << message;
}

TEST_F(ForwardTest, AllPositionsIgnoredGivesZeroLoss) {
  auto f = parse(R"mlir(
    func.func @f(%l: tensor<2x3xf32>, %y: tensor<2xi32>) -> tensor<f32> {
      %loss = lora.cross_entropy %l, %y ignore_index(-100) : tensor<2x3xf32>, tensor<2xi32>
      return %loss : tensor<f32>
    })mlir");
  std::vector<Tensor> out =
      run(f, {randomTensor({2, 3}, rng), Tensor({2}, {-100, -100})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data[0], 0.0);
}

} // namespace
