//===- Evaluator.cpp - the reference evaluator ----------------------------===//
//
// Obviously correct first: every op is a direct loop nest over its
// definition, accumulating in double. Speed does not matter here; the
// models it runs are tiny.
//
//===----------------------------------------------------------------------===//

#include "lora/Reference/Evaluator.h"

#include "lora/Dialect/Lora/IR/LoraOps.h"
#include "lora/runtime/Dropout.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::lora;
using namespace mlir::lora::reference;

Tensor Tensor::filled(std::vector<int64_t> shape, double value) {
  Tensor tensor;
  tensor.shape = std::move(shape);
  tensor.data.assign(tensor.numElements(), value);
  return tensor;
}

int64_t Tensor::numElements() const {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

namespace {

llvm::Error opError(Operation *op, const Twine &message) {
  std::string location;
  llvm::raw_string_ostream os(location);
  op->getLoc().print(os);
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      location + ": '" + op->getName().getStringRef() + "': " + message);
}

/// Product of all dims but the last: the number of rows of a [..., n]
/// tensor.
int64_t rows(const Tensor &t) {
  return t.shape.empty() ? 1 : t.numElements() / t.shape.back();
}
int64_t last(const Tensor &t) { return t.shape.empty() ? 1 : t.shape.back(); }

class Evaluator {
public:
  llvm::Expected<std::vector<Tensor>> run(func::FuncOp function,
                                          const std::vector<Tensor> &args);

private:
  const Tensor &get(Value value) { return values.find(value)->second; }
  llvm::Expected<std::vector<int64_t>> shapeOf(Operation *op, Type type);
  llvm::Error step(Operation *op);

  // One method per op: naive loops.
  llvm::Error embedding(EmbeddingOp op);
  llvm::Error embeddingGrad(EmbeddingGradOp op);
  llvm::Error rmsNorm(RMSNormOp op);
  llvm::Error rmsNormGrad(RMSNormGradOp op);
  llvm::Error linear(LinearOp op);
  llvm::Error rope(Operation *op, Value input, Value positions, double theta,
                   int64_t headDim, double sign);
  llvm::Error attention(AttentionOp op);
  llvm::Error attentionGrad(AttentionGradOp op);
  llvm::Error crossEntropy(Operation *op, Value logits, Value labels,
                           int64_t ignoreIndex, const Tensor *lossGrad);
  llvm::Error adamw(AdamWOp op);
  llvm::Error linearCrossEntropy(Operation *op, Value input, Value weight,
                                 Value labels, int64_t ignoreIndex,
                                 const Tensor *lossGrad);

  DenseMap<Value, Tensor> values;
};

/// The [cols, rows] transpose of a [..., cols] tensor seen as [rows, cols].
Tensor transposed(const Tensor &t) {
  int64_t n = rows(t), m = last(t);
  Tensor out = Tensor::filled({m, n}, 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < m; ++c)
      out.data[c * n + r] = t.data[r * m + c];
  return out;
}

/// y[n, o] = scale · Σ_i x[n, i] · w[o, i]   (x·wᵀ)
Tensor matmulTransposed(const Tensor &x, const Tensor &w, double scale,
                        std::vector<int64_t> shape) {
  int64_t n = rows(x), in = last(x), out = w.shape[0];
  Tensor y = Tensor::filled(std::move(shape), 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double sum = 0;
      for (int64_t i = 0; i < in; ++i)
        sum += x.data[r * in + i] * w.data[o * in + i];
      y.data[r * out + o] = scale * sum;
    }
  return y;
}

/// dw[o, i] = scale · Σ_n dy[n, o] · x[n, i]   (dyᵀ·x)
Tensor weightGrad(const Tensor &dy, const Tensor &x, double scale) {
  int64_t n = rows(dy), out = last(dy), in = last(x);
  Tensor dw = Tensor::filled({out, in}, 0.0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      double sum = 0;
      for (int64_t r = 0; r < n; ++r)
        sum += dy.data[r * out + o] * x.data[r * in + i];
      dw.data[o * in + i] = scale * sum;
    }
  return dw;
}

/// Every token id lies in [0, vocab).
llvm::Error checkIds(Operation *op, const Tensor &ids, int64_t vocab) {
  for (int64_t p = 0; p < ids.numElements(); ++p) {
    int64_t id = int64_t(ids.data[p]);
    if (id < 0 || id >= vocab)
      return opError(op, llvm::formatv("token id {0} at position {1} is "
                                       "outside the vocabulary [0, {2})",
                                       id, p, vocab));
  }
  return llvm::Error::success();
}

/// Inverted dropout with the shared counter-based mask.
Tensor dropout(const Tensor &x, int64_t seed, double rate) {
  Tensor y = x;
  for (size_t i = 0; i < y.data.size(); ++i)
    y.data[i] = ::lora::runtime::dropoutKeeps(seed, i, rate)
                    ? y.data[i] / (1.0 - rate)
                    : 0.0;
  return y;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

} // namespace

llvm::Expected<std::vector<int64_t>> Evaluator::shapeOf(Operation *op,
                                                        Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return opError(op, "the reference evaluator needs static tensor shapes");
  return std::vector<int64_t>(tensor.getShape().begin(),
                              tensor.getShape().end());
}

llvm::Error Evaluator::embedding(EmbeddingOp op) {
  const Tensor &table = get(op.getTable()), &ids = get(op.getIds());
  int64_t vocab = table.shape[0], hidden = table.shape[1];
  auto shape = shapeOf(op, op.getType());
  if (!shape)
    return shape.takeError();
  Tensor out = Tensor::filled(*shape, 0.0);
  if (llvm::Error error = checkIds(op, ids, vocab))
    return error;
  for (int64_t p = 0; p < ids.numElements(); ++p) {
    int64_t id = int64_t(ids.data[p]);
    for (int64_t d = 0; d < hidden; ++d)
      out.data[p * hidden + d] = table.data[id * hidden + d];
  }
  values[op.getResult()] = std::move(out);
  return llvm::Error::success();
}

llvm::Error Evaluator::embeddingGrad(EmbeddingGradOp op) {
  const Tensor &grad = get(op.getGrad()), &ids = get(op.getIds());
  auto shape = shapeOf(op, op.getType());
  if (!shape)
    return shape.takeError();
  Tensor out = Tensor::filled(*shape, 0.0);
  int64_t vocab = out.shape[0], hidden = out.shape[1];
  if (llvm::Error error = checkIds(op, ids, vocab))
    return error;
  for (int64_t p = 0; p < ids.numElements(); ++p) {
    int64_t id = int64_t(ids.data[p]);
    for (int64_t d = 0; d < hidden; ++d)
      out.data[id * hidden + d] += grad.data[p * hidden + d];
  }
  values[op.getResult()] = std::move(out);
  return llvm::Error::success();
}

llvm::Error Evaluator::rmsNorm(RMSNormOp op) {
  const Tensor &x = get(op.getInput()), &w = get(op.getWeight());
  double eps = op.getEpsilon().convertToDouble();
  int64_t n = rows(x), d = last(x);
  Tensor y = x;
  for (int64_t r = 0; r < n; ++r) {
    double squares = 0;
    for (int64_t i = 0; i < d; ++i)
      squares += x.data[r * d + i] * x.data[r * d + i];
    double inverse = 1.0 / std::sqrt(squares / d + eps);
    for (int64_t i = 0; i < d; ++i)
      y.data[r * d + i] = x.data[r * d + i] * inverse * w.data[i];
  }
  values[op.getResult()] = std::move(y);
  return llvm::Error::success();
}

llvm::Error Evaluator::rmsNormGrad(RMSNormGradOp op) {
  const Tensor &x = get(op.getInput()), &w = get(op.getWeight()),
               &dy = get(op.getGrad());
  double eps = op.getEpsilon().convertToDouble();
  int64_t n = rows(x), d = last(x);
  Tensor dx = Tensor::filled(x.shape, 0.0), dw = Tensor::filled(w.shape, 0.0);
  for (int64_t r = 0; r < n; ++r) {
    const double *xr = &x.data[r * d], *gr = &dy.data[r * d];
    double squares = 0, dot = 0;
    for (int64_t i = 0; i < d; ++i) {
      squares += xr[i] * xr[i];
      dot += gr[i] * w.data[i] * xr[i];
    }
    double inverse = 1.0 / std::sqrt(squares / d + eps);
    // y_i = w_i x_i r(x), dr/dx_j = -r³ x_j / d
    for (int64_t i = 0; i < d; ++i) {
      dx.data[r * d + i] = inverse * gr[i] * w.data[i] -
                           inverse * inverse * inverse * xr[i] * dot / d;
      dw.data[i] += gr[i] * xr[i] * inverse;
    }
  }
  values[op.getInputGrad()] = std::move(dx);
  values[op.getWeightGrad()] = std::move(dw);
  return llvm::Error::success();
}

llvm::Error Evaluator::linear(LinearOp op) {
  const Tensor &x = get(op.getInput()), &w = get(op.getWeight());
  std::vector<int64_t> shape = x.shape;
  shape.back() = w.shape[0];
  Tensor y = matmulTransposed(x, w, 1.0, shape);
  if (op.hasAdapter()) {
    const Tensor &a = get(op.getLoraA()), &b = get(op.getLoraB());
    Tensor dropped = op.getDropout()
                         ? dropout(x, int64_t(get(op.getSeed()).data[0]),
                                   op.getDropout()->convertToDouble())
                         : x;
    std::vector<int64_t> lowRank = x.shape;
    lowRank.back() = a.shape[0];
    Tensor u = matmulTransposed(dropped, a, 1.0, lowRank);
    Tensor update =
        matmulTransposed(u, b, op.getScale()->convertToDouble(), shape);
    for (size_t i = 0; i < y.data.size(); ++i)
      y.data[i] += update.data[i];
  }
  values[op.getResult()] = std::move(y);
  return llvm::Error::success();
}

llvm::Error Evaluator::rope(Operation *op, Value inputValue,
                            Value positionsValue, double theta, int64_t headDim,
                            double sign) {
  const Tensor &x = get(inputValue), &positions = get(positionsValue);
  int64_t n = rows(x), features = last(x), half = headDim / 2;
  Tensor y = x;
  for (int64_t r = 0; r < n; ++r) {
    double position = positions.data[r];
    for (int64_t head = 0; head < features / headDim; ++head)
      for (int64_t i = 0; i < half; ++i) {
        double angle =
            sign * position * std::pow(theta, -2.0 * double(i) / headDim);
        int64_t first = r * features + head * headDim + i;
        int64_t second = first + half;
        double x1 = x.data[first], x2 = x.data[second];
        y.data[first] = x1 * std::cos(angle) - x2 * std::sin(angle);
        y.data[second] = x2 * std::cos(angle) + x1 * std::sin(angle);
      }
  }
  values[op->getResult(0)] = std::move(y);
  return llvm::Error::success();
}

llvm::Error Evaluator::attention(AttentionOp op) {
  const Tensor &q = get(op.getQuery()), &k = get(op.getKey()),
               &v = get(op.getValue());
  int64_t batch = q.shape[0], seq = q.shape[1], dh = op.getHeadDim();
  int64_t heads = op.getNumHeads(), group = heads / op.getNumKvHeads();
  int64_t qStride = heads * dh, kvStride = op.getNumKvHeads() * dh;
  double scale = op.getScaleOrDefault();
  Tensor out = Tensor::filled(q.shape, 0.0);
  std::vector<double> p(seq);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      int64_t g = h / group;
      for (int64_t t = 0; t < seq; ++t) {
        const double *qt = &q.data[(b * seq + t) * qStride + h * dh];
        double maximum = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j <= t; ++j) {
          const double *kj = &k.data[(b * seq + j) * kvStride + g * dh];
          double dot = 0;
          for (int64_t d = 0; d < dh; ++d)
            dot += qt[d] * kj[d];
          p[j] = scale * dot;
          maximum = std::max(maximum, p[j]);
        }
        double total = 0;
        for (int64_t j = 0; j <= t; ++j)
          total += p[j] = std::exp(p[j] - maximum);
        double *ot = &out.data[(b * seq + t) * qStride + h * dh];
        for (int64_t j = 0; j <= t; ++j) {
          const double *vj = &v.data[(b * seq + j) * kvStride + g * dh];
          for (int64_t d = 0; d < dh; ++d)
            ot[d] += p[j] / total * vj[d];
        }
      }
    }
  values[op.getResult()] = std::move(out);
  return llvm::Error::success();
}

