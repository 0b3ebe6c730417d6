//===- CudaUnavailable.cpp - the runtime without its CUDA backend ---------===//

#include "lora/runtime/Collective.h"
#include "lora/runtime/Cuda.h"
#include "lora/runtime/EntryPoints.h"

#include <cstring>

namespace lora::runtime {

Status cudaDevice(std::string &name) {
  name.clear();
  return Status::error("this runtime was built without the CUDA backend "
                       "(configure with -DLORA_ENABLE_CUDA=ON where the CUDA "
                       "toolkit is installed)");
}

Status cudaUseDevice(int) { return Status::success(); }

int cudaDeviceOrdinal() { return 0; }

Status cudaSynchronizeDefaultStream() {
  std::string name;
  return cudaDevice(name);
}

std::vector<RuntimeEntryPoint> cudaEntryPoints() { return {}; }

void *cudaStepStream() { return nullptr; }

void cudaSynchronizeStepStream() {}

void cudaCopyOnStepStream(void *destination, const void *source,
                          size_t bytes) {
  std::memcpy(destination, source, bytes);
}

void cudaPrefetchToGpu(void *, size_t) {}

void *cudaAllocateShared(size_t) { return nullptr; }
void cudaFreeShared(void *) {}

ArenaStats cudaArenaStats() { return {}; }

void cudaProfileStep(int64_t) {}
bool CudaProfileScope::cudaProfiling() { return false; }
void CudaProfileScope::begin(std::string) {}
void CudaProfileScope::end() {}

Status openNcclCommunicator(const LaunchEnvironment &, double,
                            std::unique_ptr<Communicator> &) {
  std::string name;
  return cudaDevice(name);
}

} // namespace lora::runtime
