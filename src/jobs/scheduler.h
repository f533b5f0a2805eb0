// The scheduler: one lane per device, FIFO, least-backlog placement, ETA.
//
// Seed 001 sections 5, 7 and 8, with DESIGN.md's "durable first":
// - Submit commits the job to the store before it is placed, so an acknowledged
//   job survives a crash; the lane it is placed on is the one with the smallest
//   backlog (running + queued), ties to the lowest lane.
// - Each lane runs one job at a time (concurrency 1) in submission order. A lane
//   that falls idle while another still has jobs waiting takes the oldest of them,
//   so one long job never holds up a queue that another device could serve.
// - A job whose worker died or hung is put back at the head of its lane and run
//   again, up to `max_attempts` starts; it is never dropped.
// - On Start, jobs found `running` (the server died under them) are re-queued or
//   failed by policy, and every queued job is placed again in submission order.
//
// Cluster mode (SchedulerOptions::cluster, docs/cluster.md): several servers
// share one queue in the database, and lanes hold no queue of their own. A lane
// that falls idle claims the oldest queued job the cluster has (one statement,
// FOR UPDATE SKIP LOCKED), woken by WakeLanes (a notification) or, when none
// comes, by its own poll; every later write of the job is fenced by this node
// and the claim's attempt, so a job taken back from this node (presumed dead,
// or canceled elsewhere) is never finished by it too. Start recovers only this
// node's own jobs. Scheduler_cluster.cpp holds the cluster-only parts.
//
// Thread-safe. Lane threads call the executors; everything else is quick.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <ext/pb_ds/assoc_container.hpp>
#include <ext/pb_ds/tree_policy.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "jobs/eta_estimator.h"
#include "jobs/job_executor.h"
#include "jobs/lane_discovery.h"
#include "store/cluster_store.h"
#include "store/job_store.h"

namespace tessera::jobs {

enum class RestartPolicy { kRequeue, kFail };

struct SchedulerOptions {
  int max_attempts = 3;
  RestartPolicy restart_policy = RestartPolicy::kRequeue;
  // Used for the ETA until a lane has history for a kind (seconds).
  double default_generate_seconds = 600.0;
  double default_upscale_seconds = 10.0;
  int eta_history = 50;  // durations in the moving average (seed: 10-50)
  // Most jobs of one image batch running at once (seed 004 batch_parallel_workers);
  // 0: no limit beyond the lanes.
  int batch_parallel_limit = 0;
  // Cluster mode: lanes claim jobs from this shared store instead of queues of
  // their own (the same object as the JobStore); null on a single server.
  store::ClusterStore* cluster = nullptr;
  std::string node_id;  // this server's node id: its lanes are "<node_id>/<lane>"
  // How long an idle lane of a cluster waits for a wake-up before it looks at the
  // queue anyway: the fallback when a notification is missed.
  std::chrono::milliseconds claim_poll{2000};
};

// Makes the executor for one lane and one kind (an upscale lane owns its worker).
using ExecutorFactory = std::function<std::unique_ptr<JobExecutor>(const LaneSpec& lane)>;

// A job with what the scheduler knows beyond its row.
struct JobView {
  store::Job job;
  std::optional<int64_t> queue_position;  // queued jobs: jobs ahead of it on its lane, +1
  std::optional<double> eta_seconds;      // until finished; nullopt once finished
  std::string eta_source;                 // EtaTierName: which tier made the estimate
};

struct LaneSnapshot {
  LaneSpec spec;
  std::string running_id;  // empty when idle
  int64_t queued = 0;         // placed on this lane (a cluster's lanes have no queue of their own: 0)
  double busy_seconds = 0.0;  // total time spent running jobs since start
  std::string name;           // "<node>/<lane>" in a cluster, else spec.name
};

// Called after every state change a client may care about (queued, running,
// progress, finished). From lane threads or request threads; must be quick.
using JobListener = std::function<void(const JobView& view)>;

class Scheduler {
 public:
  Scheduler(store::JobStore& store, std::vector<LaneSpec> lanes,
            std::map<store::JobKind, ExecutorFactory> executors, SchedulerOptions options);
  ~Scheduler();  // Stop()

