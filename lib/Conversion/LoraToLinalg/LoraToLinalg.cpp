//===- LoraToLinalg.cpp - lora ops to linalg on tensors -------------------===//
//
// One pattern per op. Tensors of shape [..., features] are collapsed to
// [rows, features] so that every kernel has a small fixed rank; the
// row-major flat index is unchanged by the collapse, which dropout relies
// on. Attention works on [batch, kv_heads, group, seq, seq] scores, so that
// grouped-query heads need no copies of K and V.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"

#include "lora/Conversion/Passes.h"
#include "lora/Dialect/Lora/Transforms/BufferizableOpInterfaceImpl.h"
#include "lora/Dialect/Lora/IR/LoraOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/Transforms/Transforms.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/DialectConversion.h"

#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <tuple>

namespace mlir::lora {
#define GEN_PASS_DEF_CONVERTLORATOLINALG
#include "lora/Conversion/Passes.h.inc"
} // namespace mlir::lora

using namespace mlir;
using namespace mlir::lora;

namespace {

/// Every float tensor the op touches is f32.
bool allF32(Operation *op) {
  auto isOk = [](Type type) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    return !tensor || !isa<FloatType>(tensor.getElementType()) ||
           tensor.getElementType().isF32();
  };
  return llvm::all_of(op->getOperandTypes(), isOk) &&
         llvm::all_of(op->getResultTypes(), isOk);
}

ArrayRef<int64_t> shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}
RankedTensorType typeOf(Value value) {
  return cast<RankedTensorType>(value.getType());
}

/// Base of the patterns: checks f32 and hands a KernelBuilder to `lower`.
template <typename OpTy> struct LoraLowering : OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  using Adaptor = typename OpTy::Adaptor;

  LogicalResult
  matchAndRewrite(OpTy op, Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    if (!allF32(op))
      return rewriter.notifyMatchFailure(op, "only f32 tensors are lowered");
    KernelBuilder k(rewriter, op.getLoc());
    SmallVector<Value> results = lower(op, adaptor, k);
    rewriter.replaceOp(op, results);
    return success();
  }

  virtual SmallVector<Value> lower(OpTy op, Adaptor adaptor,
                                   KernelBuilder &k) const = 0;
};

//===----------------------------------------------------------------------===//
// Shared kernels
//===----------------------------------------------------------------------===//

/// Inverted dropout of `input` with the counter-based mask of
/// runtime/include/lora/runtime/Dropout.h.
Value lowerDropout(KernelBuilder &k, Value input, Value seedTensor,
                   double rate) {
  OpBuilder &b = k.builder();
  Location loc = k.location();
  auto splitmix = [&](OpBuilder &bb, Value x) {
    auto c = [&](uint64_t v) {
      return arith::ConstantOp::create(bb, loc,
                                       bb.getI64IntegerAttr(int64_t(v)));
    };
    auto shr = [&](Value v, int64_t s) {
      return arith::ShRUIOp::create(bb, loc, v, c(s));
    };
    x = arith::AddIOp::create(bb, loc, x, c(0x9e3779b97f4a7c15ull));
    x = arith::MulIOp::create(bb, loc,
                              arith::XOrIOp::create(bb, loc, x, shr(x, 30)),
                              c(0xbf58476d1ce4e5b9ull));
    x = arith::MulIOp::create(bb, loc,
                              arith::XOrIOp::create(bb, loc, x, shr(x, 27)),
                              c(0x94d049bb133111ebull));
    return arith::XOrIOp::create(bb, loc, x, shr(x, 31)).getResult();
  };
  Value seedHash = splitmix(b, k.scalar(seedTensor));
  auto type = typeOf(input);
  Value flat = k.collapseAll(input);
  Value out =
      k.elementwise(flat, 1, [&](OpBuilder &bb, Location at, ValueRange args) {
        Math m{bb, at};
        Value i = arith::IndexCastOp::create(bb, at, bb.getI64Type(),
                                             k.loopIndex(bb, 0));
        Value bits = splitmix(bb, arith::XOrIOp::create(bb, at, seedHash, i));
        Value top = arith::ShRUIOp::create(
            bb, at, bits,
            arith::ConstantOp::create(bb, at, bb.getI64IntegerAttr(11)));
        Value uniform = arith::MulFOp::create(
            bb, at, arith::UIToFPOp::create(bb, at, bb.getF64Type(), top),
            arith::ConstantOp::create(bb, at, bb.getF64FloatAttr(0x1.0p-53)));
        Value keep = arith::CmpFOp::create(
            bb, at, arith::CmpFPredicate::OGE, uniform,
            arith::ConstantOp::create(bb, at, bb.getF64FloatAttr(rate)));
        return SmallVector<Value>{m.select(
            keep, m.mul(args[0], m.f32(1.0 / (1.0 - rate))), m.f32(0.0))};
      })[0];
  return k.expandTo(out, type, /*allDims=*/true);
}

/// Σ over the last dim of `x` [rows, n] of `f(x)` into [rows].
Value rowSum(KernelBuilder &k, Value x2d,
             llvm::function_ref<Value(Math &, Value)> f) {
  int64_t rows = shapeOf(x2d)[0];
  return k.generic(x2d, k.filled({rows}, 0.0),
                   {"(n, d) -> (n, d)", "(n, d) -> (n)"}, "pr",
                   [&](OpBuilder &bb, Location at, ValueRange args) {
                     Math m{bb, at};
                     return SmallVector<Value>{m.add(args[1], f(m, args[0]))};
                   })[0];
}

/// How a per-head matrix sits in an attention tensor: queries and outputs
/// [b, t, kv, g, d], keys and values [b, t, kv, d], scores [b, kv, g, t, j].
enum class HeadLayout { Query, KeyValue, Scores };

/// Token rows [begin, begin + count) of a head matrix; count -1: to the end.
struct Rows {
  int64_t begin = 0, count = -1;
};

/// The [rows, cols] matrix of head (b, kv, g) in `tensor`, or the `rows`
/// of it (queries, keys, values): a rank-reducing slice whose rows are
/// contiguous, so BLAS reads it where it lies.
Value headMatrix(OpBuilder &b, Location loc, Value tensor, HeadLayout layout,
                 ValueRange head, Rows tokens = {}) {
  Value batch = head[0], kv = head[1], g = head[2];
  ArrayRef<int64_t> s = shapeOf(tensor);
  OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
  SmallVector<OpFoldResult> offsets, sizes;
  int64_t rows, cols;
  int64_t count = tokens.count < 0 ? s[1] - tokens.begin : tokens.count;
  OpFoldResult first = b.getIndexAttr(tokens.begin);
  switch (layout) {
  case HeadLayout::Query:
    offsets = {batch, first, kv, g, zero};
    sizes = {one, b.getIndexAttr(count), one, one, b.getIndexAttr(s[4])};
    rows = count, cols = s[4];
    break;
  case HeadLayout::KeyValue:
    offsets = {batch, first, kv, zero};
    sizes = {one, b.getIndexAttr(count), one, b.getIndexAttr(s[3])};
    rows = count, cols = s[3];
    break;
  case HeadLayout::Scores:
    offsets = {batch, kv, g, zero, zero};
    sizes = {one, one, one, b.getIndexAttr(s[3]), b.getIndexAttr(s[4])};
    rows = s[3], cols = s[4];
    break;
  }
  SmallVector<OpFoldResult> strides(s.size(), one);
  auto type = RankedTensorType::get({rows, cols}, b.getF32Type());
  return tensor::ExtractSliceOp::create(b, loc, type, tensor, offsets, sizes,
                                        strides);
}

