// runtime::PlanCache: a plan round-trips a real model bit for bit and upscales to
// the same bytes; stale, corrupt and foreign files are refused with the right
// status and rebuilt; concurrent writers leave one whole file; random damage
// never crashes the reader.
#include "runtime/plan_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <random>
#include <thread>

#include <unistd.h>

#include "engine/backends/reference_backend.h"
#include "engine/model_catalog.h"
#include "engine/model_upscaler.h"
#include "util/byte_order.h"
#include "util/deadline.h"
#include "util/file_io.h"

namespace tessera::runtime {
namespace {

// Bit-for-bit equality (NaN and -0 included); memcmp on an empty vector's null
// data() would be undefined.
template <typename T>
bool SameBits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

namespace fs = std::filesystem;
using engine::ncnn::Model;

constexpr const char* kModel = "realesr-animevideov3-x2";
constexpr int kTile = 64;

class PlanCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        (fs::temp_directory_path() / ("tessera_plan_test_" + std::to_string(::getpid()) + "_" + info->name())).string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The installed models, or empty (the test then skips).
  static std::string ModelDir() {
    std::string dir = engine::DefaultModelDir();
    return fs::exists(dir + "/" + kModel + ".param") ? dir : "";
  }

  static Sha256Digest KeyOf(const std::string& model_dir, const std::string& name, int tile) {
    auto param = ReadFileBytes(model_dir + "/" + name + ".param");
    auto bin = ReadFileBytes(model_dir + "/" + name + ".bin");
    EXPECT_TRUE(param.ok() && bin.ok());
    const PlanTarget target = DefaultPlanTarget();
    return PlanKey(*param, *bin, target.backend, target.fingerprint, tile);
  }

  std::string dir_;
};

#define REQUIRE_MODELS(dir)                                                                   \
  const std::string dir = ModelDir();                                                         \
  if (dir.empty())                                                                            \
  GTEST_SKIP() << "no installed models under " << engine::DefaultModelDir() << " (" << kModel \
               << " absent; run scripts/fetch-models)"

void ExpectSameModel(const Model& a, const Model& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.graph.blob_names, b.graph.blob_names);
  ASSERT_EQ(a.graph.layers.size(), b.graph.layers.size());
  for (size_t i = 0; i < a.graph.layers.size(); ++i) {
    const auto& x = a.graph.layers[i];
    const auto& y = b.graph.layers[i];
    EXPECT_EQ(x.type, y.type);
    EXPECT_EQ(x.kind, y.kind) << x.name;  // the decoder sets it as the parser does
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.bottoms, y.bottoms);
    EXPECT_EQ(x.tops, y.tops);
    EXPECT_EQ(x.line, y.line);
    ASSERT_EQ(x.params.all().size(), y.params.all().size()) << x.name;
    for (const auto& [id, v] : x.params.all()) {
      ASSERT_TRUE(y.params.Has(id)) << x.name << " param " << id;
      const auto& w = y.params.all().at(id);
      EXPECT_EQ(v.is_array, w.is_array);
      EXPECT_EQ(v.is_float, w.is_float);
      ASSERT_EQ(v.numbers.size(), w.numbers.size());
      EXPECT_TRUE(SameBits(v.numbers, w.numbers));
    }
  }
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (size_t i = 0; i < a.weights.size(); ++i) {
    ASSERT_EQ(a.weights[i].weight.size(), b.weights[i].weight.size());
    ASSERT_EQ(a.weights[i].bias.size(), b.weights[i].bias.size());
    EXPECT_TRUE(SameBits(a.weights[i].weight, b.weights[i].weight)) << "layer " << i;
    EXPECT_TRUE(SameBits(a.weights[i].bias, b.weights[i].bias)) << "layer " << i;
  }
}