llvm::Error Evaluator::attentionGrad(AttentionGradOp op) {
  const Tensor &q = get(op.getQuery()), &k = get(op.getKey()),
               &v = get(op.getValue()), &dout = get(op.getGrad());
  int64_t batch = q.shape[0], seq = q.shape[1], dh = op.getHeadDim();
  int64_t heads = op.getNumHeads(), group = heads / op.getNumKvHeads();
  int64_t qStride = heads * dh, kvStride = op.getNumKvHeads() * dh;
  double scale = op.getScaleOrDefault();
  Tensor dq = Tensor::filled(q.shape, 0.0), dk = Tensor::filled(k.shape, 0.0),
         dv = Tensor::filled(v.shape, 0.0);
  std::vector<double> p(seq), dp(seq);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      int64_t g = h / group;
      for (int64_t t = 0; t < seq; ++t) {
        int64_t qAt = (b * seq + t) * qStride + h * dh;
        // Recompute the probabilities of row t.
        double maximum = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j <= t; ++j) {
          int64_t kAt = (b * seq + j) * kvStride + g * dh;
          double dot = 0;
          for (int64_t d = 0; d < dh; ++d)
            dot += q.data[qAt + d] * k.data[kAt + d];
          p[j] = scale * dot;
          maximum = std::max(maximum, p[j]);
        }
        double total = 0;
        for (int64_t j = 0; j <= t; ++j)
          total += p[j] = std::exp(p[j] - maximum);
        double weighted = 0; // Σ_j p_j dp_j
        for (int64_t j = 0; j <= t; ++j) {
          p[j] /= total;
          int64_t vAt = (b * seq + j) * kvStride + g * dh;
          dp[j] = 0;
          for (int64_t d = 0; d < dh; ++d) {
            dp[j] += dout.data[qAt + d] * v.data[vAt + d];
            dv.data[vAt + d] += p[j] * dout.data[qAt + d];
          }
          weighted += p[j] * dp[j];
        }
        for (int64_t j = 0; j <= t; ++j) {
          double ds = p[j] * (dp[j] - weighted) * scale;
          int64_t kAt = (b * seq + j) * kvStride + g * dh;
          for (int64_t d = 0; d < dh; ++d) {
            dq.data[qAt + d] += ds * k.data[kAt + d];
            dk.data[kAt + d] += ds * q.data[qAt + d];
          }
        }
      }
    }
  values[op.getQueryGrad()] = std::move(dq);
  values[op.getKeyGrad()] = std::move(dk);
  values[op.getValueGrad()] = std::move(dv);
  return llvm::Error::success();
}

