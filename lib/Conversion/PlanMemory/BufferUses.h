//===- BufferUses.h - who reads and who writes a buffer ---------*- C++ -*-===//
//
// Shared by the passes in this folder that rewrite bufferized steps
// (lora-in-place-updates, lora-adjacent-arguments): whether a use only
// reads, following the views made of a buffer.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_CONVERSION_PLANMEMORY_BUFFERUSES_H
#define LORA_CONVERSION_PLANMEMORY_BUFFERUSES_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::lora {

/// Whether `use` only reads its buffer: a linalg op's input, a copy's
/// source.
inline bool onlyReads(OpOperand &use) {
  Operation *user = use.getOwner();
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(user))
    return linalgOp.isDpsInput(&use);
  if (auto copy = dyn_cast<memref::CopyOp>(user))
    return copy.getSource() == use.get();
  return false;
}

/// Whether `accept` holds for every use of `value` and of the views made
/// of it (subview, expand_shape, collapse_shape, and casts, so that a
/// runtime call is seen where it uses the buffer), deallocs aside.
inline bool everyUseThroughViews(Value value,
                                 function_ref<bool(OpOperand &)> accept) {
  for (OpOperand &use : value.getUses()) {
    Operation *user = use.getOwner();
    if (isa<memref::DeallocOp>(user))
      continue;
    if (isa<memref::SubViewOp, memref::ExpandShapeOp,
            memref::CollapseShapeOp, memref::CastOp>(user)) {
      if (!everyUseThroughViews(user->getResult(0), accept))
        return false;
      continue;
    }
    if (!accept(use))
      return false;
  }
  return true;
}

} // namespace mlir::lora

#endif // LORA_CONVERSION_PLANMEMORY_BUFFERUSES_H
