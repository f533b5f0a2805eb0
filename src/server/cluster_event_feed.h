// A server's view of the cluster's job changes (docs/cluster.md): follows the
// database's job_events feed (ClusterStore::JobEventsAfter) from the newest
// event at start, and hands each event, with its cluster-wide id and the job as
// its row is now, to `deliver` in id order. Every node of a cluster thus sees
// every job's changes under the same ids, whichever node ran or changed it.
//
// It wakes on a notification on kEventsChannel (its own session), and reads
// anyway every `fallback_every` and after its session reconnected, so a lost
// notification delays an event, never loses it. Every `prune_every` it keeps
// only the newest `keep_events` of the feed (every node does; one delete
// suffices, the others find nothing to delete).
//
// One thread of its own; `deliver` runs on it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "store/cluster_store.h"
#include "util/status.h"

namespace tessera::server {

struct ClusterEventFeedOptions {
  std::chrono::milliseconds fallback_every{1000};
  std::chrono::milliseconds prune_every{60'000};
  int64_t keep_events = 100'000;
  int page = 1000;  // events read per query
};

class ClusterEventFeed {
 public:
  using Deliver = std::function<void(int64_t event_id, const store::Job& job)>;

  ClusterEventFeed(store::ClusterStore& cluster, Deliver deliver, ClusterEventFeedOptions options = {});
  ~ClusterEventFeed();

  // Starts following after the newest event now in the feed (earlier changes
  // are not delivered) on a session of its own. An error when the database
  // cannot be read.
  Status Start();
  // Stops the thread; no delivery after it returns.
  void Stop();

 private:
  void Loop();
  // Delivers every event after last_id_, a page at a time; false when the
  // database could not be read.
  bool ReadAll();
  void PruneWhenDue();
  // Waits up to `timeout` unless Stop() was called; true when it was.
  bool StopRequestedWithin(std::chrono::milliseconds timeout);

  store::ClusterStore& cluster_;
  const Deliver deliver_;
  const ClusterEventFeedOptions options_;
  std::unique_ptr<store::ClusterSession> session_;
  int64_t last_id_ = 0;  // the last event delivered (or skipped at start)
  std::chrono::steady_clock::time_point next_prune_;
  bool store_away_ = false;  // logged once per outage

  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tessera::server
