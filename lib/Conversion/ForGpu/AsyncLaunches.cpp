//===- AsyncLaunches.cpp - kernels in stream order, waits where needed ----===//
//
// A synchronous gpu.launch_func lowers to a launch followed by a
// synchronization of the host with the GPU: a step of a 1B model waited on
// the GPU thousands of times. Here every launch is asynchronous on one
// stream (the runtime's stream of the calling thread, which its GEMMs and
// flash attention use too), so kernels run in program order without the
// host waiting, and the host waits only where it must:
//
// - before it reads or writes a buffer that work on the stream may use
//   (a host loop over partial sums, a scalar the optimizer needs);
// - before it calls a runtime function that does not run on the stream
//   (the data-parallel all-reduce waits for the stream itself, when it
//   communicates);
// - before it returns, so that the step's results are there.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/DenseSet.h"

namespace mlir::lora {
#define GEN_PASS_DEF_ASYNCLAUNCHES
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

/// The runtime's functions that enqueue their work on the calling thread's
/// stream and return without waiting (GEMMs, flash attention): every
/// `lora_gpu_` entry point but the frees, which only return a buffer to the
/// runtime's pool.
bool isStreamCall(func::CallOp call) {
  StringRef name = call.getCallee();
  return name.starts_with("lora_gpu_") && !name.starts_with("lora_gpu_free_");
}

bool isFree(func::CallOp call) {
  return call.getCallee().starts_with("lora_gpu_free_");
}

/// The data-parallel all-reduce: it waits for the calling thread's stream
/// itself, and only when it communicates (more than one process), so a
/// single-process step does not wait once per gradient.
bool isCollective(func::CallOp call) {
  return call.getCallee().starts_with("lora_all_reduce_");
}

/// The buffer a view (subview, cast, reshape, ...) of `value` looks into.
Value rootBuffer(Value value) {
  while (auto view = value.getDefiningOp<ViewLikeOpInterface>())
    value = view.getViewSource();
  return value;
}

struct AsyncLaunchesPass
    : public lora::impl::AsyncLaunchesBase<AsyncLaunchesPass> {
  /// Buffers that work on the stream reads or writes.
  llvm::DenseSet<Value> deviceBuffers;
  Value stream;

  bool isDeviceWork(Operation *op) {
    if (isa<gpu::LaunchFuncOp>(op))
      return true;
    auto call = dyn_cast<func::CallOp>(op);
    return call && isStreamCall(call);
  }

  bool containsDeviceWork(Operation *op) {
    return op
        ->walk([&](Operation *inner) {
          return isDeviceWork(inner) ? WalkResult::interrupt()
                                     : WalkResult::advance();
        })
        .wasInterrupted();
  }

  /// Whether the host's `op` (no regions) reads or writes a buffer the
  /// stream's work may use, or has effects it does not declare.
  bool touchesDeviceBuffers(Operation *op) {
    if (auto call = dyn_cast<func::CallOp>(op))
      return !isFree(call) && !isStreamCall(call) && !isCollective(call);
    auto effects = dyn_cast<MemoryEffectOpInterface>(op);
    if (!effects)
      return !isMemoryEffectFree(op);
    SmallVector<MemoryEffects::EffectInstance> instances;
    effects.getEffects(instances);
    for (const MemoryEffects::EffectInstance &effect : instances) {
      if (!isa<MemoryEffects::Read, MemoryEffects::Write>(effect.getEffect()))
        continue;
      Value value = effect.getValue();
      if (!value || deviceBuffers.contains(rootBuffer(value)))
        return true;
    }
    return false;
  }

  /// Whether anything in `op`'s regions touches device buffers on the host.
  bool regionsTouchDeviceBuffers(Operation *op) {
    return op
        ->walk([&](Operation *inner) {
          if (inner == op || inner->getNumRegions() > 0 ||
              isDeviceWork(inner))
            return WalkResult::advance();
          return touchesDeviceBuffers(inner) ? WalkResult::interrupt()
                                             : WalkResult::advance();
        })
        .wasInterrupted();
  }

  void waitBefore(Operation *op) {
    OpBuilder builder(op);
    gpu::WaitOp::create(builder, op->getLoc(), Type(), ValueRange{stream});
  }

  void makeAsync(gpu::LaunchFuncOp launch) {
    OpBuilder builder(launch);
    std::optional<gpu::KernelDim3> cluster;
    if (launch.hasClusterSize())
      cluster = launch.getClusterSizeOperandValues();
    gpu::LaunchFuncOp::create(
        builder, launch.getLoc(), launch.getKernelAttr(),
        launch.getGridSizeOperandValues(), launch.getBlockSizeOperandValues(),
        launch.getDynamicSharedMemorySize(), launch.getKernelOperands(),
        builder.getType<gpu::AsyncTokenType>(), ValueRange{stream}, cluster);
    launch.erase();
  }

  /// Walks `block` in order; `pending`: work may be on the stream that the
  /// host has not waited for.
  void visit(Block &block, bool pending) {
    for (Operation &op : llvm::make_early_inc_range(block)) {
      if (auto launch = dyn_cast<gpu::LaunchFuncOp>(op)) {
        makeAsync(launch);
        pending = true;
      } else if (isDeviceWork(&op)) {
        pending = true;
      } else if (op.hasTrait<OpTrait::IsTerminator>()) {
        // The step's results must be complete when it returns. Other
        // terminators (a loop's yield) keep what is pending.
        if (pending && isa<func::ReturnOp>(op)) {
          waitBefore(&op);
          pending = false;
        }
      } else if (op.getNumRegions() > 0) {
        // A loop or branch: one wait before it when its body reads device
        // buffers on the host and launches nothing; otherwise its body
        // waits where it must, every iteration starting as pending when a
        // launch inside may have run in the one before.
        bool deviceWork = containsDeviceWork(&op);
        if (pending && !deviceWork && regionsTouchDeviceBuffers(&op)) {
          waitBefore(&op);
          pending = false;
        }
        for (Region &region : op.getRegions())
          for (Block &inner : region)
            visit(inner, pending || deviceWork);
        pending = pending || deviceWork;
      } else if (pending && touchesDeviceBuffers(&op)) {
        waitBefore(&op);
        pending = false;
      }
    }
  }

  void runOnOperation() override {
    for (auto function : getOperation().getOps<func::FuncOp>()) {
      if (function.isExternal())
        continue;
      if (!containsDeviceWork(function))
        continue;
      deviceBuffers.clear();
      function.walk([&](Operation *op) {
        if (!isDeviceWork(op))
          return;
        for (Value operand : op->getOperands())
          if (isa<BaseMemRefType>(operand.getType()))
            deviceBuffers.insert(rootBuffer(operand));
      });
      // The stream: `gpu.wait async` with no dependencies lowers to the
      // runtime's mgpuStreamCreate, the calling thread's stream.
      OpBuilder builder(function.getContext());
      builder.setInsertionPointToStart(&function.getBody().front());
      stream = gpu::WaitOp::create(builder, function.getLoc(),
                                   builder.getType<gpu::AsyncTokenType>(),
                                   ValueRange{})
                   .getAsyncToken();
      for (Block &block : function.getBody())
        visit(block, /*pending=*/false);
    }
  }
};

} // namespace
