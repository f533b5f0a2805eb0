// The reference kernels on tiny tensors, against values worked out by hand or
// by a direct double-precision formula written independently here.
#include "engine/ops/reference_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

#include "engine/ncnn/param_parser.h"

namespace tessera::engine::ops {
namespace {

// Parameters from an ncnn-style "k=v ..." string, through the real parser.
ncnn::ParamDict Params(const std::string& kv) {
  auto g = ncnn::ParseParam("7767517\n1 1\nInput in 0 1 data " + kv + "\n", "t.param");
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? g->layers[0].params : ncnn::ParamDict();
}

Tensor Random(int c, int h, int w, int seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  Tensor t = Tensor::Chw(c, h, w);
  for (float& v : t.data) v = d(gen);
  return t;
}

std::vector<float> RandomVec(size_t n, int seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

TEST(ReferenceOpsTest, ConvolutionMatchesADirectSumWithAsymmetricPadsStrideAndDilation) {
  Tensor in = Random(3, 7, 9, 1);
  ncnn::LayerWeights w;
  const int oc = 2, k = 3;
  w.weight = RandomVec(static_cast<size_t>(oc) * 3 * k * k, 2);
  w.bias = {0.5f, -0.25f};
  // pad left 1, right 2, top 0, bottom 1; stride 2 (w) and 1 (h); dilation 2 in h.
  auto p = Params("0=2 1=3 3=2 13=1 12=2 4=1 15=2 14=0 16=1 5=1 6=54");
  auto out = Convolution(in, p, w);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const int ow = (9 + 3 - 3) / 2 + 1, oh = (7 + 1 - 5) / 1 + 1;
  ASSERT_EQ(out->w, ow);
  ASSERT_EQ(out->h, oh);
  for (int o = 0; o < oc; ++o) {
    for (int y = 0; y < oh; ++y) {
      for (int x = 0; x < ow; ++x) {
        double s = w.bias[o];
        for (int c = 0; c < 3; ++c) {
          for (int ky = 0; ky < k; ++ky) {
            for (int kx = 0; kx < k; ++kx) {
              int sy = y + ky * 2, sx = x * 2 + kx - 1;
              if (sy >= 0 && sy < 7 && sx >= 0 && sx < 9) s += double(w.weight[((o * 3 + c) * k + ky) * k + kx]) * in.at(c, sy, sx);
            }
          }
        }
        EXPECT_NEAR(out->at(o, y, x), s, 1e-5);
      }
    }
  }
}

// oneDNN's kernels may store to large outputs with aligned instructions.
TEST(TensorTest, StorageIsAlignedTo64Bytes) {
  for (int edge : {1, 7, 300}) {
    Tensor t = Tensor::Chw(3, edge, edge);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data.data()) % 64, 0u) << edge;
    Tensor copy = t;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(copy.data.data()) % 64, 0u) << edge;
  }
}

TEST(ReferenceOpsTest, ConvolutionActivations) {
  Tensor in = Tensor::Chw(1, 1, 4);
  in.data = {-2.f, -0.5f, 0.5f, 2.f};
  ncnn::LayerWeights w;
  w.weight = {1.f};
  auto leaky = Convolution(in, Params("0=1 1=1 6=1 9=2 -23310=1,1.000000e-01"), w);
  EXPECT_EQ(leaky->data, (std::vector<float>{-0.2f, -0.05f, 0.5f, 2.f}));
  auto relu = Convolution(in, Params("0=1 1=1 6=1 9=1"), w);
  EXPECT_EQ(relu->data, (std::vector<float>{0.f, 0.f, 0.5f, 2.f}));
  auto clip = Convolution(in, Params("0=1 1=1 6=1 9=3 -23310=2,-1.0,1.0"), w);
  EXPECT_EQ(clip->data, (std::vector<float>{-1.f, -0.5f, 0.5f, 1.f}));
  auto sig = Convolution(in, Params("0=1 1=1 6=1 9=4"), w);
  EXPECT_NEAR(sig->data[3], 1.0 / (1.0 + std::exp(-2.0)), 1e-6);
}

TEST(ReferenceOpsTest, DeconvolutionScattersAndCropsItsPadding) {
  Tensor in = Random(2, 3, 4, 3);
  ncnn::LayerWeights w;
  w.weight = RandomVec(2 * 2 * 4 * 4, 4);  // 2 out, 2 in, 4x4
  w.bias = {0.1f, 0.2f};
  auto out = Deconvolution(in, Params("0=2 1=4 3=2 4=1 5=1 6=64"), w);
  ASSERT_TRUE(out.ok());
  // full size (n-1)*2 + 4, minus 1 pad each side
  ASSERT_EQ(out->w, (4 - 1) * 2 + 4 - 2);
  ASSERT_EQ(out->h, (3 - 1) * 2 + 4 - 2);
  for (int o = 0; o < 2; ++o) {
    for (int y = 0; y < out->h; ++y) {
      for (int x = 0; x < out->w; ++x) {
        double s = w.bias[o];
        for (int c = 0; c < 2; ++c) {
          for (int iy = 0; iy < 3; ++iy) {
            for (int ix = 0; ix < 4; ++ix) {
              int ky = y + 1 - iy * 2, kx = x + 1 - ix * 2;
              if (ky >= 0 && ky < 4 && kx >= 0 && kx < 4) s += double(w.weight[((o * 2 + c) * 4 + ky) * 4 + kx]) * in.at(c, iy, ix);
            }
          }
        }
        EXPECT_NEAR(out->at(o, y, x), s, 1e-5);
      }
    }
  }
}

