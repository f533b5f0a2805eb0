#include "worker/oom_fallback.h"

#include <gtest/gtest.h>

#include "../engine/gpu/fake_device_backend.h"
#include "../engine/gpu/fake_device_memory.h"
#include "../support/test_images.h"
#include "engine/model_upscaler.h"
#include "imaging/image_codec.h"
#include "imaging/pixel_buffer.h"

namespace tessera::worker {
namespace {

using engine::gpu::CachingAllocator;
using engine::gpu::CachingAllocatorOptions;
using engine::gpu::FakeDeviceBackend;
using engine::gpu::FakeDeviceMemory;

class OomFallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::InitImagingForTests();
    auto manifest = engine::ReadManifest(engine::DefaultModelDir());
    ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
    for (const auto& e : *manifest) {
      if (e.name == "realesr-animevideov3-x2") entry_ = e;
    }
    ASSERT_FALSE(entry_.name.empty());
    auto cpu = engine::ModelUpscaler::Load(engine::DefaultModelDir(), entry_, 32);
    ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
    cpu_ = std::move(cpu).value();
    auto image = imaging::DecodeImage(test::GradientPng(40, 30, 3, 8), Deadline());
    ASSERT_TRUE(image.ok());
    image_ = std::move(image).value();
  }

  // The model on a fake GPU whose memory budget is `budget` bytes.
  std::shared_ptr<engine::ModelUpscaler> OnFakeGpu(uint64_t budget) {
    CachingAllocatorOptions options;
    options.budget_bytes = budget;
    auto allocator = CachingAllocator::Create(std::make_shared<FakeDeviceMemory>(8ull << 30), options);
    auto up = engine::ModelUpscaler::Load(engine::DefaultModelDir(), entry_, 32,
                                          engine::BackendSet{std::make_shared<FakeDeviceBackend>(allocator), nullptr});
    EXPECT_TRUE(up.ok()) << up.status().ToString();
    return up.ok() ? std::shared_ptr<engine::ModelUpscaler>(std::move(up).value()) : nullptr;
  }

  CpuUpscalerFn Cpu() {
    return [this]() -> Result<std::shared_ptr<const engine::Upscaler>> {
      ++cpu_resolved_;
      return std::shared_ptr<const engine::Upscaler>(cpu_);
    };
  }

  std::vector<uint8_t> Pixels(const imaging::Image& image) { return imaging::ToPixels(image)->data; }

  engine::ModelEntry entry_;
  std::shared_ptr<engine::ModelUpscaler> cpu_;
  imaging::Image image_;
  int cpu_resolved_ = 0;
};

TEST_F(OomFallbackTest, AGpuOutOfMemoryRerunsTheWholeImageOnTheCpu) {
  auto gpu = OnFakeGpu(/*budget=*/64 << 10);  // not one tile fits
  ASSERT_NE(gpu, nullptr);
  OomFallbackRun run = RunWithOomFallback(*gpu, engine::Device::Cuda(0), /*gpu_fallback_allowed=*/true, Cpu(), image_,
                                          Deadline(), nullptr);
  ASSERT_TRUE(run.image.ok()) << run.image.status().ToString();
  EXPECT_TRUE(run.reran_on_cpu);
  EXPECT_EQ(cpu_resolved_, 1);
  auto expected = cpu_->Run(image_, Deadline(), nullptr);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(Pixels(*run.image), Pixels(*expected));  // the CPU run's bytes, not a mix
}

TEST_F(OomFallbackTest, WithoutFallbackTheOutOfMemoryIsTheAnswer) {
  auto gpu = OnFakeGpu(64 << 10);
  ASSERT_NE(gpu, nullptr);
  OomFallbackRun run = RunWithOomFallback(*gpu, engine::Device::Cuda(0), /*gpu_fallback_allowed=*/false, Cpu(),
                                          image_, Deadline(), nullptr);
  ASSERT_FALSE(run.image.ok());
  EXPECT_EQ(run.image.status().code(), StatusCode::kOutOfMemory);
  EXPECT_FALSE(run.reran_on_cpu);
  EXPECT_EQ(cpu_resolved_, 0);
}

TEST_F(OomFallbackTest, ARunThatFitsOrACpuRunIsNeverRerun) {
  auto gpu = OnFakeGpu(0);
  ASSERT_NE(gpu, nullptr);
  OomFallbackRun fits = RunWithOomFallback(*gpu, engine::Device::Cuda(0), true, Cpu(), image_, Deadline(), nullptr);
  ASSERT_TRUE(fits.image.ok()) << fits.image.status().ToString();
  EXPECT_FALSE(fits.reran_on_cpu);
  // Out of memory on the CPU itself: nothing to fall back to.
  auto starved = OnFakeGpu(64 << 10);
  OomFallbackRun cpu = RunWithOomFallback(*starved, engine::Device::Cpu(), true, Cpu(), image_, Deadline(), nullptr);
  EXPECT_EQ(cpu.image.status().code(), StatusCode::kOutOfMemory);
  EXPECT_FALSE(cpu.reran_on_cpu);
  EXPECT_EQ(cpu_resolved_, 0);
}

// A GPU that is lost in the middle of a run (a driver reset): a stand-in for
// the device's kDeviceUnavailable, which cannot be provoked on llvmpipe.
class FakeLostGpuUpscaler : public engine::Upscaler {
 public:
  explicit FakeLostGpuUpscaler(std::shared_ptr<engine::ModelUpscaler> model) : model_(std::move(model)) {}
  std::string Describe() const override { return "a GPU that is lost mid-run (test)"; }
  engine::Size OutputSize(engine::Size input) const override { return model_->OutputSize(input); }
  uint64_t WorkingBytes(engine::Size input) const override { return model_->WorkingBytes(input); }
  Result<imaging::Image> Run(const imaging::Image&, const Deadline&, const engine::ProgressFn&) const override {
    ++runs;
    return Status(StatusCode::kDeviceUnavailable, "vkQueueSubmit: VK_ERROR_DEVICE_LOST");
  }
  mutable int runs = 0;

 private:
  std::shared_ptr<engine::ModelUpscaler> model_;
};

TEST_F(OomFallbackTest, AGpuLostMidRunRerunsTheImageOnTheCpuUnlessFallbackIsOff) {
  FakeLostGpuUpscaler lost(cpu_);
  testing::internal::CaptureStderr();
  OomFallbackRun run =
      RunWithOomFallback(lost, engine::Device::Vulkan(0), /*gpu_fallback_allowed=*/true, Cpu(), image_, Deadline(), nullptr);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(run.image.ok()) << run.image.status().ToString();
  EXPECT_TRUE(run.reran_on_cpu);
  EXPECT_EQ(lost.runs, 1);
  EXPECT_NE(log.find("event=gpu_lost_fallback device=vulkan:0"), std::string::npos) << log;
  auto expected = cpu_->Run(image_, Deadline(), nullptr);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(Pixels(*run.image), Pixels(*expected));

  OomFallbackRun refused =
      RunWithOomFallback(lost, engine::Device::Vulkan(0), /*gpu_fallback_allowed=*/false, Cpu(), image_, Deadline(), nullptr);
  ASSERT_FALSE(refused.image.ok());
  EXPECT_EQ(refused.image.status().code(), StatusCode::kDeviceUnavailable);
  EXPECT_FALSE(refused.reran_on_cpu);
  EXPECT_EQ(cpu_resolved_, 1);
}

}  // namespace
}  // namespace tessera::worker
