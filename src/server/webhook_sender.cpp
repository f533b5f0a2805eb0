#include "server/webhook_sender.h"

#include <algorithm>
#include <cmath>

#include "server/http_client.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/uuid.h"

namespace tessera::server {
namespace {

struct ParsedUrl {
  std::string scheme;
  std::string origin;
  std::string path;
};

Result<ParsedUrl> ParseUrl(const std::string& url) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) return InvalidError("webhook url must start with http://: " + url);
  ParsedUrl parsed;
  parsed.scheme = url.substr(0, sep);
  if (parsed.scheme != "http" && parsed.scheme != "https") {
    return InvalidError("webhook url scheme must be http or https: " + url);
  }
  size_t host_start = sep + 3;
  size_t path_start = url.find_first_of("/?#", host_start);
  std::string authority = url.substr(host_start, path_start == std::string::npos ? std::string::npos
                                                                                  : path_start - host_start);
  if (authority.empty()) return InvalidError("webhook url has no host: " + url);
  if (authority.find('@') != std::string::npos) return InvalidError("webhook url must not carry credentials");
  for (char c : authority) {
    if (static_cast<unsigned char>(c) <= ' ') return InvalidError("webhook url host contains a blank or control byte");
  }
  parsed.origin = parsed.scheme + "://" + authority;
  parsed.path = path_start == std::string::npos ? "/" : url.substr(path_start);
  if (parsed.path[0] != '/') parsed.path.insert(0, "/");
  size_t fragment = parsed.path.find('#');
  if (fragment != std::string::npos) parsed.path.erase(fragment);
  for (char c : parsed.path) {
    if (static_cast<unsigned char>(c) <= ' ') return InvalidError("webhook url path contains a blank or control byte");
  }
  return parsed;
}

}  // namespace

bool WebhookSender::SupportsHttps() { return false; }  // no TLS in this build (http_client.h)

WebhookSender::WebhookSender(WebhookOptions options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

WebhookSender::~WebhookSender() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

Status WebhookSender::Enqueue(std::string url, std::string json_body, std::string event, std::string subject) {
  auto parsed = ParseUrl(url);
  if (!parsed.ok()) {
    LogWarn("webhook_refused").Field("url", url).Field("error", parsed.status().message());
    return parsed.status();
  }
  if (parsed->scheme == "https" && !SupportsHttps()) {
    Status status(StatusCode::kUnsupported, "webhook url is https but this build has no TLS support: " + url);
    LogWarn("webhook_refused").Field("url", url).Field("error", status.message());
    return status;
  }
  Delivery delivery;
  delivery.origin = std::move(parsed->origin);
  delivery.path = std::move(parsed->path);
  delivery.url = std::move(url);
  delivery.body = std::move(json_body);
  delivery.event = std::move(event);
  delivery.id = NewUuidV4();
  delivery.subject = std::move(subject);
  delivery.not_before = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return InternalError("webhook sender is shutting down");
    if (queue_.size() >= options_.max_queue) {
      ++stats_.abandoned;
      LogWarn("webhook_refused")
          .Field("url", delivery.url)
          .Field("event", delivery.event)
          .Field("error", "queue full")
          .Field("max_queue", static_cast<uint64_t>(options_.max_queue));
      return LimitError("webhook queue is full (" + std::to_string(options_.max_queue) + " deliveries)");
    }
    queue_.push_back(std::move(delivery));
  }
  work_cv_.notify_one();
  return Status::Ok();
}

bool WebhookSender::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return idle_cv_.wait_for(lock, timeout, [this] { return queue_.empty() && in_flight_ == 0; });
}

WebhookStats WebhookSender::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void WebhookSender::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (stopping_) break;
    if (queue_.empty()) {
      work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      continue;
    }
    // The earliest due delivery; among equals the oldest (stable min_element).
    auto next = std::min_element(queue_.begin(), queue_.end(),
                                 [](const Delivery& a, const Delivery& b) { return a.not_before < b.not_before; });
    auto due = next->not_before;
    if (due > std::chrono::steady_clock::now()) {
      // Woken early by a new delivery or shutdown; then look again.
      work_cv_.wait_until(lock, due);
      continue;
    }
    Delivery delivery = std::move(*next);
    queue_.erase(next);
    ++in_flight_;
    lock.unlock();

    ++delivery.attempts;
    std::string failure;
    bool ok = Attempt(delivery, &failure);
    if (options_.on_attempt) {
      options_.on_attempt(WebhookAttempt{delivery.id, delivery.subject, delivery.url, delivery.event, delivery.attempts, ok,
                                         ok || delivery.attempts >= options_.max_attempts, ok ? "" : failure});
    }

    lock.lock();
    --in_flight_;
    if (ok) {
      ++stats_.delivered;
      LogInfo("webhook_delivered")
          .Field("url", delivery.url)
          .Field("event", delivery.event)
          .Field("delivery", delivery.id)
          .Field("attempt", delivery.attempts);
    } else {
      ++stats_.failed_attempts;
      bool give_up = delivery.attempts >= options_.max_attempts;
      auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(
          options_.backoff_base * std::pow(options_.backoff_factor, delivery.attempts - 1));
      LogWarn(give_up ? "webhook_abandoned" : "webhook_attempt_failed")
          .Field("url", delivery.url)
          .Field("event", delivery.event)
          .Field("delivery", delivery.id)
          .Field("attempt", delivery.attempts)
          .Field("max_attempts", options_.max_attempts)
          .Field("error", failure)
          .Field("retry_in_ms", give_up ? int64_t{-1} : static_cast<int64_t>(backoff.count()));
      if (give_up) {
        ++stats_.abandoned;
      } else {
        delivery.not_before = std::chrono::steady_clock::now() + backoff;
        queue_.push_back(std::move(delivery));
      }
    }
    if (queue_.empty() && in_flight_ == 0) idle_cv_.notify_all();
  }
  if (!queue_.empty()) {
    LogWarn("webhook_shutdown").Field("abandoned", static_cast<uint64_t>(queue_.size()));
    stats_.abandoned += queue_.size();
    queue_.clear();
  }
  idle_cv_.notify_all();
}

bool WebhookSender::Attempt(const Delivery& delivery, std::string* failure) {
  // origin: "http://host[:port]" (ParseUrl checked it); "[v6]:port" too.
  std::string authority = delivery.origin.substr(delivery.origin.find("://") + 3);
  HttpPostRequest request;
  size_t colon = authority.rfind(':');
  bool has_port = colon != std::string::npos && authority.find(']', colon) == std::string::npos;
  request.host = has_port ? authority.substr(0, colon) : authority;
  if (has_port) request.port = authority.substr(colon + 1);
  if (request.host.size() > 2 && request.host.front() == '[' && request.host.back() == ']') {
    request.host = request.host.substr(1, request.host.size() - 2);
  }
  request.target = delivery.path;
  request.body = delivery.body;
  request.connect_timeout = options_.connect_timeout;
  request.io_timeout = options_.read_timeout;
  request.headers = {{"X-Tessera-Event", delivery.event},
                     {"X-Tessera-Delivery", delivery.id},
                     {"User-Agent", "tessera-webhook"}};
  if (!options_.secret.empty()) {
    request.headers["X-Tessera-Signature"] = "sha256=" + HmacSha256Hex(options_.secret, delivery.body);
  }
  Result<int> status = HttpPost(request);
  if (!status.ok()) {
    *failure = "request failed: " + status.status().message();
    return false;
  }
  if (*status < 200 || *status >= 300) {
    *failure = "http status " + std::to_string(*status);
    return false;
  }
  return true;
}

}  // namespace tessera::server
