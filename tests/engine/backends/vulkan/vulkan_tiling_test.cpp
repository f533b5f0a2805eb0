// Tiles cut and placed on the Vulkan device (DeviceTiling, vulkan_tiling.cpp)
// on llvmpipe: the primitives against host loops written here (reflect and
// replicate padding, placement, the nearest residual), and whole images whose
// bytes must be those of the host path (tiles padded, uploaded, downloaded and
// cropped one at a time) for Real-ESRGAN and Real-CUGAN x4 (which adds the
// nearest-upscaled input on the device), with edge tiles of other sizes and
// tiles of one size batched; in fp32 and in fp16, where the tiles must hold
// exactly what FromHost makes (each value rounded to nearest even).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <iterator>

#include "engine/backends/reference_backend.h"
#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/model_catalog.h"
#include "engine/model_upscaler.h"
#include "../../ops/layer_test_inputs.h"
#include "vulkan_test_device.h"

namespace tessera::engine::vulkan {
namespace {

using op_tests::Random;

// Mirror without repeating the edge: .. 2 1 | 0 1 .. n-1 | n-2 ..
int Mirror(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

// A value as a tile of `dtype` holds it (FromHost's rounding), back in fp32.
float Stored(float v, DataType dtype) {
  return dtype == DataType::kF16 ? static_cast<float>(static_cast<_Float16>(v)) : v;
}

std::shared_ptr<VulkanBackend> NewBackend(bool device_tiling, DataType dtype = DataType::kF32) {
  VulkanBackendOptions options;
  options.device_tiling = device_tiling;
  options.dtype = dtype;
  auto backend = VulkanBackend::Create(test::TestDeviceIndex(), options);
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  return backend.ok() ? std::move(backend).value() : nullptr;
}

class VulkanTilingTest : public ::testing::TestWithParam<DataType> {};

TEST_P(VulkanTilingTest, CutPlaceAndAddMatchTheHostPath) {
  const DataType dtype = GetParam();
  auto backend = NewBackend(true, dtype);
  ASSERT_NE(backend, nullptr);
  const DeviceTiling* tiling = backend->tiling();
  ASSERT_NE(tiling, nullptr);
  EXPECT_EQ(NewBackend(false, dtype)->tiling(), nullptr);
  Tensor image = Random(3, 7, 9, 1);
  // fp16's hard cases, rounded by gather_tile.comp's own arithmetic: ties to
  // even either way, a subnormal, a tie between subnormals, the largest
  // value, one that rounds up to the next binade, and values past the range.
  const float hard[] = {1.f + 1.f / 2048, 1.f + 3.f / 2048, -(1.f + 1.f / 2048), 1e-6f, 1.5f / (1 << 24),
                        65504.f, 65519.f, 65520.f, 1e9f, -1e9f, 2047.5f / 1024, 0.f, -0.f};
  for (size_t i = 0; i < std::size(hard); ++i) image.data[i * 5] = hard[i];
  auto on_device = tiling->UploadImage(image);
  ASSERT_TRUE(on_device.ok()) << on_device.status().ToString();

  // Corners before the image, past it, and further out than one mirror period.
  // And one inside, that reads every pixel.
  const std::vector<TileCut> cuts{{-4, -3}, {5, 2}, {-20, 11}, {0, 0}};
  const int h = 8, w = 10;
  for (bool reflect : {true, false}) {
    SCOPED_TRACE(reflect ? "reflect" : "replicate");
    auto batch = tiling->GatherTiles(*on_device, cuts, h, w, reflect);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    ASSERT_EQ(batch->n, static_cast<int>(cuts.size()));
    auto back = backend->ToHost(*batch);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    size_t i = 0, wrong = 0;
    std::vector<bool> read(image.size(), false);
    for (const TileCut& cut : cuts) {
      for (int q = 0; q < 3; ++q) {
        for (int y = 0; y < h; ++y) {
          for (int x = 0; x < w; ++x, ++i) {
            const int iy = reflect ? Mirror(cut.y + y, image.h) : std::clamp(cut.y + y, 0, image.h - 1);
            const int ix = reflect ? Mirror(cut.x + x, image.w) : std::clamp(cut.x + x, 0, image.w - 1);
            read[(static_cast<size_t>(q) * image.h + iy) * image.w + ix] = true;
            const float want = Stored(image.at(q, iy, ix), dtype);
            wrong += std::memcmp(&back->data[i], &want, sizeof(float)) != 0;  // -0 and +0 differ too
          }
        }
      }
    }
    EXPECT_EQ(wrong, 0u);
    for (size_t k = 0; k < std::size(hard); ++k) EXPECT_TRUE(read[k * 5]) << "hard case " << k << " not in a tile";
  }

  // Two tiles' rectangles placed into a 3 x 12 x 14 image, then the 3 x 6 x 7
  // input added nearest-upscaled x2.
  Tensor batch_host = Random(3, 9, 8, 2);
  const Tensor second = Random(3, 9, 8, 3);
  batch_host.data.insert(batch_host.data.end(), second.data.begin(), second.data.end());
  batch_host.n = 2;
  auto batch = backend->FromHost(batch_host);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  Tensor expected = Random(3, 12, 14, 4);
  auto out = tiling->UploadImage(expected);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const std::vector<TilePlacement> placements{{1, 2, 0, 0, 7, 6}, {0, 3, 7, 6, 7, 6}};
  ASSERT_TRUE(tiling->PlaceTiles(*batch, placements, *out).ok());
  for (size_t k = 0; k < placements.size(); ++k) {
    const TilePlacement& p = placements[k];
    for (int q = 0; q < 3; ++q) {
      for (int y = 0; y < p.h; ++y) {
        for (int x = 0; x < p.w; ++x) {
          expected.at(q, p.dst_y + y, p.dst_x + x) =
              Stored(batch_host.data[((k * 3 + q) * batch_host.h + p.src_y + y) * batch_host.w + p.src_x + x], dtype);
        }
      }
    }
  }
  const Tensor small = Random(3, 6, 7, 5);
  auto small_on_device = tiling->UploadImage(small);
  ASSERT_TRUE(small_on_device.ok());
  ASSERT_TRUE(tiling->AddNearestInput(*small_on_device, 2, *out).ok());
  for (int q = 0; q < 3; ++q) {
    for (int y = 0; y < 12; ++y) {
      for (int x = 0; x < 14; ++x) expected.at(q, y, x) += small.at(q, y / 2, x / 2);
    }
  }
  auto downloaded = tiling->DownloadImage(*out);
  ASSERT_TRUE(downloaded.ok()) << downloaded.status().ToString();
  EXPECT_EQ(downloaded->data, expected.data);

  // What cannot work is refused, not run.
  EXPECT_FALSE(tiling->GatherTiles(*on_device, {}, h, w, true).ok());
  EXPECT_FALSE(tiling->PlaceTiles(*batch, {{0, 0, 10, 10, 7, 6}, {0, 0, 0, 0, 7, 6}}, *out).ok());
  EXPECT_FALSE(tiling->AddNearestInput(*small_on_device, 3, *out).ok());
}

// `model` on a w x h pattern in tiles of `tile`, once with tiles cut on the
// device and once through the host: the same bytes.
void ExpectDeviceTilesGiveTheHostPathsBytes(const std::string& model, int tile, int w, int h, size_t expected_batch,
                                            DataType dtype) {
  auto manifest = ReadManifest(DefaultModelDir());
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  const auto entry = std::find_if(manifest->begin(), manifest->end(), [&](const ModelEntry& e) { return e.name == model; });
  ASSERT_NE(entry, manifest->end()) << model << " is not installed (scripts/fetch-models)";
  Tensor rgb = Tensor::Chw(3, h, w);
  for (size_t i = 0; i < rgb.data.size(); ++i) rgb.data[i] = static_cast<float>((i * 7919) % 256) / 255.f;
  Tensor results[2];
  for (bool device_tiling : {true, false}) {
    SCOPED_TRACE(device_tiling ? "tiles on the device" : "tiles through the host");
    auto backend = NewBackend(device_tiling, dtype);
    ASSERT_NE(backend, nullptr);
    auto upscaler =
        ModelUpscaler::Load(DefaultModelDir(), *entry, tile, BackendSet{backend, std::make_shared<ReferenceBackend>()});
    ASSERT_TRUE(upscaler.ok()) << upscaler.status().ToString();
    TilingReport report;
    auto out = (*upscaler)->RunPlanar(rgb, Deadline(), nullptr, &report);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(report.tiles_on_device, device_tiling);
    EXPECT_EQ(report.largest_batch, device_tiling ? expected_batch : 1u);
    ASSERT_EQ(out->w, w * entry->scale);
    ASSERT_EQ(out->h, h * entry->scale);
    results[device_tiling ? 0 : 1] = std::move(out).value();
  }
  EXPECT_EQ(results[0].data, results[1].data);
}

// 2 x 2 tiles of 4 on 8 x 6, the last row 2 high: after the first tile
// (measured alone) the other 4 x 4 tile runs alone, the two 4 x 2 ones as one
// batch. (Small tiles: llvmpipe is slow, and each tile is padded by 10.)
TEST_P(VulkanTilingTest, RealEsrganTilesCutOnTheDeviceGiveTheHostPathsBytes) {
  ExpectDeviceTilesGiveTheHostPathsBytes("realesr-animevideov3-x2", 4, 8, 6, 2, GetParam());
}

// Real-CUGAN x4 adds the nearest-upscaled input on the device (reflect padding
// of 19, the model crops its own output): an 8 x 6 tile and an edge tile of 2 x 6.
TEST_P(VulkanTilingTest, RealCuganX4TilesCutOnTheDeviceGiveTheHostPathsBytes) {
  ExpectDeviceTilesGiveTheHostPathsBytes("up4x-conservative", 8, 10, 6, 1, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Precisions, VulkanTilingTest, ::testing::Values(DataType::kF32, DataType::kF16),
                         [](const ::testing::TestParamInfo<DataType>& info) {
                           return info.param == DataType::kF16 ? std::string("Fp16") : std::string("Fp32");
                         });

}  // namespace
}  // namespace tessera::engine::vulkan
