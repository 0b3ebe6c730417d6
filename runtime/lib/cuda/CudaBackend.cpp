//===- CudaBackend.cpp - driver API, kernel launches and cuBLASLt ---------===//
//
// The driver comes from dlopen("libcuda.so.1"): the CUDA toolkit's
// libraries (cuBLASLt) are linked, the driver, which only a GPU machine
// has, is not. Errors inside a compiled step (which has no way to return
// one) end the process with a message naming the call; they never crash.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Cuda.h"

#include "lora/runtime/Attention.h"
#include "lora/runtime/EntryPoints.h"
#include "lora/runtime/Gemm.h"
#include "lora/runtime/MemRef.h"

#include <cublasLt.h>
#include <cuda.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

namespace lora::runtime {
namespace {

/// The driver entry points the backend uses, resolved once.
struct Driver {
  // clang-format off
#define LORA_CUDA_FUNCTIONS(X)                                                 \
  X(cuInit) X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName)              \
  X(cuDevicePrimaryCtxRetain) X(cuCtxSetCurrent) X(cuGetErrorString)           \
  X(cuModuleLoadDataEx) X(cuModuleGetFunction) X(cuModuleUnload)               \
  X(cuLaunchKernel) X(cuStreamCreate) X(cuStreamSynchronize)                   \
  X(cuStreamDestroy) X(cuMemAllocManaged) X(cuMemFree) X(cuEventCreate)     \
  X(cuEventRecord) X(cuEventElapsedTime) X(cuMemcpyAsync)                    \
  X(cuMemPrefetchAsync)
  // clang-format on
  // cuda.h maps some names to versioned symbols (cuMemFree_v2): the
  // declarations and the symbol names both see the mapping.
#define LORA_DECLARE(name) decltype(&::name) name = nullptr;
  LORA_CUDA_FUNCTIONS(LORA_DECLARE)
#undef LORA_DECLARE

  CUcontext context = nullptr;
  std::string deviceName;
  /// The GPU to open (cudaUseDevice).
  static int &ordinal() {
    static int value = 0;
    return value;
  }
  static bool &opened() {
    static bool value = false;
    return value;
  }
  Status status = Status::error("the CUDA driver was not opened");

  static Driver &get() {
    static Driver driver;
    static std::once_flag opened;
    std::call_once(opened, [] {
      driver.status = driver.open();
      Driver::opened() = true;
    });
    return driver;
  }

  std::string describe(CUresult result) const {
    const char *text = nullptr;
    if (cuGetErrorString)
      cuGetErrorString(result, &text);
    return text ? text : "CUDA error " + std::to_string(int(result));
  }

private:
  Status open() {
    void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!library)
      return Status::error(std::string("no CUDA driver: ") + dlerror());
#define LORA_SYMBOL(name) #name
#define LORA_NAME(name) LORA_SYMBOL(name)
#define LORA_RESOLVE(name)                                                     \
  name = reinterpret_cast<decltype(name)>(dlsym(library, LORA_NAME(name)));    \
  if (!name)                                                                   \
    return Status::error("the CUDA driver lacks " LORA_NAME(name));
    LORA_CUDA_FUNCTIONS(LORA_RESOLVE)
#undef LORA_RESOLVE
#undef LORA_NAME
#undef LORA_SYMBOL
    if (CUresult r = cuInit(0); r != CUDA_SUCCESS)
      return Status::error("no usable CUDA GPU: cuInit: " + describe(r));
    int count = 0;
    if (CUresult r = cuDeviceGetCount(&count); r != CUDA_SUCCESS || !count)
      return Status::error("no CUDA GPU (the driver sees none)");
    CUdevice device;
    char name[256] = {0};
    if (ordinal() >= count)
      return Status::error("no GPU " + std::to_string(ordinal()) +
                           ": the driver sees " + std::to_string(count));
    if (CUresult r = cuDeviceGet(&device, ordinal()); r != CUDA_SUCCESS)
      return Status::error("cuDeviceGet: " + describe(r));
    cuDeviceGetName(name, sizeof name, device);
    deviceName = name;
    if (CUresult r = cuDevicePrimaryCtxRetain(&context, device);
        r != CUDA_SUCCESS)
      return Status::error("cuDevicePrimaryCtxRetain: " + describe(r));
    return Status::success();
  }
};

