#include "engine/model_upscaler.h"

#include <gtest/gtest.h>

#include <cmath>

#include "../support/test_images.h"
#include "imaging/image_codec.h"
#include "imaging/pixel_buffer.h"

namespace tessera::engine {
namespace {

std::unique_ptr<ModelUpscaler> Load(const std::string& name, int tile = 0) {
  auto manifest = ReadManifest(DefaultModelDir());
  EXPECT_TRUE(manifest.ok()) << manifest.status().ToString();
  for (const auto& e : *manifest) {
    if (e.name == name) {
      auto up = ModelUpscaler::Load(DefaultModelDir(), e, tile);
      EXPECT_TRUE(up.ok()) << up.status().ToString();
      return up.ok() ? std::move(up).value() : nullptr;
    }
  }
  ADD_FAILURE() << "no model " << name;
  return nullptr;
}

imaging::PixelBuffer Upscale(const ModelUpscaler& up, const std::vector<uint8_t>& png) {
  auto in = imaging::DecodeImage(png, Deadline());
  EXPECT_TRUE(in.ok()) << in.status().ToString();
  auto out = up.Run(*in, Deadline(), nullptr);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return *imaging::ToPixels(*out);
}

struct Layout {
  int bands, bits, expect_bands;
};

class ChannelLayoutTest : public ::testing::TestWithParam<Layout> {};

TEST_P(ChannelLayoutTest, GreyAlphaAndSixteenBitInputsAreConvertedFirst) {
  test::InitImagingForTests();
  auto up = Load("realesr-animevideov3-x2");
  ASSERT_NE(up, nullptr);
  imaging::PixelBuffer out = Upscale(*up, test::GradientPng(12, 9, GetParam().bands, GetParam().bits));
  EXPECT_EQ(out.width, 24);
  EXPECT_EQ(out.height, 18);
  EXPECT_EQ(out.bands, GetParam().expect_bands);
  // The gradient runs left to right, dark to bright, in every layout.
  EXPECT_LT(out.data[0], out.data[(static_cast<size_t>(out.width) - 1) * out.bands]);
}

INSTANTIATE_TEST_SUITE_P(Layouts, ChannelLayoutTest,
                         ::testing::Values(Layout{1, 8, 3}, Layout{2, 8, 4}, Layout{3, 8, 3}, Layout{4, 8, 4},
                                           Layout{1, 16, 3}, Layout{3, 16, 3}, Layout{4, 16, 4}));

TEST(ModelUpscalerTest, OnePixelImagesWorkForEveryFamily) {
  test::InitImagingForTests();
  for (const char* name : {"realesr-animevideov3-x3", "up2x-conservative", "up4x-conservative", "cunet-noise1",
                           "cunet-x2"}) {
    auto up = Load(name);
    ASSERT_NE(up, nullptr);
    imaging::PixelBuffer out = Upscale(*up, test::SolidPng(1, 1, {180, 60, 20}));
    EXPECT_EQ(out.width, up->entry().scale) << name;
    EXPECT_NEAR(out.data[0], 180, 25) << name;
  }
}

// Small tiles join without visible seams: neighbours' pixels are the padding.
// Measured here: 55.6 dB for 32 px tiles against one whole-image tile (receptive
// fields deeper than the 10 px padding keep it from being exact); 40 dB leaves
// room for other inputs while still failing on any visible seam.
TEST(ModelUpscalerTest, SmallTilesJoinWithoutSeams) {
  test::InitImagingForTests();
  std::vector<uint8_t> png = test::TexturedPng(90, 70);
  imaging::PixelBuffer whole = Upscale(*Load("realesr-animevideov3-x2", 200), png);
  imaging::PixelBuffer tiled = Upscale(*Load("realesr-animevideov3-x2", 32), png);
  ASSERT_EQ(whole.data.size(), tiled.data.size());
  double sum = 0;
  for (size_t i = 0; i < whole.data.size(); ++i) {
    const double d = double(whole.data[i]) - tiled.data[i];
    sum += d * d;
  }
  const double psnr = 10 * std::log10(255.0 * 255.0 / std::max(sum / whole.data.size(), 1e-12));
  EXPECT_GT(psnr, 40.0);
  RecordProperty("tile32_vs_whole_psnr", std::to_string(psnr));
}

TEST(ModelUpscalerTest, TheSameInputGivesTheSameBytes) {
  test::InitImagingForTests();
  auto up = Load("up2x-conservative", 48);
  std::vector<uint8_t> png = test::TexturedPng(70, 50);
  EXPECT_EQ(Upscale(*up, png).data, Upscale(*up, png).data);
}

TEST(ModelUpscalerTest, ProgressCountsTilesAndTheDeadlineStopsWork) {
  test::InitImagingForTests();
  auto up = Load("realesr-animevideov3-x2", 32);
  auto in = imaging::DecodeImage(test::TexturedPng(70, 40), Deadline());
  size_t calls = 0, last_total = 0;
  auto out = up->Run(*in, Deadline(), [&](size_t done, size_t total) {
    ++calls;
    last_total = total;
    EXPECT_EQ(done, calls);
  });
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(last_total, 6u);  // 3 x 2 tiles of 32
  EXPECT_EQ(calls, 6u);
  Deadline cancelled;
  cancelled.Cancel();
  auto stopped = up->Run(*in, cancelled, nullptr);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), StatusCode::kTimeout);
}

}  // namespace
}  // namespace tessera::engine
