//===- OpGradientTest.cpp - every backward op against finite differences --===//
//
// For each forward op `f` and its backward, with a random cotangent R:
// the backward applied to R must equal the central finite difference of
// L(x) = Σ f(x)·R for every element of every differentiable input.
//
//===----------------------------------------------------------------------===//

#include "GradientCheck.h"

#include "lora/runtime/Dropout.h"

#include "mlir/IR/BuiltinOps.h"

using namespace lora::test;
using mlir::lora::reference::Tensor;

namespace {

class OpGradientTest : public ::testing::Test {
protected:
  /// Checks @bwd(inputs..., R) against finite differences of
  /// Σ @fwd(inputs...)·R for the inputs listed in `differentiable`, in the
  /// order @bwd returns their gradients.
  void check(const char *text, const std::vector<Tensor> &inputs,
             const std::vector<size_t> &differentiable) {
    auto module = mlir::parseSourceString<mlir::ModuleOp>(text, context.get());
    ASSERT_TRUE(module) << "test IR does not parse";
    auto fwd = module->lookupSymbol<mlir::func::FuncOp>("fwd");
    auto bwd = module->lookupSymbol<mlir::func::FuncOp>("bwd");
    ASSERT_TRUE(fwd && bwd);
    std::vector<Tensor> forward = run(fwd, inputs);
    ASSERT_EQ(forward.size(), 1u);
    Tensor cotangent = randomTensor(forward[0].shape, rng);
    auto loss = [&](const std::vector<Tensor> &args) {
      std::vector<Tensor> y = run(fwd, args);
      double sum = 0;
      for (size_t i = 0; i < y[0].data.size(); ++i)
        sum += y[0].data[i] * cotangent.data[i];
      return sum;
    };
    std::vector<Tensor> bwdArgs = inputs;
    bwdArgs.push_back(cotangent);
    std::vector<Tensor> grads = run(bwd, bwdArgs);
    ASSERT_EQ(grads.size(), differentiable.size());
    for (auto [k, arg] : llvm::enumerate(differentiable)) {
      ASSERT_EQ(grads[k].shape, inputs[arg].shape) << "gradient #" << k;
      for (int64_t i = 0; i < inputs[arg].numElements(); ++i)
        expectMatchesFiniteDifference(loss, inputs, arg, i, grads[k].data[i],
                                      "input #" + std::to_string(arg));
    }
  }

  /// Token ids (or positions, labels) as a tensor.
  static Tensor ids(std::vector<int64_t> shape, std::vector<double> values) {
    return Tensor(std::move(shape), std::move(values));
  }

  std::unique_ptr<mlir::MLIRContext> context = makeContext();
  std::mt19937_64 rng{20240515};
};

TEST_F(OpGradientTest, Embedding) {
  // Id 1 appears twice: its row's gradient accumulates.
  check(R"mlir(
    func.func @fwd(%t: tensor<5x3xf32>, %ids: tensor<2x2xi32>) -> tensor<2x2x3xf32> {
      %y = lora.embedding %t[%ids] : tensor<5x3xf32>, tensor<2x2xi32> -> tensor<2x2x3xf32>
      return %y : tensor<2x2x3xf32>
    }
    func.func @bwd(%t: tensor<5x3xf32>, %ids: tensor<2x2xi32>, %r: tensor<2x2x3xf32>) -> tensor<5x3xf32> {
      %d = lora.embedding_grad %r[%ids] : tensor<2x2x3xf32>, tensor<2x2xi32> -> tensor<5x3xf32>
      return %d : tensor<5x3xf32>
    })mlir",
        {randomTensor({5, 3}, rng), ids({2, 2}, {1, 4, 1, 0})}, {0});
}

TEST_F(OpGradientTest, RMSNorm) {
  check(R"mlir(
    func.func @fwd(%x: tensor<2x3x5xf32>, %w: tensor<5xf32>) -> tensor<2x3x5xf32> {
      %y = lora.rms_norm %x, %w eps(1.0e-5) : tensor<2x3x5xf32>, tensor<5xf32>
      return %y : tensor<2x3x5xf32>
    }
    func.func @bwd(%x: tensor<2x3x5xf32>, %w: tensor<5xf32>, %r: tensor<2x3x5xf32>) -> (tensor<2x3x5xf32>, tensor<5xf32>) {
      %dx, %dw = lora.rms_norm_grad %x, %w, %r eps(1.0e-5) : tensor<2x3x5xf32>, tensor<5xf32>
      return %dx, %dw : tensor<2x3x5xf32>, tensor<5xf32>
    })mlir",
        {randomTensor({2, 3, 5}, rng), randomTensor({5}, rng)}, {0, 1});
}

