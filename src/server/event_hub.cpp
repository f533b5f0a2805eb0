#include "server/event_hub.h"

namespace tessera::server {

std::vector<HubEvent> EventSubscriber::TakeAll(bool* overflowed) {
  std::lock_guard lock(mutex_);
  std::vector<HubEvent> taken(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  *overflowed = overflowed_;
  return taken;
}

void EventSubscriber::SetWake(std::function<void()> wake) {
  bool pending;
  {
    std::lock_guard lock(mutex_);
    wake_ = std::move(wake);
    pending = !events_.empty() || closed_ || overflowed_;
  }
  if (pending && wake_) wake_();
}

bool EventSubscriber::closed() {
  std::lock_guard lock(mutex_);
  return closed_;
}

void EventSubscriber::Push(const HubEvent& event) {
  if (!job_filter_.empty() && event.job_id != job_filter_) return;
  if (event.id <= skip_through_) return;
  std::function<void()> wake;
  {
    std::lock_guard lock(mutex_);
    if (closed_ || overflowed_) return;
    if (events_.size() >= max_queued_) {
      overflowed_ = true;
    } else {
      events_.push_back(event);
    }
    wake = wake_;
  }
  if (wake) wake();
}

void EventSubscriber::Close() {
  std::function<void()> wake;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    wake = wake_;
  }
  if (wake) wake();
}

std::shared_ptr<EventSubscriber> EventHub::Subscribe(const std::string& job_filter,
                                                     std::optional<uint64_t> last_event_id) {
  std::lock_guard lock(mutex_);
  if (closed_ || subscribers_.size() >= max_subscribers_) return nullptr;
  const uint64_t skip_through = ids_ == EventIds::kGiven && last_event_id ? *last_event_id : 0;
  auto* subscriber = new EventSubscriber(job_filter, max_queued_, skip_through);
  if (last_event_id) {
    for (const HubEvent& event : recent_) {
      if (event.id > *last_event_id) subscriber->Push(event);
    }
  }
  subscribers_.insert(subscriber);
  return std::shared_ptr<EventSubscriber>(subscriber, [this](EventSubscriber* gone) {
    Unsubscribe(gone);
    delete gone;
  });
}

void EventHub::Unsubscribe(EventSubscriber* subscriber) {
  std::lock_guard lock(mutex_);
  subscribers_.erase(subscriber);
}

uint64_t EventHub::Publish(const std::string& job_id, bool final, std::string data) {
  std::lock_guard lock(mutex_);
  HubEvent event{++last_id_, job_id, final, std::make_shared<const std::string>(std::move(data))};
  Deliver(event);
  return event.id;
}

void EventHub::PublishWithId(uint64_t id, const std::string& job_id, bool final, std::string data) {
  std::lock_guard lock(mutex_);
  if (id <= last_id_) return;
  last_id_ = id;
  Deliver(HubEvent{id, job_id, final, std::make_shared<const std::string>(std::move(data))});
}

void EventHub::Deliver(const HubEvent& event) {
  recent_.push_back(event);
  if (recent_.size() > replay_) recent_.pop_front();
  for (EventSubscriber* subscriber : subscribers_) subscriber->Push(event);
}

void EventHub::Close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  for (EventSubscriber* subscriber : subscribers_) subscriber->Close();
}

size_t EventHub::subscriber_count() {
  std::lock_guard lock(mutex_);
  return subscribers_.size();
}

}  // namespace tessera::server