// A small model built the ordinary way, for the tests that need no installed model.
Model TinyModel() {
  const std::string param =
      "7767517\n"
      "4 4\n"
      "Input input 0 1 data 0=3\n"
      "Convolution conv 1 1 data c 0=2 1=3 4=1 5=1 6=54 9=2 -23310=1,0.2\n"
      "PReLU prelu 1 1 c p 0=2\n"
      "Interp up 1 1 p out 0=2 1=2.0 2=2.0\n";
  std::vector<uint8_t> bin(4, 0);  // raw fp32 tag
  auto put = [&](float v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    bin.insert(bin.end(), b, b + 4);
  };
  for (int i = 0; i < 54; ++i) put(0.01f * static_cast<float>(i) - 0.2f);
  put(0.5f);
  put(-0.25f);
  put(0.1f);
  put(0.2f);
  auto model = engine::ncnn::BuildModel("tiny", param, "tiny.param", bin, "tiny.bin");
  EXPECT_TRUE(model.ok()) << model.status().message();
  return std::move(model).value();
}

Sha256Digest TinyKey() { return Sha256Of(std::string_view("tiny")); }

// The decoder checks each layer's weight arrays against the sizes its parameters
// give, by the rule the .bin reader follows (ncnn::WeightArraysOf): a plan whose
// arrays do not fit is refused, never indexed out of bounds.
TEST_F(PlanCacheTest, WeightArraysThatDoNotFitTheirLayerAreRefused) {
  const Model tiny = TinyModel();
  ASSERT_TRUE(DeserializeModel(SerializeModel(tiny)).ok());
  for (auto damage : std::vector<std::function<void(Model*)>>{
           [](Model* m) { m->weights[1].weight.pop_back(); },       // convolution weight
           [](Model* m) { m->weights[1].bias.push_back(0.f); },     // convolution bias
           [](Model* m) { m->weights[2].weight.push_back(0.1f); },  // PReLU slopes
           [](Model* m) { m->weights[3].weight.push_back(1.f); },   // Interp reads none
       }) {
    Model damaged = tiny;
    damage(&damaged);
    auto decoded = DeserializeModel(SerializeModel(damaged));
    ASSERT_FALSE(decoded.ok());
    EXPECT_NE(decoded.status().message().find("weights do not match its parameters"), std::string::npos)
        << decoded.status().message();
  }
}

TEST_F(PlanCacheTest, RealModelRoundTripsBitExact) {
  REQUIRE_MODELS(models);
  for (const char* name : {kModel, "realesr-animevideov3-x4"}) {
    auto parsed = engine::ncnn::LoadModel(models, name);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    auto decoded = DeserializeModel(SerializeModel(*parsed));
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    ExpectSameModel(*parsed, *decoded);

    // Through the files: the first load writes the plan, the second reads it.
    PlanCache cache(dir_);
    auto first = LoadModelWithPlanCache(cache, models, name, kTile);
    ASSERT_TRUE(first.ok()) << first.status().message();
    const Sha256Digest key = KeyOf(models, name, kTile);
    ASSERT_TRUE(fs::exists(cache.PathFor(key)));
    PlanReadResult read = cache.Read(key);
    ASSERT_EQ(read.lookup, PlanLookup::kHit) << read.detail;
    ExpectSameModel(*parsed, *read.model);
    auto second = LoadModelWithPlanCache(cache, models, name, kTile);
    ASSERT_TRUE(second.ok());
    ExpectSameModel(*parsed, *second);
  }
}

TEST_F(PlanCacheTest, CachedModelUpscalesToTheSameBytes) {
  REQUIRE_MODELS(models);
  auto manifest = engine::ReadManifest(models);
  ASSERT_TRUE(manifest.ok()) << manifest.status().message();
  const engine::ModelEntry* entry = nullptr;
  for (const auto& e : *manifest) {
    if (e.name == kModel) entry = &e;
  }
  ASSERT_NE(entry, nullptr);
  auto plain = engine::ModelUpscaler::Load(models, *entry, kTile);
  ASSERT_TRUE(plain.ok());
  PlanCache cache(dir_);
  ASSERT_TRUE(LoadModelWithPlanCache(cache, models, kModel, kTile).ok());  // writes the plan
  auto cached_model = LoadModelWithPlanCache(cache, models, kModel, kTile);
  ASSERT_TRUE(cached_model.ok());
  auto cached = engine::ModelUpscaler::FromModel(*entry, std::move(cached_model).value(), kTile);

  engine::Tensor rgb = engine::Tensor::Chw(3, 40, 52);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (float& v : rgb.data) v = unit(rng);
  auto a = (*plain)->RunPlanar(rgb, Deadline());
  auto b = cached->RunPlanar(rgb, Deadline());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->data.size(), b->data.size());
  EXPECT_EQ(0, std::memcmp(a->data.data(), b->data.data(), a->data.size() * sizeof(float)));
}

