// An HTTP server inside a test that records the webhook calls it receives, so a
// test can wait for a delivery on a condition variable instead of a clock.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tessera::test {

class WebhookReceiver {
 public:
  struct Call {
    std::string path;
    std::string body;
    httplib::Headers headers;
  };

  WebhookReceiver() {
    server_.Post(".*", [this](const httplib::Request& request, httplib::Response& response) {
      {
        std::lock_guard lock(mutex_);
        calls_.push_back({request.path, request.body, request.headers});
      }
      arrived_.notify_all();
      response.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~WebhookReceiver() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::string Url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // Waits until at least `count` calls arrived; false after `timeout`.
  bool WaitForCalls(size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, timeout, [&] { return calls_.size() >= count; });
  }
  std::vector<Call> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<Call> calls_;
};

}  // namespace tessera::test