TEST_F(OpGradientTest, Linear) {
  check(R"mlir(
    func.func @fwd(%x: tensor<2x3x4xf32>, %w: tensor<5x4xf32>) -> tensor<2x3x5xf32> {
      %y = lora.linear %x, %w : tensor<2x3x4xf32>, tensor<5x4xf32> -> tensor<2x3x5xf32>
      return %y : tensor<2x3x5xf32>
    }
    func.func @bwd(%x: tensor<2x3x4xf32>, %w: tensor<5x4xf32>, %r: tensor<2x3x5xf32>) -> (tensor<2x3x4xf32>, tensor<5x4xf32>) {
      %dx = lora.linear_grad_input %r, %w : tensor<2x3x5xf32>, tensor<5x4xf32> -> tensor<2x3x4xf32>
      %dw = lora.linear_grad_weight %r, %x : tensor<2x3x5xf32>, tensor<2x3x4xf32> -> tensor<5x4xf32>
      return %dx, %dw : tensor<2x3x4xf32>, tensor<5x4xf32>
    })mlir",
        {randomTensor({2, 3, 4}, rng), randomTensor({5, 4}, rng)}, {0, 1});
}

// The adapter's backward as lora-autodiff writes it, with scale and
// dropout: U = drop(X)·Aᵀ, dB = s·dYᵀU, dU = s·dY·B, dA = dUᵀ·drop(X),
// dX = dY·W + drop(dU·A).
TEST_F(OpGradientTest, LinearWithAdapterAndDropout) {
  check(R"mlir(
    func.func @fwd(%x: tensor<6x4xf32>, %w: tensor<5x4xf32>, %a: tensor<2x4xf32>, %b: tensor<5x2xf32>, %seed: tensor<i64>) -> tensor<6x5xf32> {
      %y = lora.linear %x, %w adapter(%a, %b : tensor<2x4xf32>, tensor<5x2xf32>) scale(1.5) dropout(0.3, %seed) : tensor<6x4xf32>, tensor<5x4xf32> -> tensor<6x5xf32>
      return %y : tensor<6x5xf32>
    }
    func.func @bwd(%x: tensor<6x4xf32>, %w: tensor<5x4xf32>, %a: tensor<2x4xf32>, %b: tensor<5x2xf32>, %seed: tensor<i64>, %r: tensor<6x5xf32>)
        -> (tensor<6x4xf32>, tensor<5x4xf32>, tensor<2x4xf32>, tensor<5x2xf32>) {
      %xd = lora.dropout %x rate(0.3) seed(%seed) : tensor<6x4xf32>
      %u = lora.linear %xd, %a : tensor<6x4xf32>, tensor<2x4xf32> -> tensor<6x2xf32>
      %db = lora.linear_grad_weight %r, %u scale(1.5) : tensor<6x5xf32>, tensor<6x2xf32> -> tensor<5x2xf32>
      %du = lora.linear_grad_input %r, %b scale(1.5) : tensor<6x5xf32>, tensor<5x2xf32> -> tensor<6x2xf32>
      %da = lora.linear_grad_weight %du, %xd : tensor<6x2xf32>, tensor<6x4xf32> -> tensor<2x4xf32>
      %dxw = lora.linear_grad_input %r, %w : tensor<6x5xf32>, tensor<5x4xf32> -> tensor<6x4xf32>
      %dxa = lora.linear_grad_input %du, %a : tensor<6x2xf32>, tensor<2x4xf32> -> tensor<6x4xf32>
      %dxad = lora.dropout %dxa rate(0.3) seed(%seed) : tensor<6x4xf32>
      %dx = lora.add %dxw, %dxad : tensor<6x4xf32>
      %dw = lora.linear_grad_weight %r, %x : tensor<6x5xf32>, tensor<6x4xf32> -> tensor<5x4xf32>
      return %dx, %dw, %da, %db : tensor<6x4xf32>, tensor<5x4xf32>, tensor<2x4xf32>, tensor<5x2xf32>
    })mlir",
        {randomTensor({6, 4}, rng), randomTensor({5, 4}, rng),
         randomTensor({2, 4}, rng), randomTensor({5, 2}, rng),
         Tensor::scalar(7)},
        {0, 1, 2, 3});
}

TEST_F(OpGradientTest, RoPE) {
  // Positions differ per sequence (packing); two heads of dim 4.
  check(R"mlir(
    func.func @fwd(%x: tensor<2x3x8xf32>, %pos: tensor<2x3xi32>) -> tensor<2x3x8xf32> {
      %y = lora.rope %x, %pos theta(100.0) head_dim(4) : tensor<2x3x8xf32>, tensor<2x3xi32>
      return %y : tensor<2x3x8xf32>
    }
    func.func @bwd(%x: tensor<2x3x8xf32>, %pos: tensor<2x3xi32>, %r: tensor<2x3x8xf32>) -> tensor<2x3x8xf32> {
      %d = lora.rope_grad %r, %pos theta(100.0) head_dim(4) : tensor<2x3x8xf32>, tensor<2x3xi32>
      return %d : tensor<2x3x8xf32>
    })mlir",
        {randomTensor({2, 3, 8}, rng), ids({2, 3}, {0, 1, 2, 5, 0, 1})}, {0});
}

