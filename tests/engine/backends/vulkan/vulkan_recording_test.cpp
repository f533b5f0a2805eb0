// Whole runs recorded once per input shape and replayed on the Vulkan backend
// (vulkan_recording.h, GraphExecutor::RunOnBackend), on llvmpipe: a replay
// gives the bytes of the same run recorded afresh (a backend that records
// nothing), records no dispatch of its own, and may run from several threads
// at once; a recording's memory goes back when the allocator needs it or the
// planner asks, and the next batch of its shape records again.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "engine/backends/reference_backend.h"
#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/graph_executor.h"
#include "engine/model_catalog.h"
#include "engine/model_upscaler.h"
#include "engine/ncnn/param_parser.h"
#include "../../ops/layer_test_inputs.h"
#include "vulkan_test_device.h"

namespace tessera::engine::vulkan {
namespace {

using op_tests::Random;

constexpr char kModel[] = "realesr-animevideov3-x2";  // bicubic Interp, convolutions, PReLU, PixelShuffle

std::shared_ptr<VulkanBackend> NewBackend(bool record_runs, uint64_t vram_budget = 0,
                                          DataType dtype = DataType::kF32) {
  VulkanBackendOptions options;
  options.record_runs = record_runs;
  options.vram_budget_bytes = vram_budget;
  options.dtype = dtype;
  auto backend = VulkanBackend::Create(test::TestDeviceIndex(), options);
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  return backend.ok() ? std::move(backend).value() : nullptr;
}

// A batch of `n` tiles of random values on `backend`.
Tensor Batch(const VulkanBackend& backend, int n, int h, int w, uint32_t seed) {
  Tensor host = Random(3 * n, h, w, seed);  // n items of 3 channels, one after the other
  host.n = n;
  host.c = 3;
  auto on_device = backend.FromHost(std::move(host));
  EXPECT_TRUE(on_device.ok()) << on_device.status().ToString();
  return on_device.ok() ? std::move(on_device).value() : Tensor();
}

std::vector<float> Values(const VulkanBackend& backend, const Result<Tensor>& t) {
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) return {};
  auto host = backend.ToHost(*t);
  EXPECT_TRUE(host.ok()) << host.status().ToString();
  return host.ok() ? std::vector<float>(host->data.begin(), host->data.end()) : std::vector<float>();
}

class VulkanRecordingTest : public ::testing::TestWithParam<DataType> {};

TEST_P(VulkanRecordingTest, ReplaysGiveTheBytesOfRunsRecordedAfreshAndRecordNoDispatch) {
  const DataType dtype = GetParam();
  auto model = ncnn::LoadModel(DefaultModelDir(), kModel);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto recording = NewBackend(true, 0, dtype);
  auto afresh = NewBackend(false, 0, dtype);
  ASSERT_TRUE(recording && afresh);
  GraphExecutor recorded(*model, *recording);
  GraphExecutor plain(*model, *afresh);
  ASSERT_TRUE(recorded.RunsWhollyOnBackend());
  VulkanDevice& device = recording->gpu();

  // Two shapes, three inputs each: the first of each is recorded, the rest replay.
  for (const auto& [n, h, w] : {std::tuple{2, 12, 14}, std::tuple{1, 10, 10}}) {
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      SCOPED_TRACE("shape " + std::to_string(n) + "x" + std::to_string(h) + "x" + std::to_string(w) + ", input " +
                   std::to_string(seed));
      const std::vector<float> expected =
          Values(*afresh, plain.RunOnBackend(Batch(*afresh, n, h, w, seed), Deadline()));
      ASSERT_FALSE(expected.empty());
      Tensor input = Batch(*recording, n, h, w, seed);
      const uint64_t dispatches = device.dispatches_recorded();
      const uint64_t replays = device.replays();
      auto out = recorded.RunOnBackend(std::move(input), Deadline());
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(out->n, n);
      if (seed == 1) {
        EXPECT_GT(device.dispatches_recorded(), dispatches + 10);  // every layer, into the recording
      } else {
        EXPECT_EQ(device.dispatches_recorded(), dispatches);  // nothing recorded again
      }
      EXPECT_EQ(device.replays(), replays + 1);
      EXPECT_EQ(Values(*recording, out), expected);
    }
  }
  EXPECT_EQ(recording->recordings(), 2u);
  EXPECT_GT(recording->recorded_bytes(), 0u);
  EXPECT_EQ(afresh->recordings(), 0u);

  // With stats (the planner's measured first tile) every layer runs and is timed.
  const uint64_t dispatches = device.dispatches_recorded();
  RunStats stats;
  auto measured = recorded.RunOnBackend(Batch(*recording, 1, 10, 10, 9), Deadline(), &stats);
  ASSERT_TRUE(measured.ok()) << measured.status().ToString();
  EXPECT_GT(device.dispatches_recorded(), dispatches + 10);
  EXPECT_GT(stats.peak_live_bytes, 0u);
}

