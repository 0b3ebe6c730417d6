//===- CollectiveTest.cpp - the gradient reducer and the watchdog ---------===//
//
// Without MPI: a communicator that plays `ranks` identical ranks (a sum is
// the value times the rank count), or one whose collectives never end.
// Two real ranks are tested under mpirun (test/Integration/CPU).
//
//===----------------------------------------------------------------------===//

#include "lora/runtime/Collective.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

using namespace lora::runtime;

namespace {

/// `size` ranks holding the same values: every sum multiplies by `size`.
class MirrorCommunicator : public Communicator {
public:
  explicit MirrorCommunicator(int size, double timeout = 30)
      : Communicator(0, size, timeout) {}
  ~MirrorCommunicator() override { stopThread(); }
  Status sumOnThread(float *data, size_t count) override {
    ++sums;
    for (size_t i = 0; i < count; ++i)
      data[i] *= float(size());
    return Status::success();
  }
  Status sumOnThread(double *data, size_t count) override {
    for (size_t i = 0; i < count; ++i)
      data[i] *= size();
    return Status::success();
  }
  int sums = 0;
};

/// A peer that never arrives: every collective blocks.
class SilentPeerCommunicator : public MirrorCommunicator {
public:
  SilentPeerCommunicator() : MirrorCommunicator(2, 0.2) {}
  Status sumOnThread(double *, size_t) override {
    std::this_thread::sleep_for(std::chrono::seconds(30));
    return Status::success();
  }
};

/// A rank-2 row-major descriptor of `rows` x `columns` in `data` with row
/// stride `stride` (a view of a wider matrix when stride > columns).
struct Descriptor {
  Descriptor(float *data, int64_t rows, int64_t columns, int64_t stride) {
    auto address = int64_t(reinterpret_cast<intptr_t>(data));
    words = {address, address, 0, rows, columns, stride, 1};
    memref = {2, words.data()};
  }
  std::vector<int64_t> words;
  LoraUnrankedMemRef memref;
};

TEST(CollectiveTest, ReducerWeighsBucketsAndWritesBack) {
  MirrorCommunicator communicator(4);
  // A bucket is reduced once it holds 8 floats or more.
  GradientReducer reducer(communicator, 8 * sizeof(float));
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b(12);
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = float(i);
  // b's left 3 columns of 4: a strided view.
  Descriptor da(a.data(), 2, 3, 3), db(b.data(), 3, 3, 4);
  reducer.beginStep(7, 0.5f);
  reducer.start(da.memref);
  reducer.start(db.memref);
  reducer.wait(db.memref);
  reducer.wait(da.memref);
  ASSERT_TRUE(reducer.endStep().ok());
  // The second gradient filled the first bucket (15 floats >= 8): one sum.
  EXPECT_EQ(communicator.sums, 1);
  // Four ranks, each weighing 0.5: twice the value.
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(a[i], 2 * float(i + 1));
  for (size_t i = 0; i < b.size(); ++i)
    EXPECT_EQ(b[i], i % 4 == 3 ? float(i) : 2 * float(i)) << i;
  EXPECT_EQ(reducer.bucketsLastStep(), 1u);
  EXPECT_EQ(reducer.bytesLastStep(), 15 * sizeof(float));
}

TEST(CollectiveTest, UnwaitedGradientIsAnError) {
  MirrorCommunicator communicator(2);
  GradientReducer reducer(communicator, 1024);
  std::vector<float> a(4, 1);
  Descriptor da(a.data(), 2, 2, 2);
  reducer.beginStep(1, 1);
  reducer.start(da.memref);
  EXPECT_FALSE(reducer.endStep().ok());
}

TEST(CollectiveTest, InstalledReducerServesCompiledCalls) {
  MirrorCommunicator communicator(3);
  GradientReducer reducer(communicator, 1024);
  std::vector<float> a = {1, 2};
  Descriptor da(a.data(), 1, 2, 2);
  // Nothing installed: one process, the gradient stays.
  _mlir_ciface_lora_all_reduce_start_f32(&da.memref);
  _mlir_ciface_lora_all_reduce_wait_f32(&da.memref);
  EXPECT_EQ(a[1], 2);
  installGradientReducer(&reducer);
  reducer.beginStep(1, 1);
  _mlir_ciface_lora_all_reduce_start_f32(&da.memref);
  _mlir_ciface_lora_all_reduce_wait_f32(&da.memref);
  installGradientReducer(nullptr);
  EXPECT_EQ(a[1], 6);
}

TEST(CollectiveTest, WatchdogEndsTheProcessNamingRankAndStep) {
  EXPECT_EXIT(
      {
        SilentPeerCommunicator communicator;
        communicator.setStep(12);
        double value = 1;
        communicator.sum(&value, 1, "loss all-reduce");
      },
      testing::ExitedWithCode(1),
      "rank 0 of 2, step 12: loss all-reduce did not finish within 0.2 s");
}

} // namespace
