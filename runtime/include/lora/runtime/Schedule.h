//===- Schedule.h - learning-rate schedules ---------------------*- C++ -*-===//
//
// As the Hugging Face Trainer's: linear warmup from 0, then constant,
// linear decay to 0, or cosine decay to 0, over `totalSteps`.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_SCHEDULE_H
#define LORA_RUNTIME_SCHEDULE_H

#include "lora/runtime/Status.h"

#include <cstdint>
#include <string>

namespace lora::runtime {

struct Schedule {
  enum class Kind { Constant, Linear, Cosine } kind = Kind::Linear;
  double peak = 1e-3;
  int64_t warmupSteps = 0;
  int64_t totalSteps = 1;

  /// "constant", "linear" or "cosine"; an error names the value.
  static Status parseKind(const std::string &name, Kind &kind);
  /// The learning rate of step `step`, counted from 0.
  double at(int64_t step) const;
};

} // namespace lora::runtime

#endif // LORA_RUNTIME_SCHEDULE_H