/// The driver, with the context current on this thread; a compiled step's
/// call that fails ends the process with the call's name.
Driver &driver(const char *caller) {
  Driver &d = Driver::get();
  if (!d.status.ok()) {
    std::fprintf(stderr, "lora: %s: %s\n", caller, d.status.message().c_str());
    std::exit(1);
  }
  static thread_local bool current = false;
  if (!current) {
    d.cuCtxSetCurrent(d.context);
    current = true;
  }
  return d;
}

/// True once a failure has begun ending the process: the step library's
/// destructors (module unloads) then run inside exit() and must neither
/// print over the first error nor call exit() again.
std::atomic<bool> &failing() {
  static std::atomic<bool> value{false};
  return value;
}

void check(const Driver &d, CUresult result, const char *call,
           const std::string &what = "") {
  if (result == CUDA_SUCCESS || failing().exchange(true))
    return;
  std::fprintf(stderr, "lora: %s%s failed: %s\n", call, what.c_str(),
               d.describe(result).c_str());
  std::exit(1);
}

void checkBlas(cublasStatus_t status, const char *call) {
  if (status == CUBLAS_STATUS_SUCCESS || failing().exchange(true))
    return;
  std::fprintf(stderr, "lora: %s failed: cuBLAS status %d\n", call,
               int(status));
  std::exit(1);
}

} // namespace

Status cudaDevice(std::string &name) {
  Driver &d = Driver::get();
  name = d.deviceName;
  return d.status;
}

Status cudaUseDevice(int ordinal) {
  if (Driver::opened() && Driver::ordinal() != ordinal)
    return Status::error("the CUDA driver is already open on GPU " +
                         std::to_string(Driver::ordinal()));
  Driver::ordinal() = ordinal;
  return Status::success();
}

int cudaDeviceOrdinal() { return Driver::ordinal(); }

Status cudaSynchronizeDefaultStream() {
  Driver &d = Driver::get();
  LORA_RETURN_IF_ERROR(d.status);
  d.cuCtxSetCurrent(d.context);
  if (CUresult r = d.cuStreamSynchronize(nullptr); r != CUDA_SUCCESS)
    return Status::error("cuStreamSynchronize: " + d.describe(r));
  return Status::success();
}

void *cudaAllocateShared(size_t bytes) {
  Driver &d = Driver::get();
  if (!d.status.ok())
    return nullptr;
  d.cuCtxSetCurrent(d.context);
  CUdeviceptr pointer = 0;
  if (d.cuMemAllocManaged(&pointer, bytes ? bytes : 1, CU_MEM_ATTACH_GLOBAL) !=
      CUDA_SUCCESS)
    return nullptr;
  return reinterpret_cast<void *>(pointer);
}

void cudaFreeShared(void *pointer) {
  Driver &d = Driver::get();
  if (pointer && d.status.ok())
    d.cuMemFree(reinterpret_cast<CUdeviceptr>(pointer));
}

} // namespace lora::runtime

using lora::runtime::check;
using lora::runtime::checkBlas;
using lora::runtime::driver;

//===----------------------------------------------------------------------===//
// LORA_GPU_PROFILE: GPU time per kernel, GEMM and attention kernel
//===----------------------------------------------------------------------===//

extern "C" CUstream mgpuStreamCreate();

namespace {
/// Spans of the step's stream between two events, read when the step
/// closes (cudaProfileStep). The events are reused from step to step.
struct GpuProfile {
  const char *path = std::getenv("LORA_GPU_PROFILE");
  std::mutex mutex;
  struct Span {
    std::string name;
    CUevent start = nullptr, end = nullptr;
  };
  std::vector<Span> spans;
  std::vector<CUevent> spare;
  /// "ptx:" and the FNV-1a hash of each module's image (its PTX text).
  std::map<CUmodule, std::string> moduleHashes;
  std::map<CUfunction, std::string> functionNames;
  bool truncated = false;

