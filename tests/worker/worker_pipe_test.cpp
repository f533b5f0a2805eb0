// The real binary over pipes: the keep-alive contract end to end.
#include <gtest/gtest.h>

#include "../support/worker_session.h"
#include "util/fd_io.h"

namespace tessera::test {
namespace {

using protocol::WireStatus;

std::vector<uint8_t> Colour(int i) {
  return {static_cast<uint8_t>(40 * i % 256), static_cast<uint8_t>(255 - 20 * i), static_cast<uint8_t>(7 * i)};
}

TEST(WorkerPipeTest, OneProcessServesTenBatchesInOrder) {
  WorkerSession session;
  for (int request = 1; request <= 10; ++request) {
    const int n = request;  // batch sizes 1..10
    std::vector<std::vector<uint8_t>> images;
    for (int i = 0; i < n; ++i) images.push_back(SolidPng(8 + i, 5 + request, Colour(i)));
    protocol::Response r = session.Call(LanczosFrame(static_cast<uint64_t>(1000 + request), "x2", images));
    ASSERT_EQ(r.status, Code(WireStatus::kOk)) << r.error;
    EXPECT_EQ(r.request_id, static_cast<uint64_t>(1000 + request));
    EXPECT_TRUE(r.error.empty());
    ASSERT_EQ(r.outputs.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      DecodedPixels px = DecodePixels(r.outputs[i]);
      EXPECT_EQ(px.width, 2 * (8 + i));
      EXPECT_EQ(px.height, 2 * (5 + request));
      std::vector<uint8_t> c = Colour(i);
      for (int band = 0; band < 3; ++band) EXPECT_NEAR(px.at(3, 2)[band], c[band], 1) << "request " << request;
    }
  }
  const pid_t pid = session.pid();
  EXPECT_EQ(session.Finish(), 0);
  // Same process throughout: ten request lines, all from one pid.
  EXPECT_EQ(session.LogValues("request", "status").size(), 10u);
  EXPECT_EQ(session.LogValues("worker_ready", "pid"), std::vector<std::string>{std::to_string(pid)});
}

TEST(WorkerPipeTest, StdoutCarriesNothingButFrames) {
  WorkerSession session;
  ASSERT_EQ(session.Call(LanczosFrame(1, "x2", {SolidPng(4, 4, {1, 2, 3})})).status, 0u);
  ASSERT_EQ(session.Call(LanczosFrame(2, "bogus", {SolidPng(4, 4, {1, 2, 3})})).status, Code(WireStatus::kInvalid));
  session.worker().process().CloseStdin();
  uint8_t extra[16];
  auto n = ReadFull(session.worker().process().stdout_fd(), extra, sizeof extra);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u) << "bytes after the last response on stdout";
  EXPECT_EQ(session.Finish(), 0);
}

TEST(WorkerPipeTest, OneShotStdinModeAnswersOnceAndExits) {
  WorkerSession session({"--mode", "stdin"});
  protocol::Response r = session.Call(LanczosFrame(3, "0.5", {SolidPng(10, 10, {5, 5, 5})}));
  ASSERT_EQ(r.status, 0u) << r.error;
  EXPECT_EQ(DecodePixels(r.outputs[0]).width, 5);
  EXPECT_EQ(session.Finish(), 0);
}

TEST(WorkerPipeTest, EachRequestIsLoggedWithItsTimingsAndMemory) {
  WorkerSession session({"--keep-alive", "--profiling"});
  ASSERT_EQ(session.Call(LanczosFrame(77, "x2", {SolidPng(4, 4, {1, 2, 3})}, 0)).status, 0u);
  EXPECT_EQ(session.Finish(), 0);
  std::string log = session.Stderr();
  for (const char* field : {"request_id=77", "engine=lanczos", "quality=x2", "gpu_id=0", "device=cpu",
                            "gpu_fallback=true", "batch_count=1", "status=OK", "decode_ms=", "process_ms=",
                            "encode_ms=", "total_ms=", "peak_rss_mb=", "wait_ms=", "write_ms=", "estimate_mb="}) {
    EXPECT_NE(log.find(field), std::string::npos) << field << "\n" << log;
  }
}

TEST(WorkerPipeTest, LogProtocolDumpsTheHeaderInHex) {
  WorkerSession session({"--keep-alive", "--log-protocol"});
  ASSERT_EQ(session.Call(LanczosFrame(0x0102, "x2", {SolidPng(4, 4, {1, 2, 3})})).status, 0u);
  EXPECT_EQ(session.Finish(), 0);
  EXPECT_NE(session.Stderr().find("header_hex=\"52 44 52 42 02 00 01 00 02 01 00 00 00 00 00 00\""), std::string::npos)
      << session.Stderr();
}

}  // namespace
}  // namespace tessera::test