/// Runs `body` once per attention head (b, kv, g) inside an scf.for nest
/// that threads `inits` through; `body` returns their new values.
SmallVector<Value>
forEachHead(KernelBuilder &k, std::array<int64_t, 3> heads, ValueRange inits,
            llvm::function_ref<SmallVector<Value>(ValueRange heads,
                                                  ValueRange accs)>
                body) {
  OpBuilder &b = k.builder();
  Location loc = k.location();
  Value zero = k.index(0), one = k.index(1);
  SmallVector<Value> ivs;
  std::function<SmallVector<Value>(unsigned, ValueRange)> nest =
      [&](unsigned depth, ValueRange accs) -> SmallVector<Value> {
    if (depth == 3)
      return body(ivs, accs);
    auto loop = scf::ForOp::create(
        b, loc, zero, k.index(heads[depth]), one, accs,
        [&](OpBuilder &, Location at, Value iv, ValueRange args) {
          ivs.push_back(iv);
          SmallVector<Value> results = nest(depth + 1, args);
          ivs.pop_back();
          scf::YieldOp::create(b, at, results);
        });
    return SmallVector<Value>(loop.getResults());
  };
  return nest(0, inits);
}

/// acc[head] += op(lhs) · op(rhs), where acc is a whole attention tensor and
/// the product lands in the head's slice of it.
Value matmulIntoHead(KernelBuilder &k, Value lhs, bool transposeLhs, Value rhs,
                     bool transposeRhs, Value acc, HeadLayout layout,
                     ValueRange head, Rows tokens = {}) {
  OpBuilder &b = k.builder();
  Location loc = k.location();
  auto slice = headMatrix(b, loc, acc, layout, head, tokens)
                   .getDefiningOp<tensor::ExtractSliceOp>();
  Value product =
      k.matmul(lhs, rhs, slice.getResult(), transposeLhs, transposeRhs);
  return tensor::InsertSliceOp::create(b, loc, product, acc,
                                       slice.getMixedOffsets(),
                                       slice.getMixedSizes(),
                                       slice.getMixedStrides());
}

/// The additive causal mask [T, T]: 0 on and below the diagonal, -inf
/// above. Made once per attention op, so that the per-head softmax kernels
/// read no index and vectorize (exp(-inf) is 0).
Value causalMask(KernelBuilder &k, int64_t T) {
  return k.generic(ValueRange{}, k.empty({T, T}), {"(t, j) -> (t, j)"}, "pp",
                   [&](OpBuilder &bb, Location at, ValueRange) {
                     Math m{bb, at};
                     Value visible = arith::CmpIOp::create(
                         bb, at, arith::CmpIPredicate::ule, k.loopIndex(bb, 1),
                         k.loopIndex(bb, 0));
                     return SmallVector<Value>{
                         m.select(visible, m.f32(0.0), m.f32(-INFINITY))};
                   })[0];
}

/// Causal attention works on blocks of query rows: rows [r, r + R) see
/// keys [0, r + R) only, so their scores are an [R, r + R] block, not
/// [R, T]: with 128-row blocks a 256-token sequence computes 3/4 of the
/// [T, T] scores (GEMMs and softmax), a 2048-token one 17/32. One block
/// when T is not a multiple of 128 or under 256.
SmallVector<Rows> causalQueryBlocks(int64_t T) {
  constexpr int64_t kRows = 128;
  if (T < 2 * kRows || T % kRows != 0)
    return {Rows{0, T}};
  SmallVector<Rows> blocks;
  for (int64_t begin = 0; begin < T; begin += kRows)
    blocks.push_back({begin, kRows});
  return blocks;
}

/// The causal mask's rows of a query block and its columns up to the
/// block's last key: [R, r + R].
Value maskBlock(KernelBuilder &k, Value mask, Rows queries) {
  OpBuilder &b = k.builder();
  int64_t keys = queries.begin + queries.count;
  if (queries.begin == 0 && queries.count == shapeOf(mask)[0])
    return mask;
  SmallVector<OpFoldResult> offsets = {b.getIndexAttr(queries.begin),
                                       b.getIndexAttr(0)},
                            sizes = {b.getIndexAttr(queries.count),
                                     b.getIndexAttr(keys)},
                            strides = {b.getIndexAttr(1), b.getIndexAttr(1)};
  return tensor::ExtractSliceOp::create(
      b, k.location(),
      RankedTensorType::get({queries.count, keys}, b.getF32Type()), mask,
      offsets, sizes, strides);
}

/// One head's causal attention probabilities [t, j] from its queries [t, d]
/// and keys [j, d]: the GEMM goes to BLAS and the softmax runs on the
/// [t, j] block while it is still in cache. Masked entries are 0.
Value headProbabilities(KernelBuilder &k, Value qh, Value kh, Value mask,
                        double scale) {
  int64_t T = shapeOf(qh)[0], J = shapeOf(kh)[0];
  const char *full = "(t, j) -> (t, j)";
  const char *row = "(t, j) -> (t)";
  // s·scale + mask, then the row max and exp(· − max).
  Value scores = k.generic(
      {k.matmul(qh, kh, k.filled({T, J}, 0.0), false, true), mask},
      k.empty({T, J}), {full, full, full}, "pp",
      [&](OpBuilder &bb, Location at, ValueRange args) {
        Math m{bb, at};
        return SmallVector<Value>{
            m.add(m.mul(args[0], m.f32(scale)), args[1])};
      })[0];
  Value maximum =
      k.generic(scores, k.filled({T}, -INFINITY), {full, row}, "pr",
                [&](OpBuilder &bb, Location at, ValueRange args) {
                  Math m{bb, at};
                  return SmallVector<Value>{m.max(args[1], args[0])};
                })[0];
  Value exps = k.generic(
      {scores, maximum}, k.empty({T, J}), {full, row, full}, "pp",
      [&](OpBuilder &bb, Location at, ValueRange args) {
        Math m{bb, at};
        return SmallVector<Value>{m.exp(m.sub(args[0], args[1]))};
      })[0];
  Value total = k.generic(exps, k.filled({T}, 0.0), {full, row}, "pr",
                          [&](OpBuilder &bb, Location at, ValueRange args) {
                            Math m{bb, at};
                            return SmallVector<Value>{m.add(args[1], args[0])};
                          })[0];
  return k.generic({exps, total}, k.empty({T, J}), {full, row, full}, "pp",
                   [&](OpBuilder &bb, Location at, ValueRange args) {
                     Math m{bb, at};
                     return SmallVector<Value>{m.div(args[0], args[1])};
                   })[0];
}

/// Splits [b, t, heads·dh] into [b, t, kv, group, dh] (query-like) or
/// [b, t, kv, dh] (key-like).
Value splitHeads(KernelBuilder &k, Value x, ArrayRef<int64_t> shape) {
  auto type = RankedTensorType::get(shape, k.f32Type);
  SmallVector<ReassociationIndices> groups = {{0}, {1}, {}};
  for (int64_t i = 2; i < int64_t(shape.size()); ++i)
    groups.back().push_back(i);
  return tensor::ExpandShapeOp::create(k.builder(), k.location(), type, x,
                                       groups);
}

Value mergeHeads(KernelBuilder &k, Value x) {
  int64_t rank = typeOf(x).getRank();
  SmallVector<ReassociationIndices> groups = {{0}, {1}, {}};
  for (int64_t i = 2; i < rank; ++i)
    groups.back().push_back(i);
  return tensor::CollapseShapeOp::create(k.builder(), k.location(), x, groups);
}

/// Per-row log-sum-exp pieces of logits [n, v]: the row max and Σ exp(x -
/// max), and the labels' validity and count.
struct LossRows {
  Value maximum, sumExp, labels;
  int64_t rows, vocab;
};

LossRows lossRows(KernelBuilder &k, Value logits, Value labels) {
  LossRows r;
  Value logits2 = k.collapseRows(logits);
  r.rows = shapeOf(logits2)[0];
  r.vocab = shapeOf(logits2)[1];
  r.labels = k.collapseAll(labels);
  r.maximum = k.generic(logits2, k.filled({r.rows}, -INFINITY),
                        {"(n, v) -> (n, v)", "(n, v) -> (n)"}, "pr",
                        [&](OpBuilder &bb, Location at, ValueRange args) {
                          Math m{bb, at};
                          return SmallVector<Value>{m.max(args[1], args[0])};
                        })[0];
  r.sumExp = k.generic({logits2, r.maximum}, k.filled({r.rows}, 0.0),
                       {"(n, v) -> (n, v)", "(n, v) -> (n)", "(n, v) -> (n)"},
                       "pr", [&](OpBuilder &bb, Location at, ValueRange args) {
                         Math m{bb, at};
                         return SmallVector<Value>{
                             m.add(args[2], m.exp(m.sub(args[0], args[1])))};
                       })[0];
  return r;
}

