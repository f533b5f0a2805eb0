#include "server/webhook_sender.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "util/log.h"
#include "util/sha256.h"

namespace tessera::server {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct ReceivedRequest {
  std::string path;
  std::string body;
  httplib::Headers headers;
  httplib::Params params;
  Clock::time_point at;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// A real HTTP server on 127.0.0.1 that records every request and answers with the
// status `respond` chooses (given the 1-based request number).
class RecordingServer {
 public:
  explicit RecordingServer(std::function<int(int)> respond) : respond_(std::move(respond)) {
    server_.Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      int number;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back({req.path, req.body, req.headers, req.params, Clock::now()});
        number = static_cast<int>(requests_.size());
        cv_.notify_all();
      }
      if (hold_) hold_(number);
      res.status = respond_(number);
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~RecordingServer() {
    // stop() is a no-op until the listening loop runs; it starts at once.
    while (!server_.is_running()) std::this_thread::yield();
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // Called inside the handler before it answers (to hold a request).
  void set_hold(std::function<void(int)> hold) { hold_ = std::move(hold); }

  bool WaitForRequests(size_t count, std::chrono::seconds timeout = 30s) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= count; });
  }
  std::vector<ReceivedRequest> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  std::function<int(int)> respond_;
  std::function<void(int)> hold_;
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<ReceivedRequest> requests_;
};

// Captures stderr (where log lines go) while alive.
class StderrCapture {
 public:
  StderrCapture() {
    saved_ = ::dup(STDERR_FILENO);
    file_ = std::tmpfile();
    ::dup2(::fileno(file_), STDERR_FILENO);
  }
  ~StderrCapture() {
    if (file_ != nullptr) Take();
  }
  std::string Take() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    std::string text;
    std::rewind(file_);
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) text.append(buf, n);
    std::fclose(file_);
    file_ = nullptr;
    return text;
  }

 private:
  int saved_;
  std::FILE* file_;
};

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

WebhookOptions FastOptions() {
  WebhookOptions o;
  o.backoff_base = 5ms;
  o.connect_timeout = 2000ms;
  o.read_timeout = 5000ms;
  return o;
}

TEST(WebhookSenderTest, RetriesAfterTwoFailuresAndSignsEveryAttempt) {
  RecordingServer server([](int n) { return n <= 2 ? 500 : 200; });
  WebhookOptions options = FastOptions();
  options.secret = "tessera-secret";
  WebhookSender sender(options);
  const std::string body = R"({"id":"0b4e","status":"success","file_url":"/files/a b.mp4","note":"é"})";
  ASSERT_TRUE(sender.Enqueue(server.Url(), body, "job.finished").ok());
  ASSERT_TRUE(sender.Flush(30s));

  std::vector<ReceivedRequest> requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  const std::string delivery_id = requests[0].Header("X-Tessera-Delivery");
  EXPECT_EQ(delivery_id.size(), 36u);
  for (const ReceivedRequest& r : requests) {
    EXPECT_EQ(r.path, "/hook");
    EXPECT_EQ(r.body, body);
    EXPECT_EQ(r.Header("Content-Type"), "application/json");
    EXPECT_EQ(r.Header("X-Tessera-Event"), "job.finished");
    EXPECT_EQ(r.Header("X-Tessera-Delivery"), delivery_id);  // one delivery, three attempts
    // The receiver's check: HMAC-SHA256 of the exact body bytes under the shared secret.
    EXPECT_EQ(r.Header("X-Tessera-Signature"), "sha256=" + HmacSha256Hex("tessera-secret", r.body));
  }
  EXPECT_NE(requests[0].Header("X-Tessera-Signature"), "sha256=" + HmacSha256Hex("other-secret", body));
  WebhookStats stats = sender.stats();
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_EQ(stats.failed_attempts, 2u);
  EXPECT_EQ(stats.abandoned, 0u);
}

