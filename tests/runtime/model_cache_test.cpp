// runtime::ModelCache: LRU order, count and byte bounds, stats, single-flight
// loading, failed loads, and holders of evicted models.
#include "runtime/model_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>

#include "engine/model_catalog.h"
#include "engine/model_upscaler.h"

namespace tessera::runtime {
namespace {

struct FakeModel {
  std::string name;
  std::atomic<int>* destroyed = nullptr;
  ~FakeModel() {
    if (destroyed != nullptr) ++*destroyed;
  }
};

using FakeCache = ModelCache<FakeModel>;

// A loader that counts its calls and returns a model of `bytes`.
FakeCache::Loader Fake(const std::string& name, uint64_t bytes, std::atomic<int>* calls,
                       std::atomic<int>* destroyed = nullptr) {
  return [=]() -> Result<FakeCache::Loaded> {
    ++*calls;
    auto m = std::make_shared<FakeModel>();
    m->name = name;
    m->destroyed = destroyed;
    return FakeCache::Loaded{std::move(m), bytes};
  };
}

TEST(ModelCacheTest, SecondRequestIsAHitAndLoadsNothing) {
  FakeCache cache;
  std::atomic<int> calls = 0;
  auto first = cache.GetOrLoad("a", Fake("a", 10, &calls));
  auto second = cache.GetOrLoad("a", Fake("a", 10, &calls));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->get(), second->get());
  EXPECT_EQ((*second)->name, "a");
  EXPECT_EQ(calls, 1);
  ModelCacheStats s = cache.Stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.loads, 1u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.resident_bytes, 10u);
  ASSERT_TRUE(s.load_ms.contains("a"));
  EXPECT_GE(s.load_ms["a"], 0.0);
}