/// label != ignore_index, inside a kernel body.
Value isCounted(OpBuilder &bb, Location at, Value label, int64_t ignore) {
  Value ignoreValue = arith::ConstantOp::create(
      bb, at, IntegerAttr::get(label.getType(), ignore));
  return arith::CmpIOp::create(bb, at, arith::CmpIPredicate::ne, label,
                               ignoreValue);
}

/// The number of counted labels, as f32 (at least 1, so 0/0 is 0).
Value countedLabels(KernelBuilder &k, Value labels1d, int64_t ignore) {
  Value count =
      k.generic(labels1d, k.filled({}, 0.0), {"(n) -> (n)", "(n) -> ()"}, "r",
                [&](OpBuilder &bb, Location at, ValueRange args) {
                  Math m{bb, at};
                  Value one = m.select(isCounted(bb, at, args[0], ignore),
                                       m.f32(1.0), m.f32(0.0));
                  return SmallVector<Value>{m.add(args[1], one)};
                })[0];
  Math m{k.builder(), k.location()};
  return m.max(k.scalar(count), m.f32(1.0));
}

/// Per token: the weight of its loss term (loss_grad / count, or 0 for an
/// ignored label) and its label as an index (0 when ignored).
std::pair<Value, Value> tokenTerms(KernelBuilder &k, Value labels1d,
                                   Value coefficient, int64_t ignore) {
  int64_t rows = shapeOf(labels1d)[0];
  SmallVector<Value> terms = k.generic(
      labels1d,
      {k.empty({rows}),
       tensor::EmptyOp::create(k.builder(), k.location(), ArrayRef<int64_t>{rows},
                               k.builder().getIndexType())},
      {"(n) -> (n)", "(n) -> (n)", "(n) -> (n)"}, "p",
      [&](OpBuilder &bb, Location at, ValueRange args) {
        Math m{bb, at};
        Value counted = isCounted(bb, at, args[0], ignore);
        Value label = arith::SelectOp::create(
            bb, at, counted, args[0],
            arith::ConstantOp::create(bb, at,
                                      IntegerAttr::get(args[0].getType(), 0)));
        return SmallVector<Value>{
            m.select(counted, coefficient, m.f32(0.0)),
            arith::IndexCastOp::create(bb, at, bb.getIndexType(), label)};
      });
  return {terms[0], terms[1]};
}

/// table[ids[n], :] += scale[n] · rows[n, :] for every row n, a scatter-add
/// (loops over rows and features, in place after bufferization). `ids` holds
/// integers or indices; `scale` is an [n] tensor, or null for 1.
Value scatterAddRows(KernelBuilder &k, Value table, Value ids, Value rows,
                     Value scale) {
  OpBuilder &b = k.builder();
  Location loc = k.location();
  Value zero = k.index(0), one = k.index(1);
  int64_t count = shapeOf(rows)[0], width = shapeOf(rows)[1];
  auto outer = scf::ForOp::create(
      b, loc, zero, k.index(count), one, ValueRange{table},
      [&](OpBuilder &, Location at, Value n, ValueRange acc) {
        Value id = tensor::ExtractOp::create(b, at, ids, ValueRange{n});
        if (!id.getType().isIndex())
          id = arith::IndexCastOp::create(b, at, b.getIndexType(), id);
        Value factor =
            scale ? tensor::ExtractOp::create(b, at, scale, ValueRange{n})
                  : Value();
        auto inner = scf::ForOp::create(
            b, at, zero, k.index(width), one, acc,
            [&](OpBuilder &, Location at2, Value d, ValueRange acc2) {
              Math m{b, at2};
              Value row =
                  tensor::ExtractOp::create(b, at2, rows, ValueRange{n, d});
              Value sum = m.add(tensor::ExtractOp::create(b, at2, acc2[0],
                                                          ValueRange{id, d}),
                                factor ? m.mul(factor, row) : row);
              scf::YieldOp::create(
                  b, at2,
                  ValueRange{tensor::InsertOp::create(b, at2, sum, acc2[0],
                                                      ValueRange{id, d})});
            });
        scf::YieldOp::create(b, at, inner.getResults());
      });
  return outer.getResult(0);
}

/// 1 / sqrt(Σx² / n + eps), the RMSNorm factor of a row, inside a kernel.
Value inverseRms(Math &m, Value sumOfSquares, int64_t n, double eps) {
  return m.div(m.f32(1.0),
               m.sqrt(m.add(m.div(sumOfSquares, m.f32(n)), m.f32(eps))));
}

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

struct EmbeddingLowering : LoraLowering<EmbeddingOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(EmbeddingOp op, Adaptor a,
                           KernelBuilder &k) const override {
    Value table = a.getTable();
    Value ids = k.collapseAll(a.getIds());
    int64_t positions = shapeOf(ids)[0], hidden = shapeOf(table)[1];
    Value rows =
        k.generic(ids, k.empty({positions, hidden}),
                  {"(p, d) -> (p)", "(p, d) -> (p, d)"}, "pp",
                  [&](OpBuilder &bb, Location at, ValueRange args) {
                    Value id = arith::IndexCastOp::create(
                        bb, at, bb.getIndexType(), args[0]);
                    return SmallVector<Value>{tensor::ExtractOp::create(
                        bb, at, table, ValueRange{id, k.loopIndex(bb, 1)})};
                  })[0];
    return {k.expandTo(rows, op.getType(), /*allDims=*/false)};
  }
};

struct EmbeddingGradLowering : LoraLowering<EmbeddingGradOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(EmbeddingGradOp op, Adaptor a,
                           KernelBuilder &k) const override {
    return {scatterAddRows(k, k.filled(op.getType().getShape(), 0.0),
                           k.collapseAll(a.getIds()),
                           k.collapseRows(a.getGrad()), Value())};
  }
};

struct RMSNormLowering : LoraLowering<RMSNormOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(RMSNormOp op, Adaptor a,
                           KernelBuilder &k) const override {
    Value x = k.collapseRows(a.getInput());
    int64_t rows = shapeOf(x)[0], hidden = shapeOf(x)[1];
    double eps = op.getEpsilon().convertToDouble();
    Value squares = rowSum(k, x, [](Math &m, Value v) { return m.mul(v, v); });
    Value y = k.generic(
        {x, squares, a.getWeight()}, k.empty({rows, hidden}),
        {"(n, d) -> (n, d)", "(n, d) -> (n)", "(n, d) -> (d)",
         "(n, d) -> (n, d)"},
        "pp", [&](OpBuilder &bb, Location at, ValueRange args) {
          Math m{bb, at};
          Value inverse = inverseRms(m, args[1], hidden, eps);
          return SmallVector<Value>{m.mul(m.mul(args[0], inverse), args[2])};
        })[0];
    return {k.expandTo(y, op.getType(), /*allDims=*/false)};
  }
};

