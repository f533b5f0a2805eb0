// Whole graphs on the Vulkan backend (llvmpipe), with the CPU backend as the
// fallback for the layers it declines: a graph of our own whose PReLU and
// residual sums fuse into the convolutions, against the reference kernels;
// and the golden images of one model per family against the float64
// oracle's (tests/oracle/), at >= 50 dB like the CPU's golden test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "../../../support/golden_compare.h"
#include "../../../support/test_images.h"
#include "engine/backends/reference_backend.h"
#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/graph_executor.h"
#include "engine/model_catalog.h"
#include "engine/model_upscaler.h"
#include "engine/ncnn/param_parser.h"
#include "imaging/image_codec.h"
#include "imaging/pixel_buffer.h"
#include "vulkan_test_device.h"

namespace tessera::engine::vulkan {
namespace {

const std::string kData = std::string(TESSERA_SOURCE_DIR) + "/tests/data/";

Tensor RandomImage(int c, int h, int w, int seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  Tensor t = Tensor::Chw(c, h, w);
  for (float& v : t.data) v = d(gen);
  return t;
}

double MaxAbsDiff(const Tensor& a, const Tensor& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a.data[i]) - b.data[i]));
  return m;
}

// conv(+ReLU) -> PReLU; conv -> Eltwise sum (coefficients) with the input's
// copy; a Split whose first reader is a Pooling the backend declines (the
// shared blob goes to the CPU) and whose others are read on the device again:
// conv(+leaky ReLU) -> BinaryOp add, then a per-channel BinaryOp mul.
const char* kGraph =
    "7767517\n"
    "11 14\n"
    "Input in 0 1 x\n"
    "Split s 1 2 x x0 x1\n"
    "Convolution c1 1 1 x0 a 0=6 1=3 4=1 5=1 6=162 9=1\n"
    "PReLU p 1 1 a b 0=6\n"
    "Convolution c2 1 1 b c 0=3 1=3 4=1 5=1 6=162\n"
    "Eltwise e 2 1 c x1 d 0=1 -23301=2,0.5,1.5\n"
    "Split s2 1 3 d d0 d1 d2\n"
    "Pooling pool 1 1 d0 h 0=1 4=1\n"
    "Convolution c3 1 1 d1 f 0=3 1=1 5=1 6=9 9=2 -23310=1,0.2\n"
    "BinaryOp add 2 1 f d2 g 0=0\n"
    "BinaryOp mul 2 1 g h out 0=2\n";

ncnn::Model FusableModel() {
  auto graph = ncnn::ParseParam(kGraph, "vulkan_fusable.param");
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  ncnn::Model model;
  model.name = "vulkan_fusable";
  model.graph = std::move(graph).value();
  model.weights.resize(model.graph.layers.size());
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> d(-0.3f, 0.3f);
  auto fill = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = d(gen);
    return v;
  };
  model.weights[2] = {fill(162), fill(6)};
  model.weights[3] = {fill(6), {}};
  model.weights[4] = {fill(162), fill(3)};
  model.weights[8] = {fill(9), fill(3)};
  return model;
}

TEST(VulkanGraphTest, FusedLayersAndTheCpuFallbackGiveTheReferenceValues) {
  const ncnn::Model model = FusableModel();
  const Tensor input = RandomImage(3, 14, 11, 8);
  ReferenceBackend reference;
  auto expected = GraphExecutor(model, reference).Run(input, Deadline());
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  auto set = BackendsFor(test::TestDevice());
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  GraphExecutor executor(model, *set->backend, set->fallback.get());
  EXPECT_EQ(executor.fused_layers(), 3);         // the PReLU, the Eltwise sum, the BinaryOp add
  EXPECT_FALSE(executor.RunsWhollyOnBackend());  // the Pooling runs on the CPU
  RunStats stats;
  auto got = executor.Run(input, Deadline(), &stats);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_LT(MaxAbsDiff(*got, *expected), 1e-5);
  EXPECT_EQ(stats.ms_by_layer_type.count("Convolution+PReLU"), 1u);
  EXPECT_EQ(stats.ms_by_layer_type.count("Convolution+Eltwise"), 1u);
  EXPECT_EQ(stats.ms_by_layer_type.count("Convolution+BinaryOp"), 1u);
}

