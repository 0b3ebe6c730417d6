//===- DTypeTest.cpp - 16-bit float conversions ---------------------------===//

#include "lora/runtime/DType.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

using namespace lora::runtime;

TEST(DType, NamesRoundTrip) {
  for (DType dtype :
       {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32,
        DType::I16, DType::I8, DType::U8, DType::Bool})
    EXPECT_EQ(parseDType(dtypeName(dtype)), dtype) << dtypeName(dtype);
  EXPECT_FALSE(parseDType("f32").has_value()); // names are case sensitive
  EXPECT_FALSE(parseDType("F8_E4M3").has_value());
  EXPECT_EQ(dtypeSize(DType::BF16), 2u);
  EXPECT_EQ(dtypeSize(DType::I64), 8u);
}

TEST(DType, F16KnownValues) {
  EXPECT_EQ(f32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(f32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(f32ToF16(65504.0f), 0x7bff);              // largest finite
  EXPECT_EQ(f32ToF16(65520.0f), 0x7c00);              // rounds to infinity
  EXPECT_EQ(f32ToF16(65519.0f), 0x7bff);              // just below halfway
  EXPECT_EQ(f32ToF16(std::ldexp(1.0f, -24)), 1);      // smallest subnormal
  EXPECT_EQ(f32ToF16(std::ldexp(1.0f, -25)), 0);      // halfway to 0: even
  EXPECT_EQ(f32ToF16(std::ldexp(3.0f, -26)), 1);      // 0.75 ulp rounds up
  EXPECT_EQ(f32ToF16(std::ldexp(1.0f, -14)), 0x0400); // smallest normal
  EXPECT_EQ(f32ToF16(0.1f), 0x2e66);
  EXPECT_EQ(f32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00); // tie to even
  EXPECT_EQ(f32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f16ToF32(0x3555), 0.333251953125f); // nearest half to 1/3
  EXPECT_TRUE(std::isnan(f16ToF32(f32ToF16(NAN))));
  EXPECT_EQ(f16ToF32(0xfc00), -INFINITY);
}

TEST(DType, EveryF16SurvivesARoundTrip) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    float value = f16ToF32(uint16_t(bits));
    if (std::isnan(value))
      continue;
    ASSERT_EQ(f32ToF16(value), bits) << "f16 bits " << bits;
  }
}

TEST(DType, BF16RoundsToNearestEven) {
  EXPECT_EQ(f32ToBF16(1.0f), 0x3f80);
  EXPECT_EQ(bf16ToF32(0x3f80), 1.0f);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to even (1).
  EXPECT_EQ(f32ToBF16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: even is 2^-6.
  EXPECT_EQ(f32ToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(f32ToBF16(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(bf16ToF32(f32ToBF16(NAN))));
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    float value = bf16ToF32(uint16_t(bits));
    if (!std::isnan(value))
      ASSERT_EQ(f32ToBF16(value), bits) << "bf16 bits " << bits;
  }
}

/// widenToF32 (safetensors reads, the trainer's reads of bf16 parameters)
/// from unaligned bytes of every float type; integers refused.
TEST(DType, WidenToF32FromEveryFloatType) {
  std::vector<uint8_t> bytes(1 + 2 * sizeof(double));
  uint8_t *unaligned = bytes.data() + 1;
  float out[2] = {0, 0};
  float f32[2] = {1.5f, -2.25f};
  std::memcpy(unaligned, f32, sizeof f32);
  ASSERT_TRUE(widenToF32(DType::F32, unaligned, 2, out));
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -2.25f);
  double f64[2] = {0.1, -3.0};
  std::memcpy(unaligned, f64, sizeof f64);
  ASSERT_TRUE(widenToF32(DType::F64, unaligned, 2, out));
  EXPECT_EQ(out[0], 0.1f);
  EXPECT_EQ(out[1], -3.0f);
  uint16_t bf16[2] = {0x3fc0, 0xc010}; // 1.5, -2.25
  std::memcpy(unaligned, bf16, sizeof bf16);
  ASSERT_TRUE(widenToF32(DType::BF16, unaligned, 2, out));
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -2.25f);
  uint16_t f16[2] = {0x3e00, 0xc080}; // 1.5, -2.25
  std::memcpy(unaligned, f16, sizeof f16);
  ASSERT_TRUE(widenToF32(DType::F16, unaligned, 2, out));
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -2.25f);
  EXPECT_FALSE(widenToF32(DType::I32, unaligned, 2, out));
}
