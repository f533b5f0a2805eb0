// Seed 002 on a device backend, without a GPU: the chunk planner sizes chunks
// from the free memory the device reports, device out-of-memory shrinks and
// retries, and the output never depends on either. The device is a fake
// (fake_device_backend.h) over the real caching allocator.
#include <gtest/gtest.h>

#include "engine/model_upscaler.h"
#include "fake_device_backend.h"
#include "fake_device_memory.h"

namespace tessera::engine::gpu {
namespace {

constexpr uint64_t kGiB = 1ull << 30;
constexpr int kTile = 16;  // small tiles: the reference kernels are slow

class DeviceMemoryPlanningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto manifest = ReadManifest(DefaultModelDir());
    ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
    for (const auto& e : *manifest) {
      if (e.name == "realesr-animevideov3-x2") entry_ = e;
    }
    ASSERT_FALSE(entry_.name.empty());
    rgb_ = Pattern(24, 40);  // 3 x 2 tiles of 16
    reference_ = OnTheHost(rgb_);
  }

  static Tensor Pattern(int h, int w) {
    Tensor rgb = Tensor::Chw(3, h, w);
    for (size_t i = 0; i < rgb.data.size(); ++i) rgb.data[i] = static_cast<float>((i * 7919) % 256) / 255.f;
    return rgb;
  }
  // What the same kernels give on the host, one tile at a time.
  Tensor OnTheHost(const Tensor& rgb) const {
    auto host = ModelUpscaler::Load(DefaultModelDir(), entry_, kTile, BackendSet{std::make_shared<ReferenceBackend>(), nullptr});
    EXPECT_TRUE(host.ok()) << host.status().ToString();
    if (!host.ok()) return Tensor();
    auto out = (*host)->RunPlanar(rgb, Deadline());
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? std::move(out).value() : Tensor();
  }

  // The model on a fake device of `capacity` bytes under a `budget` (0: none);
  // with `max_batch` > 0 the device cuts and places tiles itself.
  std::unique_ptr<ModelUpscaler> OnFakeDevice(uint64_t capacity, uint64_t budget, int retries = 3,
                                              int max_batch = 0) {
    device_ = std::make_shared<FakeDeviceMemory>(capacity);
    CachingAllocatorOptions options;
    options.budget_bytes = budget;
    allocator_ = CachingAllocator::Create(device_, options);
    auto backend = std::make_shared<FakeDeviceBackend>(allocator_, max_batch);
    backend_ = backend;
    auto up = ModelUpscaler::Load(DefaultModelDir(), entry_, kTile, BackendSet{backend, nullptr});
    EXPECT_TRUE(up.ok()) << up.status().ToString();
    if (!up.ok()) return nullptr;
    MemoryPlanOptions plan;
    plan.oom_retries = retries;
    plan.probe = [backend]() -> std::optional<uint64_t> {
      const BackendMemory memory = backend->ProbeMemory();
      return memory.known ? std::optional<uint64_t>(memory.free_bytes) : std::nullopt;
    };
    (*up)->SetMemoryPlan(plan, nullptr);
    return std::move(up).value();
  }

  ModelEntry entry_;
  Tensor rgb_;
  Tensor reference_;
  std::shared_ptr<FakeDeviceMemory> device_;
  std::shared_ptr<CachingAllocator> allocator_;
  std::shared_ptr<FakeDeviceBackend> backend_;
};

