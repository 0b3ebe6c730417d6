//===- Collective.cpp - data-parallel collectives with a watchdog ---------===//

#include "lora/runtime/Collective.h"
#include "lora/runtime/Cuda.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace lora::runtime {

//===----------------------------------------------------------------------===//
// Communicator: one thread runs the collectives, callers wait with a timeout
//===----------------------------------------------------------------------===//

Communicator::Communicator(int rank, int size, double timeoutSeconds)
    : rankIndex(rank), worldSize(size), timeout(timeoutSeconds),
      thread([this] { loop(); }) {}

Communicator::~Communicator() { stopThread(); }

void Communicator::stopThread() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (stopping)
      return;
    stopping = true;
  }
  changed.notify_all();
  if (thread.joinable())
    thread.join();
}

void Communicator::loop() {
  std::unique_lock<std::mutex> lock(mutex);
  while (true) {
    changed.wait(lock, [&] { return stopping || !queue.empty(); });
    if (queue.empty())
      return;
    Job job = std::move(queue.front());
    queue.pop_front();
    running = job.ticket;
    runningWhat = job.what;
    lock.unlock();
    Status status = job.run();
    if (!status.ok())
      status = Status::error(job.what + ": " + status.message());
    lock.lock();
    running = 0;
    finished.emplace(job.ticket, std::move(status));
    changed.notify_all();
  }
}

Communicator::Ticket Communicator::submit(std::string what,
                                          std::function<Status()> job) {
  std::lock_guard<std::mutex> lock(mutex);
  Ticket ticket = nextTicket++;
  queue.push_back({ticket, std::move(what), std::move(job)});
  changed.notify_all();
  return ticket;
}

void Communicator::wait(Ticket ticket) {
  std::unique_lock<std::mutex> lock(mutex);
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
  bool done = changed.wait_until(lock, deadline,
                                 [&] { return finished.count(ticket) > 0; });
  if (!done) {
    std::string what = running == ticket ? runningWhat : "";
    for (const Job &job : queue)
      if (job.ticket == ticket)
        what = job.what + " (queued behind another collective)";
    lock.unlock();
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", timeout);
    fail(what + " did not finish within " + seconds +
         " s (--ddp_timeout): another rank died, hangs or skipped "
         "it");
  }
  auto it = finished.find(ticket);
  Status status = std::move(it->second);
  finished.erase(it);
  lock.unlock();
  if (!status.ok())
    fail(status.message());
}

void Communicator::fail(const std::string &message) {
  std::fprintf(stderr, "lora-run: rank %d of %d, step %lld: %s; aborting\n",
               rankIndex, worldSize, (long long)currentStep, message.c_str());
  std::fflush(stderr);
  abortAll();
  std::_Exit(1); // abortAll does not return; the compiler cannot know
}

void Communicator::abortAll() { std::_Exit(1); }

void Communicator::sum(double *data, size_t count, const std::string &what) {
  wait(submit(what, [this, data, count] { return sumOnThread(data, count); }));
}

//===----------------------------------------------------------------------===//
// GradientReducer: buckets in backward order, reduced while the backward runs
//===----------------------------------------------------------------------===//

namespace {

int64_t elementsOf(const LoraUnrankedMemRef &memref) {
  auto *words = static_cast<int64_t *>(memref.descriptor);
  int64_t count = 1;
  for (int64_t d = 0; d < memref.rank; ++d)
    count *= words[3 + d];
  return count;
}

/// Copies between a (possibly strided) gradient and a dense run of floats
/// of its shape, through the runtime's strided memref copy.
void copyBetween(const LoraUnrankedMemRef &gradient, float *dense,
                 bool toDense) {
  auto *sizes = static_cast<int64_t *>(gradient.descriptor) + 3;
  MemRefDescriptors descriptors;
  descriptors.add(dense, std::vector<int64_t>(sizes, sizes + gradient.rank));
  LoraUnrankedMemRef denseRef{gradient.rank, descriptors.pointers()[0]};
  LoraUnrankedMemRef source = gradient;
  if (toDense)
    memrefCopy(sizeof(float), &source, &denseRef);
  else
    memrefCopy(sizeof(float), &denseRef, &source);
}

std::atomic<GradientReducer *> installedReducer{nullptr};

} // namespace

GradientReducer::GradientReducer(Communicator &communicator, size_t bucketBytes)
    : communicator(communicator),
      bucketElements(std::max<size_t>(1, bucketBytes / sizeof(float))) {}

void GradientReducer::beginStep(int64_t step, float stepWeight) {
  communicator.setStep(step);
  weight = stepWeight;
  buckets.clear();
  entries.clear();
}

