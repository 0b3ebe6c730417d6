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

#include <tuple>

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
    // (op, parts, where the partials' dimension goes in the output)
    SmallVector<std::tuple<linalg::GenericOp, int64_t, unsigned>> splits;
    getOperation()->walk([&](linalg::GenericOp op) {
      if (!op.hasPureTensorSemantics() || op.getNumReductionLoops() != 1 ||
          op.getNumDpsInits() != 1)
        return;
      SmallVector<int64_t> ranges = op.getStaticLoopRanges();
      int64_t size = ranges.back();
      if (ShapedType::isDynamic(size))
        return;
      if (ranges.size() == 1) {
        // A whole 1-D tensor into one scalar.
        if (size >= minElements)
          splits.push_back({op, partsFor(size, chunk, maxParts), 0});
        return;
      }
      // Rows: the last loop is the reduction, the output drops it; the
      // partials become its innermost dimension (the threads of a row).
      if (rowMinElements <= 0 || size < rowMinElements ||
          op.getIteratorTypesArray().back() != utils::IteratorType::reduction)
        return;
      unsigned outputRank =
          op.getMatchingIndexingMap(op.getDpsInitOperand(0)).getNumResults();
      splits.push_back({op, partsFor(size, chunk, maxRowParts), outputRank});
    });
    IRRewriter rewriter(&getContext());
    for (auto [op, parts, index] : splits) {
      if (parts < 2)
        continue;
      // Partials over contiguous chunks (the partials' dimension parallel,
      // outside the chunk): OpenMP's loop on the CPU, the kernel's threads
      // on the GPU.
      auto control = [&, parts = parts, index = index](linalg::LinalgOp) {
        linalg::SplitReductionOptions options;
        options.ratio = parts;
        options.index = index;
        options.innerParallel = false;
        return options;
      };
      // A combiner without a known identity is left as it is.
      (void)linalg::splitReduction(rewriter, op, control);
    }
  }
};

} // namespace
