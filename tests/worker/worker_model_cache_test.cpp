// The worker's model cache as a user meets it: --max-loaded-models, --stats and
// --warmup on a real `tessera worker --keep-alive` over pipes.
#include <gtest/gtest.h>


#include "../support/worker_session.h"
#include "engine/model_catalog.h"

namespace tessera::test {
namespace {

using protocol::WireStatus;

class WorkerModelCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto manifest = engine::ReadManifest(engine::DefaultModelDir());
    if (!manifest.ok()) GTEST_SKIP() << "no installed models: " << manifest.status().message();
  }

  protocol::Response Upscale(WorkerSession& session, uint64_t id, const std::string& model) {
    protocol::RequestFrameSpec spec;
    spec.request_id = id;
    spec.engine = static_cast<uint32_t>(protocol::Engine::kRealEsrgan);
    spec.quality = model;
    spec.images = {small_};
    return session.Call(protocol::EncodeRequestFrame(spec));
  }

  std::vector<uint8_t> small_ = SolidPng(4, 4, {1, 2, 3});
};

TEST_F(WorkerModelCacheTest, OneModelSlotAndAlternatingModelsEvictEachTime) {
  WorkerSession session({"--keep-alive", "--max-loaded-models", "1", "--stats"});
  const char* models[] = {"realesr-animevideov3-x2", "realesr-animevideov3-x3"};
  for (uint64_t i = 0; i < 4; ++i) {
    protocol::Response r = Upscale(session, i + 1, models[i % 2]);
    ASSERT_EQ(r.status, Code(WireStatus::kOk)) << r.error;
  }
  EXPECT_EQ(session.Finish(), 0);
  EXPECT_EQ(session.LogValues("model_cache", "evictions"), (std::vector<std::string>{"0", "1", "2", "3"}))
      << session.Stderr();
  EXPECT_EQ(session.LogValues("model_cache", "misses"), (std::vector<std::string>{"1", "2", "3", "4"}));
  EXPECT_EQ(session.LogValues("model_cache", "hits"), (std::vector<std::string>{"0", "0", "0", "0"}));
  EXPECT_EQ(session.LogValues("model_cache", "entries"), (std::vector<std::string>{"1", "1", "1", "1"}));
  EXPECT_EQ(session.LogValues("model_evicted", "model").size(), 3u);
}

TEST_F(WorkerModelCacheTest, TheDefaultKeepsBothModelsAndHitsAfterwards) {
  WorkerSession session({"--keep-alive", "--stats"});
  const char* models[] = {"realesr-animevideov3-x2", "realesr-animevideov3-x3"};
  for (uint64_t i = 0; i < 4; ++i) {
    protocol::Response r = Upscale(session, i + 1, models[i % 2]);
    ASSERT_EQ(r.status, Code(WireStatus::kOk)) << r.error;
  }
  EXPECT_EQ(session.Finish(), 0);
  EXPECT_EQ(session.LogValues("model_cache", "evictions"), (std::vector<std::string>{"0", "0", "0", "0"}));
  EXPECT_EQ(session.LogValues("model_cache", "hits"), (std::vector<std::string>{"0", "0", "1", "2"}));
  EXPECT_EQ(session.LogValues("model_loaded", "model").size(), 2u);
}

TEST_F(WorkerModelCacheTest, WithoutStatsThereIsNoCacheLine) {
  WorkerSession session({"--keep-alive"});
  ASSERT_EQ(Upscale(session, 1, "realesr-animevideov3-x2").status, Code(WireStatus::kOk));
  EXPECT_EQ(session.Finish(), 0);
  EXPECT_TRUE(session.LogValues("model_cache", "hits").empty());
}

TEST_F(WorkerModelCacheTest, AWarmedModelIsAHitForTheFirstRequest) {
  WorkerSession session({"--keep-alive", "--stats", "--warmup", "realesr-animevideov3-x2"});
  ASSERT_TRUE(session.WaitForLog("model=realesr-animevideov3-x2 stage=ready")) << session.Stderr();
  protocol::Response r = Upscale(session, 1, "realesr-animevideov3-x2");
  ASSERT_EQ(r.status, Code(WireStatus::kOk)) << r.error;
  EXPECT_EQ(session.Finish(), 0);
  EXPECT_EQ(session.LogValues("warmup", "stage"), (std::vector<std::string>{"loading", "ready", "done"}))
      << session.Stderr();
  EXPECT_EQ(session.LogValues("model_cache", "hits"), (std::vector<std::string>{"1"}));
  EXPECT_EQ(session.LogValues("model_cache", "loads"), (std::vector<std::string>{"1"}));
}

// Sent at once, the request finds the model either loaded or loading: one load either way.
TEST_F(WorkerModelCacheTest, ARequestDuringTheWarmupDoesNotLoadTheModelAgain) {
  WorkerSession session({"--keep-alive", "--stats", "--warmup", "realesrgan-x4plus"});
  protocol::Response r = Upscale(session, 1, "realesrgan-x4plus");
  ASSERT_EQ(r.status, Code(WireStatus::kOk)) << r.error;
  EXPECT_EQ(session.Finish(), 0);
  EXPECT_EQ(session.LogValues("model_loaded", "model"), (std::vector<std::string>{"realesrgan-x4plus"}))
      << session.Stderr();
  EXPECT_EQ(session.LogValues("model_cache", "loads"), (std::vector<std::string>{"1"}));
}

TEST_F(WorkerModelCacheTest, AFailedWarmupIsLoggedAndTheWorkerServesOn) {
  WorkerSession session({"--keep-alive", "--warmup", "no-such-model,realesr-animevideov3-x2"});
  ASSERT_TRUE(session.WaitForLog("stage=done")) << session.Stderr();
  const std::string log = session.Stderr();
  EXPECT_NE(log.find("event=warmup model=no-such-model stage=failed status=failed"), std::string::npos) << log;
  EXPECT_NE(log.find("unknown model 'no-such-model'"), std::string::npos) << log;
  EXPECT_NE(log.find("event=warmup model=realesr-animevideov3-x2 stage=ready"), std::string::npos) << log;
  ASSERT_EQ(Upscale(session, 1, "realesr-animevideov3-x2").status, Code(WireStatus::kOk));
  EXPECT_EQ(session.Finish(), 0);
}

}  // namespace
}  // namespace tessera::test
