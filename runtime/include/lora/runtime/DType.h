//===- DType.h - element types of stored tensors ----------------*- C++ -*-===//
//
// The element types safetensors files use, and conversions of the 16-bit
// float formats to and from f32.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_DTYPE_H
#define LORA_RUNTIME_DTYPE_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lora::runtime {

/// Element type of a stored tensor, named as safetensors names them.
enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

/// The safetensors name: "F32", "BF16", ...
std::string_view dtypeName(DType dtype);
/// Parses a safetensors dtype name; std::nullopt for an unknown one.
std::optional<DType> parseDType(std::string_view name);
/// Bytes per element.
size_t dtypeSize(DType dtype);

/// `count` elements of type `dtype` at `data` (any alignment) as f32 into
/// `out`: exact for F32, BF16 and F16, rounded for F64. False for a type
/// that is not a float.
bool widenToF32(DType dtype, const void *data, size_t count, float *out);

/// bfloat16 bits to f32 (exact).
float bf16ToF32(uint16_t bits);
/// f32 to bfloat16 bits, rounding to nearest even; NaN stays NaN.
uint16_t f32ToBF16(float value);
/// IEEE binary16 bits to f32 (exact, subnormals included).
float f16ToF32(uint16_t bits);
/// f32 to IEEE binary16 bits, rounding to nearest even, overflow to inf.
uint16_t f32ToF16(float value);

} // namespace lora::runtime

#endif // LORA_RUNTIME_DTYPE_H
