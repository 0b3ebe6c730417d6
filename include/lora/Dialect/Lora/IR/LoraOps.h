//===- LoraOps.h - lora dialect operations ----------------------*- C++ -*-===//
//
// Declares the operations of the lora dialect.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_DIALECT_LORA_IR_LORAOPS_H
#define LORA_DIALECT_LORA_IR_LORAOPS_H

#include "lora/Dialect/Lora/IR/LoraDialect.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "lora/Dialect/Lora/IR/LoraOps.h.inc"

#endif // LORA_DIALECT_LORA_IR_LORAOPS_H
