#include "jobs/scheduler.h"

#include <algorithm>
#include <chrono>

#include "jobs/eta_estimator.h"
#include "jobs/job_state.h"
#include "util/log.h"

namespace tessera::jobs {

using store::Job;
using store::JobKind;
using store::JobStatus;

void CancelSignal::OnCancel(std::function<void()> action) {
  std::function<void()> run_now;
  {
    std::lock_guard lock(mutex_);
    if (requested_) {
      run_now = std::move(action);
    } else {
      action_ = std::move(action);
    }
  }
  if (run_now) run_now();
}

void CancelSignal::ClearAction() {
  std::unique_lock lock(mutex_);
  action_ = nullptr;
  action_done_.wait(lock, [this] { return !action_running_; });
}

void CancelSignal::Request() {
  std::function<void()> action;
  {
    std::lock_guard lock(mutex_);
    if (requested_.exchange(true)) return;
    action = std::move(action_);
    action_ = nullptr;
    action_running_ = static_cast<bool>(action);
  }
  if (!action) return;
  action();
  {
    std::lock_guard lock(mutex_);
    action_running_ = false;
  }
  action_done_.notify_all();
}

Scheduler::Scheduler(store::JobStore& store, std::vector<LaneSpec> lanes, std::map<JobKind, ExecutorFactory> executors,
                     SchedulerOptions options)
    : store_(store), factories_(std::move(executors)), options_(options) {
  for (LaneSpec& spec : lanes) {
    auto lane = std::make_unique<Lane>();
    lane->spec = std::move(spec);
    lanes_.push_back(std::move(lane));
  }
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::AddListener(JobListener listener) {
  std::lock_guard lock(listeners_mutex_);
  listeners_.push_back(std::move(listener));
}

std::optional<size_t> Scheduler::LaneIndexLocked(const std::string& name) const {
  for (size_t i = 0; i < lanes_.size(); ++i) {
    if (lanes_[i]->spec.name == name) return i;
  }
  return std::nullopt;
}

size_t Scheduler::LeastBacklogLaneLocked() const {
  size_t best = 0;
  int64_t best_backlog = -1;
  for (size_t i = 0; i < lanes_.size(); ++i) {
    int64_t backlog = static_cast<int64_t>(lanes_[i]->queue.size()) + (lanes_[i]->running_id.empty() ? 0 : 1);
    if (best_backlog < 0 || backlog < best_backlog) {
      best = i;
      best_backlog = backlog;
    }
  }
  return best;
}

void Scheduler::PlaceLocked(const Job& job, size_t lane_index) {
  // Each lane stays in submission order even when submits race: ordered by seq.
  EnqueueLocked(lane_index, job.id, QueueOrder{0, job.seq}, job.kind, job.batch_id, job.seq);
  held_rows_[job.id] = job;
}

void Scheduler::ForgetRowUnlessHeldLocked(const std::string& id) {
  if (!placed_.count(id) && !running_.count(id)) held_rows_.erase(id);
}

void Scheduler::EnqueueLocked(size_t index, const std::string& id, QueueOrder order, JobKind kind,
                              const std::string& batch_id, int64_t seq) {
  Lane& lane = *lanes_[index];
  lane.queue.emplace(order, id);
  lane.queued_kinds[kind].insert(order);
  placed_[id] = Placement{index, order, seq, kind, batch_id};
}

void Scheduler::DequeueLocked(const std::string& id) {
  auto found = placed_.find(id);
  if (found == placed_.end()) return;
  Lane& lane = *lanes_[found->second.lane];
  lane.queue.erase(found->second.order);
  lane.queued_kinds[found->second.kind].erase(found->second.order);
  placed_.erase(found);
}

Status Scheduler::Start() {
  if (lanes_.empty()) return InvalidError("the scheduler needs at least one lane");
  if (options_.cluster) {
    if (Status recovered = RecoverOwnJobs(); !recovered.ok()) return recovered;
    std::lock_guard lock(mutex_);
    stopping_ = false;
    draining_ = false;
    started_ = true;
    claim_now_.assign(lanes_.size(), true);
    for (size_t i = 0; i < lanes_.size(); ++i) {
      lanes_[i]->thread = std::thread([this, i] { RunClusterLane(i); });
    }
    LogInfo("scheduler_started").Field("lanes", lanes_.size()).Field("node", options_.node_id).Field("mode", "cluster");
    return Status::Ok();
  }
  // Jobs the previous process left running: its children died with it.
  store::JobFilter running_filter;
  running_filter.statuses = {JobStatus::kRunning};
  auto running = store_.List(running_filter);
  if (!running.ok()) return running.status();
  for (Job& job : *running) {
    if (!factories_.count(job.kind)) continue;  // a kind no lane runs (a video job: jobs/video_runner.h)
    bool requeue = options_.restart_policy == RestartPolicy::kRequeue;
    Status moved = requeue ? TransitionJob(job, JobStatus::kQueued, NowMs(), "")
                           : TransitionJob(job, JobStatus::kError, NowMs(), "the server restarted while the job ran");
    if (!moved.ok()) return moved;
    if (Status saved = store_.Update(job); !saved.ok()) return saved;
    LogWarn("job_recovered").Field("job_id", job.id).Field("action", requeue ? "requeued" : "failed");
  }

  store::JobFilter queued_filter;
  queued_filter.statuses = {JobStatus::kQueued};
  auto queued = store_.List(queued_filter);  // seq order
  if (!queued.ok()) return queued.status();
  std::vector<Job> moved;  // placed on a lane other than the one their row names
  {
    std::lock_guard lock(mutex_);
    for (Job& job : *queued) {
      if (placed_.count(job.id) || running_.count(job.id)) continue;  // submitted before Start
      if (!factories_.count(job.kind)) continue;  // a kind no lane runs: its own runner sequences it
      std::optional<size_t> lane = LaneIndexLocked(job.lane);
      if (!lane) {
        lane = LeastBacklogLaneLocked();
        job.lane = lanes_[*lane]->spec.name;
        job.gpu_id = lanes_[*lane]->spec.gpu_id;
        moved.push_back(job);
      }
      PlaceLocked(job, *lane);
    }
  }
  // Saved before any lane runs, and outside mutex_: a store write may wait on the disk.
  if (!moved.empty()) {
    if (Status saved = store_.UpdateAll(moved); !saved.ok()) return saved;
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
    draining_ = false;
    started_ = true;
    for (size_t i = 0; i < lanes_.size(); ++i) {
      lanes_[i]->thread = std::thread([this, i] { RunLane(i); });
    }
  }
  LogInfo("scheduler_started").Field("lanes", lanes_.size()).Field("queued", queued->size())
      .Field("recovered_running", running->size());
  return Status::Ok();
}

void Scheduler::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (!started_) return;
    stopping_ = true;
    for (auto& lane : lanes_) {
      if (lane->running_cancel) lane->running_cancel->Request();
    }
  }
  work_ready_.notify_all();
  job_left_lane_.notify_all();  // a Drain() waiting for idle lanes returns
  for (auto& lane : lanes_) {
    if (lane->thread.joinable()) lane->thread.join();
  }
  std::lock_guard lock(mutex_);
  for (auto& lane : lanes_) lane->executors.clear();
  started_ = false;
}