TEST(WebhookSenderTest, EveryAttemptIsReportedWithItsSubjectAndWhetherItWasTheLast) {
  RecordingServer server([](int n) { return n <= 1 ? 500 : 200; });
  std::mutex mutex;
  std::vector<WebhookAttempt> seen;
  WebhookOptions options = FastOptions();
  options.on_attempt = [&](const WebhookAttempt& attempt) {
    std::lock_guard lock(mutex);
    seen.push_back(attempt);
  };
  WebhookSender sender(options);
  ASSERT_TRUE(sender.Enqueue(server.Url(), "{}", "job.success", "job-1").ok());
  ASSERT_TRUE(sender.Flush(30s));  // returns once the last attempt was reported
  std::lock_guard lock(mutex);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].subject, "job-1");
  EXPECT_EQ(seen[0].event, "job.success");
  EXPECT_EQ(seen[0].attempt, 1);
  EXPECT_FALSE(seen[0].delivered);
  EXPECT_FALSE(seen[0].final);
  EXPECT_NE(seen[0].error.find("500"), std::string::npos) << seen[0].error;
  EXPECT_EQ(seen[1].attempt, 2);
  EXPECT_TRUE(seen[1].delivered);
  EXPECT_TRUE(seen[1].final);
  EXPECT_TRUE(seen[1].error.empty());
  EXPECT_EQ(seen[1].delivery_id, server.requests()[1].Header("X-Tessera-Delivery"));
  EXPECT_EQ(seen[0].delivery_id, seen[1].delivery_id);
}

TEST(WebhookSenderTest, BackoffDoublesBetweenAttempts) {
  RecordingServer server([](int n) { return n <= 3 ? 503 : 204; });
  WebhookOptions options = FastOptions();
  options.backoff_base = 40ms;
  WebhookSender sender(options);
  ASSERT_TRUE(sender.Enqueue(server.Url(), "{}").ok());
  ASSERT_TRUE(sender.Flush(30s));
  std::vector<ReceivedRequest> r = server.requests();
  ASSERT_EQ(r.size(), 4u);
  EXPECT_GE(r[1].at - r[0].at, 40ms);
  EXPECT_GE(r[2].at - r[1].at, 80ms);
  EXPECT_GE(r[3].at - r[2].at, 160ms);
  EXPECT_EQ(sender.stats().delivered, 1u);  // 204 is a success too
}

TEST(WebhookSenderTest, WithoutSecretThereIsNoSignatureAndEachDeliveryHasItsOwnId) {
  RecordingServer server([](int) { return 200; });
  WebhookSender sender(FastOptions());
  ASSERT_TRUE(sender.Enqueue(server.Url("/a/b?token=x%20y"), R"({"n":1})", "job.canceled").ok());
  ASSERT_TRUE(sender.Enqueue(server.Url(), R"({"n":2})").ok());
  ASSERT_TRUE(sender.Flush(30s));
  std::vector<ReceivedRequest> r = server.requests();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].path, "/a/b");
  EXPECT_EQ(r[0].params.find("token")->second, "x y");
  EXPECT_EQ(r[0].Header("X-Tessera-Event"), "job.canceled");
  EXPECT_EQ(r[1].Header("X-Tessera-Event"), "job.finished");
  EXPECT_FALSE(r[0].headers.count("X-Tessera-Signature"));
  EXPECT_NE(r[0].Header("X-Tessera-Delivery"), r[1].Header("X-Tessera-Delivery"));
}

TEST(WebhookSenderTest, RefusedConnectionExhaustsAttemptsAndLogsEachFailure) {
  // A port nobody listens on: bound, then closed.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/hook";

  SetLogLevel(LogLevel::kInfo);
  StderrCapture capture;
  WebhookOptions options = FastOptions();
  options.max_attempts = 3;
  options.backoff_base = 1ms;
  WebhookSender sender(options);
  ASSERT_TRUE(sender.Enqueue(url, "{}").ok());
  ASSERT_TRUE(sender.Flush(30s));
  std::string log = capture.Take();
  WebhookStats stats = sender.stats();
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_EQ(stats.failed_attempts, 3u);
  EXPECT_EQ(stats.abandoned, 1u);
  EXPECT_EQ(Count(log, "event=webhook_attempt_failed"), 2u) << log;
  EXPECT_EQ(Count(log, "event=webhook_abandoned"), 1u) << log;
  EXPECT_NE(log.find("attempt=3 max_attempts=3"), std::string::npos) << log;
}

