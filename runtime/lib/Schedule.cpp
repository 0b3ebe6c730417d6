//===- Schedule.cpp - learning-rate schedules -----------------------------===//

#include "lora/runtime/Schedule.h"

#include <algorithm>
#include <cmath>

namespace lora::runtime {

Status Schedule::parseKind(const std::string &name, Kind &kind) {
  if (name == "constant" || name == "constant_with_warmup")
    kind = Kind::Constant;
  else if (name == "linear")
    kind = Kind::Linear;
  else if (name == "cosine")
    kind = Kind::Cosine;
  else
    return Status::error("--lr_scheduler_type: expected constant, linear or "
                         "cosine, got '" +
                         name + "'");
  return Status::success();
}

double Schedule::at(int64_t step) const {
  if (step < warmupSteps)
    return peak * double(step) / double(std::max<int64_t>(1, warmupSteps));
  double progress = double(step - warmupSteps) /
                    double(std::max<int64_t>(1, totalSteps - warmupSteps));
  progress = std::min(1.0, progress);
  switch (kind) {
  case Kind::Constant:
    return peak;
  case Kind::Linear:
    return peak * (1.0 - progress);
  case Kind::Cosine:
    return peak * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return peak;
}

} // namespace lora::runtime
