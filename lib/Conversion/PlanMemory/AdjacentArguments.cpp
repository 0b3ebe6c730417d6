//===- AdjacentArguments.cpp - concatenations of arguments read in place --===//
//
// lora-fuse-adapters multiplies by [W; A], the frozen weight with the
// adapter's A below it, so each adapted layer's forward is one GEMM. After
// bufferization that concatenation is a buffer of the arena into which
// both arguments are copied on every step: the whole frozen model, copied
// each step. The runtime lays a step's arguments out one after the other
// (runtime/lib/Trainer.cpp), so W and A usually already are [W; A] in
// memory. This pass reads them there when they are: a run-time check of
// the arguments' addresses chooses between a view of the arguments and
// the copies.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"

#include "BufferUses.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Dominance.h"

namespace mlir::lora {
#define GEN_PASS_DEF_ADJACENTARGUMENTS
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

/// One argument copied into rows [row, row + rows) of the concatenation.
struct Part {
  memref::CopyOp copy;
  BlockArgument argument;
  int64_t row, rows;
};

/// The parts of `view` (a 2-D identity-layout buffer): every use but
/// reading ones must be a full-width row block that one copy from a
/// function argument fills, and the blocks tile the rows in order. The
/// arguments must only be read in the whole function, so that reading
/// them later, in place, sees what the copies would have copied. Empty
/// when `view` is anything else.
SmallVector<Part> partsOf(memref::ViewOp view, func::FuncOp function,
                          SmallVector<OpOperand *> &reads) {
  auto type = view.getType();
  if (type.getRank() != 2 || !type.getLayout().isIdentity() ||
      !type.hasStaticShape())
    return {};
  int64_t columns = type.getDimSize(1);
  SmallVector<Part> parts;
  for (OpOperand &use : view->getUses()) {
    Operation *user = use.getOwner();
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(user)) {
      // Read only: an input, never an init.
      if (!linalgOp.isDpsInput(&use))
        return {};
      reads.push_back(&use);
      continue;
    }
    auto block = dyn_cast<memref::SubViewOp>(user);
    if (!block || !block->hasOneUse() || !block.hasUnitStride())
      return {};
    auto copy = dyn_cast<memref::CopyOp>(*block->getUsers().begin());
    auto argument = copy ? dyn_cast<BlockArgument>(copy.getSource()) : nullptr;
    if (!copy || copy.getTarget() != block.getResult() || !argument ||
        argument.getOwner() != &function.getBody().front())
      return {};
    auto argumentType = dyn_cast<MemRefType>(argument.getType());
    ArrayRef<int64_t> offsets = block.getStaticOffsets();
    ArrayRef<int64_t> sizes = block.getStaticSizes();
    if (!argumentType || !argumentType.getLayout().isIdentity() ||
        argumentType.getElementType() != type.getElementType() ||
        ShapedType::isDynamicShape(offsets) || ShapedType::isDynamicShape(sizes) ||
        offsets[1] != 0 || sizes[1] != columns ||
        argumentType.getShape() != sizes ||
        copy->getBlock() != view->getBlock() ||
        !lora::everyUseThroughViews(argument, lora::onlyReads))
      return {};
    parts.push_back({copy, argument, offsets[0], sizes[0]});
  }
  llvm::sort(parts, [](const Part &a, const Part &b) { return a.row < b.row; });
  int64_t next = 0;
  for (const Part &part : parts) {
    if (part.row != next)
      return {};
    next += part.rows;
  }
  if (parts.size() < 2 || next != type.getDimSize(0) || reads.empty())
    return {};
  // The copies come before every read.
  for (const Part &part : parts)
    for (OpOperand *read : reads) {
      Operation *reader =
          view->getBlock()->findAncestorOpInBlock(*read->getOwner());
      if (!reader || !part.copy->isBeforeInBlock(reader))
        return {};
    }
  return parts;
}

struct AdjacentArgumentsPass
    : public lora::impl::AdjacentArgumentsBase<AdjacentArgumentsPass> {
  void runOnOperation() override {
    getOperation().walk([&](func::FuncOp function) {
      if (function.isExternal())
        return;
      SmallVector<memref::ViewOp> views;
      function.walk([&](memref::ViewOp view) { views.push_back(view); });
      for (memref::ViewOp view : views)
        rewrite(view, function);
    });
  }

  void rewrite(memref::ViewOp view, func::FuncOp function) {
    SmallVector<OpOperand *> reads;
    SmallVector<Part> parts = partsOf(view, function, reads);
    if (parts.empty())
      return;
    MemRefType type = view.getType();
    int64_t elementBytes = type.getElementTypeBitWidth() / 8;
    Operation *last = parts.front().copy;
    for (const Part &part : parts)
      if (last->isBeforeInBlock(part.copy))
        last = part.copy;
    OpBuilder b(last->getContext());
    b.setInsertionPointAfter(last);
    Location loc = view.getLoc();
    // Adjacent: each part's first element follows the previous part's
    // last (identity layouts, offset 0: the aligned pointers say it all).
    Value adjacent;
    Value previous;
    int64_t previousBytes = 0;
    for (const Part &part : parts) {
      Value address = memref::ExtractAlignedPointerAsIndexOp::create(
          b, loc, part.argument);
      if (previous) {
        Value expected = arith::AddIOp::create(
            b, loc, previous,
            arith::ConstantIndexOp::create(b, loc, previousBytes));
        Value equal = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                            address, expected);
        adjacent = adjacent ? arith::AndIOp::create(b, loc, adjacent, equal)
                                  .getResult()
                            : equal;
      }
      previous = address;
      previousBytes = part.rows * type.getDimSize(1) * elementBytes;
    }
    auto choice = scf::IfOp::create(b, loc, TypeRange{type}, adjacent,
                                    /*withElseRegion=*/true);
    // Then: the first argument's buffer seen as the whole [R, C].
    b.setInsertionPointToStart(choice.thenBlock());
    Value whole = memref::ReinterpretCastOp::create(
        b, loc, type, parts.front().argument, /*offset=*/0, type.getShape(),
        ArrayRef<int64_t>{type.getDimSize(1), 1});
    scf::YieldOp::create(b, loc, whole);
    // Else: the copies, as before.
    b.setInsertionPointToStart(choice.elseBlock());
    auto yield = scf::YieldOp::create(b, loc, view.getResult());
    for (const Part &part : parts)
      part.copy->moveBefore(yield);
    for (OpOperand *read : reads)
      read->set(choice.getResult(0));
  }
};

} // namespace