struct RMSNormGradLowering : LoraLowering<RMSNormGradOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(RMSNormGradOp op, Adaptor a,
                           KernelBuilder &k) const override {
    Value x = k.collapseRows(a.getInput());
    Value dy = k.collapseRows(a.getGrad());
    Value w = a.getWeight();
    int64_t rows = shapeOf(x)[0], hidden = shapeOf(x)[1];
    double eps = op.getEpsilon().convertToDouble();
    Value squares = rowSum(k, x, [](Math &m, Value v) { return m.mul(v, v); });
    // dot[n] = Σ_d dy·w·x
    Value dot =
        k.generic({x, dy, w}, k.filled({rows}, 0.0),
                  {"(n, d) -> (n, d)", "(n, d) -> (n, d)", "(n, d) -> (d)",
                   "(n, d) -> (n)"},
                  "pr", [&](OpBuilder &bb, Location at, ValueRange args) {
                    Math m{bb, at};
                    return SmallVector<Value>{m.add(
                        args[3], m.mul(m.mul(args[0], args[1]), args[2]))};
                  })[0];
    Value dx = k.generic(
        {x, dy, w, squares, dot}, k.empty({rows, hidden}),
        {"(n, d) -> (n, d)", "(n, d) -> (n, d)", "(n, d) -> (d)",
         "(n, d) -> (n)", "(n, d) -> (n)", "(n, d) -> (n, d)"},
        "pp", [&](OpBuilder &bb, Location at, ValueRange args) {
          Math m{bb, at};
          Value r = inverseRms(m, args[3], hidden, eps);
          Value r3 = m.mul(m.mul(r, r), r);
          return SmallVector<Value>{
              m.sub(m.mul(m.mul(r, args[1]), args[2]),
                    m.div(m.mul(m.mul(r3, args[0]), args[4]), m.f32(hidden)))};
        })[0];
    Value dw =
        k.generic({x, dy, squares}, k.filled({hidden}, 0.0),
                  {"(n, d) -> (n, d)", "(n, d) -> (n, d)", "(n, d) -> (n)",
                   "(n, d) -> (d)"},
                  "rp", [&](OpBuilder &bb, Location at, ValueRange args) {
                    Math m{bb, at};
                    Value r = inverseRms(m, args[2], hidden, eps);
                    return SmallVector<Value>{
                        m.add(args[3], m.mul(m.mul(args[0], args[1]), r))};
                  })[0];
    return {k.expandTo(dx, typeOf(op.getInputGrad()), /*allDims=*/false), dw};
  }
};

/// `x` scaled by `scale` unless it is 1.
Value scaled(KernelBuilder &k, Value x, double scale) {
  if (scale == 1.0)
    return x;
  return k.elementwise(x, 1, [&](OpBuilder &bb, Location at, ValueRange args) {
    Math m{bb, at};
    return SmallVector<Value>{m.mul(args[0], m.f32(scale))};
  })[0];
}

struct LinearLowering : LoraLowering<LinearOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(LinearOp op, Adaptor a,
                           KernelBuilder &k) const override {
    Value x = k.collapseRows(a.getInput());
    int64_t rows = shapeOf(x)[0], out = shapeOf(a.getWeight())[0];
    Value y = k.matmul(x, a.getWeight(), k.filled({rows, out}, 0.0), false,
                       /*transposeB=*/true);
    if (op.hasAdapter()) {
      Value dropped = x;
      if (op.getDropout())
        dropped =
            lowerDropout(k, x, a.getSeed(), op.getDropout()->convertToDouble());
      int64_t rank = shapeOf(a.getLoraA())[0];
      Value u = k.matmul(dropped, a.getLoraA(), k.filled({rows, rank}, 0.0),
                         false, /*transposeB=*/true);
      // Y += (s·U)·Bᵀ, accumulated into the base GEMM's output.
      y = k.matmul(scaled(k, u, op.getScale()->convertToDouble()), a.getLoraB(),
                   y, false, /*transposeB=*/true);
    }
    return {k.expandTo(y, op.getType(), /*allDims=*/false)};
  }
};

struct LowRankUpdateLowering : LoraLowering<LowRankUpdateOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(LowRankUpdateOp op, Adaptor a,
                           KernelBuilder &k) const override {
    // base += U·(s·B)ᵀ: the GEMM accumulates into the base output (β = 1);
    // the scale goes on B (out x r), smaller than U (tokens x r) and
    // contiguous, where U is a column slice of [Y0 | U].
    Value u = k.collapseRows(a.getU());
    Value b = scaled(k, a.getLoraB(), op.getScale().convertToDouble());
    // The base is usually a column slice of the fused GEMM's output; the
    // update goes into a contiguous copy of it, so that the kernels reading
    // Y see rows without a stride (which they vectorize) and the fused
    // output's other columns (U) stay intact.
    Value base = k.collapseRows(a.getBase());
    Value contiguous = bufferization::AllocTensorOp::create(
        k.builder(), k.location(), typeOf(base), ValueRange{}, base);
    Value y = k.matmul(u, b, contiguous, false, /*transposeB=*/true);
    return {k.expandTo(y, op.getType(), /*allDims=*/false)};
  }
};

/// dX = scale · dY · W, of type `type` ([..., in]).
Value inputGrad(KernelBuilder &k, Value grad, Value weight, double scale,
                RankedTensorType type) {
  Value dy = k.collapseRows(grad);
  int64_t rows = shapeOf(dy)[0], in = shapeOf(weight)[1];
  Value dx = k.matmul(dy, weight, k.filled({rows, in}, 0.0), false, false);
  return k.expandTo(scaled(k, dx, scale), type, /*allDims=*/false);
}

/// dW = scale · dYᵀ · X, of type `type` ([out, in]).
Value weightGrad(KernelBuilder &k, Value grad, Value input, double scale,
                 RankedTensorType type) {
  Value dw = k.matmul(k.collapseRows(grad), k.collapseRows(input),
                      k.filled(type.getShape(), 0.0), /*transposeA=*/true,
                      false);
  return scaled(k, dw, scale);
}

struct LinearGradInputLowering : LoraLowering<LinearGradInputOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(LinearGradInputOp op, Adaptor a,
                           KernelBuilder &k) const override {
    return {inputGrad(k, a.getGrad(), a.getWeight(),
                      op.getScale().convertToDouble(), op.getType())};
  }
};

struct LinearGradWeightLowering : LoraLowering<LinearGradWeightOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(LinearGradWeightOp op, Adaptor a,
                           KernelBuilder &k) const override {
    return {weightGrad(k, a.getGrad(), a.getInput(),
                       op.getScale().convertToDouble(), op.getType())};
  }
};

/// The adapter's backward as its three GEMMs (where it is not left to the
/// runtime's one-pass kernel): dU = s·dY·B, dB = s·dYᵀ·U, dA = dUᵀ·X.
struct AdapterGradLowering : LoraLowering<AdapterGradOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(AdapterGradOp op, Adaptor a,
                           KernelBuilder &k) const override {
    double scale = op.getScale().convertToDouble();
    Value du = inputGrad(k, a.getGrad(), a.getLoraB(), scale,
                         cast<RankedTensorType>(op.getDu().getType()));
    Value db = weightGrad(k, a.getGrad(), a.getU(), scale,
                          cast<RankedTensorType>(op.getDb().getType()));
    if (!op.getInput())
      return {du, db};
    return {du, db,
            weightGrad(k, du, a.getInput(), 1.0,
                       cast<RankedTensorType>(op.getDa().getType()))};
  }
};

struct DropoutLowering : LoraLowering<DropoutOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(DropoutOp op, Adaptor a,
                           KernelBuilder &k) const override {
    return {lowerDropout(k, a.getInput(), a.getSeed(),
                         op.getRate().convertToDouble())};
  }
};

/// The RoPE cos/sin tables already made in this conversion, by positions,
/// theta and head_dim: every rope and rope_grad of a step shares one (the
/// CPU pipeline runs no CSE after lowering, which would merge them).
struct RopeTables {
  std::map<std::tuple<void *, double, int64_t>, std::pair<Value, Value>>
      made;
};

/// cos and sin of position · theta^(-2j / dh), as transformers computes
/// the angles: a [rows, dh/2] table each.
SmallVector<Value> makeRopeTable(KernelBuilder &k, Value positions,
                                 int64_t rows, int64_t half, double theta,
                                 int64_t headDim) {
  Value pos = k.collapseAll(positions);
  return k.generic(
      pos, {k.empty({rows, half}), k.empty({rows, half})},
      {"(n, j) -> (n)", "(n, j) -> (n, j)", "(n, j) -> (n, j)"}, "pp",
      [&](OpBuilder &bb, Location at, ValueRange args) {
        Math m{bb, at};
        Value j = arith::UIToFPOp::create(
            bb, at, bb.getF32Type(),
            arith::IndexCastOp::create(bb, at, bb.getI64Type(),
                                       k.loopIndex(bb, 1)));
        // angle = position · theta^(-2j / dh), as transformers computes it.
        Value inverseFrequency =
            m.exp(m.mul(j, m.f32(-2.0 * std::log(theta) / headDim)));
        Value position =
            arith::SIToFPOp::create(bb, at, bb.getF32Type(), args[0]);
        Value angle = m.mul(position, inverseFrequency);
        return SmallVector<Value>{m.cos(angle), m.sin(angle)};
      });
}

