//===- BufferizableOpInterfaceImpl.h - lora ops on buffers ------*- C++ -*-===//
//
// The lora ops that reach one-shot bufferization (the collectives; every
// other lora op is lowered to linalg before) and how they become calls into
// the runtime.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_DIALECT_LORA_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
#define LORA_DIALECT_LORA_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H

namespace mlir {
class DialectRegistry;
namespace lora {
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);
} // namespace lora
} // namespace mlir

#endif // LORA_DIALECT_LORA_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
