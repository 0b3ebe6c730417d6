//===- EntryPoints.cpp - the runtime functions CPU steps call -------------===//

#include "lora/runtime/EntryPoints.h"

#include "lora/runtime/Arena.h"
#include "lora/runtime/Attention.h"
#include "lora/runtime/Collective.h"
#include "lora/runtime/Gemm.h"
#include "lora/runtime/MemRef.h"

std::vector<lora::runtime::RuntimeEntryPoint> lora::runtime::cpuEntryPoints() {
  auto entry = [](const char *name, auto *function) {
    return RuntimeEntryPoint{name, reinterpret_cast<void *>(function)};
  };
  return {
      entry("_mlir_ciface_lora_sgemm_f32", &_mlir_ciface_lora_sgemm_f32),
      entry("_mlir_ciface_lora_gemm_bf16", &_mlir_ciface_lora_gemm_bf16),
      entry("_mlir_ciface_lora_adapter_grad_f32",
            &_mlir_ciface_lora_adapter_grad_f32),
      entry("_mlir_ciface_lora_adapter_grad_ub_f32",
            &_mlir_ciface_lora_adapter_grad_ub_f32),
      entry("_mlir_memref_to_llvm_alloc", &_mlir_memref_to_llvm_alloc),
      entry("_mlir_memref_to_llvm_free", &_mlir_memref_to_llvm_free),
      entry("memrefCopy", &memrefCopy),
      entry("_mlir_ciface_lora_all_reduce_start_f32",
            &_mlir_ciface_lora_all_reduce_start_f32),
      entry("_mlir_ciface_lora_all_reduce_wait_f32",
            &_mlir_ciface_lora_all_reduce_wait_f32),
      entry("_mlir_ciface_lora_attention_f32",
            &_mlir_ciface_lora_attention_f32),
      entry("_mlir_ciface_lora_attention_grad_f32",
            &_mlir_ciface_lora_attention_grad_f32),
  };
}