/// Mean cross-entropy of `logits` [..., vocab] against `labels`, its
/// gradient scaled by `lossGrad`, and every row's log-sum-exp.
struct CrossEntropyResult {
  double loss = 0;
  Tensor grad, lse;
};

llvm::Expected<CrossEntropyResult>
crossEntropyOf(Operation *op, const Tensor &logits, const Tensor &labels,
               int64_t ignoreIndex, double lossGrad) {
  int64_t n = rows(logits), vocab = last(logits);
  int64_t count = 0;
  for (int64_t r = 0; r < n; ++r) {
    int64_t label = int64_t(labels.data[r]);
    if (label == ignoreIndex)
      continue;
    if (label < 0 || label >= vocab)
      return opError(op, llvm::formatv("label {0} at position {1} is "
                                       "outside the vocabulary [0, {2})",
                                       label, r, vocab));
    ++count;
  }
  CrossEntropyResult result;
  result.grad = Tensor::filled(logits.shape, 0.0);
  result.lse = Tensor::filled(labels.shape, 0.0);
  double gradScale = count ? lossGrad / count : 0.0;
  for (int64_t r = 0; r < n; ++r) {
    const double *row = &logits.data[r * vocab];
    double maximum = *std::max_element(row, row + vocab);
    double total = 0;
    for (int64_t i = 0; i < vocab; ++i)
      total += std::exp(row[i] - maximum);
    double logZ = maximum + std::log(total);
    result.lse.data[r] = logZ;
    int64_t label = int64_t(labels.data[r]);
    if (label == ignoreIndex)
      continue;
    result.loss += logZ - row[label];
    for (int64_t i = 0; i < vocab; ++i)
      result.grad.data[r * vocab + i] =
          gradScale * (std::exp(row[i] - logZ) - (i == label ? 1.0 : 0.0));
  }
  if (count)
    result.loss /= count;
  return result;
}

