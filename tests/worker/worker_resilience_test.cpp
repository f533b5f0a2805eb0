// Every kind of bad input gets a clean, attributable error, and the same worker
// process answers the next request correctly.
#include <gtest/gtest.h>

#include "../support/worker_session.h"
#include "util/byte_order.h"

namespace tessera::test {
namespace {

using protocol::WireStatus;

class WorkerResilienceTest : public ::testing::Test {
 protected:
  // After whatever broke, a good request must still work.
  void ExpectStillServing(WorkerSession& session, uint64_t id = 999) {
    protocol::Response r = session.Call(LanczosFrame(id, "x2", {SolidPng(6, 4, {10, 20, 30})}));
    EXPECT_EQ(r.status, Code(WireStatus::kOk)) << r.error;
    EXPECT_EQ(r.request_id, id);
    ASSERT_EQ(r.outputs.size(), 1u);
    EXPECT_EQ(DecodePixels(r.outputs[0]).width, 12);
  }

  std::vector<uint8_t> small_ = SolidPng(4, 4, {1, 2, 3});
};

TEST_F(WorkerResilienceTest, InvalidRequestThenAValidOne) {
  WorkerSession session;
  protocol::Response r = session.Call(LanczosFrame(1, "x99", {small_}));
  EXPECT_EQ(r.status, Code(WireStatus::kInvalid));
  EXPECT_EQ(r.request_id, 1u);
  EXPECT_TRUE(r.outputs.empty());
  EXPECT_FALSE(r.error.empty());
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, BatchCountOverTheLimit) {
  WorkerSession session({"--keep-alive", "--max-batch-items", "3"});
  protocol::Response r = session.Call(LanczosFrame(2, "x2", {small_, small_, small_, small_}));
  EXPECT_EQ(r.status, Code(WireStatus::kLimit));
  EXPECT_NE(r.error.find("--max-batch-items 3"), std::string::npos) << r.error;
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, MessageLenOverTheLimitIsDrained) {
  WorkerSession session({"--keep-alive", "--max-message-bytes", "64KiB"});
  std::vector<uint8_t> big(200 * 1024, 0x5A);
  protocol::Response r = session.Call(LanczosFrame(3, "x2", {big}));
  EXPECT_EQ(r.status, Code(WireStatus::kLimit));
  EXPECT_EQ(r.request_id, 3u);
  EXPECT_NE(r.error.find("--max-message-bytes"), std::string::npos) << r.error;
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, ImageBytesOverTheLimit) {
  WorkerSession session({"--keep-alive", "--max-image-bytes", "100"});
  protocol::Response r = session.Call(LanczosFrame(4, "x2", {TexturedPng(32, 32)}));
  EXPECT_EQ(r.status, Code(WireStatus::kLimit));
  ExpectStillServing(session);  // its image is under 100 bytes
}

TEST_F(WorkerResilienceTest, TruncatedFrameBody) {
  WorkerSession session;
  std::vector<uint8_t> frame = LanczosFrame(5, "x2", {small_});
  // Cut the last 10 bytes of the image and shrink message_len to match: the
  // frame is whole, its content is cut short.
  frame.resize(frame.size() - 10);
  StoreLe32(frame.data(), static_cast<uint32_t>(frame.size() - 4));
  protocol::Response r = session.Call(frame);
  EXPECT_EQ(r.status, Code(WireStatus::kProtocol));
  EXPECT_EQ(r.request_id, 5u);
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, MessageLenTooLargeSwallowingTheNextFrame) {
  WorkerSession session;
  std::vector<uint8_t> first = LanczosFrame(6, "x2", {small_});
  StoreLe32(first.data(), LoadLe32(first.data()) + 60);  // claims 60 bytes it does not have
  std::vector<uint8_t> second = LanczosFrame(7, "x2", {SolidPng(6, 4, {10, 20, 30})});
  std::vector<uint8_t> both = first;
  both.insert(both.end(), second.begin(), second.end());
  ASSERT_TRUE(session.worker().Send(both).ok());
  auto r1 = session.worker().Receive();
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->request_id, 6u);
  EXPECT_NE(r1->status, 0u);
  auto r2 = session.worker().Receive();
  ASSERT_TRUE(r2.ok()) << session.Stderr();
  EXPECT_EQ(r2->request_id, 7u);
  EXPECT_EQ(r2->status, 0u) << r2->error;
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, WrongMagic) {
  WorkerSession session;
  std::vector<uint8_t> frame = LanczosFrame(8, "x2", {small_});
  frame[4] = 'Z';
  protocol::Response r = session.Call(frame);
  EXPECT_EQ(r.status, Code(WireStatus::kProtocol));
  EXPECT_EQ(r.request_id, 0u);  // the header cannot be trusted
  ExpectStillServing(session);
  EXPECT_FALSE(session.LogValues("protocol_error", "kind").empty());
}

TEST_F(WorkerResilienceTest, WrongVersion) {
  WorkerSession session;
  std::vector<uint8_t> frame = LanczosFrame(9, "x2", {small_});
  StoreLe16(frame.data() + 8, 1);
  protocol::Response r = session.Call(frame);
  EXPECT_EQ(r.status, Code(WireStatus::kProtocol));
  EXPECT_EQ(r.request_id, 9u);
  EXPECT_NE(r.error.find("version"), std::string::npos);
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, GarbageBetweenFramesIsSkipped) {
  WorkerSession session;
  std::vector<uint8_t> garbage(5000);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 131 + 7);
  ASSERT_TRUE(session.worker().Send(garbage).ok());
  auto r = session.worker().Receive();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, Code(WireStatus::kProtocol));
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, CountMismatch) {
  WorkerSession session;
  protocol::RequestFrameSpec spec;
  spec.request_id = 10;
  spec.quality = "x2";
  spec.images = {small_, small_};
  spec.declared_batch_count = 3;
  protocol::Response r = session.Call(protocol::EncodeRequestFrame(spec));
  EXPECT_EQ(r.status, Code(WireStatus::kInvalid));
  EXPECT_EQ(r.request_id, 10u);
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, CorruptImageIsNamedByIndex) {
  WorkerSession session;
  std::vector<uint8_t> corrupt = TexturedPng(48, 48);
  for (size_t i = corrupt.size() / 3; i < corrupt.size() / 2; ++i) corrupt[i] ^= 0x5C;
  protocol::Response r = session.Call(LanczosFrame(11, "x2", {small_, small_, corrupt}));
  EXPECT_EQ(r.status, Code(WireStatus::kBadImage));
  EXPECT_EQ(r.error.rfind("image 2:", 0), 0u) << r.error;
  EXPECT_TRUE(r.outputs.empty());
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, NotAnImageAtAll) {
  WorkerSession session;
  std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  protocol::Response r = session.Call(LanczosFrame(12, "x2", {text}));
  EXPECT_EQ(r.status, Code(WireStatus::kBadImage));
  EXPECT_EQ(r.error.rfind("image 0:", 0), 0u) << r.error;
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, DecompressionBombIsRefusedBeforeDecoding) {
  WorkerSession session({"--keep-alive", "--max-image-pixels", "10000000"});
  protocol::Response r = session.Call(LanczosFrame(13, "x2", {PngClaimingSize(60000, 60000)}));
  EXPECT_EQ(r.status, Code(WireStatus::kLimit));
  EXPECT_NE(r.error.find("60000x60000"), std::string::npos) << r.error;
  ExpectStillServing(session);
  // Refused from the header: the worker never came near 3.6 G pixels of memory.
  for (const std::string& mb : session.LogValues("request", "peak_rss_mb")) EXPECT_LT(std::stod(mb), 500.0);
}

