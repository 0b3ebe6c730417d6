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

#include "lora/Conversion/RuntimeCalls.h"
#include "lora/Dialect/Lora/IR/LoraDialect.h"
#include "lora/Dialect/Lora/IR/LoraOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
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
  auto unranked = UnrankedMemRefType::get(rewriter.getF32Type(), 0);
  declareRuntimeFunction(rewriter, op->getParentOfType<ModuleOp>(), name,
                         rewriter.getFunctionType({unranked}, {}));
  Value cast = memref::CastOp::create(rewriter, op->getLoc(), unranked, buffer);
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

/// A dense row-major buffer of `buffer`'s values: the buffer itself, or a
/// copy when it is a strided view.
Value denseBuffer(RewriterBase &rewriter, Location loc, Value buffer) {
  auto type = cast<MemRefType>(buffer.getType());
  if (type.getLayout().isIdentity())
    return buffer;
  auto dense = MemRefType::get(type.getShape(), type.getElementType());
  Value copy = memref::AllocOp::create(rewriter, loc, dense);
  memref::CopyOp::create(rewriter, loc, buffer, copy);
  return copy;
}

/// An op that becomes a runtime call which reads its operands and writes
/// its results into new buffers (`Model` says how it calls).
template <typename Model, typename OpTy>
struct RuntimeCallModel
    : public BufferizableOpInterface::ExternalModel<Model, OpTy> {
  bool bufferizesToMemoryRead(Operation *, OpOperand &,
                              const AnalysisState &) const {
    return true;
  }
  bool bufferizesToMemoryWrite(Operation *, OpOperand &,
                               const AnalysisState &) const {
    return false;
  }
  AliasingValueList getAliasingValues(Operation *, OpOperand &,
                                      const AnalysisState &) const {
    return {};
  }
  bool bufferizesToAllocation(Operation *, Value) const { return true; }
};

/// A new dense buffer for each of `op`'s results.
SmallVector<Value> resultBuffers(RewriterBase &rewriter, Operation *op) {
  SmallVector<Value> buffers;
  for (Value result : op->getResults()) {
    auto tensor = cast<RankedTensorType>(result.getType());
    buffers.push_back(memref::AllocOp::create(
        rewriter, op->getLoc(),
        MemRefType::get(tensor.getShape(), tensor.getElementType())));
  }
  return buffers;
}

/// lora.attention and lora.attention_grad marked lora.flash: their operands
/// are read, their results new buffers that the runtime fills.
template <typename OpTy>
struct FlashAttentionModel
    : public RuntimeCallModel<FlashAttentionModel<OpTy>, OpTy> {
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto flash = op->getAttrOfType<StringAttr>(kFlashAttrName);
    if (!flash)
      return op->emitOpError("reached bufferization without lora.flash; "
                             "convert-lora-to-linalg lowers it otherwise");
    Location loc = op->getLoc();
    int64_t dynamic = ShapedType::kDynamic;
    auto generic =
        MemRefType::get({dynamic, dynamic, dynamic}, rewriter.getF32Type());
    SmallVector<Value> arguments;
    for (Value operand : op->getOperands()) {
      FailureOr<Value> buffer = getBuffer(rewriter, operand, options, state);
      if (failed(buffer))
        return failure();
      arguments.push_back(memref::CastOp::create(
          rewriter, loc, generic, denseBuffer(rewriter, loc, *buffer)));
    }
    SmallVector<Value> results = resultBuffers(rewriter, op);
    for (Value buffer : results)
      arguments.push_back(
          memref::CastOp::create(rewriter, loc, generic, buffer));
    auto attention = cast<OpTy>(op);
    SmallVector<Type> types(arguments.size(), generic);
    for (int64_t value :
         {int64_t(attention.getNumHeads()), int64_t(attention.getNumKvHeads()),
          int64_t(attention.getHeadDim())}) {
      arguments.push_back(arith::ConstantOp::create(
          rewriter, loc, rewriter.getI64IntegerAttr(value)));
      types.push_back(rewriter.getI64Type());
    }
    arguments.push_back(arith::ConstantOp::create(
        rewriter, loc,
        rewriter.getF32FloatAttr(float(attention.getScaleOrDefault()))));
    types.push_back(rewriter.getF32Type());

    // "cpu": lora_attention_f32; "gpu": lora_gpu_attention_f32;
    // "gpu-bf16": lora_gpu_attention_bf16 (f32 buffers, bf16 products).
    StringRef where = flash.getValue();
    std::string name =
        (where.starts_with("gpu") ? "lora_gpu_" : "lora_") +
        std::string(isa<AttentionOp>(op) ? "attention_" : "attention_grad_") +
        (where == "gpu-bf16" ? "bf16" : "f32");
    declareRuntimeFunction(rewriter, op->getParentOfType<ModuleOp>(), name,
                           rewriter.getFunctionType(types, {}));
    func::CallOp::create(rewriter, loc, name, TypeRange(), arguments);
    replaceOpWithBufferizedValues(rewriter, op, results);
    return success();
  }
};

