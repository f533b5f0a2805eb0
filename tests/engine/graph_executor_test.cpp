// The oneDNN backend against the reference backend, whole networks and single
// convolutions: the same graph, two independent implementations of its heavy
// layers, must agree to float rounding — in every activation layout (forced
// explicitly, so that every path runs whatever oneDNN would choose on this
// CPU), fused and unfused.
#include "engine/graph_executor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>

#include "engine/backends/onednn_backend.h"
#include "engine/backends/reference_backend.h"
#include "engine/model_catalog.h"
#include "engine/ncnn/param_parser.h"
#include "engine/ops/dnnl_convolution.h"
#include "engine/ops/dnnl_op.h"
#include "engine/ops/reference_ops.h"
#include "ops/layer_test_inputs.h"

namespace tessera::engine {
namespace {

Tensor RandomImage(int c, int h, int w, int seed, float lo = 0.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t = Tensor::Chw(c, h, w);
  for (float& v : t.data) v = d(gen);
  return t;
}

double MaxAbsDiff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a.data[i]) - b.data[i]));
  return m;
}

// The oneDNN backend configurations every network is checked in: the layout
// oneDNN picks here, each layout forced, and the picked one unfused. Under an
// ISA cap (ctest's engine_under_* runs) the forced layouts, already run
// uncapped, are left out: what the cap changes is oneDNN's own choice.
std::vector<std::pair<std::string, OneDnnBackendOptions>> OneDnnConfigurations() {
  std::vector<std::pair<std::string, OneDnnBackendOptions>> configs;
  configs.push_back({"auto", {}});
  const bool capped = std::getenv("ONEDNN_MAX_CPU_ISA") != nullptr;
  for (Layout layout : kAllLayouts) {
    if (capped) break;
    OneDnnBackendOptions forced;
    forced.layout = layout;
    configs.push_back({std::string(LayoutName(layout)), forced});
  }
  OneDnnBackendOptions unfused;
  unfused.fuse = false;
  configs.push_back({"auto unfused", unfused});
  return configs;
}

struct ModelCase {
  const char* name;
  int size;  // input edge: enough for the model's internal crops
};

class BackendAgreementTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(BackendAgreementTest, OneDnnMatchesTheReferenceKernelsInEveryLayout) {
  auto model = ncnn::LoadModel(DefaultModelDir(), GetParam().name);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Tensor input = RandomImage(3, GetParam().size, GetParam().size, 11);
  ReferenceBackend reference_backend;
  GraphExecutor reference(*model, reference_backend);
  auto a = reference.Run(input, Deadline());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  for (const auto& [name, options] : OneDnnConfigurations()) {
    SCOPED_TRACE(std::string(GetParam().name) + " on oneDNN, " + name + " (" + OneDnnBackend::EffectiveIsa() + ")");
    OneDnnBackend onednn(options);
    GraphExecutor fast(*model, onednn, &reference_backend);
    RunStats stats;
    auto b = fast.Run(input, Deadline(), &stats);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ASSERT_EQ(b->layout, Layout::kPlain);
    ASSERT_EQ(a->w, b->w);
    ASSERT_EQ(a->h, b->h);
    EXPECT_LT(MaxAbsDiff(*a, *b), 2e-4);
    // Running again reuses the compiled primitives and gives the same bytes.
    auto c = fast.Run(input, Deadline());
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(b->data, c->data);
  }
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
  // Forced layouts, and oneDNN's own choice; the input in each layout.
  std::vector<std::optional<Layout>> forced = {std::nullopt};
  for (Layout l : kAllLayouts) forced.push_back(l);
  for (const std::optional<Layout>& layout : forced) {
    ops::DnnlConvOptions options;
    options.layout = layout;
    ops::DnnlConvolution conv(layer, w, options);
    for (Layout in_layout : kAllLayouts) {
      for (LayoutSet readers : {LayoutSet::All(), LayoutSet::PlainOnly()}) {
        SCOPED_TRACE(std::string(layout ? LayoutName(*layout) : "auto") + ", input " +
                     std::string(LayoutName(in_layout)) + (readers == LayoutSet::All() ? "" : ", plain readers"));
        auto laid_out = ops::ToLayout(in, in_layout);
        ASSERT_TRUE(laid_out.ok());
        auto got = conv.Run({{&*laid_out}, {nullptr}, readers});
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        if (readers == LayoutSet::PlainOnly()) { EXPECT_EQ(got->layout, Layout::kPlain); }
        if (layout && readers == LayoutSet::All()) { EXPECT_EQ(got->layout, *layout); }
        auto plain = ops::ToPlain(*got);
        ASSERT_TRUE(plain.ok());
        ASSERT_EQ(plain->c, expected->c);
        ASSERT_EQ(plain->h, expected->h);
        ASSERT_EQ(plain->w, expected->w);
        EXPECT_LT(MaxAbsDiff(*plain, *expected), 1e-4);
      }
    }
  }
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

// Each layout's round trip, with a channel count that leaves the last block
// padded: a convolution forced to write the layout, PReLU on it in place, then
// back to plain, equals the same steps on plain tensors. Nothing here depends
// on the layout oneDNN would pick on this CPU.
TEST(LayoutTest, PReluOnEveryLayoutMatchesPlain) {
  ncnn::LayerSpec layer = Layer("Convolution", "0=12 1=3 4=1 5=1 6=648");
  ncnn::LayerWeights w;
  std::mt19937 gen(9);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f);
  w.weight.resize(12 * 6 * 9);
  for (float& v : w.weight) v = d(gen);
  w.bias = std::vector<float>(12, -0.1f);
  ncnn::LayerWeights slopes;
  slopes.weight.resize(12);
  for (int q = 0; q < 12; ++q) slopes.weight[q] = 0.05f * q;
  Tensor in = RandomImage(6, 17, 19, 4);
  ops::DnnlConvolution plain_conv(layer, w);
  auto plain = plain_conv.Run({{&in}, {nullptr}, LayoutSet::PlainOnly()});
  ASSERT_TRUE(plain.ok());
  ASSERT_EQ(plain->layout, Layout::kPlain);
  ASSERT_TRUE(ops::PReluInPlace(&*plain, slopes).ok());
  const ncnn::LayerSpec prelu = Layer("PReLU", "0=12");
  for (Layout layout : kAllLayouts) {
    SCOPED_TRACE(LayoutName(layout));
    ops::DnnlConvOptions options;
    options.layout = layout;
    ops::DnnlConvolution conv(layer, w, options);
    auto laid_out = conv.Run({{&in}, {nullptr}, LayoutSet::All()});
    ASSERT_TRUE(laid_out.ok());
    ASSERT_EQ(laid_out->layout, layout);
    auto op = ops::MakeDnnlOp(prelu, slopes, {});
    auto activated = op->Run({{&*laid_out}, {&*laid_out}, LayoutSet::All()});
    ASSERT_TRUE(activated.ok());
    EXPECT_EQ(activated->layout, layout);
    auto back = ops::ToPlain(*activated);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->layout, Layout::kPlain);
    EXPECT_LT(MaxAbsDiff(*back, *plain), 1e-5);  // other kernels: other rounding
  }
}

// A graph of its own: conv -> PReLU, conv(+leaky ReLU) -> Eltwise sum with
// coefficients against a residual, conv -> BinaryOp add (into the graph's
// output). Fused (the executor absorbs the PReLU and both sums) and unfused
// give the reference's values.
const char* kFusableGraph =
    "7767517\n"
    "9 11\n"
    "Input in 0 1 x\n"
    "Split s 1 2 x x0 x1\n"
    "Convolution c1 1 1 x0 a 0=8 1=3 4=1 5=1 6=216\n"
    "PReLU p 1 1 a b 0=8\n"
    "Convolution c2 1 1 b c 0=3 1=3 4=1 5=1 6=216 9=2 -23310=1,0.2\n"
    "Eltwise e 2 1 c x1 d 0=1 -23301=2,0.2,1.0\n"
    "Split s2 1 2 d d0 d1\n"
    "Convolution c3 1 1 d0 f 0=3 1=1 5=1 6=9\n"
    "BinaryOp add 2 1 d1 f out 0=0\n";

ncnn::Model FusableModel() {
  return op_tests::RandomModel("fusable", kFusableGraph, {{2, {216, 8}}, {3, {8, 0}}, {4, {216, 3}}, {7, {9, 3}}}, 21,
                               0.3f);
}