void GradientReducer::submit(size_t index) {
  Bucket &bucket = buckets[index];
  if (bucket.ticket)
    return;
  float *data = bucket.data.data();
  size_t count = bucket.data.size();
  bucket.ticket = communicator.submit(
      "gradient all-reduce (bucket " + std::to_string(index + 1) + ", " +
          std::to_string(count * sizeof(float)) + " bytes)",
      [this, data, count] {
        auto began = std::chrono::steady_clock::now();
        Status status = communicator.sumOnThread(data, count);
        collectiveNanoseconds +=
            std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now() - began)
                .count();
        return status;
      });
}

GradientReducer::Overlap GradientReducer::overlap() const {
  return {double(collectiveNanoseconds.load()) * 1e-9, waitedSeconds, steps};
}

void GradientReducer::start(const LoraUnrankedMemRef &gradient) {
  size_t count = size_t(elementsOf(gradient));
  if (buckets.empty() || buckets.back().ticket)
    buckets.emplace_back();
  size_t index = buckets.size() - 1;
  Bucket &bucket = buckets[index];
  size_t offset = bucket.data.size();
  bucket.data.resize(offset + count);
  float *dense = bucket.data.data() + offset;
  copyBetween(gradient, dense, /*toDense=*/true);
  for (size_t i = 0; i < count; ++i)
    dense[i] *= weight;
  entries.push_back({gradient, index, offset, count});
  // The descriptor lives in the caller's frame; keep a copy of it.
  auto *words = static_cast<int64_t *>(gradient.descriptor);
  auto &saved = descriptors.emplace_back(words, words + 3 + 2 * gradient.rank);
  entries.back().gradient.descriptor = saved.data();
  if (bucket.data.size() >= bucketElements)
    submit(index);
}

void GradientReducer::wait(const LoraUnrankedMemRef &gradient) {
  auto *words = static_cast<int64_t *>(gradient.descriptor);
  for (Entry &entry : entries) {
    auto *saved = static_cast<int64_t *>(entry.gradient.descriptor);
    if (entry.waited || saved[1] != words[1] || saved[2] != words[2] ||
        entry.gradient.rank != gradient.rank)
      continue;
    Bucket &bucket = buckets[entry.bucket];
    if (!bucket.done) {
      submit(entry.bucket);
      auto began = std::chrono::steady_clock::now();
      communicator.wait(bucket.ticket);
      waitedSeconds += std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - began)
                           .count();
      bucket.done = true;
    }
    LoraUnrankedMemRef target = gradient;
    copyBetween(target, bucket.data.data() + entry.offset, /*toDense=*/false);
    entry.waited = true;
    return;
  }
  std::fprintf(stderr,
               "lora-run: rank %d, step %lld: the compiled step waits for a "
               "gradient it never started reducing\n",
               communicator.rank(), (long long)communicator.step());
  std::abort();
}

Status GradientReducer::endStep() {
  for (const Entry &entry : entries)
    if (!entry.waited)
      return Status::error("the compiled step started reducing a gradient "
                           "but never waited for it");
  ++steps;
  descriptors.clear();
  return Status::success();
}

size_t GradientReducer::bytesLastStep() const {
  size_t bytes = 0;
  for (const Bucket &bucket : buckets)
    bytes += bucket.data.size() * sizeof(float);
  return bytes;
}

void installGradientReducer(GradientReducer *reducer) {
  installedReducer.store(reducer);
}

#ifndef LORA_HAVE_MPI
Status mpiShareFromRankZero(const LaunchEnvironment &launch,
                            std::vector<uint8_t> &) {
  return Status::error("the " + launch.launcher +
                       " launch gives no MASTER_ADDR and MASTER_PORT to meet "
                       "at, and the runtime was built without MPI");
}

Status openMpiCommunicator(const LaunchEnvironment &launch, double,
                           std::unique_ptr<Communicator> &) {
  return Status::error(
      "this is a " + launch.launcher + " launch of " +
      std::to_string(launch.worldSize) +
      " processes, but the runtime was built without MPI; rebuild with "
      "-DLORA_ENABLE_MPI=ON (Debian: libopenmpi-dev)");
}
#endif

} // namespace lora::runtime

using lora::runtime::installedReducer;

extern "C" void
_mlir_ciface_lora_all_reduce_start_f32(LoraUnrankedMemRef *gradient) {
  if (auto *reducer = installedReducer.load()) {
    // A GPU step's kernels run ahead of its host code (lora-async-launches
    // leaves this call to wait for them): the gradient is complete once
    // the thread's stream is.
    lora::runtime::cudaSynchronizeStepStream();
    reducer->start(*gradient);
  }
}

extern "C" void
_mlir_ciface_lora_all_reduce_wait_f32(LoraUnrankedMemRef *gradient) {
  if (auto *reducer = installedReducer.load())
    reducer->wait(*gradient);
}