llvm::Error Evaluator::crossEntropy(Operation *op, Value logitsValue,
                                    Value labelsValue, int64_t ignoreIndex,
                                    const Tensor *lossGrad) {
  auto result = crossEntropyOf(op, get(logitsValue), get(labelsValue),
                               ignoreIndex, lossGrad ? lossGrad->data[0] : 0);
  if (!result)
    return result.takeError();
  if (lossGrad)
    values[op->getResult(0)] = std::move(result->grad);
  else
    values[op->getResult(0)] = Tensor::scalar(result->loss);
  return llvm::Error::success();
}

/// linear_cross_entropy(_grad): the logits made in full (the oracle need
/// not save memory), then the plain cross-entropy.
llvm::Error Evaluator::linearCrossEntropy(Operation *op, Value input,
                                          Value weight, Value labels,
                                          int64_t ignoreIndex,
                                          const Tensor *lossGrad) {
  const Tensor &x = get(input), &w = get(weight);
  std::vector<int64_t> shape = x.shape;
  shape.back() = w.shape[0];
  Tensor logits = matmulTransposed(x, w, 1.0, shape);
  auto result = crossEntropyOf(op, logits, get(labels), ignoreIndex,
                               lossGrad ? lossGrad->data[0] : 0);
  if (!result)
    return result.takeError();
  if (!lossGrad) {
    values[op->getResult(0)] = Tensor::scalar(result->loss);
    values[op->getResult(1)] = std::move(result->lse);
    return llvm::Error::success();
  }
  // dX = dlogits · W = dlogits · (Wᵀ)ᵀ, dW = dlogitsᵀ · X = (dlogitsᵀ)·(Xᵀ)ᵀ
  const Tensor &dl = result->grad;
  values[op->getResult(0)] =
      matmulTransposed(dl, transposed(w), 1.0, x.shape);
  if (op->getNumResults() > 1)
    values[op->getResult(1)] =
        matmulTransposed(transposed(dl), transposed(x), 1.0, w.shape);
  return llvm::Error::success();
}

