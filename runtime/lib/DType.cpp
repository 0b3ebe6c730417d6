//===- DType.cpp - element types of stored tensors ------------------------===//

#include "lora/runtime/DType.h"

#include <cmath>
#include <cstring>

namespace lora::runtime {

namespace {
struct DTypeEntry {
  DType dtype;
  std::string_view name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::Bool, "BOOL", 1},
};

uint32_t bitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}
float floatOf(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}
} // namespace

std::string_view dtypeName(DType dtype) {
  return kDTypes[static_cast<int>(dtype)].name;
}

size_t dtypeSize(DType dtype) { return kDTypes[static_cast<int>(dtype)].size; }

std::optional<DType> parseDType(std::string_view name) {
  for (const DTypeEntry &entry : kDTypes)
    if (entry.name == name)
      return entry.dtype;
  return std::nullopt;
}

bool widenToF32(DType dtype, const void *data, size_t count, float *out) {
  auto *bytes = static_cast<const uint8_t *>(data);
  switch (dtype) {
  case DType::F32:
    std::memcpy(out, bytes, count * sizeof(float));
    return true;
  case DType::F64:
    for (size_t i = 0; i < count; ++i) {
      double value;
      std::memcpy(&value, bytes + 8 * i, 8);
      out[i] = float(value);
    }
    return true;
  case DType::BF16:
  case DType::F16:
    for (size_t i = 0; i < count; ++i) {
      uint16_t bits;
      std::memcpy(&bits, bytes + 2 * i, 2);
      out[i] = dtype == DType::BF16 ? bf16ToF32(bits) : f16ToF32(bits);
    }
    return true;
  default:
    return false;
  }
}

float bf16ToF32(uint16_t bits) { return floatOf(uint32_t(bits) << 16); }

uint16_t f32ToBF16(float value) {
  uint32_t bits = bitsOf(value);
  if (std::isnan(value)) // Keep it a NaN: set a mantissa bit that survives.
    return uint16_t((bits >> 16) | 0x40);
  uint32_t roundingBias = 0x7fff + ((bits >> 16) & 1);
  return uint16_t((bits + roundingBias) >> 16);
}

float f16ToF32(uint16_t bits) {
  float sign = (bits & 0x8000) ? -1.0f : 1.0f;
  int exponent = (bits >> 10) & 0x1f;
  int mantissa = bits & 0x3ff;
  if (exponent == 0) // Zero or subnormal: mantissa · 2^-24.
    return sign * std::ldexp(float(mantissa), -24);
  if (exponent == 31)
    return mantissa ? std::numeric_limits<float>::quiet_NaN()
                    : sign * std::numeric_limits<float>::infinity();
  return sign * std::ldexp(float(mantissa | 0x400), exponent - 25);
}

uint16_t f32ToF16(float value) {
  uint16_t sign = uint16_t((bitsOf(value) >> 16) & 0x8000);
  if (std::isnan(value))
    return sign | 0x7e00;
  float magnitude = std::fabs(value);
  // 65520 is halfway between the largest half (65504) and 2^16: it and
  // everything above round to infinity.
  if (magnitude >= 65520.0f)
    return sign | 0x7c00;
  if (magnitude < std::ldexp(1.0f, -14)) {
    // Subnormal: the mantissa counts units of 2^-24; a carry into 1024
    // yields the smallest normal, whose bits are exactly 0x400.
    return sign | uint16_t(std::nearbyint(magnitude * std::ldexp(1.0f, 24)));
  }
  int exponent;
  std::frexp(magnitude, &exponent); // magnitude = m · 2^exponent, m in [.5, 1)
  exponent -= 1;                    // now magnitude / 2^exponent is in [1, 2)
  float scaled = std::nearbyint(std::ldexp(magnitude, 10 - exponent));
  if (scaled >= 2048.0f) {
    scaled = 1024.0f;
    ++exponent;
  }
  if (exponent + 15 >= 31)
    return sign | 0x7c00;
  return sign | uint16_t((exponent + 15) << 10) | uint16_t(int(scaled) - 1024);
}

} // namespace lora::runtime
