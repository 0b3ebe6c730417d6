//===- JitStep.cpp - a lora step compiled in process for the CPU ----------===//

#include "lora/Runner/JitStep.h"

#include "lora/Conversion/Passes.h"
#include "lora/Dialect/Lora/IR/LoraDialect.h"
#include "lora/Dialect/Lora/Transforms/BufferizableOpInterfaceImpl.h"
#include "lora/Pipelines/CpuPipeline.h"
#include "lora/Pipelines/GpuPipeline.h"

#include "lora/runtime/EntryPoints.h"
#include "lora/runtime/MemRef.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

#include "llvm/ExecutionEngine/Orc/Mangling.h"
#include "llvm/Support/TargetSelect.h"

using namespace mlir;
using namespace mlir::lora;

int64_t BufferSpec::numElements() const {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

::lora::runtime::DType BufferSpec::dtype() const {
  using ::lora::runtime::DType;
  return elementType.isF32()          ? DType::F32
         : elementType.isBF16()       ? DType::BF16
         : elementType.isInteger(32) ? DType::I32
                                      : DType::I64;
}

JitStep::~JitStep() = default;

static llvm::Error jitError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

static llvm::Expected<BufferSpec> specOf(Type type, StringAttr name,
                                         const Twine &what) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return jitError(what + " must be a statically shaped tensor");
  BufferSpec spec;
  spec.name = name ? name.str() : "";
  spec.shape.assign(tensor.getShape().begin(), tensor.getShape().end());
  spec.elementType = tensor.getElementType();
  return spec;
}

llvm::Error mlir::lora::collectBufferSpecs(ModuleOp module, StringRef name,
                                           std::vector<BufferSpec> &arguments,
                                           std::vector<BufferSpec> &results) {
  auto function = module.lookupSymbol<func::FuncOp>(name);
  if (!function)
    return jitError("no function @" + name + " to compile");
  for (unsigned i = 0; i < function.getNumArguments(); ++i) {
    auto spec = specOf(function.getArgumentTypes()[i],
                       function.getArgAttrOfType<StringAttr>(
                           i, LoraDialect::getParamNameAttrName()),
                       "argument #" + Twine(i));
    if (!spec)
      return spec.takeError();
    if (std::optional<Role> role = getParameterRole(function, i))
      spec->role = stringifyRole(*role).str();
    arguments.push_back(*spec);
  }
  for (unsigned i = 0; i < function.getNumResults(); ++i) {
    auto spec = specOf(function.getResultTypes()[i],
                       function.getResultAttrOfType<StringAttr>(
                           i, LoraDialect::getParamNameAttrName()),
                       "result #" + Twine(i));
    if (!spec)
      return spec.takeError();
    results.push_back(*spec);
  }
  return llvm::Error::success();
}

/// Records the specs, prepares @`name`'s interface and runs the pipeline
/// `build` adds; `device` names the target in errors.
/// `bf16`: the frozen parameters are stored in bf16 (lora-store-frozen-bf16,
/// which the pipeline runs too), so the specs say so.
static llvm::Error
lowerStep(ModuleOp module, StringRef name, std::vector<BufferSpec> &arguments,
          std::vector<BufferSpec> &results, StringRef device, bool bf16,
          llvm::function_ref<LogicalResult(OpPassManager &)> build) {
  if (bf16) {
    PassManager retype(module.getContext());
    retype.addPass(createStoreFrozenBf16());
    if (failed(retype.run(module)))
      return jitError("storing @" + name + "'s frozen parameters in bf16 "
                      "failed");
  }
  if (llvm::Error error = collectBufferSpecs(module, name, arguments, results))
    return error;
  auto function = module.lookupSymbol<func::FuncOp>(name);
  // Bufferization and the LLVM translation come as dialect extensions.
  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerBufferizableOpInterfaceExternalModels(registry);
  registerAllToLLVMIRTranslations(registry);
  module.getContext()->appendDialectRegistry(registry);

  // The buffer specs above now hold the names; the C interface wrapper
  // would copy the lora attributes onto raw pointers, so drop them.
  for (unsigned i = 0; i < function.getNumArguments(); ++i)
    function.setArgAttrs(i, DictionaryAttr::get(module.getContext()));
  for (unsigned i = 0; i < function.getNumResults(); ++i)
    function.setResultAttrs(i, DictionaryAttr::get(module.getContext()));
  // Give the entry a C interface: every buffer a pointer to a descriptor.
  function->setAttr("llvm.emit_c_interface",
                    UnitAttr::get(module.getContext()));

  // Capture diagnostics so that a failed lowering says why.
  std::string diagnostics;
  ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &d) {
    llvm::raw_string_ostream os(diagnostics);
    os << d.getLocation() << ": " << d << "\n";
    return success();
  });
  PassManager pm(module.getContext());
  if (failed(build(pm)) || failed(pm.run(module)))
    return jitError("lowering @" + name + " for the " + device +
                    " failed:\n" + diagnostics);
  return llvm::Error::success();
}

