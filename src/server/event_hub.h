// Fan-out of job events to server-sent-event clients (GET /events).
//
// No thread waits here: Publish appends an event to each subscriber's queue and
// calls the subscriber's wake function, which the HTTP server points at the
// client's connection on its event loop. Each queue is bounded: a subscriber
// whose client reads too slowly to keep up overflows, and the server then drops
// that client with a final event instead of holding memory or slowing others.
//
// Every event has an id, increasing: the hub's own count (1, 2, 3...), or one
// the publisher gives (a cluster's, from its database: PublishWithId). The last
// `replay` events are kept so a client that reconnects with Last-Event-ID gets
// what it missed, when still kept.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace tessera::server {

struct HubEvent {
  uint64_t id = 0;
  std::string job_id;
  bool final = false;  // the job finished
  std::shared_ptr<const std::string> data;
};

// Where event ids come from. kGiven: the publisher's (PublishWithId), the same
// on every server of a cluster, so a client may resume on another server; one
// that resumes on a server not yet as far gets none of the events up to its
// Last-Event-ID again. kCounted: the hub's own, restarting at 1 with the
// server, so a Last-Event-ID from before a restart holds nothing back.
enum class EventIds { kCounted, kGiven };

class EventSubscriber {
 public:
  EventSubscriber(std::string job_filter, size_t max_queued, uint64_t skip_through = 0)
      : job_filter_(std::move(job_filter)), max_queued_(max_queued), skip_through_(skip_through) {}

  // The events queued since the last call, in order. `overflowed` turns true once
  // more than max_queued waited at once; nothing is queued after that.
  std::vector<HubEvent> TakeAll(bool* overflowed);
  // Called after each event queued (and on Close), from the publishing thread;
  // must be quick. Called at once when events are already waiting or the
  // subscriber is closed.
  void SetWake(std::function<void()> wake);
  bool closed();
  // "" or the only job this subscriber follows.
  const std::string& job_filter() const { return job_filter_; }

 private:
  friend class EventHub;
  void Push(const HubEvent& event);
  void Close();

  const std::string job_filter_;
  const size_t max_queued_;
  const uint64_t skip_through_;  // events with an id up to this one are not queued
  std::mutex mutex_;
  std::deque<HubEvent> events_;
  bool overflowed_ = false;
  bool closed_ = false;
  std::function<void()> wake_;
};

class EventHub {
 public:
  explicit EventHub(size_t max_subscribers = 4096, size_t max_queued_per_subscriber = 256, size_t replay = 1024,
                    EventIds ids = EventIds::kCounted)
      : max_subscribers_(max_subscribers), max_queued_(max_queued_per_subscriber), replay_(replay), ids_(ids) {}
  ~EventHub() { Close(); }

  // A new subscriber (following only `job_filter` when not empty), or nullptr
  // when max_subscribers are connected already (or the hub closed). With
  // `last_event_id`, the kept events after it are queued first. Dropping the
  // last copy of the pointer unsubscribes. The hub must outlive its subscribers.
  std::shared_ptr<EventSubscriber> Subscribe(const std::string& job_filter, std::optional<uint64_t> last_event_id);
  // Numbers the event after the last one published; returns its id.
  uint64_t Publish(const std::string& job_id, bool final, std::string data);
  // Publishes the event as `id`, which must be above every id published so far;
  // an id that is not is ignored (the event was published already).
  void PublishWithId(uint64_t id, const std::string& job_id, bool final, std::string data);
  // Wakes every subscriber for good (server stop).
  void Close();
  size_t subscriber_count();

 private:
  const size_t max_subscribers_;
  const size_t max_queued_;
  const size_t replay_;
  const EventIds ids_;
  std::mutex mutex_;
  void Unsubscribe(EventSubscriber* subscriber);
  // Keeps `event` for replay and queues it for every subscriber; under mutex_.
  void Deliver(const HubEvent& event);

  std::set<EventSubscriber*> subscribers_;
  std::deque<HubEvent> recent_;
  uint64_t last_id_ = 0;
  bool closed_ = false;
};

}  // namespace tessera::server
