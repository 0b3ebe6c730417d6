//===- InPlaceUpdates.cpp - update a column slice where it lies -----------===//
//
// The fused adapter forward computes [Y0 | U] = X·[W; A]ᵀ with one GEMM and
// then Y = Y0 + s·U·Bᵀ. Bufferized, Y is a new buffer into which Y0 is
// copied from its columns of [Y0 | U] before the rank-r GEMM accumulates:
// a copy of every adapted layer's output, every step. Nothing reads those
// columns of [Y0 | U] afterwards (the backward reads U), so Y can be
// updated where Y0 lies. This pass does that for any buffer that is
// initialized by a copy of a view into another buffer, when nothing else
// touches the view's part of that buffer after the copy; the buffer's
// readers then read the strided view.
//
// The other direction: the backward's dY is made in a buffer of its own
// and copied into its columns of [dY | dU] for the dX GEMM; when it is only
// read after that copy, its producers write into those columns directly.
//
// It runs after bufferization and before lora-plan-memory, whose liveness
// (first to last use of a buffer and its views) then keeps the source
// buffer for as long as the view is used.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"

#include "BufferUses.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::lora {
#define GEN_PASS_DEF_INPLACEUPDATES
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using mlir::lora::everyUseThroughViews;
using mlir::lora::onlyReads;