  bool on() const { return path && *path; }
  static GpuProfile &get() {
    static GpuProfile profile;
    return profile;
  }
  CUevent event(lora::runtime::Driver &d) {
    if (!spare.empty()) {
      CUevent e = spare.back();
      spare.pop_back();
      return e;
    }
    CUevent e = nullptr;
    check(d, d.cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate",
          " (LORA_GPU_PROFILE)");
    return e;
  }
};

/// The image's hash as scripts/gpu_profile.py computes it from the
/// artifact's PTX files: FNV-1a over the bytes up to the first NUL.
void profileModule(CUmodule module, const void *data, size_t size) {
  GpuProfile &profile = GpuProfile::get();
  if (!profile.on())
    return;
  uint64_t hash = 1469598103934665603ull;
  const auto *bytes = static_cast<const unsigned char *>(data);
  for (size_t i = 0; i < size && bytes[i]; ++i)
    hash = (hash ^ bytes[i]) * 1099511628211ull;
  char text[24];
  std::snprintf(text, sizeof text, "ptx:%016llx", (unsigned long long)hash);
  std::lock_guard<std::mutex> lock(profile.mutex);
  profile.moduleHashes[module] = text;
}
} // namespace

bool lora::runtime::CudaProfileScope::cudaProfiling() {
  return GpuProfile::get().on();
}

void lora::runtime::CudaProfileScope::begin(std::string name) {
  auto &d = driver("LORA_GPU_PROFILE");
  GpuProfile &profile = GpuProfile::get();
  std::lock_guard<std::mutex> lock(profile.mutex);
  GpuProfile::Span span{std::move(name), profile.event(d), profile.event(d)};
  check(d, d.cuEventRecord(span.start, mgpuStreamCreate()), "cuEventRecord",
        " (LORA_GPU_PROFILE)");
  index = int64_t(profile.spans.size());
  profile.spans.push_back(std::move(span));
}

void lora::runtime::CudaProfileScope::end() {
  auto &d = driver("LORA_GPU_PROFILE");
  GpuProfile &profile = GpuProfile::get();
  std::lock_guard<std::mutex> lock(profile.mutex);
  check(d, d.cuEventRecord(profile.spans[index].end, mgpuStreamCreate()),
        "cuEventRecord", " (LORA_GPU_PROFILE)");
}

void lora::runtime::cudaProfileStep(int64_t step) {
  GpuProfile &profile = GpuProfile::get();
  if (!profile.on())
    return;
  cudaSynchronizeStepStream();
  auto &d = driver("LORA_GPU_PROFILE");
  std::lock_guard<std::mutex> lock(profile.mutex);
  std::map<std::string, std::pair<int64_t, double>> work;
  double busy = 0, window = 0;
  for (const GpuProfile::Span &span : profile.spans) {
    float ms = 0;
    check(d, d.cuEventElapsedTime(&ms, span.start, span.end),
          "cuEventElapsedTime", " (LORA_GPU_PROFILE)");
    auto &[calls, total] = work[span.name];
    ++calls;
    total += ms;
    busy += ms;
    profile.spare.push_back(span.start);
    profile.spare.push_back(span.end);
  }
  if (!profile.spans.empty()) {
    float ms = 0;
    check(d,
          d.cuEventElapsedTime(&ms, profile.spans.front().start,
                               profile.spans.back().end),
          "cuEventElapsedTime", " (LORA_GPU_PROFILE)");
    window = ms;
  }
  profile.spans.clear();
  FILE *out = std::fopen(profile.path, profile.truncated ? "a" : "w");
  if (!out) {
    std::fprintf(stderr, "lora: LORA_GPU_PROFILE: cannot write %s\n",
                 profile.path);
    std::exit(1);
  }
  profile.truncated = true;
  // busy_ms: the spans' sum; window_ms: first span's start to the last's
  // end, so window - busy is the time the GPU waited for the host.
  std::fprintf(out, "{\"step\": %lld, \"busy_ms\": %.4f, \"window_ms\": %.4f, "
                    "\"work\": {",
               (long long)step, busy, window);
  const char *separator = "";
  for (const auto &[name, entry] : work) {
    std::fprintf(out, "%s\"%s\": [%lld, %.4f]", separator, name.c_str(),
                 (long long)entry.first, entry.second);
    separator = ", ";
  }
  std::fprintf(out, "}}\n");
  std::fclose(out);
}

//===----------------------------------------------------------------------===//
// What gpu-to-llvm's host code calls
//===----------------------------------------------------------------------===//

extern "C" CUmodule mgpuModuleLoadJIT(void *data, int optLevel) {
  auto &d = driver("mgpuModuleLoadJIT");
  char log[8192] = {0};
  CUjit_option options[] = {CU_JIT_ERROR_LOG_BUFFER,
                            CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                            CU_JIT_OPTIMIZATION_LEVEL};
  void *values[] = {log, reinterpret_cast<void *>(sizeof log),
                    reinterpret_cast<void *>(intptr_t(optLevel))};
  CUmodule module = nullptr;
  CUresult result = d.cuModuleLoadDataEx(&module, data, 3, options, values);
  if (result != CUDA_SUCCESS && log[0])
    std::fprintf(stderr, "lora: the PTX JIT said: %s\n", log);
  check(d, result, "cuModuleLoadDataEx");
  profileModule(module, data, SIZE_MAX);
  return module;
}