TEST(ReferenceOpsTest, PixelShuffleMovesChannelsIntoSpace) {
  Tensor in = Tensor::Chw(4, 1, 1);
  in.data = {1, 2, 3, 4};
  auto out = PixelShuffle(in, Params("0=2"));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->c, 1);
  EXPECT_EQ(out->data, (std::vector<float>{1, 2, 3, 4}));  // (0,0)=c0 (0,1)=c1 (1,0)=c2 (1,1)=c3
}

TEST(ReferenceOpsTest, CropBothStyles) {
  Tensor in = Random(2, 6, 7, 5);
  auto a = Crop({&in}, Params("-23309=2,1,2 -23310=2,-1,-2 -23311=2,-2,-1"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->h, 4);
  EXPECT_EQ(a->w, 3);
  EXPECT_EQ(a->at(1, 0, 0), in.at(1, 1, 2));
  Tensor ref = Tensor::Chw(2, 3, 3);
  auto b = Crop({&in, &ref}, Params("0=2 1=1"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->h, 3);
  EXPECT_EQ(b->w, 3);
  EXPECT_EQ(b->at(0, 2, 2), in.at(0, 3, 4));
  Tensor small = Tensor::Chw(2, 9, 9);
  EXPECT_FALSE(Crop({&in, &small}, Params("0=2 1=1")).ok());
}

TEST(ReferenceOpsTest, InterpNearestAndBicubic) {
  Tensor in = Random(1, 4, 5, 6);
  auto near = Interp(in, Params("0=1 1=2.0 2=2.0"));
  ASSERT_TRUE(near.ok());
  EXPECT_EQ(near->at(0, 7, 9), in.at(0, 3, 4));
  EXPECT_EQ(near->at(0, 2, 3), in.at(0, 1, 1));
  // Bicubic keeps constants and, on a linear ramp away from the borders, is exact.
  Tensor ramp = Tensor::Chw(1, 8, 8);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) ramp.at(0, y, x) = static_cast<float>(x);
  auto half = Interp(ramp, Params("0=3 1=0.5 2=0.5"));
  ASSERT_TRUE(half.ok());
  ASSERT_EQ(half->w, 4);
  // Output x=1 samples source position (1+0.5)*2-0.5 = 2.5.
  EXPECT_NEAR(half->at(0, 1, 1), 2.5, 1e-5);
  EXPECT_NEAR(half->at(0, 2, 2), 4.5, 1e-5);
  Tensor flat = Tensor::Chw(1, 5, 5, 3.f);
  auto up = Interp(flat, Params("0=3 1=4.0 2=4.0"));
  for (float v : up->data) EXPECT_NEAR(v, 3.f, 1e-5);
}

TEST(ReferenceOpsTest, EltwiseBinaryOpScaleAndPooling) {
  Tensor a = Random(2, 2, 2, 7), b = Random(2, 2, 2, 8);
  auto sum = Eltwise({&a, &b}, Params("0=1 -23301=2,0.2,1.0"));
  EXPECT_NEAR(sum->data[3], 0.2 * a.data[3] + b.data[3], 1e-6);
  Tensor v = Tensor::Vector(2);
  v.data = {2.f, -1.f};
  auto mul = BinaryOp({&a, &v}, Params("0=2"));
  EXPECT_FLOAT_EQ(mul->at(1, 1, 0), -a.at(1, 1, 0));
  auto add = BinaryOp({&a, &b}, Params(""));
  EXPECT_FLOAT_EQ(add->data[5], a.data[5] + b.data[5]);
  auto scaled = Scale({&a, &v}, Params("0=-233"), {});
  EXPECT_FLOAT_EQ(scaled->at(0, 1, 1), 2 * a.at(0, 1, 1));
  auto pooled = GlobalAveragePool(a);
  EXPECT_NEAR(pooled->data[1], (a.at(1, 0, 0) + a.at(1, 0, 1) + a.at(1, 1, 0) + a.at(1, 1, 1)) / 4.0, 1e-6);
}

TEST(ReferenceOpsTest, InnerProductAndPRelu) {
  Tensor v = Tensor::Vector(3);
  v.data = {1, 2, 3};
  ncnn::LayerWeights w;
  w.weight = {1, 0, -1, 0.5, 0.5, 0.5};
  w.bias = {0.f, -10.f};
  auto out = InnerProduct(v, Params("0=2 1=1 2=6 9=1"), w);
  EXPECT_EQ(out->data, (std::vector<float>{0.f, 0.f}));  // -2 and -7, through ReLU
  Tensor m = Tensor::Chw(2, 1, 2);
  m.data = {-1, 1, -2, 2};
  ncnn::LayerWeights slopes;
  slopes.weight = {0.5f, 0.25f};
  auto pr = PRelu(m, slopes);
  EXPECT_EQ(pr->data, (std::vector<float>{-0.5f, 1.f, -0.5f, 2.f}));
}

}  // namespace
}  // namespace tessera::engine::ops