int Scheduler::RunningCountLocked() const {
  int running = 0;
  for (const auto& lane : lanes_) running += lane->running_id.empty() ? 0 : 1;
  return running;
}

int Scheduler::Drain(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  draining_ = true;
  LogInfo("scheduler_draining").Field("running", RunningCountLocked()).Field("queued", placed_.size());
  // Lanes notify job_left_lane_ as each job leaves, and Stop() notifies it too.
  job_left_lane_.wait_until(lock, deadline, [this] { return stopping_ || RunningCountLocked() == 0; });
  return RunningCountLocked();
}

Result<JobView> Scheduler::Submit(Job job, std::function<Status(Job&)> before_insert) {
  job.status = JobStatus::kQueued;
  job.created_ms = NowMs();
  job.started_ms = job.finished_ms = 0;
  job.attempts = 0;
  job.progress = 0.0;
  JobView view;
  JobSnapshot snapshot;
  // One submission at a time, so that before_insert's checks (a result name
  // still free) and the insert are atomic with respect to other submissions —
  // without holding mutex_, which lanes and status reads need, across the
  // store's write (an fsync).
  std::lock_guard submitting(submit_mutex_);
  size_t lane = 0;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || draining_) return Status(StatusCode::kDeviceUnavailable, "the server is shutting down");
    lane = LeastBacklogLaneLocked();
  }
  // In a cluster the job is placed nowhere: the first free lane of any node claims it.
  job.lane = options_.cluster ? "" : lanes_[lane]->spec.name;
  job.gpu_id = options_.cluster ? -1 : lanes_[lane]->spec.gpu_id;
  if (before_insert) {
    if (Status accepted = before_insert(job); !accepted.ok()) return accepted;
  }
  // Committed before anyone is told the job exists.
  auto seq = store_.Insert(job);
  if (!seq.ok()) return seq.status();
  job.seq = *seq;
  if (options_.cluster) {
    WakeLanes();
    view = DescribeJob(job);
  } else {
    {
      std::lock_guard lock(mutex_);
      PlaceLocked(job, lane);
      // What the client is told is the job as it was placed, before any lane can
      // take it: queued, with its place in line.
      snapshot = SnapshotLocked(job);
    }
    work_ready_.notify_all();
    view = Estimate(job, snapshot);
  }
  {
    std::lock_guard lock(listeners_mutex_);
    for (auto& listener : listeners_) listener(view);
  }
  return view;
}

