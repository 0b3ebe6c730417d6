//===- FuseAdapters.cpp - adapter GEMMs folded into the base GEMMs --------===//
//
// The concatenation algebra of ARCHITECTURE.md, on a differentiated step:
//
//   Wcat = [W; A]                    one (out + r) x in matrix
//   [Y0 | U] = X · Wcatᵀ             forward: X is read once for both
//   Y = Y0 + s · U · Bᵀ              the rank-r update, accumulated in place
//   dX = [dY | dU] · Wcat            K = out + r: replaces dY·W + dU·A + add
//   [dW; dA] = [dY | dU]ᵀ · X        when W trains too: both from one GEMM
//   dU, dB (and dA) at once          lora.adapter_grad: dY and X read once
//
// and the backward's recomputation of U = X·Aᵀ reads the forward's U. With
// adapter dropout the adapter sees dropout(X), not X, so no concatenation
// holds; such layers get the rank-r update and lora.adapter_grad (on
// dropout(X)) alone.
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/IR/LoraOps.h"
#include "lora/Dialect/Lora/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace mlir::lora {
#define GEN_PASS_DEF_FUSEADAPTERS
#include "lora/Dialect/Lora/Transforms/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

RankedTensorType withLastDim(Value value, int64_t size) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape(type.getShape());
  shape.back() = size;
  return RankedTensorType::get(shape, type.getElementType());
}

/// `value`[..., offset : offset + size] along dimension `dim`.
Value sliceAlong(OpBuilder &b, Location loc, Value value, int64_t dim,
                 int64_t offset, int64_t size) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
  SmallVector<OpFoldResult> sizes, strides(type.getRank(), b.getIndexAttr(1));
  for (int64_t d = 0; d < type.getRank(); ++d)
    sizes.push_back(b.getIndexAttr(d == dim ? size : type.getDimSize(d)));
  offsets[dim] = b.getIndexAttr(offset);
  return tensor::ExtractSliceOp::create(b, loc, value, offsets, sizes, strides);
}

/// The single user of `value` of type OpTy that `accept` agrees to, if any.
template <typename OpTy>
OpTy findUser(Value value, llvm::function_ref<bool(OpTy)> accept) {
  OpTy found;
  for (Operation *user : value.getUsers())
    if (auto op = dyn_cast<OpTy>(user); op && accept(op)) {
      if (found && found != op)
        return OpTy();
      found = op;
    }
  return found;
}

/// The backward's recomputations of a forward value: every user of
/// `operand` of type OpTy that `same` accepts (other than `kept` itself)
/// is replaced by `kept` and erased.
template <typename OpTy>
void reuseForward(Value operand, Value kept,
                  llvm::function_ref<bool(OpTy)> same) {
  for (Operation *user : llvm::make_early_inc_range(operand.getUsers()))
    if (auto again = dyn_cast<OpTy>(user);
        again && again->getResult(0) != kept && same(again)) {
      again->getResult(0).replaceAllUsesWith(kept);
      again.erase();
    }
}

/// The backward's U = input·Aᵀ (a linear op without adapter) is `u`.
void reuseU(Value input, Value a, Value u) {
  reuseForward<LinearOp>(a, u, [&](LinearOp again) {
    return !again.hasAdapter() && again.getInput() == input &&
           again.getWeight() == a;
  });
}

