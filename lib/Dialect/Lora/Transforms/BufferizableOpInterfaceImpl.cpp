//===- BufferizableOpInterfaceImpl.cpp - lora collectives on buffers ------===//
//
// `lora.all_reduce_start` and `lora.all_reduce_wait` bufferize in place: the
// gradient's buffer is handed to the runtime (`lora_all_reduce_start_f32`)
// and the reduced sum is written back into the same buffer by
// `lora_all_reduce_wait_f32`. Both take the buffer as an unranked memref,
// so strided views (rows of a fused [dW; dA] GEMM) need no copy.
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/Transforms/BufferizableOpInterfaceImpl.h"

#include "lora/Dialect/Lora/IR/LoraDialect.h"
#include "lora/Dialect/Lora/IR/LoraOps.h"

#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace mlir::bufferization;
using namespace mlir::lora;

namespace {

/// Calls `name(memref<*xf32>)` on `buffer`, declaring it once per module.
void callRuntime(RewriterBase &rewriter, Operation *op, StringRef name,
                 Value buffer) {
  auto module = op->getParentOfType<ModuleOp>();
  auto unranked = UnrankedMemRefType::get(rewriter.getF32Type(), 0);
  if (!module.lookupSymbol<func::FuncOp>(name)) {
    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPointToStart(module.getBody());
    auto callee = func::FuncOp::create(
        rewriter, module.getLoc(), name,
        rewriter.getFunctionType({unranked}, {}));
    callee.setPrivate();
    callee->setAttr("llvm.emit_c_interface", rewriter.getUnitAttr());
  }
  Value cast =
      memref::CastOp::create(rewriter, op->getLoc(), unranked, buffer);
  func::CallOp::create(rewriter, op->getLoc(), name, TypeRange(),
                       ValueRange{cast});
}

template <typename OpTy>
struct CollectiveModel
    : public BufferizableOpInterface::ExternalModel<CollectiveModel<OpTy>,
                                                    OpTy> {
  bool bufferizesToMemoryRead(Operation *, OpOperand &,
                              const AnalysisState &) const {
    return true;
  }
  bool bufferizesToMemoryWrite(Operation *, OpOperand &,
                               const AnalysisState &) const {
    return true;
  }
  AliasingValueList getAliasingValues(Operation *op, OpOperand &,
                                      const AnalysisState &) const {
    return {{op->getResult(0), BufferRelation::Equivalent}};
  }
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    FailureOr<Value> buffer =
        getBuffer(rewriter, op->getOperand(0), options, state);
    if (failed(buffer))
      return failure();
    callRuntime(rewriter, op,
                isa<AllReduceStartOp>(op) ? "lora_all_reduce_start_f32"
                                          : "lora_all_reduce_wait_f32",
                *buffer);
    replaceOpWithBufferizedValues(rewriter, op, *buffer);
    return success();
  }
};

} // namespace

void mlir::lora::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, LoraDialect *) {
    AllReduceStartOp::attachInterface<CollectiveModel<AllReduceStartOp>>(
        *context);
    AllReduceWaitOp::attachInterface<CollectiveModel<AllReduceWaitOp>>(
        *context);
  });
}
