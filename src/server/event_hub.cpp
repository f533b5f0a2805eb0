#include "server/event_hub.h"

namespace tessera::server {

std::optional<std::string> EventHub::Subscription::Next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [this] { return closed_ || !events_.empty(); });
  if (events_.empty()) return std::nullopt;
  std::string event = std::move(events_.front());
  events_.pop_front();
  return event;
}

uint64_t EventHub::Subscription::dropped() {
  std::lock_guard lock(mutex_);
  return dropped_;
}

std::shared_ptr<EventHub::Subscription> EventHub::Subscribe() {
  auto subscription = std::make_shared<Subscription>();
  std::lock_guard lock(mutex_);
  if (closed_) {
    subscription->closed_ = true;
  } else {
    subscribers_.insert(subscription);
  }
  return subscription;
}

void EventHub::Unsubscribe(const std::shared_ptr<Subscription>& subscription) {
  std::lock_guard lock(mutex_);
  subscribers_.erase(subscription);
}

void EventHub::Publish(const std::string& event) {
  std::lock_guard lock(mutex_);
  for (const auto& subscriber : subscribers_) {
    {
      std::lock_guard inner(subscriber->mutex_);
      if (subscriber->events_.size() >= max_queued_) {
        subscriber->events_.pop_front();
        subscriber->dropped_ += 1;
      }
      subscriber->events_.push_back(event);
    }
    subscriber->ready_.notify_one();
  }
}

void EventHub::Close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  for (const auto& subscriber : subscribers_) {
    {
      std::lock_guard inner(subscriber->mutex_);
      subscriber->closed_ = true;
    }
    subscriber->ready_.notify_all();
  }
  subscribers_.clear();
}

size_t EventHub::subscriber_count() {
  std::lock_guard lock(mutex_);
  return subscribers_.size();
}

}  // namespace tessera::server
