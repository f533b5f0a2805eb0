#include "worker/batch_processor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "../support/test_images.h"
#include "engine/model_catalog.h"

namespace tessera::worker {
namespace {

class BatchProcessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::InitImagingForTests();
    options_.limits.ram_budget_bytes = 1ull << 30;
    options_.model_dir = engine::DefaultModelDir();
  }

  BatchOutcome Run(const std::vector<std::vector<uint8_t>>& images, std::string quality = "x2",
                   protocol::Engine engine = protocol::Engine::kLanczos, int32_t gpu_id = -1,
                   Deadline deadline = Deadline()) {
    protocol::Request r;
    r.engine = engine;
    quality_ = std::move(quality);
    r.quality = quality_;
    r.gpu_id = gpu_id;
    for (const auto& i : images) r.images.emplace_back(i);
    BatchProcessor p(options_);
    return p.Process(r, 0, deadline);
  }

  WorkerOptions options_;
  std::string quality_;
};

TEST_F(BatchProcessorTest, OutputsComeBackInInputOrder) {
  std::vector<std::vector<uint8_t>> images = {test::SolidPng(10, 6, {255, 0, 0}), test::SolidPng(5, 5, {0, 255, 0}),
                                              test::SolidPng(3, 9, {0, 0, 255})};
  BatchOutcome out = Run(images);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.outputs.size(), 3u);
  const int dims[3][2] = {{20, 12}, {10, 10}, {6, 18}};
  for (int i = 0; i < 3; ++i) {
    test::DecodedPixels px = test::DecodePixels(out.outputs[i]);
    EXPECT_EQ(px.width, dims[i][0]);
    EXPECT_EQ(px.height, dims[i][1]);
    EXPECT_NEAR(px.at(1, 1)[i], 255, 1) << "image " << i;
    EXPECT_NEAR(px.at(1, 1)[(i + 1) % 3], 0, 1) << "image " << i;
  }
  EXPECT_EQ(out.engine_description, "lanczos x2");
  EXPECT_EQ(out.device, "cpu");
}

TEST_F(BatchProcessorTest, ABadImageFailsTheWholeBatchAndNamesItsIndex) {
  std::vector<uint8_t> corrupt = test::TexturedPng(32, 32);
  corrupt.resize(corrupt.size() / 2);
  BatchOutcome out = Run({test::SolidPng(4, 4, {1, 2, 3}), corrupt});
  EXPECT_EQ(out.status.code(), StatusCode::kBadImage);
  EXPECT_EQ(out.status.message().rfind("image 1:", 0), 0u) << out.status.message();
  EXPECT_TRUE(out.outputs.empty());
}

std::vector<std::vector<uint8_t>> MixedBatch() {
  std::vector<std::vector<uint8_t>> images;
  for (int i = 0; i < 7; ++i) images.push_back(test::TexturedPng(17 + 5 * i, 23 - 2 * i));
  return images;
}

TEST_F(BatchProcessorTest, PipelinedAndOneAtATimeGiveTheSameBytes) {
  for (auto [engine, quality] : {std::pair{protocol::Engine::kLanczos, "x2"},
                                 std::pair{protocol::Engine::kRealEsrgan, "realesr-animevideov3-x2"}}) {
    options_.pipeline_depth = 0;
    BatchOutcome sequential = Run(MixedBatch(), quality, engine);
    options_.pipeline_depth = 1;
    BatchOutcome pipelined = Run(MixedBatch(), quality, engine);
    ASSERT_TRUE(sequential.status.ok()) << sequential.status.ToString();
    ASSERT_TRUE(pipelined.status.ok()) << pipelined.status.ToString();
    EXPECT_FALSE(sequential.pipelined);
    EXPECT_TRUE(pipelined.pipelined);
    ASSERT_EQ(pipelined.outputs.size(), 7u);
    for (size_t i = 0; i < 7; ++i) EXPECT_EQ(pipelined.outputs[i], sequential.outputs[i]) << quality << " image " << i;
  }
}