extern "C" CUmodule mgpuModuleLoad(void *data, size_t size) {
  auto &d = driver("mgpuModuleLoad");
  CUmodule module = nullptr;
  check(d, d.cuModuleLoadDataEx(&module, data, 0, nullptr, nullptr),
        "cuModuleLoadData");
  profileModule(module, data, size);
  return module;
}

extern "C" void mgpuModuleUnload(CUmodule module) {
  auto &d = driver("mgpuModuleUnload");
  CUresult result = d.cuModuleUnload(module);
  // The step library's destructors may run after the driver's own exit
  // handler has torn the context down: nothing is left to unload then.
  if (result != CUDA_ERROR_DEINITIALIZED)
    check(d, result, "cuModuleUnload");
}

namespace {
/// Kernel names by function, for errors: a launch, or the synchronize that
/// reports a kernel's fault, names the kernel and its launch shape.
struct KernelNames {
  std::mutex mutex;
  std::map<CUfunction, std::string> names;

  static KernelNames &get() {
    static KernelNames table;
    return table;
  }
  void record(CUfunction function, const char *name) {
    std::lock_guard<std::mutex> lock(mutex);
    names.emplace(function, name);
  }
  std::string of(CUfunction function) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = names.find(function);
    return it == names.end() ? "?" : it->second;
  }
};

/// The last kernel this thread launched and its shape; formatted only when
/// an error names it.
struct Launch {
  CUfunction function = nullptr;
  int64_t grid[3] = {0, 0, 0}, block[3] = {0, 0, 0}, sharedBytes = 0;

  std::string describe() const {
    if (!function)
      return "";
    auto dims = [](const int64_t *d) {
      return std::to_string(d[0]) + "x" + std::to_string(d[1]) + "x" +
             std::to_string(d[2]);
    };
    return " of kernel " + KernelNames::get().of(function) + " (grid " +
           dims(grid) + ", block " + dims(block) + ", " +
           std::to_string(sharedBytes) + " B shared)";
  }
  static Launch &last() {
    static thread_local Launch launch;
    return launch;
  }
};
} // namespace

extern "C" CUfunction mgpuModuleGetFunction(CUmodule module, const char *name) {
  auto &d = driver("mgpuModuleGetFunction");
  CUfunction function = nullptr;
  check(d, d.cuModuleGetFunction(&function, module, name),
        "cuModuleGetFunction", std::string(" of kernel ") + name);
  KernelNames::get().record(function, name);
  GpuProfile &profile = GpuProfile::get();
  if (profile.on()) {
    std::lock_guard<std::mutex> lock(profile.mutex);
    profile.functionNames[function] =
        std::string(name) + " " + profile.moduleHashes[module];
  }
  return function;
}

extern "C" void mgpuLaunchKernel(CUfunction function, intptr_t gridX,
                                 intptr_t gridY, intptr_t gridZ,
                                 intptr_t blockX, intptr_t blockY,
                                 intptr_t blockZ, int32_t sharedBytes,
                                 CUstream stream, void **params, void **extra,
                                 size_t) {
  auto &d = driver("mgpuLaunchKernel");
  Launch &launch = Launch::last();
  launch = {function, {gridX, gridY, gridZ}, {blockX, blockY, blockZ},
            sharedBytes};
  lora::runtime::CudaProfileScope span([function] {
    GpuProfile &profile = GpuProfile::get();
    std::lock_guard<std::mutex> lock(profile.mutex);
    return profile.functionNames[function];
  });
  CUresult result =
      d.cuLaunchKernel(function, unsigned(gridX), unsigned(gridY),
                       unsigned(gridZ), unsigned(blockX), unsigned(blockY),
                       unsigned(blockZ), unsigned(sharedBytes), stream,
                       params, extra);
  if (result != CUDA_SUCCESS)
    check(d, result, "cuLaunchKernel", launch.describe());
}

