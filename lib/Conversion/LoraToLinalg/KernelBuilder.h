//===- KernelBuilder.h - compact construction of linalg kernels -*- C++ -*-===//
//
// The lowering writes each lora op as a few linalg ops; this keeps each of
// them to a handful of lines: indexing maps as text, identity elementwise
// kernels, row collapsing of [..., features] tensors, f32 constants.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_LIB_CONVERSION_LORATOLINALG_KERNELBUILDER_H
#define LORA_LIB_CONVERSION_LORATOLINALG_KERNELBUILDER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace mlir::lora {

/// Body of a linalg.generic: block arguments in, values to yield out.
using KernelBody =
    llvm::function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange)>;

class KernelBuilder {
public:
  KernelBuilder(OpBuilder &builder, Location loc)
      : b(builder), loc(loc), f32Type(builder.getF32Type()) {}

  OpBuilder &builder() { return b; }
  Location location() { return loc; }

  /// An affine map written as text: "(n, d) -> (n)".
  AffineMap map(StringRef text);

  /// An f32 / i64 / index constant.
  Value f32(double value);
  Value i64(int64_t value);
  Value index(int64_t value);

  /// `tensor.empty` of f32, and one filled with `value`.
  Value empty(ArrayRef<int64_t> shape);
  Value filled(ArrayRef<int64_t> shape, double value);

  /// A linalg.generic; `iterators` is a string of 'p' (parallel) and 'r'
  /// (reduction), one per loop.
  SmallVector<Value> generic(ValueRange inputs, ValueRange outputs,
                             ArrayRef<StringRef> maps, StringRef iterators,
                             KernelBody body);

  /// An elementwise kernel over tensors of one shape, with `results` f32
  /// results of that shape.
  SmallVector<Value> elementwise(ValueRange inputs, unsigned results,
                                 KernelBody body);

  /// `c + op(a)·op(b)` as linalg.matmul, transposes in its indexing maps.
  Value matmul(Value a, Value bMatrix, Value c, bool transposeA,
               bool transposeB);

  /// [..., n] -> [rows, n]; [...] -> [elements]; and back.
  Value collapseRows(Value value);
  Value collapseAll(Value value);
  Value expandTo(Value value, RankedTensorType type, bool allDims);

  /// The scalar held by a 0-d tensor.
  Value scalar(Value tensor);
  /// A 0-d tensor holding `value`.
  Value tensorOf(Value value);

  /// `linalg.index` of loop `dim`, inside a kernel body.
  Value loopIndex(OpBuilder &inner, int64_t dim);

  Type f32Type;

private:
  OpBuilder &b;
  Location loc;
};

/// Shorthands for arith/math inside kernel bodies.
struct Math {
  OpBuilder &b;
  Location loc;
  Value add(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return arith::DivFOp::create(b, loc, x, y); }
  Value max(Value x, Value y) {
    return arith::MaximumFOp::create(b, loc, x, y);
  }
  Value exp(Value x) { return math::ExpOp::create(b, loc, x); }
  Value log(Value x) { return math::LogOp::create(b, loc, x); }
  Value sqrt(Value x) { return math::SqrtOp::create(b, loc, x); }
  Value cos(Value x) { return math::CosOp::create(b, loc, x); }
  Value sin(Value x) { return math::SinOp::create(b, loc, x); }
  Value f32(double value) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, loc, c, x, y);
  }
  /// 1 / (1 + exp(-x))
  Value sigmoid(Value x) {
    return div(f32(1.0), add(f32(1.0), exp(arith::NegFOp::create(b, loc, x))));
  }
};

} // namespace mlir::lora

#endif // LORA_LIB_CONVERSION_LORATOLINALG_KERNELBUILDER_H