/// rope (sign +1) and rope_grad (sign -1): rotate pairs (i, i + dh/2) of
/// every head by position · theta^(-2i/dh). The angles' cos and sin are
/// computed once per (token, pair), a [rows, dh/2] table, not once per
/// element, and once per step for all the step's rope ops (`tables`); the
/// rotation then runs on a [rows, heads, 2, dh/2] view where the partner of
/// half p is half 1 - p, so no kernel reads an index. The gradient rotates
/// by the opposite angle: the same cos, the sine's sign flipped.
Value lowerRoPE(KernelBuilder &k, Operation *op, RopeTables &tables,
                Value input, Value positions, double theta, int64_t headDim,
                double angleSign) {
  Value x = k.collapseRows(input);
  int64_t rows = shapeOf(x)[0], features = shapeOf(x)[1];
  int64_t half = headDim / 2, heads = features / headDim;
  auto key = std::make_tuple(positions.getAsOpaquePointer(), theta, headDim);
  auto cached = tables.made.find(key);
  // A table made before this op in the same block serves it.
  bool reuse = cached != tables.made.end() &&
               cached->second.first.getParentBlock() == op->getBlock() &&
               cached->second.first.getDefiningOp()->isBeforeInBlock(op);
  SmallVector<Value> table;
  if (reuse) {
    table = {cached->second.first, cached->second.second};
  } else {
    table = makeRopeTable(k, positions, rows, half, theta, headDim);
    tables.made[key] = {table[0], table[1]};
  }
  auto pairsType = RankedTensorType::get({rows, heads, 2, half}, k.f32Type);
  Value pairs = tensor::ExpandShapeOp::create(
      k.builder(), k.location(), pairsType, x,
      SmallVector<ReassociationIndices>{{0}, {1, 2, 3}});
  // first half: x1·cos − x2·sin; second half: x2·cos + x1·sin
  float flip = float(angleSign);
  Value signs = arith::ConstantOp::create(
      k.builder(), k.location(),
      DenseElementsAttr::get(RankedTensorType::get({2}, k.f32Type),
                             ArrayRef<float>{-flip, flip}));
  Value y = k.generic(
      {pairs, pairs, table[0], table[1], signs}, k.empty(pairsType.getShape()),
      {"(n, h, p, j) -> (n, h, p, j)", "(n, h, p, j) -> (n, h, 1 - p, j)",
       "(n, h, p, j) -> (n, j)", "(n, h, p, j) -> (n, j)",
       "(n, h, p, j) -> (p)", "(n, h, p, j) -> (n, h, p, j)"},
      "pppp", [&](OpBuilder &bb, Location at, ValueRange args) {
        Math m{bb, at};
        return SmallVector<Value>{
            m.add(m.mul(args[0], args[2]),
                  m.mul(m.mul(args[4], args[1]), args[3]))};
      })[0];
  Value flat = tensor::CollapseShapeOp::create(
      k.builder(), k.location(), y,
      SmallVector<ReassociationIndices>{{0}, {1, 2, 3}});
  return k.expandTo(flat, typeOf(input), /*allDims=*/false);
}

struct RoPELowering : LoraLowering<RoPEOp> {
  RoPELowering(MLIRContext *context, std::shared_ptr<RopeTables> tables)
      : LoraLowering(context), tables(std::move(tables)) {}
  SmallVector<Value> lower(RoPEOp op, Adaptor a,
                           KernelBuilder &k) const override {
    return {lowerRoPE(k, op, *tables, a.getInput(), a.getPositions(),
                      op.getTheta().convertToDouble(), op.getHeadDim(), 1.0)};
  }
  std::shared_ptr<RopeTables> tables;
};

struct RoPEGradLowering : LoraLowering<RoPEGradOp> {
  RoPEGradLowering(MLIRContext *context, std::shared_ptr<RopeTables> tables)
      : LoraLowering(context), tables(std::move(tables)) {}
  SmallVector<Value> lower(RoPEGradOp op, Adaptor a,
                           KernelBuilder &k) const override {
    return {lowerRoPE(k, op, *tables, a.getGrad(), a.getPositions(),
                      op.getTheta().convertToDouble(), op.getHeadDim(), -1.0)};
  }
  std::shared_ptr<RopeTables> tables;
};

/// Query-like [b, t, kv, g, dh] and key-like [b, t, kv, dh] shapes.
std::pair<SmallVector<int64_t>, SmallVector<int64_t>>
headShapes(Value query, int64_t heads, int64_t kvHeads, int64_t headDim) {
  ArrayRef<int64_t> q = shapeOf(query);
  return {{q[0], q[1], kvHeads, heads / kvHeads, headDim},
          {q[0], q[1], kvHeads, headDim}};
}

struct AttentionLowering : LoraLowering<AttentionOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(AttentionOp op, Adaptor a,
                           KernelBuilder &k) const override {
    auto [q5, kv4] = headShapes(a.getQuery(), op.getNumHeads(),
                                op.getNumKvHeads(), op.getHeadDim());
    double scale = op.getScaleOrDefault();
    Value q = splitHeads(k, a.getQuery(), q5);
    Value key = splitHeads(k, a.getKey(), kv4);
    Value value = splitHeads(k, a.getValue(), kv4);
    OpBuilder &b = k.builder();
    Location loc = k.location();
    Value mask = causalMask(k, q5[1]);
    Value out = forEachHead(
        k, {q5[0], q5[2], q5[3]}, k.filled(q5, 0.0),
        [&](ValueRange h, ValueRange accs) -> SmallVector<Value> {
          Value o = accs[0];
          for (Rows queries : causalQueryBlocks(q5[1])) {
            Rows keys{0, queries.begin + queries.count};
            Value p = headProbabilities(
                k, headMatrix(b, loc, q, HeadLayout::Query, h, queries),
                headMatrix(b, loc, key, HeadLayout::KeyValue, h, keys),
                maskBlock(k, mask, queries), scale);
            // O[h, queries] = P · V[kv, keys]
            Value vh = headMatrix(b, loc, value, HeadLayout::KeyValue, h, keys);
            o = matmulIntoHead(k, p, false, vh, false, o, HeadLayout::Query,
                               h, queries);
          }
          return {o};
        })[0];
    return {mergeHeads(k, out)};
  }
};

/// The backward of one head's block of query rows: recomputes P [R, keys],
/// then dQ[queries] += dS·K[keys], dK[keys] += dSᵀ·Q[queries] and
/// dV[keys] += Pᵀ·dO[queries] into `accs` (dQ, dK, dV); returns them.
SmallVector<Value> attentionGradBlock(KernelBuilder &k, ValueRange h, Value q,
                                      Value key, Value value, Value dOut,
                                      Value mask, double scale, Rows queries,
                                      Rows keys, ValueRange accs) {
  OpBuilder &b = k.builder();
  Location loc = k.location();
  Value qh = headMatrix(b, loc, q, HeadLayout::Query, h, queries);
  Value kh = headMatrix(b, loc, key, HeadLayout::KeyValue, h, keys);
  Value vh = headMatrix(b, loc, value, HeadLayout::KeyValue, h, keys);
  Value dOh = headMatrix(b, loc, dOut, HeadLayout::Query, h, queries);
  int64_t R = queries.count, J = keys.count;
  Value p = headProbabilities(k, qh, kh, mask, scale);
  Value dp = k.matmul(dOh, vh, k.filled({R, J}, 0.0), false, true);
  const char *full = "(t, j) -> (t, j)";
  const char *row = "(t, j) -> (t)";
  Value weighted = k.generic(
      {p, dp}, k.filled({R}, 0.0), {full, full, row}, "pr",
      [&](OpBuilder &bb, Location at, ValueRange args) {
        Math m{bb, at};
        return SmallVector<Value>{m.add(args[2], m.mul(args[0], args[1]))};
      })[0];
  Value ds = k.generic(
      {p, dp, weighted}, k.empty({R, J}), {full, full, row, full}, "pp",
      [&](OpBuilder &bb, Location at, ValueRange args) {
        Math m{bb, at};
        return SmallVector<Value>{
            m.mul(m.mul(args[0], m.sub(args[1], args[2])), m.f32(scale))};
      })[0];
  return {matmulIntoHead(k, ds, false, kh, false, accs[0], HeadLayout::Query,
                         h, queries),
          matmulIntoHead(k, ds, true, qh, false, accs[1],
                         HeadLayout::KeyValue, h, keys),
          matmulIntoHead(k, p, true, dOh, false, accs[2], HeadLayout::KeyValue,
                         h, keys)};
}