void Scheduler::Adopt(const std::vector<Job>& committed) {
  if (options_.cluster) return WakeLanes();  // queued in the shared store already
  {
    std::lock_guard lock(mutex_);
    for (const Job& job : committed) {
      if (placed_.count(job.id) || running_.count(job.id)) continue;
      PlaceLocked(job, LeastBacklogLaneLocked());
    }
  }
  work_ready_.notify_all();
}

Result<JobView> Scheduler::Describe(const std::string& id) {
  auto job = store_.Get(id);
  if (!job.ok()) return job.status();
  return DescribeJob(*job);
}

Scheduler::JobSnapshot Scheduler::SnapshotLocked(const Job& job) const {
  JobSnapshot snapshot;
  if (store::IsFinished(job.status)) return snapshot;
  if (auto it = running_.find(job.id); it != running_.end()) {
    snapshot.running = it->second;
  } else if (auto found = placed_.find(job.id); found != placed_.end()) {
    snapshot.placed = true;
    const Lane& lane = *lanes_[found->second.lane];
    if (!lane.running_id.empty()) {
      auto r = running_.find(lane.running_id);
      snapshot.ahead[r != running_.end() ? r->second.kind : job.kind] += 1;
    }
    for (const auto& [kind, orders] : lane.queued_kinds) {
      if (int64_t before = static_cast<int64_t>(orders.order_of_key(found->second.order)); before > 0) {
        snapshot.ahead[kind] += before;
      }
    }
  }
  return snapshot;
}

JobView Scheduler::DescribeJob(const Job& job) {
  JobSnapshot snapshot;
  {
    std::lock_guard lock(mutex_);
    snapshot = SnapshotLocked(job);
  }
  if (options_.cluster && job.status == JobStatus::kQueued && !snapshot.running) {
    if (auto view = DescribeQueuedInCluster(job)) return *view;
  }
  return Estimate(job, snapshot);
}

