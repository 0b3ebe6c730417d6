//===- ContiguousAccesses.cpp - strided views as offsets into whole rows --===//
//
// The affine super-vectorizer vectorizes loads and stores of memrefs with
// the identity layout only. A column slice of a wider buffer (the [Y | U]
// output of a fused adapter GEMM, a slice of [dY | dU]) has a strided
// layout, so every kernel that reads or writes one stayed scalar, or the
// pipeline had to copy it first. Such a view is a window into a row-major
// "parent" array with the identity layout: this pass reinterprets the
// view's buffer as that parent and shifts the access indices by the
// window's origin.
//
// lora-copies-to-loops (here too) turns large memref.copy ops into
// linalg.copy kernels, which then go through the same loops, vectorizer
// and threads as every other kernel, strided sides included.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::lora {
#define GEN_PASS_DEF_CONTIGUOUSACCESSES
#define GEN_PASS_DEF_COPIESTOLOOPS
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

/// The identity-layout array a static strided view is a window of, and the
/// window's origin in it. A `flat` parent is two-dimensional: the view's
/// first dimension indexes its rows, and the other dimensions address a
/// row together, index k weighing `strides[k]` (a view split into heads
/// of a row whose width the heads do not divide, such as [dY | dU]).
struct Parent {
  MemRefType type;
  SmallVector<int64_t> origin;
  bool flat = false;
  SmallVector<int64_t> strides;
};

/// The flat parent of a static view with innermost stride 1 when its
/// dimensions after the first stay within one row of the first's stride.
std::optional<Parent> flatParentOf(MemRefType type, ArrayRef<int64_t> strides,
                                   int64_t offset, int64_t multiple) {
  ArrayRef<int64_t> sizes = type.getShape();
  int64_t rank = type.getRank(), row = strides[0];
  if (rank < 2 || llvm::any_of(sizes, [](int64_t s) { return s <= 0; }))
    return std::nullopt;
  int64_t column = offset % row, last = column;
  for (int64_t k = 1; k < rank; ++k)
    last += (sizes[k] - 1) * strides[k];
  if (last >= row ||
      (sizes.back() % multiple != 0 && last + 1 != row))
    return std::nullopt;
  int64_t first = offset / row;
  return Parent{MemRefType::get({first + sizes[0], row}, type.getElementType(),
                                MemRefLayoutAttrInterface(),
                                type.getMemorySpace()),
                {first, column}, /*flat=*/true,
                SmallVector<int64_t>(strides)};
}

/// A view with static strides and offset whose innermost stride is 1 and
/// whose every stride divides the next outer one is a window of a
/// row-major array with extents stride[k-1] / stride[k]; the offset,
/// written in those extents, is the window's origin. The window must fit
/// in each inner extent (no carry into the next row), and the innermost
/// size must be a multiple of `multiple` or reach the end of the row: the
/// vectorizer's last vector may run past a loop's end, which is harmless
/// only where the memref's own bound stops it at the same place.
std::optional<Parent> parentOf(MemRefType type, int64_t multiple) {
  if (type.getLayout().isIdentity() || !type.hasStaticShape() ||
      type.getRank() == 0)
    return std::nullopt;
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(type.getStridesAndOffset(strides, offset)) ||
      ShapedType::isDynamic(offset) || strides.back() != 1 ||
      llvm::any_of(strides, [](int64_t s) {
        return ShapedType::isDynamic(s) || s <= 0;
      }))
    return std::nullopt;
  ArrayRef<int64_t> sizes = type.getShape();
  int64_t rank = type.getRank();
  SmallVector<int64_t> extents(rank), origin(rank);
  int64_t rest = offset;
  for (int64_t k = 0; k < rank; ++k) {
    if (k > 0) {
      if (strides[k - 1] % strides[k] != 0)
        return flatParentOf(type, strides, offset, multiple);
      extents[k] = strides[k - 1] / strides[k];
    }
    origin[k] = rest / strides[k];
    rest %= strides[k];
    if (k > 0 && origin[k] + sizes[k] > extents[k])
      return flatParentOf(type, strides, offset, multiple);
  }
  extents[0] = origin[0] + sizes[0];
  if (sizes.back() % multiple != 0 &&
      origin.back() + sizes.back() != extents.back())
    return std::nullopt;
  return Parent{MemRefType::get(extents, type.getElementType(),
                                MemRefLayoutAttrInterface(),
                                type.getMemorySpace()),
                origin};
}