  // Recovers jobs from the store and starts the lanes.
  Status Start();
  // Stops the lanes: running jobs are interrupted and put back in the queue (they
  // run again on the next start); queued jobs stay queued in the store.
  void Stop();
  // The first half of a graceful stop (SIGTERM): from now on lanes start no
  // queued job and Submit refuses (kDeviceUnavailable); running jobs go on.
  // Returns once no lane runs a job, Stop() was called, or `deadline` passed,
  // with the number of jobs still running (Stop hands those back to the queue).
  int Drain(std::chrono::steady_clock::time_point deadline);

  void AddListener(JobListener listener);
  // Tells the listeners about a job no lane runs (kinds without an executor: a
  // video job, moved by jobs/video_runner.h), so that events, waiters and
  // webhooks see it as they see every other job. Start leaves such jobs alone.
  void Announce(const store::Job& job);

  // Commits `job` (id, kind, prompt, params, filename... filled by the caller;
  // status queued) and places it. `before_insert`, when given, sees the job with its
  // lane chosen, just before it is written (names that include the GPU), and may
  // refuse it; submissions run one at a time, so its checks and the insert are
  // atomic with respect to other submissions. Neither it nor the insert runs under
  // the lock that lanes and status reads take. Returns the view the client is
  // answered with.
  Result<JobView> Submit(store::Job job, std::function<Status(store::Job&)> before_insert = nullptr);
  // Places jobs another transaction already committed (an image batch and its
  // jobs are created together): status queued, seq set. Lanes by least backlog.
  void Adopt(const std::vector<store::Job>& committed);
  Result<JobView> Describe(const std::string& id);
  JobView DescribeJob(const store::Job& job);
  // The view of a job this scheduler holds (queued or running), from memory
  // alone: no store read, only this scheduler's mutex held briefly (GET /status
  // answers it on the event loop). nullopt when the job is not held here
  // (finished, unknown) or its ETA needs a history not read yet: ask Describe.
  std::optional<JobView> DescribeHeld(const std::string& id);
  // Queued: removed from its lane and marked canceled. Running: its executor is
  // told to stop; returns once the job has left the lane. Finished: no change.
  // kNotFound for unknown ids.
  Result<store::Job> Cancel(const std::string& id, const std::string& reason = "canceled by request");

  // Cancel for many jobs: the queued ones leave their lanes and are marked in one
  // store transaction (DELETE /jobs?all=true on a long queue); running ones are
  // stopped one by one. Unknown and finished ids are skipped. Returns the jobs
  // as they are afterwards.
  Result<std::vector<store::Job>> CancelMany(const std::vector<std::string>& ids,
                                             const std::string& reason = "canceled by request");

  std::vector<LaneSnapshot> Lanes();

  // ---- cluster mode (no effect otherwise) ----
  // A job was queued somewhere in the cluster: idle lanes look now.
  void WakeLanes();
  // Stops this node's run of job `id` without writing its row (whoever took the
  // job back or canceled it has written it). False when it does not run here.
  bool StopLocalRun(const std::string& id, const std::string& why);
  // Stops every run of this node (its lease was lost: the cluster takes them back).
  void StopAllLocalRuns(const std::string& why);
  // Reads the row of each run of this node and stops those that no longer name
  // this node at the claim's attempt: the fallback of a missed cancel message,
  // and how a node declared dead finds out.
  void CheckClaims();
  // Lanes in the whole cluster (from the nodes table), for queued jobs' ETAs.
  void SetClusterLaneCount(int lanes);
  // The lanes that will run this service's queue: every alive node's in a
  // cluster (this node's until the nodes table was first read), else this
  // scheduler's. What a video is cut for.
  int ServiceLaneCount();
  // "<node_id>/<lane>" in cluster mode, else the lane's own name.
  std::string LaneName(size_t index) const;
  // True while a job of this image batch is queued or running here (cheap: no store).
  bool HasBatchWork(const std::string& batch_id);
  size_t lane_count() const { return lanes_.size(); }