std::optional<JobView> Scheduler::DescribeHeld(const std::string& id) {
  Job job;
  JobSnapshot snapshot;
  {
    std::lock_guard lock(mutex_);
    auto row = held_rows_.find(id);
    if (row == held_rows_.end() || (!placed_.count(id) && !running_.count(id))) return std::nullopt;
    job = row->second;
    snapshot = SnapshotLocked(job);
  }
  // The ETA's moving averages: from memory, or Describe reads them (once).
  if (!AverageKnown(job.lane, job.kind)) return std::nullopt;
  for (const auto& [kind, count] : snapshot.ahead) {
    if (!AverageKnown(job.lane, kind)) return std::nullopt;
  }
  return Estimate(job, snapshot);
}

JobView Scheduler::Estimate(const Job& job, const JobSnapshot& snapshot) {
  JobView view;
  view.job = job;
  if (store::IsFinished(job.status)) return view;
  const std::map<JobKind, int64_t>& ahead = snapshot.ahead;
  const std::optional<RunningInfo>& running = snapshot.running;
  bool placed = snapshot.placed;

  if (running) {
    view.job.status = JobStatus::kRunning;
    RunningJobTiming timing;
    timing.elapsed = Seconds(std::max(0.0, (NowMs() - running->started_ms) / 1000.0));
    const auto& report = running->progress;
    if (report && report->total > 0 && report->step >= 0 && report->step <= report->total) {
      timing.progress = ProgressEvent{report->step, report->total,
                                      report->structured ? ProgressEvent::Source::kStructured
                                                         : ProgressEvent::Source::kHeuristic};
    }
    timing.average_duration = AverageDuration(job.lane, job.kind);
    timing.default_duration = DefaultDuration(job.kind);
    EtaEstimate estimate = EstimateRunning(timing);
    view.eta_seconds = estimate.remaining.count();
    view.eta_source = EtaTierName(estimate.tier);
    view.job.progress = report ? report->fraction : estimate.progress;
    return view;
  }
  if (placed) {
    int64_t jobs_ahead = 0;
    for (const auto& [kind, count] : ahead) jobs_ahead += count;
    view.queue_position = jobs_ahead + 1;
    // Seed 001 tier C: avg x (jobs_ahead + 1) x 1.05. Jobs ahead of another kind
    // count at their own kind's average (the same formula when all are alike).
    std::optional<Seconds> own = AverageDuration(job.lane, job.kind);
    Seconds sum = own.value_or(DefaultDuration(job.kind));
    for (const auto& [kind, count] : ahead) {
      sum += AverageDuration(job.lane, kind).value_or(DefaultDuration(kind)) * static_cast<double>(count);
    }
    view.eta_seconds = (sum * kEtaSafetyFactor).count();
    view.eta_source = EtaTierName(own ? EtaTier::kMovingAverage : EtaTier::kDefault);
  }
  return view;
}

Seconds Scheduler::DefaultDuration(JobKind kind) const {
  return Seconds(kind == JobKind::kGenerate ? options_.default_generate_seconds : options_.default_upscale_seconds);
}

std::optional<Seconds> Scheduler::AverageDuration(const std::string& lane, JobKind kind) {
  {
    std::lock_guard lock(averages_mutex_);
    if (auto it = averages_.find({lane, kind}); it != averages_.end()) return it->second;
  }
  std::optional<Seconds> average;
  auto durations = store_.RecentDurations(lane, kind, options_.eta_history);
  if (durations.ok()) {
    std::vector<Seconds> recent(durations->begin(), durations->end());
    average = MovingAverageDuration(recent);
  } else {
    LogWarn("eta_history_unavailable").Field("lane", lane).Field("error", durations.status().ToString());
  }
  std::lock_guard lock(averages_mutex_);
  averages_[{lane, kind}] = average;
  return average;
}

