//===- GradientCheck.h - finite-difference checks for the evaluator -------===//
//
// Shared by the op-level and the model-level gradient tests.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_TEST_UNITTESTS_REFERENCE_GRADIENTCHECK_H
#define LORA_TEST_UNITTESTS_REFERENCE_GRADIENTCHECK_H

#include "lora/Dialect/Lora/IR/LoraDialect.h"
#include "lora/Reference/Evaluator.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

namespace lora::test {

using mlir::lora::reference::Tensor;

/// A context with the dialects the tests parse.
inline std::unique_ptr<mlir::MLIRContext> makeContext() {
  auto context = std::make_unique<mlir::MLIRContext>();
  context->loadDialect<mlir::lora::LoraDialect, mlir::func::FuncDialect,
                       mlir::arith::ArithDialect>();
  return context;
}

/// Uniform values in [-scale, scale).
inline Tensor randomTensor(std::vector<int64_t> shape, std::mt19937_64 &rng,
                           double scale = 1.0) {
  Tensor t = Tensor::filled(std::move(shape), 0.0);
  std::uniform_real_distribution<double> uniform(-scale, scale);
  for (double &x : t.data)
    x = uniform(rng);
  return t;
}

/// Runs `function` and fails the test on an evaluation error.
inline std::vector<Tensor> run(mlir::func::FuncOp function,
                               const std::vector<Tensor> &args) {
  auto results = mlir::lora::reference::evaluate(function, args);
  if (!results) {
    ADD_FAILURE() << llvm::toString(results.takeError());
    return {};
  }
  return std::move(*results);
}

/// Compares `analytic` with central differences of the scalar `loss` as
/// element `index` of `args[arg]` moves; `what` names it in failures.
inline void expectMatchesFiniteDifference(
    const std::function<double(const std::vector<Tensor> &)> &loss,
    std::vector<Tensor> args, size_t arg, int64_t index, double analytic,
    const std::string &what, double tolerance = 1e-6) {
  const double h = 1e-5;
  double original = args[arg].data[index];
  args[arg].data[index] = original + h;
  double plus = loss(args);
  args[arg].data[index] = original - h;
  double minus = loss(args);
  double numeric = (plus - minus) / (2 * h);
  EXPECT_NEAR(analytic, numeric, tolerance * std::max(1.0, std::fabs(numeric)))
      << what << " element " << index;
}

} // namespace lora::test

#endif // LORA_TEST_UNITTESTS_REFERENCE_GRADIENTCHECK_H