 private:
  // A queued job's place in its lane: (priority, seq). Jobs placed from the store
  // have priority 0, in submission (seq) order; a job put back at the head after
  // its worker failed gets a priority below every other.
  using QueueOrder = std::pair<int64_t, int64_t>;
  // Orders with rank queries (order_of_key) in O(log n): the queue position and
  // the ETA's "jobs ahead" of a queued job without walking the queue.
  using OrderIndex = __gnu_pbds::tree<QueueOrder, __gnu_pbds::null_type, std::less<QueueOrder>,
                                      __gnu_pbds::rb_tree_tag, __gnu_pbds::tree_order_statistics_node_update>;
  struct Lane {
    LaneSpec spec;
    std::map<QueueOrder, std::string> queue;          // job ids, FIFO by order
    std::map<store::JobKind, OrderIndex> queued_kinds;  // the same jobs' orders, by kind
    std::string running_id;
    std::shared_ptr<CancelSignal> running_cancel;
    std::map<store::JobKind, std::unique_ptr<JobExecutor>> executors;
    std::thread thread;
    double busy_seconds = 0.0;
  };

  void RunLane(size_t index);
  // Cluster mode's lane loop: claim, run, repeat (scheduler_cluster.cpp).
  void RunClusterLane(size_t index);
  // Claims the oldest queued job for lane `index`; nullopt when none (or the
  // store cannot be reached: logged, the poll tries again).
  Result<std::optional<store::Job>> ClaimFor(size_t index);
  // Cluster mode's Start: this node's own running jobs (its previous life died
  // under them) are requeued or failed; other nodes' jobs are theirs.
  Status RecoverOwnJobs();
  // Cluster mode: queued jobs of the whole cluster before `seq`, from a snapshot
  // of the queue's seqs at most kQueueSnapshotAge old (a binary search, not a
  // count over the queue per request). nullopt when the store cannot be read.
  std::optional<int64_t> QueuedAheadInCluster(int64_t seq);
  // Cluster mode: the view of a queued job, its position and ETA counted over
  // every node's queue and lanes; nullopt when the store cannot be read.
  std::optional<JobView> DescribeQueuedInCluster(const store::Job& job);
  // Cluster mode's Cancel of a job that does not run here: written in the
  // database (fenced by its runner's claim), and the node running it told.
  Result<store::Job> CancelInCluster(const std::string& id, const std::string& reason);
  // The store write of a job this lane runs: fenced by the claim in cluster mode.
  Status SaveRun(const store::Job& job, int claimed_attempt);
  Status SaveProgress(const std::string& id, int claimed_attempt, double fraction);
  // Whether a store call failed because the database could not be reached.
  static bool IsStoreAway(const Status& status);
  // Cluster mode: SaveRun again until the database is back (or the server stops).
  Status SaveWhenStoreReturns(const store::Job& job, int claimed_attempt, Status saved);
  // Picks the next job for lane `index` (its own queue, else the oldest waiting
  // elsewhere). Called with mutex_ held; empty when none.
  std::string TakeNextJob(size_t index);
  void MarkTakenLocked(const std::string& id);
  // The first job of `queue` whose batch is under its running limit.
  std::map<QueueOrder, std::string>::iterator FirstRunnableLocked(std::map<QueueOrder, std::string>& queue);
  // Adds a job to lane `index` at `order` / removes a placed job from its lane
  // (and from placed_). Both O(log n).
  void EnqueueLocked(size_t index, const std::string& id, QueueOrder order, store::JobKind kind,
                     const std::string& batch_id, int64_t seq);
  void DequeueLocked(const std::string& id);
  // What a lane's run of one job left to do once the lane is released.
  struct RunResult {
    bool ran = false;            // started and finished (announce `job`); false: given up before starting
    store::Job job;              // as saved after the run
    bool requeue_front = false;  // back at the head of the lane (a retry)
    double ran_seconds = 0.0;
  };
  // Starts the job, runs it and saves its next state (job_state decides it).
  RunResult RunOne(size_t index, const std::string& id);
  // The part of a run after the job became running (and was saved so): shared by
  // RunOne and cluster lanes, whose claim made it running.
  RunResult RunStarted(size_t index, store::Job job);
  // The executor's part of RunOne: its outcome (attempts exhausted, or no
  // executor for the kind, are errors too).
  ExecutionOutcome Execute(Lane& lane, store::Job& job, CancelSignal& cancel);
  // The one way a job leaves its lane, whatever became of it: the lane is idle
  // again, the job no longer counts as running, and a retry is put back at the
  // head of the lane.
  void ReleaseLane(size_t index, const std::string& id, const RunResult& result);
  void Notify(const store::Job& job);
  std::optional<Seconds> AverageDuration(const std::string& lane, store::JobKind kind);
  // Whether AverageDuration(lane, kind) would answer without reading the store.
  bool AverageKnown(const std::string& lane, store::JobKind kind);
  Seconds DefaultDuration(store::JobKind kind) const;
  void ForgetAverage(const std::string& lane, store::JobKind kind);
  std::optional<size_t> LaneIndexLocked(const std::string& name) const;