TEST_F(DeviceMemoryPlanningTest, ChunksAreSizedFromTheFreeMemoryTheDeviceReports) {
  // The cost of a tile on this device, measured by a first run with room to spare.
  auto roomy = OnFakeDevice(8 * kGiB, 0);
  ASSERT_NE(roomy, nullptr);
  TilingReport report;
  ASSERT_TRUE(roomy->RunPlanar(rgb_, Deadline(), nullptr, &report).ok());
  const uint64_t cost = report.tile_cost_bytes;
  ASSERT_GT(cost, 0u);
  EXPECT_EQ(report.largest_chunk, 5u);  // after the measured first tile, the other 5 in one chunk

  for (uint64_t tiles : {2, 4}) {
    // Free memory x 0.45 holds `tiles` tiles; nothing else is on the device between chunks.
    const uint64_t capacity = static_cast<uint64_t>(static_cast<double>(cost * tiles) / kNormalMemoryFraction) + 1;
    auto up = OnFakeDevice(capacity, 0);
    ASSERT_NE(up, nullptr);
    auto out = up->RunPlanar(rgb_, Deadline(), nullptr, &report);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(report.largest_chunk, tiles) << "capacity for " << tiles << " tiles";
    EXPECT_EQ(out->data, reference_.data) << tiles;
  }
}

TEST_F(DeviceMemoryPlanningTest, DeviceOutOfMemoryIsRetriedAndTheOutputIsUnchanged) {
  auto up = OnFakeDevice(8 * kGiB, 0);
  ASSERT_NE(up, nullptr);
  allocator_->ReleaseCached();
  device_->FailNext(2);  // the first two device allocations fail, as a busy GPU's would
  TilingReport report;
  auto out = up->RunPlanar(rgb_, Deadline(), nullptr, &report);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(report.oom_retries, 2);
  EXPECT_EQ(out->data, reference_.data);
}

TEST_F(DeviceMemoryPlanningTest, ABudgetSmallerThanOneTileIsOutOfMemoryAndLeaksNothing) {
  auto up = OnFakeDevice(8 * kGiB, /*budget=*/256 << 10);
  ASSERT_NE(up, nullptr);
  auto out = up->RunPlanar(rgb_, Deadline());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kOutOfMemory) << out.status().ToString();
  EXPECT_NE(out.status().message().find("VRAM budget"), std::string::npos) << out.status().message();
  allocator_->ReleaseCached();
  EXPECT_EQ(allocator_->stats().in_use_bytes, 0u);
  EXPECT_EQ(device_->used(), 0u);
  EXPECT_EQ(device_->bad_frees(), 0);
}

TEST_F(DeviceMemoryPlanningTest, TilesCutOnTheDeviceRunInBatchesAndGiveTheSameBytes) {
  // 4 x 3 tiles of 16 on 64 x 40: eight of 16 x 16, four of 16 x 8 (last row).
  const Tensor wide = Pattern(40, 64);
  const Tensor expected = OnTheHost(wide);
  auto up = OnFakeDevice(8 * kGiB, 0, 3, /*max_batch=*/4);
  ASSERT_NE(up, nullptr);
  TilingReport report;
  auto out = up->RunPlanar(wide, Deadline(), nullptr, &report);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(report.tiles_on_device);
  // The first tile alone (its cost measured), then the other eleven in one
  // chunk: the seven 16 x 16 ones in batches of 4 and 3, the four 16 x 8 ones
  // in one.
  EXPECT_EQ(report.largest_chunk, 11u);
  EXPECT_EQ(report.largest_batch, 4u);
  EXPECT_EQ(backend_->batches_gathered(), 1 + 2 + 1);
  EXPECT_EQ(out->data, expected.data);
}

TEST_F(DeviceMemoryPlanningTest, OutOfMemoryInABatchShrinksTheChunkAndKeepsTheBytes) {
  auto up = OnFakeDevice(8 * kGiB, 0, 3, /*max_batch=*/8);
  ASSERT_NE(up, nullptr);
  ASSERT_TRUE(up->RunPlanar(rgb_, Deadline()).ok());  // the tile cost is now known
  allocator_->ReleaseCached();
  // The images are allocated first; then a batch's allocations fail twice.
  device_->FailAfter(2, 2);
  TilingReport report;
  auto out = up->RunPlanar(rgb_, Deadline(), nullptr, &report);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(report.tiles_on_device);
  EXPECT_EQ(report.oom_retries, 2);
  EXPECT_EQ(out->data, reference_.data);
}

