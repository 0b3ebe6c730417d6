//===- EntryPoints.h - the runtime functions compiled steps call -*- C++
//-*-===//
//
// One list per backend of what a compiled step may call into the runtime,
// by symbol: the JIT registers them, the artifact loader checks that the
// loading program exports them. Taking their addresses here also keeps
// them in a statically linked program.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_ENTRYPOINTS_H
#define LORA_RUNTIME_ENTRYPOINTS_H

#include <vector>

namespace lora::runtime {

struct RuntimeEntryPoint {
  const char *name;
  void *address;
};

/// GEMM, arena, strided copies, gradient all-reduce, flash attention.
std::vector<RuntimeEntryPoint> cpuEntryPoints();

/// The CUDA backend's: mgpu*, GEMM, flash attention, frees; empty without
/// the backend.
std::vector<RuntimeEntryPoint> cudaEntryPoints();

} // namespace lora::runtime

#endif // LORA_RUNTIME_ENTRYPOINTS_H
