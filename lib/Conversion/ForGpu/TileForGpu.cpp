//===- TileForGpu.cpp - scf.parallel into blocks of threads ---------------===//

#include "lora/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/ParallelLoopMapper.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/IR/Matchers.h"

#include <limits>

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
      // Trip counts per dimension; 0 where not constant.
      SmallVector<int64_t> trips(rank, 0);
      for (unsigned d = 0; d < rank; ++d) {
        std::optional<int64_t> lower =
            getConstantIntValue(loop.getLowerBound()[d]);
        std::optional<int64_t> upper =
            getConstantIntValue(loop.getUpperBound()[d]);
        std::optional<int64_t> step = getConstantIntValue(loop.getStep()[d]);
        if (lower && upper && step && *step > 0)
          trips[d] = std::max<int64_t>(0, (*upper - *lower + *step - 1) / *step);
      }
      SmallVector<int64_t> sizes(rank, 1);
      int64_t inner = threads;
      // A short innermost dimension: one block of it, rounded to a warp.
      if (trips[rank - 1] > 0 && trips[rank - 1] < inner)
        inner = std::max<int64_t>(32, (trips[rank - 1] + 31) / 32 * 32);
      sizes[rank - 1] = inner;
      auto [grid, block] =
          scf::tileParallelLoop(loop, sizes, /*noMinMaxBounds=*/true);
      SmallVector<int64_t> blocks = trips;
      if (blocks[rank - 1] > 0)
        blocks[rank - 1] = (blocks[rank - 1] + inner - 1) / inner;
      if (failed(mapToGrid(grid, block, blocks)))
        return signalPassFailure();
    }
  }

private:
  /// Maps the tiled loops onto the hardware: the tile's innermost dimension
  /// onto threadIdx.x (neighbouring threads, neighbouring elements; x holds
  /// up to 1024 threads where z holds 64), its other dimensions (one
  /// iteration each) and every loop nested deeper sequential. The grid
  /// takes the dimension with the most blocks on x (up to 2^31 - 1), the
  /// next two with at most 65535 blocks, outermost first, on y and z; the
  /// rest loop inside each block.
  LogicalResult mapToGrid(scf::ParallelOp grid, scf::ParallelOp block,
                          ArrayRef<int64_t> blocks) {
    Builder b(grid.getContext());
    auto dim = [&](gpu::Processor processor) {
      return b.getAttr<gpu::ParallelLoopDimMappingAttr>(
          processor, b.getDimIdentityMap(), b.getDimIdentityMap());
    };
    unsigned rank = blocks.size();
    constexpr int64_t kMaxGridYZ = 65535;
    // Dynamic counts (0) count as the largest: x alone takes any count.
    auto count = [](int64_t n) {
      return n == 0 ? std::numeric_limits<int64_t>::max() : n;
    };
    unsigned x = rank - 1;
    for (unsigned d = 0; d < rank; ++d)
      if (count(blocks[d]) > count(blocks[x]))
        x = d;
    SmallVector<gpu::ParallelLoopDimMappingAttr> gridMap(
        rank, dim(gpu::Processor::Sequential));
    gridMap[x] = dim(gpu::Processor::BlockX);
    gpu::Processor next[] = {gpu::Processor::BlockY, gpu::Processor::BlockZ};
    unsigned used = 0;
    for (unsigned d = 0; d < rank && used < 2; ++d)
      if (d != x && count(blocks[d]) <= kMaxGridYZ)
        gridMap[d] = dim(next[used++]);
    SmallVector<gpu::ParallelLoopDimMappingAttr> blockMap(
        rank, dim(gpu::Processor::Sequential));
    blockMap[rank - 1] = dim(gpu::Processor::ThreadX);
    if (failed(gpu::setMappingAttr(grid, gridMap)) ||
        failed(gpu::setMappingAttr(block, blockMap)))
      return failure();
    // All sequential: setMappingAttr refuses only a processor used twice.
    block.getBody()->walk([&](scf::ParallelOp nested) {
      (void)gpu::setMappingAttr(
          nested, SmallVector<gpu::ParallelLoopDimMappingAttr>(
                      nested.getNumLoops(), dim(gpu::Processor::Sequential)));
    });
    return success();
  }
};

} // namespace
