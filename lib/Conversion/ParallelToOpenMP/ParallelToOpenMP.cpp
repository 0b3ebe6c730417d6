//===- ParallelToOpenMP.cpp - parallel loops as statically split regions --===//
//
// convert-scf-to-openmp makes each scf.parallel an omp.parallel around an
// omp.wsloop, which libomp runs through __kmpc_for_static_init/fini and a
// barrier on every entry; Debian's libomp also formats a trace string in
// every __kmpc_for_static_init. A compiled step enters thousands of small
// parallel loops per step (every kernel of attention's per-head loop), so
// this pass splits a one-dimensional scf.parallel without reductions by
// hand: each thread of the omp.parallel runs an scf.for over its own
// contiguous share of the iterations (omp_get_thread_num and
// omp_get_num_threads), and the region's end is the only synchronization.
//
//===----------------------------------------------------------------------===//

#include "lora/Conversion/Passes.h"
#include "lora/Conversion/RuntimeCalls.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::lora {
#define GEN_PASS_DEF_PARALLELTOOPENMP
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;

namespace {

struct ParallelToOpenMPPass
    : public lora::impl::ParallelToOpenMPBase<ParallelToOpenMPPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<scf::ParallelOp> loops;
    module.walk([&](scf::ParallelOp loop) {
      if (loop.getNumLoops() == 1 && loop.getInitVals().empty() &&
          !loop->getParentOfType<scf::ParallelOp>() &&
          !loop->getParentOfType<omp::ParallelOp>())
        loops.push_back(loop);
    });
    if (loops.empty())
      return;
    // libomp's `int f(void)` queries, called as plain C.
    OpBuilder b(module.getContext());
    FunctionType query = b.getFunctionType({}, {b.getI32Type()});
    func::FuncOp threadNumber = lora::declareRuntimeFunction(
        b, module, "omp_get_thread_num", query, /*cInterface=*/false);
    func::FuncOp threadCount = lora::declareRuntimeFunction(
        b, module, "omp_get_num_threads", query, /*cInterface=*/false);
    for (scf::ParallelOp loop : loops)
      split(loop, threadNumber, threadCount);
  }

  /// omp.parallel { scf.for over this thread's share of `loop` }.
  void split(scf::ParallelOp loop, func::FuncOp threadNumber,
             func::FuncOp threadCount) {
    OpBuilder b(loop);
    Location loc = loop.getLoc();
    auto parallel = omp::ParallelOp::create(b, loc);
    b.setInsertionPointToStart(b.createBlock(&parallel.getRegion()));
    auto index = [&](func::FuncOp query) -> Value {
      Value value = func::CallOp::create(b, loc, query).getResult(0);
      return arith::IndexCastOp::create(b, loc, b.getIndexType(), value);
    };
    Value thread = index(threadNumber), threads = index(threadCount);
    Value lower = loop.getLowerBound()[0], upper = loop.getUpperBound()[0],
          step = loop.getStep()[0];
    // Iterations ceil((upper - lower) / step), ceil(that / threads) each.
    Value trips = arith::CeilDivSIOp::create(
        b, loc, arith::SubIOp::create(b, loc, upper, lower), step);
    Value share = arith::CeilDivSIOp::create(b, loc, trips, threads);
    Value span = arith::MulIOp::create(b, loc, share, step);
    Value begin = arith::AddIOp::create(
        b, loc, lower, arith::MulIOp::create(b, loc, thread, span));
    Value end = arith::MinSIOp::create(
        b, loc, upper, arith::AddIOp::create(b, loc, begin, span));
    auto mine = scf::ForOp::create(b, loc, begin, end, step);
    Block &body = loop.getRegion().front();
    body.getArgument(0).replaceAllUsesWith(mine.getInductionVar());
    Block *target = mine.getBody();
    target->getOperations().splice(target->getTerminator()->getIterator(),
                                   body.getOperations(), body.begin(),
                                   std::prev(body.end()));
    omp::TerminatorOp::create(b, loc);
    loop.erase();
  }
};

} // namespace
