//===- lora-opt.cpp - the lora-mlir optimizer driver ----------------------===//
//
// mlir-opt with the lora dialect and the upstream dialects and passes that
// lora-mlir's pipelines lower through.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"
#include "lora/Dialect/Lora/IR/LoraDialect.h"
#include "lora/Dialect/Lora/Transforms/BufferizableOpInterfaceImpl.h"
#include "lora/Dialect/Lora/Transforms/Passes.h"
#include "lora/Pipelines/CpuPipeline.h"
#include "lora/Pipelines/GpuPipeline.h"
#include "lora/Pipelines/Pipelines.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::lora::registerLoraPasses();
  mlir::lora::registerLoraConversionPasses();
  mlir::lora::registerLoraPipelines();
  mlir::lora::registerCpuPipeline();
  mlir::lora::registerGpuPipeline();
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  // gpu-module-to-binary translates kernels to LLVM IR.
  mlir::registerAllToLLVMIRTranslations(registry);
  registry.insert<mlir::lora::LoraDialect>();
  mlir::lora::registerBufferizableOpInterfaceExternalModels(registry);
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "lora-mlir optimizer driver\n", registry));
}