// The goldens of `model` through the Vulkan backend (those of `inputs` only,
// when given: llvmpipe is slow); prints the worst PSNR.
void ExpectGoldens(const std::string& model, const std::vector<std::string>& inputs = {}) {
  tessera::test::InitImagingForTests();
  std::ifstream f(kData + "goldens/manifest.json");
  ASSERT_TRUE(f) << "tests/data/goldens/manifest.json missing: run make goldens";
  const nlohmann::json manifest = nlohmann::json::parse(f);
  auto models = ReadManifest(DefaultModelDir());
  ASSERT_TRUE(models.ok()) << models.status().ToString();
  const ModelEntry* entry = nullptr;
  for (const auto& m : *models) {
    if (m.name == model) entry = &m;
  }
  ASSERT_NE(entry, nullptr) << model << " is not installed (scripts/fetch-models)";
  auto set = BackendsFor(test::TestDevice());
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  auto upscaler = ModelUpscaler::Load(DefaultModelDir(), *entry, 0, *set);
  ASSERT_TRUE(upscaler.ok()) << upscaler.status().ToString();
  EXPECT_TRUE((*upscaler)->OnDevice());
  double worst = 99.0;
  int goldens = 0;
  for (const auto& e : manifest["entries"]) {
    if (e["model"] != model) continue;
    if (!inputs.empty() && std::find(inputs.begin(), inputs.end(), std::string(e["input"])) == inputs.end()) continue;
    ++goldens;
    auto input = imaging::DecodeImage(tessera::test::ReadFileBytes(kData + std::string(e["input"])), Deadline());
    auto golden = imaging::DecodeImage(tessera::test::ReadFileBytes(kData + std::string(e["golden"])), Deadline());
    ASSERT_TRUE(input.ok() && golden.ok()) << e["input"];
    auto out = (*upscaler)->Run(*input, Deadline(), nullptr);
    ASSERT_TRUE(out.ok()) << model << ": " << out.status().ToString();
    auto ours = imaging::ToPixels(*out);
    auto theirs = imaging::ToPixels(*golden);
    ASSERT_EQ(ours->width, theirs->width) << e["golden"];
    ASSERT_EQ(ours->height, theirs->height) << e["golden"];
    ASSERT_EQ(ours->bands, theirs->bands) << e["golden"];
    const double psnr = tessera::test::Psnr8(ours->data, theirs->data);
    EXPECT_GE(psnr, 50.0) << e["golden"];
    worst = std::min(worst, psnr);
  }
  EXPECT_GT(goldens, 0) << "no golden for " << model;
  std::printf("vulkan golden: %-26s worst PSNR %.1f dB over %d images (%s)\n", model.c_str(), worst, goldens,
              (*upscaler)->Describe().c_str());
}

TEST(VulkanGoldenTest, RealEsrganMatchesTheOracle) { ExpectGoldens("realesr-animevideov3-x2"); }

// Real-CUGAN and waifu2x cost several times more per pixel: the dark image (on
// which the reference programs' Vulkan path fails) and the odd-sized one.
TEST(VulkanGoldenTest, RealCuganMatchesTheOracle) {
  ExpectGoldens("up2x-conservative", {"inputs/dark.png", "inputs/odd_37x23.png"});
}

TEST(VulkanGoldenTest, WaifuCunetMatchesTheOracle) {
  ExpectGoldens("cunet-x2", {"inputs/dark.png", "inputs/odd_37x23.png"});
}

// Vulkan prepares nothing per shape (Backend::PreparesPerShape): a model
// warms up on a 32x32 tile whatever its tile size — its feature maps, not a
// 200x200 tile's (64 channels of 200x200 floats alone are 10 MiB).
TEST(VulkanWarmUpTest, AModelWarmsUpOnASmallTile) {
  auto models = ReadManifest(DefaultModelDir());
  ASSERT_TRUE(models.ok()) << models.status().ToString();
  const ModelEntry* entry = nullptr;
  for (const auto& m : *models) {
    if (m.name == "realesr-animevideov3-x2") entry = &m;
  }
  ASSERT_NE(entry, nullptr) << "realesr-animevideov3-x2 is not installed (scripts/fetch-models)";
  auto set = BackendsFor(test::TestDevice());
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  auto* vulkan = dynamic_cast<VulkanBackend*>(set->backend.get());
  ASSERT_NE(vulkan, nullptr);
  auto upscaler = ModelUpscaler::Load(DefaultModelDir(), *entry, 200, *set);
  ASSERT_TRUE(upscaler.ok()) << upscaler.status().ToString();
  ASSERT_TRUE((*upscaler)->WarmUp().ok());
  const uint64_t peak = vulkan->memory_stats().peak_held_bytes;
  EXPECT_GT(peak, 0u);  // it did run on the device
  EXPECT_LT(peak, 8u << 20);
}

TEST(VulkanBudgetTest, AnAllocationOverTheVramBudgetIsOutOfMemory) {
  VulkanBackendOptions options;
  options.vram_budget_bytes = 1 << 20;
  auto backend = VulkanBackend::Create(test::TestDeviceIndex(), options);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  auto small = (*backend)->FromHost(RandomImage(4, 64, 64, 1));  // 64 KiB
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  auto large = (*backend)->FromHost(RandomImage(16, 128, 128, 2));  // 1 MiB, over what is left
  ASSERT_FALSE(large.ok());
  EXPECT_EQ(large.status().code(), StatusCode::kOutOfMemory) << large.status().ToString();
  const BackendMemory memory = (*backend)->ProbeMemory();
  EXPECT_TRUE(memory.known);
  EXPECT_LE(memory.free_bytes, 1u << 20);
  EXPECT_LE(memory.total_bytes, 1u << 20);
}

}  // namespace
}  // namespace tessera::engine::vulkan
