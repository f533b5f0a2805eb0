#include "engine/ncnn/param_parser.h"

#include <gtest/gtest.h>

namespace tessera::engine::ncnn {
namespace {

constexpr const char* kSmall =
    "7767517\n"
    "4 5\n"
    "Input            data     0 1 data 0=8 1=8 2=3\n"
    "Split            split    1 2 data a b\n"
    "Convolution      conv     1 1 a c 0=4 1=3 4=1 5=1 6=108 9=2 -23310=1,1.000000e-01\n"
    "Eltwise          sum      2 1 b c out 0=1 -23301=2,2.000000e-01,1.000000e+00\n";

TEST(ParamParserTest, ParsesLayersBlobsAndTypedParameters) {
  Result<ModelGraph> g = ParseParam(kSmall, "small.param");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_EQ(g->layers.size(), 4u);
  EXPECT_EQ(g->blob_names.size(), 5u);
  const LayerSpec& conv = g->layers[2];
  EXPECT_EQ(conv.type, "Convolution");
  EXPECT_EQ(conv.name, "conv");
  EXPECT_EQ(conv.line, 5);
  EXPECT_EQ(conv.params.GetInt(0, -1), 4);
  EXPECT_EQ(conv.params.GetInt(11, conv.params.GetInt(1, 0)), 3);  // kernel_h defaults to kernel_w
  EXPECT_EQ(conv.params.GetFloats(10), std::vector<float>{0.1f});
  EXPECT_EQ(conv.bottoms, std::vector<int>{*g->FindBlob("a")});
  const LayerSpec& sum = g->layers[3];
  EXPECT_EQ(sum.bottoms.size(), 2u);
  EXPECT_EQ(sum.params.GetFloats(1), (std::vector<float>{0.2f, 1.0f}));
  EXPECT_EQ(g->FindBlob("out"), 4);
  EXPECT_FALSE(g->FindBlob("nope").has_value());
}

// Each malformed file gets an error naming the file and line (and the layer
// when there is one).
struct BadCase {
  const char* text;
  const char* expect;  // a fragment of the message
};

class ParamParserErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParamParserErrorTest, GivesAClearError) {
  Result<ModelGraph> g = ParseParam(GetParam().text, "m.param");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kInvalid);
  EXPECT_NE(g.status().message().find(GetParam().expect), std::string::npos) << g.status().message();
  EXPECT_EQ(g.status().message().rfind("m.param:", 0), 0u) << g.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, ParamParserErrorTest,
    ::testing::Values(BadCase{"", "not an ncnn .param file"}, BadCase{"1234\n1 1\n", "not an ncnn .param file"},
                      BadCase{"7767517\nx y\n", "expected '<layer_count> <blob_count>'"},
                      BadCase{"7767517\n0 1\n", "out of range"},
                      BadCase{"7767517\n2 2\nInput in 0 1 data\n", "file ends after 1 of 2 layers"},
                      BadCase{"7767517\n1 1\nInput in 0\n", "needs '<type> <name>"},
                      BadCase{"7767517\n1 1\nInput in 0 2 data\n", "fewer blob names"},
                      BadCase{"7767517\n1 1\nConvolution c 1 1 ghost out\n", "layer 'c': consumes blob 'ghost'"},
                      BadCase{"7767517\n2 1\nInput a 0 1 x\nInput b 0 1 x\n", "produced twice"},
                      BadCase{"7767517\n2 1\nInput a 0 1 x\nSplit s 1 1 x y\n", "more blobs than the declared"},
                      BadCase{"7767517\n1 1\nInput in 0 1 data 0=abc\n", "layer 'in': parameter 0 value 'abc'"},
                      BadCase{"7767517\n1 1\nInput in 0 1 data zero\n", "is not <id>=<value>"},
                      BadCase{"7767517\n1 1\nInput in 0 1 data 0=1 0=2\n", "given twice"},
                      BadCase{"7767517\n1 1\nInput in 0 1 data 40=1\n", "out of range"},
                      BadCase{"7767517\n1 1\nInput in 0 1 data -23301=3,1,2\n", "fewer elements"},
                      BadCase{"7767517\n1 1\nInput in 0 1 data -23301=1,1,2\n", "more elements"},
                      BadCase{"7767517\n1 1\nInput in 0 1 data -23301=99999,1\n", "bad element count"},
                      BadCase{"7767517\n1 1\nInput in 0 1 data -23301=2,1,x\n", "element 1 is not a number"},
                      BadCase{"7767517\n1 1\nInput in 0 1 data -99999=1,1\n", "out of range"},
                      BadCase{"7767517\n1 1\nInput in 0 1 data\nInput extra 0 1 e\n", "text after the last"}));

TEST(ParamParserTest, ErrorsNameTheLine) {
  Result<ModelGraph> g = ParseParam("7767517\n2 2\n\nInput a 0 1 x\nSplit s 1 1 nope y\n", "m.param");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().message().rfind("m.param:5: layer 's'", 0), 0u) << g.status().message();
}

}  // namespace
}  // namespace tessera::engine::ncnn
