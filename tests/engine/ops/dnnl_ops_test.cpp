// The oneDNN ops of the light layers against the reference kernels, one layer
// at a time on small random tensors: inputs in every layout (plain,
// channels-last, 8- and 16-channel blocks, forced explicitly so that every path
// runs on any CPU), channel counts that leave the last block padded,
// broadcasts, in-place runs, and shapes that must be refused.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "engine/ncnn/param_parser.h"
#include "engine/ops/dnnl_op.h"
#include "engine/ops/dnnl_support.h"
#include "engine/ops/reference_ops.h"
#include "layer_test_inputs.h"

namespace tessera::engine::ops {
namespace {

using op_tests::Layer;
using op_tests::Random;
using op_tests::RandomVector;

std::vector<float> Values(const Tensor& t) { return std::vector<float>(t.data.begin(), t.data.end()); }

Tensor InLayout(const Tensor& t, Layout layout) { return t.dims == 3 ? Relayout(t, layout) : t; }

// Padding channels of a blocked tensor are zero (a convolution reading it would
// otherwise see them).
bool PaddingIsZero(const Tensor& t) {
  const int block = ChannelBlock(t.layout);
  if (block == 1) return true;
  const size_t plane = t.plane();
  for (int g = 0; g < (t.c + block - 1) / block; ++g) {
    for (size_t i = 0; i < plane; ++i) {
      for (int j = 0; j < block; ++j) {
        if (g * block + j >= t.c && t.data[(static_cast<size_t>(g) * plane + i) * block + j] != 0.f) return false;
      }
    }
  }
  return true;
}

// An op's inputs: `writable_first` gives input 0's storage up.
OpInputs Inputs(const std::vector<const Tensor*>& in, Tensor* writable_first, LayoutSet readers) {
  OpInputs run{in, std::vector<Tensor*>(in.size(), nullptr), readers};
  if (!in.empty()) run.writable[0] = writable_first;
  return run;
}

double MaxAbsDiff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a.data[i]) - b.data[i]));
  return m;
}

// Runs `layer` through the reference kernel on plain inputs, and through its
// oneDNN op with input k in `layout` where bit k of `mask` is set (plain
// elsewhere); the two must agree. `in_place` hands input 0 to the op as
// writable; `any_output` lets it write any layout.
void ExpectMatchesReference(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights,
                            const std::vector<Tensor>& plain, Layout layout, unsigned mask, bool in_place = false,
                            bool any_output = true, double tolerance = 1e-5) {
  SCOPED_TRACE(layer.type + " " + std::to_string(layer.params.GetInt(0, 0)) + " " + std::to_string(plain.size()) +
               " inputs, " + std::string(LayoutName(layout)) + " mask " + std::to_string(mask) +
               (in_place ? " in place" : "") + (any_output ? "" : " plain output"));
  const LayoutSet readers = any_output ? LayoutSet::All() : LayoutSet::PlainOnly();
  std::vector<const Tensor*> ref_in;
  for (const Tensor& t : plain) ref_in.push_back(&t);
  auto expected = ForwardLayer(layer, weights, ref_in);
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  std::vector<Tensor> laid_out;
  for (size_t k = 0; k < plain.size(); ++k) laid_out.push_back((mask >> k) & 1 ? InLayout(plain[k], layout) : plain[k]);
  std::vector<const Tensor*> in;
  for (const Tensor& t : laid_out) in.push_back(&t);
  std::unique_ptr<DnnlOp> op = MakeDnnlOp(layer, weights, {});
  ASSERT_NE(op, nullptr);
  auto got = op->Run(Inputs(in, in_place ? &laid_out[0] : nullptr, readers));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(PaddingIsZero(*got));
  auto plain_got = ToPlain(*got);
  ASSERT_TRUE(plain_got.ok());
  const Tensor& want = (*expected)[0];
  ASSERT_EQ(plain_got->dims, want.dims);
  ASSERT_EQ(plain_got->c, want.c);
  ASSERT_EQ(plain_got->h, want.h);
  ASSERT_EQ(plain_got->w, want.w);
  ASSERT_EQ(plain_got->size(), want.size());
  EXPECT_LE(MaxAbsDiff(*plain_got, want), tolerance);
  // Run twice: the second run reuses the compiled primitive.
  if (!in_place) {
    auto again = op->Run(Inputs(in, nullptr, readers));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->data, got->data);
  }
}