TEST_F(WorkerResilienceTest, TimeoutCancelsTheRequestAndTheWorkerLivesOn) {
  WorkerSession session({"--keep-alive", "--request-timeout", "300ms"});
  // Eight 1024x1024 textured images at x4: seconds of work, far over 300 ms.
  std::vector<std::vector<uint8_t>> heavy(8, TexturedPng(1024, 1024));
  protocol::Response r = session.Call(LanczosFrame(14, "x4", heavy));
  EXPECT_EQ(r.status, Code(WireStatus::kTimeout)) << r.error;
  EXPECT_EQ(r.request_id, 14u);
  EXPECT_TRUE(r.outputs.empty());
  ExpectStillServing(session);
  EXPECT_EQ(session.Finish(), 0);
}

TEST_F(WorkerResilienceTest, UnavailableGpuWithoutFallback) {
  WorkerSession session({"--keep-alive", "--no-gpu-fallback"});
  protocol::Response r = session.Call(LanczosFrame(15, "x2", {small_}, /*gpu_id=*/99));
  EXPECT_EQ(r.status, Code(WireStatus::kDeviceUnavailable));
  EXPECT_NE(r.error.find("gpu 99"), std::string::npos);
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, UnknownModelThenARealModelRequest) {
  WorkerSession session;
  protocol::RequestFrameSpec spec;
  spec.request_id = 16;
  spec.engine = 1;
  spec.quality = "realesrgan-x99";
  spec.images = {small_};
  protocol::Response r = session.Call(protocol::EncodeRequestFrame(spec));
  EXPECT_EQ(r.status, Code(WireStatus::kInvalid));
  EXPECT_NE(r.error.find("unknown model"), std::string::npos) << r.error;
  spec.request_id = 17;
  spec.quality = "realesr-animevideov3-x2";
  r = session.Call(protocol::EncodeRequestFrame(spec));
  ASSERT_EQ(r.status, 0u) << r.error;
  EXPECT_EQ(DecodePixels(r.outputs[0]).width, 8);
  ExpectStillServing(session);
}

TEST_F(WorkerResilienceTest, EndOfInputInsideAFrameIsAnsweredThenTheWorkerExits) {
  WorkerSession session;
  std::vector<uint8_t> frame = LanczosFrame(17, "x2", {small_});
  frame.resize(frame.size() - 5);
  ASSERT_TRUE(session.worker().Send(frame).ok());
  session.worker().process().CloseStdin();
  auto r = session.worker().Receive();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, Code(WireStatus::kProtocol));
  EXPECT_EQ(r->request_id, 17u);
  EXPECT_EQ(session.Finish(), 0);
}

}  // namespace
}  // namespace tessera::test
