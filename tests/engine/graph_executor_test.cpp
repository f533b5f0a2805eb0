// The oneDNN backend against the reference kernels, whole networks and single
// convolutions: the same graph, two independent implementations of its heavy
// layers, must agree to float rounding.
#include "engine/graph_executor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/model_catalog.h"
#include "engine/ncnn/param_parser.h"
#include "engine/ops/dnnl_convolution.h"
#include "engine/ops/reference_ops.h"

namespace tessera::engine {
namespace {

Tensor RandomImage(int c, int h, int w, int seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(0.f, 1.f);
  Tensor t = Tensor::Chw(c, h, w);
  for (float& v : t.data) v = d(gen);
  return t;
}

double MaxAbsDiff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a.data[i]) - b.data[i]));
  return m;
}

struct ModelCase {
  const char* name;
  int size;  // input edge: enough for the model's internal crops
};

class BackendAgreementTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(BackendAgreementTest, OneDnnMatchesTheReferenceKernels) {
  auto model = ncnn::LoadModel(DefaultModelDir(), GetParam().name);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Tensor input = RandomImage(3, GetParam().size, GetParam().size, 11);
  GraphExecutor reference(*model, ComputeBackend::kReference);
  GraphExecutor fast(*model, ComputeBackend::kOneDnn);
  auto a = reference.Run(input, Deadline());
  auto b = fast.Run(input, Deadline());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(a->w, b->w);
  ASSERT_EQ(a->h, b->h);
  EXPECT_LT(MaxAbsDiff(*a, *b), 2e-4) << GetParam().name;
  // Running again reuses the compiled primitives and gives the same bytes.
  auto c = fast.Run(input, Deadline());
  EXPECT_EQ(b->data, c->data);
}

INSTANTIATE_TEST_SUITE_P(Models, BackendAgreementTest,
                         ::testing::Values(ModelCase{"realesr-animevideov3-x2", 24}, ModelCase{"realesr-animevideov3-x3", 24},
                                           ModelCase{"realesrgan-x4fast", 16}, ModelCase{"realesrgan-x4plus", 10},
                                           ModelCase{"up2x-conservative", 44}, ModelCase{"up3x-conservative", 36},
                                           ModelCase{"up4x-conservative", 46}, ModelCase{"cunet-x2", 44},
                                           ModelCase{"cunet-noise1", 64}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return n;
                         });

ncnn::LayerSpec Layer(const std::string& type, const std::string& kv) {
  auto g = ncnn::ParseParam("7767517\n2 2\nInput in 0 1 a\n" + type + " l 1 1 a b " + kv + "\n", "t.param");
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g->layers[1];
}

struct ConvCase {
  const char* type;
  const char* params;
  int in_c, out_c, k;
};

class DnnlConvolutionTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(DnnlConvolutionTest, MatchesTheReferenceKernel) {
  const ConvCase& c = GetParam();
  ncnn::LayerSpec layer = Layer(c.type, c.params);
  ncnn::LayerWeights w;
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f);
  w.weight.resize(static_cast<size_t>(c.in_c) * c.out_c * c.k * c.k);
  for (float& v : w.weight) v = d(gen);
  if (layer.params.GetInt(5, 0)) w.bias = std::vector<float>(c.out_c, 0.125f);
  Tensor in = RandomImage(c.in_c, 13, 11, 5);
  auto expected = std::string(c.type) == "Convolution" ? ops::Convolution(in, layer.params, w)
                                                       : ops::Deconvolution(in, layer.params, w);
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  ops::DnnlConvolution conv(layer, w);
  auto got = conv.Run(in);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->c, expected->c);
  ASSERT_EQ(got->h, expected->h);
  ASSERT_EQ(got->w, expected->w);
  EXPECT_LT(MaxAbsDiff(*got, *expected), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DnnlConvolutionTest,
    ::testing::Values(ConvCase{"Convolution", "0=8 1=3 4=1 5=1 6=432", 6, 8, 3},
                      ConvCase{"Convolution", "0=4 1=3 3=2 4=0 15=1 14=1 16=0 5=0 6=72 9=2 -23310=1,0.2", 2, 4, 3},
                      ConvCase{"Convolution", "0=5 1=1 5=1 6=15 9=4", 3, 5, 1},
                      ConvCase{"Convolution", "0=3 1=3 2=2 4=2 5=1 6=27 9=3 -23310=2,-0.1,0.2", 3, 3, 3},
                      ConvCase{"Deconvolution", "0=4 1=4 3=2 4=1 5=1 6=96 9=2 -23310=1,0.1", 6, 4, 4},
                      ConvCase{"Deconvolution", "0=3 1=2 3=2 5=1 6=48", 8, 3, 2},
                      ConvCase{"Deconvolution", "0=2 1=5 3=3 4=2 5=0 6=100", 4, 2, 5}));

}  // namespace
}  // namespace tessera::engine

namespace tessera::engine {
namespace {

// The blocked layout (nChw8c) round trip, with a channel count that leaves the
// last group of 8 padded: conv output kept blocked, PReLU applied on it, then
// back to plain, equals the same steps on plain tensors.
TEST(BlockedLayoutTest, PReluOnBlockedTensorsMatchesPlain) {
  ncnn::LayerSpec layer = Layer("Convolution", "0=12 1=3 4=1 5=1 6=648");
  ncnn::LayerWeights w;
  std::mt19937 gen(9);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f);
  w.weight.resize(12 * 6 * 9);
  for (float& v : w.weight) v = d(gen);
  w.bias = std::vector<float>(12, -0.1f);
  ops::DnnlConvolution conv(layer, w);
  Tensor in = RandomImage(6, 17, 19, 4);
  auto plain = conv.Run(in, /*blocked_output_ok=*/false);
  auto blocked = conv.Run(in, /*blocked_output_ok=*/true);
  ASSERT_TRUE(plain.ok() && blocked.ok());
  EXPECT_EQ(plain->block, 0);
  ASSERT_EQ(blocked->block, 8) << "oneDNN chose another layout on this machine";
  ncnn::LayerWeights slopes;
  slopes.weight.resize(12);
  for (int q = 0; q < 12; ++q) slopes.weight[q] = 0.05f * q;
  ASSERT_TRUE(ops::PReluInPlace(&*plain, slopes).ok());
  ASSERT_TRUE(ops::PReluInPlace(&*blocked, slopes).ok());
  auto back = ops::ToPlain(*blocked);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->block, 0);
  EXPECT_EQ(back->data, plain->data);
}

}  // namespace
}  // namespace tessera::engine