llvm::Error Evaluator::adamw(AdamWOp op) {
  Tensor param = get(op.getParam()), m = get(op.getFirstMoment()),
         v = get(op.getSecondMoment());
  const Tensor &grad = get(op.getGrad());
  double lr = get(op.getLr()).data[0];
  double step = get(op.getStep()).data[0];
  double beta1 = op.getBeta1().convertToDouble();
  double beta2 = op.getBeta2().convertToDouble();
  double eps = op.getEpsilon().convertToDouble();
  double decay = op.getWeightDecay().convertToDouble();
  double clip = 1.0;
  if (op.getGradNorm()) {
    double norm = get(op.getGradNorm()).data[0];
    clip =
        std::min(1.0, op.getMaxGradNorm()->convertToDouble() / (norm + 1e-6));
  }
  double correction1 = 1.0 - std::pow(beta1, step);
  double correction2 = 1.0 - std::pow(beta2, step);
  for (size_t i = 0; i < param.data.size(); ++i) {
    double g = grad.data[i] * clip;
    m.data[i] = beta1 * m.data[i] + (1 - beta1) * g;
    v.data[i] = beta2 * v.data[i] + (1 - beta2) * g * g;
    param.data[i] -= lr * decay * param.data[i];
    param.data[i] -= lr * (m.data[i] / correction1) /
                     (std::sqrt(v.data[i] / correction2) + eps);
  }
  values[op.getNewParam()] = std::move(param);
  values[op.getNewFirstMoment()] = std::move(m);
  values[op.getNewSecondMoment()] = std::move(v);
  return llvm::Error::success();
}