/// `map`'s results as indices into `parent`: shifted by the origin, or,
/// for a flat parent, the row and the weighted sum of the others.
AffineMap shifted(AffineMap map, const Parent &parent) {
  SmallVector<AffineExpr> results;
  if (parent.flat) {
    AffineExpr column =
        getAffineConstantExpr(parent.origin[1], map.getContext());
    for (auto [k, expr] : llvm::enumerate(map.getResults().drop_front()))
      column = column + expr * parent.strides[k + 1];
    results = {map.getResult(0) + parent.origin[0], column};
  } else {
    for (auto [expr, shift] : llvm::zip_equal(map.getResults(), parent.origin))
      results.push_back(expr + shift);
  }
  return AffineMap::get(map.getNumDims(), map.getNumSymbols(), results,
                        map.getContext());
}

struct ContiguousAccessesPass
    : public lora::impl::ContiguousAccessesBase<ContiguousAccessesPass> {
  using Base::Base;

  void runOnOperation() override {
    // One reinterpretation per view, placed right after the view is made.
    DenseMap<Value, std::pair<Value, Parent>> parents;
    auto parentValue =
        [&](Value view) -> std::optional<std::pair<Value, const Parent *>> {
      auto found = parents.find(view);
      if (found == parents.end()) {
        auto type = dyn_cast<MemRefType>(view.getType());
        std::optional<Parent> parent =
            type ? parentOf(type, vectorMultiple) : std::nullopt;
        if (!parent)
          return std::nullopt;
        OpBuilder b(view.getContext());
        b.setInsertionPointAfterValue(view);
        SmallVector<int64_t> strides;
        int64_t ignored;
        (void)parent->type.getStridesAndOffset(strides, ignored);
        Value cast = memref::ReinterpretCastOp::create(
            b, view.getLoc(), parent->type, view, /*offset=*/0,
            parent->type.getShape(), strides);
        found = parents.try_emplace(view, cast, *parent).first;
      }
      return std::make_pair(found->second.first, &found->second.second);
    };
    getOperation()->walk([&](Operation *op) {
      if (auto load = dyn_cast<affine::AffineLoadOp>(op)) {
        auto parent = parentValue(load.getMemRef());
        if (!parent)
          return;
        OpBuilder b(load);
        Value replacement = affine::AffineLoadOp::create(
            b, load.getLoc(), parent->first,
            shifted(load.getAffineMap(), *parent->second),
            load.getMapOperands());
        load.replaceAllUsesWith(replacement);
        load.erase();
      } else if (auto store = dyn_cast<affine::AffineStoreOp>(op)) {
        auto parent = parentValue(store.getMemRef());
        if (!parent)
          return;
        OpBuilder b(store);
        affine::AffineStoreOp::create(
            b, store.getLoc(), store.getValueToStore(), parent->first,
            shifted(store.getAffineMap(), *parent->second),
            store.getMapOperands());
        store.erase();
      }
    });
  }
};

/// memref.copy becomes a libc memcpy (or a generic strided copy) on the
/// calling thread. A large copy as linalg.copy becomes a loop nest like
/// any other kernel: vectorized, and split across the OpenMP threads.
struct CopiesToLoopsPass
    : public lora::impl::CopiesToLoopsBase<CopiesToLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<memref::CopyOp> copies;
    getOperation()->walk([&](memref::CopyOp copy) {
      auto source = dyn_cast<MemRefType>(copy.getSource().getType());
      auto target = dyn_cast<MemRefType>(copy.getTarget().getType());
      if (source && target && source.hasStaticShape() &&
          target.hasStaticShape() && source.getRank() > 0 &&
          source.getNumElements() >= minElements)
        copies.push_back(copy);
    });
    for (memref::CopyOp copy : copies) {
      OpBuilder b(copy);
      linalg::CopyOp::create(b, copy.getLoc(), copy.getSource(),
                             copy.getTarget());
      copy.erase();
    }
  }
};

} // namespace