// For each layout, every combination of it and plain for the 3-D inputs.
void ExpectMatchesInAllLayouts(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights,
                               const std::vector<Tensor>& plain, double tolerance = 1e-5) {
  for (Layout layout : kAllLayouts) {
    if (layout == Layout::kPlain) continue;
    for (unsigned mask = 0; mask < (1u << plain.size()); ++mask) {
      bool meaningful = true;
      for (size_t k = 0; k < plain.size(); ++k) meaningful = meaningful && (((mask >> k) & 1) == 0 || plain[k].dims == 3);
      if (!meaningful || (mask == 0 && layout != Layout::kChannelsLast)) continue;  // all plain: once
      ExpectMatchesReference(layer, weights, plain, layout, mask, false, true, tolerance);
      ExpectMatchesReference(layer, weights, plain, layout, mask, true, true, tolerance);
      ExpectMatchesReference(layer, weights, plain, layout, mask, false, false, tolerance);
    }
  }
}

Status RunStatus(const ncnn::LayerSpec& layer, const ncnn::LayerWeights& weights, const std::vector<Tensor>& in) {
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : in) ptrs.push_back(&t);
  auto op = MakeDnnlOp(layer, weights, {});
  if (op == nullptr) return InternalError("no op");
  return op->Run(Inputs(ptrs, nullptr, LayoutSet::PlainOnly())).status();
}

TEST(DnnlOpsTest, PReluPerChannelAndSingleSlope) {
  for (int c : {13, 16}) {
    ncnn::LayerWeights per_channel;
    per_channel.weight = Values(RandomVector(c, 2));
    ExpectMatchesInAllLayouts(Layer("PReLU", 1, "0=" + std::to_string(c)), per_channel, {Random(c, 7, 9, 1)});
  }
  ncnn::LayerWeights single;
  single.weight = {0.25f};
  ExpectMatchesInAllLayouts(Layer("PReLU", 1, "0=1"), single, {Random(11, 5, 6, 3)});
  ExpectMatchesInAllLayouts(Layer("PReLU", 1, "0=1"), single, {RandomVector(20, 4)});
}

TEST(DnnlOpsTest, PReluOnATileSizedMapInPlaceInEveryLayout) {
  ncnn::LayerWeights slopes;
  slopes.weight = Values(RandomVector(64, 7));
  for (Layout layout : kAllLayouts) {
    ExpectMatchesReference(Layer("PReLU", 1, "0=64"), slopes, {Random(64, 220, 220, 8)}, layout, 1, /*in_place=*/true);
  }
}

TEST(DnnlOpsTest, PReluRefusesSlopesThatDoNotMatchTheChannels) {
  ncnn::LayerWeights w;
  w.weight = {0.1f, 0.2f};
  Status s = RunStatus(Layer("PReLU", 1, "0=2"), w, {Random(3, 4, 4, 1)});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("slopes"), std::string::npos) << s.message();
}

TEST(DnnlOpsTest, EltwiseSumWithCoefficientsProductAndMax) {
  const std::vector<Tensor> two = {Random(13, 6, 7, 1), Random(13, 6, 7, 2)};
  const std::vector<Tensor> three = {Random(9, 5, 4, 3), Random(9, 5, 4, 4), Random(9, 5, 4, 5)};
  ExpectMatchesInAllLayouts(Layer("Eltwise", 2, "0=1 -23301=2,0.2,1.0"), {}, two);
  ExpectMatchesInAllLayouts(Layer("Eltwise", 2, "0=1"), {}, two);
  ExpectMatchesInAllLayouts(Layer("Eltwise", 3, "0=1 -23301=3,0.5,-1.0,2.0"), {}, three);
  ExpectMatchesInAllLayouts(Layer("Eltwise", 2, "0=0"), {}, two);
  ExpectMatchesInAllLayouts(Layer("Eltwise", 3, "0=0"), {}, three);
  ExpectMatchesInAllLayouts(Layer("Eltwise", 3, "0=2"), {}, three);
}

