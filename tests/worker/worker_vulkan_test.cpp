// The keep-alive worker over pipes on a named Vulkan device (`tessera worker
// --device vulkan:N`, llvmpipe here): requests with gpu_id 0 run there, 50 in
// a row, with the device memory the worker holds and its resident memory
// steady after a warm-up.
#include <gtest/gtest.h>

#include "../engine/backends/vulkan/vulkan_test_device.h"
#include "../support/worker_session.h"
#include "protocol/codec.h"

namespace tessera::test {
namespace {

std::vector<uint8_t> ModelFrame(uint64_t request_id, const std::vector<uint8_t>& image) {
  protocol::RequestFrameSpec spec;
  spec.request_id = request_id;
  spec.engine = static_cast<uint32_t>(protocol::Engine::kRealEsrgan);
  spec.quality = "realesr-animevideov3-x2";
  spec.gpu_id = 0;
  spec.images.emplace_back(image);
  return protocol::EncodeRequestFrame(spec);
}

TEST(WorkerVulkanTest, FiftyRequestsOnANamedVulkanDeviceKeepMemorySteady) {
  const std::string device = engine::vulkan::test::TestDevice().Name();
  // Small tiles and images: llvmpipe is slow.
  WorkerSession session({"--keep-alive", "--device", device, "--tile-size", "32", "--stats", "--no-plan-cache"});
  const std::vector<uint8_t> image = TexturedPng(8, 8);
  uint64_t rss_after_warmup = 0;
  for (int i = 1; i <= 50; ++i) {
    protocol::Response r = session.Call(ModelFrame(static_cast<uint64_t>(i), image));
    ASSERT_EQ(r.status, 0u) << r.error << "\n" << session.Stderr();
    ASSERT_EQ(r.outputs.size(), 1u);
    if (i == 10) rss_after_warmup = session.RssBytes();
  }
  const uint64_t rss_at_end = session.RssBytes();
  // The log lines of a request follow its answer: read them once the worker has ended.
  EXPECT_EQ(session.Finish(), 0);
  const std::vector<std::string> devices = session.LogValues("request", "device");
  ASSERT_EQ(devices.size(), 50u) << session.Stderr();
  for (const std::string& d : devices) EXPECT_EQ(d, device);
  // The caching allocator serves every request after the first from what it
  // holds: the device memory does not grow.
  const std::vector<std::string> vram = session.LogValues("model_cache", "vram_mb");
  ASSERT_GE(vram.size(), 50u) << session.Stderr();
  EXPECT_GT(std::stod(vram[9]), 0.0);
  EXPECT_EQ(vram[9], vram.back());
  EXPECT_LT(rss_at_end, rss_after_warmup + (16u << 20)) << rss_after_warmup << " B after warm-up, " << rss_at_end;
  EXPECT_EQ(session.LogValues("worker_ready", "device"), std::vector<std::string>{device});
  EXPECT_EQ(session.Stderr().find("event=gpu_fallback"), std::string::npos);
}

}  // namespace
}  // namespace tessera::test