bool Scheduler::AverageKnown(const std::string& lane, JobKind kind) {
  std::lock_guard lock(averages_mutex_);
  return averages_.count({lane, kind}) > 0;
}

void Scheduler::ForgetAverage(const std::string& lane, JobKind kind) {
  std::lock_guard lock(averages_mutex_);
  averages_.erase({lane, kind});
}

std::map<Scheduler::QueueOrder, std::string>::iterator Scheduler::FirstRunnableLocked(
    std::map<QueueOrder, std::string>& queue) {
  if (options_.batch_parallel_limit <= 0) return queue.begin();
  for (auto it = queue.begin(); it != queue.end(); ++it) {
    const std::string& batch = placed_[it->second].batch_id;
    if (batch.empty()) return it;
    auto running = batch_running_.find(batch);
    if (running == batch_running_.end() || running->second < options_.batch_parallel_limit) return it;
  }
  return queue.end();
}

std::string Scheduler::TakeNextJob(size_t index) {
  Lane& lane = *lanes_[index];
  auto own = FirstRunnableLocked(lane.queue);
  if (own == lane.queue.end()) {
    // Idle with nothing of its own: take the oldest job waiting behind a busy lane.
    std::optional<size_t> donor;
    std::string donor_id;
    int64_t oldest = 0;
    for (size_t i = 0; i < lanes_.size(); ++i) {
      if (i == index || lanes_[i]->running_id.empty()) continue;
      auto it = FirstRunnableLocked(lanes_[i]->queue);
      if (it == lanes_[i]->queue.end()) continue;
      int64_t seq = placed_[it->second].seq;
      if (!donor || seq < oldest) {
        donor = i;
        donor_id = it->second;
        oldest = seq;
      }
    }
    if (!donor) return "";
    MarkTakenLocked(donor_id);
    return donor_id;
  }
  std::string id = own->second;
  MarkTakenLocked(id);
  return id;
}

void Scheduler::MarkTakenLocked(const std::string& id) {
  // From here until it finishes the job counts as running, so a client asking in
  // between never sees it neither queued nor running.
  auto placement = placed_.find(id);
  if (placement == placed_.end()) {  // cannot happen while each id is placed once; never crash on it
    running_[id] = RunningInfo{JobKind::kGenerate, "", NowMs(), std::nullopt};
    return;
  }
  std::string batch = placement->second.batch_id;
  if (!batch.empty()) batch_running_[batch] += 1;
  running_[id] = RunningInfo{placement->second.kind, batch, NowMs(), std::nullopt};
  DequeueLocked(id);
}

void Scheduler::RunLane(size_t index) {
  Lane& lane = *lanes_[index];
  while (true) {
    std::string id;
    bool more_waiting = false;
    {
      std::unique_lock lock(mutex_);
      // stopping_ is read first and under the same lock as the take: a job is
      // never taken by a lane that is about to return.
      work_ready_.wait(lock, [&] {
        if (stopping_) return true;
        if (draining_) return false;  // queued jobs stay queued for the next start
        id = TakeNextJob(index);
        return !id.empty();
      });
      if (stopping_) return;
      lane.running_id = id;
      lane.running_cancel = std::make_shared<CancelSignal>();
      more_waiting = !lane.queue.empty();
    }
    // Work left behind a lane that just became busy: an idle lane may take it
    // (it may have looked before this lane was busy, and found nothing to take).
    if (more_waiting) work_ready_.notify_all();
    RunResult result = RunOne(index, id);
    ReleaseLane(index, id, result);
    job_left_lane_.notify_all();
    work_ready_.notify_all();  // an idle lane may now take over waiting work
    // The job has left the lane before anyone hears it finished: a client that
    // submits on that news finds the lane idle.
    if (result.ran) Notify(result.job);
  }
}

