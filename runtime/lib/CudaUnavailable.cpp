//===- CudaUnavailable.cpp - the runtime without its CUDA backend ---------===//

#include "lora/runtime/Cuda.h"

namespace lora::runtime {

bool cudaBackendBuilt() { return false; }

Status cudaDevice(std::string &name) {
  name.clear();
  return Status::error("this runtime was built without the CUDA backend "
                       "(configure with -DLORA_ENABLE_CUDA=ON where the CUDA "
                       "toolkit is installed)");
}

void *cudaAllocateShared(size_t) { return nullptr; }
void cudaFreeShared(void *) {}

} // namespace lora::runtime