// The step's host code (lora-async-launches) asks for a stream once and
// launches every kernel on it without waiting; the runtime's GEMMs and flash
// attention enqueue on the same stream, so all of it runs in program order.
// One stream per thread: creating and destroying one per kernel would cost
// more than many small kernels, and `gpu.wait` destroys the stream it waits
// for, which must stay usable.
namespace {
/// Whether this thread made its stream (mgpuStreamCreate).
thread_local bool threadHasStream = false;
} // namespace

extern "C" CUstream mgpuStreamCreate() {
  static thread_local CUstream stream = [] {
    threadHasStream = true;
    auto &d = driver("mgpuStreamCreate");
    CUstream created = nullptr;
    check(d, d.cuStreamCreate(&created, CU_STREAM_NON_BLOCKING),
          "cuStreamCreate");
    return created;
  }();
  return stream;
}

extern "C" void mgpuStreamSynchronize(CUstream stream) {
  // Kernels run ahead of the host: a fault surfaces at the next wait, and
  // may be any kernel since the last one (CUDA_LAUNCH_BLOCKING=1 makes every
  // launch wait, to find which).
  auto &d = driver("mgpuStreamSynchronize");
  check(d, d.cuStreamSynchronize(stream), "cuStreamSynchronize",
        " (the last kernel launched before it:" +
            Launch::last().describe() + ")");
}

extern "C" void mgpuStreamDestroy(CUstream) {
  // The thread's stream lives as long as the thread (mgpuStreamCreate).
}

void *lora::runtime::cudaStepStream() { return mgpuStreamCreate(); }

void lora::runtime::cudaSynchronizeStepStream() {
  if (threadHasStream)
    mgpuStreamSynchronize(mgpuStreamCreate());
}

void lora::runtime::cudaCopyOnStepStream(void *destination, const void *source,
                                         size_t bytes) {
  auto &d = driver("cudaCopyOnStepStream");
  check(d,
        d.cuMemcpyAsync(reinterpret_cast<CUdeviceptr>(destination),
                        reinterpret_cast<CUdeviceptr>(source), bytes,
                        mgpuStreamCreate()),
        "cuMemcpyAsync");
}

void lora::runtime::cudaPrefetchToGpu(void *pointer, size_t bytes) {
  auto &d = driver("cudaPrefetchToGpu");
  CUmemLocation gpu{};
  gpu.type = CU_MEM_LOCATION_TYPE_DEVICE;
  gpu.id = Driver::ordinal();
  // A hint: where the driver cannot move managed memory ahead (no
  // concurrent managed access), pages still move when first touched.
  if (d.cuMemPrefetchAsync(reinterpret_cast<CUdeviceptr>(pointer), bytes, gpu,
                           0, mgpuStreamCreate()) == CUDA_SUCCESS)
    cudaSynchronizeStepStream();
}

namespace {
/// The step's device arena: buffers freed by a step are kept by size and
/// handed to the next step's allocations of that size (every step asks for
/// the same sizes), so steady-state steps allocate nothing.
struct DeviceArena {
  std::mutex mutex;
  std::map<uint64_t, std::vector<void *>> freeBySize;
  std::map<void *, uint64_t> sizeOf;
  lora::runtime::ArenaStats stats;
  uint64_t liveBytes = 0;

  void *take(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = freeBySize.find(bytes);
    if (it == freeBySize.end() || it->second.empty())
      return nullptr;
    void *pointer = it->second.back();
    it->second.pop_back();
    ++stats.reusedAllocations;
    use(bytes);
    return pointer;
  }
  void record(void *pointer, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex);
    sizeOf[pointer] = bytes;
    ++stats.systemAllocations;
    stats.reservedBytes += bytes;
    use(bytes);
  }
  /// False when the pointer was not allocated here.
  bool give(void *pointer) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = sizeOf.find(pointer);
    if (it == sizeOf.end())
      return false;
    freeBySize[it->second].push_back(pointer);
    liveBytes -= it->second;
    return true;
  }
  void use(uint64_t bytes) {
    liveBytes += bytes;
    stats.peakLiveBytes = std::max(stats.peakLiveBytes, liveBytes);
  }
  static DeviceArena &get() {
    static DeviceArena arena;
    return arena;
  }
};
} // namespace

lora::runtime::ArenaStats lora::runtime::cudaArenaStats() {
  DeviceArena &arena = DeviceArena::get();
  std::lock_guard<std::mutex> lock(arena.mutex);
  return arena.stats;
}

