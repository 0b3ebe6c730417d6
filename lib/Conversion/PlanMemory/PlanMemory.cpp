//===- PlanMemory.cpp - one static arena for a step's temporaries ---------===//
//
// After bufferization every temporary of a step is a memref.alloc with a
// static shape and its memref.dealloc. This pass numbers the ops of each
// function in execution order (nested regions inside their parent's span),
// takes each alloc's live interval [alloc, last dealloc], and packs the
// buffers into one arena by offset: largest first, each at the lowest
// offset that no buffer live at the same time overlaps. Liveness is
// measured from the first to the last use of a buffer and its views, not
// from alloc to dealloc: the ownership-based deallocation frees every
// buffer of a block at the block's end, and buffer-hoisting moves static
// allocs to its top, which would make every buffer live for the whole step. The allocs become
// memref.view ops into the arena, allocated once at entry and freed at
// return; the arena's size is the step's planned activation memory,
// recorded on the module as `lora.planned_arena_bytes`.
//
// A loop body's temporaries are freed in the same iteration, so their
// offsets are reused by every iteration. Buffers whose dealloc lies outside
// the alloc's block (one per iteration, or escaping) or with dynamic shapes
// are not planned and keep their own allocation.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/IR/Builders.h"

#include <algorithm>
#include <limits>

namespace mlir::lora {
#define GEN_PASS_DEF_PLANMEMORY
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

constexpr int64_t kAlignment = 64;

struct Buffer {
  memref::AllocOp alloc;
  SmallVector<memref::DeallocOp> deallocs;
  int64_t start = 0, end = 0, bytes = 0, offset = -1;
};

/// Bytes of a static memref with the identity layout, or -1.
int64_t staticBytes(MemRefType type) {
  if (!type.hasStaticShape() || !type.getLayout().isIdentity())
    return -1;
  Type element = type.getElementType();
  int64_t width = element.isIndex() ? 64 : element.getIntOrFloatBitWidth();
  int64_t bytes = type.getNumElements() * std::max<int64_t>(width / 8, 1);
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

struct PlanMemoryPass : public lora::impl::PlanMemoryBase<PlanMemoryPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t total = 0;
    for (auto function : module.getOps<func::FuncOp>())
      if (!function.isExternal())
        total += plan(function);
    module->setAttr("lora.planned_arena_bytes",
                    IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                     total));
  }

  /// Plans `function`'s buffers; returns the arena's size in bytes.
  int64_t plan(func::FuncOp function) {
    // Execution order: an op's position, nested ops after their parent;
    // and the end of its span, the last position nested in it.
    DenseMap<Operation *, int64_t> position, spanEnd;
    int64_t counter = 0;
    function->walk([&](Operation *op, const WalkStage &stage) {
      if (stage.isBeforeAllRegions())
        position[op] = counter++;
      if (stage.isAfterAllRegions())
        spanEnd[op] = counter - 1;
    });
    SmallVector<Buffer> buffers;
    function.walk([&](memref::AllocOp alloc) {
      Buffer buffer;
      buffer.alloc = alloc;
      buffer.bytes = staticBytes(alloc.getType());
      if (buffer.bytes < 0 || !alloc.getDynamicSizes().empty() ||
          !alloc.getSymbolOperands().empty())
        return;
      // Live from the first to the last use of the buffer or of a view of
      // it, measured in the alloc's block (a use inside a loop keeps it for
      // the whole loop). Deallocs do not count: the ownership-based
      // deallocation puts them at the end of the block.
      Block *block = alloc->getBlock();
      buffer.start = std::numeric_limits<int64_t>::max();
      buffer.end = position[alloc];
      SmallVector<Value> aliases = {alloc.getResult()};
      while (!aliases.empty()) {
        Value value = aliases.pop_back_val();
        for (OpOperand &use : value.getUses()) {
          Operation *user = use.getOwner();
          if (auto dealloc = dyn_cast<memref::DeallocOp>(user)) {
            if (value != alloc.getResult())
              return; // freed through a view: not planned
            buffer.deallocs.push_back(dealloc);
            continue;
          }
          if (isa<ViewLikeOpInterface, memref::CastOp, memref::CollapseShapeOp,
                  memref::ExpandShapeOp>(user))
            for (Value result : user->getResults())
              if (isa<MemRefType>(result.getType()))
                aliases.push_back(result);
          if (auto loop = dyn_cast<scf::ForOp>(user))
            if (use.getOperandNumber() >= loop.getNumControlOperands())
              aliases.push_back(
                  loop.getTiedLoopResult(&use));
          Operation *inBlock = block->findAncestorOpInBlock(*user);
          if (!inBlock)
            return; // used outside the alloc's block: not planned
          buffer.start = std::min(buffer.start, position[inBlock]);
          buffer.end = std::max(buffer.end, spanEnd[inBlock]);
        }
      }
      if (buffer.deallocs.empty())
        return;
      if (buffer.start > buffer.end)
        buffer.start = buffer.end = position[alloc];
      buffers.push_back(buffer);
    });
    if (buffers.empty())
      return 0;

    // Largest first, each at the lowest offset free for its whole lifetime.
    SmallVector<Buffer *> order;
    for (Buffer &buffer : buffers)
      order.push_back(&buffer);
    llvm::stable_sort(order, [](const Buffer *a, const Buffer *b) {
      return a->bytes > b->bytes;
    });
    SmallVector<Buffer *> placed;
    int64_t arenaBytes = 0;
    for (Buffer *buffer : order) {
      SmallVector<std::pair<int64_t, int64_t>> taken;
      for (Buffer *other : placed)
        if (other->start <= buffer->end && buffer->start <= other->end)
          taken.push_back({other->offset, other->offset + other->bytes});
      llvm::sort(taken);
      int64_t offset = 0;
      for (auto [begin, end] : taken) {
        if (offset + buffer->bytes <= begin)
          break;
        offset = std::max(offset, end);
      }
      buffer->offset = offset;
      arenaBytes = std::max(arenaBytes, offset + buffer->bytes);
      placed.push_back(buffer);
    }

    // One arena per call: allocated at entry, freed before each return.
    OpBuilder b = OpBuilder::atBlockBegin(&function.getBody().front());
    Location loc = function.getLoc();
    auto arenaType = MemRefType::get({arenaBytes}, b.getI8Type());
    Value arena = memref::AllocOp::create(b, loc, arenaType,
                                          b.getI64IntegerAttr(kAlignment));
    function.walk([&](func::ReturnOp ret) {
      OpBuilder rb(ret);
      memref::DeallocOp::create(rb, ret.getLoc(), arena);
    });
    // Offsets first, as constants at the top of the function (they dominate
    // every use); the allocs are erased only afterwards, since the builder
    // may point at one of them.
    SmallVector<Value> offsets;
    DenseMap<int64_t, Value> constants;
    for (Buffer &buffer : buffers) {
      Value &constant = constants[buffer.offset];
      if (!constant)
        constant = arith::ConstantIndexOp::create(b, loc, buffer.offset);
      offsets.push_back(constant);
    }
    for (auto [buffer, offset] : llvm::zip(buffers, offsets)) {
      OpBuilder vb(buffer.alloc);
      Value view = memref::ViewOp::create(vb, buffer.alloc.getLoc(),
                                          buffer.alloc.getType(), arena,
                                          offset, ValueRange{});
      buffer.alloc.getResult().replaceAllUsesWith(view);
      for (memref::DeallocOp dealloc : buffer.deallocs)
        dealloc.erase();
      buffer.alloc.erase();
    }
    return arenaBytes;
  }
};

} // namespace