struct AttentionGradLowering : LoraLowering<AttentionGradOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(AttentionGradOp op, Adaptor a,
                           KernelBuilder &k) const override {
    auto [q5, kv4] = headShapes(a.getQuery(), op.getNumHeads(),
                                op.getNumKvHeads(), op.getHeadDim());
    double scale = op.getScaleOrDefault();
    Value q = splitHeads(k, a.getQuery(), q5);
    Value key = splitHeads(k, a.getKey(), kv4);
    Value value = splitHeads(k, a.getValue(), kv4);
    Value dOut = splitHeads(k, a.getGrad(), q5);
    int64_t T = q5[1];
    Value mask = causalMask(k, T);
    // Per head and block of query rows, with the [R, keys] blocks in
    // cache: P recomputed, dP = dO·Vᵀ, dS = P·(dP − Σ_j P·dP)·scale, then
    // dQ = dS·K, dK += dSᵀ·Q and dV += Pᵀ·dO (the g heads of a group and
    // the query blocks add into the same kv rows).
    SmallVector<Value> grads = forEachHead(
        k, {q5[0], q5[2], q5[3]},
        {k.filled(q5, 0.0), k.filled(kv4, 0.0), k.filled(kv4, 0.0)},
        [&](ValueRange h, ValueRange accs) -> SmallVector<Value> {
          SmallVector<Value> acc(accs);
          for (Rows queries : causalQueryBlocks(T)) {
            Rows keys{0, queries.begin + queries.count};
            acc = attentionGradBlock(k, h, q, key, value, dOut,
                                     maskBlock(k, mask, queries), scale,
                                     queries, keys, acc);
          }
          return acc;
        });
    return {mergeHeads(k, grads[0]), mergeHeads(k, grads[1]),
            mergeHeads(k, grads[2])};
  }
};

struct SwiGLULowering : LoraLowering<SwiGLUOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(SwiGLUOp op, Adaptor a,
                           KernelBuilder &k) const override {
    return k.elementwise({a.getGate(), a.getUp()}, 1,
                         [&](OpBuilder &bb, Location at, ValueRange args) {
                           Math m{bb, at};
                           return SmallVector<Value>{m.mul(
                               m.mul(args[0], m.sigmoid(args[0])), args[1])};
                         });
  }
};

struct SwiGLUGradLowering : LoraLowering<SwiGLUGradOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(SwiGLUGradOp op, Adaptor a,
                           KernelBuilder &k) const override {
    // One kernel, both gradients: the sigmoid once, g and dY read once.
    return k.elementwise(
        {a.getGate(), a.getUp(), a.getGrad()}, 2,
        [&](OpBuilder &bb, Location at, ValueRange args) {
          Math m{bb, at};
          Value g = args[0], up = args[1], dy = args[2];
          Value s = m.sigmoid(g);
          // d silu(g) = s + g·s·(1 − s)
          Value gs = m.mul(g, s);
          Value dsilu = m.add(s, m.mul(gs, m.sub(m.f32(1.0), s)));
          return SmallVector<Value>{m.mul(m.mul(dy, up), dsilu),
                                    m.mul(dy, gs)};
        });
  }
};

struct AddLowering : LoraLowering<AddOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(AddOp op, Adaptor a,
                           KernelBuilder &k) const override {
    return k.elementwise({a.getLhs(), a.getRhs()}, 1,
                         [&](OpBuilder &bb, Location at, ValueRange args) {
                           Math m{bb, at};
                           return SmallVector<Value>{m.add(args[0], args[1])};
                         });
  }
};

struct CrossEntropyLowering : LoraLowering<CrossEntropyOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(CrossEntropyOp op, Adaptor a,
                           KernelBuilder &k) const override {
    int64_t ignore = op.getIgnoreIndex();
    Value logits2 = k.collapseRows(a.getLogits());
    LossRows r = lossRows(k, a.getLogits(), a.getLabels());
    // Σ over counted rows of log Σ exp − logit[label]
    Value total =
        k.generic({r.labels, r.maximum, r.sumExp}, k.filled({}, 0.0),
                  {"(n) -> (n)", "(n) -> (n)", "(n) -> (n)", "(n) -> ()"}, "r",
                  [&](OpBuilder &bb, Location at, ValueRange args) {
                    Math m{bb, at};
                    Value counted = isCounted(bb, at, args[0], ignore);
                    Value safe = arith::SelectOp::create(
                        bb, at, counted, args[0],
                        arith::ConstantOp::create(
                            bb, at, IntegerAttr::get(args[0].getType(), 0)));
                    Value picked = tensor::ExtractOp::create(
                        bb, at, logits2,
                        ValueRange{k.loopIndex(bb, 0),
                                   arith::IndexCastOp::create(
                                       bb, at, bb.getIndexType(), safe)});
                    Value term = m.sub(m.add(args[1], m.log(args[2])), picked);
                    return SmallVector<Value>{
                        m.add(args[3], m.select(counted, term, m.f32(0.0)))};
                  })[0];
    Math m{k.builder(), k.location()};
    Value count = countedLabels(k, r.labels, ignore);
    return {k.tensorOf(m.div(k.scalar(total), count))};
  }
};

struct CrossEntropyGradLowering : LoraLowering<CrossEntropyGradOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(CrossEntropyGradOp op, Adaptor a,
                           KernelBuilder &k) const override {
    int64_t ignore = op.getIgnoreIndex();
    Value logits2 = k.collapseRows(a.getLogits());
    LossRows r = lossRows(k, a.getLogits(), a.getLabels());
    Math m{k.builder(), k.location()};
    Value coefficient =
        m.div(k.scalar(a.getLossGrad()), countedLabels(k, r.labels, ignore));
    auto [weight, label] = tokenTerms(k, r.labels, coefficient, ignore);
    // softmax · weight over the whole vocabulary: no index, so it vectorizes.
    Value dl = k.generic(
        {logits2, r.maximum, r.sumExp, weight}, k.empty({r.rows, r.vocab}),
        {"(n, v) -> (n, v)", "(n, v) -> (n)", "(n, v) -> (n)", "(n, v) -> (n)",
         "(n, v) -> (n, v)"},
        "pp", [&](OpBuilder &bb, Location at, ValueRange args) {
          Math mm{bb, at};
          return SmallVector<Value>{mm.mul(
              mm.div(mm.exp(mm.sub(args[0], args[1])), args[2]), args[3])};
        })[0];
    // Then − weight at each row's label: one element per row.
    OpBuilder &b = k.builder();
    Location loc = k.location();
    dl = scf::ForOp::create(
             b, loc, k.index(0), k.index(r.rows), k.index(1), ValueRange{dl},
             [&](OpBuilder &, Location at, Value n, ValueRange acc) {
               Value id =
                   tensor::ExtractOp::create(b, at, label, ValueRange{n});
               Value current = tensor::ExtractOp::create(
                   b, at, acc[0], ValueRange{n, id});
               Value w = tensor::ExtractOp::create(b, at, weight, ValueRange{n});
               Value updated = tensor::InsertOp::create(
                   b, at, arith::SubFOp::create(b, at, current, w), acc[0],
                   ValueRange{n, id});
               scf::YieldOp::create(b, at, updated);
             })
             .getResult(0);
    return {k.expandTo(dl, op.getType(), /*allDims=*/false)};
  }
};