TEST(DnnlOpsTest, EltwiseRefusesInputsOfDifferentShapes) {
  Status s = RunStatus(Layer("Eltwise", 2, "0=1"), {}, {Random(8, 4, 4, 1), Random(8, 4, 5, 2)});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("differ in shape"), std::string::npos) << s.message();
  s = RunStatus(Layer("Eltwise", 2, "0=1 -23301=3,1,1,1"), {}, {Random(8, 4, 4, 1), Random(8, 4, 4, 2)});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
}

TEST(DnnlOpsTest, BinaryOpSameShapeEveryOperation) {
  // Divisors away from zero so the quotient is well conditioned.
  Tensor divisor = Random(13, 6, 5, 2);
  for (float& v : divisor.data) v = v < 0 ? v - 0.5f : v + 0.5f;
  for (int op = 0; op < 4; ++op) {
    ExpectMatchesInAllLayouts(Layer("BinaryOp", 2, "0=" + std::to_string(op)), {}, {Random(13, 6, 5, 1), divisor});
  }
  ExpectMatchesInAllLayouts(Layer("BinaryOp", 2, "0=2"), {}, {RandomVector(10, 1), RandomVector(10, 2)});
}

TEST(DnnlOpsTest, BinaryOpBroadcastsAPerChannelVectorEitherWay) {
  const Tensor map = Random(13, 5, 6, 1);
  Tensor vec = RandomVector(13, 2, 0.5f, 1.5f);
  for (int op = 0; op < 4; ++op) {
    const ncnn::LayerSpec layer = Layer("BinaryOp", 2, "0=" + std::to_string(op));
    ExpectMatchesInAllLayouts(layer, {}, {map, vec});
  }
  Tensor positive_map = Random(13, 5, 6, 3);
  for (float& v : positive_map.data) v = std::abs(v) + 0.5f;
  for (int op = 0; op < 4; ++op) {
    // vector (op) map: ÷ runs the reference kernel inside the op, the others oneDNN.
    ExpectMatchesInAllLayouts(Layer("BinaryOp", 2, "0=" + std::to_string(op)), {}, {vec, positive_map});
  }
}

TEST(DnnlOpsTest, BinaryOpWithTheLayersScalar) {
  for (int op = 0; op < 4; ++op) {
    ExpectMatchesInAllLayouts(Layer("BinaryOp", 1, "0=" + std::to_string(op) + " 1=1 2=0.75"), {}, {Random(11, 4, 5, 1)});
  }
}

TEST(DnnlOpsTest, BinaryOpRefusesOperandsThatCannotBeBroadcast) {
  Status s = RunStatus(Layer("BinaryOp", 2, "0=0"), {}, {Random(8, 4, 4, 1), RandomVector(7, 2)});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("broadcast"), std::string::npos) << s.message();
  s = RunStatus(Layer("BinaryOp", 2, "0=0"), {}, {Random(8, 4, 4, 1), Random(8, 4, 3, 2)});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
}

TEST(DnnlOpsTest, ScaleByWeightsWithBiasAndBySecondInput) {
  ncnn::LayerWeights w;
  w.weight = Values(RandomVector(13, 1));
  w.bias = Values(RandomVector(13, 2));
  ExpectMatchesInAllLayouts(Layer("Scale", 1, "0=13 1=1"), w, {Random(13, 4, 6, 3)});
  ncnn::LayerWeights no_bias;
  no_bias.weight = w.weight;
  ExpectMatchesInAllLayouts(Layer("Scale", 1, "0=13"), no_bias, {Random(13, 4, 6, 3)});
  ExpectMatchesInAllLayouts(Layer("Scale", 2, "0=-233"), {}, {Random(13, 4, 6, 4), RandomVector(13, 5)});
  ExpectMatchesInAllLayouts(Layer("Scale", 1, "0=13 1=1"), w, {RandomVector(13, 6)});
}

TEST(DnnlOpsTest, ScaleRefusesFactorsThatDoNotMatchTheChannels) {
  Status s = RunStatus(Layer("Scale", 2, "0=-233"), {}, {Random(8, 4, 4, 1), RandomVector(9, 2)});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("Scale size"), std::string::npos) << s.message();
}

