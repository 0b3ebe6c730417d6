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

/// A new row-major bf16 copy of the f32 matrix `value` (rounded to nearest
/// even by arith.truncf), made by a linalg.generic: a kernel like any other.
Value roundedToBf16(PatternRewriter &rewriter, Location loc, Value value) {
  auto type = cast<MemRefType>(value.getType());
  SmallVector<Value> dynamicSizes;
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (type.isDynamicDim(d))
      dynamicSizes.push_back(memref::DimOp::create(rewriter, loc, value, d));
  auto bf16 = MemRefType::get(type.getShape(), rewriter.getBF16Type());
  Value copy = memref::AllocOp::create(rewriter, loc, bf16, dynamicSizes);
  AffineMap identity = rewriter.getMultiDimIdentityMap(type.getRank());
  SmallVector<utils::IteratorType> iterators(type.getRank(),
                                             utils::IteratorType::parallel);
  linalg::GenericOp::create(
      rewriter, loc, ValueRange{value}, ValueRange{copy},
      ArrayRef<AffineMap>{identity, identity}, iterators,
      [&](OpBuilder &b, Location nested, ValueRange args) {
        Value rounded =
            arith::TruncFOp::create(b, nested, b.getBF16Type(), args[0]);
        linalg::YieldOp::create(b, nested, rounded);
      });
  return copy;
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
  /// `bf16Callee` non-empty: A and B rounded to bf16 first and the GEMM
  /// (fp32 accumulation into the f32 C) called through it.
  MatmulToBlasCall(MLIRContext *context, StringRef callee,
                   StringRef bf16Callee)
      : OpRewritePattern(context), calleeName(callee.str()),
        bf16CalleeName(bf16Callee.str()) {}
  std::string calleeName, bf16CalleeName;

  LogicalResult matchAndRewrite(linalg::MatmulOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "not on buffers yet");
    // Inputs f32, or bf16 where the bf16 GEMM is asked for (a frozen
    // weight stored in bf16, lora-bf16-gemm-inputs); C f32.
    bool bf16 = !bf16CalleeName.empty();
    Type f32 = rewriter.getF32Type(), bf16Type = rewriter.getBF16Type();
    for (Value operand : op.getDpsInputs())
      if (!isBlasOperand(operand.getType(), f32) &&
          !(bf16 && isBlasOperand(operand.getType(), bf16Type)))
        return rewriter.notifyMatchFailure(
            op, "inputs must be rank-2 f32 (or bf16) memrefs with "
                "contiguous rows");
    if (!isBlasOperand(op.getDpsInits()[0].getType(), f32))
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
    MemRefType input =
        bf16 ? genericMatrixType(rewriter.getBF16Type()) : matrix;
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
    SmallVector<Value> rounded;
    for (Value operand : op.getDpsInputs()) {
      Value value = operand;
      if (bf16 && getElementTypeOrSelf(operand.getType()).isF32())
        rounded.push_back(value = roundedToBf16(rewriter, loc, operand));
      args.push_back(memref::CastOp::create(rewriter, loc, input, value));
    }
    args.push_back(memref::CastOp::create(rewriter, loc, matrix,
                                          op.getDpsInits()[0]));
    func::CallOp::create(rewriter, loc, callee, args);
    for (Value copy : rounded)
      memref::DeallocOp::create(rewriter, loc, copy);
    rewriter.eraseOp(op);
    return success();
  }
};

struct MatmulToBlasPass
    : public lora::impl::MatmulToBlasBase<MatmulToBlasPass> {
  using Base::Base;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    if (precision != "f32" && precision != "bf16") {
      getOperation()->emitError()
          << "lora-matmul-to-blas: precision must be f32 or bf16, got '"
          << precision << "'";
      return signalPassFailure();
    }
    patterns.add<MatmulToBlasCall>(&getContext(), callee,
                                   precision == "bf16" ? StringRef(bf16Callee)
                                                       : StringRef());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
