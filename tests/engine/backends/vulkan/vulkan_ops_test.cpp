// Every op of the Vulkan backend against the reference kernels, one layer at a
// time on small random tensors, on llvmpipe: convolutions and deconvolutions
// of the kernel sizes, strides, paddings, dilations and activations the models
// use; PReLU, Eltwise, BinaryOp (broadcasts, scalar), Concat, Crop, Interp
// (nearest, bilinear, bicubic), PixelShuffle, Scale, global average Pooling,
// InnerProduct; in-place runs; batches of several items; and the layers the
// backend declines.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/ncnn/param_parser.h"
#include "engine/ops/reference_ops.h"
#include "../../ops/layer_test_inputs.h"
#include "vulkan_op_runner.h"
#include "vulkan_test_device.h"

namespace tessera::engine::vulkan {
namespace {

using op_tests::Layer;
using op_tests::Random;
using op_tests::RandomVector;

std::vector<float> RandomValues(size_t n, int seed) {
  const Tensor t = RandomVector(static_cast<int>(n), seed, -0.5f, 0.5f);
  return std::vector<float>(t.data.begin(), t.data.end());
}

struct ConvCase {
  std::string name;
  int in_c;
  std::string kv;  // after 0=num_output, which each case sets
  int kw, kh, out_c;
  bool bias;
};

class VulkanOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto backend = VulkanBackend::Create(test::TestDeviceIndex(), {});
    ASSERT_TRUE(backend.ok()) << backend.status().ToString();
    backend_ = std::move(backend).value();
  }

  // The layer on the Vulkan backend (inputs uploaded, output downloaded) and on
  // the reference kernels; the largest difference. `in_place`: input 0's
  // storage is given up to the op.
  double Compare(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights, const std::vector<Tensor>& inputs,
                 bool in_place = false) {
    auto both = test::RunOnDeviceAndReference(*backend_, layer, weights, inputs, inputs, in_place);
    if (!both) return INFINITY;
    double worst = 0;
    for (size_t i = 0; i < both->reference.size(); ++i) {
      worst = std::max(worst, std::abs(double(both->device.data[i]) - both->reference.data[i]));
    }
    return worst;
  }

  // Each case of `type` (Convolution or Deconvolution) on a random c.in_c x
  // h x w input, seeds from `seed` on: within 1e-5 of the reference.
  void ExpectConvolutionsMatch(const std::string& type, const std::vector<ConvCase>& cases, int seed, int h, int w) {
    for (const ConvCase& c : cases) {
      SCOPED_TRACE(c.name);
      const size_t weights = static_cast<size_t>(c.out_c) * c.in_c * c.kw * c.kh;
      const auto layer = Layer(type, 1, "0=" + std::to_string(c.out_c) + " " + c.kv + " 6=" + std::to_string(weights));
      ncnn::LayerWeights weights_of_case{RandomValues(weights, seed), c.bias ? RandomValues(c.out_c, seed + 1) : std::vector<float>{}};
      EXPECT_LT(Compare(layer, weights_of_case, {Random(c.in_c, h, w, seed + 2)}), 1e-5);
      ++seed;
    }
  }

  // Items of one shape as one batch (n = items.size()), one after the other.
  static Tensor Batch(const std::vector<Tensor>& items) {
    Tensor batch = items[0];
    batch.n = static_cast<int>(items.size());
    for (size_t k = 1; k < items.size(); ++k) batch.data.insert(batch.data.end(), items[k].data.begin(), items[k].data.end());
    return batch;
  }

  std::shared_ptr<VulkanBackend> backend_;
};


