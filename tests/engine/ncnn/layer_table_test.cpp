// ncnn::LayerTable: one entry per executed layer type, a kind set once by the
// parser, one weight-size rule for the .bin reader and the plan cache, and the
// checker's refusals driven by the table.
#include "engine/ncnn/layer_table.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <set>

#include "engine/model_catalog.h"
#include "engine/ncnn/layer_params.h"
#include "engine/ncnn/model.h"
#include "engine/ncnn/param_parser.h"

namespace tessera::engine::ncnn {
namespace {

// The last layer of a two-layer graph: an Input, then `line` reading its blob.
Result<ModelGraph> ParseAfterInput(const std::string& line) {
  return ParseParam("7767517\n2 2\nInput in 0 1 data\n" + line + "\n", "t.param");
}

LayerSpec Parsed(const std::string& type, const std::string& kv) {
  Result<ModelGraph> g = ParseAfterInput(type + " l 1 1 data out " + kv);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? g->layers.back() : LayerSpec();
}

TEST(LayerTableTest, EntriesAreInKindOrderAndNamesRoundTrip) {
  std::set<std::string_view> names;
  for (const LayerInfo& info : LayerTable()) {
    ASSERT_EQ(InfoOf(info.kind), &info) << info.type;
    EXPECT_EQ(KindOf(info.type), info.kind) << info.type;
    EXPECT_TRUE(names.insert(info.type).second) << "twice: " << info.type;
    EXPECT_LE(info.inputs.min, info.inputs.max) << info.type;
    EXPECT_GE(info.outputs.min, 1) << info.type;
  }
  EXPECT_EQ(LayerTable().size(), 14u);
  EXPECT_EQ(InfoOf(LayerKind::kUnknown), nullptr);
  EXPECT_EQ(KindOf("Softmax"), LayerKind::kUnknown);
  EXPECT_EQ(KindOf("convolution"), LayerKind::kUnknown);  // ncnn's names are case-sensitive
  EXPECT_EQ(KindOf(""), LayerKind::kUnknown);
}

TEST(LayerTableTest, OnlyInputAndSplitAreLeftToTheExecutor) {
  for (const LayerInfo& info : LayerTable()) {
    EXPECT_EQ(info.graph_only, info.kind == LayerKind::kInput || info.kind == LayerKind::kSplit) << info.type;
  }
}

// Every layer type of the 26 installed models has an entry, and the parser set
// each layer's kind from its name.
TEST(LayerTableTest, EveryTypeTheFetchedModelsUseHasAnEntry) {
  const std::string dir = DefaultModelDir();
  Result<std::vector<ModelEntry>> manifest = ReadManifest(dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  ASSERT_EQ(manifest->size(), 26u);
  std::set<std::string> used;
  for (const ModelEntry& entry : *manifest) {
    std::ifstream file(dir + "/" + entry.name + ".param", std::ios::binary);
    ASSERT_TRUE(file) << entry.name;
    const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    Result<ModelGraph> graph = ParseParam(text, entry.name + ".param");
    ASSERT_TRUE(graph.ok()) << graph.status().ToString();
    for (const LayerSpec& layer : graph->layers) {
      used.insert(layer.type);
      ASSERT_NE(layer.kind, LayerKind::kUnknown) << entry.name << ": " << layer.type;
      EXPECT_EQ(InfoOf(layer.kind)->type, layer.type);
    }
  }
  // The types these models are known to use, so a manifest that loses one is noticed.
  for (const char* type : {"Input", "Split", "Convolution", "Deconvolution", "PReLU", "Eltwise", "BinaryOp", "Scale",
                           "Concat", "Crop", "Interp", "PixelShuffle", "Pooling", "InnerProduct"}) {
    EXPECT_EQ(used.count(type), 1u) << type;
  }
}

// The one weight-size rule, per kind that reads the .bin.
TEST(LayerTableTest, WeightArraysFollowTheParameters) {
  WeightArrays conv = WeightArraysOf(Parsed("Convolution", "0=8 1=3 5=1 6=216"));
  EXPECT_EQ(conv.weight, 216u);
  EXPECT_EQ(conv.weight_encoding, WeightEncoding::kTagged);
  EXPECT_STREQ(conv.weight_name, "weight");
  EXPECT_EQ(conv.bias, 8u);
  EXPECT_EQ(WeightArraysOf(Parsed("Convolution", "0=8 1=3 6=216")).bias, 0u);  // bias_term defaults to 0

  WeightArrays deconv = WeightArraysOf(Parsed("Deconvolution", "0=4 1=4 3=2 5=1 6=1024"));
  EXPECT_EQ(deconv.weight, 1024u);
  EXPECT_EQ(deconv.weight_encoding, WeightEncoding::kTagged);
  EXPECT_EQ(deconv.bias, 4u);

  // InnerProduct numbers its parameters differently: bias_term 1, weight_data_size 2.
  WeightArrays dense = WeightArraysOf(Parsed("InnerProduct", "0=10 1=1 2=640"));
  EXPECT_EQ(dense.weight, 640u);
  EXPECT_EQ(dense.weight_encoding, WeightEncoding::kTagged);
  EXPECT_EQ(dense.bias, 10u);

  WeightArrays prelu = WeightArraysOf(Parsed("PReLU", "0=16"));
  EXPECT_EQ(prelu.weight, 16u);
  EXPECT_EQ(prelu.weight_encoding, WeightEncoding::kRawFloat);
  EXPECT_STREQ(prelu.weight_name, "slope");
  EXPECT_EQ(prelu.bias, 0u);
  EXPECT_EQ(WeightArraysOf(Parsed("PReLU", "")).weight, 1u);  // num_slope 0: one shared slope

  WeightArrays scale = WeightArraysOf(Parsed("Scale", "0=3 1=1"));
  EXPECT_EQ(scale.weight, 3u);
  EXPECT_EQ(scale.weight_encoding, WeightEncoding::kRawFloat);
  EXPECT_STREQ(scale.weight_name, "scale");
  EXPECT_EQ(scale.bias, 3u);
  WeightArrays from_blob = WeightArraysOf(Parsed("Scale", "0=-233 1=1"));  // scales from a second blob
  EXPECT_EQ(from_blob.weight, 0u);
  EXPECT_EQ(from_blob.bias, 0u);

  for (const char* unweighted : {"Eltwise", "BinaryOp", "Interp", "PixelShuffle", "Pooling", "Concat", "Crop"}) {
    WeightArrays none = WeightArraysOf(Parsed(unweighted, ""));
    EXPECT_EQ(none.weight + none.bias, 0u) << unweighted;
  }
}

// BuildModel reads exactly what the rule says: a .bin one float short of it is
// refused, one of its size loads.
TEST(LayerTableTest, TheBinReaderReadsWhatTheRuleSays) {
  const std::string param = "7767517\n3 3\nInput in 0 1 data\nScale s 1 1 data a 0=3 1=1\nPReLU p 1 1 a out 0=3\n";
  const LayerSpec scale = ParseParam(param, "t.param")->layers[1];
  const LayerSpec prelu = ParseParam(param, "t.param")->layers[2];
  const size_t floats = WeightArraysOf(scale).weight + WeightArraysOf(scale).bias + WeightArraysOf(prelu).weight;
  ASSERT_EQ(floats, 9u);
  std::vector<uint8_t> bin(floats * 4, 0);
  Result<Model> model = BuildModel("t", param, "t.param", bin, "t.bin");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->weights[1].weight.size(), 3u);
  EXPECT_EQ(model->weights[1].bias.size(), 3u);
  EXPECT_EQ(model->weights[2].weight.size(), 3u);
  bin.resize(bin.size() - 4);
  Result<Model> short_bin = BuildModel("t", param, "t.param", bin, "t.bin");
  ASSERT_FALSE(short_bin.ok());
  EXPECT_NE(short_bin.status().message().find("layer 'p' slope"), std::string::npos) << short_bin.status().message();
}

TEST(LayerTableTest, UnknownTypesAreRefusedWithFileAndLine) {
  Result<ModelGraph> g = ParseAfterInput("Softmax sm 1 1 data out 0=1");
  ASSERT_TRUE(g.ok()) << g.status().ToString();  // the parser reads any type; the checker refuses
  EXPECT_EQ(g->layers[1].kind, LayerKind::kUnknown);
  EXPECT_EQ(g->layers[1].type, "Softmax");
  Status refused = CheckLayerSupported(g->layers[1], "m.param");
  EXPECT_EQ(refused.code(), StatusCode::kUnsupported);
  EXPECT_EQ(refused.message(), "m.param:4: layer 'sm' (Softmax): layer type not supported");
  EXPECT_EQ(WeightArraysOf(g->layers[1]).weight, 0u);
}

// The checker refuses, for every kind, a parameter id its entry does not honour
// and a blob count outside its arity.
TEST(LayerTableTest, CheckerRefusesIdsAndArityOutsideTheEntry) {
  for (const LayerInfo& info : LayerTable()) {
    if (info.kind == LayerKind::kInput) continue;
    int unhonoured = 0;
    while (info.Honours(unhonoured)) ++unhonoured;
    LayerSpec layer = Parsed(std::string(info.type), std::to_string(unhonoured) + "=1");
    ASSERT_EQ(layer.kind, info.kind);
    Status s = CheckLayerSupported(layer, "t.param");
    EXPECT_NE(s.message().find("parameter " + std::to_string(unhonoured) + " is not supported"), std::string::npos)
        << info.type << ": " << s.message();
  }
  LayerSpec eltwise = Parsed("Eltwise", "0=1");  // one input; Eltwise needs two or more
  EXPECT_NE(CheckLayerSupported(eltwise, "t.param").message().find("unexpected number of inputs or outputs"),
            std::string::npos);
  Result<ModelGraph> input_reading = ParseAfterInput("Input in2 1 1 data out");
  ASSERT_TRUE(input_reading.ok());
  EXPECT_NE(CheckLayerSupported(input_reading->layers[1], "t.param").message().find("unexpected number"),
            std::string::npos);
}

TEST(LayerParamsTest, ConvolutionDefaultsFollowNcnn) {
  const ConvParams k = ConvParams::Read(Parsed("Convolution", "0=8 1=3 2=2 3=2 4=1 6=216 9=2 -23310=1,0.1").params);
  EXPECT_EQ(k.kh, 3);  // kernel_h defaults to kernel_w, and so on for each pair
  EXPECT_EQ(k.dh, 2);
  EXPECT_EQ(k.sh, 2);
  EXPECT_EQ(k.pad_right, 1);
  EXPECT_EQ(k.pad_top, 1);
  EXPECT_EQ(k.pad_bottom, 1);
  EXPECT_EQ(k.extent_w(), 5);
  EXPECT_FALSE(k.bias);
  EXPECT_EQ(k.activation_type, 2);
  EXPECT_EQ(k.activation_params, std::vector<float>{0.1f});
  const ConvParams asym = ConvParams::Read(Parsed("Convolution", "0=8 1=3 11=1 4=0 15=1 14=2 6=72").params);
  EXPECT_EQ(asym.kh, 1);
  EXPECT_EQ(asym.pad_right, 1);
  EXPECT_EQ(asym.pad_top, 2);
  EXPECT_EQ(asym.pad_bottom, 2);
}

TEST(LayerParamsTest, CropSizesAreAbsentUnlessGivenAsScalars) {
  const CropParams offsets = CropParams::Read(Parsed("Crop", "0=1 1=2 2=0 4=5").params);
  EXPECT_EQ(offsets.woffset, 1);
  EXPECT_EQ(offsets.hoffset, 2);
  EXPECT_FALSE(offsets.outw.has_value());
  EXPECT_EQ(offsets.outh, 5);
  EXPECT_FALSE(offsets.by_axes);
  const CropParams axes = CropParams::Read(Parsed("Crop", "-23309=1,4 -23310=1,-4 -23311=1,2").params);
  EXPECT_TRUE(axes.by_axes);
  EXPECT_EQ(axes.starts, std::vector<int>{4});
  EXPECT_EQ(axes.ends, std::vector<int>{-4});
  EXPECT_EQ(axes.axes, std::vector<int>{2});
}

TEST(LayerParamsTest, EltwiseBinaryOpAndInterpDefaults) {
  const EltwiseParams sum = EltwiseParams::Read(Parsed("Eltwise", "").params);
  EXPECT_EQ(sum.op, EltwiseParams::kSum);
  EXPECT_TRUE(sum.coeffs.empty());
  const BinaryOpParams scalar = BinaryOpParams::Read(Parsed("BinaryOp", "0=2 1=1 2=0.5").params);
  EXPECT_EQ(scalar.op, BinaryOpParams::kMul);
  EXPECT_TRUE(scalar.with_scalar);
  EXPECT_FLOAT_EQ(scalar.scalar, 0.5f);
  const InterpParams up = InterpParams::Read(Parsed("Interp", "0=2 1=2.0 2=3.0").params);
  EXPECT_EQ(up.resize_type, InterpParams::kBilinear);
  EXPECT_FLOAT_EQ(up.height_scale, 2.f);
  EXPECT_FLOAT_EQ(up.width_scale, 3.f);
  EXPECT_EQ(up.output_height, 0);
  EXPECT_FALSE(up.align_corner);
}

}  // namespace
}  // namespace tessera::engine::ncnn
