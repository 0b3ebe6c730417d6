//===- MpiCommunicator.cpp - MPI collectives for CPU data parallelism -----===//
//
// Built with LORA_ENABLE_MPI. MPI runs with MPI_THREAD_MULTIPLE: the
// communication thread is inside a collective while the watchdog on the
// main thread may have to call MPI_Abort.
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Collective.h"

#include <mpi.h>

namespace lora::runtime {
namespace {

Status mpiStatus(int code, const char *what) {
  if (code == MPI_SUCCESS)
    return Status::success();
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return Status::error(std::string(what) +
                       " failed: " + std::string(text, size_t(length)));
}

class MpiCommunicator final : public Communicator {
public:
  MpiCommunicator(int rank, int size, double timeoutSeconds, bool canAbort)
      : Communicator(rank, size, timeoutSeconds), canAbort(canAbort) {}
  ~MpiCommunicator() override { stopThread(); }

  Status sumOnThread(float *data, size_t count) override {
    return sum(data, count, MPI_FLOAT);
  }
  Status sumOnThread(double *data, size_t count) override {
    return sum(data, count, MPI_DOUBLE);
  }

protected:
  [[noreturn]] void abortAll() override {
    if (canAbort)
      MPI_Abort(MPI_COMM_WORLD, 1);
    Communicator::abortAll();
  }

private:
  Status sum(void *data, size_t count, MPI_Datatype type) {
    // MPI counts are ints: large buckets go in pieces.
    size_t element = type == MPI_FLOAT ? sizeof(float) : sizeof(double);
    auto *bytes = static_cast<char *>(data);
    const size_t piece = size_t(1) << 30;
    for (size_t done = 0; done < count; done += piece) {
      int n = int(std::min(piece, count - done));
      LORA_RETURN_IF_ERROR(
          mpiStatus(MPI_Allreduce(MPI_IN_PLACE, bytes + done * element, n, type,
                                  MPI_SUM, MPI_COMM_WORLD),
                    "MPI_Allreduce"));
    }
    return Status::success();
  }

  bool canAbort;
};

} // namespace

namespace {
/// Initializes MPI once and finalizes it when the program ends (after the
/// communicators, which are destroyed first).
Status initializeMpi(int &provided) {
  static int level = -1;
  static struct Finalizer {
    bool owned = false;
    ~Finalizer() {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (owned && !finalized)
        MPI_Finalize();
    }
  } finalizer;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &level) !=
        MPI_SUCCESS)
      return Status::error("MPI_Init_thread failed");
    finalizer.owned = true;
  } else if (level < 0) {
    MPI_Query_thread(&level);
  }
  provided = level;
  return Status::success();
}
} // namespace

Status mpiShareFromRankZero(const LaunchEnvironment &launch,
                            std::vector<uint8_t> &bytes) {
  int provided = 0;
  LORA_RETURN_IF_ERROR(initializeMpi(provided));
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (rank != launch.rank || size != launch.worldSize)
    return Status::error("the " + launch.launcher + " launch says rank " +
                         std::to_string(launch.rank) + " of " +
                         std::to_string(launch.worldSize) +
                         ", but MPI sees rank " + std::to_string(rank) +
                         " of " + std::to_string(size));
  uint64_t length = bytes.size();
  MPI_Bcast(&length, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  bytes.resize(length);
  return mpiStatus(
      MPI_Bcast(bytes.data(), int(length), MPI_BYTE, 0, MPI_COMM_WORLD),
      "MPI_Bcast");
}

Status openMpiCommunicator(const LaunchEnvironment &launch,
                           double timeoutSeconds,
                           std::unique_ptr<Communicator> &communicator) {
  int provided = MPI_THREAD_SINGLE;
  LORA_RETURN_IF_ERROR(initializeMpi(provided));
  if (provided < MPI_THREAD_SERIALIZED)
    return Status::error("this MPI library gives no thread support "
                         "(MPI_THREAD_SERIALIZED needed for the "
                         "communication thread)");
  // Errors come back as codes, so that the message names the collective.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != launch.worldSize || rank != launch.rank) {
    std::string hint =
        launch.launcher == "torchrun"
            ? "; on CPUs the collectives are MPI's: launch with mpirun or "
              "srun, not torchrun"
            : "";
    return Status::error("the " + launch.launcher + " launch says rank " +
                         std::to_string(launch.rank) + " of " +
                         std::to_string(launch.worldSize) +
                         ", but MPI sees rank " + std::to_string(rank) +
                         " of " + std::to_string(size) + hint);
  }
  communicator = std::make_unique<MpiCommunicator>(
      rank, size, timeoutSeconds, provided == MPI_THREAD_MULTIPLE);
  return Status::success();
}

} // namespace lora::runtime
