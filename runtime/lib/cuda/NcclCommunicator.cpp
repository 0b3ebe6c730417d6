//===- NcclCommunicator.cpp - NCCL collectives for GPU data parallelism ---===//
//
// libnccl.so.2 comes from dlopen, like the driver. The communicator is
// non-blocking (ncclConfig_t.blocking = 0): every call returns at once and
// the communication thread polls ncclCommGetAsyncError and the stream, so
// that the watchdog can ncclCommAbort a collective a dead rank never joins.
// NCCL's unique id goes from rank 0 to the others over TCP (torchrun
// launches) or MPI (mpirun, srun).
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Collective.h"
#include "lora/runtime/Cuda.h"
#include "lora/runtime/Rendezvous.h"

#include <cuda.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <optional>
#include <thread>

namespace lora::runtime {
namespace {

struct Nccl {
#define LORA_NCCL_FUNCTIONS(X)                                                 \
  X(ncclGetUniqueId)                                                           \
  X(ncclCommInitRankConfig)                                                    \
  X(ncclCommGetAsyncError) X(ncclCommAbort) X(ncclCommDestroy)                 \
      X(ncclAllReduce) X(ncclGetErrorString)
#define LORA_DECLARE(name) decltype(&::name) name = nullptr;
  LORA_NCCL_FUNCTIONS(LORA_DECLARE)
#undef LORA_DECLARE
  Status status = Status::error("NCCL was not opened");

  static Nccl &get() {
    static Nccl nccl;
    static std::once_flag opened;
    std::call_once(opened, [] { nccl.status = nccl.open(); });
    return nccl;
  }

  std::string describe(ncclResult_t result) const {
    return ncclGetErrorString ? ncclGetErrorString(result)
                              : "NCCL error " + std::to_string(int(result));
  }

private:
  Status open() {
    void *library = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!library)
      return Status::error(std::string("no NCCL: ") + dlerror());
#define LORA_RESOLVE(name)                                                     \
  name = reinterpret_cast<decltype(name)>(dlsym(library, #name));              \
  if (!name)                                                                   \
    return Status::error("libnccl.so.2 lacks " #name);
    LORA_NCCL_FUNCTIONS(LORA_RESOLVE)
#undef LORA_RESOLVE
    return Status::success();
  }
};

using Clock = std::chrono::steady_clock;

/// Polls the non-blocking communicator until no operation is in progress:
/// success, NCCL's error naming `what`, or (past `deadline`) a timeout.
/// The communication thread waits without a deadline: the watchdog aborts
/// the communicator instead.
Status settle(ncclComm_t comm, const std::string &what,
              std::optional<Clock::time_point> deadline = std::nullopt) {
  Nccl &nccl = Nccl::get();
  while (true) {
    ncclResult_t state = ncclSuccess;
    nccl.ncclCommGetAsyncError(comm, &state);
    if (state == ncclSuccess)
      return Status::success();
    if (state != ncclInProgress)
      return Status::error(what + ": " + nccl.describe(state));
    if (deadline && Clock::now() > *deadline)
      return Status::error(what + ": not done before the timeout (a rank is "
                                  "missing)");
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

class NcclCommunicator final : public Communicator {
public:
  NcclCommunicator(int rank, int size, double timeout, ncclComm_t comm)
      : Communicator(rank, size, timeout), comm(comm) {}
  ~NcclCommunicator() override {
    stopThread();
    Nccl &nccl = Nccl::get();
    nccl.ncclCommDestroy(comm);
    cudaFreeShared(staging);
  }

  Status sumOnThread(float *data, size_t count) override {
    return sum(data, count * sizeof(float), count, ncclFloat);
  }
  Status sumOnThread(double *data, size_t count) override {
    return sum(data, count * sizeof(double), count, ncclDouble);
  }

protected:
  [[noreturn]] void abortAll() override {
    // Safe from another thread for a non-blocking communicator: the
    // communication thread's collective returns with an error.
    Nccl::get().ncclCommAbort(comm);
    Communicator::abortAll();
  }

private:
  /// In-place sum of host (or managed) memory, staged through managed
  /// memory that NCCL can read.
  Status sum(void *data, size_t bytes, size_t count, ncclDataType_t type) {
    if (bytes > stagingBytes) {
      cudaFreeShared(staging);
      staging = cudaAllocateShared(bytes);
      stagingBytes = staging ? bytes : 0;
      if (!staging)
        return Status::error("cannot allocate " + std::to_string(bytes) +
                             " bytes of managed memory for NCCL");
    }
    std::memcpy(staging, data, bytes);
    Nccl &nccl = Nccl::get();
    ncclResult_t result = nccl.ncclAllReduce(staging, staging, count, type,
                                             ncclSum, comm, nullptr);
    if (result != ncclSuccess && result != ncclInProgress)
      return Status::error("ncclAllReduce: " + nccl.describe(result));
    LORA_RETURN_IF_ERROR(settle(comm, "ncclAllReduce"));
    LORA_RETURN_IF_ERROR(cudaSynchronizeDefaultStream());
    std::memcpy(data, staging, bytes);
    return Status::success();
  }

  ncclComm_t comm;
  void *staging = nullptr;
  size_t stagingBytes = 0;
};

} // namespace

Status openNcclCommunicator(const LaunchEnvironment &launch,
                            double timeoutSeconds,
                            std::unique_ptr<Communicator> &communicator) {
  // One GPU per local rank.
  LORA_RETURN_IF_ERROR(cudaUseDevice(launch.localRank));
  std::string device;
  LORA_RETURN_IF_ERROR(cudaDevice(device));
  Nccl &nccl = Nccl::get();
  LORA_RETURN_IF_ERROR(nccl.status);
  std::vector<uint8_t> id(sizeof(ncclUniqueId));
  if (launch.rank == 0) {
    ncclUniqueId unique;
    if (ncclResult_t r = nccl.ncclGetUniqueId(&unique); r != ncclSuccess)
      return Status::error("ncclGetUniqueId: " + nccl.describe(r));
    std::memcpy(id.data(), &unique, sizeof unique);
  }
  // torchrun: TCP from rank 0; mpirun and srun: MPI.
  if (!launch.masterAddress.empty() && launch.masterPort > 0)
    LORA_RETURN_IF_ERROR(shareFromRankZero(launch, id, timeoutSeconds));
  else
    LORA_RETURN_IF_ERROR(mpiShareFromRankZero(launch, id));
  if (id.size() != sizeof(ncclUniqueId))
    return Status::error("rank 0 sent an NCCL id of " +
                         std::to_string(id.size()) + " bytes");
  ncclUniqueId unique;
  std::memcpy(&unique, id.data(), sizeof unique);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  ncclResult_t result = nccl.ncclCommInitRankConfig(
      &comm, launch.worldSize, unique, launch.rank, &config);
  if (result != ncclSuccess && result != ncclInProgress)
    return Status::error("ncclCommInitRankConfig: " + nccl.describe(result));
  auto deadline =
      Clock::now() + std::chrono::milliseconds(int64_t(timeoutSeconds * 1000));
  if (Status formed = settle(comm,
                             "rank " + std::to_string(launch.rank) +
                                 ": forming NCCL's communicator",
                             deadline);
      !formed.ok()) {
    nccl.ncclCommAbort(comm);
    return formed;
  }
  communicator = std::make_unique<NcclCommunicator>(
      launch.rank, launch.worldSize, timeoutSeconds, comm);
  return Status::success();
}

} // namespace lora::runtime
