//===- SerializeSmallLoops.cpp - small parallel loop nests on one thread --===//
//
// affine-parallelize makes the outermost loop of every kernel parallel, and
// lora-parallel-to-openmp gives each such loop an OpenMP region. Entering
// one and meeting at its end costs microseconds; a kernel over a few
// thousand elements (an adapter's AdamW update, 16 x 512 values) takes less
// than that on one thread. This pass turns such nests back into
// affine.for, by their constant trip counts. It runs after the
// vectorizer, so an iteration of a vectorized loop is a vector.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Affine/Analysis/LoopAnalysis.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"

#include <optional>

namespace mlir::lora {
#define GEN_PASS_DEF_SERIALIZESMALLLOOPS
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

/// Innermost iterations of the ops in `block`: sibling loops add, nested
/// loops multiply by their trip counts; nullopt when a trip count is not a
/// constant or a region is not an affine loop.
std::optional<int64_t> iterationsOf(Block &block) {
  int64_t total = 0;
  bool loops = false;
  for (Operation &op : block) {
    std::optional<int64_t> trips;
    Block *body = nullptr;
    if (auto loop = dyn_cast<affine::AffineForOp>(op)) {
      if (std::optional<uint64_t> count = affine::getConstantTripCount(loop))
        trips = int64_t(*count);
      body = loop.getBody();
    } else if (op.getNumRegions() != 0) {
      return std::nullopt;
    }
    if (!body)
      continue;
    std::optional<int64_t> inner = iterationsOf(*body);
    if (!trips || !inner)
      return std::nullopt;
    total += *trips * *inner;
    loops = true;
  }
  return loops ? total : 1;
}

struct SerializeSmallLoopsPass
    : public lora::impl::SerializeSmallLoopsBase<SerializeSmallLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<affine::AffineParallelOp> small;
    getOperation().walk([&](affine::AffineParallelOp loop) {
      if (loop.getNumDims() != 1 || loop.getNumResults() != 0 ||
          loop.hasMinMaxBounds())
        return;
      std::optional<SmallVector<int64_t, 8>> ranges = loop.getConstantRanges();
      std::optional<int64_t> inner = iterationsOf(*loop.getBody());
      if (!ranges || !inner)
        return;
      int64_t step = loop.getSteps()[0];
      int64_t trips = ((*ranges)[0] + step - 1) / step;
      if (trips * *inner < minIterations)
        small.push_back(loop);
    });
    for (affine::AffineParallelOp loop : small)
      serialize(loop);
  }

  /// `loop` as an affine.for with the same bounds and step.
  static void serialize(affine::AffineParallelOp loop) {
    OpBuilder b(loop);
    auto serial = affine::AffineForOp::create(
        b, loop.getLoc(), loop.getLowerBoundsOperands(),
        loop.getLowerBoundMap(0), loop.getUpperBoundsOperands(),
        loop.getUpperBoundMap(0), loop.getSteps()[0]);
    Block *body = loop.getBody();
    body->getArgument(0).replaceAllUsesWith(serial.getInductionVar());
    Block *target = serial.getBody();
    target->getOperations().splice(target->getTerminator()->getIterator(),
                                   body->getOperations(), body->begin(),
                                   std::prev(body->end()));
    loop.erase();
  }
};

} // namespace
