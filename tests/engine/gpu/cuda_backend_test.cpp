// The CUDA backend on a real GPU (ctest label "gpu"): every model family's
// graph against the reference kernels, in fp32 and fp16, with cuDNN and (run
// again with TESSERA_CUDNN=off) on the backend's direct kernels; chunking and
// the VRAM budget never change the bytes. Without a usable GPU each test says
// why it skipped; the registry's refusal is asserted instead.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/backend_registry.h"
#include "engine/backends/cuda/cuda_backend.h"
#include "engine/backends/reference_backend.h"
#include "engine/graph_executor.h"
#include "engine/model_upscaler.h"

namespace tessera::engine::cuda {
namespace {

double Psnr(const Tensor& a, const Tensor& b) {
  double se = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const double d = static_cast<double>(a.data[i]) - b.data[i];
    se += d * d;
  }
  const double mse = se / static_cast<double>(a.data.size());
  return mse == 0 ? 200.0 : 10.0 * std::log10(1.0 / mse);
}

#define SKIP_WITHOUT_GPU()                                                                                    \
  if (UsableDeviceCount(Device::Kind::kCuda) == 0) {                                                          \
    GTEST_SKIP() << "no usable CUDA GPU here: " << DeviceUnavailableReason(Device::Kind::kCuda);              \
  }

TEST(CudaRegistryTest, WithoutAGpuCudaDevicesAreUnavailableWithTheReason) {
  if (UsableDeviceCount(Device::Kind::kCuda) > 0) {
    Result<BackendSet> set = BackendsFor(Device::Cuda(0));
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    EXPECT_EQ(set->backend->name(), "cuda");
    EXPECT_FALSE(set->backend->HostMemory());
    return;
  }
  Result<BackendSet> set = BackendsFor(Device::Cuda(0));
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kDeviceUnavailable);
  EXPECT_FALSE(DeviceUnavailableReason(Device::Kind::kCuda).empty());
  EXPECT_NE(set.status().message().find(DeviceUnavailableReason(Device::Kind::kCuda)), std::string::npos);
}

struct ModelCase {
  const char* name;
  int size;  // square input tile
};

class CudaModelTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(CudaModelTest, MatchesTheReferenceKernelsInFp32AndFp16) {
  SKIP_WITHOUT_GPU();
  Result<ncnn::Model> model = ncnn::LoadModel(DefaultModelDir(), GetParam().name);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const int n = GetParam().size;
  Tensor input = Tensor::Chw(3, n, n);
  for (size_t i = 0; i < input.data.size(); ++i) input.data[i] = static_cast<float>((i * 7919) % 251) / 250.f;

  ReferenceBackend reference;
  GraphExecutor host(*model, reference);
  Result<Tensor> expected = host.Run(input, Deadline());
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();

  for (Precision precision : {Precision::kFp32, Precision::kFp16}) {
    BackendOptions options;
    options.precision = precision;
    Result<BackendSet> set = BackendsFor(Device::Cuda(0), options);
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    GraphExecutor gpu(*model, *set->backend, set->fallback.get());
    Result<Tensor> got = gpu.Run(input, Deadline());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->c, expected->c);
    ASSERT_EQ(got->h, expected->h);
    ASSERT_EQ(got->w, expected->w);
    const double psnr = Psnr(*got, *expected);
    std::printf("%s %s %s: %.1f dB\n", GetParam().name, std::string(PrecisionName(precision)).c_str(),
                set->backend->Fingerprint().c_str(), psnr);
    EXPECT_GE(psnr, precision == Precision::kFp32 ? 60.0 : 40.0) << GetParam().name;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, CudaModelTest,
                         ::testing::Values(ModelCase{"realesr-animevideov3-x2", 40}, ModelCase{"realesrgan-x4plus", 24},
                                           ModelCase{"up2x-conservative", 40}, ModelCase{"up3x-denoise3x", 40},
                                           ModelCase{"up4x-conservative", 40}, ModelCase{"cunet-x2", 40},
                                           ModelCase{"cunet-noise1", 40}));

TEST(CudaUpscalerTest, TheVramBudgetAndChunksNeverChangeTheBytes) {
  SKIP_WITHOUT_GPU();
  auto manifest = ReadManifest(DefaultModelDir());
  ASSERT_TRUE(manifest.ok());
  const ModelEntry* entry = nullptr;
  for (const auto& e : *manifest) {
    if (e.name == "realesr-animevideov3-x2") entry = &e;
  }
  ASSERT_NE(entry, nullptr);
  Tensor rgb = Tensor::Chw(3, 300, 260);
  for (size_t i = 0; i < rgb.data.size(); ++i) rgb.data[i] = static_cast<float>((i * 7919) % 256) / 255.f;
  std::vector<float> first;
  for (uint64_t budget : {uint64_t{0}, uint64_t{64} << 20}) {
    BackendOptions options;
    options.vram_budget_bytes = budget;
    Result<BackendSet> set = BackendsFor(Device::Cuda(0), options);
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    auto up = ModelUpscaler::Load(DefaultModelDir(), *entry, 128, *set);
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    MemoryPlanOptions plan;
    auto backend = set->backend;
    plan.probe = [backend]() -> std::optional<uint64_t> { return backend->ProbeMemory().free_bytes; };
    (*up)->SetMemoryPlan(plan, nullptr);
    Result<Tensor> out = (*up)->RunPlanar(rgb, Deadline());
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    if (first.empty()) {
      first.assign(out->data.begin(), out->data.end());
    } else {
      EXPECT_TRUE(std::equal(first.begin(), first.end(), out->data.begin(), out->data.end()))
          << "budget " << budget << " changed the output";
    }
  }
}

}  // namespace
}  // namespace tessera::engine::cuda
