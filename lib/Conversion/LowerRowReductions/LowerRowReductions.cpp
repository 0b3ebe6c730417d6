//===- LowerRowReductions.cpp - row reductions as register-carried loops --===//
//
// convert-linalg-to-affine-loops keeps a reduction's accumulator in memory
// (load, combine, store on every iteration), which the super-vectorizer
// cannot vectorize and which costs a store-to-load round trip per element.
// This pass lowers linalg.generic ops on buffers whose last loop is the
// only reduction to affine loops whose innermost loop carries the
// accumulator in iter_args: the form `affine-super-vectorize
// {vectorize-reductions}` turns into vector reductions.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::lora {
#define GEN_PASS_DEF_LOWERROWREDUCTIONS
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

struct RowReductionToAffine : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(linalg::GenericOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics() || op.getNumDpsInits() != 1)
      return rewriter.notifyMatchFailure(op, "needs one output buffer");
    SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
    unsigned loops = iterators.size();
    if (loops < 1 || iterators.back() != utils::IteratorType::reduction ||
        llvm::count(iterators, utils::IteratorType::reduction) != 1)
      return rewriter.notifyMatchFailure(op, "not a last-dim reduction");
    if (llvm::any_of(op.getStaticLoopRanges(), ShapedType::isDynamic))
      return rewriter.notifyMatchFailure(op, "dynamic loop bounds");
    SmallVector<int64_t> bounds = op.getStaticLoopRanges();
    OpOperand *init = op.getDpsInitOperand(0);
    AffineMap outMap = op.getMatchingIndexingMap(init);
    if (outMap.getNumResults() != loops - 1 ||
        !outMap.isProjectedPermutation() ||
        outMap.isFunctionOfDim(loops - 1))
      return rewriter.notifyMatchFailure(op, "output must drop the last dim");
    // The output's map over the parallel loops only.
    outMap = AffineMap::get(loops - 1, 0, outMap.getResults(), getContext());
    Block &body = op.getRegion().front();
    BlockArgument accArg = body.getArgument(body.getNumArguments() - 1);
    auto yield = cast<linalg::YieldOp>(body.getTerminator());

    Location loc = op.getLoc();
    SmallVector<Value> ivs;
    // Parallel loops, outermost first.
    OpBuilder::InsertionGuard guard(rewriter);
    for (unsigned d = 0; d + 1 < loops; ++d) {
      auto loop = affine::AffineForOp::create(rewriter, loc, 0, bounds[d]);
      ivs.push_back(loop.getInductionVar());
      rewriter.setInsertionPointToStart(loop.getBody());
    }
    Value acc = affine::AffineLoadOp::create(rewriter, loc, init->get(),
                                             outMap, ivs);
    auto reduction = affine::AffineForOp::create(
        rewriter, loc, 0, bounds.back(), 1, ValueRange{acc},
        [&](OpBuilder &b, Location at, Value iv, ValueRange iterArgs) {
          SmallVector<Value> all(ivs);
          all.push_back(iv);
          IRMapping mapping;
          for (OpOperand *input : op.getDpsInputOperands()) {
            Value value = affine::AffineLoadOp::create(
                b, at, input->get(), op.getMatchingIndexingMap(input), all);
            mapping.map(body.getArgument(input->getOperandNumber()), value);
          }
          mapping.map(accArg, iterArgs[0]);
          for (Operation &inner : body.without_terminator()) {
            if (auto index = dyn_cast<linalg::IndexOp>(inner)) {
              mapping.map(index.getResult(), all[index.getDim()]);
              continue;
            }
            b.clone(inner, mapping);
          }
          affine::AffineYieldOp::create(
              b, at, mapping.lookupOrDefault(yield.getOperand(0)));
        });
    affine::AffineStoreOp::create(rewriter, loc, reduction.getResult(0),
                                  init->get(), outMap, ivs);
    rewriter.eraseOp(op);
    return success();
  }
};

struct LowerRowReductionsPass
    : public lora::impl::LowerRowReductionsBase<LowerRowReductionsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RowReductionToAffine>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
