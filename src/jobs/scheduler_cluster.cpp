// The Scheduler's cluster mode (scheduler.h, docs/cluster.md): lanes claim from
// the queue every node shares, writes of a claimed job are fenced, and a run
// is stopped when its row says the cluster took it back.
#include <algorithm>

#include "jobs/job_state.h"
#include "jobs/scheduler.h"
#include "util/log.h"

namespace tessera::jobs {

using store::Job;
using store::JobStatus;

std::string Scheduler::LaneName(size_t index) const {
  const std::string& name = lanes_[index]->spec.name;
  return options_.cluster ? options_.node_id + "/" + name : name;
}

void Scheduler::SetClusterLaneCount(int lanes) {
  std::lock_guard lock(mutex_);
  cluster_lanes_ = lanes;
}

int Scheduler::ServiceLaneCount() {
  std::lock_guard lock(mutex_);
  return cluster_lanes_ > 0 ? cluster_lanes_ : static_cast<int>(lanes_.size());
}

void Scheduler::WakeLanes() {
  {
    std::lock_guard lock(mutex_);
    std::fill(claim_now_.begin(), claim_now_.end(), true);
  }
  work_ready_.notify_all();
}

Status Scheduler::SaveRun(const Job& job, int claimed_attempt) {
  if (!options_.cluster) return store_.Update(job);
  return options_.cluster->UpdateFenced(job, store::Fence{options_.node_id, claimed_attempt});
}

Status Scheduler::SaveProgress(const std::string& id, int claimed_attempt, double fraction) {
  if (!options_.cluster) return store_.UpdateProgress(id, fraction);
  return options_.cluster->UpdateProgressFenced(id, store::Fence{options_.node_id, claimed_attempt}, fraction);
}

bool Scheduler::IsStoreAway(const Status& status) {
  return status.code() == StatusCode::kIo || status.code() == StatusCode::kUnavailable;
}

Status Scheduler::SaveWhenStoreReturns(const Job& job, int claimed_attempt, Status saved) {
  // The database of a cluster may be away for a while (restarted, failed
  // over): the outcome is kept and written once it is back, the job holding
  // its lane meanwhile (nothing else could be claimed anyway). Given up only
  // when the server stops: the row then still says running here, and this
  // node's next start takes it back and runs it again.
  LogWarn("job_result_waits_for_store").Field("job_id", job.id).Field("error", saved.ToString());
  auto delay = std::chrono::milliseconds(250);
  while (IsStoreAway(saved)) {
    {
      std::unique_lock lock(mutex_);
      if (job_left_lane_.wait_for(lock, delay, [this] { return stopping_; })) return saved;
    }
    delay = std::min<std::chrono::milliseconds>(delay * 2, std::chrono::seconds(2));
    saved = SaveRun(job, claimed_attempt);
  }
  if (saved.ok()) LogInfo("job_result_saved_late").Field("job_id", job.id);
  return saved;
}

Status Scheduler::RecoverOwnJobs() {
  auto running = options_.cluster->RunningOn(options_.node_id);
  if (!running.ok()) return running.status();
  for (Job& job : *running) {
    const int attempt = job.attempts;
    bool requeue = options_.restart_policy == RestartPolicy::kRequeue || store::IsCoordinator(job.kind);
    Status moved = requeue ? TransitionJob(job, JobStatus::kQueued, NowMs(), "")
                           : TransitionJob(job, JobStatus::kError, NowMs(), "the server restarted while the job ran");
    if (!moved.ok()) return moved;
    Status saved = SaveRun(job, attempt);
    // The reaper (on another node) may have taken it back first: then it is theirs.
    if (saved.code() == StatusCode::kConflict) continue;
    if (!saved.ok()) return saved;
    LogWarn("job_recovered").Field("job_id", job.id).Field("action", requeue ? "requeued" : "failed")
        .Field("node", options_.node_id);
  }
  return Status::Ok();
}

Result<std::optional<Job>> Scheduler::ClaimFor(size_t index) {
  store::ClaimRequest request;
  request.node_id = options_.node_id;
  for (const auto& [kind, factory] : factories_) request.kinds.push_back(kind);
  const LaneSpec& spec = lanes_[index]->spec;
  const std::string lane_name = LaneName(index);
  return options_.cluster->Claim(request, [&](Job& job) {
    job.lane = lane_name;
    job.gpu_id = spec.gpu_id;
    job.node = options_.node_id;
    return TransitionJob(job, JobStatus::kRunning, NowMs());
  });
}

void Scheduler::RunClusterLane(size_t index) {
  Lane& lane = *lanes_[index];
  bool store_away = false;  // logged once per outage, not once per poll
  while (true) {
    {
      std::unique_lock lock(mutex_);
      // Woken by WakeLanes, or by the poll when a notification was missed.
      work_ready_.wait_for(lock, options_.claim_poll, [&] { return stopping_ || (!draining_ && claim_now_[index]); });
      if (stopping_) return;
      if (draining_) continue;
      claim_now_[index] = false;
    }
    auto claimed = ClaimFor(index);
    if (!claimed.ok()) {
      if (!store_away) LogWarn("claim_failed").Field("lane", LaneName(index)).Field("error", claimed.status().ToString());
      store_away = true;
      continue;
    }
    if (store_away) LogInfo("claim_recovered").Field("lane", LaneName(index));
    store_away = false;
    if (!*claimed) continue;  // nothing queued anywhere
    Job job = std::move(**claimed);
    const std::string id = job.id;
    bool hand_back = false;
    {
      std::lock_guard lock(mutex_);
      hand_back = stopping_ || draining_;
      if (!hand_back) {
        lane.running_id = id;
        lane.running_cancel = std::make_shared<CancelSignal>();
        RunningInfo info;
        info.kind = job.kind;
        info.batch_id = job.batch_id;
        info.started_ms = job.started_ms;
        info.claimed_attempt = job.attempts;
        running_[id] = std::move(info);
        if (!job.batch_id.empty()) batch_running_[job.batch_id] += 1;
        claim_now_[index] = true;  // after this job, look at the queue again at once
      }
    }
    if (hand_back) {
      // Claimed as the server began to stop: back to the queue, the attempt refunded.
      const int attempt = job.attempts;
      NextState back;
      back.status = JobStatus::kQueued;
      back.refund_attempt = true;
      if (ApplyNextState(job, back, NowMs()).ok()) {
        if (Status saved = SaveRun(job, attempt); !saved.ok()) {
          LogError("job_hand_back_failed").Field("job_id", id).Field("error", saved.ToString());
        }
      }
      continue;
    }
    RunResult result = RunStarted(index, std::move(job));
    ReleaseLane(index, id, result);
    job_left_lane_.notify_all();
    if (result.ran) Notify(result.job);
  }
}

bool Scheduler::StopLocalRun(const std::string& id, const std::string& why) {
  std::shared_ptr<CancelSignal> cancel;
  {
    std::lock_guard lock(mutex_);
    auto info = running_.find(id);
    // Its outcome is being written already: the fenced write settles it.
    if (info == running_.end() || info->second.writing_result) return false;
    info->second.taken_back = true;
    for (auto& lane : lanes_) {
      if (lane->running_id == id) cancel = lane->running_cancel;
    }
  }
  LogWarn("job_stopped_here").Field("job_id", id).Field("why", why);
  if (cancel) cancel->Request();
  return true;
}

void Scheduler::StopAllLocalRuns(const std::string& why) {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, info] : running_) ids.push_back(id);
  }
  for (const std::string& id : ids) StopLocalRun(id, why);
}

