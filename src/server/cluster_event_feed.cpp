#include "server/cluster_event_feed.h"

#include <algorithm>

#include "util/log.h"

namespace tessera::server {

using Clock = std::chrono::steady_clock;

namespace {

// How long one wait for a notification lasts at most: Stop() is heard within it.
constexpr std::chrono::milliseconds kWaitSlice{250};

}  // namespace

ClusterEventFeed::ClusterEventFeed(store::ClusterStore& cluster, Deliver deliver, ClusterEventFeedOptions options)
    : cluster_(cluster), deliver_(std::move(deliver)), options_(options) {}

ClusterEventFeed::~ClusterEventFeed() { Stop(); }

Status ClusterEventFeed::Start() {
  // The session first: an event committed between the two is then both
  // notified and after the id read, never missed.
  auto session = cluster_.OpenSession({store::kEventsChannel});
  if (!session.ok()) return session.status();
  auto latest = cluster_.LatestJobEventId();
  if (!latest.ok()) return latest.status();
  session_ = std::move(session).value();
  last_id_ = *latest;
  next_prune_ = Clock::now();
  thread_ = std::thread([this] { Loop(); });
  LogInfo("cluster_events_following").Field("after_event_id", last_id_);
  return Status::Ok();
}

void ClusterEventFeed::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  session_.reset();
}

bool ClusterEventFeed::StopRequestedWithin(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return stop_cv_.wait_for(lock, timeout, [this] { return stopping_; });
}

void ClusterEventFeed::Loop() {
  int64_t connections = session_->connections();
  auto next_read = Clock::now();  // read once at start: what committed before the session listened
  while (!StopRequestedWithin(std::chrono::milliseconds(0))) {
    auto wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(next_read - Clock::now()),
                           std::chrono::milliseconds(0), kWaitSlice);
    auto heard = session_->Wait(wait);
    if (!heard.ok()) {
      if (!store_away_) LogWarn("cluster_events_unreachable").Field("error", heard.status().ToString());
      store_away_ = true;
      if (StopRequestedWithin(kWaitSlice)) return;
      continue;
    }
    // A notification, the fallback's time, or a new connection (what was sent
    // while the old one was lost went unheard): read.
    const bool reconnected = session_->connections() != connections;
    connections = session_->connections();
    if (heard->empty() && !reconnected && !store_away_ && Clock::now() < next_read) continue;
    next_read = Clock::now() + options_.fallback_every;
    if (!ReadAll()) continue;
    if (store_away_) LogInfo("cluster_events_reachable");
    store_away_ = false;
    PruneWhenDue();
  }
}

bool ClusterEventFeed::ReadAll() {
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return true;
    }
    auto events = cluster_.JobEventsAfter(last_id_, options_.page);
    if (!events.ok()) {
      if (!store_away_) LogWarn("cluster_events_unreachable").Field("error", events.status().ToString());
      store_away_ = true;
      return false;
    }
    for (const auto& [id, job] : *events) {
      deliver_(id, job);
      last_id_ = id;
    }
    if (static_cast<int>(events->size()) < options_.page) return true;
  }
}

void ClusterEventFeed::PruneWhenDue() {
  if (Clock::now() < next_prune_) return;
  next_prune_ = Clock::now() + options_.prune_every;
  auto pruned = cluster_.PruneJobEvents(options_.keep_events);
  if (!pruned.ok()) {
    LogWarn("cluster_events_not_pruned").Field("error", pruned.status().ToString());
  } else if (*pruned > 0) {
    LogInfo("cluster_events_pruned").Field("deleted", *pruned).Field("kept", options_.keep_events);
  }
}

}  // namespace tessera::server
