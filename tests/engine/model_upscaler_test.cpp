#include "engine/model_upscaler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <optional>

#include "../support/test_images.h"
#include "imaging/image_codec.h"
#include "imaging/pixel_buffer.h"
#include "util/failpoint.h"

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

// Chunks of tiles (engine/memory_planner.h) change when tiles run, never what
// they compute: every way of chunking gives the same floats.
class ChunkingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DisarmFailpoints();
    up_ = Load("realesr-animevideov3-x2", 32);
    ASSERT_NE(up_, nullptr);
    Tensor rgb = Tensor::Chw(3, 70, 90);
    for (size_t i = 0; i < rgb.data.size(); ++i) rgb.data[i] = static_cast<float>((i * 7919) % 256) / 255.f;
    rgb_ = std::move(rgb);
    // The reference: one tile at a time (a probe that cannot read: the old behaviour).
    Plan(std::nullopt, nullptr);
    auto one_by_one = up_->RunPlanar(rgb_, Deadline(), nullptr, &report_);
    ASSERT_TRUE(one_by_one.ok()) << one_by_one.status().ToString();
    reference_ = std::move(one_by_one).value();
    ASSERT_EQ(report_.tiles, 9u);  // 3 x 3 tiles of 32
    ASSERT_EQ(report_.largest_chunk, 1u);
    ASSERT_GT(report_.tile_cost_bytes, 0u);
    tile_cost_ = report_.tile_cost_bytes;
  }
  void TearDown() override { DisarmFailpoints(); }

  void Plan(std::optional<uint64_t> free, std::shared_ptr<MemoryBudget> budget, int retries = 3) {
    MemoryPlanOptions options;
    options.oom_retries = retries;
    options.probe = [free] { return free; };
    up_->SetMemoryPlan(options, std::move(budget));
  }
  Result<Tensor> RunWithReport() { return up_->RunPlanar(rgb_, Deadline(), nullptr, &report_); }

  std::unique_ptr<ModelUpscaler> up_;
  Tensor rgb_;
  Tensor reference_;
  TilingReport report_;
  uint64_t tile_cost_ = 0;
};

TEST_F(ChunkingTest, TheTileCostComesFromTheExecutorsLiveBlobs) {
  // animevideov3 keeps 64-channel maps of the padded 52x52 tile alive: at least
  // two of them (a layer's input and output) are in the measured cost.
  EXPECT_GE(tile_cost_, 2ull * 64 * 52 * 52 * sizeof(float));
  EXPECT_LT(tile_cost_, 64ull << 20);
}

TEST_F(ChunkingTest, AnyChunkSizeGivesTheSameFloats) {
  for (uint64_t free_tiles : {1, 3, 100}) {
    // free x 0.45 = budget: room for about free_tiles tiles.
    Plan(static_cast<uint64_t>(static_cast<double>(tile_cost_ * free_tiles) / 0.45) + 1, nullptr);
    auto out = RunWithReport();
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(report_.largest_chunk, std::min<uint64_t>(free_tiles, 9)) << free_tiles;
    EXPECT_EQ(out->data, reference_.data) << "free for " << free_tiles << " tiles";
  }
}

// The probe says plenty is free, but the process's budget holds fewer tiles:
// the budget's refusal is an out-of-memory, the chunk shrinks and succeeds.
// (A larger image in tiles of 64 here, so that chunks are above the 16 MiB floor
// of a shrink.)
TEST_F(ChunkingTest, ABudgetRefusalShrinksTheChunkAndTheOutputIsUnchanged) {
  up_ = Load("realesr-animevideov3-x2", 64);
  ASSERT_NE(up_, nullptr);
  Tensor rgb = Tensor::Chw(3, 150, 150);
  for (size_t i = 0; i < rgb.data.size(); ++i) rgb.data[i] = static_cast<float>((i * 7919) % 256) / 255.f;
  Plan(std::nullopt, nullptr);
  auto one_by_one = up_->RunPlanar(rgb, Deadline(), nullptr, &report_);
  ASSERT_TRUE(one_by_one.ok()) << one_by_one.status().ToString();
  ASSERT_EQ(report_.tiles, 9u);
  const uint64_t cost = report_.tile_cost_bytes;
  ASSERT_GT(cost * 5, 16ull << 20) << "the shrink floor would stop the test";

  auto budget = std::make_shared<MemoryBudget>(cost * 5);
  Plan(cost * 100, budget, /*retries=*/5);
  auto out = up_->RunPlanar(rgb, Deadline(), nullptr, &report_);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_GE(report_.oom_retries, 1);
  EXPECT_LE(report_.largest_chunk, 5u);
  EXPECT_EQ(out->data, one_by_one->data);
  EXPECT_EQ(budget->used(), 0u);  // every reservation given back
}

TEST_F(ChunkingTest, AllocationFailuresAreRetriedThenTheRunSucceeds) {
  Plan(tile_cost_ * 100, nullptr);
  ASSERT_TRUE(ArmFailpoints("engine.tile_alloc*2").ok());
  auto out = RunWithReport();
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(report_.oom_retries, 2);
  EXPECT_EQ(out->data, reference_.data);
}

TEST_F(ChunkingTest, OutOfMemoryAfterEveryRetryIsAnOutOfMemoryError) {
  Plan(tile_cost_ * 100, nullptr, /*retries=*/3);
  ASSERT_TRUE(ArmFailpoints("engine.tile_alloc").ok());
  auto out = RunWithReport();
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(out.status().message().find("after 3 retries"), std::string::npos) << out.status().message();
  EXPECT_EQ(report_.oom_retries, 3);
}

TEST_F(ChunkingTest, OtherErrorsAreNotRetried) {
  Plan(tile_cost_ * 100, nullptr);
  Deadline cancelled;
  cancelled.Cancel();
  report_.oom_retries = -1;
  auto out = up_->RunPlanar(rgb_, cancelled, nullptr, &report_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kTimeout);
  EXPECT_EQ(report_.oom_retries, 0);
  EXPECT_EQ(report_.tiles, 9u);
}

}  // namespace
}  // namespace tessera::engine
