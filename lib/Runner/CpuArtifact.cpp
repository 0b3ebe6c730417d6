//===- CpuArtifact.cpp - ahead-of-time compilation of a step --------------===//
//
// The LLVM dialect module becomes LLVM IR, is optimized at O3, gains a
// `lora_step_packed(void **buffers)` entry (one descriptor pointer per
// buffer, so a loader needs no per-signature code), is emitted as a
// position-independent object for this machine, and is linked into step.so
// by the system C compiler; every other function is internal. GEMM and libm
// symbols stay undefined: the loading program provides them.
//
//===----------------------------------------------------------------------===//

#include "lora/Runner/JitStep.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;
using namespace mlir::lora;

static llvm::Error artifactError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

static llvm::json::Array describe(const std::vector<BufferSpec> &specs) {
  llvm::json::Array list;
  for (const BufferSpec &spec : specs) {
    list.push_back(llvm::json::Object{
        {"name", spec.name},
        {"shape", llvm::json::Array(spec.shape)},
        {"dtype", std::string(::lora::runtime::dtypeName(spec.dtype()))},
        {"role", spec.role}});
  }
  return list;
}

/// Writes every kernel's PTX of the lowered module to
/// <directory>/ptx/<chip>/<kernel>.ptx; the relative paths go to `written`.
static llvm::Error writePtx(ModuleOp module, StringRef directory,
                            llvm::json::Array &written) {
  llvm::Error failed = llvm::Error::success();
  module.walk([&](gpu::BinaryOp binary) {
    for (Attribute attribute : binary.getObjects()) {
      auto object = cast<gpu::ObjectAttr>(attribute);
      auto target = dyn_cast<NVVM::NVVMTargetAttr>(object.getTarget());
      if (!target || object.getFormat() != gpu::CompilationTarget::Assembly)
        continue;
      llvm::SmallString<128> folder(directory);
      llvm::sys::path::append(folder, "ptx", target.getChip());
      if (std::error_code error = llvm::sys::fs::create_directories(folder)) {
        failed = artifactError(folder + ": " + error.message());
        return WalkResult::interrupt();
      }
      std::string relative =
          ("ptx/" + target.getChip() + "/" + binary.getName() + ".ptx").str();
      llvm::SmallString<128> path(directory);
      llvm::sys::path::append(path, relative);
      std::error_code error;
      llvm::raw_fd_ostream out(path, error);
      if (error) {
        failed = artifactError(path + ": " + error.message());
        return WalkResult::interrupt();
      }
      out << object.getObject().getValue();
      written.push_back(relative);
    }
    return WalkResult::advance();
  });
  return failed;
}

