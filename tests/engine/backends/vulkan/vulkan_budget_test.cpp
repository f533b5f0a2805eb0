// Seed 002 on the Vulkan device (llvmpipe) with a forced small --vram-budget
// (VulkanBackendOptions::vram_budget_bytes, what the flag sets): a chunk of
// tiles too large for the budget runs out of device memory, the planner
// shrinks it and retries, the run completes on the device, and the output is
// byte for byte the unconstrained run's.
//
// Two things make this need a setting of its own rather than a real model
// through `tessera upscale`:
// - Tiles are cut on the device and a chunk's tiles of one size run as one
//   batch, so a smaller chunk needs less device memory; but the planner shrinks
//   a chunk only above its 16 MiB floor (memory_planner.h), and 16 MiB of a
//   real model's feature maps is about 16 s of llvmpipe's convolutions. The
//   model here is memory-heavy and compute-light instead: 1x1 convolutions to
//   64 channels and back, then a pixel shuffle (the shape of a real x2 model's
//   tail), on 24 tiles.
// - Reading the free memory under the budget, the planner takes 0.45 of it and
//   never over-commits; the retry path is for memory that was not there after
//   all. Here the planner cannot read the free memory (as with a device that
//   reports none) and goes by its hint (--max-chunk-mb), which is too large:
//   the first full chunk is what runs out.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "engine/backends/reference_backend.h"
#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/model_upscaler.h"
#include "engine/ncnn/param_parser.h"
#include "../../ops/layer_test_inputs.h"
#include "vulkan_test_device.h"

namespace tessera::engine::vulkan {
namespace {

constexpr int kTile = 64;
constexpr int kWidth = 8 * kTile, kHeight = 3 * kTile;  // 24 tiles of one size

ncnn::Model MemoryHeavyModel() {
  const char* param =
      "7767517\n"
      "4 4\n"
      "Input in 0 1 data\n"
      "Convolution wide 1 1 data a 0=64 1=1 5=1 6=192 9=1\n"
      "Convolution narrow 1 1 a b 0=12 1=1 5=1 6=768\n"
      "PixelShuffle shuffle 1 1 b out 0=2\n";
  return op_tests::RandomModel("memory-heavy-x2", param, {{1, {192, 64}}, {2, {768, 12}}}, 11, 0.2f);
}

struct Run {
  Tensor out;
  TilingReport report;
  gpu::AllocatorStats memory;
};

// The image through the model on a Vulkan backend under `budget` (0: none),
// the planner going by `max_chunk_bytes` without a reading of free memory.
Result<Run> Upscale(const Tensor& rgb, uint64_t budget, uint64_t max_chunk_bytes) {
  VulkanBackendOptions options;
  options.vram_budget_bytes = budget;
  auto backend = VulkanBackend::Create(test::TestDeviceIndex(), options);
  if (!backend.ok()) return backend.status();
  ModelEntry entry;
  entry.name = "memory-heavy-x2";
  entry.family = ModelFamily::kRealEsrgan;
  entry.scale = 2;
  auto upscaler = ModelUpscaler::FromModel(entry, MemoryHeavyModel(), kTile,
                                           BackendSet{*backend, std::make_shared<ReferenceBackend>()});
  MemoryPlanOptions plan;
  plan.max_chunk_bytes = max_chunk_bytes;
  plan.probe = []() -> std::optional<uint64_t> { return std::nullopt; };
  upscaler->SetMemoryPlan(plan, nullptr);
  Run run;
  Result<Tensor> out = upscaler->RunPlanar(rgb, Deadline(), nullptr, &run.report);
  if (!out.ok()) return out.status();
  run.out = std::move(out).value();
  run.memory = (*backend)->memory_stats();
  return run;
}

TEST(VulkanBudgetTest, AChunkOverTheVramBudgetIsRetriedSmallerWithTheSameBytes) {
  Tensor rgb = Tensor::Chw(3, kHeight, kWidth);
  for (size_t i = 0; i < rgb.data.size(); ++i) rgb.data[i] = static_cast<float>((i * 7919) % 256) / 255.f;
  constexpr uint64_t kNoCap = 1ull << 40;

  // Unconstrained: the first tile alone (its cost measured), then the other
  // 23 in one chunk, one batch.
  auto roomy = Upscale(rgb, 0, kNoCap);
  ASSERT_TRUE(roomy.ok()) << roomy.status().ToString();
  ASSERT_TRUE(roomy->report.tiles_on_device);
  ASSERT_EQ(roomy->report.tiles, 24u);
  ASSERT_EQ(roomy->report.largest_chunk, 23u);
  ASSERT_EQ(roomy->report.largest_batch, 23u);
  ASSERT_EQ(roomy->report.oom_retries, 0);
  const uint64_t cost = roomy->report.tile_cost_bytes;
  const uint64_t peak = roomy->memory.peak_held_bytes;
  ASSERT_GT(cost, 0u);
  // The chunk of 23 is above the planner's floor, so a retry really shrinks it.
  ASSERT_GT(23 * cost, kMinChunkBytes / kOomShrinkFactor);

  // A budget below what the 23-tile batch held, room for about 16 of them:
  // the first chunk planned (the hint lets all 23 in) runs out, ×0.7 fits.
  const uint64_t budget = peak - 7 * (peak / 24);
  testing::internal::CaptureStderr();  // the log lines
  auto tight = Upscale(rgb, budget, kNoCap);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(tight.ok()) << tight.status().ToString() << "\n" << log;
  EXPECT_GE(tight->report.oom_retries, 1);
  EXPECT_NE(log.find("event=oom_retry retry=1/3"), std::string::npos) << log;
  EXPECT_NE(log.find("VRAM budget"), std::string::npos) << log;  // what ran out: the budget
  EXPECT_TRUE(tight->report.tiles_on_device);
  EXPECT_LT(tight->report.largest_chunk, 23u);
  EXPECT_GT(tight->report.largest_batch, 1u);
  EXPECT_LE(tight->memory.peak_held_bytes, budget);
  EXPECT_EQ(tight->out.data, roomy->out.data);
  std::printf("vulkan budget: tile %llu B, unconstrained peak %llu B in %zu chunks; budget %llu B: %d retries, "
              "%zu chunks of at most %zu tiles, peak %llu B\n",
              static_cast<unsigned long long>(cost), static_cast<unsigned long long>(peak), roomy->report.chunks,
              static_cast<unsigned long long>(budget), tight->report.oom_retries, tight->report.chunks,
              tight->report.largest_chunk, static_cast<unsigned long long>(tight->memory.peak_held_bytes));
}

}  // namespace
}  // namespace tessera::engine::vulkan