void Scheduler::CheckClaims() {
  if (!options_.cluster) return;
  std::map<std::string, int> runs;  // job id -> the claim's attempt
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, info] : running_) {
      // A run writing its outcome may already have changed its row itself.
      if (!info.taken_back && !info.writing_result && info.claimed_attempt > 0) runs[id] = info.claimed_attempt;
    }
  }
  if (runs.empty()) return;
  store::JobFilter filter;
  for (const auto& [id, attempt] : runs) filter.ids.push_back(id);
  auto rows = store_.List(filter);
  if (!rows.ok()) return;  // the store is away: nothing can be concluded from it
  std::map<std::string, const Job*> by_id;
  for (const Job& row : *rows) by_id[row.id] = &row;
  for (const auto& [id, attempt] : runs) {
    auto row = by_id.find(id);
    bool still_ours = row != by_id.end() && row->second->status == JobStatus::kRunning &&
                      row->second->node == options_.node_id && row->second->attempts == attempt;
    if (still_ours) continue;
    std::string why = row == by_id.end() ? "its row was deleted"
                                         : "its row says " + std::string(store::JobStatusName(row->second->status)) +
                                               " on node '" + row->second->node + "' at attempt " +
                                               std::to_string(row->second->attempts);
    StopLocalRun(id, why);
  }
}