TEST(DnnlOpsTest, InterpNearestAtIntegerScalesAndBilinear) {
  const Tensor in = Random(13, 5, 7, 1);
  ExpectMatchesInAllLayouts(Layer("Interp", 1, "0=1 1=2.0 2=2.0"), {}, {in});
  ExpectMatchesInAllLayouts(Layer("Interp", 1, "0=1 1=4.0 2=3.0"), {}, {in});
  ExpectMatchesInAllLayouts(Layer("Interp", 1, "0=1 3=10 4=21"), {}, {in});
  // Non-integer scales: ncnn truncates, oneDNN rounds; the op runs the reference kernel.
  ExpectMatchesInAllLayouts(Layer("Interp", 1, "0=1 1=1.5 2=2.5"), {}, {in});
  ExpectMatchesInAllLayouts(Layer("Interp", 1, "0=2 1=2.0 2=2.0"), {}, {in});
  ExpectMatchesInAllLayouts(Layer("Interp", 1, "0=2 3=3 4=11"), {}, {in});
  ExpectMatchesInAllLayouts(Layer("Interp", 1, "0=2 1=1.7 2=0.6"), {}, {in});
  // Large enough that oneDNN's AVX2 kernel stores with aligned non-temporal
  // instructions (it faulted on unaligned storage).
  ExpectMatchesInAllLayouts(Layer("Interp", 1, "0=1 1=2.0 2=2.0"), {}, {Random(64, 41, 40, 2)});
}

TEST(DnnlOpsTest, InterpBicubicHasNoOneDnnOp) {
  EXPECT_EQ(MakeDnnlOp(Layer("Interp", 1, "0=3 1=2.0 2=2.0"), {}), nullptr);
  EXPECT_NE(MakeDnnlOp(Layer("Interp", 1, "0=2 1=2.0 2=2.0"), {}), nullptr);
}

TEST(DnnlOpsTest, InterpRefusesAnEmptyOutput) {
  Status s = RunStatus(Layer("Interp", 1, "0=1 1=0.1 2=0.1"), {}, {Random(3, 4, 4, 1)});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
}

TEST(DnnlOpsTest, PixelShuffleIsAReorder) {
  ExpectMatchesInAllLayouts(Layer("PixelShuffle", 1, "0=2"), {}, {Random(12, 5, 7, 1)}, 0.0);
  ExpectMatchesInAllLayouts(Layer("PixelShuffle", 1, "0=3"), {}, {Random(27, 4, 3, 2)}, 0.0);
  ExpectMatchesInAllLayouts(Layer("PixelShuffle", 1, "0=4"), {}, {Random(48, 3, 5, 3)}, 0.0);
  Status s = RunStatus(Layer("PixelShuffle", 1, "0=2"), {}, {Random(6, 4, 4, 1)});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
}

TEST(DnnlOpsTest, CropByStartsEndsAxesAndByAReferenceBlob) {
  const Tensor in = Random(13, 9, 11, 1);
  ExpectMatchesInAllLayouts(Layer("Crop", 1, "-23309=2,2,3 -23310=2,-2,-1 -23311=2,-2,-1"), {}, {in}, 0.0);
  ExpectMatchesInAllLayouts(Layer("Crop", 2, "0=3 1=2"), {}, {in, Random(13, 4, 5, 2)}, 0.0);
  // Channel offsets: 8 lines up with the blocked layout's groups, 3 does not.
  ExpectMatchesInAllLayouts(Layer("Crop", 1, "-23309=1,8 -23310=1,13 -23311=1,0"), {}, {in}, 0.0);
  ExpectMatchesInAllLayouts(Layer("Crop", 1, "-23309=3,3,1,1 -23310=3,11,8,9 -23311=3,0,1,2"), {}, {in}, 0.0);
}

TEST(DnnlOpsTest, CropRefusesARegionOutsideItsInput) {
  Status s = RunStatus(Layer("Crop", 2, "0=3 1=2"), {}, {Random(4, 6, 6, 1), Random(4, 5, 5, 2)});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("outside"), std::string::npos) << s.message();
}

TEST(DnnlOpsTest, GlobalAveragePooling) {
  ExpectMatchesInAllLayouts(Layer("Pooling", 1, "0=1 4=1"), {}, {Random(13, 9, 7, 1)});
  ExpectMatchesInAllLayouts(Layer("Pooling", 1, "0=1 4=1"), {}, {Random(64, 30, 31, 2)});
  EXPECT_EQ(RunStatus(Layer("Pooling", 1, "0=1 4=1"), {}, {RandomVector(5, 1)}).code(), StatusCode::kInvalid);
}