TEST_F(VulkanOpsTest, ConvolutionsMatchTheReference) {
  const std::vector<ConvCase> cases = {
      {"3x3 pad 1, bias", 8, "1=3 4=1 5=1", 3, 3, 16, true},
      {"1x1, no bias", 5, "1=1", 1, 1, 7, false},
      {"3x3 stride 2", 4, "1=3 3=2 4=1 5=1", 3, 3, 6, true},
      {"3x3 dilation 2", 4, "1=3 2=2 4=2 5=1", 3, 3, 4, true},
      {"5x3 asymmetric pads", 3, "1=5 11=3 4=2 15=1 14=0 16=2 5=1", 5, 3, 4, true},
      {"4x4 stride 2 (Real-CUGAN's down-sampling)", 6, "1=4 3=2 5=1", 4, 4, 6, true},
      {"pads wider than the kernel (border outputs see no input)", 3, "1=3 4=4 5=1", 3, 3, 9, true},
      {"ReLU", 4, "1=3 4=1 5=1 9=1", 3, 3, 5, true},
      {"leaky ReLU 0.1", 4, "1=3 4=1 5=1 9=2 -23310=1,0.1", 3, 3, 5, true},
      {"clip", 4, "1=3 4=1 5=1 9=3 -23310=2,-0.2,0.3", 3, 3, 5, true},
      {"sigmoid", 4, "1=3 4=1 5=1 9=4", 3, 3, 5, true},
  };
  ExpectConvolutionsMatch("Convolution", cases, 1, 13, 11);
}

// The blocked shaders (conv3x3.comp, conv1x1.comp) split a dispatch into
// channel blocks of workgroups: maps large enough for several workgroups per
// block, channel counts that leave a partial block, widths a partial column block.
TEST_F(VulkanOpsTest, BlockedConvolutionsMatchTheReferenceAcrossWorkgroups) {
  const std::vector<ConvCase> cases = {
      {"3x3 pad 1, 20 outputs", 6, "1=3 4=1 5=1", 3, 3, 20, true},
      {"3x3 no pad, 9 outputs", 5, "1=3 5=1 9=1", 3, 3, 9, true},
      {"1x1, 12 outputs", 7, "1=1 5=1", 1, 1, 12, true},
  };
  // 41 x 37: 5 column blocks per row, 205 blocks, 4 workgroups per channel block.
  ExpectConvolutionsMatch("Convolution", cases, 40, 41, 37);
}

TEST_F(VulkanOpsTest, DeconvolutionsMatchTheReference) {
  const std::vector<ConvCase> cases = {
      {"2x2 stride 2", 6, "1=2 3=2 5=1", 2, 2, 4, true},
      {"4x4 stride 2 pad 1 (Real-CUGAN's up-sampling)", 5, "1=4 3=2 4=1 5=1", 4, 4, 3, true},
      {"3x3 stride 2 with output padding, leaky ReLU", 4, "1=3 3=2 4=1 18=1 5=1 9=2 -23310=1,0.1", 3, 3, 4, true},
      {"3x3 stride 1 pad 1, no bias", 3, "1=3 4=1", 3, 3, 2, false},
  };
  ExpectConvolutionsMatch("Deconvolution", cases, 30, 9, 7);
}

TEST_F(VulkanOpsTest, PReluMatchesTheReference) {
  EXPECT_LT(Compare(Layer("PReLU", 1, "0=6"), {RandomValues(6, 3), {}}, {Random(6, 9, 10, 4)}), 1e-6);
  EXPECT_LT(Compare(Layer("PReLU", 1, "0=1"), {{0.25f}, {}}, {Random(6, 9, 10, 5)}), 1e-6);
  EXPECT_LT(Compare(Layer("PReLU", 1, "0=12"), {RandomValues(12, 6), {}}, {RandomVector(12, 7)}), 1e-6);
  // In place: the output takes the input's storage.
  EXPECT_LT(Compare(Layer("PReLU", 1, "0=6"), {RandomValues(6, 8), {}}, {Random(6, 9, 10, 9)}, true), 1e-6);
}

TEST_F(VulkanOpsTest, EltwiseMatchesTheReference) {
  const std::vector<Tensor> three{Random(5, 8, 9, 10), Random(5, 8, 9, 11), Random(5, 8, 9, 12)};
  EXPECT_LT(Compare(Layer("Eltwise", 3, "0=1 -23301=3,0.5,-1.0,2.0"), {}, three), 1e-6);
  EXPECT_LT(Compare(Layer("Eltwise", 3, "0=1"), {}, three, true), 1e-6);
  EXPECT_LT(Compare(Layer("Eltwise", 3, "0=0"), {}, three), 1e-6);
  EXPECT_LT(Compare(Layer("Eltwise", 2, "0=2"), {}, {three[0], three[1]}), 1e-6);
}