TEST(ModelCacheTest, CountBoundEvictsTheLeastRecentlyUsed) {
  FakeCache cache({.max_models = 2});
  std::atomic<int> calls = 0;
  ASSERT_TRUE(cache.GetOrLoad("a", Fake("a", 1, &calls)).ok());
  ASSERT_TRUE(cache.GetOrLoad("b", Fake("b", 1, &calls)).ok());
  EXPECT_EQ(cache.Names(), (std::vector<std::string>{"b", "a"}));
  ASSERT_TRUE(cache.GetOrLoad("a", Fake("a", 1, &calls)).ok());  // a becomes the most recent
  EXPECT_EQ(cache.Names(), (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(cache.GetOrLoad("c", Fake("c", 1, &calls)).ok());  // b goes
  EXPECT_EQ(cache.Names(), (std::vector<std::string>{"c", "a"}));
  EXPECT_FALSE(cache.Contains("b"));
  ModelCacheStats s = cache.Stats();
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.resident_bytes, 2u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 3u);
  // b again: a miss and a load, and a (now the oldest) goes.
  ASSERT_TRUE(cache.GetOrLoad("b", Fake("b", 1, &calls)).ok());
  EXPECT_EQ(cache.Names(), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(cache.Stats().evictions, 2u);
  EXPECT_EQ(calls, 4);
}

TEST(ModelCacheTest, ByteBoundEvictsUntilTheResidentBytesFit) {
  FakeCache cache({.max_models = 10, .max_bytes = 100});
  std::atomic<int> calls = 0;
  ASSERT_TRUE(cache.GetOrLoad("a", Fake("a", 40, &calls)).ok());
  ASSERT_TRUE(cache.GetOrLoad("b", Fake("b", 40, &calls)).ok());
  EXPECT_EQ(cache.Stats().resident_bytes, 80u);
  ASSERT_TRUE(cache.GetOrLoad("c", Fake("c", 40, &calls)).ok());
  EXPECT_EQ(cache.Names(), (std::vector<std::string>{"c", "b"}));
  EXPECT_EQ(cache.Stats().resident_bytes, 80u);
  // 90 bytes more: both others go to fit.
  ASSERT_TRUE(cache.GetOrLoad("d", Fake("d", 90, &calls)).ok());
  EXPECT_EQ(cache.Names(), (std::vector<std::string>{"d"}));
  ModelCacheStats s = cache.Stats();
  EXPECT_EQ(s.resident_bytes, 90u);
  EXPECT_EQ(s.evictions, 3u);
}

TEST(ModelCacheTest, AModelOverTheByteBoundStillLoadsAndStaysAlone) {
  FakeCache cache({.max_models = 3, .max_bytes = 100});
  std::atomic<int> calls = 0;
  ASSERT_TRUE(cache.GetOrLoad("small", Fake("small", 10, &calls)).ok());
  auto big = cache.GetOrLoad("big", Fake("big", 500, &calls));
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(cache.Names(), (std::vector<std::string>{"big"}));
  EXPECT_EQ(cache.Stats().resident_bytes, 500u);
  EXPECT_TRUE(cache.GetOrLoad("big", Fake("big", 500, &calls)).ok());
  EXPECT_EQ(calls, 2);
}

TEST(ModelCacheTest, AFailedLoadIsReportedAndNotCached) {
  FakeCache cache;
  std::atomic<int> calls = 0;
  auto failing = [&]() -> Result<FakeCache::Loaded> {
    ++calls;
    return IoError("cannot read broken.bin");
  };
  auto r = cache.GetOrLoad("broken", failing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIo);
  EXPECT_NE(r.status().message().find("broken.bin"), std::string::npos);
  EXPECT_FALSE(cache.Contains("broken"));
  ModelCacheStats s = cache.Stats();
  EXPECT_EQ(s.load_failures, 1u);
  EXPECT_EQ(s.loads, 0u);
  EXPECT_EQ(s.entries, 0u);
  EXPECT_FALSE(s.load_ms.contains("broken"));
  // The next call tries again, and may succeed.
  ASSERT_FALSE(cache.GetOrLoad("broken", failing).ok());
  EXPECT_EQ(calls, 2);
  ASSERT_TRUE(cache.GetOrLoad("broken", Fake("broken", 5, &calls)).ok());
  EXPECT_TRUE(cache.Contains("broken"));
  EXPECT_EQ(cache.Stats().load_failures, 2u);
  EXPECT_EQ(cache.Stats().misses, 3u);
}

TEST(ModelCacheTest, ALoaderThatThrowsBecomesAnError) {
  FakeCache cache;
  auto r = cache.GetOrLoad("x", []() -> Result<FakeCache::Loaded> { throw std::runtime_error("boom"); });
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("boom"), std::string::npos);
  EXPECT_EQ(cache.Stats().load_failures, 1u);
}

// Two threads ask for the same model: one loads, the other waits and shares it.
TEST(ModelCacheTest, ConcurrentRequestsForOneModelLoadItOnce) {
  FakeCache cache;
  std::atomic<int> calls = 0;
  std::latch loading(1), release(1);
  auto slow = [&]() -> Result<FakeCache::Loaded> {
    ++calls;
    loading.count_down();
    release.wait();
    return FakeCache::Loaded{std::make_shared<FakeModel>(FakeModel{"m", nullptr}), 7};
  };
  Result<std::shared_ptr<const FakeModel>> first = InternalError("not run");
  Result<std::shared_ptr<const FakeModel>> second = InternalError("not run");
  std::thread a([&] { first = cache.GetOrLoad("m", slow); });
  loading.wait();  // a is inside its loader
  std::thread b([&] { second = cache.GetOrLoad("m", slow); });
  while (cache.Stats().joined == 0) std::this_thread::yield();  // b is waiting on a's load
  release.count_down();
  a.join();
  b.join();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->get(), second->get());
  EXPECT_EQ(calls, 1);
  ModelCacheStats s = cache.Stats();
  EXPECT_EQ(s.loads, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.joined, 1u);
}

TEST(ModelCacheTest, CallersWaitingOnAFailedLoadShareItsError) {
  FakeCache cache;
  std::atomic<int> calls = 0;
  std::latch loading(1), release(1);
  auto failing = [&]() -> Result<FakeCache::Loaded> {
    ++calls;
    loading.count_down();
    release.wait();
    return InvalidError("bad weights");
  };
  Result<std::shared_ptr<const FakeModel>> first = InternalError("not run");
  Result<std::shared_ptr<const FakeModel>> second = InternalError("not run");
  std::thread a([&] { first = cache.GetOrLoad("m", failing); });
  loading.wait();
  std::thread b([&] { second = cache.GetOrLoad("m", failing); });
  while (cache.Stats().joined == 0) std::this_thread::yield();
  release.count_down();
  a.join();
  b.join();
  ASSERT_FALSE(first.ok());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(), "bad weights");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(cache.Stats().load_failures, 1u);
  EXPECT_FALSE(cache.Contains("m"));
}