  store::JobStore& store_;
  std::map<store::JobKind, ExecutorFactory> factories_;
  SchedulerOptions options_;

  // Serialises Submit (see there); taken before mutex_, never while holding it.
  std::mutex submit_mutex_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable job_left_lane_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  struct Placement {
    size_t lane = 0;
    QueueOrder order;
    int64_t seq = 0;
    store::JobKind kind = store::JobKind::kGenerate;
    std::string batch_id;
  };
  struct RunningInfo {
    store::JobKind kind = store::JobKind::kGenerate;
    std::string batch_id;
    int64_t started_ms = 0;
    std::optional<ProgressReport> progress;
    int claimed_attempt = 0;   // cluster mode: the fence's attempt
    bool taken_back = false;   // cluster mode: stopped because another wrote its row
    bool writing_result = false;  // its outcome is being saved: too late to stop it
  };
  void PlaceLocked(const store::Job& job, size_t lane);
  // What DescribeJob needs from the lanes, read under mutex_; then Estimate
  // computes the view without it.
  struct JobSnapshot {
    std::optional<RunningInfo> running;
    bool placed = false;
    std::map<store::JobKind, int64_t> ahead;  // jobs before it on its lane (running one included), by kind
  };
  JobSnapshot SnapshotLocked(const store::Job& job) const;
  JobView Estimate(const store::Job& job, const JobSnapshot& snapshot);
  size_t LeastBacklogLaneLocked() const;
  // Lanes running a job now.
  int RunningCountLocked() const;

  // The row of every job held here (placed_ or running_), as last saved by this
  // scheduler: what DescribeHeld answers from. Set where a held job is placed or
  // saved, dropped when it leaves (before anyone is told it finished).
  std::unordered_map<std::string, store::Job> held_rows_;
  // Keeps held_rows_[id] only while `id` is placed or running.
  void ForgetRowUnlessHeldLocked(const std::string& id);
  std::map<std::string, Placement> placed_;     // queued job id -> where it waits
  std::map<std::string, RunningInfo> running_;  // running job id -> what it reported
  std::map<std::string, int> batch_running_;    // batch id -> its jobs running now
  bool started_ = false;
  bool stopping_ = false;
  bool draining_ = false;  // Drain(): no job is started any more
  // Cluster mode: lanes that should look at the shared queue now, not at their poll.
  std::vector<bool> claim_now_;
  int cluster_lanes_ = 0;  // lanes of every node; 0: not known yet (this node's count is used)
  // Cluster mode: the queued seqs QueuedAheadInCluster ranks against.
  std::mutex queue_snapshot_refresh_;  // held while one thread reads a new snapshot
  std::mutex queue_snapshot_mutex_;
  std::shared_ptr<const std::vector<int64_t>> queue_snapshot_;
  std::chrono::steady_clock::time_point queue_snapshot_taken_;

  std::mutex averages_mutex_;
  // Cached moving averages (nullopt: no history yet); dropped when a job succeeds.
  std::map<std::pair<std::string, store::JobKind>, std::optional<Seconds>> averages_;

  std::mutex listeners_mutex_;
  std::vector<JobListener> listeners_;
};

}  // namespace tessera::jobs
