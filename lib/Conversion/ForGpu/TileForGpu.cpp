//===- TileForGpu.cpp - scf.parallel into blocks of threads ---------------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/IR/Matchers.h"

namespace mlir::lora {
#define GEN_PASS_DEF_TILEFORGPU
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

struct TileForGpuPass : public lora::impl::TileForGpuBase<TileForGpuPass> {
  using Base::Base;

  void runOnOperation() override {
    if (threads < 1 || threads > 1024) {
      getOperation()->emitError()
          << "lora-tile-for-gpu: threads must be in [1, 1024], got "
          << int64_t(threads);
      return signalPassFailure();
    }
    SmallVector<scf::ParallelOp> outermost;
    getOperation()->walk([&](scf::ParallelOp loop) {
      if (!loop->getParentOfType<scf::ParallelOp>())
        outermost.push_back(loop);
    });
    for (scf::ParallelOp loop : outermost) {
      unsigned rank = loop.getNumLoops();
      SmallVector<int64_t> sizes(rank, 1);
      int64_t inner = threads;
      // A short innermost dimension: one block of it, rounded to a warp.
      std::optional<int64_t> lower =
          getConstantIntValue(loop.getLowerBound()[rank - 1]);
      std::optional<int64_t> upper =
          getConstantIntValue(loop.getUpperBound()[rank - 1]);
      std::optional<int64_t> step =
          getConstantIntValue(loop.getStep()[rank - 1]);
      if (lower && upper && step && *step > 0) {
        int64_t trips = (*upper - *lower + *step - 1) / *step;
        if (trips < inner)
          inner = std::max<int64_t>(32, (trips + 31) / 32 * 32);
      }
      sizes[rank - 1] = inner;
      scf::tileParallelLoop(loop, sizes, /*noMinMaxBounds=*/true);
    }
  }
};

} // namespace
