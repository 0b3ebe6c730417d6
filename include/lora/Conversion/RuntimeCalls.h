//===- RuntimeCalls.h - declaring the runtime's entry points ----*- C++ -*-===//
//
// Lowerings that call into the runtime (BLAS, collectives, flash attention,
// GPU frees) declare the callee once per module: private, with MLIR's C
// interface (`_mlir_ciface_<name>`, memrefs passed as descriptor pointers),
// which is how the runtime implements it. Plain C functions of a library
// (libomp's omp_get_thread_num) are declared without it.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_CONVERSION_RUNTIMECALLS_H
#define LORA_CONVERSION_RUNTIMECALLS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::lora {

/// The module's declaration of runtime function `name`, made (at the top
/// of `module`) if it does not exist yet; `cInterface`: called through
/// `_mlir_ciface_<name>`.
inline func::FuncOp declareRuntimeFunction(OpBuilder &builder, ModuleOp module,
                                           StringRef name, FunctionType type,
                                           bool cInterface = true) {
  if (auto existing = module.lookupSymbol<func::FuncOp>(name))
    return existing;
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToStart(module.getBody());
  auto callee = func::FuncOp::create(builder, module.getLoc(), name, type);
  callee.setPrivate();
  if (cInterface)
    callee->setAttr("llvm.emit_c_interface", builder.getUnitAttr());
  return callee;
}

} // namespace mlir::lora

#endif // LORA_CONVERSION_RUNTIMECALLS_H