// A slow load of one model does not hold up a request for another.
TEST(ModelCacheTest, OtherModelsAreServedWhileOneLoads) {
  FakeCache cache;
  std::atomic<int> calls = 0;
  ASSERT_TRUE(cache.GetOrLoad("ready", Fake("ready", 1, &calls)).ok());
  std::latch loading(1), release(1);
  auto slow = [&]() -> Result<FakeCache::Loaded> {
    loading.count_down();
    release.wait();
    return FakeCache::Loaded{std::make_shared<FakeModel>(FakeModel{"slow", nullptr}), 1};
  };
  std::thread a([&] { EXPECT_TRUE(cache.GetOrLoad("slow", slow).ok()); });
  loading.wait();
  EXPECT_TRUE(cache.GetOrLoad("ready", Fake("ready", 1, &calls)).ok());
  EXPECT_TRUE(cache.GetOrLoad("other", Fake("other", 1, &calls)).ok());
  release.count_down();
  a.join();
  EXPECT_EQ(cache.Stats().entries, 3u);
}

TEST(ModelCacheTest, AnEvictedModelStaysUsableByItsHolder) {
  FakeCache cache({.max_models = 1});
  std::atomic<int> calls = 0, destroyed = 0;
  auto held = cache.GetOrLoad("a", Fake("a", 1, &calls, &destroyed));
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(cache.GetOrLoad("b", Fake("b", 1, &calls, &destroyed)).ok());
  EXPECT_FALSE(cache.Contains("a"));
  EXPECT_EQ(cache.Stats().evictions, 1u);
  EXPECT_EQ(destroyed, 0);  // the holder keeps it alive
  EXPECT_EQ((*held)->name, "a");
  std::shared_ptr<const FakeModel> model = std::move(held).value();
  model.reset();
  EXPECT_EQ(destroyed, 1);  // gone with its last holder
}

// The real thing: an installed model, its resident bytes, loaded once.
TEST(ModelCacheTest, RealModelLoadsOnceAndReportsItsWeightBytes) {
  const std::string dir = engine::DefaultModelDir();
  auto manifest = engine::ReadManifest(dir);
  if (!manifest.ok()) GTEST_SKIP() << "no installed models: " << manifest.status().message();
  const engine::ModelEntry* entry = nullptr;
  for (const auto& e : *manifest) {
    if (e.name == "realesr-animevideov3-x2") entry = &e;
  }
  if (entry == nullptr) GTEST_SKIP() << "realesr-animevideov3-x2 is not installed";
  ModelCache<engine::ModelUpscaler> cache;
  int calls = 0;
  auto loader = [&]() -> Result<ModelCache<engine::ModelUpscaler>::Loaded> {
    ++calls;
    auto loaded = engine::ModelUpscaler::Load(dir, *entry, 0);
    if (!loaded.ok()) return loaded.status();
    std::shared_ptr<const engine::ModelUpscaler> model = std::move(loaded).value();
    return ModelCache<engine::ModelUpscaler>::Loaded{model, model->WeightBytes()};
  };
  auto first = cache.GetOrLoad(entry->name, loader);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = cache.GetOrLoad(entry->name, loader);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->get(), second->get());
  EXPECT_EQ(calls, 1);
  const uint64_t bytes = (*first)->WeightBytes();
  // animevideov3 (SRVGGNet, 16 convolutions of 64 channels): about 2.4 MB of fp32 weights.
  EXPECT_GT(bytes, 1u << 20);
  EXPECT_LT(bytes, 16u << 20);
  EXPECT_EQ(cache.Stats().resident_bytes, bytes);
  EXPECT_EQ((*second)->OutputSize({10, 10}).width, 20u);
}

}  // namespace
}  // namespace tessera::runtime