/// Runs `body(offset, size, accs)` over the vocabulary [0, vocab) in chunks
/// of `chunk` rows: an scf.for over the full chunks, then the remainder
/// (static sizes both). Returns the final values of `inits`.
SmallVector<Value> forEachVocabChunk(
    KernelBuilder &k, int64_t vocab, int64_t chunk, ValueRange inits,
    llvm::function_ref<SmallVector<Value>(Value offset, int64_t size,
                                          ValueRange accs)>
        body) {
  OpBuilder &b = k.builder();
  Location loc = k.location();
  chunk = std::min(chunk, vocab);
  int64_t full = vocab / chunk, tail = vocab % chunk;
  SmallVector<Value> accs(inits);
  auto loop = scf::ForOp::create(
      b, loc, k.index(0), k.index(full * chunk), k.index(chunk), accs,
      [&](OpBuilder &, Location at, Value offset, ValueRange args) {
        scf::YieldOp::create(b, at, body(offset, chunk, args));
      });
  accs.assign(loop.getResults().begin(), loop.getResults().end());
  if (tail)
    accs = body(k.index(full * chunk), tail, accs);
  return accs;
}

/// Rows [offset, offset + size) of the [vocab, hidden] weight.
Value weightChunk(KernelBuilder &k, Value weight, Value offset, int64_t size) {
  OpBuilder &b = k.builder();
  int64_t hidden = shapeOf(weight)[1];
  return tensor::ExtractSliceOp::create(
      b, k.location(), weight,
      ArrayRef<OpFoldResult>{offset, b.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{b.getIndexAttr(size), b.getIndexAttr(hidden)},
      ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1)});
}

struct LinearCrossEntropyLowering : LoraLowering<LinearCrossEntropyOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(LinearCrossEntropyOp op, Adaptor a,
                           KernelBuilder &k) const override {
    Value x = k.collapseRows(a.getInput());
    Value w = a.getWeight();
    Value labels = k.collapseAll(a.getLabels());
    int64_t rows = shapeOf(x)[0], vocab = shapeOf(w)[0];
    const char *full = "(n, v) -> (n, v)", *row = "(n, v) -> (n)";
    // Online log-sum-exp over the chunks: running max m and Σ exp(l − m).
    SmallVector<Value> stats = forEachVocabChunk(
        k, vocab, op.getChunk(),
        {k.filled({rows}, -INFINITY), k.filled({rows}, 0.0)},
        [&](Value offset, int64_t size, ValueRange acc) -> SmallVector<Value> {
          Value logits = k.matmul(x, weightChunk(k, w, offset, size),
                                  k.filled({rows, size}, 0.0), false, true);
          // The chunk's row max, Σ exp(l − new max), then the running sum
          // rescaled and the running max, each written over its old value
          // (an scf.for must yield its own buffers).
          Value chunkMax = k.generic(
              logits, k.filled({rows}, -INFINITY), {full, row}, "pr",
              [&](OpBuilder &bb, Location at, ValueRange args) {
                Math m{bb, at};
                return SmallVector<Value>{m.max(args[1], args[0])};
              })[0];
          Value chunkSum = k.generic(
              {logits, acc[0], chunkMax}, k.filled({rows}, 0.0),
              {full, row, row, row}, "pr",
              [&](OpBuilder &bb, Location at, ValueRange args) {
                Math m{bb, at};
                Value newMax = m.max(args[1], args[2]);
                return SmallVector<Value>{
                    m.add(args[3], m.exp(m.sub(args[0], newMax)))};
              })[0];
          const char *id = "(n) -> (n)";
          Value sum = k.generic(
              {acc[0], chunkMax, chunkSum}, acc[1], {id, id, id, id}, "p",
              [&](OpBuilder &bb, Location at, ValueRange args) {
                Math m{bb, at};
                Value newMax = m.max(args[0], args[1]);
                return SmallVector<Value>{m.add(
                    m.mul(args[3], m.exp(m.sub(args[0], newMax))), args[2])};
              })[0];
          Value maximum = k.generic(
              chunkMax, acc[0], {id, id}, "p",
              [&](OpBuilder &bb, Location at, ValueRange args) {
                Math m{bb, at};
                return SmallVector<Value>{m.max(args[1], args[0])};
              })[0];
          return {maximum, sum};
        });
    Value lse = k.elementwise({stats[0], stats[1]}, 1,
                              [&](OpBuilder &bb, Location at, ValueRange args) {
                                Math m{bb, at};
                                return SmallVector<Value>{
                                    m.add(args[0], m.log(args[1]))};
                              })[0];
    auto [weight, label] =
        tokenTerms(k, labels, k.f32(1.0), op.getIgnoreIndex());
    // The label's logit, x · W[label], and Σ weight · (lse − logit).
    Value picked = k.generic(
        {x, label}, k.filled({rows}, 0.0),
        {"(n, h) -> (n, h)", "(n, h) -> (n)", "(n, h) -> (n)"}, "pr",
        [&](OpBuilder &bb, Location at, ValueRange args) {
          Math m{bb, at};
          Value wv = tensor::ExtractOp::create(
              bb, at, w, ValueRange{args[1], k.loopIndex(bb, 1)});
          return SmallVector<Value>{m.add(args[2], m.mul(args[0], wv))};
        })[0];
    Value total = k.generic(
        {weight, lse, picked}, k.filled({}, 0.0),
        {"(n) -> (n)", "(n) -> (n)", "(n) -> (n)", "(n) -> ()"}, "r",
        [&](OpBuilder &bb, Location at, ValueRange args) {
          Math m{bb, at};
          return SmallVector<Value>{
              m.add(args[3], m.mul(args[0], m.sub(args[1], args[2])))};
        })[0];
    Math m{k.builder(), k.location()};
    Value loss = m.div(k.scalar(total),
                       countedLabels(k, labels, op.getIgnoreIndex()));
    return {k.tensorOf(loss),
            k.expandTo(lse, op.getLse().getType(), /*allDims=*/true)};
  }
};

struct LinearCrossEntropyGradLowering
    : LoraLowering<LinearCrossEntropyGradOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(LinearCrossEntropyGradOp op, Adaptor a,
                           KernelBuilder &k) const override {
    Value x = k.collapseRows(a.getInput());
    Value w = a.getWeight();
    Value labels = k.collapseAll(a.getLabels());
    Value lse = k.collapseAll(a.getLse());
    int64_t rows = shapeOf(x)[0], hidden = shapeOf(x)[1],
            vocab = shapeOf(w)[0];
    bool weightGrad = bool(op.getWeightGrad());
    Math m{k.builder(), k.location()};
    Value coefficient = m.div(k.scalar(a.getLossGrad()),
                              countedLabels(k, labels, op.getIgnoreIndex()));
    auto [weight, label] =
        tokenTerms(k, labels, coefficient, op.getIgnoreIndex());
    OpBuilder &b = k.builder();
    Location loc = k.location();
    SmallVector<Value> inits = {k.filled({rows, hidden}, 0.0)};
    if (weightGrad)
      inits.push_back(k.empty({vocab, hidden}));
    // Per chunk: dlogits = softmax · weight (the one-hot part comes later),
    // dX += dlogits · W_chunk, dW[chunk] = dlogitsᵀ · X.
    SmallVector<Value> grads = forEachVocabChunk(
        k, vocab, op.getChunk(), inits,
        [&](Value offset, int64_t size, ValueRange acc) -> SmallVector<Value> {
          Value wc = weightChunk(k, w, offset, size);
          Value logits =
              k.matmul(x, wc, k.filled({rows, size}, 0.0), false, true);
          Value dl = k.generic(
              {logits, lse, weight}, k.empty({rows, size}),
              {"(n, v) -> (n, v)", "(n, v) -> (n)", "(n, v) -> (n)",
               "(n, v) -> (n, v)"},
              "pp", [&](OpBuilder &bb, Location at, ValueRange args) {
                Math mm{bb, at};
                return SmallVector<Value>{
                    mm.mul(mm.exp(mm.sub(args[0], args[1])), args[2])};
              })[0];
          SmallVector<Value> next = {k.matmul(dl, wc, acc[0], false, false)};
          if (weightGrad) {
            Value dwc = k.matmul(dl, x, k.filled({size, hidden}, 0.0),
                                 /*transposeA=*/true, false);
            next.push_back(tensor::InsertSliceOp::create(
                b, loc, dwc, acc[1],
                ArrayRef<OpFoldResult>{offset, b.getIndexAttr(0)},
                ArrayRef<OpFoldResult>{b.getIndexAttr(size),
                                       b.getIndexAttr(hidden)},
                ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1)}));
          }
          return next;
        });
    // The one-hot part: dX[n] −= weight[n] · W[label[n]] ...
    Value dx = k.generic(
        {grads[0], weight, label}, k.empty({rows, hidden}),
        {"(n, h) -> (n, h)", "(n, h) -> (n)", "(n, h) -> (n)",
         "(n, h) -> (n, h)"},
        "pp", [&](OpBuilder &bb, Location at, ValueRange args) {
          Math mm{bb, at};
          Value wv = tensor::ExtractOp::create(
              bb, at, w, ValueRange{args[2], k.loopIndex(bb, 1)});
          return SmallVector<Value>{mm.sub(args[0], mm.mul(args[1], wv))};
        })[0];
    SmallVector<Value> results = {
        k.expandTo(dx, op.getInputGrad().getType(), /*allDims=*/false)};
    if (weightGrad) {
      // ... and dW[label[n]] −= weight[n] · X[n], a scatter over tokens.
      Value negated = k.elementwise(
          weight, 1, [](OpBuilder &bb, Location at, ValueRange args) {
            return SmallVector<Value>{arith::NegFOp::create(bb, at, args[0])};
          })[0];
      results.push_back(scatterAddRows(k, grads[1], label, x, negated));
    }
    return results;
  }
};