TEST(DnnlOpsTest, InnerProductWithEveryActivation) {
  ncnn::LayerWeights w;
  w.weight = Values(RandomVector(5 * 13, 1));
  w.bias = Values(RandomVector(5, 2));
  for (const char* act : {"", "9=1", "9=2 -23310=1,0.1", "9=3 -23310=2,-0.2,0.3", "9=4"}) {
    ExpectMatchesInAllLayouts(Layer("InnerProduct", 1, std::string("0=5 1=1 2=65 ") + act), w, {RandomVector(13, 3)});
  }
  ncnn::LayerWeights no_bias;
  no_bias.weight = w.weight;
  ExpectMatchesInAllLayouts(Layer("InnerProduct", 1, "0=5 2=65"), no_bias, {RandomVector(13, 4)});
  Status s = RunStatus(Layer("InnerProduct", 1, "0=5 1=1 2=65"), w, {RandomVector(12, 5)});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("weights do not match"), std::string::npos) << s.message();
}

TEST(DnnlOpsTest, ConcatKeepsASharedLayoutOfWholeBlocks) {
  ExpectMatchesInAllLayouts(Layer("Concat", 2, ""), {}, {Random(8, 5, 6, 1), Random(16, 5, 6, 2)}, 0.0);
  ExpectMatchesInAllLayouts(Layer("Concat", 3, ""), {}, {Random(5, 5, 6, 1), Random(8, 5, 6, 2), Random(3, 5, 6, 3)}, 0.0);
  ExpectMatchesInAllLayouts(Layer("Concat", 2, ""), {}, {RandomVector(5, 1), RandomVector(7, 2)}, 0.0);
  for (Layout layout : kAllLayouts) {
    const Tensor a = InLayout(Random(16, 4, 4, 1), layout), b = InLayout(Random(32, 4, 4, 2), layout);
    auto op = MakeDnnlOp(Layer("Concat", 2, ""), {}, {});
    auto out = op->Run(Inputs({&a, &b}, nullptr, LayoutSet::All()));
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->layout, layout) << LayoutName(layout);
  }
  // 8 channels are not a whole block of 16: plain.
  const Tensor a = InLayout(Random(8, 4, 4, 1), Layout::kBlocked16), b = InLayout(Random(16, 4, 4, 2), Layout::kBlocked16);
  auto out = MakeDnnlOp(Layer("Concat", 2, ""), {}, {})->Run(Inputs({&a, &b}, nullptr, LayoutSet::All()));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->layout, Layout::kPlain);
  EXPECT_EQ(RunStatus(Layer("Concat", 2, ""), {}, {Random(8, 4, 4, 1), Random(8, 4, 5, 2)}).code(), StatusCode::kInvalid);
}

// In place means in place: the output is input 0's storage, not a copy.
TEST(DnnlOpsTest, ElementwiseOpsWriteIntoAWritableInput) {
  ncnn::LayerWeights slopes;
  slopes.weight = Values(RandomVector(16, 1));
  const ncnn::LayerSpec prelu = Layer("PReLU", 1, "0=16");
  Tensor x = InLayout(Random(16, 6, 6, 2), Layout::kBlocked16);
  const float* storage = x.data.data();
  auto op = MakeDnnlOp(prelu, slopes, {});
  auto out = op->Run(Inputs({&x}, &x, LayoutSet::All()));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->data.data(), storage);
  EXPECT_EQ(out->layout, Layout::kBlocked16);

  const ncnn::LayerSpec sum = Layer("Eltwise", 2, "0=1 -23301=2,0.2,1.0");
  Tensor a = InLayout(Random(16, 6, 6, 3), Layout::kChannelsLast), b = InLayout(Random(16, 6, 6, 4), Layout::kChannelsLast);
  storage = a.data.data();
  auto sum_op = MakeDnnlOp(sum, {}, {});
  auto summed = sum_op->Run(Inputs({&a, &b}, &a, LayoutSet::All()));
  ASSERT_TRUE(summed.ok());
  EXPECT_EQ(summed->data.data(), storage);
}

}  // namespace
}  // namespace tessera::engine::ops
