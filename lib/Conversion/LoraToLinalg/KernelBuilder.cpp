//===- KernelBuilder.cpp - compact construction of linalg kernels ---------===//

#include "KernelBuilder.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/AffineMap.h"

using namespace mlir;
using namespace mlir::lora;

AffineMap KernelBuilder::map(StringRef text) {
  Attribute attr =
      parseAttribute(("affine_map<" + text + ">").str(), b.getContext());
  return cast<AffineMapAttr>(attr).getValue();
}

Value KernelBuilder::f32(double value) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
}

Value KernelBuilder::i64(int64_t value) {
  return arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(value));
}

Value KernelBuilder::index(int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

Value KernelBuilder::empty(ArrayRef<int64_t> shape) {
  return tensor::EmptyOp::create(b, loc, shape, f32Type);
}

Value KernelBuilder::filled(ArrayRef<int64_t> shape, double value) {
  return linalg::FillOp::create(b, loc, ValueRange{f32(value)},
                                ValueRange{empty(shape)})
      .getResult(0);
}

SmallVector<Value> KernelBuilder::generic(ValueRange inputs, ValueRange outputs,
                                          ArrayRef<StringRef> maps,
                                          StringRef iterators,
                                          KernelBody body) {
  SmallVector<AffineMap> indexingMaps;
  for (StringRef text : maps)
    indexingMaps.push_back(map(text));
  SmallVector<utils::IteratorType> iteratorTypes;
  for (char kind : iterators)
    iteratorTypes.push_back(kind == 'r' ? utils::IteratorType::reduction
                                        : utils::IteratorType::parallel);
  auto op = linalg::GenericOp::create(
      b, loc, TypeRange(outputs), inputs, outputs, indexingMaps, iteratorTypes,
      [&](OpBuilder &inner, Location at, ValueRange args) {
        linalg::YieldOp::create(inner, at, body(inner, at, args));
      });
  return SmallVector<Value>(op.getResults());
}

SmallVector<Value> KernelBuilder::elementwise(ValueRange inputs,
                                              unsigned results,
                                              KernelBody body) {
  auto type = cast<RankedTensorType>(inputs.front().getType());
  int64_t rank = type.getRank();
  std::string dims;
  for (int64_t i = 0; i < rank; ++i)
    dims += (i ? ", d" : "d") + std::to_string(i);
  std::string identity = "(" + dims + ") -> (" + dims + ")";
  SmallVector<StringRef> maps(inputs.size() + results, identity);
  SmallVector<Value> outputs;
  for (unsigned i = 0; i < results; ++i)
    outputs.push_back(empty(type.getShape()));
  return generic(inputs, outputs, maps, std::string(rank, 'p'), body);
}

Value KernelBuilder::matmul(Value a, Value bMatrix, Value c, bool transposeA,
                            bool transposeB) {
  auto op = linalg::MatmulOp::create(b, loc, TypeRange{c.getType()},
                                     ValueRange{a, bMatrix}, ValueRange{c});
  op.setIndexingMapsAttr(b.getAffineMapArrayAttr(
      {map(transposeA ? "(m, n, k) -> (k, m)" : "(m, n, k) -> (m, k)"),
       map(transposeB ? "(m, n, k) -> (n, k)" : "(m, n, k) -> (k, n)"),
       map("(m, n, k) -> (m, n)")}));
  return op.getResult(0);
}

static SmallVector<ReassociationIndices> rowGroups(int64_t rank) {
  ReassociationIndices leading;
  for (int64_t i = 0; i + 1 < rank; ++i)
    leading.push_back(i);
  return {leading, {rank - 1}};
}

static SmallVector<ReassociationIndices> allGroups(int64_t rank) {
  ReassociationIndices all;
  for (int64_t i = 0; i < rank; ++i)
    all.push_back(i);
  return {all};
}

Value KernelBuilder::collapseRows(Value value) {
  int64_t rank = cast<RankedTensorType>(value.getType()).getRank();
  if (rank == 2)
    return value;
  return tensor::CollapseShapeOp::create(b, loc, value, rowGroups(rank));
}

Value KernelBuilder::collapseAll(Value value) {
  int64_t rank = cast<RankedTensorType>(value.getType()).getRank();
  if (rank == 1)
    return value;
  return tensor::CollapseShapeOp::create(b, loc, value, allGroups(rank));
}

Value KernelBuilder::expandTo(Value value, RankedTensorType type,
                              bool allDims) {
  if (value.getType() == type)
    return value;
  int64_t rank = type.getRank();
  return tensor::ExpandShapeOp::create(
      b, loc, type, value, allDims ? allGroups(rank) : rowGroups(rank));
}

Value KernelBuilder::scalar(Value tensor) {
  return tensor::ExtractOp::create(b, loc, tensor, ValueRange{});
}

Value KernelBuilder::tensorOf(Value value) {
  return tensor::FromElementsOp::create(
      b, loc, RankedTensorType::get({}, value.getType()), ValueRange{value});
}

Value KernelBuilder::loopIndex(OpBuilder &inner, int64_t dim) {
  return linalg::IndexOp::create(inner, loc, dim);
}