TEST_F(BatchProcessorTest, ABadImageMidBatchStopsThePipelineAndNamesItsIndex) {
  std::vector<std::vector<uint8_t>> images = MixedBatch();
  // A broken zlib header at the start of the pixel data (the image header still
  // reads fine): libvips 8.14 sometimes "decodes" it (src/imaging/image_codec.cpp).
  const std::string idat = "IDAT";
  auto at = std::search(images[4].begin(), images[4].end(), idat.begin(), idat.end());
  ASSERT_NE(at, images[4].end());
  at[4] = 0xff;
  at[5] = 0xff;
  options_.pipeline_depth = 2;
  BatchOutcome out = Run(images);
  EXPECT_EQ(out.status.code(), StatusCode::kBadImage) << out.status.ToString();
  EXPECT_EQ(out.status.message().rfind("image 4:", 0), 0u) << out.status.message();
  EXPECT_TRUE(out.outputs.empty());
}

TEST_F(BatchProcessorTest, ACancelledDeadlineEndsAPipelinedBatchWithTimeout) {
  Deadline cancelled;
  cancelled.Cancel();
  options_.pipeline_depth = 1;
  BatchOutcome out = Run(MixedBatch(), "x2", protocol::Engine::kLanczos, -1, cancelled);
  EXPECT_EQ(out.status.code(), StatusCode::kTimeout) << out.status.ToString();
  EXPECT_TRUE(out.outputs.empty());
}

// A budget that holds the batch one image at a time but not the pipeline's
// images in flight: the batch still succeeds, sequentially.
TEST_F(BatchProcessorTest, ABudgetTooSmallForThePipelineRunsOneImageAtATime) {
  options_.pipeline_depth = 0;
  BatchOutcome sequential = Run(MixedBatch());
  ASSERT_TRUE(sequential.status.ok()) << sequential.status.ToString();
  options_.pipeline_depth = 1;
  options_.limits.ram_budget_bytes = sequential.estimated_peak_bytes;
  BatchOutcome out = Run(MixedBatch());
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_FALSE(out.pipelined);
  EXPECT_EQ(out.outputs, sequential.outputs);
  options_.limits.ram_budget_bytes = 1ull << 30;
  EXPECT_TRUE(Run(MixedBatch()).pipelined);
}

TEST_F(BatchProcessorTest, TheAutomaticPipelineDepthFollowsTheCoreCount) {
  EXPECT_EQ(EffectivePipelineDepth(0), 0u);
  EXPECT_EQ(EffectivePipelineDepth(3), 3u);
  EXPECT_EQ(EffectivePipelineDepth(-1), std::thread::hardware_concurrency() >= 2 ? 1u : 0u);
}

TEST_F(BatchProcessorTest, ABombIsRefusedFromItsHeader) {
  options_.limits.max_image_pixels = 1'000'000;
  BatchOutcome out = Run({test::SolidPng(4, 4, {1, 2, 3}), test::PngClaimingSize(50000, 50000)});
  EXPECT_EQ(out.status.code(), StatusCode::kLimit);
  EXPECT_NE(out.status.message().find("image 1 is 50000x50000"), std::string::npos) << out.status.message();
}

TEST_F(BatchProcessorTest, TheMemoryEstimateLimitsTheBatchAndSaysHowManyFit) {
  // Each 256x256 x4 output is 4 MiB raw; 16 MiB engine slack plus ~5 MiB per image.
  options_.limits.ram_budget_bytes = 40ull << 20;
  std::vector<std::vector<uint8_t>> images(8, test::SolidPng(256, 256, {9, 9, 9}));
  BatchOutcome out = Run(images, "4");
  EXPECT_EQ(out.status.code(), StatusCode::kLimit);
  EXPECT_NE(out.status.message().find("send at most"), std::string::npos) << out.status.message();
  images.resize(2);
  EXPECT_TRUE(Run(images, "4").status.ok());
}