TEST_F(VulkanOpsTest, BinaryOpMatchesTheReferenceWithBroadcasts) {
  const Tensor a = Random(6, 7, 5, 13), b = Random(6, 7, 5, 14, 0.5f, 1.5f);
  const Tensor v = RandomVector(6, 15, 0.5f, 1.5f);
  for (int op = 0; op <= 3; ++op) {
    SCOPED_TRACE("op " + std::to_string(op));
    const std::string kv = "0=" + std::to_string(op);
    EXPECT_LT(Compare(Layer("BinaryOp", 2, kv), {}, {a, b}), 1e-5);
    EXPECT_LT(Compare(Layer("BinaryOp", 2, kv), {}, {a, v}), 1e-5);
    EXPECT_LT(Compare(Layer("BinaryOp", 2, kv), {}, {v, b}), 1e-5);
    EXPECT_LT(Compare(Layer("BinaryOp", 1, kv + " 1=1 2=0.75"), {}, {a}), 1e-5);
  }
  EXPECT_LT(Compare(Layer("BinaryOp", 2, "0=0"), {}, {a, b}, true), 1e-6);
}

TEST_F(VulkanOpsTest, ConcatMatchesTheReference) {
  EXPECT_LT(Compare(Layer("Concat", 3, ""), {}, {Random(2, 6, 5, 16), Random(5, 6, 5, 17), Random(1, 6, 5, 18)}), 1e-9);
  EXPECT_LT(Compare(Layer("Concat", 2, ""), {}, {RandomVector(7, 19), RandomVector(4, 20)}), 1e-9);
}

TEST_F(VulkanOpsTest, CropMatchesTheReference) {
  const Tensor x = Random(6, 12, 10, 21);
  EXPECT_LT(Compare(Layer("Crop", 1, "0=2 1=3 2=1 3=5 4=6 5=4"), {}, {x}), 1e-9);
  EXPECT_LT(Compare(Layer("Crop", 2, "0=1 1=2"), {}, {x, Random(6, 7, 8, 22)}), 1e-9);
  EXPECT_LT(Compare(Layer("Crop", 1, "-23309=2,1,2 -23310=2,-1,-233 -23311=2,1,2"), {}, {x}), 1e-9);
}

TEST_F(VulkanOpsTest, InterpMatchesTheReference) {
  const Tensor x = Random(3, 7, 9, 23);
  EXPECT_LT(Compare(Layer("Interp", 1, "0=1 1=2.0 2=2.0"), {}, {x}), 1e-9);
  EXPECT_LT(Compare(Layer("Interp", 1, "0=1 1=0.5 2=0.5"), {}, {Random(3, 12, 10, 24)}), 1e-9);
  EXPECT_LT(Compare(Layer("Interp", 1, "0=2 1=2.0 2=2.0"), {}, {x}), 1e-5);
  EXPECT_LT(Compare(Layer("Interp", 1, "0=2 3=11 4=5"), {}, {x}), 1e-5);
}

TEST_F(VulkanOpsTest, PixelShuffleMatchesTheReference) {
  EXPECT_LT(Compare(Layer("PixelShuffle", 1, "0=2"), {}, {Random(12, 5, 6, 25)}), 1e-9);
  EXPECT_LT(Compare(Layer("PixelShuffle", 1, "0=3"), {}, {Random(18, 4, 3, 26)}), 1e-9);
}

TEST_F(VulkanOpsTest, BicubicInterpMatchesTheReference) {
  // realesr-animevideov3-x2 and -x3 shrink their input by 0.5 and 0.75.
  EXPECT_LT(Compare(Layer("Interp", 1, "0=3 1=0.5 2=0.5"), {}, {Random(3, 16, 14, 40)}), 1e-5);
  EXPECT_LT(Compare(Layer("Interp", 1, "0=3 1=0.75 2=0.75"), {}, {Random(3, 17, 13, 41)}), 1e-5);
  // Up, with taps past every edge; an output size of its own; one row.
  EXPECT_LT(Compare(Layer("Interp", 1, "0=3 1=2.0 2=3.0"), {}, {Random(2, 5, 4, 42)}), 1e-5);
  EXPECT_LT(Compare(Layer("Interp", 1, "0=3 3=9 4=7"), {}, {Random(2, 6, 11, 43)}), 1e-5);
  EXPECT_LT(Compare(Layer("Interp", 1, "0=3 1=2.0 2=2.0"), {}, {Random(2, 1, 6, 44)}), 1e-5);
}