// Whether oneDNN fuses a pair by default depends on its kernels for this CPU
// (it declines where the fused primitive would be its reference kernel), so
// the fused path is also forced on, in every layout, on any machine.
TEST(FusionTest, ActivationsAndResidualSumsFuseIntoConvolutionsWithTheSameValues) {
  const ncnn::Model model = FusableModel();
  Tensor input = RandomImage(3, 15, 13, 8, -1.f, 1.f);
  ReferenceBackend reference_backend;
  auto expected = GraphExecutor(model, reference_backend).Run(input, Deadline());
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  auto configurations = OneDnnConfigurations();
  for (Layout layout : kAllLayouts) {
    OneDnnBackendOptions forced;
    forced.layout = layout;
    forced.fuse_on_any_kernel = true;
    configurations.push_back({std::string(LayoutName(layout)) + " fused on any kernel", forced});
  }
  for (const auto& [name, options] : configurations) {
    SCOPED_TRACE(name);
    OneDnnBackend onednn(options);
    GraphExecutor executor(model, onednn, &reference_backend);
    if (!options.fuse) { EXPECT_EQ(executor.fused_layers(), 0); }
    if (options.fuse_on_any_kernel) { EXPECT_EQ(executor.fused_layers(), 3); }
    RunStats stats;
    auto got = executor.Run(input, Deadline(), &stats);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_LT(MaxAbsDiff(*got, *expected), 1e-5);
    // Every fused layer shows in the step names, and is not run on its own.
    int fused_names = 0;
    for (const auto& [step, ms] : stats.ms_by_layer_type) fused_names += static_cast<int>(std::count(step.begin(), step.end(), '+'));
    EXPECT_EQ(fused_names, executor.fused_layers());
    EXPECT_EQ(stats.ms_by_layer_type.count("PReLU") + stats.ms_by_layer_type.count("Convolution+PReLU"), 1u);
    if (options.fuse_on_any_kernel) {
      EXPECT_EQ(stats.ms_by_layer_type.count("Convolution+PReLU"), 1u);
      EXPECT_EQ(stats.ms_by_layer_type.count("Convolution+Eltwise"), 1u);
      EXPECT_EQ(stats.ms_by_layer_type.count("Convolution+BinaryOp"), 1u);
    }
  }
}

// Where Winograd runs (oneDNN 2.6 on AVX-512), a scale before a sum is folded
// into the weights and the activations / PReLUs it cannot take run after the
// convolution as passes of their own; post_ops_after does the same on the
// direct algorithm, so the path is checked on every CPU, in every layout.
TEST(FusionTest, PostOpsRunAfterTheConvolutionGiveTheSameValues) {
  auto graph = ncnn::ParseParam(
      "7767517\n6 7\nInput in 0 1 x\nSplit s 1 2 x x0 x1\n"
      "Convolution c1 1 1 x0 a 0=16 1=3 4=1 5=1 6=2304\nEltwise e 2 1 a x1 b 0=1 -23301=2,0.2,1.0\n"
      "Convolution c2 1 1 b c 0=16 1=3 4=1 5=1 6=2304 9=2 -23310=1,0.1\nPReLU p 1 1 c out 0=16\n",
      "tail.param");
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ncnn::Model model;
  model.name = "tail";
  model.graph = std::move(graph).value();
  model.weights.resize(model.graph.layers.size());
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> d(-0.2f, 0.2f);
  auto fill = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = d(gen);
    return v;
  };
  model.weights[2] = {fill(2304), fill(16)};
  model.weights[4] = {fill(2304), fill(16)};
  model.weights[5] = {fill(16), {}};
  Tensor input = RandomImage(16, 17, 19, 3, -1.f, 1.f);
  ReferenceBackend reference_backend;
  auto expected = GraphExecutor(model, reference_backend).Run(input, Deadline());
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  std::vector<std::pair<std::string, OneDnnBackendOptions>> configurations = {{"auto", {}}};
  for (Layout layout : kAllLayouts) {
    OneDnnBackendOptions after;
    after.layout = layout;
    after.fuse_on_any_kernel = true;
    after.post_ops_after = true;
    configurations.push_back({std::string(LayoutName(layout)) + " post-ops after", after});
  }
  for (const auto& [name, options] : configurations) {
    SCOPED_TRACE(name);
    OneDnnBackend onednn(options);
    GraphExecutor executor(model, onednn, &reference_backend);
    if (options.post_ops_after) { EXPECT_EQ(executor.fused_layers(), 2); }
    auto got = executor.Run(input, Deadline());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_LT(MaxAbsDiff(*got, *expected), 1e-5);
  }
}

