//===- Cuda.h - the runtime's CUDA backend ----------------------*- C++ -*-===//
//
// Compiled GPU steps (lora-gpu-pipeline) launch their PTX kernels through
// the `mgpu*` entry points below and run their GEMMs through cuBLASLt
// (`lora_gpu_sgemm_f32`). The driver is opened with dlopen, so a program
// built with the CUDA backend starts on a machine without a GPU or driver
// and says so (cudaDevice) instead of failing to load.
//
// Built with LORA_ENABLE_CUDA; without it, cudaDevice says that the
// runtime has no CUDA backend.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_CUDA_H
#define LORA_RUNTIME_CUDA_H

#include "lora/runtime/Arena.h"
#include "lora/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lora::runtime {

/// Opens the driver and the first GPU (once); `name` gets its name. An
/// error says what is missing: the backend, the driver, or a GPU.
Status cudaDevice(std::string &name);

/// Picks the GPU (ordinal) the process will use when the driver opens
/// (cudaDevice); an error when it is already open on another GPU.
Status cudaUseDevice(int ordinal);

/// The GPU the driver opened (cudaUseDevice's choice).
int cudaDeviceOrdinal();

/// Waits for the work queued on the default stream (NCCL's).
Status cudaSynchronizeDefaultStream();

/// The calling thread's stream (a CUstream): the step's kernels, GEMMs and
/// flash attention all run on it, in program order, and the host code
/// waits for it only where it reads results (lora-async-launches).
void *cudaStepStream();

/// Waits for the calling thread's stream when it has one (a GPU step ran on
/// this thread); returns at once otherwise. A failure ends the process, as
/// any failed CUDA call inside a step does.
void cudaSynchronizeStepStream();

/// Queues a device copy of managed memory on the calling thread's stream,
/// after the step's kernels (a host memcpy would move the pages to the
/// host); the caller waits (cudaSynchronizeStepStream) before the host
/// reads the destination.
void cudaCopyOnStepStream(void *destination, const void *source,
                          size_t bytes);

/// Moves managed memory to the GPU ahead of the first step (the host wrote
/// it at initialization); a hint, skipped where the driver cannot.
void cudaPrefetchToGpu(void *pointer, size_t bytes);

/// Managed memory (host and device read and write it), for a GPU step's
/// buffers; nullptr on failure.
void *cudaAllocateShared(size_t bytes);
void cudaFreeShared(void *pointer);

/// The GPU step's temporaries (mgpuMemAlloc's arena of managed memory),
/// counted like the CPU's activation arena (activationArenaStats).
ArenaStats cudaArenaStats();

/// LORA_GPU_PROFILE=FILE: the GPU time of every kernel launch, GEMM and
/// attention kernel of a GPU step, from CUDA events on the step's stream.
/// cudaProfileStep(t) closes step t (it waits for the stream) and appends
/// one JSON line to FILE: {"step": t, "work": {name: [calls, ms]}}. Kernels
/// are named by a hash of their module's PTX (scripts/gpu_profile.py maps
/// it to the artifact's ptx/<chip>/<kernel>.ptx), GEMMs by precision and
/// shape. Without the variable the events are never created.
void cudaProfileStep(int64_t step);

/// A span of GPU work on the step's stream, timed when LORA_GPU_PROFILE
/// is set (the name is formatted only then); for the runtime's own kernels.
class CudaProfileScope {
public:
  template <typename Name> explicit CudaProfileScope(Name &&name) {
    if (cudaProfiling())
      begin(std::string(name()));
  }
  ~CudaProfileScope() {
    if (index >= 0)
      end();
  }
  CudaProfileScope(const CudaProfileScope &) = delete;
  CudaProfileScope &operator=(const CudaProfileScope &) = delete;

  static bool cudaProfiling();

private:
  void begin(std::string name);
  void end();
  int64_t index = -1;
};

} // namespace lora::runtime

#endif // LORA_RUNTIME_CUDA_H