extern "C" void *mgpuMemAlloc(uint64_t bytes, CUstream, bool) {
  // Always managed: the host code of a step reads the same buffers.
  DeviceArena &arena = DeviceArena::get();
  if (void *reused = arena.take(bytes))
    return reused;
  void *pointer = lora::runtime::cudaAllocateShared(bytes);
  if (!pointer) {
    std::fprintf(stderr,
                 "lora: cannot allocate %llu bytes of managed GPU "
                 "memory\n",
                 (unsigned long long)bytes);
    std::exit(1);
  }
  arena.record(pointer, bytes);
  return pointer;
}

// lora-host-shared-allocs frees through lora_gpu_free_<element bits>; one
// entry per width, all reading the descriptor's allocated pointer.
static void freeBuffer(LoraUnrankedMemRef *buffer) {
  auto *words = static_cast<int64_t *>(buffer->descriptor);
  auto *pointer = reinterpret_cast<void *>(words[0]);
  if (!DeviceArena::get().give(pointer))
    lora::runtime::cudaFreeShared(pointer);
}
extern "C" void _mlir_ciface_lora_gpu_free_8(LoraUnrankedMemRef *buffer) {
  freeBuffer(buffer);
}
extern "C" void _mlir_ciface_lora_gpu_free_16(LoraUnrankedMemRef *buffer) {
  freeBuffer(buffer);
}
extern "C" void _mlir_ciface_lora_gpu_free_32(LoraUnrankedMemRef *buffer) {
  freeBuffer(buffer);
}
extern "C" void _mlir_ciface_lora_gpu_free_64(LoraUnrankedMemRef *buffer) {
  freeBuffer(buffer);
}

//===----------------------------------------------------------------------===//
// GEMMs: C += op(A) op(B), row-major f32, through cuBLASLt
//===----------------------------------------------------------------------===//

namespace {

/// One cuBLASLt handle and workspace per thread: the GEMMs of a thread run
/// on its stream (mgpuStreamCreate), in order with its kernels, so one
/// workspace serves them one after the other.
struct Blas {
  cublasLtHandle_t handle = nullptr;
  void *workspace = nullptr;
  size_t workspaceBytes = size_t(32) << 20;

  static Blas &get() {
    static thread_local Blas blas = [] {
      driver("lora_gpu_sgemm_f32");
      Blas created;
      checkBlas(cublasLtCreate(&created.handle), "cublasLtCreate");
      created.workspace =
          lora::runtime::cudaAllocateShared(created.workspaceBytes);
      return created;
    }();
    return blas;
  }
};

} // namespace

namespace {

/// Row-major C (f32) = op(A) op(B) (+ C when accumulating) with cuBLASLt:
/// A and B of `inputs` (f32, or bf16 with fp32 accumulation).
void gemmLt(const char *caller, int32_t transposeA, int32_t transposeB,
            int32_t accumulate, cudaDataType_t inputs, const void *aData,
            const lora::runtime::MatrixLayout &a, const void *bData,
            const lora::runtime::MatrixLayout &b, LoraMemRef2DF32 *c) {
  auto [m, n, k] =
      lora::runtime::checkedGemmShape(caller, transposeA, a, b, *c);
  if (m == 0 || n == 0)
    return;
  Blas &blas = Blas::get();
  // Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ: B comes
  // first, and each row-major matrix is its column-major transpose.
  cublasOperation_t opB = transposeB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opA = transposeA ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasLtMatmulDesc_t operation;
  checkBlas(
      cublasLtMatmulDescCreate(&operation, CUBLAS_COMPUTE_32F, CUDA_R_32F),
      "cublasLtMatmulDescCreate");
  cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_TRANSA, &opB,
                                 sizeof opB);
  cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_TRANSB, &opA,
                                 sizeof opA);
  // Column-major shapes: first operand (B) is n x k, second (A) k x m.
  cublasLtMatrixLayout_t layoutB, layoutA, layoutC;
  cublasLtMatrixLayoutCreate(&layoutB, inputs, transposeB ? k : n,
                             transposeB ? n : k, b.strides[0]);
  cublasLtMatrixLayoutCreate(&layoutA, inputs, transposeA ? m : k,
                             transposeA ? k : m, a.strides[0]);
  cublasLtMatrixLayoutCreate(&layoutC, CUDA_R_32F, n, m, c->strides[0]);
  float one = 1, beta = accumulate ? 1.0f : 0.0f;
  float *cData = c->aligned + c->offset;
  lora::runtime::CudaProfileScope span([&] {
    return std::string("gemm ") +
           (inputs == CUDA_R_16BF ? "bf16 " : "f32 ") + std::to_string(m) +
           "x" + std::to_string(n) + "x" + std::to_string(k) +
           (transposeA ? " tA" : "") + (transposeB ? " tB" : "") +
           (accumulate ? " +C" : "");
  });
  checkBlas(cublasLtMatmul(blas.handle, operation, &one, bData, layoutB, aData,
                           layoutA, &beta, cData, layoutC, cData, layoutC,
                           nullptr, blas.workspace, blas.workspaceBytes,
                           mgpuStreamCreate()),
            "cublasLtMatmul");
  // No wait: the host code waits where it reads results (lora-async-launches).
  cublasLtMatrixLayoutDestroy(layoutA);
  cublasLtMatrixLayoutDestroy(layoutB);
  cublasLtMatrixLayoutDestroy(layoutC);
  cublasLtMatmulDescDestroy(operation);
}

} // namespace

