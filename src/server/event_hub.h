// Fan-out of job events to server-sent-event clients (GET /events).
//
// Each subscriber has a bounded queue: a client that does not read loses its
// oldest events (and is told so by a "dropped" count) rather than holding memory
// or slowing the lanes that publish.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace tessera::server {

class EventHub {
 public:
  class Subscription {
   public:
    // The next event, or nullopt after `timeout` (or once the hub closed).
    std::optional<std::string> Next(std::chrono::milliseconds timeout);
    uint64_t dropped();

   private:
    friend class EventHub;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::string> events_;
    uint64_t dropped_ = 0;
    bool closed_ = false;
  };

  explicit EventHub(size_t max_queued_per_subscriber = 256) : max_queued_(max_queued_per_subscriber) {}
  ~EventHub() { Close(); }

  std::shared_ptr<Subscription> Subscribe();
  void Unsubscribe(const std::shared_ptr<Subscription>& subscription);
  void Publish(const std::string& event);
  // Wakes every subscriber for good (server stop).
  void Close();
  size_t subscriber_count();

 private:
  size_t max_queued_;
  std::mutex mutex_;
  std::set<std::shared_ptr<Subscription>> subscribers_;
  bool closed_ = false;
};

}  // namespace tessera::server