std::optional<int64_t> Scheduler::QueuedAheadInCluster(int64_t seq) {
  // Fresh enough for a queue position and an ETA, and cheap under load: one
  // read of the queue's seqs per half second, whatever the request rate.
  constexpr auto kQueueSnapshotAge = std::chrono::milliseconds(500);
  auto rank = [seq](const std::vector<int64_t>& seqs) {
    return static_cast<int64_t>(std::lower_bound(seqs.begin(), seqs.end(), seq) - seqs.begin());
  };
  auto current = [&]() -> std::shared_ptr<const std::vector<int64_t>> {
    std::lock_guard lock(queue_snapshot_mutex_);
    if (queue_snapshot_ && std::chrono::steady_clock::now() - queue_snapshot_taken_ < kQueueSnapshotAge) {
      return queue_snapshot_;
    }
    return nullptr;
  };
  if (auto fresh = current()) return rank(*fresh);
  std::unique_lock refreshing(queue_snapshot_refresh_, std::try_to_lock);
  if (!refreshing.owns_lock()) {
    // Another thread is reading the queue: rank against the last snapshot, or
    // wait for the new one when there is none yet.
    {
      std::lock_guard lock(queue_snapshot_mutex_);
      if (queue_snapshot_) return rank(*queue_snapshot_);
    }
    refreshing.lock();
  }
  if (auto fresh = current()) return rank(*fresh);
  auto seqs = options_.cluster->QueuedSeqs();
  if (!seqs.ok()) {
    LogWarn("queue_position_unavailable").Field("error", seqs.status().ToString());
    return std::nullopt;
  }
  auto snapshot = std::make_shared<const std::vector<int64_t>>(std::move(seqs).value());
  {
    std::lock_guard lock(queue_snapshot_mutex_);
    queue_snapshot_ = snapshot;
    queue_snapshot_taken_ = std::chrono::steady_clock::now();
  }
  return rank(*snapshot);
}

std::optional<JobView> Scheduler::DescribeQueuedInCluster(const Job& job) {
  // Queued in the cluster: its place is its rank among every node's queued
  // jobs, and the lanes of every node work through those ahead of it.
  std::optional<int64_t> before = QueuedAheadInCluster(job.seq);
  if (!before) return std::nullopt;
  const int lanes = ServiceLaneCount();
  JobView view;
  view.job = job;
  view.queue_position = *before + 1;
  std::optional<Seconds> own = AverageDuration(LaneName(0), job.kind);
  double rounds = static_cast<double>(*before / std::max(1, lanes) + 1);
  view.eta_seconds = (own.value_or(DefaultDuration(job.kind)) * rounds * kEtaSafetyFactor).count();
  view.eta_source = EtaTierName(own ? EtaTier::kMovingAverage : EtaTier::kDefault);
  return view;
}

Result<Job> Scheduler::CancelInCluster(const std::string& id, const std::string& reason) {
  // A claim or a finish may land between the read and the write: the write is
  // conditional, and a refused one reads again.
  for (int tries = 0; tries < 5; ++tries) {
    auto row = store_.Get(id);
    if (!row.ok()) return row.status();
    Job job = std::move(row).value();
    if (store::IsFinished(job.status)) return job;
    const JobStatus was = job.status;
    const store::Fence runner{job.node, job.attempts};
    if (Status moved = TransitionJob(job, JobStatus::kCanceled, NowMs(), reason); !moved.ok()) return moved;
    Status saved = was == JobStatus::kQueued ? options_.cluster->UpdateQueued(job)
                                              : options_.cluster->UpdateFenced(job, runner);
    if (saved.code() == StatusCode::kConflict) continue;
    if (!saved.ok()) return saved;
    if (was == JobStatus::kRunning) {
      // The node running it stops it on this message; should the message be
      // lost, at its next CheckClaims.
      if (runner.node_id == options_.node_id) {
        StopLocalRun(id, reason);
      } else if (Status told = options_.cluster->Notify(store::kControlChannel, "cancel " + id); !told.ok()) {
        LogWarn("cancel_not_told").Field("job_id", id).Field("node", runner.node_id).Field("error", told.ToString());
      }
    }
    LogInfo("job_canceled").Field("job_id", id).Field("was", store::JobStatusName(was)).Field("node", runner.node_id);
    Notify(job);
    return job;
  }
  return ConflictError("job " + id + " kept changing while it was being canceled; try again");
}

}  // namespace tessera::jobs