TEST_F(VulkanOpsTest, ScaleMatchesTheReference) {
  const Tensor x = Random(6, 7, 9, 45);
  // From a second blob, as Real-CUGAN's squeeze-excitation blocks use it.
  EXPECT_LT(Compare(Layer("Scale", 2, "0=-233"), {}, {x, RandomVector(6, 46)}), 1e-6);
  EXPECT_LT(Compare(Layer("Scale", 2, "0=-233"), {}, {x, RandomVector(6, 47)}, true), 1e-6);
  // The layer's own scales, with and without a bias; a vector input.
  EXPECT_LT(Compare(Layer("Scale", 1, "0=6 1=1"), {RandomValues(6, 48), RandomValues(6, 49)}, {x}), 1e-6);
  EXPECT_LT(Compare(Layer("Scale", 1, "0=6"), {RandomValues(6, 50), {}}, {x}), 1e-6);
  EXPECT_LT(Compare(Layer("Scale", 1, "0=12 1=1"), {RandomValues(12, 51), RandomValues(12, 52)}, {RandomVector(12, 53)}),
            1e-6);
}

TEST_F(VulkanOpsTest, GlobalAveragePoolingMatchesTheReference) {
  const auto pool = Layer("Pooling", 1, "0=1 4=1");
  EXPECT_LT(Compare(pool, {}, {Random(5, 7, 9, 54)}), 1e-6);
  EXPECT_LT(Compare(pool, {}, {Random(3, 1, 1, 55)}), 1e-7);
  // Planes larger than a workgroup's 64 lanes many times over (and not a multiple of them).
  EXPECT_LT(Compare(pool, {}, {Random(4, 61, 53, 56)}), 1e-6);
  // Windowed pooling is not what the models (or the reference kernels) have.
  EXPECT_EQ(backend_->MakeOp(Layer("Pooling", 1, "0=0 1=2 2=2"), {}), nullptr);
}

TEST_F(VulkanOpsTest, InnerProductMatchesTheReference) {
  // Real-CUGAN's: 64 -> 8 with ReLU, 8 -> 64 with sigmoid.
  EXPECT_LT(Compare(Layer("InnerProduct", 1, "0=8 1=1 2=512 9=1"), {RandomValues(512, 57), RandomValues(8, 58)},
                    {RandomVector(64, 59)}),
            1e-5);
  EXPECT_LT(Compare(Layer("InnerProduct", 1, "0=64 1=1 2=512 9=4"), {RandomValues(512, 60), RandomValues(64, 61)},
                    {RandomVector(8, 62)}),
            1e-6);
  // No bias, leaky ReLU and clip; a map read flat.
  EXPECT_LT(Compare(Layer("InnerProduct", 1, "0=5 2=60 9=2 -23310=1,0.1"), {RandomValues(60, 63), {}},
                    {Random(3, 4, 1, 64)}),
            1e-5);
  EXPECT_LT(Compare(Layer("InnerProduct", 1, "0=5 1=1 2=60 9=3 -23310=2,-0.1,0.2"),
                    {RandomValues(60, 65), RandomValues(5, 66)}, {RandomVector(12, 67)}),
            1e-5);
}