TEST_F(DeviceMemoryPlanningTest, ImagesThatDoNotFitTheDeviceGoThroughTheHost) {
  auto up = OnFakeDevice(8 * kGiB, 0, 3, /*max_batch=*/8);
  ASSERT_NE(up, nullptr);
  allocator_->ReleaseCached();
  device_->FailNext(1);  // the input image's upload
  TilingReport report;
  auto out = up->RunPlanar(rgb_, Deadline(), nullptr, &report);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_FALSE(report.tiles_on_device);
  EXPECT_EQ(report.largest_batch, 1u);
  EXPECT_EQ(out->data, reference_.data);
}

TEST_F(DeviceMemoryPlanningTest, ADevicesChoicesAreSavedAndGivenBackBeforeAnyRun) {
  auto first = OnFakeDevice(8 * kGiB, 0);
  ASSERT_NE(first, nullptr);
  for (const std::string& choice : first->SavedChoices()) EXPECT_EQ(choice, "") << "nothing chosen before a run";
  ASSERT_TRUE(first->RunPlanar(rgb_, Deadline()).ok());
  const std::vector<std::string> saved = first->SavedChoices();
  const size_t chosen = std::count_if(saved.begin(), saved.end(), [](const std::string& c) { return !c.empty(); });
  EXPECT_GT(chosen, 10u);
  const size_t first_choice = static_cast<size_t>(
      std::find_if(saved.begin(), saved.end(), [](const std::string& c) { return !c.empty(); }) - saved.begin());

  auto second = OnFakeDevice(8 * kGiB, 0);
  ASSERT_NE(second, nullptr);
  std::vector<std::string> other_graph = saved;
  other_graph.pop_back();
  second->RestoreChoices(other_graph);  // another graph's list: ignored
  for (const std::string& choice : second->SavedChoices()) EXPECT_EQ(choice, "");
  std::vector<std::string> damaged = saved;
  damaged[first_choice] = "not a choice";
  second->RestoreChoices(damaged);  // each op checks its own
  std::vector<std::string> restored = second->SavedChoices();
  EXPECT_EQ(restored[first_choice], "");
  restored[first_choice] = saved[first_choice];
  EXPECT_EQ(restored, saved);
}

TEST_F(DeviceMemoryPlanningTest, AResidualModelsNearestInputIsAddedOnTheDevice) {
  ModelEntry cugan;
  auto manifest = ReadManifest(DefaultModelDir());
  ASSERT_TRUE(manifest.ok());
  for (const auto& e : *manifest) {
    if (e.name == "up4x-conservative") cugan = e;
  }
  ASSERT_EQ(cugan.name, "up4x-conservative");
  ASSERT_TRUE(GeometryFor(cugan).adds_nearest_input);
  const Tensor small = Pattern(12, 14);  // one tile: the reference kernels are slow on Real-CUGAN
  auto host = ModelUpscaler::Load(DefaultModelDir(), cugan, kTile, BackendSet{std::make_shared<ReferenceBackend>(), nullptr});
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  auto expected = (*host)->RunPlanar(small, Deadline());
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();

  device_ = std::make_shared<FakeDeviceMemory>(8 * kGiB);
  allocator_ = CachingAllocator::Create(device_, CachingAllocatorOptions());
  auto backend = std::make_shared<FakeDeviceBackend>(allocator_, /*max_batch=*/4);
  auto up = ModelUpscaler::Load(DefaultModelDir(), cugan, kTile, BackendSet{backend, nullptr});
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  TilingReport report;
  auto out = (*up)->RunPlanar(small, Deadline(), nullptr, &report);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(report.tiles_on_device);
  EXPECT_EQ(backend->nearest_added(), 1);
  EXPECT_EQ(out->data, expected->data);
}

}  // namespace
}  // namespace tessera::engine::gpu
