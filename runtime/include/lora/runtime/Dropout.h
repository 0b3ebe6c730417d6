//===- Dropout.h - the dropout mask every backend agrees on -----*- C++ -*-===//
//
// `lora.dropout` keeps element `index` of a tensor under `seed` iff
//   u = (splitmix64(splitmix64(seed) ^ index) >> 11) · 2^-53  >=  rate.
// A counter-based mask: the forward and the backward, and every backend,
// rebuild it from the seed without storing it.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_DROPOUT_H
#define LORA_RUNTIME_DROPOUT_H

#include <cstdint>

namespace lora::runtime {

/// The splitmix64 finalizer (Steele, Lea, Flood 2014).
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// A uniform double in [0, 1) for element `index` under `seed`.
constexpr double dropoutUniform(int64_t seed, uint64_t index) {
  return double(splitmix64(splitmix64(uint64_t(seed)) ^ index) >> 11) *
         0x1.0p-53;
}

/// True when dropout at `rate` keeps element `index` under `seed`.
constexpr bool dropoutKeeps(int64_t seed, uint64_t index, double rate) {
  return dropoutUniform(seed, index) >= rate;
}

} // namespace lora::runtime

#endif // LORA_RUNTIME_DROPOUT_H
