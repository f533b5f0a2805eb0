// The Vulkan backend with fp16 activations (--precision fp16; llvmpipe has
// 16-bit storage): each op against the reference kernels run on the same
// inputs rounded to fp16, so that what is measured is the op's own error — one
// rounding of its output to fp16, on fp32 arithmetic. Ops that only move values
// (Concat, Crop, PixelShuffle, nearest Interp) must move them exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/ops/reference_ops.h"
#include "../../ops/layer_test_inputs.h"
#include "vulkan_op_runner.h"
#include "vulkan_test_device.h"

namespace tessera::engine::vulkan {
namespace {

using op_tests::Layer;
using op_tests::Random;
using op_tests::RandomVector;

// A value as fp16 stores it (round to nearest even), back in fp32.
float RoundToHalf(float v) { return static_cast<float>(static_cast<_Float16>(v)); }

Tensor RoundedToHalf(Tensor t) {
  for (float& v : t.data) v = RoundToHalf(v);
  return t;
}

std::vector<float> RandomValues(size_t n, int seed) {
  const Tensor t = RandomVector(static_cast<int>(n), seed, -0.5f, 0.5f);
  return std::vector<float>(t.data.begin(), t.data.end());
}

class VulkanFp16Test : public ::testing::Test {
 protected:
  void SetUp() override {
    VulkanBackendOptions options;
    options.dtype = DataType::kF16;
    auto backend = VulkanBackend::Create(test::TestDeviceIndex(), options);
    ASSERT_TRUE(backend.ok()) << backend.status().ToString();
    backend_ = std::move(backend).value();
  }

  // The layer on the device and on the reference kernels (inputs rounded to
  // fp16 for both); the largest error relative to max(1, |reference|).
  double Compare(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights, const std::vector<Tensor>& inputs) {
    std::vector<Tensor> rounded;
    for (const Tensor& t : inputs) rounded.push_back(RoundedToHalf(t));
    auto both = test::RunOnDeviceAndReference(*backend_, layer, weights, inputs, rounded);
    if (!both) return INFINITY;
    double worst = 0;
    for (size_t i = 0; i < both->reference.size(); ++i) {
      const double want = both->reference.data[i];
      worst = std::max(worst, std::abs(double(both->device.data[i]) - want) / std::max(1.0, std::abs(want)));
    }
    return worst;
  }

  std::shared_ptr<VulkanBackend> backend_;
};

// One rounding to fp16: half a unit in the last place is 2^-11 of the value;
// the fp32 sums before it add far less.
constexpr double kOneRounding = 1.0 / 2048 + 1e-6;

TEST_F(VulkanFp16Test, TheBackendSaysItStoresFp16) {
  EXPECT_NE(backend_->Fingerprint().find("precision=fp16"), std::string::npos) << backend_->Fingerprint();
  EXPECT_TRUE(backend_->Allocate(3, 4, 5, 6, Layout::kPlain, DataType::kF16).ok());
  EXPECT_EQ(backend_->Allocate(3, 4, 5, 6, Layout::kPlain, DataType::kF32).status().code(), StatusCode::kUnsupported);
  // Tiles are cut on the device in fp16 too (vulkan_tiling_test.cpp).
  EXPECT_NE(backend_->tiling(), nullptr);
}

TEST_F(VulkanFp16Test, ARoundTripRoundsEachValueToNearestEven) {
  Tensor host = Random(3, 7, 5, 11, -70000.f, 70000.f);  // some past fp16's range: they become infinities
  host.data[0] = 1.f + 1.f / 4096;                         // a tie: rounds to the even 1.0
  host.data[1] = 1e-6f;                                    // a subnormal
  auto device = backend_->FromHost(host);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  auto back = backend_->ToHost(*device);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), host.size());
  EXPECT_EQ(back->data[0], 1.f);
  EXPECT_NE(back->data[1], 0.f);
  for (size_t i = 0; i < host.size(); ++i) {
    const float want = RoundToHalf(host.data[i]);
    if (std::isinf(want)) {
      EXPECT_TRUE(std::isinf(back->data[i]) && std::signbit(back->data[i]) == std::signbit(want)) << i;
    } else {
      EXPECT_EQ(back->data[i], want) << i;
    }
  }
}

