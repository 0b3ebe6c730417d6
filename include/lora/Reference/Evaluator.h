//===- Evaluator.h - the reference evaluator --------------------*- C++ -*-===//
//
// Executes any lora-dialect function with naive loops in double precision:
// the numerical oracle that passes, fusions and backends are checked
// against. It shares no code with the lowering.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_REFERENCE_EVALUATOR_H
#define LORA_REFERENCE_EVALUATOR_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mlir::lora::reference {

/// A dense row-major tensor of doubles; integer tensors hold their values
/// exactly (|value| < 2^53).
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> data;

  Tensor() = default;
  Tensor(std::vector<int64_t> shape, std::vector<double> data)
      : shape(std::move(shape)), data(std::move(data)) {}
  /// A tensor of `shape` filled with `value`.
  static Tensor filled(std::vector<int64_t> shape, double value);
  /// A 0-d tensor.
  static Tensor scalar(double value) { return Tensor({}, {value}); }

  int64_t numElements() const;
};

/// Runs `function` on `arguments`, one per function argument with the
/// argument's static shape, and returns its results. Fails on an op it does
/// not know, a dynamic shape, or bad data (a token id out of range), with
/// the op's location in the message.
llvm::Expected<std::vector<Tensor>>
evaluate(func::FuncOp function, const std::vector<Tensor> &arguments);

} // namespace mlir::lora::reference

#endif // LORA_REFERENCE_EVALUATOR_H