void Scheduler::ReleaseLane(size_t index, const std::string& id, const RunResult& result) {
  Lane& lane = *lanes_[index];
  std::lock_guard lock(mutex_);
  lane.busy_seconds += result.ran_seconds;
  if (result.requeue_front && !stopping_ && !options_.cluster) {  // a cluster's retry is queued in the store
    int64_t head = lane.queue.empty() ? 0 : std::min<int64_t>(0, lane.queue.begin()->first.first);
    const Job& job = result.job;
    EnqueueLocked(index, job.id, QueueOrder{head - 1, job.seq}, job.kind, job.batch_id, job.seq);
    held_rows_[id] = job;
  }
  if (auto info = running_.find(id); info != running_.end()) {
    if (!info->second.batch_id.empty() && --batch_running_[info->second.batch_id] <= 0) {
      batch_running_.erase(info->second.batch_id);
    }
    running_.erase(info);
  }
  ForgetRowUnlessHeldLocked(id);
  lane.running_id.clear();
  lane.running_cancel.reset();
}

Scheduler::RunResult Scheduler::RunOne(size_t index, const std::string& id) {
  Lane& lane = *lanes_[index];
  RunResult result;
  auto loaded = store_.Get(id);
  if (!loaded.ok()) {
    LogError("job_load_failed").Field("job_id", id).Field("error", loaded.status().ToString());
    return result;
  }
  Job job = std::move(loaded).value();
  if (job.status != JobStatus::kQueued) return result;  // canceled or deleted meanwhile

  job.lane = lane.spec.name;
  job.gpu_id = lane.spec.gpu_id;
  if (Status moved = TransitionJob(job, JobStatus::kRunning, NowMs()); !moved.ok()) {
    LogError("job_transition_failed").Field("job_id", id).Field("error", moved.ToString());
    return result;
  }
  if (Status saved = store_.Update(job); !saved.ok()) {
    // Not started: it stays queued in the store and runs after the next start.
    LogError("job_start_not_saved").Field("job_id", id).Field("error", saved.ToString());
    return result;
  }
  return RunStarted(index, std::move(job));
}

Scheduler::RunResult Scheduler::RunStarted(size_t index, Job job) {
  Lane& lane = *lanes_[index];
  RunResult result;
  const std::string id = job.id;
  const int claimed_attempt = job.attempts;
  std::shared_ptr<CancelSignal> cancel;
  {
    std::lock_guard lock(mutex_);
    cancel = lane.running_cancel;
    running_[id].started_ms = job.started_ms;
    running_[id].claimed_attempt = claimed_attempt;
    held_rows_[id] = job;
  }
  LogInfo("job_started").Field("job_id", id).Field("kind", store::JobKindName(job.kind)).Field("lane", job.lane)
      .Field("attempt", job.attempts);
  Notify(job);

  ExecutionOutcome outcome = Execute(lane, job, *cancel);

  bool taken_back = false;
  {
    std::lock_guard lock(mutex_);
    if (auto info = running_.find(id); info != running_.end()) taken_back = info->second.taken_back;
  }
  if (taken_back) {
    // Another node (or a cancel written elsewhere) owns the row now: write
    // nothing, and announce the row as it is.
    result.ran_seconds = (NowMs() - job.started_ms) / 1000.0;
    LogWarn("job_taken_back").Field("job_id", id).Field("lane", job.lane).Field("attempt", claimed_attempt);
    auto row = store_.Get(id);
    result.ran = row.ok();
    if (row.ok()) result.job = std::move(row).value();
    return result;
  }

  RunCircumstances circumstances;
  circumstances.cancel_requested = cancel->requested();
  circumstances.attempts = job.attempts;
  circumstances.max_attempts = options_.max_attempts;
  {
    std::lock_guard lock(mutex_);
    circumstances.stopping = stopping_;
  }
  NextState next = DecideAfterOutcome(outcome, circumstances);
  if (next.status == JobStatus::kQueued) {
    LogWarn("job_requeued").Field("job_id", id)
        .Field("reason", circumstances.stopping ? "the server is stopping" : outcome.message)
        .Field("attempts", job.attempts - (next.refund_attempt ? 1 : 0));
  }
  result.ran_seconds = (NowMs() - job.started_ms) / 1000.0;
  {
    std::lock_guard lock(mutex_);
    if (auto info = running_.find(id); info != running_.end()) info->second.writing_result = true;
  }
  if (Status moved = ApplyNextState(job, next, NowMs()); !moved.ok()) {
    LogError("job_transition_failed").Field("job_id", id).Field("error", moved.ToString());
  }
  Status saved = SaveRun(job, claimed_attempt);
  if (options_.cluster && IsStoreAway(saved)) saved = SaveWhenStoreReturns(job, claimed_attempt, saved);
  if (!saved.ok()) {
    LogError("job_result_not_saved").Field("job_id", id).Field("error", saved.ToString());
    if (saved.code() == StatusCode::kConflict) {
      // Taken back while it ran (canceled elsewhere, or this node presumed
      // dead): the row is someone else's; announce it as it is.
      auto row = store_.Get(id);
      if (row.ok()) job = std::move(row).value();
      next.requeue_front = false;
    }
  }
  if (next.status == JobStatus::kSuccess) ForgetAverage(job.lane, job.kind);
  LogInfo("job_finished").Field("job_id", id).Field("status", store::JobStatusName(job.status))
      .Field("lane", job.lane).Field("seconds", result.ran_seconds).Field("error", job.error);
  result.ran = true;
  result.requeue_front = next.requeue_front;
  result.job = std::move(job);
  return result;
}

