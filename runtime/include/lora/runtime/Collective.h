//===- Collective.h - data-parallel collectives with a watchdog --*- C++
//-*-===//
//
// Every collective runs on one communication thread; the caller waits for
// it with a timeout. A collective that does not finish in time (a rank
// died, hangs or skipped it) ends the process with a message naming this
// rank, the step and the collective: no rank ever hangs.
//
// The compiled step reduces the trainable gradients itself: the compiler
// (lora-data-parallel) puts `lora.all_reduce_start` right after each
// gradient's last write and `lora.all_reduce_wait` before the optimizer.
// They call the C entry points at the bottom of this file, which hand the
// gradient to the installed GradientReducer. It packs gradients into
// buckets in the order the backward finishes them and reduces each full
// bucket on the communication thread while the backward goes on.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_COLLECTIVE_H
#define LORA_RUNTIME_COLLECTIVE_H

#include "lora/runtime/Launch.h"
#include "lora/runtime/MemRef.h"
#include "lora/runtime/Status.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lora::runtime {

/// The ranks of one data-parallel run.
class Communicator {
public:
  Communicator(int rank, int size, double timeoutSeconds);
  virtual ~Communicator();

  int rank() const { return rankIndex; }
  int size() const { return worldSize; }
  /// The step that watchdog messages name.
  void setStep(int64_t step) { currentStep = step; }
  int64_t step() const { return currentStep; }

  /// A collective queued on the communication thread.
  using Ticket = uint64_t;
  Ticket submit(std::string what, std::function<Status()> job);
  /// Waits for `ticket`; past the timeout, or when the collective failed,
  /// reports and ends the process (every rank's watchdog does the same).
  void wait(Ticket ticket);

  /// A blocking in-place sum over every rank.
  void sum(double *data, size_t count, const std::string &what);

  /// What the communication thread runs.
  virtual Status sumOnThread(float *data, size_t count) = 0;
  virtual Status sumOnThread(double *data, size_t count) = 0;

protected:
  /// Ends this process and, where the library can, every other rank.
  [[noreturn]] virtual void abortAll();
  /// Stops the communication thread (derived destructors call it first).
  void stopThread();

private:
  [[noreturn]] void fail(const std::string &message);
  void loop();

  int rankIndex, worldSize;
  double timeout;
  int64_t currentStep = 0;
  std::mutex mutex;
  std::condition_variable changed;
  struct Job {
    Ticket ticket;
    std::string what;
    std::function<Status()> run;
  };
  std::deque<Job> queue;
  std::map<Ticket, Status> finished;
  /// The collective the thread is in (0: none), for the watchdog.
  Ticket running = 0;
  std::string runningWhat;
  Ticket nextTicket = 1;
  bool stopping = false;
  std::thread thread;
};

/// MPI's world communicator: MPI_Init_thread on first use, checked against
/// `launch` (a torchrun launch on CPUs, which MPI does not see, is named as
/// such). An error when the runtime was built without MPI.
Status openMpiCommunicator(const LaunchEnvironment &launch,
                           double timeoutSeconds,
                           std::unique_ptr<Communicator> &communicator);

/// Rank 0's `bytes` to every rank through MPI_Bcast (MPI is initialized
/// if it was not, and finalized at exit).
Status mpiShareFromRankZero(const LaunchEnvironment &launch,
                            std::vector<uint8_t> &bytes);

/// NCCL for the GPUs of a data-parallel run (CUDA backend): GPU
/// `launch.localRank`, a non-blocking communicator that the watchdog can
/// abort, its id from rank 0 over TCP (MASTER_ADDR) or MPI.
Status openNcclCommunicator(const LaunchEnvironment &launch,
                            double timeoutSeconds,
                            std::unique_ptr<Communicator> &communicator);

/// Reduces the compiled step's trainable gradients: a weighted sum over
/// ranks, sum_r weight_r * g_r, where weight_r is this rank's share of the
/// step's counted tokens, so that the result is the gradient of the mean
/// loss over the whole global batch.
class GradientReducer {
public:
  GradientReducer(Communicator &communicator, size_t bucketBytes);

  /// Before a step: this rank's weight.
  void beginStep(int64_t step, float weight);
  /// The compiled step's calls.
  void start(const LoraUnrankedMemRef &gradient);
  void wait(const LoraUnrankedMemRef &gradient);
  /// After a step: every started gradient was waited for.
  Status endStep();

  /// Buckets and bytes of the last step.
  size_t bucketsLastStep() const { return buckets.size(); }
  size_t bytesLastStep() const;

  /// Over every step so far: seconds the gradient collectives ran on the
  /// communication thread, and seconds the step waited for them. What was
  /// not waited for ran behind the backward.
  struct Overlap {
    double collectiveSeconds = 0, waitedSeconds = 0;
    int64_t steps = 0;
  };
  Overlap overlap() const;

private:
  struct Entry {
    LoraUnrankedMemRef gradient;
    size_t bucket, offset, count;
    bool waited = false;
  };
  struct Bucket {
    std::vector<float> data;
    Communicator::Ticket ticket = 0;
    bool done = false;
  };
  void submit(size_t bucket);

  Communicator &communicator;
  size_t bucketElements;
  float weight = 1;
  std::vector<Bucket> buckets;
  std::vector<Entry> entries;
  /// Nanoseconds, added by the communication thread.
  std::atomic<int64_t> collectiveNanoseconds{0};
  double waitedSeconds = 0;
  int64_t steps = 0;
  /// Copies of the started gradients' descriptors (the compiled code's
  /// live only for the call).
  std::deque<std::vector<int64_t>> descriptors;
};

/// The reducer the compiled step's calls go to (nullptr: one process, the
/// calls leave gradients as they are).
void installGradientReducer(GradientReducer *reducer);

} // namespace lora::runtime

extern "C" {
/// Called by compiled steps (lora.all_reduce_start / _wait).
void _mlir_ciface_lora_all_reduce_start_f32(LoraUnrankedMemRef *gradient);
void _mlir_ciface_lora_all_reduce_wait_f32(LoraUnrankedMemRef *gradient);
}

#endif // LORA_RUNTIME_COLLECTIVE_H