struct CheckpointLowering : LoraLowering<CheckpointOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(CheckpointOp op, Adaptor a,
                           KernelBuilder &k) const override {
    // Only the lora level needs the barrier (against CSE there); the
    // lowering runs no CSE, so no copy is made.
    return {a.getInput()};
  }
};

struct GlobalNormLowering : LoraLowering<GlobalNormOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(GlobalNormOp op, Adaptor a,
                           KernelBuilder &k) const override {
    Value squares = k.filled({}, 0.0);
    for (Value input : a.getInputs())
      squares = k.generic(
          k.collapseAll(input), squares, {"(e) -> (e)", "(e) -> ()"}, "r",
          [&](OpBuilder &bb, Location at, ValueRange args) {
            Math m{bb, at};
            return SmallVector<Value>{m.add(args[1], m.mul(args[0], args[0]))};
          })[0];
    Math m{k.builder(), k.location()};
    return {k.tensorOf(m.sqrt(k.scalar(squares)))};
  }
};

struct AdamWLowering : LoraLowering<AdamWOp> {
  using LoraLowering::LoraLowering;
  SmallVector<Value> lower(AdamWOp op, Adaptor a,
                           KernelBuilder &k) const override {
    OpBuilder &b = k.builder();
    Location loc = k.location();
    Math m{b, loc};
    double beta1 = op.getBeta1().convertToDouble();
    double beta2 = op.getBeta2().convertToDouble();
    double eps = op.getEpsilon().convertToDouble();
    double decay = op.getWeightDecay().convertToDouble();
    Value lr = k.scalar(a.getLr());
    Value step =
        arith::SIToFPOp::create(b, loc, b.getF32Type(), k.scalar(a.getStep()));
    // Bias corrections 1 − beta^step.
    Value correction1 =
        m.sub(m.f32(1.0), math::PowFOp::create(b, loc, m.f32(beta1), step));
    Value correction2 =
        m.sub(m.f32(1.0), math::PowFOp::create(b, loc, m.f32(beta2), step));
    Value clip = m.f32(1.0);
    if (a.getGradNorm()) {
      // min(1, max_norm / (norm + 1e-6)), as clip_grad_norm_.
      Value norm = k.scalar(a.getGradNorm());
      clip = arith::MinimumFOp::create(
          b, loc, m.f32(1.0),
          m.div(m.f32(op.getMaxGradNorm()->convertToDouble()),
                m.add(norm, m.f32(1e-6))));
    }
    return k.elementwise(
        {a.getParam(), a.getGrad(), a.getFirstMoment(), a.getSecondMoment()}, 3,
        [&](OpBuilder &bb, Location at, ValueRange args) {
          Math mm{bb, at};
          Value g = mm.mul(args[1], clip);
          Value m1 = mm.add(mm.mul(mm.f32(beta1), args[2]),
                            mm.mul(mm.f32(1.0 - beta1), g));
          Value v1 = mm.add(mm.mul(mm.f32(beta2), args[3]),
                            mm.mul(mm.f32(1.0 - beta2), mm.mul(g, g)));
          Value p = mm.sub(args[0], mm.mul(mm.mul(lr, mm.f32(decay)), args[0]));
          Value update =
              mm.div(mm.div(m1, correction1),
                     mm.add(mm.sqrt(mm.div(v1, correction2)), mm.f32(eps)));
          return SmallVector<Value>{mm.sub(p, mm.mul(lr, update)), m1, v1};
        });
  }
};

struct ConvertLoraToLinalgPass
    : public lora::impl::ConvertLoraToLinalgBase<ConvertLoraToLinalgPass> {
  using Base::Base;

  void runOnOperation() override {
    StringRef flash = flashAttention;
    if (flash != "none" && flash != "cpu" && flash != "gpu" &&
        flash != "gpu-bf16") {
      getOperation().emitError()
          << "convert-lora-to-linalg: flash-attention must be none, cpu, gpu "
             "or gpu-bf16, got '"
          << flash << "'";
      return signalPassFailure();
    }
    if (flash != "none")
      getOperation().walk([&](Operation *op) {
        if (isa<AttentionOp, AttentionGradOp>(op))
          op->setAttr(kFlashAttrName, StringAttr::get(&getContext(), flash));
      });
    // f32 adapter backwards go to the runtime's one-pass kernel.
    if (adapterGradCalls)
      getOperation().walk([&](AdapterGradOp op) {
        if (allF32(op))
          op->setAttr(kAdapterGradCallAttrName, UnitAttr::get(&getContext()));
      });
    ConversionTarget target(getContext());
    target.addIllegalDialect<LoraDialect>();
    // The collectives stay: they bufferize into runtime calls; so does
    // attention marked for the runtime's flash kernels.
    target.addLegalOp<AllReduceStartOp, AllReduceWaitOp>();
    target.addDynamicallyLegalOp<AttentionOp, AttentionGradOp>(
        [](Operation *op) { return op->hasAttr(kFlashAttrName); });
    target.addDynamicallyLegalOp<AdapterGradOp>(
        [](Operation *op) { return op->hasAttr(kAdapterGradCallAttrName); });
    target.addLegalDialect<arith::ArithDialect, linalg::LinalgDialect,
                           math::MathDialect, scf::SCFDialect,
                           bufferization::BufferizationDialect,
                           tensor::TensorDialect, func::FuncDialect>();
    RewritePatternSet patterns(&getContext());
    populateLoraToLinalgConversionPatterns(patterns);
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      return signalPassFailure();
    // tensor.concat (from lora-fuse-adapters) as insert_slices into one
    // tensor, which bufferizes into one buffer written in place.
    SmallVector<Operation *> concats;
    getOperation()->walk([&](tensor::ConcatOp op) { concats.push_back(op); });
    RewritePatternSet concat(&getContext());
    tensor::populateDecomposeTensorConcatPatterns(concat);
    if (!concats.empty() &&
        failed(applyOpPatternsGreedily(concats, std::move(concat))))
      signalPassFailure();
  }
};

} // namespace

void mlir::lora::populateLoraToLinalgConversionPatterns(
    RewritePatternSet &patterns) {
  patterns.add<EmbeddingLowering, EmbeddingGradLowering, RMSNormLowering,
               RMSNormGradLowering, LinearLowering, LowRankUpdateLowering,
               LinearGradInputLowering, LinearGradWeightLowering,
               AdapterGradLowering, DropoutLowering, AttentionLowering,
               AttentionGradLowering,
               SwiGLULowering, SwiGLUGradLowering, AddLowering,
               CrossEntropyLowering, CrossEntropyGradLowering,
               GlobalNormLowering, AdamWLowering, CheckpointLowering,
               LinearCrossEntropyLowering,
               LinearCrossEntropyGradLowering>(patterns.getContext());
  auto tables = std::make_shared<RopeTables>();
  patterns.add<RoPELowering, RoPEGradLowering>(patterns.getContext(), tables);
}
