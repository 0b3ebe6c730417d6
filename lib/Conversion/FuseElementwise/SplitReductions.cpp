//===- SplitReductions.cpp - whole-tensor sums as parallel partial sums ---===//
//
// A step's whole-tensor reductions (the loss, the gradient norm's sums of
// squares) have no parallel loop, so the CPU ran them on one thread and
// the GPU pipeline left them in the host code, reading managed memory that
// the GPU wrote. Upstream's linalg::splitReduction gives them one: partial
// sums over contiguous chunks, then a short reduction of the partials.
// This pass decides which reductions to split and into how many parts (row
// reductions too, for the GPU), and merges the short reductions of a chain
// of sums into one (the gradient norm's: one host loop on the GPU instead
// of one per parameter).
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"

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
    wholeSums.clear();
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
      FailureOr<linalg::SplitReductionResult> result =
          linalg::splitReduction(rewriter, op, control);
      // Index 0 is a whole sum's: a row reduction's partials follow the
      // output's dimensions.
      if (succeeded(result) && index == 0)
        wholeSums.push_back(*result);
    }
    mergeChains(rewriter);
  }

  /// The whole-tensor sums split above, in program order.
  SmallVector<linalg::SplitReductionResult> wholeSums;

  /// A chain of split sums into one scalar (the gradient norm adds each
  /// parameter's sum of squares to the one before) would add up each
  /// parameter's partials on its own: on the GPU a short host loop each,
  /// and a wait for the GPU before each. Instead the chain's partials are
  /// concatenated and one reduction adds them all up at the end.
  void mergeChains(IRRewriter &rewriter) {
    // The sum whose combine consumes each combine's result as its init.
    llvm::DenseMap<Operation *, size_t> byCombine;
    for (auto [i, sum] : llvm::enumerate(wholeSums))
      byCombine[sum.resultCombiningLinalgOp] = i;
    llvm::DenseSet<size_t> inChain;
    for (size_t first = 0; first < wholeSums.size(); ++first) {
      if (inChain.contains(first))
        continue;
      SmallVector<size_t> chain = {first};
      while (true) {
        Operation *combine = wholeSums[chain.back()].resultCombiningLinalgOp;
        Value result = combine->getResult(0);
        if (!result.hasOneUse())
          break;
        auto next = byCombine.find(result.use_begin()->getOwner());
        if (next == byCombine.end() || !sameCombiner(combine, next->first) ||
            cast<linalg::LinalgOp>(next->first).getDpsInitOperand(0)->get() !=
                result)
          break;
        chain.push_back(next->second);
      }
      for (size_t i : chain)
        inChain.insert(i);
      if (chain.size() > 1)
        merge(rewriter, chain);
    }
  }

  static bool sameCombiner(Operation *a, Operation *b) {
    auto bodyOp = [](Operation *op) {
      return &cast<linalg::GenericOp>(op).getRegion().front().front();
    };
    return bodyOp(a)->getName() == bodyOp(b)->getName();
  }

  void merge(IRRewriter &rewriter, ArrayRef<size_t> chain) {
    auto last = cast<linalg::GenericOp>(
        wholeSums[chain.back()].resultCombiningLinalgOp);
    rewriter.setInsertionPoint(last);
    // Every sum's partials, one after the other. (A concatenation, copied
    // once at the end: writing each sum's partials into a slice of one
    // tensor instead chains hundreds of insert_slice ops for a large model,
    // which one-shot bufferization's analysis takes minutes over.)
    SmallVector<Value> partials;
    for (size_t i : chain)
      partials.push_back(wholeSums[i].splitLinalgOp->getResult(0));
    Value all = tensor::ConcatOp::create(rewriter, last.getLoc(), /*dim=*/0,
                                         partials);
    // One reduction of every partial, into the chain's first init.
    auto first = cast<linalg::GenericOp>(
        wholeSums[chain.front()].resultCombiningLinalgOp);
    Value init = first.getDpsInitOperand(0)->get();
    auto merged = linalg::GenericOp::create(
        rewriter, last.getLoc(), last.getResultTypes(), ValueRange{all},
        ValueRange{init}, last.getIndexingMapsArray(),
        last.getIteratorTypesArray());
    rewriter.cloneRegionBefore(last.getRegion(), merged.getRegion(),
                               merged.getRegion().end());
    rewriter.replaceOp(last, merged.getResults());
    for (size_t i : llvm::reverse(chain.drop_back()))
      rewriter.eraseOp(wholeSums[i].resultCombiningLinalgOp);
  }
};

} // namespace
