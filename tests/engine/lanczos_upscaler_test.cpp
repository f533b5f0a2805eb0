#include "engine/lanczos_upscaler.h"

#include <gtest/gtest.h>

#include <cmath>

#include "../support/test_images.h"
#include "imaging/image_codec.h"

namespace tessera::engine {
namespace {

TEST(LanczosUpscalerTest, ParsesFactorsInRange) {
  EXPECT_DOUBLE_EQ(*LanczosUpscaler::ParseFactor("x2"), 2.0);
  EXPECT_DOUBLE_EQ(*LanczosUpscaler::ParseFactor("4"), 4.0);
  EXPECT_DOUBLE_EQ(*LanczosUpscaler::ParseFactor("X0.5"), 0.5);
  EXPECT_DOUBLE_EQ(*LanczosUpscaler::ParseFactor("16"), 16.0);
  EXPECT_DOUBLE_EQ(*LanczosUpscaler::ParseFactor("0.1"), 0.1);
  for (const char* bad : {"", "x", "17", "0.05", "-2", "x2x", "realesr-animevideov3-x2", "nan"}) {
    auto r = LanczosUpscaler::ParseFactor(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
    }
  }
}

class LanczosRunTest : public ::testing::TestWithParam<double> {};

TEST_P(LanczosRunTest, OutputSizeMatchesThePredictionAndConstantsStayConstant) {
  const double factor = GetParam();
  test::InitImagingForTests();
  auto input = imaging::DecodeImage(test::SolidPng(37, 23, {12, 200, 99}), Deadline());
  ASSERT_TRUE(input.ok());
  LanczosUpscaler up(factor);
  auto out = up.Run(*input, Deadline(), nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  Size predicted = up.OutputSize({37, 23});
  EXPECT_EQ(static_cast<uint64_t>(out->width()), predicted.width);
  EXPECT_EQ(static_cast<uint64_t>(out->height()), predicted.height);
  EXPECT_EQ(predicted.width, std::max<uint64_t>(1, std::llround(37 * factor)));
  // A normalised kernel maps a constant image to the same constant, everywhere.
  auto png = imaging::EncodeImage(*out, imaging::OutputFormat::kPng, Deadline());
  ASSERT_TRUE(png.ok());
  test::DecodedPixels px = test::DecodePixels(*png);
  for (int y = 0; y < px.height; y += std::max(1, px.height / 7)) {
    for (int x = 0; x < px.width; x += std::max(1, px.width / 7)) {
      EXPECT_NEAR(px.at(x, y)[0], 12, 1);
      EXPECT_NEAR(px.at(x, y)[1], 200, 1);
      EXPECT_NEAR(px.at(x, y)[2], 99, 1);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Factors, LanczosRunTest, ::testing::Values(0.1, 0.5, 1.5, 2.0, 3.0, 4.0, 16.0));

TEST(LanczosUpscalerTest, TransparentPixelsDoNotBleedColour) {
  test::InitImagingForTests();
  // Fully transparent red everywhere: premultiplied resampling keeps alpha 0 and
  // must not turn the colour into garbage where alpha is 0 then back.
  auto input = imaging::DecodeImage(test::SolidPng(8, 8, {255, 0, 0, 0}), Deadline());
  ASSERT_TRUE(input.ok());
  auto out = LanczosUpscaler(2).Run(*input, Deadline(), nullptr);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->bands(), 4);
  auto png = imaging::EncodeImage(*out, imaging::OutputFormat::kPng, Deadline());
  test::DecodedPixels px = test::DecodePixels(*png);
  EXPECT_EQ(px.at(5, 5)[3], 0);
}

TEST(LanczosUpscalerTest, CancelledDeadlineGivesTimeout) {
  test::InitImagingForTests();
  auto input = imaging::DecodeImage(test::TexturedPng(256, 256), Deadline());
  ASSERT_TRUE(input.ok());
  Deadline cancelled;
  cancelled.Cancel();
  auto out = LanczosUpscaler(4).Run(*input, cancelled, nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kTimeout);
}

}  // namespace
}  // namespace tessera::engine