TEST_F(PlanCacheTest, EditedModelFilesGetANewPlan) {
  REQUIRE_MODELS(models);
  const std::string copy = dir_ + "/models";
  fs::create_directories(copy);
  for (const char* ext : {".param", ".bin"}) fs::copy_file(models + "/" + kModel + ext, copy + "/" + kModel + ext);
  PlanCache cache(dir_ + "/plans");
  auto count_plans = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(cache.dir())) n += e.path().extension() == ".plan" ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(LoadModelWithPlanCache(cache, copy, kModel, kTile).ok());
  ASSERT_TRUE(LoadModelWithPlanCache(cache, copy, kModel, kTile).ok());
  EXPECT_EQ(count_plans(), 1);
  {
    std::ofstream param(copy + "/" + kModel + ".param", std::ios::app);
    param << "\n";  // same graph, other bytes: another key
  }
  auto edited = LoadModelWithPlanCache(cache, copy, kModel, kTile);
  ASSERT_TRUE(edited.ok()) << edited.status().message();
  EXPECT_EQ(count_plans(), 2);
  ASSERT_TRUE(fs::exists(cache.PathFor(KeyOf(copy, kModel, kTile))));
}

// Damages the plan file written for the installed model, checks the lookup's
// status, then checks that a load rebuilds a good file.
void DamageAndRebuild(const std::string& cache_dir, const std::string& models,
                      const std::function<void(std::vector<uint8_t>*)>& damage, PlanLookup expected) {
  PlanCache cache(cache_dir);
  auto built = LoadModelWithPlanCache(cache, models, kModel, kTile);
  ASSERT_TRUE(built.ok());
  auto param = ReadFileBytes(models + "/" + kModel + ".param");
  auto bin = ReadFileBytes(models + "/" + kModel + ".bin");
  const PlanTarget target = DefaultPlanTarget();
  const Sha256Digest key = PlanKey(*param, *bin, target.backend, target.fingerprint, kTile);
  const std::string path = cache.PathFor(key);
  auto bytes = ReadFileBytes(path);
  ASSERT_TRUE(bytes.ok());
  damage(&*bytes);
  ASSERT_TRUE(WriteFileAtomically(path, *bytes).ok());

  PlanReadResult read = cache.Read(key);
  EXPECT_EQ(read.lookup, expected) << PlanLookupName(read.lookup) << ": " << read.detail;
  EXPECT_FALSE(read.model.has_value());

  auto rebuilt = LoadModelWithPlanCache(cache, models, kModel, kTile);
  ASSERT_TRUE(rebuilt.ok());
  ExpectSameModel(*built, *rebuilt);
  EXPECT_EQ(cache.Read(key).lookup, PlanLookup::kHit);
}

TEST_F(PlanCacheTest, TruncatedFileIsCorruptAndRebuilt) {
  REQUIRE_MODELS(models);
  DamageAndRebuild(
      dir_, models, [](std::vector<uint8_t>* b) { b->resize(b->size() / 2); }, PlanLookup::kCorrupt);
}

TEST_F(PlanCacheTest, TruncatedHeaderIsCorruptAndRebuilt) {
  REQUIRE_MODELS(models);
  DamageAndRebuild(
      dir_, models, [](std::vector<uint8_t>* b) { b->resize(40); }, PlanLookup::kCorrupt);
}