struct FuseAdaptersPass
    : public lora::impl::FuseAdaptersBase<FuseAdaptersPass> {
  void runOnOperation() override {
    SmallVector<LinearOp> layers;
    getOperation()->walk([&](LinearOp op) {
      if (op.hasAdapter())
        layers.push_back(op);
    });
    for (LinearOp op : layers) {
      if (op.getDropout())
        fuseWithDropout(op);
      else
        fuse(op);
    }
  }

  /// A layer with adapter dropout: the adapter reads dropout(X), so no
  /// concatenation with X holds, but its own ops still fuse. The forward
  /// becomes Y0 = X·Wᵀ, U = dropout(X)·Aᵀ, Y = Y0 + s·U·Bᵀ (the rank-r
  /// update into Y0 instead of a GEMM and an add); the backward's
  /// dropout(X) and U are the forward's, and dU, dB, dA = dUᵀ·dropout(X)
  /// are one lora.adapter_grad. dX = dY·W + dropout'(dU·A) keeps its GEMMs.
  void fuseWithDropout(LinearOp op) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    Value x = op.getInput(), w = op.getWeight(), a = op.getLoraA(),
          loraB = op.getLoraB(), seed = op.getSeed();
    FloatAttr rate = op.getDropoutAttr();
    Value y0 = LinearOp::create(b, loc, op.getType(), x, w, Value(), Value(),
                                Value(), FloatAttr(), FloatAttr());
    Value dropped = DropoutOp::create(b, loc, x, seed, rate);
    auto aType = cast<RankedTensorType>(a.getType());
    Value u = LinearOp::create(b, loc, withLastDim(x, aType.getDimSize(0)),
                               dropped, a, Value(), Value(), Value(),
                               FloatAttr(), FloatAttr());
    Value y = LowRankUpdateOp::create(b, loc, y0, u, loraB,
                                      op.getScaleAttr());
    op.getResult().replaceAllUsesWith(y);
    op.erase();

    // The backward's dropout(X) (same input, seed and rate) and its
    // U = dropout(X)·Aᵀ are the forward's.
    reuseForward<DropoutOp>(x, dropped, [&](DropoutOp again) {
      return again.getSeed() == seed && again.getRateAttr() == rate;
    });
    reuseU(dropped, a, u);

    auto du = findUser<LinearGradInputOp>(loraB, [&](LinearGradInputOp g) {
      return g.getWeight() == loraB;
    });
    if (!du)
      return;
    if (auto dB = adapterBGrad(du, u))
      fuseAdapterGrads(du, dB, weightGradOf(du.getResult(), dropped),
                       dropped);
  }

  void fuse(LinearOp op) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    Value x = op.getInput(), w = op.getWeight(), a = op.getLoraA(),
          loraB = op.getLoraB();
    double scale = op.getScale()->convertToDouble();
    auto xType = cast<RankedTensorType>(x.getType());
    int64_t last = xType.getRank() - 1;
    int64_t out = cast<RankedTensorType>(w.getType()).getDimSize(0);
    int64_t rank = cast<RankedTensorType>(a.getType()).getDimSize(0);

    // Forward: one GEMM against [W; A], then the rank-r update.
    Value wcat = tensor::ConcatOp::create(b, loc, 0, ValueRange{w, a});
    Value yu = LinearOp::create(b, loc, withLastDim(x, out + rank), x, wcat,
                                Value(), Value(), Value(), FloatAttr(),
                                FloatAttr());
    Value y0 = sliceAlong(b, loc, yu, last, 0, out);
    Value u = sliceAlong(b, loc, yu, last, out, rank);
    Value y = LowRankUpdateOp::create(b, loc, y0, u, loraB,
                                      b.getF64FloatAttr(scale));
    op.getResult().replaceAllUsesWith(y);

    // The backward's U = X·Aᵀ is the forward's U.
    reuseU(x, a, u);

    // dU = s·dY·B, the one low-rank input gradient of this layer.
    auto du = findUser<LinearGradInputOp>(loraB, [&](LinearGradInputOp g) {
      return g.getWeight() == loraB;
    });
    if (du)
      fuseBackward(du, x, w, a, wcat, u, out, rank);
    op.erase();
  }

  static bool unitScale(Operation *op) {
    return op->getAttrOfType<FloatAttr>("scale").getValueAsDouble() == 1.0;
  }

  /// dA = dUᵀ·X (or dW = dYᵀ·X) of this layer, if the backward has it.
  static LinearGradWeightOp weightGradOf(Value grad, Value x) {
    return findUser<LinearGradWeightOp>(grad, [&](LinearGradWeightOp g) {
      return g.getGrad() == grad && g.getInput() == x && unitScale(g);
    });
  }

  /// dB = s·dYᵀ·U with dU's scale, in dU's block.
  static LinearGradWeightOp adapterBGrad(LinearGradInputOp du, Value u) {
    Value dy = du.getGrad();
    return findUser<LinearGradWeightOp>(dy, [&](LinearGradWeightOp g) {
      return g.getGrad() == dy && g.getInput() == u &&
             g.getScale() == du.getScale() && g->getBlock() == du->getBlock();
    });
  }

  void fuseBackward(LinearGradInputOp du, Value x, Value w, Value a,
                    Value wcat, Value u, int64_t out, int64_t rank) {
    Location loc = du.getLoc();
    Value dy = du.getGrad();
    Value dU = du.getResult();
    // dX = dY·W + dU·A
    auto dxA = findUser<LinearGradInputOp>(dU, [&](LinearGradInputOp g) {
      return g.getGrad() == dU && g.getWeight() == a && unitScale(g);
    });
    auto dxW = findUser<LinearGradInputOp>(dy, [&](LinearGradInputOp g) {
      return g.getGrad() == dy && g.getWeight() == w && unitScale(g);
    });
    AddOp sum;
    if (dxA && dxW && dxA->hasOneUse() && dxW->hasOneUse()) {
      sum = dyn_cast<AddOp>(*dxA->getUsers().begin());
      if (sum && *dxW->getUsers().begin() != sum.getOperation())
        sum = AddOp();
    }
    // [dW; dA] when W trains too.
    auto dW = weightGradOf(dy, x);
    auto dA = weightGradOf(dU, x);
    bool weights = dW && dA;
    // dB = s·dYᵀ·U (the op goes before both).
    auto dB = adapterBGrad(du, u);
    Operation *dUDef = du;
    if (dB) {
      AdapterGradOp grads =
          fuseAdapterGrads(du, dB, weights ? LinearGradWeightOp() : dA, x);
      dUDef = grads;
      dU = grads.getDu();
    }
    if (!sum && !weights)
      return;

    OpBuilder b(dUDef->getContext());
    b.setInsertionPointAfter(dUDef);
    int64_t last = cast<RankedTensorType>(dy.getType()).getRank() - 1;
    Value dyu = tensor::ConcatOp::create(b, loc, last, ValueRange{dy, dU});
    if (sum) {
      b.setInsertionPoint(sum);
      Value dx = LinearGradInputOp::create(b, sum.getLoc(), sum.getType(), dyu,
                                           wcat, b.getF64FloatAttr(1.0));
      sum.getResult().replaceAllUsesWith(dx);
      sum.erase();
      dxA.erase();
      dxW.erase();
    }
    if (weights) {
      Operation *later = dA->isBeforeInBlock(dW) ? dW.getOperation()
                                                 : dA.getOperation();
      b.setInsertionPoint(later);
      Value both = LinearGradWeightOp::create(
          b, loc, cast<RankedTensorType>(wcat.getType()), dyu, x,
          b.getF64FloatAttr(1.0));
      dW.getResult().replaceAllUsesWith(sliceAlong(b, loc, both, 0, 0, out));
      dA.getResult().replaceAllUsesWith(
          sliceAlong(b, loc, both, 0, out, rank));
      dW.erase();
      dA.erase();
    }
  }

  /// dU = s·dY·B, dB = s·dYᵀ·U and, when `dA` is given, dA = dUᵀ·X as one
  /// lora.adapter_grad, which replaces (and erases) the three ops.
  AdapterGradOp fuseAdapterGrads(LinearGradInputOp du, LinearGradWeightOp dB,
                                 LinearGradWeightOp dA, Value x) {
    // Before both: its operands (dY, B, the forward's U and X) are defined
    // before each of them.
    OpBuilder b(du);
    if (dB->isBeforeInBlock(du))
      b.setInsertionPoint(dB);
    SmallVector<Type> types = {du.getType(), dB.getType()};
    if (dA)
      types.push_back(dA.getType());
    auto grads = AdapterGradOp::create(b, du.getLoc(), types, du.getGrad(),
                                       du.getWeight(), dB.getInput(),
                                       dA ? x : Value(), du.getScaleAttr());
    du.getResult().replaceAllUsesWith(grads.getDu());
    dB.getResult().replaceAllUsesWith(grads.getDb());
    du.erase();
    dB.erase();
    if (dA) {
      dA.getResult().replaceAllUsesWith(grads.getDa());
      dA.erase();
    }
    return grads;
  }
};

} // namespace
