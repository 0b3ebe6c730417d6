//===- ApproximateMath.cpp - exp, sin and cos as vector polynomials -------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::lora {
#define GEN_PASS_DEF_APPROXIMATEMATH
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

struct ApproximateMathPass
    : public lora::impl::ApproximateMathBase<ApproximateMathPass> {
  void runOnOperation() override {
    // Only vector operands: upstream's f32 polynomials then compute all
    // lanes in registers, where libm would be called once per lane. On a
    // scalar, libm's expf is faster than the polynomial.
    SmallVector<Operation *> vectorOps;
    getOperation()->walk([&](Operation *op) {
      if (isa<math::ExpOp, math::SinOp, math::CosOp>(op) &&
          isa<VectorType>(op->getResult(0).getType()))
        vectorOps.push_back(op);
    });
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(
        patterns, [](StringRef name) {
          return name == math::ExpOp::getOperationName() ||
                 name == math::SinOp::getOperationName() ||
                 name == math::CosOp::getOperationName();
        });
    if (failed(applyOpPatternsGreedily(vectorOps, std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