llvm::Error mlir::lora::writeArtifact(ModuleOp module, StringRef name,
                                      StringRef directory,
                                      const std::string &metadata,
                                      const ArtifactOptions &options) {
  Device device = options.device;
  std::vector<BufferSpec> arguments, results;
  llvm::json::Array ptx;
  if (device == Device::Cuda) {
    if (llvm::Error error =
            lowerStepForGpu(module, name, arguments, results, options.chips,
                            options.bf16))
      return error;
    if (std::error_code error = llvm::sys::fs::create_directories(directory))
      return artifactError(directory + ": cannot create: " + error.message());
    if (llvm::Error error = writePtx(module, directory, ptx))
      return error;
  } else if (llvm::Error error =
                 lowerStepForCpu(module, name, arguments, results,
                                 options.flashAttention, options.bf16)) {
    return error;
  }

  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::LLVMContext context;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, context, "lora-step");
  if (!llvmModule)
    return artifactError("translating @" + name + " to LLVM IR failed");

  std::string triple = llvm::sys::getProcessTriple(), lookupError;
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, lookupError);
  if (!target)
    return artifactError("no LLVM target for " + triple + ": " + lookupError);
  // A CPU step is built for this CPU by default. A CUDA step's host code
  // only launches kernels and is often compiled on another machine than
  // the GPU box, so it targets any CPU of the architecture by default.
  std::string cpu = options.cpu.empty()
                        ? (device == Device::Cuda ? "generic" : "native")
                        : options.cpu,
              features;
  if (cpu == "generic") {
    cpu = llvm::Triple(triple).isX86() ? "x86-64" : "generic";
  } else if (cpu == "native") {
    cpu = llvm::sys::getHostCPUName().str();
    for (const auto &feature : llvm::sys::getHostCPUFeatures())
      features += (features.empty() ? "" : ",") +
                  std::string(feature.second ? "+" : "-") +
                  feature.first().str();
  }
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      llvm::Triple(triple), cpu, features,
      llvm::TargetOptions(), llvm::Reloc::PIC_, std::nullopt,
      llvm::CodeGenOptLevel::Aggressive));
  if (!machine)
    return artifactError("cannot create a target machine for " + triple);
  if (!machine->getMCSubtargetInfo()->isCPUStringValid(cpu))
    return artifactError("--target_cpu " + cpu + ": not a CPU LLVM knows for " +
                         triple);
  ExecutionEngine::setupTargetTripleAndDataLayout(llvmModule.get(),
                                                  machine.get());
  // lora_step_packed(void **buffers): _mlir_ciface_<name>(buffers[0], ...).
  llvm::Function *entry =
      llvmModule->getFunction(("_mlir_ciface_" + name).str());
  if (!entry)
    return artifactError("the lowered module lacks _mlir_ciface_" + name);
  auto *pointer = llvm::PointerType::get(context, 0);
  auto *packed = llvm::Function::Create(
      llvm::FunctionType::get(llvm::Type::getVoidTy(context), {pointer}, false),
      llvm::Function::ExternalLinkage, "lora_step_packed", llvmModule.get());
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(context, "entry", packed));
  std::vector<llvm::Value *> callArguments;
  for (unsigned i = 0; i < entry->arg_size(); ++i)
    callArguments.push_back(b.CreateLoad(
        pointer, b.CreateConstGEP1_64(pointer, packed->getArg(0), i)));
  b.CreateCall(entry, callArguments);
  b.CreateRetVoid();
  // Only the packed entry is exported: a global `step` would be interposed
  // by libc's step() when the library is loaded, and internal functions
  // inline better.
  for (llvm::Function &function : *llvmModule)
    if (!function.isDeclaration() && &function != packed)
      function.setLinkage(llvm::GlobalValue::InternalLinkage);
  if (llvm::Error error =
          makeOptimizingTransformer(3, 0, machine.get())(llvmModule.get()))
    return error;

  if (std::error_code error = llvm::sys::fs::create_directories(directory))
    return artifactError(directory + ": cannot create: " + error.message());
  llvm::SmallString<128> object(directory), library(directory),
      manifest(directory);
  llvm::sys::path::append(object, "step.o");
  llvm::sys::path::append(library, "step.so");
  llvm::sys::path::append(manifest, "manifest.json");
  {
    std::error_code error;
    llvm::raw_fd_ostream out(object, error);
    if (error)
      return artifactError(object + ": " + error.message());
    llvm::legacy::PassManager emit;
    if (machine->addPassesToEmitFile(emit, out, nullptr,
                                     llvm::CodeGenFileType::ObjectFile))
      return artifactError("the target cannot emit object files");
    emit.run(*llvmModule);
  }
  llvm::ErrorOr<std::string> compiler = llvm::sys::findProgramByName("cc");
  if (!compiler)
    return artifactError("cannot find 'cc' to link step.so");
  std::string message;
  int status = llvm::sys::ExecuteAndWait(
      *compiler, {*compiler, "-shared", "-o", library, object}, std::nullopt,
      {}, 0, 0, &message);
  llvm::sys::fs::remove(object);
  if (status != 0)
    return artifactError("linking " + library + " failed: " + message);

  auto parsedMetadata = llvm::json::parse(metadata);
  if (!parsedMetadata)
    return parsedMetadata.takeError();
  llvm::json::Object root{{"format", "lora-mlir-cpu-step"},
                          {"version", 1},
                          {"library", "step.so"},
                          {"entry", "lora_step_packed"},
                          {"target", triple},
                          {"cpu", cpu},
                          {"arguments", describe(arguments)},
                          {"results", describe(results)},
                          {"planned_arena_bytes",
                           int64_t(plannedArenaBytes(module))},
                          {"reduces_gradients", reducesGradients(module)},
                          {"device", device == Device::Cuda ? "cuda" : "cpu"},
                          {"ptx", std::move(ptx)},
                          {"metadata", std::move(*parsedMetadata)}};
  std::error_code error;
  llvm::raw_fd_ostream out(manifest, error);
  if (error)
    return artifactError(manifest + ": " + error.message());
  out << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  return llvm::Error::success();
}