// A batch of items runs each as it runs alone (device tiling's batches).
TEST_F(VulkanOpsTest, BatchedItemsMatchTheReferenceOneByOne) {
  const auto se = Layer("InnerProduct", 1, "0=4 1=1 2=24 9=4");
  const ncnn::LayerWeights se_weights{RandomValues(24, 70), RandomValues(4, 71)};
  const auto scale = Layer("Scale", 2, "0=-233");
  const auto pool = Layer("Pooling", 1, "0=1 4=1");
  const auto bicubic = Layer("Interp", 1, "0=3 1=0.5 2=0.5");
  const int items = 3;
  std::vector<Tensor> maps, vectors;
  for (int k = 0; k < items; ++k) {
    maps.push_back(Random(4, 8, 6, 72 + k));
    vectors.push_back(RandomVector(6, 80 + k));
  }
  struct Case {
    const char* name;
    const ncnn::LayerSpec& layer;
    const ncnn::LayerWeights& weights;
    std::vector<const std::vector<Tensor>*> inputs;
  };
  const ncnn::LayerWeights none;
  std::vector<Tensor> scales;
  for (int k = 0; k < items; ++k) scales.push_back(RandomVector(4, 90 + k));
  const Case cases[] = {{"InnerProduct", se, se_weights, {&vectors}},
                        {"Scale", scale, none, {&maps, &scales}},
                        {"Pooling", pool, none, {&maps}},
                        {"bicubic Interp", bicubic, none, {&maps}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<Tensor> batches;
    for (const std::vector<Tensor>* per_item : c.inputs) batches.push_back(Batch(*per_item));
    std::vector<Tensor> expected;
    for (int k = 0; k < items; ++k) {
      std::vector<const Tensor*> host;
      for (const std::vector<Tensor>* per_item : c.inputs) host.push_back(&(*per_item)[k]);
      auto want = ops::ForwardLayer(c.layer, c.weights, host);
      ASSERT_TRUE(want.ok()) << want.status().ToString();
      expected.push_back(want->front());
    }
    std::unique_ptr<Op> op = backend_->MakeOp(c.layer, c.weights);
    ASSERT_NE(op, nullptr);
    std::vector<Tensor> on_device;
    for (const Tensor& b : batches) {
      auto up = backend_->FromHost(b);
      ASSERT_TRUE(up.ok()) << up.status().ToString();
      on_device.push_back(std::move(up).value());
    }
    OpInputs run;
    for (Tensor& t : on_device) run.tensors.push_back(&t), run.writable.push_back(nullptr);
    auto got = op->Run(run);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    auto back = backend_->ToHost(*got);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_EQ(back->n, items);
    const size_t per_item = expected[0].size();
    ASSERT_EQ(back->size(), per_item * items);
    for (int k = 0; k < items; ++k) {
      double worst = 0;
      for (size_t i = 0; i < per_item; ++i) {
        worst = std::max(worst, std::abs(double(back->data[k * per_item + i]) - expected[k].data[i]));
      }
      EXPECT_LT(worst, 1e-5) << "item " << k;
    }
  }
}

// What the models never have stays with the CPU backend (the executor's fallback).
TEST_F(VulkanOpsTest, LayersWithoutAShaderAreDeclined) {
  // ncnn's "same" padding (negative pads), which the model checker refuses too.
  EXPECT_EQ(backend_->MakeOp(Layer("Convolution", 1, "0=2 1=3 4=-233 6=36"), {RandomValues(36, 4), {}}), nullptr);
  EXPECT_EQ(backend_->MakeOp(Layer("InnerProduct", 1, "0=4 1=1 2=16 9=7"), {RandomValues(16, 1), RandomValues(4, 2)}),
            nullptr);
  EXPECT_EQ(backend_->MakeOp(Layer("Interp", 1, "0=4 1=2.0 2=2.0"), {}), nullptr);
}

TEST_F(VulkanOpsTest, TensorsRoundTripThroughTheDevice) {
  const Tensor x = Random(5, 17, 13, 27);
  auto on_device = backend_->FromHost(x);
  ASSERT_TRUE(on_device.ok()) << on_device.status().ToString();
  EXPECT_TRUE(on_device->on_device());
  EXPECT_EQ(on_device->layout, Layout::kPlain);
  auto back = backend_->ToHost(*on_device);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->data, std::vector<float>(x.data.begin(), x.data.end()));
  EXPECT_EQ(backend_->Convert(*on_device, Layout::kChannelsLast).status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(backend_->Allocate(3, 4, 5, 6, Layout::kPlain, DataType::kF16).status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace tessera::engine::vulkan