extern "C" void _mlir_ciface_lora_gpu_sgemm_f32(int32_t transposeA,
                                                int32_t transposeB,
                                                int32_t accumulate,
                                                LoraMemRef2DF32 *a,
                                                LoraMemRef2DF32 *b,
                                                LoraMemRef2DF32 *c) {
  gemmLt("lora_gpu_sgemm_f32", transposeA, transposeB, accumulate, CUDA_R_32F,
         a->aligned + a->offset, *a, b->aligned + b->offset, *b, c);
}

/// bf16 A and B (lora-run --bf16): tensor cores, fp32 accumulation.
extern "C" void _mlir_ciface_lora_gpu_gemm_bf16(int32_t transposeA,
                                                int32_t transposeB,
                                                int32_t accumulate,
                                                LoraMemRef2DBF16 *a,
                                                LoraMemRef2DBF16 *b,
                                                LoraMemRef2DF32 *c) {
  gemmLt("lora_gpu_gemm_bf16", transposeA, transposeB, accumulate,
         CUDA_R_16BF, a->aligned + a->offset, *a, b->aligned + b->offset, *b,
         c);
}

std::vector<lora::runtime::RuntimeEntryPoint>
lora::runtime::cudaEntryPoints() {
  auto entry = [](const char *name, auto *function) {
    return RuntimeEntryPoint{name, reinterpret_cast<void *>(function)};
  };
  return {
      entry("mgpuModuleLoadJIT", &mgpuModuleLoadJIT),
      entry("mgpuModuleLoad", &mgpuModuleLoad),
      entry("mgpuModuleUnload", &mgpuModuleUnload),
      entry("mgpuModuleGetFunction", &mgpuModuleGetFunction),
      entry("mgpuLaunchKernel", &mgpuLaunchKernel),
      entry("mgpuStreamCreate", &mgpuStreamCreate),
      entry("mgpuStreamSynchronize", &mgpuStreamSynchronize),
      entry("mgpuStreamDestroy", &mgpuStreamDestroy),
      entry("mgpuMemAlloc", &mgpuMemAlloc),
      entry("_mlir_ciface_lora_gpu_free_8", &_mlir_ciface_lora_gpu_free_8),
      entry("_mlir_ciface_lora_gpu_free_16", &_mlir_ciface_lora_gpu_free_16),
      entry("_mlir_ciface_lora_gpu_free_32", &_mlir_ciface_lora_gpu_free_32),
      entry("_mlir_ciface_lora_gpu_free_64", &_mlir_ciface_lora_gpu_free_64),
      entry("_mlir_ciface_lora_gpu_sgemm_f32",
            &_mlir_ciface_lora_gpu_sgemm_f32),
      entry("_mlir_ciface_lora_gpu_gemm_bf16",
            &_mlir_ciface_lora_gpu_gemm_bf16),
      entry("_mlir_ciface_lora_gpu_attention_f32",
            &_mlir_ciface_lora_gpu_attention_f32),
      entry("_mlir_ciface_lora_gpu_attention_grad_f32",
            &_mlir_ciface_lora_gpu_attention_grad_f32),
      entry("_mlir_ciface_lora_gpu_attention_bf16",
            &_mlir_ciface_lora_gpu_attention_bf16),
      entry("_mlir_ciface_lora_gpu_attention_grad_bf16",
            &_mlir_ciface_lora_gpu_attention_grad_bf16),
  };
}
