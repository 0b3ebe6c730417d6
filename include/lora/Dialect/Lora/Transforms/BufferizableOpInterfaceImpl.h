//===- BufferizableOpInterfaceImpl.h - lora ops on buffers ------*- C++ -*-===//
//
// The lora ops that reach one-shot bufferization (the collectives, and
// attention and the adapter backward where the runtime has kernels for
// them; every other lora op is lowered to linalg before) and how they
// become calls into the runtime.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_DIALECT_LORA_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
#define LORA_DIALECT_LORA_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H

#include "llvm/ADT/StringRef.h"

namespace mlir {
class DialectRegistry;
namespace lora {
/// Collectives become calls to the runtime's reducer; attention marked
/// `lora.flash` ("cpu", "gpu" or "gpu-bf16") calls to the runtime's flash
/// attention; lora.adapter_grad marked `lora.runtime_call` a call to the
/// runtime's adapter backward.
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);

/// The attribute that leaves lora.attention(_grad) to the runtime's flash
/// kernels (convert-lora-to-linalg{flash-attention=...}).
inline constexpr llvm::StringLiteral kFlashAttrName = "lora.flash";

/// The attribute that leaves lora.adapter_grad to the runtime's one-pass
/// kernel, `lora_adapter_grad_f32` (convert-lora-to-linalg{adapter-grad-calls}).
inline constexpr llvm::StringLiteral kAdapterGradCallAttrName =
    "lora.runtime_call";
} // namespace lora
} // namespace mlir

#endif // LORA_DIALECT_LORA_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