namespace {

/// A view of the root allocation and the range of the root's last
/// dimension it covers ([begin, end); the whole row when no subview
/// narrows it).
struct Footprint {
  int64_t begin = 0, end = 0;
};

/// Whether `op` keeps the last dimension as a dimension of its own
/// (expand_shape and collapse_shape whose last group is that one
/// dimension, a ranked cast such as a runtime call's argument), so that
/// column ranges carry through it.
bool keepsLastDimension(Operation *op) {
  if (auto cast = dyn_cast<memref::CastOp>(op))
    return isa<MemRefType>(cast.getType());
  if (auto expand = dyn_cast<memref::ExpandShapeOp>(op))
    return expand.getReassociationIndices().back().size() == 1;
  if (auto collapse = dyn_cast<memref::CollapseShapeOp>(op))
    return collapse.getReassociationIndices().back().size() == 1;
  return false;
}

/// Narrows `range` by a subview's last-dimension offset and size; false
/// when they are not static or the subview has non-unit strides.
bool narrow(memref::SubViewOp subview, Footprint &range) {
  ArrayRef<int64_t> offsets = subview.getStaticOffsets();
  ArrayRef<int64_t> sizes = subview.getStaticSizes();
  if (!subview.hasUnitStride() || ShapedType::isDynamic(offsets.back()) ||
      ShapedType::isDynamic(sizes.back()) ||
      subview.getType().getRank() != subview.getSourceType().getRank())
    return false;
  range.begin += offsets.back();
  range.end = range.begin + sizes.back();
  return true;
}

/// The allocation `value` is a view of, through expand_shape, subview and
/// collapse_shape ops that keep the last dimension, and the columns it
/// covers; null when it is anything else.
memref::AllocOp rootOf(Value value, Footprint &range) {
  SmallVector<Operation *> chain;
  while (Operation *def = value.getDefiningOp()) {
    if (auto alloc = dyn_cast<memref::AllocOp>(def)) {
      int64_t columns = alloc.getType().getShape().back();
      range = {0, columns};
      for (Operation *op : llvm::reverse(chain))
        if (auto subview = dyn_cast<memref::SubViewOp>(op))
          if (!narrow(subview, range))
            return nullptr;
      return alloc;
    }
    if (!isa<memref::SubViewOp>(def) && !keepsLastDimension(def))
      return nullptr;
    chain.push_back(def);
    value = def->getOperand(0);
  }
  return nullptr;
}

/// Walks the uses of `view` (a view of the root covering columns `range`)
/// through further views, skipping the chain to `except` and views whose
/// columns miss `footprint`, and asks `harmless` about every other use.
/// False when one is not harmless or a view's columns cannot be told.
bool columnUsesAre(Value view, Footprint range, const Footprint &footprint,
                   Value except,
                   llvm::function_ref<bool(OpOperand &)> harmless) {
  for (OpOperand &use : view.getUses()) {
    Operation *user = use.getOwner();
    if (isa<memref::DeallocOp>(user))
      continue;
    Footprint narrower = range;
    if (auto subview = dyn_cast<memref::SubViewOp>(user)) {
      if (!narrow(subview, narrower))
        return false;
      if (narrower.end <= footprint.begin || narrower.begin >= footprint.end)
        continue;
    } else if (!keepsLastDimension(user)) {
      if (!harmless(use))
        return false;
      continue;
    }
    Value result = user->getResult(0);
    if (result != except &&
        !columnUsesAre(result, narrower, footprint, except, harmless))
      return false;
  }
  return true;
}

/// Whether `op` runs before / after `copy` (in or under copy's block).
bool runsBefore(Operation *op, memref::CopyOp copy) {
  Operation *inBlock = copy->getBlock()->findAncestorOpInBlock(*op);
  return inBlock && inBlock->isBeforeInBlock(copy);
}
bool runsAfter(Operation *op, memref::CopyOp copy) {
  Operation *inBlock = copy->getBlock()->findAncestorOpInBlock(*op);
  return inBlock && copy->isBeforeInBlock(inBlock);
}

/// Whether, apart from the chain to `except`, nothing touches the root's
/// columns `footprint` after `copy` (uses before it are harmless).
bool othersStayOut(Value root, Footprint whole, const Footprint &footprint,
                   memref::CopyOp copy, Value except) {
  return columnUsesAre(root, whole, footprint, except, [&](OpOperand &use) {
    return use.getOwner() == copy || runsBefore(use.getOwner(), copy);
  });
}

/// Whether, apart from the chain to `except`, every use of the root's
/// columns `footprint` only reads them, after `copy`.
bool othersOnlyReadAfter(Value root, Footprint whole,
                         const Footprint &footprint, memref::CopyOp copy,
                         Value except) {
  return columnUsesAre(root, whole, footprint, except, [&](OpOperand &use) {
    return runsAfter(use.getOwner(), copy) && onlyReads(use);
  });
}

/// The result type view op `user` gets from a `source` of type `source`
/// (a strided layout where it had the identity); null for any other op,
/// failure for a view that cannot take it.
FailureOr<MemRefType> viewResultType(Operation *user, MemRefType source) {
  if (auto expand = dyn_cast<memref::ExpandShapeOp>(user))
    return memref::ExpandShapeOp::computeExpandedType(
        source, expand.getType().getShape(), expand.getReassociationIndices());
  if (auto collapse = dyn_cast<memref::CollapseShapeOp>(user)) {
    auto reassociation = collapse.getReassociationIndices();
    if (!memref::CollapseShapeOp::isGuaranteedCollapsible(source,
                                                           reassociation))
      return failure();
    return memref::CollapseShapeOp::computeCollapsedType(source,
                                                         reassociation);
  }
  if (auto subview = dyn_cast<memref::SubViewOp>(user)) {
    // Rank-reducing ones too (attention's per-head blocks): the unit
    // dimensions the old result dropped are dropped again.
    if (subview.getType().getRank() != source.getRank())
      return memref::SubViewOp::inferRankReducedResultType(
          subview.getType().getShape(), source, subview.getStaticOffsets(),
          subview.getStaticSizes(), subview.getStaticStrides());
    return memref::SubViewOp::inferResultType(
        source, subview.getStaticOffsets(), subview.getStaticSizes(),
        subview.getStaticStrides());
  }
  return MemRefType();
}

/// Whether `cast` turns its source into a memref whose layout is fully
/// dynamic (the runtime's matrix arguments): any strided source casts to it.
bool castsToAnyLayout(memref::CastOp cast) {
  auto type = dyn_cast<MemRefType>(cast.getType());
  auto layout = type ? dyn_cast<StridedLayoutAttr>(type.getLayout()) : nullptr;
  return layout && ShapedType::isDynamic(layout.getOffset()) &&
         llvm::all_of(layout.getStrides(), ShapedType::isDynamic) &&
         llvm::all_of(type.getShape(), ShapedType::isDynamic);
}

/// Whether `value`'s users can take a strided layout instead of the
/// identity: linalg ops, copies, casts to a fully dynamic layout (runtime
/// calls' arguments), and views whose result types can be recomputed
/// (checked recursively).
bool acceptsStrided(Value value, MemRefType strided) {
  for (Operation *user : value.getUsers()) {
    if (isa<linalg::LinalgOp, memref::CopyOp, memref::DeallocOp>(user))
      continue;
    if (auto cast = dyn_cast<memref::CastOp>(user); cast && castsToAnyLayout(cast))
      continue;
    FailureOr<MemRefType> type = viewResultType(user, strided);
    if (failed(type) || !*type || !acceptsStrided(user->getResult(0), *type))
      return false;
  }
  return true;
}

/// Gives `value`'s view users the result types of its (strided) type,
/// which acceptsStrided checked.
void retype(Value value) {
  for (Operation *user : value.getUsers()) {
    FailureOr<MemRefType> type =
        viewResultType(user, cast<MemRefType>(value.getType()));
    if (failed(type) || !*type)
      continue;
    user->getResult(0).setType(*type);
    retype(user->getResult(0));
  }
}

/// `buffer`'s users use `replacement` (a view of another buffer, retyped
/// through its views); the copy between them, `buffer` and its deallocs
/// go.
void replaceBuffer(memref::AllocOp buffer, memref::CopyOp copy,
                   Value replacement) {
  SmallVector<Operation *> deallocs;
  for (Operation *user : buffer->getUsers())
    if (isa<memref::DeallocOp>(user))
      deallocs.push_back(user);
  for (Operation *dealloc : deallocs)
    dealloc->erase();
  copy->erase();
  buffer.getResult().replaceAllUsesWith(replacement);
  buffer->erase();
  retype(replacement);
}

struct InPlaceUpdatesPass
    : public lora::impl::InPlaceUpdatesBase<InPlaceUpdatesPass> {
  void runOnOperation() override {
    SmallVector<memref::CopyOp> copies;
    getOperation().walk([&](memref::CopyOp copy) { copies.push_back(copy); });
    for (memref::CopyOp copy : copies)
      if (!rewrite(copy))
        rewriteIntoView(copy);
  }

  /// A buffer copied whole into a view of another buffer (dY into its
  /// columns of [dY | dU]) and only read after the copy: its producers
  /// write into the view and its readers read the view.
  bool rewriteIntoView(memref::CopyOp copy) {
    // The source: a buffer of its own, possibly reshaped (expand_shape
    // and collapse_shape ops, from the copy back to the buffer).
    Value source = copy.getSource();
    SmallVector<Operation *> reshapes;
    while (Operation *def = source.getDefiningOp()) {
      if (!isa<memref::ExpandShapeOp, memref::CollapseShapeOp>(def))
        break;
      reshapes.push_back(def);
      source = def->getOperand(0);
    }
    auto buffer = source.getDefiningOp<memref::AllocOp>();
    Value target = copy.getTarget();
    auto targetType = dyn_cast<MemRefType>(target.getType());
    Footprint footprint;
    memref::AllocOp root = rootOf(target, footprint);
    if (!buffer || !root || root == buffer || !targetType ||
        buffer->getBlock() != copy->getBlock() ||
        root->getBlock() != copy->getBlock() ||
        !buffer.getType().getLayout().isIdentity() ||
        targetType.getElementType() != buffer.getType().getElementType())
      return false;
    // The root must exist where the buffer's producers write: a root made
    // after the buffer (a concatenation of a runtime call's result) moves
    // up when it needs no operands. Its liveness, for lora-plan-memory,
    // starts at its first use anyway.
    bool rootMoves = !root->isBeforeInBlock(buffer);
    if (rootMoves && root->getNumOperands() != 0)
      return false;
    // The target seen in the buffer's shape: the reshapes undone, each
    // expand_shape by a collapse_shape and the other way round.
    MemRefType replacementType = targetType;
    for (Operation *reshape : reshapes) {
      if (auto expand = dyn_cast<memref::ExpandShapeOp>(reshape)) {
        auto reassociation = expand.getReassociationIndices();
        if (!memref::CollapseShapeOp::isGuaranteedCollapsible(replacementType,
                                                               reassociation))
          return false;
        replacementType = memref::CollapseShapeOp::computeCollapsedType(
            replacementType, reassociation);
        continue;
      }
      auto collapse = cast<memref::CollapseShapeOp>(reshape);
      FailureOr<MemRefType> expanded =
          memref::ExpandShapeOp::computeExpandedType(
              replacementType, collapse.getSrcType().getShape(),
              collapse.getReassociationIndices());
      if (failed(expanded))
        return false;
      replacementType = *expanded;
    }
    if (replacementType.getShape() != buffer.getType().getShape())
      return false;
    // After the copy, the buffer is only read.
    if (!readOnlyAfter(buffer.getResult(), copy))
      return false;
    // The root's other uses stay out of the view's columns, or only read
    // them after the copy.
    Footprint whole{0, root.getType().getShape().back()};
    if (!othersOnlyReadAfter(root.getResult(), whole, footprint, copy, target))
      return false;
    // The target view itself is only read, after the copy: the buffer's
    // producers now write it before.
    if (!everyUseThroughViews(target, [&](OpOperand &use) {
          return use.getOwner() == copy ||
                 (runsAfter(use.getOwner(), copy) && onlyReads(use));
        }))
      return false;
    if (!acceptsStrided(buffer.getResult(), replacementType))
      return false;
    // The view's chain (pure views of the root, static) moves up to just
    // after the root, so that it dominates the buffer's producers.
    Operation *rootPlace = rootMoves ? buffer.getOperation() : root;
    SmallVector<Operation *> chain;
    for (Operation *op = target.getDefiningOp(); op != root;
         op = op->getOperand(0).getDefiningOp()) {
      for (Value operand : op->getOperands().drop_front())
        if (Operation *def = operand.getDefiningOp();
            def && !def->isBeforeInBlock(rootPlace))
          return false;
      chain.push_back(op);
    }
    if (rootMoves)
      root->moveBefore(buffer);
    Operation *after = root;
    for (Operation *op : llvm::reverse(chain)) {
      op->moveAfter(after);
      after = op;
    }
    OpBuilder b(after->getContext());
    b.setInsertionPointAfter(after);
    Value replacement = target;
    for (Operation *reshape : reshapes) {
      if (auto expand = dyn_cast<memref::ExpandShapeOp>(reshape)) {
        replacement = memref::CollapseShapeOp::create(
            b, expand.getLoc(), replacement, expand.getReassociationIndices());
        continue;
      }
      auto collapse = cast<memref::CollapseShapeOp>(reshape);
      replacement = memref::ExpandShapeOp::create(
          b, collapse.getLoc(), collapse.getSrcType().getShape(), replacement,
          collapse.getReassociationIndices());
    }
    replaceBuffer(buffer, copy, replacement);
    return true;
  }

  /// Whether every use of `value` (through views) after `copy` only reads;
  /// the copy itself reads.
  static bool readOnlyAfter(Value value, memref::CopyOp copy) {
    return everyUseThroughViews(value, [&](OpOperand &use) {
      return use.getOwner() == copy || runsBefore(use.getOwner(), copy) ||
             onlyReads(use);
    });
  }

  bool rewrite(memref::CopyOp copy) {
    // The target: a buffer of its own, written first by this copy.
    auto target = copy.getTarget().getDefiningOp<memref::AllocOp>();
    if (!target || target->getBlock() != copy->getBlock() ||
        !target.getType().getLayout().isIdentity())
      return false;
    for (Operation *user : target->getUsers())
      if (user != copy && !isa<memref::DeallocOp>(user) &&
          !runsAfter(user, copy))
        return false;
    // The source: a view of another buffer that nothing else touches
    // after the copy.
    Value source = copy.getSource();
    auto sourceType = dyn_cast<MemRefType>(source.getType());
    Footprint footprint;
    memref::AllocOp root = rootOf(source, footprint);
    if (!root || root == target || !sourceType ||
        sourceType.getShape() != target.getType().getShape() ||
        sourceType.getElementType() != target.getType().getElementType() ||
        root->getBlock() != copy->getBlock())
      return false;
    Footprint whole{0, root.getType().getShape().back()};
    if (!othersStayOut(root.getResult(), whole, footprint, copy, source))
      return false;
    // Nor does anything but the copy use the source view itself after it.
    if (!everyUseThroughViews(source, [&](OpOperand &use) {
          return use.getOwner() == copy || runsBefore(use.getOwner(), copy);
        }))
      return false;
    if (!acceptsStrided(target.getResult(), sourceType))
      return false;
    // Rewrite: the target's users use the source.
    replaceBuffer(target, copy, source);
    return true;
  }
};

} // namespace