ExecutionOutcome Scheduler::Execute(Lane& lane, Job& job, CancelSignal& cancel) {
  if (job.attempts > options_.max_attempts) {
    return {ExecutionOutcome::Kind::kError, "gave up after " + std::to_string(options_.max_attempts) + " attempts"};
  }
  JobExecutor* executor = nullptr;
  if (auto it = lane.executors.find(job.kind); it != lane.executors.end()) {
    executor = it->second.get();
  } else if (auto factory = factories_.find(job.kind); factory != factories_.end()) {
    auto made = factory->second(lane.spec);
    executor = made.get();
    std::lock_guard lock(mutex_);
    lane.executors[job.kind] = std::move(made);
  }
  if (executor == nullptr) {
    return {ExecutionOutcome::Kind::kError, "this server runs no " + std::string(store::JobKindName(job.kind)) + " jobs"};
  }
  const std::string id = job.id;
  const int claimed_attempt = job.attempts;
  int64_t last_saved_ms = 0;
  double last_saved_fraction = -1.0;
  ExecutionContext context{lane.spec, cancel, [&](const ProgressReport& report) {
    {
      std::lock_guard lock(mutex_);
      running_[id].progress = report;
    }
    job.progress = report.fraction;
    int64_t now = NowMs();
    // Progress is cheap to lose (it is recomputed on restart): save it at most
    // once a second or per percent, never per output line.
    if (report.fraction - last_saved_fraction >= 0.01 || now - last_saved_ms >= 1000) {
      last_saved_ms = now;
      last_saved_fraction = report.fraction;
      if (Status s = SaveProgress(id, claimed_attempt, report.fraction); !s.ok()) {
        LogWarn("progress_not_saved").Field("job_id", id).Field("error", s.ToString());
        // The claim no longer holds: stop the work (its row is someone else's).
        if (s.code() == StatusCode::kConflict) StopLocalRun(id, s.message());
      } else {
        std::lock_guard lock(mutex_);
        if (auto row = held_rows_.find(id); row != held_rows_.end()) row->second.progress = report.fraction;
      }
      Notify(job);
    }
  }};
  ExecutionOutcome outcome = executor->Execute(job, context);
  cancel.ClearAction();
  return outcome;
}

void Scheduler::Announce(const Job& job) { Notify(job); }

