//===- MatmulToBlas.cpp - linalg.matmul on memrefs to BLAS calls ----------===//

#include "lora/Conversion/Passes.h"
#include "lora/Conversion/RuntimeCalls.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::lora {
#define GEN_PASS_DEF_MATMULTOBLAS
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

/// memref<?x?xT, strided<[?, ?], offset: ?>>: what every operand is cast
/// to, so that one declaration serves all shapes and layouts.
MemRefType genericMatrixType(Type element) {
  MLIRContext *context = element.getContext();
  int64_t dynamic = ShapedType::kDynamic;
  return MemRefType::get(
      {dynamic, dynamic}, element,
      StridedLayoutAttr::get(context, dynamic, {dynamic, dynamic}));
}

/// A rank-2 memref of `element`s whose rows are contiguous.
bool isBlasOperand(Type type, Type element) {
  auto memref = dyn_cast<MemRefType>(type);
  if (!memref || memref.getRank() != 2 || memref.getElementType() != element)
    return false;
  SmallVector<int64_t> strides;
  int64_t offset;
  return succeeded(memref.getStridesAndOffset(strides, offset)) &&
         strides[1] == 1;
}

/// The linalg.fill of 0.0 that last wrote `op`'s output, when only ops
/// without memory effects (views, casts, constants) separate the two, so
/// nothing can read the zeros but the GEMM.
linalg::FillOp findZeroFill(linalg::MatmulOp op) {
  Value output = op.getDpsInits()[0];
  for (Operation *previous = op->getPrevNode(); previous;
       previous = previous->getPrevNode()) {
    auto fill = dyn_cast<linalg::FillOp>(previous);
    if (!fill && isMemoryEffectFree(previous))
      continue;
    if (!fill)
      return nullptr;
    FloatAttr value;
    if (fill.hasPureBufferSemantics() && fill.getDpsInits()[0] == output &&
        matchPattern(fill.getInputs()[0], m_Constant(&value)) &&
        value.getValue().isPosZero())
      return fill;
    return nullptr;
  }
  return nullptr;
}

struct MatmulToBlasCall : OpRewritePattern<linalg::MatmulOp> {
  MatmulToBlasCall(MLIRContext *context, StringRef callee,
                   StringRef bf16Callee)
      : OpRewritePattern(context), calleeName(callee.str()),
        bf16CalleeName(bf16Callee.str()) {}
  std::string calleeName, bf16CalleeName;

  LogicalResult matchAndRewrite(linalg::MatmulOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "not on buffers yet");
    // Both inputs f32 (the f32 GEMM) or both bf16 (the bf16 one, which
    // lora-bf16-gemm-inputs gives every GEMM under --bf16); C f32.
    Type element = getElementTypeOrSelf(op.getDpsInputs()[0].getType());
    if (!element.isF32() && !element.isBF16())
      return rewriter.notifyMatchFailure(op, "inputs neither f32 nor bf16");
    bool bf16 = element.isBF16();
    for (Value operand : op.getDpsInputs())
      if (!isBlasOperand(operand.getType(), element))
        return rewriter.notifyMatchFailure(
            op, "inputs must be rank-2 memrefs of one type (f32 or bf16) "
                "with contiguous rows");
    if (!isBlasOperand(op.getDpsInits()[0].getType(), rewriter.getF32Type()))
      return rewriter.notifyMatchFailure(
          op, "the output must be a rank-2 f32 memref with contiguous rows");
    MLIRContext *context = op.getContext();
    auto map = [&](ArrayRef<unsigned> dims) {
      SmallVector<AffineExpr> exprs;
      for (unsigned dim : dims)
        exprs.push_back(getAffineDimExpr(dim, context));
      return AffineMap::get(3, 0, exprs, context);
    };
    // (m, n, k): A (m, k) or (k, m); B (k, n) or (n, k); C (m, n).
    SmallVector<AffineMap> maps = op.getIndexingMapsArray();
    bool transposeA = maps[0] == map({2, 0});
    bool transposeB = maps[1] == map({1, 2});
    if ((!transposeA && maps[0] != map({0, 2})) ||
        (!transposeB && maps[1] != map({2, 1})) || maps[2] != map({0, 1}))
      return rewriter.notifyMatchFailure(op, "not a (transposed) GEMM");

    // A zero fill of C just before the GEMM is folded into it: BLAS then
    // overwrites C (beta = 0) instead of reading zeros back and adding.
    linalg::FillOp zeroFill = findZeroFill(op);
    if (zeroFill)
      rewriter.eraseOp(zeroFill);

    auto module = op->getParentOfType<ModuleOp>();
    MemRefType matrix = genericMatrixType(rewriter.getF32Type());
    MemRefType input = genericMatrixType(element);
    Type i32 = rewriter.getI32Type();
    auto callee = declareRuntimeFunction(
        rewriter, module, bf16 ? bf16CalleeName : calleeName,
        rewriter.getFunctionType({i32, i32, i32, input, input, matrix}, {}));
    Location loc = op.getLoc();
    auto flag = [&](bool value) {
      return arith::ConstantOp::create(rewriter, loc,
                                       rewriter.getI32IntegerAttr(value));
    };
    SmallVector<Value> args = {flag(transposeA), flag(transposeB),
                               flag(/*accumulate=*/!zeroFill)};
    for (Value operand : op.getDpsInputs())
      args.push_back(memref::CastOp::create(rewriter, loc, input, operand));
    args.push_back(memref::CastOp::create(rewriter, loc, matrix,
                                          op.getDpsInits()[0]));
    func::CallOp::create(rewriter, loc, callee, args);
    rewriter.eraseOp(op);
    return success();
  }
};

struct MatmulToBlasPass
    : public lora::impl::MatmulToBlasBase<MatmulToBlasPass> {
  using Base::Base;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<MatmulToBlasCall>(&getContext(), callee, bf16Callee);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