TEST_F(PlanCacheTest, FlippedPayloadByteIsCorruptAndRebuilt) {
  REQUIRE_MODELS(models);
  DamageAndRebuild(
      dir_, models, [](std::vector<uint8_t>* b) { b->back() ^= 0x01; }, PlanLookup::kCorrupt);
}

TEST_F(PlanCacheTest, WrongMagicIsForeignAndRebuilt) {
  REQUIRE_MODELS(models);
  DamageAndRebuild(
      dir_, models, [](std::vector<uint8_t>* b) { (*b)[0] = 'X'; }, PlanLookup::kForeign);
}

TEST_F(PlanCacheTest, OlderFormatVersionIsStaleAndRebuilt) {
  REQUIRE_MODELS(models);
  DamageAndRebuild(
      dir_, models, [](std::vector<uint8_t>* b) { StoreLe32(b->data() + 8, kPlanFormatVersion - 1); },
      PlanLookup::kStale);
}

TEST_F(PlanCacheTest, OtherSchemaOrEngineVersionIsStale) {
  const Model tiny = TinyModel();
  std::vector<uint8_t> file = EncodePlanFile(TinyKey(), tiny);
  ASSERT_EQ(DecodePlanFile(file, TinyKey()).lookup, PlanLookup::kHit);
  std::vector<uint8_t> schema = file;
  schema[12] ^= 0xFF;
  EXPECT_EQ(DecodePlanFile(schema, TinyKey()).lookup, PlanLookup::kStale);
  std::vector<uint8_t> engine = file;
  engine[kPlanFixedHeaderBytes] ^= 0x20;  // first character of the engine version
  EXPECT_EQ(DecodePlanFile(engine, TinyKey()).lookup, PlanLookup::kStale);
}

TEST_F(PlanCacheTest, AnotherKeysFileIsForeign) {
  std::vector<uint8_t> file = EncodePlanFile(TinyKey(), TinyModel());
  PlanReadResult read = DecodePlanFile(file, Sha256Of(std::string_view("other")));
  EXPECT_EQ(read.lookup, PlanLookup::kForeign);
}

TEST_F(PlanCacheTest, MissingFileIsAMissAndTheDirectoryIsCreated) {
  PlanCache cache(dir_ + "/nested/plans");
  EXPECT_EQ(cache.Read(TinyKey()).lookup, PlanLookup::kMiss);
  ASSERT_TRUE(cache.Write(TinyKey(), TinyModel()).ok());
  PlanReadResult read = cache.Read(TinyKey());
  ASSERT_EQ(read.lookup, PlanLookup::kHit) << read.detail;
  ExpectSameModel(TinyModel(), *read.model);
}

TEST_F(PlanCacheTest, TwoWritersOfOneKeyLeaveOneValidFile) {
  PlanCache cache(dir_);
  const Model tiny = TinyModel();
  for (int round = 0; round < 20; ++round) {
    std::latch start(2);
    Status results[2];
    auto writer = [&](int i) {
      start.arrive_and_wait();
      results[i] = cache.Write(TinyKey(), tiny);
    };
    std::thread a(writer, 0), b(writer, 1);
    a.join();
    b.join();
    ASSERT_TRUE(results[0].ok()) << results[0].message();
    ASSERT_TRUE(results[1].ok()) << results[1].message();
    ASSERT_EQ(cache.Read(TinyKey()).lookup, PlanLookup::kHit);
  }
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    ++files;
    EXPECT_EQ(e.path().string(), cache.PathFor(TinyKey()));
  }
  EXPECT_EQ(files, 1);  // no temporary file left behind
}