TEST_P(VulkanRecordingTest, OneRecordingReplaysFromSeveralThreadsAtOnce) {
  auto model = ncnn::LoadModel(DefaultModelDir(), kModel);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto recording = NewBackend(true, 0, GetParam());
  auto afresh = NewBackend(false, 0, GetParam());
  ASSERT_TRUE(recording && afresh);
  GraphExecutor recorded(*model, *recording);
  GraphExecutor plain(*model, *afresh);
  constexpr int kThreads = 3, kRuns = 3;
  std::vector<std::vector<float>> expected(kThreads * kRuns);
  for (int i = 0; i < kThreads * kRuns; ++i) {
    expected[i] = Values(*afresh, plain.RunOnBackend(Batch(*afresh, 2, 9, 11, 100 + i), Deadline()));
  }
  // Recorded once before the threads start, so every run below is a replay.
  ASSERT_TRUE(recorded.RunOnBackend(Batch(*recording, 2, 9, 11, 99), Deadline()).ok());
  const uint64_t replays = recording->gpu().replays();
  std::vector<std::vector<float>> got(kThreads * kRuns);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) {
        const int i = t * kRuns + r;
        got[i] = Values(*recording, recorded.RunOnBackend(Batch(*recording, 2, 9, 11, 100 + i), Deadline()));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(recording->gpu().replays(), replays + kThreads * kRuns);
  for (int i = 0; i < kThreads * kRuns; ++i) EXPECT_EQ(got[i], expected[i]) << "run " << i;
}

INSTANTIATE_TEST_SUITE_P(Precisions, VulkanRecordingTest, ::testing::Values(DataType::kF32, DataType::kF16),
                         [](const ::testing::TestParamInfo<DataType>& info) {
                           return info.param == DataType::kF16 ? std::string("Fp16") : std::string("Fp32");
                         });

// A whole image through ModelUpscaler (tiles cut on the device, batches
// recorded): the output for a pattern of 8 x 6.
std::vector<float> Upscale(ModelUpscaler& upscaler) {
  Tensor rgb = Tensor::Chw(3, 6, 8);
  for (size_t i = 0; i < rgb.data.size(); ++i) rgb.data[i] = static_cast<float>((i * 7919) % 256) / 255.f;
  auto out = upscaler.RunPlanar(rgb, Deadline(), nullptr, nullptr);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? std::vector<float>(out->data.begin(), out->data.end()) : std::vector<float>();
}

std::unique_ptr<ModelUpscaler> LoadUpscaler(const std::shared_ptr<VulkanBackend>& backend) {
  auto manifest = ReadManifest(DefaultModelDir());
  EXPECT_TRUE(manifest.ok()) << manifest.status().ToString();
  if (!manifest.ok()) return nullptr;
  const auto entry =
      std::find_if(manifest->begin(), manifest->end(), [](const ModelEntry& e) { return e.name == kModel; });
  EXPECT_NE(entry, manifest->end());
  if (entry == manifest->end()) return nullptr;
  auto upscaler = ModelUpscaler::Load(DefaultModelDir(), *entry, 4, BackendSet{backend, std::make_shared<ReferenceBackend>()});
  EXPECT_TRUE(upscaler.ok()) << upscaler.status().ToString();
  return upscaler.ok() ? std::move(upscaler).value() : nullptr;
}

TEST(VulkanRecordingMemoryTest, GivenBackWhenTheAllocatorHasNoRoomAndRecordedAgainAfter) {
  // Without a budget: the bytes, and what is in use once the recordings are made.
  auto free_backend = NewBackend(true);
  ASSERT_NE(free_backend, nullptr);
  auto free_upscaler = LoadUpscaler(free_backend);
  ASSERT_NE(free_upscaler, nullptr);
  const std::vector<float> expected = Upscale(*free_upscaler);
  ASSERT_FALSE(Upscale(*free_upscaler).empty());  // every batch shape of the grid recorded
  const uint64_t recorded = free_backend->recorded_bytes();
  const uint64_t in_use = free_backend->memory_stats().in_use_bytes;
  ASSERT_GT(recorded, 0u);
  ASSERT_GE(in_use, recorded);

  // A budget that fits the same run and then a tensor of `extra`, but only
  // once all the recordings' memory has gone back. (The grid's first tile is
  // measured alone, so the first image records a batch of 1 of the 4 x 4 tiles
  // and one of 2 of the 4 x 2 tiles; the second, a batch of the two 4 x 4 ones.)
  constexpr uint64_t kExtra = 8ull << 20;
  const uint64_t budget = in_use - recorded + kExtra;
  auto backend = NewBackend(true, budget);
  ASSERT_NE(backend, nullptr);
  auto upscaler = LoadUpscaler(backend);
  ASSERT_NE(upscaler, nullptr);
  EXPECT_EQ(Upscale(*upscaler), expected);
  EXPECT_EQ(Upscale(*upscaler), expected);
  ASSERT_EQ(backend->recorded_bytes(), recorded);
  ASSERT_EQ(backend->recordings(), 3u);
  ASSERT_GT(backend->memory_stats().in_use_bytes + kExtra, budget);  // no room while they hold theirs
  EXPECT_GE(backend->ProbeMemory().free_bytes, kExtra);              // counted as free: it is
  {
    auto big = backend->NewTensor(1, 1, 1, 1, static_cast<int>(kExtra / sizeof(float)), DataType::kF32);
    ASSERT_TRUE(big.ok()) << big.status().ToString();
    EXPECT_EQ(backend->recordings(), 0u);
    EXPECT_EQ(backend->recorded_bytes(), 0u);
  }
  // The executor still holds them: told they are gone, it records the two
  // shapes of a whole-image chunk again, with the same bytes.
  const uint64_t replays = backend->gpu().replays();
  EXPECT_EQ(Upscale(*upscaler), expected);
  EXPECT_EQ(backend->gpu().replays(), replays + 2);
  EXPECT_EQ(backend->recordings(), 2u);

  // The planner's retry after an out-of-memory takes all of it back.
  backend->ReleaseCachedMemory();
  EXPECT_EQ(backend->recordings(), 0u);
  EXPECT_EQ(backend->recorded_bytes(), 0u);
  EXPECT_EQ(Upscale(*upscaler), expected);
  EXPECT_GT(backend->recordings(), 0u);
}

}  // namespace
}  // namespace tessera::engine::vulkan