llvm::Error Evaluator::step(Operation *op) {
  return llvm::TypeSwitch<Operation *, llvm::Error>(op)
      .Case([&](EmbeddingOp op) { return embedding(op); })
      .Case([&](EmbeddingGradOp op) { return embeddingGrad(op); })
      .Case([&](RMSNormOp op) { return rmsNorm(op); })
      .Case([&](RMSNormGradOp op) { return rmsNormGrad(op); })
      .Case([&](LinearOp op) { return linear(op); })
      .Case([&](LinearGradInputOp op) {
        // dX = s · dY · W: transpose W to reuse x·wᵀ.
        const Tensor &w = get(op.getWeight());
        std::vector<int64_t> shape = get(op.getGrad()).shape;
        shape.back() = w.shape[1];
        values[op.getResult()] =
            matmulTransposed(get(op.getGrad()), transposed(w),
                             op.getScale().convertToDouble(), shape);
        return llvm::Error::success();
      })
      .Case([&](LinearGradWeightOp op) {
        values[op.getResult()] =
            weightGrad(get(op.getGrad()), get(op.getInput()),
                       op.getScale().convertToDouble());
        return llvm::Error::success();
      })
      .Case([&](AdapterGradOp op) {
        // dU = s·dY·B, dB = s·dYᵀ·U, dA = dUᵀ·X
        const Tensor &dy = get(op.getGrad());
        double scale = op.getScale().convertToDouble();
        Tensor du = matmulTransposed(dy, transposed(get(op.getLoraB())),
                                     scale, get(op.getU()).shape);
        values[op.getDb()] = weightGrad(dy, get(op.getU()), scale);
        if (op.getInput())
          values[op.getDa()] = weightGrad(du, get(op.getInput()), 1.0);
        values[op.getDu()] = std::move(du);
        return llvm::Error::success();
      })
      .Case([&](LowRankUpdateOp op) {
        Tensor y = get(op.getBase());
        Tensor update = matmulTransposed(get(op.getU()), get(op.getLoraB()),
                                         op.getScale().convertToDouble(),
                                         y.shape);
        for (size_t i = 0; i < y.data.size(); ++i)
          y.data[i] += update.data[i];
        values[op.getResult()] = std::move(y);
        return llvm::Error::success();
      })
      // The layout ops that lora-fuse-adapters introduces.
      .Case([&](tensor::ConcatOp op) -> llvm::Error {
        auto shape = shapeOf(op, op.getType());
        if (!shape)
          return shape.takeError();
        Tensor y = Tensor::filled(*shape, 0.0);
        int64_t dim = op.getDim();
        int64_t outer = 1, inner = 1;
        for (int64_t i = 0; i < dim; ++i)
          outer *= (*shape)[i];
        for (size_t i = dim + 1; i < shape->size(); ++i)
          inner *= (*shape)[i];
        int64_t offset = 0, width = (*shape)[dim] * inner;
        for (Value input : op.getInputs()) {
          const Tensor &x = get(input);
          int64_t chunk = x.shape[dim] * inner;
          for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < chunk; ++i)
              y.data[o * width + offset + i] = x.data[o * chunk + i];
          offset += chunk;
        }
        values[op.getResult()] = std::move(y);
        return llvm::Error::success();
      })
      .Case([&](tensor::ExtractSliceOp op) -> llvm::Error {
        const Tensor &x = get(op.getSource());
        if (!op.hasUnitStride() || !op.getSourceType().hasStaticShape() ||
            !op.getType().hasStaticShape() ||
            ShapedType::isDynamicShape(op.getStaticOffsets()) ||
            op.getSourceType().getRank() != op.getType().getRank())
          return opError(op, "only static, unit-stride, rank-preserving "
                             "slices are supported");
        auto shape = shapeOf(op, op.getType());
        if (!shape)
          return shape.takeError();
        Tensor y = Tensor::filled(*shape, 0.0);
        ArrayRef<int64_t> offsets = op.getStaticOffsets();
        int64_t rank = int64_t(shape->size());
        std::vector<int64_t> index(rank, 0);
        for (double &value : y.data) {
          int64_t flat = 0;
          for (int64_t d = 0; d < rank; ++d)
            flat = flat * x.shape[d] + offsets[d] + index[d];
          value = x.data[flat];
          for (int64_t d = rank - 1; d >= 0; --d) {
            if (++index[d] < (*shape)[d])
              break;
            index[d] = 0;
          }
        }
        values[op.getResult()] = std::move(y);
        return llvm::Error::success();
      })
      .Case([&](DropoutOp op) {
        values[op.getResult()] =
            dropout(get(op.getInput()), int64_t(get(op.getSeed()).data[0]),
                    op.getRate().convertToDouble());
        return llvm::Error::success();
      })
      .Case([&](RoPEOp op) {
        return rope(op, op.getInput(), op.getPositions(),
                    op.getTheta().convertToDouble(), op.getHeadDim(), 1.0);
      })
      .Case([&](RoPEGradOp op) {
        return rope(op, op.getGrad(), op.getPositions(),
                    op.getTheta().convertToDouble(), op.getHeadDim(), -1.0);
      })
      .Case([&](AttentionOp op) { return attention(op); })
      .Case([&](AttentionGradOp op) { return attentionGrad(op); })
      .Case([&](SwiGLUOp op) {
        Tensor y = get(op.getGate());
        const Tensor &up = get(op.getUp());
        for (size_t i = 0; i < y.data.size(); ++i)
          y.data[i] = y.data[i] * sigmoid(y.data[i]) * up.data[i];
        values[op.getResult()] = std::move(y);
        return llvm::Error::success();
      })
      .Case([&](SwiGLUGradOp op) {
        const Tensor &gate = get(op.getGate()), &up = get(op.getUp()),
                     &dy = get(op.getGrad());
        Tensor dGate = gate, dUp = gate;
        for (size_t i = 0; i < gate.data.size(); ++i) {
          double g = gate.data[i], s = sigmoid(g);
          dGate.data[i] = dy.data[i] * up.data[i] * (s + g * s * (1 - s));
          dUp.data[i] = dy.data[i] * g * s;
        }
        values[op.getGateGrad()] = std::move(dGate);
        values[op.getUpGrad()] = std::move(dUp);
        return llvm::Error::success();
      })
      .Case([&](AddOp op) {
        Tensor y = get(op.getLhs());
        const Tensor &rhs = get(op.getRhs());
        for (size_t i = 0; i < y.data.size(); ++i)
          y.data[i] += rhs.data[i];
        values[op.getResult()] = std::move(y);
        return llvm::Error::success();
      })
      .Case([&](CrossEntropyOp op) {
        return crossEntropy(op, op.getLogits(), op.getLabels(),
                            op.getIgnoreIndex(), nullptr);
      })
      .Case([&](CrossEntropyGradOp op) {
        return crossEntropy(op, op.getLogits(), op.getLabels(),
                            op.getIgnoreIndex(), &get(op.getLossGrad()));
      })
      .Case([&](CheckpointOp op) {
        values[op.getResult()] = get(op.getInput());
        return llvm::Error::success();
      })
      // One process: the sum over ranks is the rank's own gradient.
      .Case([&](AllReduceStartOp op) {
        values[op.getInFlight()] = get(op.getGradient());
        return llvm::Error::success();
      })
      .Case([&](AllReduceWaitOp op) {
        values[op.getResult()] = get(op.getInFlight());
        return llvm::Error::success();
      })
      .Case([&](LinearCrossEntropyOp op) {
        return linearCrossEntropy(op, op.getInput(), op.getWeight(),
                                  op.getLabels(), op.getIgnoreIndex(),
                                  nullptr);
      })
      .Case([&](LinearCrossEntropyGradOp op) {
        return linearCrossEntropy(op, op.getInput(), op.getWeight(),
                                  op.getLabels(), op.getIgnoreIndex(),
                                  &get(op.getLossGrad()));
      })
      .Case([&](GlobalNormOp op) {
        double squares = 0;
        for (Value input : op.getInputs())
          for (double x : get(input).data)
            squares += x * x;
        values[op.getNorm()] = Tensor::scalar(std::sqrt(squares));
        return llvm::Error::success();
      })
      .Case([&](AdamWOp op) { return adamw(op); })
      .Case([&](arith::ConstantOp op) -> llvm::Error {
        auto dense = dyn_cast<DenseElementsAttr>(op.getValue());
        if (!dense)
          return opError(op, "only dense tensor constants are supported");
        auto shape = shapeOf(op, op.getType());
        if (!shape)
          return shape.takeError();
        Tensor t = Tensor::filled(*shape, 0.0);
        if (isa<FloatType>(dense.getElementType())) {
          auto it = dense.getValues<APFloat>().begin();
          for (double &x : t.data)
            x = (*it++).convertToDouble();
        } else {
          auto it = dense.getValues<APInt>().begin();
          for (double &x : t.data)
            x = double((*it++).getSExtValue());
        }
        values[op.getResult()] = std::move(t);
        return llvm::Error::success();
      })
      .Case<arith::AddIOp, arith::AddFOp>([&](Operation *op) {
        Tensor y = get(op->getOperand(0));
        const Tensor &rhs = get(op->getOperand(1));
        for (size_t i = 0; i < y.data.size(); ++i)
          y.data[i] += rhs.data[i];
        values[op->getResult(0)] = std::move(y);
        return llvm::Error::success();
      })
      .Default([&](Operation *op) {
        return opError(op, "the reference evaluator does not implement it");
      });
}