llvm::Error mlir::lora::lowerStepForCpu(ModuleOp module, StringRef name,
                                        std::vector<BufferSpec> &arguments,
                                        std::vector<BufferSpec> &results,
                                        bool flashAttention, bool bf16,
                                        int64_t splitRowsFrom) {
  return lowerStep(module, name, arguments, results, "CPU", bf16,
                   [&](OpPassManager &pm) {
                     return buildCpuLoweringPipeline(pm, flashAttention,
                                                     /*openmp=*/true, bf16,
                                                     splitRowsFrom);
                   });
}

llvm::Error mlir::lora::lowerStepForGpu(ModuleOp module, StringRef name,
                                        std::vector<BufferSpec> &arguments,
                                        std::vector<BufferSpec> &results,
                                        StringRef chips, bool bf16) {
  return lowerStep(module, name, arguments, results, "GPU", bf16,
                   [&](OpPassManager &pm) {
                     GpuPipelineOptions options;
                     options.chips = chips.str();
                     options.bf16 = bf16;
                     return buildGpuLoweringPipeline(pm, options);
                   });
}

uint64_t mlir::lora::plannedArenaBytes(ModuleOp module) {
  auto bytes =
      module->getAttrOfType<IntegerAttr>("lora.planned_arena_bytes");
  return bytes ? bytes.getValue().getZExtValue() : 0;
}

bool mlir::lora::reducesGradients(ModuleOp module) {
  return module.lookupSymbol("_mlir_ciface_lora_all_reduce_start_f32") !=
         nullptr;
}

static void initializeNativeTarget() {
  static bool initialized = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)initialized;
}

llvm::Expected<std::unique_ptr<JitStep>>
JitStep::compile(ModuleOp module, StringRef name, bool flashAttention,
                 bool gpu, bool bf16, int64_t splitRowsFrom) {
  std::unique_ptr<JitStep> step(new JitStep());
  step->entry = name.str();
  step->gpu = gpu;
  if (llvm::Error error =
          gpu ? lowerStepForGpu(module, name, step->argumentSpecs,
                                step->resultSpecs, "sm_80", bf16)
              : lowerStepForCpu(module, name, step->argumentSpecs,
                                step->resultSpecs, flashAttention, bf16,
                                splitRowsFrom))
    return std::move(error);
  step->arenaBytes = mlir::lora::plannedArenaBytes(module);
  step->reduces = mlir::lora::reducesGradients(module);
  initializeNativeTarget();
  ExecutionEngineOptions options;
  options.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
  // O3 on the LLVM IR before codegen: without it the step runs as the
  // lowering wrote it (an order of magnitude slower).
  auto optimize = makeOptimizingTransformer(3, 0, nullptr);
  options.transformer = optimize;
  auto engine = ExecutionEngine::create(module, options);
  if (!engine)
    return engine.takeError();
  step->engine = std::move(*engine);
  // The runtime functions the step calls, resolved in this process.
  step->engine->registerSymbols([](llvm::orc::MangleAndInterner interner) {
    llvm::orc::SymbolMap symbols;
    for (auto list : {::lora::runtime::cpuEntryPoints(),
                      ::lora::runtime::cudaEntryPoints()})
      for (const ::lora::runtime::RuntimeEntryPoint &entry : list)
        symbols[interner(entry.name)] = {
            llvm::orc::ExecutorAddr::fromPtr(entry.address),
            llvm::JITSymbolFlags::Exported};
    return symbols;
  });
  step->engine->initialize();
  return step;
}

llvm::Error JitStep::run(ArrayRef<void *> arguments, ArrayRef<void *> results) {
  if (arguments.size() != argumentSpecs.size() ||
      results.size() != resultSpecs.size())
    return jitError("@" + entry + " takes " + Twine(argumentSpecs.size()) +
                    " arguments and " + Twine(resultSpecs.size()) +
                    " results, got " + Twine(arguments.size()) + " and " +
                    Twine(results.size()));
  // Results are the trailing out-parameters.
  ::lora::runtime::MemRefDescriptors descriptors;
  for (auto [data, spec] : llvm::zip(arguments, argumentSpecs))
    descriptors.add(data, spec.shape);
  for (auto [data, spec] : llvm::zip(results, resultSpecs))
    descriptors.add(data, spec.shape);
  // invokePacked passes the address of each argument: of each pointer.
  std::vector<void *> packed;
  for (void *&pointer : descriptors.pointers())
    packed.push_back(&pointer);
  return engine->invokePacked("_mlir_ciface_" + entry, packed);
}