TEST_F(VulkanFp16Test, ConvolutionsAndDeconvolutionsRoundOnlyTheirOutputs) {
  struct Case {
    std::string type, kv;
    int in_c, k, out_c;
  };
  const Case cases[] = {
      {"Convolution", "1=3 4=1 5=1", 8, 3, 16},
      {"Convolution", "1=1", 5, 1, 7},
      {"Convolution", "1=3 4=1 5=1 9=2 -23310=1,0.1", 4, 3, 5},
      {"Convolution", "1=4 3=2 5=1", 6, 4, 6},
      {"Deconvolution", "1=2 3=2 5=1", 6, 2, 4},
      {"Deconvolution", "1=4 3=2 4=1 5=1", 5, 4, 3},
  };
  int seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.type + " " + c.kv);
    const bool bias = c.kv.find("5=1") != std::string::npos;
    const size_t weights = static_cast<size_t>(c.out_c) * c.in_c * c.k * c.k;
    const auto layer = Layer(c.type, 1, "0=" + std::to_string(c.out_c) + " " + c.kv + " 6=" + std::to_string(weights));
    ncnn::LayerWeights w{RandomValues(weights, seed), bias ? RandomValues(c.out_c, seed + 1) : std::vector<float>{}};
    EXPECT_LT(Compare(layer, w, {Random(c.in_c, 13, 11, seed + 2)}), kOneRounding);
    seed += 3;
  }
}

TEST_F(VulkanFp16Test, ElementwiseOpsRoundOnlyTheirOutputs) {
  const Tensor a = Random(4, 6, 5, 40), b = Random(4, 6, 5, 41);
  ncnn::LayerWeights slopes{RandomValues(4, 42), {}};
  EXPECT_LT(Compare(Layer("PReLU", 1, "0=4"), slopes, {a}), kOneRounding);
  EXPECT_LT(Compare(Layer("Eltwise", 2, "0=1 -23301=2,0.5,-2.0"), {}, {a, b}), kOneRounding);
  EXPECT_LT(Compare(Layer("Eltwise", 2, "0=2"), {}, {a, b}), kOneRounding);
  EXPECT_LT(Compare(Layer("BinaryOp", 2, "0=2"), {}, {a, RandomVector(4, 43)}), kOneRounding);
  EXPECT_LT(Compare(Layer("BinaryOp", 1, "0=0 1=1 2=0.25"), {}, {a}), kOneRounding);
  EXPECT_LT(Compare(Layer("Interp", 1, "0=2 1=2.0 2=2.0"), {}, {a}), kOneRounding);
}

// The squeeze-excitation blocks' layers and bicubic Interp: fp32 arithmetic
// on fp16 activations (a Scale's blob too; its own scales and the weights stay
// fp32), one rounding of the output.
TEST_F(VulkanFp16Test, ScalePoolingInnerProductAndBicubicRoundOnlyTheirOutputs) {
  const Tensor a = Random(4, 9, 7, 60);
  EXPECT_LT(Compare(Layer("Scale", 2, "0=-233"), {}, {a, RandomVector(4, 61)}), kOneRounding);
  EXPECT_LT(Compare(Layer("Scale", 1, "0=4 1=1"), {RandomValues(4, 62), RandomValues(4, 63)}, {a}), kOneRounding);
  EXPECT_LT(Compare(Layer("Pooling", 1, "0=1 4=1"), {}, {a}), kOneRounding);
  EXPECT_LT(Compare(Layer("InnerProduct", 1, "0=8 1=1 2=512 9=1"), {RandomValues(512, 64), RandomValues(8, 65)},
                    {RandomVector(64, 66)}),
            kOneRounding);
  EXPECT_LT(Compare(Layer("InnerProduct", 1, "0=6 1=1 2=48 9=4"), {RandomValues(48, 67), RandomValues(6, 68)},
                    {RandomVector(8, 69)}),
            kOneRounding);
  EXPECT_LT(Compare(Layer("Interp", 1, "0=3 1=0.5 2=0.5"), {}, {Random(3, 12, 10, 70)}), kOneRounding);
  EXPECT_LT(Compare(Layer("Interp", 1, "0=3 1=2.0 2=2.0"), {}, {a}), kOneRounding);
}

TEST_F(VulkanFp16Test, OpsThatMoveValuesMoveThemExactly) {
  const Tensor a = Random(8, 6, 5, 50), b = Random(3, 6, 5, 51);
  EXPECT_EQ(Compare(Layer("Concat", 2, ""), {}, {a, b}), 0.0);
  EXPECT_EQ(Compare(Layer("Crop", 1, "0=1 1=2 2=1 3=3 4=2 5=4"), {}, {a}), 0.0);
  EXPECT_EQ(Compare(Layer("PixelShuffle", 1, "0=2"), {}, {a}), 0.0);
  EXPECT_EQ(Compare(Layer("Interp", 1, "0=1 1=2.0 2=2.0"), {}, {a}), 0.0);
}

}  // namespace
}  // namespace tessera::engine::vulkan
