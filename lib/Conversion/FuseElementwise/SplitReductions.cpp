//===- SplitReductions.cpp - whole-tensor sums as parallel partial sums ---===//
//
// A step's whole-tensor reductions (the loss, the gradient norm's sums of
// squares) have no parallel loop, so the CPU ran them on one thread and
// the GPU pipeline left them in the host code, reading managed memory that
// the GPU wrote. Upstream's linalg::splitReduction gives them one: partial
// sums over contiguous chunks, then a short reduction of the partials.
// This pass only decides which reductions to split and into how many
// parts.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::lora {
#define GEN_PASS_DEF_SPLITREDUCTIONS
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

/// The number of partial sums for `size` elements: the largest power of
/// two that divides it, leaves chunks of at least `chunk` and is at most
/// `maxParts`; 1 when none above 1 does.
int64_t partsFor(int64_t size, int64_t chunk, int64_t maxParts) {
  int64_t parts = 1;
  while (size % (parts * 2) == 0 && size / (parts * 2) >= chunk &&
         parts * 2 <= maxParts)
    parts *= 2;
  return parts;
}

struct SplitReductions
    : lora::impl::SplitReductionsBase<SplitReductions> {
  using SplitReductionsBase::SplitReductionsBase;

  void runOnOperation() override {
    SmallVector<linalg::GenericOp> candidates;
    getOperation()->walk([&](linalg::GenericOp op) {
      // One loop, a reduction, over a static 1-D extent, into one scalar.
      if (!op.hasPureTensorSemantics() || op.getNumLoops() != 1 ||
          op.getNumReductionLoops() != 1 || op.getNumDpsInits() != 1)
        return;
      int64_t size = op.getStaticLoopRanges().front();
      if (ShapedType::isDynamic(size) || size < minElements)
        return;
      candidates.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : candidates) {
      int64_t size = op.getStaticLoopRanges().front();
      int64_t parts = partsFor(size, chunk, maxParts);
      if (parts < 2)
        continue;
      // Partials over contiguous chunks (the parallel dimension outside):
      // OpenMP's loop on the CPU, the kernel's threads on the GPU.
      auto control = [&](linalg::LinalgOp) {
        linalg::SplitReductionOptions options;
        options.ratio = parts;
        options.index = 0;
        options.innerParallel = false;
        return options;
      };
      // A combiner without a known identity is left as it is.
      (void)linalg::splitReduction(rewriter, op, control);
    }
  }
};

} // namespace
