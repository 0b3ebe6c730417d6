//===- FuseElementwise.cpp - one kernel per elementwise chain -------------===//
//
// After convert-lora-to-linalg, RMSNorm, RoPE, SwiGLU, residual adds, the
// adapter's scaling and their backward are separate linalg.generic kernels,
// each a pass over [tokens, features] memory. This pass merges a producer
// kernel into its consumer (upstream's elementwise fusion) when that never
// repeats work: the producer has exactly one use, and it produces exactly
// the consumer's iteration space (a permutation, no broadcast), so every
// element is still computed once. Producers that are reductions, or whose
// values are broadcast (per-row statistics, the RoPE table, the causal
// mask), stay kernels of their own.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::lora {
#define GEN_PASS_DEF_FUSEELEMENTWISE
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

bool fusesWithoutRepeatingWork(OpOperand *fused) {
  auto producer = fused->get().getDefiningOp<linalg::GenericOp>();
  auto consumer = dyn_cast<linalg::GenericOp>(fused->getOwner());
  if (!producer || !consumer || !fused->get().hasOneUse())
    return false;
  if (producer.getNumReductionLoops() != 0 ||
      consumer.getNumLoops() != producer.getNumLoops())
    return false;
  // The consumer reads the producer's result with a permutation of its
  // loops: one consumer iteration per producer element.
  return consumer.getMatchingIndexingMap(fused).isPermutation();
}

struct FuseElementwisePass
    : public lora::impl::FuseElementwiseBase<FuseElementwisePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    linalg::populateElementwiseOpsFusionPatterns(patterns,
                                                 fusesWithoutRepeatingWork);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
