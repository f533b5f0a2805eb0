// Long sessions and fast clients: the worker's memory stays bounded.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "../support/worker_session.h"

namespace tessera::test {
namespace {

using protocol::WireStatus;

double MaxOf(const std::vector<std::string>& values) {
  double m = 0;
  for (const auto& v : values) m = std::max(m, std::stod(v));
  return m;
}

// 200 requests in one process. Bound: VmRSS at the end is within 8 MiB of VmRSS
// after a 20-request warm-up (allocator caches settle during the warm-up).
TEST(WorkerMemoryTest, TwoHundredRequestsShowNoVisibleGrowth) {
  WorkerSession session;
  std::vector<std::vector<uint8_t>> batch = {TexturedPng(96, 64), SolidPng(40, 40, {1, 2, 3}),
                                             SolidPng(17, 31, {200, 100, 50, 128})};
  uint64_t after_warmup = 0;
  for (int i = 1; i <= 200; ++i) {
    protocol::Response r = session.Call(LanczosFrame(static_cast<uint64_t>(i), i % 2 ? "x2" : "x3", batch));
    ASSERT_EQ(r.status, 0u) << r.error;
    ASSERT_EQ(r.outputs.size(), 3u);
    if (i == 20) after_warmup = session.RssBytes();
  }
  uint64_t at_end = session.RssBytes();
  ASSERT_GT(after_warmup, 0u);
  EXPECT_LT(at_end, after_warmup + (8u << 20)) << "after warm-up " << after_warmup << " B, at end " << at_end << " B";
  RecordProperty("rss_after_warmup_kib", std::to_string(after_warmup / 1024));
  RecordProperty("rss_at_end_kib", std::to_string(at_end / 1024));
  EXPECT_EQ(session.Finish(), 0);
}

// A client that writes requests as fast as it can while another thread reads the
// answers: the pipes push back, the worker holds one frame at a time, every
// request is answered in order, nothing deadlocks.
TEST(WorkerMemoryTest, FastWriterIsHeldBackByThePipeNotByWorkerMemory) {
  WorkerSession session;
  constexpr int kRequests = 60;
  std::vector<uint8_t> image = TexturedPng(256, 256);  // ~190 KiB: the pipe fills quickly
  std::vector<uint8_t> frame_template = LanczosFrame(0, "x2", {image, image});
  std::thread writer([&] {
    for (int i = 0; i < kRequests; ++i) {
      std::vector<uint8_t> frame = LanczosFrame(static_cast<uint64_t>(i), "x2", {image, image});
      ASSERT_TRUE(session.worker().Send(frame).ok());
    }
  });
  for (int i = 0; i < kRequests; ++i) {
    auto r = session.worker().Receive();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->request_id, static_cast<uint64_t>(i));
    EXPECT_EQ(r->status, 0u) << r->error;
    EXPECT_EQ(r->outputs.size(), 2u);
  }
  writer.join();
  EXPECT_EQ(session.Finish(), 0);
  // The worker's own per-request peak (VmHWM, reset before each request): the
  // last requests, with the client far ahead, peak no higher than the first ones.
  std::vector<std::string> peaks = session.LogValues("request", "peak_rss_mb");
  ASSERT_EQ(peaks.size(), static_cast<size_t>(kRequests));
  std::vector<std::string> first(peaks.begin(), peaks.begin() + 10);
  std::vector<std::string> rest(peaks.begin() + 10, peaks.end());
  EXPECT_LT(MaxOf(rest), MaxOf(first) + 16.0) << "first 10 peak " << MaxOf(first) << " MiB";
  (void)frame_template;
}

// "Small machine": a 64 MiB budget. Big batches are refused with advice, small
// ones work, the worker stays up and its peak stays near the budget.
TEST(WorkerMemoryTest, SmallRamBudgetRefusesCleanlyAndKeepsServing) {
  WorkerSession session({"--keep-alive", "--ram-budget", "64MiB"});
  std::vector<std::vector<uint8_t>> many(24, SolidPng(512, 512, {50, 60, 70}));
  protocol::Response refused = session.Call(LanczosFrame(1, "x4", many));
  EXPECT_EQ(refused.status, Code(WireStatus::kLimit));
  EXPECT_NE(refused.error.find("send at most"), std::string::npos) << refused.error;
  many.resize(1);  // 16 MiB of output plus working memory: fits
  protocol::Response ok = session.Call(LanczosFrame(2, "x4", many));
  EXPECT_EQ(ok.status, 0u) << ok.error;
  EXPECT_EQ(session.Finish(), 0);
}

// A large batch of small images: peak memory of the request does not scale with
// the batch, because images are processed one after another.
TEST(WorkerMemoryTest, LargeBatchOfSmallImagesKeepsPeakFlat) {
  WorkerSession session({"--keep-alive", "--max-batch-items", "512"});
  std::vector<uint8_t> tiny = TexturedPng(48, 48);
  protocol::Response one = session.Call(LanczosFrame(1, "x2", {tiny}));
  ASSERT_EQ(one.status, 0u);
  std::vector<std::vector<uint8_t>> lots(500, tiny);
  protocol::Response r = session.Call(LanczosFrame(2, "x2", lots));
  ASSERT_EQ(r.status, 0u) << r.error;
  ASSERT_EQ(r.outputs.size(), 500u);
  EXPECT_EQ(session.Finish(), 0);
  std::vector<std::string> peaks = session.LogValues("request", "peak_rss_mb");
  ASSERT_EQ(peaks.size(), 2u);
  // 500 inputs and outputs are ~10 MiB each way; decoded images would be far more.
  EXPECT_LT(std::stod(peaks[1]), std::stod(peaks[0]) + 40.0);
}

}  // namespace
}  // namespace tessera::test