/// `buffer` ([..., n]) as the 2-D memref<?x?xf32, strided<[?, ?], offset: ?>>
/// the runtime's matrix entry points take: the leading dims collapsed in
/// place where the strides allow (rows contiguous), from a dense copy
/// otherwise.
Value matrixArgument(RewriterBase &rewriter, Location loc, Value buffer) {
  auto type = cast<MemRefType>(buffer.getType());
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(type.getStridesAndOffset(strides, offset)) || strides.back() != 1)
    buffer = denseBuffer(rewriter, loc, buffer);
  type = cast<MemRefType>(buffer.getType());
  if (type.getRank() > 2) {
    SmallVector<ReassociationIndices> groups(2);
    for (int64_t d = 0; d + 1 < type.getRank(); ++d)
      groups[0].push_back(d);
    groups[1].push_back(type.getRank() - 1);
    if (!memref::CollapseShapeOp::isGuaranteedCollapsible(type, groups))
      buffer = denseBuffer(rewriter, loc, buffer);
    buffer = memref::CollapseShapeOp::create(rewriter, loc, buffer, groups);
  }
  int64_t dynamic = ShapedType::kDynamic;
  auto generic = MemRefType::get(
      {dynamic, dynamic}, rewriter.getF32Type(),
      StridedLayoutAttr::get(rewriter.getContext(), dynamic,
                             {dynamic, dynamic}));
  return memref::CastOp::create(rewriter, loc, generic, buffer);
}

/// lora.adapter_grad marked lora.runtime_call: dY, B, U and X are read in
/// place (views of [dY | dU] and [Y0 | U] included); dU, dB and dA are new
/// buffers that `lora_adapter_grad_f32` (or `_ub_f32` without X) fills.
struct AdapterGradModel
    : public RuntimeCallModel<AdapterGradModel, AdapterGradOp> {
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto grads = cast<AdapterGradOp>(op);
    if (!op->hasAttr(kAdapterGradCallAttrName))
      return op->emitOpError("reached bufferization without " +
                             kAdapterGradCallAttrName.str() +
                             "; convert-lora-to-linalg lowers it otherwise");
    Location loc = op->getLoc();
    SmallVector<Value> arguments = {arith::ConstantOp::create(
        rewriter, loc,
        rewriter.getF32FloatAttr(float(grads.getScale().convertToDouble())))};
    for (Value operand : op->getOperands()) {
      FailureOr<Value> buffer = getBuffer(rewriter, operand, options, state);
      if (failed(buffer))
        return failure();
      arguments.push_back(matrixArgument(rewriter, loc, *buffer));
    }
    SmallVector<Value> results = resultBuffers(rewriter, op);
    for (Value buffer : results)
      arguments.push_back(matrixArgument(rewriter, loc, buffer));
    SmallVector<Type> types;
    for (Value argument : arguments)
      types.push_back(argument.getType());
    std::string name = grads.getInput() ? "lora_adapter_grad_f32"
                                        : "lora_adapter_grad_ub_f32";
    declareRuntimeFunction(rewriter, op->getParentOfType<ModuleOp>(), name,
                           rewriter.getFunctionType(types, {}));
    func::CallOp::create(rewriter, loc, name, TypeRange(), arguments);
    replaceOpWithBufferizedValues(rewriter, op, results);
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
    AttentionOp::attachInterface<FlashAttentionModel<AttentionOp>>(*context);
    AttentionGradOp::attachInterface<FlashAttentionModel<AttentionGradOp>>(
        *context);
    AdapterGradOp::attachInterface<AdapterGradModel>(*context);
  });
}