// The sum is absorbed only when its other input already exists where the
// convolution runs, and the convolution's output is read by nothing else.
TEST(FusionTest, AnOutputReadTwiceIsNotFused) {
  auto graph = ncnn::ParseParam(
      "7767517\n5 6\nInput in 0 1 x\nConvolution c 1 1 x a 0=3 1=1 6=9\nSplit s 1 2 a a0 a1\n"
      "PReLU p 1 1 a0 b 0=1\nEltwise e 2 1 b a1 out 0=1\n",
      "t.param");
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ncnn::Model model;
  model.name = "t";
  model.graph = std::move(graph).value();
  model.weights.resize(model.graph.layers.size());
  model.weights[1].weight = std::vector<float>(9, 0.5f);
  model.weights[3].weight = {0.1f};
  OneDnnBackend onednn;
  ReferenceBackend reference;
  GraphExecutor executor(model, onednn, &reference);
  EXPECT_EQ(executor.fused_layers(), 0);
  Tensor input = RandomImage(3, 5, 4, 2, -1.f, 1.f);
  auto got = executor.Run(input, Deadline());
  auto want = GraphExecutor(model, reference).Run(input, Deadline());
  ASSERT_TRUE(got.ok() && want.ok());
  EXPECT_LT(MaxAbsDiff(*got, *want), 1e-6);
}

// A layer the backend declines (bicubic Interp on oneDNN) runs on the fallback;
// with no fallback the run says which layer no backend runs.
TEST(GraphExecutorTest, DeclinedLayersRunOnTheFallbackBackend) {
  auto graph = ncnn::ParseParam(
      "7767517\n3 3\nInput in 0 1 x\nConvolution c 1 1 x a 0=4 1=1 6=12\nInterp up 1 1 a out 0=3 1=2.0 2=2.0\n",
      "t.param");
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ncnn::Model model;
  model.name = "t";
  model.graph = std::move(graph).value();
  model.weights.resize(3);
  model.weights[1].weight = std::vector<float>(12, 0.25f);
  Tensor input = RandomImage(3, 6, 5, 1);
  OneDnnBackend onednn;
  ReferenceBackend reference;
  GraphExecutor with_fallback(model, onednn, &reference);
  EXPECT_EQ(with_fallback.Describe(), "cpu onednn (+reference for 1 layer)");
  auto got = with_fallback.Run(input, Deadline());
  auto want = GraphExecutor(model, reference).Run(input, Deadline());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(want.ok());
  EXPECT_LT(MaxAbsDiff(*got, *want), 1e-5);
  auto refused = GraphExecutor(model, onednn).Run(input, Deadline());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(refused.status().message().find("'up' (Interp)"), std::string::npos) << refused.status().message();
}

// Under ONEDNN_MAX_CPU_ISA (ctest runs this binary again with AVX2 and
// AVX512_CORE), oneDNN runs what it was told, or the CPU lacks the ISA.
TEST(IsaTest, OneDnnRunsTheIsaItWasCapped) {
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  const std::string isa = OneDnnBackend::EffectiveIsa();
  if (cap == nullptr) {
    SUCCEED() << "no cap: oneDNN runs " << isa;
    return;
  }
  const std::string wanted(cap);
  if (wanted == "AVX2") {
    EXPECT_TRUE(isa == "avx2" || isa == "avx" || isa == "sse41") << isa;
  } else if (wanted == "AVX512_CORE") {
    if (isa.rfind("avx512", 0) != 0) GTEST_SKIP() << "this CPU has no AVX-512 (oneDNN runs " << isa << ")";
    EXPECT_EQ(isa, "avx512_core");
  }
}

}  // namespace
}  // namespace tessera::engine
