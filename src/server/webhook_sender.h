// Delivers webhook notifications (seed 001: "enregistrer un callback à appeler quand
// le job termine, pour éviter le polling") from one background thread.
//
// Each delivery is an HTTP POST of a JSON body with these headers:
//   Content-Type: application/json
//   X-Tessera-Event: <event>                   e.g. job.finished
//   X-Tessera-Delivery: <uuid>                 the same on every attempt of one delivery,
//                                              so receivers can drop duplicates
//   X-Tessera-Signature: sha256=<hex>          HMAC-SHA256 of the exact body bytes under
//                                              the configured secret (absent without one)
// A delivery is retried on a connection failure or a non-2xx answer, after
// backoff_base, base*factor, base*factor^2... until max_attempts; every failure
// is logged. Deliveries waiting for a retry do not hold up the others.
//
// Thread-safe. Enqueue() never blocks on the network: a full queue refuses.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "util/status.h"

namespace tessera::server {

// What one attempt came to, for whoever keeps a record (the job server stores
// them: GET /jobs/{id}/webhooks).
struct WebhookAttempt {
  std::string delivery_id;
  std::string subject;  // what Enqueue was told the delivery is about (a job id); may be empty
  std::string url;
  std::string event;
  int attempt = 0;  // 1-based
  bool delivered = false;
  bool final = false;  // delivered, or the last attempt failed
  std::string error;
};

struct WebhookOptions {
  std::string secret;  // empty: no X-Tessera-Signature header
  size_t max_queue = 1000;  // deliveries pending or waiting for a retry
  int max_attempts = 5;
  std::chrono::milliseconds backoff_base{1000};  // wait before the first retry
  double backoff_factor = 2.0;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_timeout{10000};  // also the write timeout
  // Called on the sender's thread after every attempt (not while a lock is held).
  std::function<void(const WebhookAttempt&)> on_attempt;
};

struct WebhookStats {
  uint64_t delivered = 0;        // got a 2xx answer
  uint64_t failed_attempts = 0;  // attempts that failed (each is logged)
  uint64_t abandoned = 0;        // deliveries that used all their attempts, or were dropped at shutdown
};

class WebhookSender {
 public:
  explicit WebhookSender(WebhookOptions options = {});
  // Stops the thread: a request in flight finishes (bounded by the timeouts);
  // deliveries still queued are abandoned and logged. Call Flush() first to wait.
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // Queues one delivery of `json_body` to `url` (http://host[:port][/path], or
  // https:// when this build has TLS, which it has not). Errors: kInvalid (malformed URL
  // or scheme), kUnsupported (https without TLS support), kLimit (queue full).
  // `subject` is passed back in on_attempt (a job id).
  Status Enqueue(std::string url, std::string json_body, std::string event = "job.finished", std::string subject = "");

  // Waits until every queued delivery has succeeded or been abandoned; false if
  // `timeout` passed first.
  bool Flush(std::chrono::milliseconds timeout);

  WebhookStats stats() const;

  // True when https:// URLs can be delivered by this build.
  static bool SupportsHttps();

 private:
  struct Delivery {
    std::string origin;  // scheme://host[:port]
    std::string path;    // /path?query
    std::string url;     // as given, for logs
    std::string body;
    std::string event;
    std::string id;
    std::string subject;
    int attempts = 0;
    std::chrono::steady_clock::time_point not_before;
  };

  void Run();
  bool Attempt(const Delivery& delivery, std::string* failure);

  const WebhookOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;  // the thread waits for work or a retry time
  std::condition_variable idle_cv_;  // Flush() waits for an empty queue
  std::deque<Delivery> queue_;       // pending and waiting for retries
  int in_flight_ = 0;
  bool stopping_ = false;
  WebhookStats stats_;
  std::thread thread_;
};

}  // namespace tessera::server
