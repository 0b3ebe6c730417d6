//===- HostSharedAllocs.cpp - host buffers in CUDA managed memory ---------===//

#include "lora/Conversion/Passes.h"
#include "lora/Conversion/RuntimeCalls.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::lora {
#define GEN_PASS_DEF_HOSTSHAREDALLOCS
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

struct HostSharedAllocsPass
    : public lora::impl::HostSharedAllocsBase<HostSharedAllocsPass> {
  /// Constants (memref.get_global) live in the host program's memory,
  /// which kernels cannot read: each host function copies the ones it uses
  /// into a buffer of its own (made managed below) and frees it on return.
  void copyGlobals() {
    for (auto function : getOperation().getOps<func::FuncOp>()) {
      if (function.isExternal())
        continue;
      SmallVector<memref::GetGlobalOp> globals;
      function.walk([&](memref::GetGlobalOp op) {
        if (!op->getParentOfType<gpu::LaunchOp>())
          globals.push_back(op);
      });
      if (globals.empty())
        continue;
      OpBuilder builder(function.getContext());
      SmallVector<Value> copies;
      for (memref::GetGlobalOp global : globals) {
        builder.setInsertionPointAfter(global);
        auto type = cast<MemRefType>(global.getType());
        Value copy = memref::AllocOp::create(builder, global.getLoc(), type);
        global.getResult().replaceAllUsesWith(copy);
        memref::CopyOp::create(builder, global.getLoc(), global.getResult(),
                               copy);
        copies.push_back(copy);
      }
      function.walk([&](func::ReturnOp ret) {
        builder.setInsertionPoint(ret);
        for (Value copy : copies)
          memref::DeallocOp::create(builder, ret.getLoc(), copy);
      });
    }
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    copyGlobals();
    SmallVector<Operation *> allocs, deallocs;
    getOperation()->walk([&](Operation *op) {
      // Kernels keep their own (none are made today).
      if (op->getParentOfType<gpu::GPUModuleOp>() ||
          op->getParentOfType<gpu::LaunchOp>())
        return;
      if (isa<memref::AllocOp>(op))
        allocs.push_back(op);
      else if (isa<memref::DeallocOp>(op))
        deallocs.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (Operation *op : allocs) {
      auto alloc = cast<memref::AllocOp>(op);
      rewriter.setInsertionPoint(alloc);
      auto shared = gpu::AllocOp::create(
          rewriter, alloc.getLoc(), alloc.getType(), /*asyncToken=*/Type(),
          /*asyncDependencies=*/ValueRange(), alloc.getDynamicSizes(),
          alloc.getSymbolOperands(), /*hostShared=*/true);
      rewriter.replaceOp(alloc, shared.getMemref());
    }
    // gpu-to-llvm lowers only the asynchronous gpu.dealloc; the runtime's
    // lora_gpu_free takes the buffer as an unranked memref instead.
    for (Operation *op : deallocs) {
      auto dealloc = cast<memref::DeallocOp>(op);
      auto type = cast<MemRefType>(dealloc.getMemref().getType());
      auto unranked = UnrankedMemRefType::get(type.getElementType(), 0);
      // The runtime frees 8-, 16-, 32- and 64-bit element buffers.
      Type element = type.getElementType();
      unsigned bits =
          element.isIntOrFloat() ? element.getIntOrFloatBitWidth() : 0;
      if (bits != 8 && bits != 16 && bits != 32 && bits != 64) {
        dealloc.emitOpError("lora-host-shared-allocs: no runtime free for "
                            "buffers of ")
            << element;
        return signalPassFailure();
      }
      std::string name = "lora_gpu_free_" + std::to_string(bits);
      lora::declareRuntimeFunction(rewriter, module, name,
                                   rewriter.getFunctionType({unranked}, {}));
      rewriter.setInsertionPoint(dealloc);
      Value cast = memref::CastOp::create(rewriter, dealloc.getLoc(), unranked,
                                          dealloc.getMemref());
      func::CallOp::create(rewriter, dealloc.getLoc(), name, TypeRange(),
                           ValueRange{cast});
      rewriter.eraseOp(dealloc);
    }
  }
};

} // namespace