void Scheduler::Notify(const Job& job) {
  JobView view = DescribeJob(job);
  std::lock_guard lock(listeners_mutex_);
  for (auto& listener : listeners_) listener(view);
}

Result<Job> Scheduler::Cancel(const std::string& id, const std::string& reason) {
  std::unique_lock lock(mutex_);
  if (auto found = placed_.find(id); found != placed_.end()) {
    DequeueLocked(id);
    held_rows_.erase(id);
    lock.unlock();
    auto job = store_.Get(id);
    if (!job.ok()) return job.status();
    if (Status moved = TransitionJob(*job, JobStatus::kCanceled, NowMs(), reason); !moved.ok()) return moved;
    if (Status saved = store_.Update(*job); !saved.ok()) return saved;
    Notify(*job);
    return job;
  }
  for (auto& lane : lanes_) {
    if (lane->running_id == id) {
      std::shared_ptr<CancelSignal> cancel = lane->running_cancel;
      lock.unlock();
      if (cancel) cancel->Request();
      lock.lock();
      job_left_lane_.wait(lock, [&] { return lane->running_id != id; });
      lock.unlock();
      return store_.Get(id);
    }
  }
  lock.unlock();
  if (options_.cluster) return CancelInCluster(id, reason);
  auto job = store_.Get(id);
  if (!job.ok()) return job.status();
  if (job->status == JobStatus::kQueued) {  // not placed: the scheduler has not started
    if (Status moved = TransitionJob(*job, JobStatus::kCanceled, NowMs(), reason); !moved.ok()) return moved;
    if (Status saved = store_.Update(*job); !saved.ok()) return saved;
  }
  return job;
}

Result<std::vector<Job>> Scheduler::CancelMany(const std::vector<std::string>& ids, const std::string& reason) {
  std::set<std::string> queued;
  std::vector<std::string> running;
  {
    std::lock_guard lock(mutex_);
    for (const std::string& id : ids) {
      if (placed_.count(id)) {
        queued.insert(id);
      } else {
        running.push_back(id);  // running, or unknown here: Cancel sorts those out one by one
      }
    }
    for (const std::string& id : queued) {
      DequeueLocked(id);
      held_rows_.erase(id);
    }
  }
  std::vector<Job> result;
  if (!queued.empty()) {
    store::JobFilter filter;
    filter.ids.assign(queued.begin(), queued.end());
    auto rows = store_.List(filter);
    if (!rows.ok()) return rows.status();
    int64_t now = NowMs();
    for (Job& job : *rows) {
      if (TransitionJob(job, JobStatus::kCanceled, now, reason).ok()) result.push_back(job);
    }
    if (Status saved = store_.UpdateAll(result); !saved.ok()) return saved;
    for (const Job& job : result) Notify(job);
  }
  for (const std::string& id : running) {
    auto job = Cancel(id, reason);
    if (job.ok() && job->status == JobStatus::kCanceled) result.push_back(*job);
  }
  return result;
}

bool Scheduler::HasBatchWork(const std::string& batch_id) {
  // A cluster's queue is in the store, not here: the caller reads the batch.
  if (options_.cluster) return false;
  std::lock_guard lock(mutex_);
  if (batch_running_.count(batch_id)) return true;
  for (const auto& [id, placement] : placed_) {
    if (placement.batch_id == batch_id) return true;
  }
  return false;
}

std::vector<LaneSnapshot> Scheduler::Lanes() {
  std::lock_guard lock(mutex_);
  std::vector<LaneSnapshot> snapshots;
  for (size_t i = 0; i < lanes_.size(); ++i) {
    const Lane& lane = *lanes_[i];
    snapshots.push_back(
        {lane.spec, lane.running_id, static_cast<int64_t>(lane.queue.size()), lane.busy_seconds, LaneName(i)});
  }
  return snapshots;
}

}  // namespace tessera::jobs