TEST_F(OpGradientTest, GroupedQueryAttention) {
  // 4 query heads share 2 kv heads of dim 3; an explicit scale.
  check(R"mlir(
    func.func @fwd(%q: tensor<2x4x12xf32>, %k: tensor<2x4x6xf32>, %v: tensor<2x4x6xf32>) -> tensor<2x4x12xf32> {
      %o = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(3) scale(0.7) : tensor<2x4x12xf32>, tensor<2x4x6xf32>, tensor<2x4x6xf32>
      return %o : tensor<2x4x12xf32>
    }
    func.func @bwd(%q: tensor<2x4x12xf32>, %k: tensor<2x4x6xf32>, %v: tensor<2x4x6xf32>, %r: tensor<2x4x12xf32>)
        -> (tensor<2x4x12xf32>, tensor<2x4x6xf32>, tensor<2x4x6xf32>) {
      %o = lora.attention %q, %k, %v heads(4) kv_heads(2) head_dim(3) scale(0.7) : tensor<2x4x12xf32>, tensor<2x4x6xf32>, tensor<2x4x6xf32>
      %dq, %dk, %dv = lora.attention_grad %q, %k, %v, %o, %r heads(4) kv_heads(2) head_dim(3) scale(0.7) : tensor<2x4x12xf32>, tensor<2x4x6xf32>, tensor<2x4x6xf32>
      return %dq, %dk, %dv : tensor<2x4x12xf32>, tensor<2x4x6xf32>, tensor<2x4x6xf32>
    })mlir",
        {randomTensor({2, 4, 12}, rng), randomTensor({2, 4, 6}, rng),
         randomTensor({2, 4, 6}, rng)},
        {0, 1, 2});
}

TEST_F(OpGradientTest, SwiGLU) {
  check(R"mlir(
    func.func @fwd(%g: tensor<3x4xf32>, %u: tensor<3x4xf32>) -> tensor<3x4xf32> {
      %y = lora.swiglu %g, %u : tensor<3x4xf32>
      return %y : tensor<3x4xf32>
    }
    func.func @bwd(%g: tensor<3x4xf32>, %u: tensor<3x4xf32>, %r: tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
      %dg, %du = lora.swiglu_grad %g, %u, %r : tensor<3x4xf32>
      return %dg, %du : tensor<3x4xf32>, tensor<3x4xf32>
    })mlir",
        {randomTensor({3, 4}, rng, 3.0), randomTensor({3, 4}, rng)}, {0, 1});
}

TEST_F(OpGradientTest, CrossEntropyWithIgnoredPositions) {
  check(R"mlir(
    func.func @fwd(%l: tensor<2x3x5xf32>, %y: tensor<2x3xi32>) -> tensor<f32> {
      %loss = lora.cross_entropy %l, %y ignore_index(-100) : tensor<2x3x5xf32>, tensor<2x3xi32>
      return %loss : tensor<f32>
    }
    func.func @bwd(%l: tensor<2x3x5xf32>, %y: tensor<2x3xi32>, %r: tensor<f32>) -> tensor<2x3x5xf32> {
      %d = lora.cross_entropy_grad %l, %y, %r ignore_index(-100) : tensor<2x3x5xf32>, tensor<2x3xi32>
      return %d : tensor<2x3x5xf32>
    })mlir",
        {randomTensor({2, 3, 5}, rng, 2.0),
         ids({2, 3}, {4, -100, 0, 2, 2, -100})},
        {0});
}

TEST_F(OpGradientTest, DropoutIsItsOwnBackward) {
  check(R"mlir(
    func.func @fwd(%x: tensor<4x8xf32>, %seed: tensor<i64>) -> tensor<4x8xf32> {
      %y = lora.dropout %x rate(0.5) seed(%seed) : tensor<4x8xf32>
      return %y : tensor<4x8xf32>
    }
    func.func @bwd(%x: tensor<4x8xf32>, %seed: tensor<i64>, %r: tensor<4x8xf32>) -> tensor<4x8xf32> {
      %d = lora.dropout %r rate(0.5) seed(%seed) : tensor<4x8xf32>
      return %d : tensor<4x8xf32>
    })mlir",
        {randomTensor({4, 8}, rng), Tensor::scalar(-3)}, {0});
}

TEST_F(OpGradientTest, Add) {
  check(R"mlir(
    func.func @fwd(%a: tensor<3xf32>, %b: tensor<3xf32>) -> tensor<3xf32> {
      %y = lora.add %a, %a : tensor<3xf32>
      %z = lora.add %y, %b : tensor<3xf32>
      return %z : tensor<3xf32>
    }
    func.func @bwd(%a: tensor<3xf32>, %b: tensor<3xf32>, %r: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
      %da = lora.add %r, %r : tensor<3xf32>
      return %da, %r : tensor<3xf32>, tensor<3xf32>
    })mlir",
        {randomTensor({3}, rng), randomTensor({3}, rng)}, {0, 1});
}

} // namespace
