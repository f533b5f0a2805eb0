#include "jobs/cluster_member.h"

#include <algorithm>

#include "jobs/job_state.h"
#include "util/log.h"

namespace tessera::jobs {

using Clock = std::chrono::steady_clock;

ClusterMember::ClusterMember(store::ClusterStore& cluster, Scheduler& scheduler, ClusterMemberOptions options)
    : cluster_(cluster), scheduler_(scheduler), options_(std::move(options)) {}

ClusterMember::~ClusterMember() { Stop(); }

Status ClusterMember::Register(const std::string& advertise_url) {
  options_.advertise_url = advertise_url;
  store::NodeRecord node;
  node.node_id = options_.node_id;
  node.advertise_url = advertise_url;
  node.lanes = options_.lanes;
  auto registered = cluster_.RegisterNode(node, options_.lease);
  if (!registered.ok()) return registered.status();
  incarnation_ = registered->incarnation;
  LogInfo("node_registered").Field("node", options_.node_id).Field("incarnation", incarnation_)
      .Field("advertise_url", advertise_url).Field("lanes", options_.lanes.size());
  return Status::Ok();
}

Status ClusterMember::Start() {
  auto session = cluster_.OpenSession({store::kJobsChannel, store::kControlChannel});
  if (!session.ok()) return session.status();
  session_ = std::move(session).value();
  session_connections_ = session_->connections();
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void ClusterMember::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (incarnation_ != 0) {
    if (Status retired = cluster_.RetireNode(options_.node_id, incarnation_); !retired.ok()) {
      LogWarn("node_not_retired").Field("node", options_.node_id).Field("error", retired.ToString());
    }
    incarnation_ = 0;
  }
  session_.reset();
}

void ClusterMember::Loop() {
  auto next_renew = Clock::now() + options_.renew_every;
  auto next_check = Clock::now() + options_.check_every;
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    auto now = Clock::now();
    auto until = std::min(next_renew, next_check);
    auto wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(until - now),
                           std::chrono::milliseconds(0), std::chrono::milliseconds(1000));
    auto notes = session_->Wait(wait);
    if (!notes.ok()) {
      if (!store_away_) LogWarn("cluster_store_unreachable").Field("error", notes.status().ToString());
      store_away_ = true;
      leases_extended_ = false;  // the reaper lock went with the connection
      std::unique_lock lock(mutex_);
      stop_cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; });
      continue;
    }
    if (store_away_ || session_->connections() != session_connections_) {
      // Back after an outage or a reconnection: notifications may have been
      // missed, and the reaper lock (if it was held) is gone.
      if (store_away_) LogInfo("cluster_store_reachable");
      store_away_ = false;
      session_connections_ = session_->connections();
      leases_extended_ = false;
      scheduler_.WakeLanes();
    }
    for (const store::Notification& note : *notes) Handle(note);
    now = Clock::now();
    if (now >= next_renew) {
      next_renew = now + options_.renew_every;
      RenewLease();
    }
    if (now >= next_check) {
      next_check = now + options_.check_every;
      scheduler_.CheckClaims();
      Reap();
    }
  }
}

void ClusterMember::Handle(const store::Notification& note) {
  if (note.channel == store::kJobsChannel) {
    scheduler_.WakeLanes();
  } else if (note.channel == store::kControlChannel) {
    const std::string cancel = "cancel ";
    if (note.payload.rfind(cancel, 0) == 0) {
      scheduler_.StopLocalRun(note.payload.substr(cancel.size()), "canceled on another node");
    } else {
      LogWarn("cluster_message_unknown").Field("payload", note.payload);
    }
  }
}

void ClusterMember::RenewLease() {
  Status renewed = cluster_.RenewLease(options_.node_id, incarnation_, options_.lease);
  if (renewed.code() == StatusCode::kConflict) {
    // Declared dead (we stalled, or the database was away longer than a lease)
    // or replaced: the cluster has taken our jobs back. Stop them, start over.
    LogWarn("node_lease_lost").Field("node", options_.node_id).Field("incarnation", incarnation_)
        .Field("error", renewed.ToString());
    scheduler_.StopAllLocalRuns("this node's lease was lost");
    if (Status again = Register(options_.advertise_url); !again.ok()) {
      LogWarn("node_register_failed").Field("node", options_.node_id).Field("error", again.ToString());
    }
  } else if (!renewed.ok()) {
    LogWarn("node_lease_not_renewed").Field("node", options_.node_id).Field("error", renewed.ToString());
    return;
  }
  auto nodes = cluster_.ListNodes();
  if (!nodes.ok()) return;
  scheduler_.SetClusterLaneCount(store::AliveLanes(*nodes));
}

void ClusterMember::Reap() {
  auto held = session_->HoldReaperLock();
  if (!held.ok() || !*held) return;
  // Held for this pass only: a node that froze holding it (its connection still
  // open) would otherwise keep every other node from reaping it.
  struct Release {
    store::ClusterSession& session;
    ~Release() { session.ReleaseReaperLock(); }
  } release{*session_};
  if (!leases_extended_) {
    // First reaping pass since this node's session (re)connected: leases that
    // ran out while it was away (a database outage: nobody could renew) are not
    // deaths. Every node gets one more lease from now; reaping starts at the
    // next pass.
    if (Status extended = cluster_.ExtendLeases(options_.lease); !extended.ok()) return;
    leases_extended_ = true;
    LogInfo("reaper_started").Field("node", options_.node_id);
    return;
  }
  auto dead = cluster_.ReapExpiredNodes();
  if (!dead.ok()) {
    LogWarn("reap_failed").Field("error", dead.status().ToString());
    return;
  }
  for (const store::NodeRecord& node : *dead) {
    auto jobs = cluster_.RunningOn(node.node_id);
    if (!jobs.ok()) {
      LogWarn("reap_failed").Field("node", node.node_id).Field("error", jobs.status().ToString());
      continue;
    }
    LogWarn("node_presumed_dead").Field("node", node.node_id).Field("incarnation", node.incarnation)
        .Field("running_jobs", jobs->size());
    for (store::Job& job : *jobs) {
      const store::Fence fence{node.node_id, job.attempts};
      bool requeue = options_.restart_policy == RestartPolicy::kRequeue || store::IsCoordinator(job.kind);
      Status moved = requeue ? TransitionJob(job, store::JobStatus::kQueued, NowMs(), "")
                             : TransitionJob(job, store::JobStatus::kError, NowMs(),
                                             "its node '" + node.node_id + "' stopped answering while it ran");
      if (!moved.ok()) continue;
      Status saved = cluster_.UpdateFenced(job, fence);
      if (!saved.ok()) {
        LogWarn("job_not_taken_back").Field("job_id", job.id).Field("error", saved.ToString());
        continue;
      }
      LogWarn("job_taken_back_from_node").Field("job_id", job.id).Field("node", node.node_id)
          .Field("action", requeue ? "requeued" : "failed");
    }
  }
}

}  // namespace tessera::jobs