llvm::Expected<std::vector<Tensor>>
Evaluator::run(func::FuncOp function, const std::vector<Tensor> &args) {
  if (!function.getBody().hasOneBlock())
    return opError(function, "expected a function with one block");
  if (args.size() != function.getNumArguments())
    return opError(function,
                   llvm::formatv("expected {0} arguments, got {1}",
                                 function.getNumArguments(), args.size()));
  for (auto [i, arg] : llvm::enumerate(function.getArguments())) {
    auto shape = shapeOf(function, arg.getType());
    if (!shape)
      return shape.takeError();
    if (*shape != args[i].shape ||
        int64_t(args[i].data.size()) != args[i].numElements())
      return opError(function, llvm::formatv("argument #{0}: shape does "
                                             "not match its type",
                                             i));
    values[arg] = args[i];
  }
  for (Operation &op : function.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      std::vector<Tensor> results;
      for (Value value : ret.getOperands())
        results.push_back(get(value));
      return results;
    }
    if (llvm::Error error = step(&op))
      return std::move(error);
  }
  return opError(function, "missing func.return");
}

llvm::Expected<std::vector<Tensor>>
mlir::lora::reference::evaluate(func::FuncOp function,
                                const std::vector<Tensor> &arguments) {
  return Evaluator().run(function, arguments);
}