TEST(WebhookSenderTest, ServerThatNeverAnswersTimesOutAndIsAbandoned) {
  // Listens (so the connection is accepted by the kernel) but never reads or answers.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/hook";

  StderrCapture capture;
  WebhookOptions options = FastOptions();
  options.max_attempts = 2;
  options.backoff_base = 1ms;
  options.read_timeout = 100ms;
  WebhookSender sender(options);
  ASSERT_TRUE(sender.Enqueue(url, "{}").ok());
  ASSERT_TRUE(sender.Flush(30s));
  std::string log = capture.Take();
  ::close(fd);
  EXPECT_EQ(sender.stats().abandoned, 1u);
  EXPECT_EQ(sender.stats().failed_attempts, 2u);
  EXPECT_EQ(Count(log, "event=webhook_abandoned"), 1u) << log;
}

TEST(WebhookSenderTest, EnqueueDoesNotWaitForADeliveryInFlight) {
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  RecordingServer server([](int) { return 200; });
  server.set_hold([&](int number) {
    if (number != 1) return;
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return release; });
  });
  WebhookSender sender(FastOptions());
  ASSERT_TRUE(sender.Enqueue(server.Url(), R"({"n":1})").ok());
  ASSERT_TRUE(server.WaitForRequests(1));
  // The sender's thread is now stuck in the first request, held by the handler.
  auto before = Clock::now();
  Status second = sender.Enqueue(server.Url(), R"({"n":2})");
  auto took = Clock::now() - before;
  EXPECT_TRUE(second.ok());
  EXPECT_LT(took, 1s);
  EXPECT_FALSE(sender.Flush(0ms));  // still in flight
  {
    std::lock_guard<std::mutex> lock(mutex);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(sender.Flush(30s));
  std::vector<ReceivedRequest> r = server.requests();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].body, R"({"n":2})");
}

TEST(WebhookSenderTest, FullQueueRefusesAtOnce) {
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  RecordingServer server([](int) { return 200; });
  server.set_hold([&](int number) {
    if (number != 1) return;
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return release; });
  });
  WebhookOptions options = FastOptions();
  options.max_queue = 2;
  WebhookSender sender(options);
  ASSERT_TRUE(sender.Enqueue(server.Url(), "1").ok());
  ASSERT_TRUE(server.WaitForRequests(1));  // the first one left the queue, in flight
  EXPECT_TRUE(sender.Enqueue(server.Url(), "2").ok());
  EXPECT_TRUE(sender.Enqueue(server.Url(), "3").ok());
  Status refused = sender.Enqueue(server.Url(), "4");
  EXPECT_EQ(refused.code(), StatusCode::kLimit);
  {
    std::lock_guard<std::mutex> lock(mutex);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(sender.Flush(30s));
  EXPECT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(sender.stats().delivered, 3u);
}

TEST(WebhookSenderTest, RefusesMalformedUrlsAndUnknownSchemes) {
  WebhookSender sender(FastOptions());
  for (const char* url : {"ftp://example.com/x", "localhost:8080/hook", "http://", "http:///path",
                          "http://user:pw@example.com/", "http://exa mple.com/", "http://example.com/a b"}) {
    Status status = sender.Enqueue(url, "{}");
    EXPECT_EQ(status.code(), StatusCode::kInvalid) << url;
  }
  Status https = sender.Enqueue("https://127.0.0.1:1/hook", "{}");
  if (WebhookSender::SupportsHttps()) {
    EXPECT_TRUE(https.ok());
  } else {
    EXPECT_EQ(https.code(), StatusCode::kUnsupported);
  }
}

TEST(WebhookSenderTest, DestructorDoesNotWaitOutPendingRetries) {
  RecordingServer server([](int) { return 500; });
  auto sender = std::make_unique<WebhookSender>([] {
    WebhookOptions o = FastOptions();
    o.backoff_base = std::chrono::hours(1);
    return o;
  }());
  ASSERT_TRUE(sender->Enqueue(server.Url(), "{}").ok());
  ASSERT_TRUE(server.WaitForRequests(1));
  EXPECT_FALSE(sender->Flush(0ms));  // waiting an hour for its retry
  auto before = Clock::now();
  sender.reset();
  EXPECT_LT(Clock::now() - before, 30s);
  EXPECT_EQ(server.requests().size(), 1u);
}

}  // namespace
}  // namespace tessera::server
