//===- LoraDialect.cpp - the lora dialect ---------------------------------===//
//
// Registers ops and attributes and verifies the parameter argument
// attributes (`lora.role`, `lora.name`).
//
//===----------------------------------------------------------------------===//

#include "lora/Dialect/Lora/IR/LoraDialect.h"
#include "lora/Dialect/Lora/IR/LoraOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::lora;

#include "lora/Dialect/Lora/IR/LoraDialect.cpp.inc"
#include "lora/Dialect/Lora/IR/LoraEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "lora/Dialect/Lora/IR/LoraAttrs.cpp.inc"

void LoraDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "lora/Dialect/Lora/IR/LoraOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "lora/Dialect/Lora/IR/LoraAttrs.cpp.inc"
      >();
}

/// `lora.name` names a tensor of the step's interface (a parameter, an
/// input, optimizer state, a gradient, the loss).
static LogicalResult verifyNameAttr(Operation *op, StringRef what,
                                    unsigned index, NamedAttribute attribute) {
  auto str = dyn_cast<StringAttr>(attribute.getValue());
  if (!str || str.getValue().empty())
    return op->emitOpError()
           << what << " #" << index << ": '" << attribute.getName().getValue()
           << "' must be a non-empty string (the tensor's name)";
  return success();
}

LogicalResult LoraDialect::verifyRegionArgAttribute(Operation *op,
                                                    unsigned regionIndex,
                                                    unsigned argIndex,
                                                    NamedAttribute attribute) {
  StringRef name = attribute.getName().getValue();
  auto fail = [&]() {
    return op->emitOpError() << "argument #" << argIndex << ": ";
  };
  if (name == getRoleAttrName()) {
    if (!isa<RoleAttr>(attribute.getValue()))
      return fail() << "'" << name
                    << "' must be a #lora.role<frozen|lora|full>, got "
                    << attribute.getValue();
    Region &region = op->getRegion(regionIndex);
    if (region.empty())
      return success();
    Type type = region.getArgument(argIndex).getType();
    // Memrefs too: the attributes survive bufferization, for the runtime.
    auto shaped = dyn_cast<ShapedType>(type);
    if (!shaped || !shaped.hasRank() ||
        !isa<FloatType>(shaped.getElementType()) ||
        !isa<RankedTensorType, MemRefType>(type))
      return fail() << "a parameter must be a ranked tensor or memref of "
                       "floats, got "
                    << type;
    return success();
  }
  if (name == getParamNameAttrName())
    return verifyNameAttr(op, "argument", argIndex, attribute);
  return fail() << "unknown lora argument attribute '" << name
                << "' (expected '" << getRoleAttrName() << "' or '"
                << getParamNameAttrName() << "')";
}

LogicalResult
LoraDialect::verifyRegionResultAttribute(Operation *op, unsigned regionIndex,
                                         unsigned resultIndex,
                                         NamedAttribute attribute) {
  if (attribute.getName().getValue() == getParamNameAttrName())
    return verifyNameAttr(op, "result", resultIndex, attribute);
  return op->emitOpError() << "result #" << resultIndex
                           << ": unknown lora result attribute '"
                           << attribute.getName().getValue() << "' (expected '"
                           << getParamNameAttrName() << "')";
}

std::optional<Role> mlir::lora::getParameterRole(Operation *funcOp,
                                                 unsigned index) {
  auto function = dyn_cast<FunctionOpInterface>(funcOp);
  if (!function)
    return std::nullopt;
  auto role = function.getArgAttrOfType<RoleAttr>(
      index, LoraDialect::getRoleAttrName());
  if (!role)
    return std::nullopt;
  return role.getValue();
}

llvm::SmallVector<unsigned>
mlir::lora::getTrainableArguments(Operation *funcOp) {
  llvm::SmallVector<unsigned> trainable;
  auto function = dyn_cast<FunctionOpInterface>(funcOp);
  if (!function)
    return trainable;
  for (unsigned i = 0; i < function.getNumArguments(); ++i)
    if (std::optional<Role> role = getParameterRole(funcOp, i);
        role && *role != Role::frozen)
      trainable.push_back(i);
  return trainable;
}