TEST_F(PlanCacheTest, RandomDamageNeverCrashes) {
  const Model tiny = TinyModel();
  const std::vector<uint8_t> payload = SerializeModel(tiny);
  const std::vector<uint8_t> file = EncodePlanFile(TinyKey(), tiny);
  std::mt19937 rng(20261123);
  int decoded = 0;
  for (int i = 0; i < 4000; ++i) {
    const bool whole_file = i % 4 == 0;
    std::vector<uint8_t> bytes = whole_file ? file : payload;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0: bytes[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: bytes[at] = static_cast<uint8_t>(rng()); break;
        case 2: bytes.resize(at); break;
        case 3: bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), static_cast<uint8_t>(rng())); break;
      }
    }
    if (whole_file) {
      PlanReadResult read = DecodePlanFile(bytes, TinyKey());
      if (read.lookup == PlanLookup::kHit) ++decoded;
    } else {
      auto model = DeserializeModel(bytes);
      if (model.ok()) {
        ++decoded;
        // What decodes is runnable: an executor can be built over it.
        engine::ReferenceBackend reference;
        engine::GraphExecutor executor(*model, reference);
        (void)executor;
      }
    }
  }
  EXPECT_LT(decoded, 4000);
}

// Not a check: the load times the issue asks for. Run with
//   runtime_test --gtest_filter='*LoadTimes*' --gtest_also_run_disabled_tests
TEST_F(PlanCacheTest, DISABLED_LoadTimes) {
  REQUIRE_MODELS(models);
  auto manifest = engine::ReadManifest(models);
  ASSERT_TRUE(manifest.ok());
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (const char* name : {"realesr-animevideov3-x4", "realesrgan-x4plus"}) {
    const engine::ModelEntry* entry = nullptr;
    for (const auto& e : *manifest) {
      if (e.name == name) entry = &e;
    }
    if (entry == nullptr) continue;
    const int tile = engine::ModelUpscaler::ResolvedTileSize(0);
    const Sha256Digest key = KeyOf(models, name, tile);
    std::vector<double> parse, cold, warm, read_ms, checksum_ms, decode_ms;
    for (int i = 0; i < 5; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      auto plain = engine::ModelUpscaler::Load(models, *entry, 0);  // no plan cache at all
      ASSERT_TRUE(plain.ok());
      parse.push_back(MillisSince(t0));

      fs::remove_all(dir_);
      PlanCache cache(dir_);
      t0 = std::chrono::steady_clock::now();
      auto built = LoadModelWithPlanCache(cache, models, name, tile);  // miss: parse + write
      ASSERT_TRUE(built.ok());
      auto up = engine::ModelUpscaler::FromModel(*entry, std::move(built).value(), tile);
      cold.push_back(MillisSince(t0));

      t0 = std::chrono::steady_clock::now();
      auto hit = LoadModelWithPlanCache(cache, models, name, tile);  // hit
      ASSERT_TRUE(hit.ok());
      auto up2 = engine::ModelUpscaler::FromModel(*entry, std::move(hit).value(), tile);
      warm.push_back(MillisSince(t0));

      // Where the warm time goes: reading the file, its checksum, decoding.
      t0 = std::chrono::steady_clock::now();
      auto bytes = ReadFileBytes(cache.PathFor(key));
      ASSERT_TRUE(bytes.ok());
      read_ms.push_back(MillisSince(t0));
      const size_t header = kPlanFixedHeaderBytes + LoadLe16(bytes->data() + kPlanFixedHeaderBytes - 2);
      const std::span<const uint8_t> payload = std::span<const uint8_t>(*bytes).subspan(header);
      t0 = std::chrono::steady_clock::now();
      (void)PayloadChecksum(payload);
      checksum_ms.push_back(MillisSince(t0));
      t0 = std::chrono::steady_clock::now();
      ASSERT_TRUE(DeserializeModel(payload).ok());
      decode_ms.push_back(MillisSince(t0));
    }
    std::printf(
        "load_times model=%s no_cache_ms=%.1f cold_ms=%.1f warm_ms=%.1f (of which file_read_ms=%.1f "
        "checksum_ms=%.1f decode_ms=%.1f) (median of 5)\n",
        name, median(parse), median(cold), median(warm), median(read_ms), median(checksum_ms), median(decode_ms));
  }
}

}  // namespace
}  // namespace tessera::runtime
