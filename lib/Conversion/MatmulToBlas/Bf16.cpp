//===- Bf16.cpp - frozen weights in bf16, GEMM inputs in bf16 -------------===//
//
// lora-store-frozen-bf16 retypes the frozen parameters; lora-bf16-gemm-inputs
// gives every GEMM bf16 inputs on tensors, reading those parameters as they
// are stored.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"
#include "lora/Dialect/Lora/IR/LoraDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::lora {
#define GEN_PASS_DEF_STOREFROZENBF16
#define GEN_PASS_DEF_BF16GEMMINPUTS
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

struct StoreFrozenBf16Pass
    : public lora::impl::StoreFrozenBf16Base<StoreFrozenBf16Pass> {
  void runOnOperation() override {
    for (auto function : getOperation().getOps<func::FuncOp>()) {
      if (function.isExternal())
        continue;
      Block &entry = function.front();
      SmallVector<Type> inputs(function.getArgumentTypes());
      OpBuilder b = OpBuilder::atBlockBegin(&entry);
      bool changed = false;
      for (unsigned i = 0; i < inputs.size(); ++i) {
        std::optional<Role> role = getParameterRole(function, i);
        auto type = dyn_cast<RankedTensorType>(inputs[i]);
        if (role != Role::frozen || !type || !type.getElementType().isF32())
          continue;
        BlockArgument argument = entry.getArgument(i);
        inputs[i] = type.clone(b.getBF16Type());
        argument.setType(inputs[i]);
        auto wide = arith::ExtFOp::create(b, argument.getLoc(), type, argument);
        argument.replaceAllUsesExcept(wide, wide);
        changed = true;
      }
      if (changed)
        function.setType(FunctionType::get(&getContext(), inputs,
                                           function.getResultTypes()));
    }
  }
};

/// tensor.extract(arith.extf(x)) -> arith.extf(tensor.extract(x)): one
/// element widened instead of the whole tensor.
struct ExtractOfExtF : OpRewritePattern<tensor::ExtractOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::ExtractOp op,
                                PatternRewriter &rewriter) const override {
    auto wide = op.getTensor().getDefiningOp<arith::ExtFOp>();
    if (!wide)
      return failure();
    Value narrow = tensor::ExtractOp::create(rewriter, op.getLoc(),
                                             wide.getIn(), op.getIndices());
    rewriter.replaceOpWithNewOp<arith::ExtFOp>(op, op.getType(), narrow);
    return success();
  }
};

/// tensor.extract_slice(arith.extf(x)) -> arith.extf(tensor.extract_slice(x)).
struct SliceOfExtF : OpRewritePattern<tensor::ExtractSliceOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::ExtractSliceOp op,
                                PatternRewriter &rewriter) const override {
    auto wide = op.getSource().getDefiningOp<arith::ExtFOp>();
    if (!wide)
      return failure();
    Type narrowElement = getElementTypeOrSelf(wide.getIn().getType());
    auto narrow = tensor::ExtractSliceOp::create(
        rewriter, op.getLoc(), op.getType().clone(narrowElement), wide.getIn(),
        op.getMixedOffsets(), op.getMixedSizes(), op.getMixedStrides());
    rewriter.replaceOpWithNewOp<arith::ExtFOp>(op, op.getType(),
                                               narrow.getResult());
    return success();
  }
};

/// `value` (an f32 tensor) as a bf16 tensor, built at `b`'s insertion point:
/// the bf16 tensor it was widened from, the concatenation of its parts' bf16
/// forms (a tensor.concat, or slices inserted into an empty tensor), or its
/// rounding.
Value bf16Of(OpBuilder &b, Location loc, Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  if (auto wide = value.getDefiningOp<arith::ExtFOp>())
    if (getElementTypeOrSelf(wide.getIn().getType()).isBF16())
      return wide.getIn();
  if (auto concat = value.getDefiningOp<tensor::ConcatOp>()) {
    SmallVector<Value> parts;
    for (Value part : concat.getInputs())
      parts.push_back(bf16Of(b, loc, part));
    return tensor::ConcatOp::create(b, loc, concat.getDim(), parts);
  }
  // A concatenation decomposed into slices inserted into an empty tensor.
  if (auto insert = value.getDefiningOp<tensor::InsertSliceOp>()) {
    Value source = bf16Of(b, loc, insert.getSource());
    Value dest = bf16Of(b, loc, insert.getDest());
    return tensor::InsertSliceOp::create(
        b, loc, source, dest, insert.getMixedOffsets(), insert.getMixedSizes(),
        insert.getMixedStrides());
  }
  if (auto empty = value.getDefiningOp<tensor::EmptyOp>())
    return tensor::EmptyOp::create(b, loc, type.getShape(), b.getBF16Type(),
                                   empty.getDynamicSizes());
  return arith::TruncFOp::create(b, loc, type.clone(b.getBF16Type()), value);
}

struct Bf16GemmInputsPass
    : public lora::impl::Bf16GemmInputsBase<Bf16GemmInputsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ExtractOfExtF, SliceOfExtF>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();

    SmallVector<linalg::MatmulOp> gemms;
    getOperation()->walk([&](linalg::MatmulOp op) {
      if (op.hasPureTensorSemantics() &&
          llvm::all_of(op.getDpsInputs(), [](Value input) {
            return getElementTypeOrSelf(input.getType()).isF32();
          }))
        gemms.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::MatmulOp op : gemms) {
      rewriter.setInsertionPoint(op);
      SmallVector<Value> inputs;
      for (Value input : op.getDpsInputs())
        inputs.push_back(bf16Of(rewriter, op.getLoc(), input));
      auto narrow = linalg::MatmulOp::create(rewriter, op.getLoc(),
                                             op.getResultTypes(), inputs,
                                             op.getDpsInits());
      narrow.setIndexingMapsAttr(op.getIndexingMaps());
      rewriter.replaceOp(op, narrow->getResults());
    }
    // The f32 concatenations and widenings the GEMMs read before go.
    if (failed(applyPatternsGreedily(getOperation(), {})))
      return signalPassFailure();
  }
};

} // namespace
