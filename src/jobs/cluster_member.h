// This server's membership of a cluster (docs/cluster.md): the node row and its
// lease, what other nodes say on LISTEN/NOTIFY, and the reaper.
//
// One thread, on a ClusterSession of its own:
// - renews the lease every `renew_every` (a third of the lease); a renewal the
//   database refuses means this incarnation was declared dead or replaced: every
//   run here is stopped (the cluster took those jobs back) and the node
//   registers again;
// - wakes the scheduler's idle lanes on "a job was queued", stops a run here on
//   "cancel <id>";
// - every `check_every`, compares the runs here with their rows
//   (Scheduler::CheckClaims: the fallback when a message was missed) and, when
//   it gets the reaper's advisory lock (one node at a time, held for one pass:
//   a node frozen while holding it must not stop the others from reaping it),
//   takes back the running jobs of nodes whose lease ran out (requeued or failed
//   by the restart policy, fenced by the dead node's claim). Never by a job's
//   run time: video jobs run for hours.
// A lease that ran out while this node was not connected (the database was
// down, so no node could renew) is not taken for a death: the first pass after
// its session (re)connects moves every lease forward (ClusterStore::ExtendLeases).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jobs/scheduler.h"
#include "store/cluster_store.h"
#include "store/job_store.h"

namespace tessera::jobs {

struct ClusterMemberOptions {
  std::string node_id;
  std::string advertise_url;
  std::vector<std::string> lanes;  // cluster names, "<node>/<lane>"
  std::chrono::milliseconds lease{10000};
  std::chrono::milliseconds renew_every{3000};
  std::chrono::milliseconds check_every{2000};
  RestartPolicy restart_policy = RestartPolicy::kRequeue;
};

class ClusterMember {
 public:
  ClusterMember(store::ClusterStore& cluster, Scheduler& scheduler, ClusterMemberOptions options);
  ~ClusterMember();  // Stop()

  // Registers this node (a new incarnation); kIo when the database cannot be
  // reached. Call again to change the advertised URL (after the port is bound).
  Status Register(const std::string& advertise_url);
  // Opens the session and starts the thread.
  Status Start();
  // Stops the thread and retires this incarnation (other nodes stop counting
  // its lanes; its jobs were handed back by the scheduler's Stop).
  void Stop();

  const std::string& advertise_url() const { return options_.advertise_url; }

 private:
  void Loop();
  void Handle(const store::Notification& notification);
  void RenewLease();
  // Takes back the running jobs of nodes whose lease ran out (reaper lock held).
  void Reap();

  store::ClusterStore& cluster_;
  Scheduler& scheduler_;
  ClusterMemberOptions options_;
  int64_t incarnation_ = 0;
  std::unique_ptr<store::ClusterSession> session_;
  int64_t session_connections_ = 0;  // session_->connections() when the reaper last extended leases
  bool leases_extended_ = false;     // by this session's current connection
  bool store_away_ = false;          // logged once per outage

  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tessera::jobs
