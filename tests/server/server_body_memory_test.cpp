// Bodies of any size cost the server a fixed buffer (issue 16): a 1 GB chunked
// body is refused with 413 once past the limit, a 200 MB multipart upload
// streams to its file; the server's resident memory grows < 64 MB in both.
// Label "memory": ASan's quarantine makes resident sizes meaningless there.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "../support/raw_http.h"
#include "../support/server_process.h"

namespace tessera::test {
namespace {

using std::chrono::seconds;
namespace fs = std::filesystem;

constexpr long kMaxGrowthKiB = 64 * 1024;
const std::string kPngSignature = std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);

// Sends `total` bytes of `piece` repeated, checking the server's RSS as it goes;
// stops early when the server answers or closes. Returns the bytes sent.
uint64_t SendBody(RawConnection& connection, const ServerProcess& server, uint64_t total, const std::string& piece,
                  bool chunked, long* peak_kib) {
  uint64_t sent = 0;
  while (sent < total) {
    std::string frame = piece;
    if (chunked) {
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
      frame = size + piece + "\r\n";
    }
    if (!connection.Send(frame)) break;
    sent += piece.size();
    if (sent % (32 << 20) < piece.size()) *peak_kib = std::max(*peak_kib, ResidentKiB(server.pid()));
    pollfd entry{connection.fd(), POLLIN, 0};
    if (::poll(&entry, 1, 0) > 0) break;  // the server answered (or closed): stop sending
  }
  *peak_kib = std::max(*peak_kib, ResidentKiB(server.pid()));
  return sent;
}

TEST(ServerBodyMemory, AGigabyteChunkedBodyIsRefusedWith413PastTheLimit) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {"--max-body-mb", "64"}, {}});
  ASSERT_TRUE(server.started());
  long before = ResidentKiB(server.pid());
  RawConnection connection(server.port());
  ASSERT_TRUE(connection.Send("POST /upscale?model=lanczos HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n"));
  std::string piece = kPngSignature + std::string((1 << 20) - kPngSignature.size(), 'z');
  long peak = before;
  uint64_t sent = SendBody(connection, server, 1ull << 30, piece, true, &peak);
  ASSERT_TRUE(connection.ReadUntil("\r\n\r\n", seconds(10)));
  EXPECT_NE(connection.received().find("HTTP/1.1 413"), std::string::npos) << connection.received();
  // It stopped reading near the limit: what we got out is the limit plus socket
  // buffers and the short drain, far from the gigabyte.
  EXPECT_LT(sent, 256ull << 20);
  EXPECT_LT(peak - before, kMaxGrowthKiB) << "before " << before << " KiB, peak " << peak << " KiB";
  // The partial upload is gone, and the server goes on.
  EXPECT_TRUE(connection.WaitClosedByPeer(seconds(10)));
  auto health = server.Client()->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_TRUE(fs::is_empty(server.data_dir() + "/uploads"));
}

TEST(ServerBodyMemory, A200MegabyteMultipartUploadStreamsToItsFile) {
  TempDir dir;
  ServerProcess server({dir.path() + "/data", {"--max-body-mb", "300"}, {}});
  ASSERT_TRUE(server.started());
  long before = ResidentKiB(server.pid());
  const uint64_t image_bytes = 200ull << 20;
  const std::string boundary = "tessera-test-boundary";
  std::string head_part = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nlanczos\r\n--" +
                          boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n"
                          "Content-Type: image/png\r\n\r\n" + kPngSignature;
  std::string tail = "\r\n--" + boundary + "--\r\n";
  uint64_t length = head_part.size() + image_bytes - kPngSignature.size() + tail.size();
  RawConnection connection(server.port());
  ASSERT_TRUE(connection.Send("POST /upscale HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=" +
                              boundary + "\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n" + head_part));
  long peak = before;
  uint64_t left = image_bytes - kPngSignature.size();
  std::string piece(1 << 20, 'z');
  uint64_t whole = left / piece.size() * piece.size();
  uint64_t sent = SendBody(connection, server, whole, piece, false, &peak);
  ASSERT_EQ(sent, whole);
  ASSERT_TRUE(connection.Send(std::string(left - whole, 'z') + tail));
  ASSERT_TRUE(connection.ReadUntil("\r\n\r\n", seconds(60)));
  EXPECT_NE(connection.received().find("HTTP/1.1 202"), std::string::npos) << connection.received();
  peak = std::max(peak, ResidentKiB(server.pid()));
  EXPECT_LT(peak - before, kMaxGrowthKiB) << "before " << before << " KiB, peak " << peak << " KiB";
  // The image is on disk whole, under its job's name.
  uint64_t stored = 0;
  for (const auto& entry : fs::directory_iterator(server.data_dir() + "/uploads")) {
    if (entry.path().extension() == ".input") stored = fs::file_size(entry.path());
  }
  EXPECT_EQ(stored, image_bytes);
}

}  // namespace
}  // namespace tessera::test
