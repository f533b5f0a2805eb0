#include "engine/ncnn/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "engine/model_catalog.h"
#include "engine/ncnn/weight_reader.h"
#include "util/byte_order.h"

namespace tessera::engine::ncnn {
namespace {

void PutU32(std::vector<uint8_t>* b, uint32_t v) {
  b->resize(b->size() + 4);
  StoreLe32(b->data() + b->size() - 4, v);
}
void PutF32(std::vector<uint8_t>* b, float f) {
  uint32_t v;
  std::memcpy(&v, &f, 4);
  PutU32(b, v);
}

TEST(WeightReaderTest, HalfFloatsConvertExactly) {
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xC000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7C00)));
}

TEST(WeightReaderTest, ReadsTaggedFp16WithPaddingThenRawFloats) {
  std::vector<uint8_t> bin;
  PutU32(&bin, kTagFp16);
  for (uint16_t h : {0x3C00, 0x4000, 0xBC00}) bin.insert(bin.end(), {static_cast<uint8_t>(h), static_cast<uint8_t>(h >> 8)});
  bin.insert(bin.end(), {0, 0});  // pad 6 bytes of data to 8
  PutF32(&bin, 0.5f);
  PutU32(&bin, 0);  // tag 0: raw fp32
  PutF32(&bin, -3.0f);
  WeightReader r(bin, "w.bin");
  auto a = r.Read(3, WeightEncoding::kTagged, "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, (std::vector<float>{1.0f, 2.0f, -1.0f}));
  auto b = r.Read(1, WeightEncoding::kRawFloat, "b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, std::vector<float>{0.5f});
  auto c = r.Read(1, WeightEncoding::kTagged, "c");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, std::vector<float>{-3.0f});
  EXPECT_EQ(r.offset(), r.size());
}

TEST(WeightReaderTest, RefusesQuantisedWeightsAndShortFiles) {
  std::vector<uint8_t> int8;
  PutU32(&int8, kTagInt8);
  int8.resize(int8.size() + 16);
  auto r1 = WeightReader(int8, "q.bin").Read(4, WeightEncoding::kTagged, "layer 'x' weight");
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().message().find("int8"), std::string::npos);
  EXPECT_NE(r1.status().message().find("q.bin"), std::string::npos);

  std::vector<uint8_t> table;
  PutU32(&table, 0x3F800000);  // a non-zero, non-tag first word: quantised with a table
  auto r2 = WeightReader(table, "t.bin").Read(4, WeightEncoding::kTagged, "w");
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("table-quantised"), std::string::npos);

  std::vector<uint8_t> short_file;
  PutU32(&short_file, kTagFp16);
  auto r3 = WeightReader(short_file, "s.bin").Read(100, WeightEncoding::kTagged, "w");
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.status().message().find("file ends"), std::string::npos);
}

constexpr const char* kTinyNet =
    "7767517\n"
    "3 3\n"
    "Input   in    0 1 data 0=4 1=4 2=1\n"
    "Convolution conv 1 1 data c 0=2 1=1 5=1 6=2\n"
    "PReLU   act   1 1 c out 0=2\n";

std::vector<uint8_t> TinyBin() {
  std::vector<uint8_t> bin;
  PutU32(&bin, 0);  // conv weight, raw fp32 after a zero tag
  PutF32(&bin, 1.5f);
  PutF32(&bin, -1.0f);
  PutF32(&bin, 0.25f);  // bias
  PutF32(&bin, 0.0f);
  PutF32(&bin, 0.1f);  // prelu slopes
  PutF32(&bin, 0.2f);
  return bin;
}

TEST(ModelTest, BuildsAndReadsWeightsInLayerOrder) {
  Result<Model> m = BuildModel("tiny", kTinyNet, "tiny.param", TinyBin(), "tiny.bin");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->weights[1].weight, (std::vector<float>{1.5f, -1.0f}));
  EXPECT_EQ(m->weights[1].bias, (std::vector<float>{0.25f, 0.0f}));
  EXPECT_EQ(m->weights[2].weight, (std::vector<float>{0.1f, 0.2f}));
}

TEST(ModelTest, ABinThatDoesNotFitIsRefused) {
  std::vector<uint8_t> longer = TinyBin();
  PutF32(&longer, 9.0f);
  auto m = BuildModel("tiny", kTinyNet, "tiny.param", longer, "tiny.bin");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("4 bytes left"), std::string::npos) << m.status().message();
  std::vector<uint8_t> shorter = TinyBin();
  shorter.resize(shorter.size() - 4);
  EXPECT_FALSE(BuildModel("tiny", kTinyNet, "tiny.param", shorter, "tiny.bin").ok());
}

TEST(ModelTest, UnsupportedLayersAndParametersAreNamed) {
  auto m = BuildModel("x", "7767517\n2 2\nInput in 0 1 data\nSoftmax sm 1 1 data out\n", "x.param", {}, "x.bin");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(m.status().message().find("x.param:4: layer 'sm' (Softmax): layer type not supported"),
            std::string::npos)
      << m.status().message();
  m = BuildModel("x", "7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0=1 1=1 6=1 8=1\n", "x.param",
                 {}, "x.bin");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("parameter 8 is not supported"), std::string::npos) << m.status().message();
  m = BuildModel("x", "7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0=1 1=1 6=1 9=6\n", "x.param",
                 {}, "x.bin");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("activation_type 6"), std::string::npos);
}

// num_output x kernel overflowing an int (found by fuzz_plan_payload: it wrapped
// to 0 and the check divided by it) is a clear refusal.
TEST(ModelTest, HugeConvolutionShapesAreRefusedNotOverflowed) {
  for (const char* shape : {"0=65536 1=65536 11=1 6=4", "0=2147483647 1=2 11=2 6=4", "0=1 1=65536 11=65536 6=4"}) {
    std::string text = std::string("7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out ") + shape + "\n";
    auto m = BuildModel("x", text, "x.param", {}, "x.bin");
    ASSERT_FALSE(m.ok()) << shape;
    EXPECT_NE(m.status().message().find("not a multiple of num_output x kernel size"), std::string::npos)
        << shape << ": " << m.status().message();
  }
}

// Every model scripts/fetch-models installs must load: every layer type and
// parameter understood, the .bin consumed exactly.
TEST(ModelTest, EveryFetchedModelLoads) {
  const std::string dir = DefaultModelDir();
  Result<std::vector<ModelEntry>> manifest = ReadManifest(dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  EXPECT_EQ(manifest->size(), 26u);
  for (const ModelEntry& entry : *manifest) {
    Result<Model> m = LoadModel(dir, entry.name);
    EXPECT_TRUE(m.ok()) << entry.name << ": " << m.status().ToString();
    if (m.ok()) {
      EXPECT_GT(m->graph.layers.size(), 3u);
      size_t weights = 0;
      for (const auto& w : m->weights) weights += w.weight.size() + w.bias.size();
      EXPECT_GT(weights, 1000u) << entry.name;
    }
  }
}

TEST(ModelTest, MissingModelIsNotFound) {
  auto m = LoadModel("/nonexistent", "realesrgan-x4plus");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace tessera::engine::ncnn