TEST_F(BatchProcessorTest, ModelEnginesRunTheirFamilysModels) {
  struct Case {
    protocol::Engine engine;
    std::string quality;
    std::string model;
    int scale;
  };
  for (const Case& c : {Case{protocol::Engine::kRealEsrgan, "x2", "realesr-animevideov3-x2", 2},
                        Case{protocol::Engine::kRealCugan, "up2x-conservative", "up2x-conservative", 2},
                        Case{protocol::Engine::kWaifu2x, "", "cunet-noise0-x2", 2}}) {
    BatchOutcome out = Run({test::SolidPng(6, 5, {200, 120, 40})}, c.quality, c.engine);
    ASSERT_TRUE(out.status.ok()) << c.model << ": " << out.status.ToString();
    EXPECT_EQ(out.engine_description.rfind(c.model, 0), 0u) << out.engine_description;
    test::DecodedPixels px = test::DecodePixels(out.outputs[0]);
    EXPECT_EQ(px.width, 6 * c.scale);
    EXPECT_EQ(px.height, 5 * c.scale);
    // A flat colour stays close to itself through any of these models.
    EXPECT_NEAR(px.at(5, 4)[0], 200, 12) << c.model;
    EXPECT_NEAR(px.at(5, 4)[2], 40, 12) << c.model;
  }
}

TEST_F(BatchProcessorTest, UnknownOrMismatchedModelsAreInvalid) {
  BatchOutcome unknown = Run({test::SolidPng(4, 4, {1, 2, 3})}, "no-such-model", protocol::Engine::kRealEsrgan);
  EXPECT_EQ(unknown.status.code(), StatusCode::kInvalid);
  EXPECT_NE(unknown.status.message().find("unknown model 'no-such-model'"), std::string::npos);
  BatchOutcome wrong = Run({test::SolidPng(4, 4, {1, 2, 3})}, "up2x-conservative", protocol::Engine::kRealEsrgan);
  EXPECT_EQ(wrong.status.code(), StatusCode::kInvalid);
  EXPECT_NE(wrong.status.message().find("realcugan"), std::string::npos);
  BatchOutcome scale = Run({test::SolidPng(4, 4, {1, 2, 3})}, "x3", protocol::Engine::kWaifu2x);
  EXPECT_EQ(scale.status.code(), StatusCode::kInvalid);
}

TEST_F(BatchProcessorTest, EmptyQualityFallsBackToTheScaleFlag) {
  options_.scale = "3";
  BatchOutcome out = Run({test::SolidPng(4, 5, {1, 2, 3})}, "");
  ASSERT_TRUE(out.status.ok());
  test::DecodedPixels px = test::DecodePixels(out.outputs[0]);
  EXPECT_EQ(px.width, 12);
  EXPECT_EQ(px.height, 15);
}

TEST_F(BatchProcessorTest, AnUnparsableScaleIsInvalid) {
  EXPECT_EQ(Run({test::SolidPng(4, 4, {1, 2, 3})}, "huge").status.code(), StatusCode::kInvalid);
}

TEST_F(BatchProcessorTest, AnUnusableGpuFallsBackOrIsRefusedByPolicy) {
  BatchOutcome fell_back = Run({test::SolidPng(4, 4, {1, 2, 3})}, "x2", protocol::Engine::kLanczos, 99);
  ASSERT_TRUE(fell_back.status.ok());
  EXPECT_TRUE(fell_back.device_fell_back);
  EXPECT_EQ(fell_back.device, "cpu");

  options_.gpu_fallback = false;
  BatchOutcome refused = Run({test::SolidPng(4, 4, {1, 2, 3})}, "x2", protocol::Engine::kLanczos, 99);
  EXPECT_EQ(refused.status.code(), StatusCode::kDeviceUnavailable);
  EXPECT_NE(refused.status.message().find("gpu 99"), std::string::npos);
}

TEST_F(BatchProcessorTest, EachOutputFormatIsHonoured) {
  options_.format = imaging::OutputFormat::kWebp;
  BatchOutcome out = Run({test::SolidPng(4, 4, {1, 2, 3})});
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(std::string(out.outputs[0].begin() + 8, out.outputs[0].begin() + 12), "WEBP");
}

}  // namespace
}  // namespace tessera::worker
