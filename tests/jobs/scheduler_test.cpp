#include "jobs/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "jobs/job_state.h"
#include "store/sqlite_job_store.h"

namespace tessera::jobs {
namespace {

using store::Job;
using store::JobKind;
using store::JobStatus;
using Kind = ExecutionOutcome::Kind;

// How long a wait may take before the test fails instead of hanging. Waits end
// on a notification, never on this.
constexpr auto kPatience = std::chrono::seconds(30);

struct FakeRun {
  std::string id;
  std::string lane;
  int attempt = 0;
};

// What the fake executors did and what the listeners saw, shared with the test.
// Every field is guarded by `mutex`; `changed` is notified on every change.
struct FakeWorld {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<FakeRun> runs;                 // in the order Execute was entered
  std::vector<std::string> returned;         // ids, in the order Execute returned
  std::set<std::string> released;            // blocked jobs allowed to succeed
  std::vector<std::string> cancel_actions;   // ids whose CancelSignal action ran
  std::map<std::string, std::deque<ProgressReport>> pending_reports;
  std::map<std::string, int> reports_sent;
  std::vector<JobView> views;                // every listener call

  template <typename Predicate>
  bool WaitUntil(Predicate predicate) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, kPatience, predicate);
  }
  void Change(const std::function<void()>& change) {
    {
      std::lock_guard lock(mutex);
      change();
    }
    changed.notify_all();
  }

  int StartsLocked(const std::string& id) const {
    return static_cast<int>(std::count_if(runs.begin(), runs.end(), [&](const FakeRun& r) { return r.id == id; }));
  }
  bool WaitStarted(const std::string& id, int times = 1) {
    return WaitUntil([&] { return StartsLocked(id) >= times; });
  }
  bool WaitStatus(const std::string& id, JobStatus status) {
    return WaitUntil([&] {
      return std::any_of(views.begin(), views.end(),
                         [&](const JobView& v) { return v.job.id == id && v.job.status == status; });
    });
  }
  void Release(const std::string& id) {
    Change([&] { released.insert(id); });
  }
  void SendProgress(const std::string& id, ProgressReport report) {
    int before = 0;
    Change([&] {
      before = reports_sent[id];
      pending_reports[id].push_back(report);
    });
    EXPECT_TRUE(WaitUntil([&] { return reports_sent[id] > before; })) << "progress of " << id << " not delivered";
  }
  std::vector<std::string> RunOrder() {
    std::lock_guard lock(mutex);
    std::vector<std::string> order;
    for (const auto& run : runs) order.push_back(run.id);
    return order;
  }
  std::vector<FakeRun> Runs() {
    std::lock_guard lock(mutex);
    return runs;
  }
  bool CancelActionRan(const std::string& id) {
    std::lock_guard lock(mutex);
    return std::find(cancel_actions.begin(), cancel_actions.end(), id) != cancel_actions.end();
  }
  bool Returned(const std::string& id) {
    std::lock_guard lock(mutex);
    return std::find(returned.begin(), returned.end(), id) != returned.end();
  }
  std::vector<JobView> ViewsOf(const std::string& id) {
    std::lock_guard lock(mutex);
    std::vector<JobView> out;
    for (const auto& v : views) {
      if (v.job.id == id) out.push_back(v);
    }
    return out;
  }
};

// A test executor whose behaviour is the job's prompt:
//   "ok"                     succeeds at once
//   "fail"                   fails (kError) at once
//   "retry:N"                kRetry on attempts 1..N, then success
//   "block"                  waits until released (success) or canceled (kCanceled),
//                            sending the progress reports the test queues meanwhile
//   "block-error-on-cancel"  as "block", but reports a cancel as kError, the way
//                            a process killed by a signal looks to its runner
class FakeExecutor : public JobExecutor {
 public:
  explicit FakeExecutor(FakeWorld& world) : world_(world) {}

  ExecutionOutcome Execute(const Job& job, ExecutionContext& context) override {
    world_.Change([&] { world_.runs.push_back({job.id, context.lane.name, job.attempts}); });
    ExecutionOutcome outcome = Run(job, context);
    world_.Change([&] { world_.returned.push_back(job.id); });
    return outcome;
  }

 private:
  ExecutionOutcome Run(const Job& job, ExecutionContext& context) {
    const std::string& script = job.prompt;
    if (script == "ok") return {Kind::kSuccess, ""};
    if (script == "fail") return {Kind::kError, "the fake generator exited with status 1"};
    if (script.rfind("retry:", 0) == 0) {
      if (job.attempts <= std::stoi(script.substr(6))) {
        return {Kind::kRetry, "fake worker died on attempt " + std::to_string(job.attempts)};
      }
      return {Kind::kSuccess, ""};
    }
    auto canceled = std::make_shared<std::atomic<bool>>(false);
    context.cancel.OnCancel([this, canceled, id = job.id] {
      world_.Change([&] {
        canceled->store(true);
        world_.cancel_actions.push_back(id);
      });
    });
    while (true) {
      ProgressReport report;
      {
        std::unique_lock lock(world_.mutex);
        world_.changed.wait(lock, [&] {
          return canceled->load() || world_.released.count(job.id) > 0 || !world_.pending_reports[job.id].empty();
        });
        if (canceled->load()) {
          if (script == "block-error-on-cancel") return {Kind::kError, "exit status -15"};
          return {Kind::kCanceled, "canceled by request"};
        }
        if (world_.pending_reports[job.id].empty()) return {Kind::kSuccess, ""};  // released
        report = world_.pending_reports[job.id].front();
        world_.pending_reports[job.id].pop_front();
      }
      context.report_progress(report);
      world_.Change([&] { world_.reports_sent[job.id] += 1; });
    }
  }

  FakeWorld& world_;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::SqliteJobStore::Open(":memory:");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  std::vector<LaneSpec> CpuLanes(int count) {
    std::vector<LaneSpec> lanes;
    for (int i = 0; i < count; ++i) lanes.push_back({"cpu:" + std::to_string(i), -1});
    return lanes;
  }

  std::unique_ptr<Scheduler> MakeScheduler(int lanes, SchedulerOptions options = {}) {
    ExecutorFactory factory = [this](const LaneSpec&) { return std::make_unique<FakeExecutor>(world_); };
    auto scheduler = std::make_unique<Scheduler>(
        *store_, CpuLanes(lanes), std::map<JobKind, ExecutorFactory>{{JobKind::kGenerate, factory},
                                                                     {JobKind::kUpscale, factory}},
        options);
    scheduler->AddListener([this](const JobView& view) { world_.Change([&] { world_.views.push_back(view); }); });
    return scheduler;
  }

  static Job NewJob(const std::string& id, const std::string& script, JobKind kind = JobKind::kGenerate) {
    Job job;
    job.id = id;
    job.kind = kind;
    job.prompt = script;
    job.filename = id + ".mp4";
    return job;
  }

  JobView Submit(Scheduler& scheduler, const std::string& id, const std::string& script,
                 JobKind kind = JobKind::kGenerate) {
    auto view = scheduler.Submit(NewJob(id, script, kind));
    EXPECT_TRUE(view.ok()) << view.status().ToString();
    return view.ok() ? *view : JobView{};
  }

  Job Stored(const std::string& id) {
    auto job = store_->Get(id);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? *job : Job{};
  }

  // A finished successful job of `seconds` on `lane`: history for the ETA.
  void SeedDuration(const std::string& lane, JobKind kind, double seconds) {
    static int counter = 0;
    Job job = NewJob("history-" + std::to_string(++counter), "ok", kind);
    job.status = JobStatus::kSuccess;
    job.lane = lane;
    job.attempts = 1;
    job.progress = 1.0;
    job.created_ms = 1'000'000;
    job.started_ms = 1'000'000;
    job.finished_ms = job.started_ms + static_cast<int64_t>(seconds * 1000);
    ASSERT_TRUE(store_->Insert(job).ok());
  }

  // A row as a previous server process left it.
  void InsertRow(const std::string& id, const std::string& script, JobStatus status, const std::string& lane) {
    Job job = NewJob(id, script);
    job.status = status;
    job.lane = lane;
    // Creation times run backwards, so only seq can give submission order.
    static int64_t created_ms = 2'000'000'000'000;
    job.created_ms = created_ms -= 1000;
    if (status == JobStatus::kRunning) {
      job.attempts = 1;
      job.started_ms = job.created_ms;
      job.progress = 0.3;
    }
    ASSERT_TRUE(store_->Insert(job).ok());
  }

  // Declared in this order so that the scheduler (made by the tests, destroyed
  // first) never outlives the world or the store it uses.
  std::unique_ptr<store::SqliteJobStore> store_;
  FakeWorld world_;
};

// --- Submit ---

// The executor destroys what its cancel action uses (the command) right after
// ClearAction(): a cancel that started just before must have finished by then.
// (A server once reused a destroyed command's memory for the next job's, and the
// late cancel killed that next job.)
TEST(CancelSignalTest, ClearActionReturnsOnlyOnceAStartedActionHasReturned) {
  CancelSignal cancel;
  std::mutex mutex;
  std::condition_variable changed;
  bool started = false, release = false, finished = false, clearing = false;
  cancel.OnCancel([&] {
    std::unique_lock lock(mutex);
    started = true;
    changed.notify_all();
    changed.wait(lock, [&] { return release; });
    finished = true;
  });
  std::thread requester([&] { cancel.Request(); });
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, kPatience, [&] { return started; }));
  }
  bool finished_when_cleared = false;
  std::thread executor([&] {
    {
      std::lock_guard lock(mutex);
      clearing = true;
    }
    changed.notify_all();
    cancel.ClearAction();
    std::lock_guard lock(mutex);
    finished_when_cleared = finished;
  });
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, kPatience, [&] { return clearing; }));
    release = true;
  }
  changed.notify_all();
  executor.join();
  requester.join();
  EXPECT_TRUE(finished_when_cleared);
  EXPECT_TRUE(cancel.requested());
}

TEST(CancelSignalTest, AnActionRegisteredAfterTheRequestRunsAtOnceAndOnlyOnce) {
  CancelSignal cancel;
  cancel.Request();
  int runs = 0;
  cancel.OnCancel([&] { ++runs; });
  cancel.Request();
  cancel.ClearAction();
  EXPECT_EQ(runs, 1);
}

TEST_F(SchedulerTest, SubmitCommitsTheJobQueuedWithASeqBeforeReturning) {
  auto scheduler = MakeScheduler(1);  // not started: nothing else touches the row
  JobView first = Submit(*scheduler, "j1", "ok");
  JobView second = Submit(*scheduler, "j2", "ok");

  Job stored = Stored("j1");
  EXPECT_EQ(stored.status, JobStatus::kQueued);
  EXPECT_GT(stored.seq, 0);
  EXPECT_EQ(stored.seq, first.job.seq);
  EXPECT_EQ(stored.lane, "cpu:0");
  EXPECT_EQ(stored.prompt, "ok");
  EXPECT_GT(stored.created_ms, 0);
  EXPECT_EQ(stored.attempts, 0);
  EXPECT_GT(second.job.seq, first.job.seq);
  EXPECT_EQ(first.job.status, JobStatus::kQueued);
  EXPECT_EQ(first.queue_position, 1);
  EXPECT_EQ(second.queue_position, 2);
}

TEST_F(SchedulerTest, SubmitResetsFieldsTheCallerMustNotChoose) {
  auto scheduler = MakeScheduler(1);
  Job job = NewJob("j1", "ok");
  job.status = JobStatus::kSuccess;
  job.attempts = 5;
  job.progress = 0.9;
  job.started_ms = 123;
  job.finished_ms = 456;
  ASSERT_TRUE(scheduler->Submit(job).ok());
  Job stored = Stored("j1");
  EXPECT_EQ(stored.status, JobStatus::kQueued);
  EXPECT_EQ(stored.attempts, 0);
  EXPECT_EQ(stored.progress, 0.0);
  EXPECT_EQ(stored.started_ms, 0);
  EXPECT_EQ(stored.finished_ms, 0);
}

TEST_F(SchedulerTest, BeforeInsertSeesTheChosenLaneBeforeTheRowExists) {
  auto scheduler = MakeScheduler(2);
  Submit(*scheduler, "first", "ok");
  std::string seen_lane;
  bool existed = true;
  auto view = scheduler->Submit(NewJob("second", "ok"), [&](Job& job) {
    seen_lane = job.lane;
    existed = store_->Get(job.id).ok();
    job.filename = job.lane + "-named.mp4";  // what the hook writes is stored
    return Status::Ok();
  });
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(seen_lane, "cpu:1");
  EXPECT_FALSE(existed);
  EXPECT_EQ(Stored("second").filename, "cpu:1-named.mp4");
}

TEST_F(SchedulerTest, ARefusalFromBeforeInsertStoresAndPlacesNothing) {
  auto scheduler = MakeScheduler(1);
  auto view = scheduler->Submit(NewJob("refused", "ok"), [](Job&) { return LimitError("quota exceeded"); });
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.status().code(), StatusCode::kLimit);
  EXPECT_EQ(store_->Get("refused").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(scheduler->Lanes()[0].queued, 0);
}

// --- placement ---

TEST_F(SchedulerTest, JobsGoToTheLaneWithTheSmallestBacklogTiesToTheLowest) {
  auto scheduler = MakeScheduler(2);
  for (const char* id : {"a", "b", "c", "d", "e"}) Submit(*scheduler, id, "ok");
  EXPECT_EQ(Stored("a").lane, "cpu:0");
  EXPECT_EQ(Stored("b").lane, "cpu:1");
  EXPECT_EQ(Stored("c").lane, "cpu:0");
  EXPECT_EQ(Stored("d").lane, "cpu:1");
  EXPECT_EQ(Stored("e").lane, "cpu:0");
  auto lanes = scheduler->Lanes();
  ASSERT_EQ(lanes.size(), 2u);
  EXPECT_EQ(lanes[0].queued, 3);
  EXPECT_EQ(lanes[1].queued, 2);
}

TEST_F(SchedulerTest, ARunningJobCountsInItsLanesBacklog) {
  auto scheduler = MakeScheduler(2);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "a", "block");
  ASSERT_TRUE(world_.WaitStarted("a"));  // lane 0: nothing queued, one running
  Submit(*scheduler, "b", "block");
  EXPECT_EQ(Stored("b").lane, "cpu:1");
  ASSERT_TRUE(world_.WaitStarted("b"));
  Submit(*scheduler, "c", "ok");  // 1 and 1: the lowest
  EXPECT_EQ(Stored("c").lane, "cpu:0");
  EXPECT_EQ(scheduler->Lanes()[0].running_id, "a");
  EXPECT_EQ(scheduler->Lanes()[1].running_id, "b");
}

// --- order ---

TEST_F(SchedulerTest, ALaneRunsItsJobsInSubmissionOrder) {
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "a", "block");
  ASSERT_TRUE(world_.WaitStarted("a"));
  for (const char* id : {"b", "c", "d", "e"}) Submit(*scheduler, id, "ok");
  EXPECT_EQ(scheduler->Lanes()[0].queued, 4);
  world_.Release("a");
  ASSERT_TRUE(world_.WaitStatus("e", JobStatus::kSuccess));
  EXPECT_EQ(world_.RunOrder(), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  for (const char* id : {"a", "b", "c", "d", "e"}) EXPECT_EQ(Stored(id).status, JobStatus::kSuccess) << id;
}

TEST_F(SchedulerTest, AnIdleLaneTakesTheOldestJobWaitingBehindABusyLane) {
  auto scheduler = MakeScheduler(3);
  ASSERT_TRUE(scheduler->Start().ok());
  // One long job per lane, then one more each: d waits behind a, e behind b, f behind c.
  for (const char* id : {"a", "b", "c"}) Submit(*scheduler, id, "block");
  for (const char* id : {"d", "e", "f"}) Submit(*scheduler, id, "ok");
  ASSERT_EQ(Stored("d").lane, "cpu:0");
  ASSERT_EQ(Stored("e").lane, "cpu:1");
  ASSERT_EQ(Stored("f").lane, "cpu:2");

  // Every lane busy with its long job first (a lane's thread may start late).
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(world_.WaitStatus(id, JobStatus::kRunning)) << id;
  world_.Release("c");  // lane 2 runs f, then has nothing of its own
  ASSERT_TRUE(world_.WaitStatus("d", JobStatus::kSuccess));
  ASSERT_TRUE(world_.WaitStatus("e", JobStatus::kSuccess));

  std::vector<std::string> on_lane_2;
  for (const FakeRun& run : world_.Runs()) {
    if (run.lane == "cpu:2") on_lane_2.push_back(run.id);
  }
  // d (older) before e, both while a and b still hold their own lanes.
  EXPECT_EQ(on_lane_2, (std::vector<std::string>{"c", "f", "d", "e"}));
  EXPECT_EQ(Stored("d").lane, "cpu:2");
  EXPECT_EQ(Stored("e").lane, "cpu:2");
  // a and b still hold their lanes.
  EXPECT_EQ(Stored("a").status, JobStatus::kRunning);
  EXPECT_EQ(Stored("b").status, JobStatus::kRunning);
  EXPECT_EQ(Stored("a").lane, "cpu:0");
  EXPECT_EQ(Stored("b").lane, "cpu:1");
}

// --- queue position and ETA ---

TEST_F(SchedulerTest, QueuedEtaIsTheLaneAverageTimesPositionWithTheMargin) {
  SeedDuration("cpu:0", JobKind::kGenerate, 100);
  SeedDuration("cpu:0", JobKind::kGenerate, 200);  // average 150 s
  auto scheduler = MakeScheduler(1);
  for (const char* id : {"x", "y", "z"}) Submit(*scheduler, id, "ok");

  for (auto [id, position] : {std::pair{"x", 1}, std::pair{"y", 2}, std::pair{"z", 3}}) {
    auto view = scheduler->Describe(id);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ(view->job.status, JobStatus::kQueued);
    EXPECT_EQ(view->queue_position, position) << id;
    ASSERT_TRUE(view->eta_seconds.has_value()) << id;
    EXPECT_NEAR(*view->eta_seconds, 150.0 * position * 1.05, 1e-6) << id;
    EXPECT_EQ(view->eta_source, "moving_average");
  }
}

TEST_F(SchedulerTest, QueuedEtaUsesTheConfiguredDefaultsWithoutHistory) {
  SeedDuration("cpu:1", JobKind::kGenerate, 5);  // another lane's history does not count
  SchedulerOptions options;
  options.default_generate_seconds = 300;
  options.default_upscale_seconds = 20;
  auto scheduler = MakeScheduler(1, options);
  JobView first = Submit(*scheduler, "g1", "ok");
  JobView second = Submit(*scheduler, "g2", "ok");
  EXPECT_NEAR(first.eta_seconds.value_or(-1), 300 * 1.05, 1e-6);
  EXPECT_NEAR(second.eta_seconds.value_or(-1), 300 * 2 * 1.05, 1e-6);
  EXPECT_EQ(second.eta_source, "default");

  auto other = MakeScheduler(1, options);
  JobView upscale = Submit(*other, "u1", "ok", JobKind::kUpscale);
  EXPECT_NEAR(upscale.eta_seconds.value_or(-1), 20 * 1.05, 1e-6);
  EXPECT_EQ(upscale.eta_source, "default");
}

TEST_F(SchedulerTest, AJobRunningAheadCountsAsOnePositionInTheQueuedEta) {
  SeedDuration("cpu:0", JobKind::kGenerate, 40);
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "running", "block");
  ASSERT_TRUE(world_.WaitStarted("running"));
  JobView waiting = Submit(*scheduler, "waiting", "ok");
  EXPECT_EQ(waiting.queue_position, 2);
  EXPECT_NEAR(waiting.eta_seconds.value_or(-1), 40 * 2 * 1.05, 1e-6);
}

TEST_F(SchedulerTest, FinishedJobsHaveNoEtaOrPosition) {
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "done", "ok");
  ASSERT_TRUE(world_.WaitStatus("done", JobStatus::kSuccess));
  auto view = scheduler->Describe("done");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->job.status, JobStatus::kSuccess);
  EXPECT_EQ(view->queue_position, std::nullopt);
  EXPECT_EQ(view->eta_seconds, std::nullopt);
}

// DescribeHeld answers queued and running jobs from memory, the same as Describe
// (which reads the store), and nothing once a job left the scheduler.
TEST_F(SchedulerTest, DescribeHeldMatchesDescribeWhileAJobIsHeldAndIsEmptyAfter) {
  SeedDuration("cpu:0", JobKind::kGenerate, 40);
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "a", "block");
  ASSERT_TRUE(world_.WaitStarted("a"));
  Submit(*scheduler, "b", "ok");
  Submit(*scheduler, "c", "ok");
  for (const char* id : {"a", "b", "c"}) {
    auto stored = scheduler->Describe(id);  // reads the ETA history, so the next answers come from memory
    ASSERT_TRUE(stored.ok()) << id;
    auto held = scheduler->DescribeHeld(id);
    ASSERT_TRUE(held.has_value()) << id;
    EXPECT_EQ(held->job.status, stored->job.status) << id;
    EXPECT_EQ(held->job.lane, stored->job.lane) << id;
    EXPECT_EQ(held->job.attempts, stored->job.attempts) << id;
    EXPECT_EQ(held->job.started_ms, stored->job.started_ms) << id;
    EXPECT_EQ(held->queue_position, stored->queue_position) << id;
    EXPECT_EQ(held->eta_source, stored->eta_source) << id;
  }
  EXPECT_EQ(scheduler->DescribeHeld("a")->job.status, JobStatus::kRunning);
  EXPECT_EQ(scheduler->DescribeHeld("c")->queue_position, 3);
  EXPECT_EQ(scheduler->DescribeHeld("unknown"), std::nullopt);

  ASSERT_TRUE(scheduler->Cancel("b").ok());
  EXPECT_EQ(scheduler->DescribeHeld("b"), std::nullopt);
  EXPECT_EQ(scheduler->DescribeHeld("c")->queue_position, 2);
  world_.Release("a");
  ASSERT_TRUE(world_.WaitStatus("c", JobStatus::kSuccess));
  // Gone before anyone heard they finished: a poller never sees a stale state.
  EXPECT_EQ(scheduler->DescribeHeld("a"), std::nullopt);
  EXPECT_EQ(scheduler->DescribeHeld("c"), std::nullopt);
  EXPECT_EQ(scheduler->Describe("c")->job.status, JobStatus::kSuccess);
}

// The running ETA comes from the best tier available. Elapsed time is real, so
// the estimates are checked against bounds computed from the test's own clock.
class RunningEtaTest : public SchedulerTest {
 protected:
  // Starts `id` (blocking) on a fresh scheduler and returns once it runs.
  void StartBlockedJob(Scheduler& scheduler, const std::string& id) {
    ASSERT_TRUE(scheduler.Start().ok());
    submitted_ms_ = NowMs();
    Submit(scheduler, id, "block");
    ASSERT_TRUE(world_.WaitStarted(id));
  }
  JobView DescribeNow(Scheduler& scheduler, const std::string& id) {
    auto view = scheduler.Describe(id);
    elapsed_bound_s_ = (NowMs() - submitted_ms_) / 1000.0;
    EXPECT_TRUE(view.ok());
    return view.ok() ? *view : JobView{};
  }
  int64_t submitted_ms_ = 0;
  double elapsed_bound_s_ = 0;  // the job cannot have run longer than this
};

TEST_F(RunningEtaTest, StructuredProgressGivesTheStructuredTier) {
  auto scheduler = MakeScheduler(1);
  StartBlockedJob(*scheduler, "j");
  world_.SendProgress("j", {0.25, 5, 20, true});
  JobView view = DescribeNow(*scheduler, "j");
  EXPECT_EQ(view.job.status, JobStatus::kRunning);
  EXPECT_EQ(view.eta_source, "structured");
  EXPECT_EQ(view.queue_position, std::nullopt);
  EXPECT_DOUBLE_EQ(view.job.progress, 0.25);
  ASSERT_TRUE(view.eta_seconds.has_value());
  // (20 - 5) * elapsed / 5
  EXPECT_GE(*view.eta_seconds, 0.0);
  EXPECT_LE(*view.eta_seconds, 3 * elapsed_bound_s_ + 1e-6);
}

TEST_F(RunningEtaTest, ParsedProgressGivesTheHeuristicTier) {
  SeedDuration("cpu:0", JobKind::kGenerate, 100);  // progress still wins over history
  auto scheduler = MakeScheduler(1);
  StartBlockedJob(*scheduler, "j");
  world_.SendProgress("j", {0.5, 10, 20, false});
  JobView view = DescribeNow(*scheduler, "j");
  EXPECT_EQ(view.eta_source, "heuristic");
  EXPECT_DOUBLE_EQ(view.job.progress, 0.5);
  ASSERT_TRUE(view.eta_seconds.has_value());
  EXPECT_LE(*view.eta_seconds, elapsed_bound_s_ + 1e-6);  // (20 - 10) * elapsed / 10
}

TEST_F(RunningEtaTest, WithoutProgressTheLaneAverageGivesTheMovingAverageTier) {
  SeedDuration("cpu:0", JobKind::kGenerate, 100);
  SeedDuration("cpu:0", JobKind::kGenerate, 300);  // average 200 s
  auto scheduler = MakeScheduler(1);
  StartBlockedJob(*scheduler, "j");
  JobView view = DescribeNow(*scheduler, "j");
  EXPECT_EQ(view.eta_source, "moving_average");
  ASSERT_TRUE(view.eta_seconds.has_value());
  // max(0, 200 - elapsed) * 1.05
  EXPECT_LE(*view.eta_seconds, 200 * 1.05 + 1e-6);
  EXPECT_GE(*view.eta_seconds, (200 - elapsed_bound_s_) * 1.05 - 1e-6);
}

TEST_F(RunningEtaTest, ProgressWithoutStepsFallsBackToTheTimeBasedTier) {
  SeedDuration("cpu:0", JobKind::kGenerate, 100);
  auto scheduler = MakeScheduler(1);
  StartBlockedJob(*scheduler, "j");
  world_.SendProgress("j", {0.4, 0, 0, false});  // a fraction, no step count
  JobView view = DescribeNow(*scheduler, "j");
  EXPECT_EQ(view.eta_source, "moving_average");
  EXPECT_DOUBLE_EQ(view.job.progress, 0.4);
}

TEST_F(RunningEtaTest, WithNothingKnownTheDefaultDurationGivesTheDefaultTier) {
  SchedulerOptions options;
  options.default_generate_seconds = 500;
  auto scheduler = MakeScheduler(1, options);
  StartBlockedJob(*scheduler, "j");
  JobView view = DescribeNow(*scheduler, "j");
  EXPECT_EQ(view.eta_source, "default");
  ASSERT_TRUE(view.eta_seconds.has_value());
  EXPECT_LE(*view.eta_seconds, 500 * 1.05 + 1e-6);
  EXPECT_GE(*view.eta_seconds, (500 - elapsed_bound_s_) * 1.05 - 1e-6);
}

// --- cancel ---

TEST_F(SchedulerTest, CancelingAQueuedJobMarksItCanceledAndItNeverRuns) {
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "a", "block");
  ASSERT_TRUE(world_.WaitStarted("a"));
  Submit(*scheduler, "b", "ok");
  Submit(*scheduler, "c", "ok");

  auto canceled = scheduler->Cancel("b", "not needed");
  ASSERT_TRUE(canceled.ok()) << canceled.status().ToString();
  EXPECT_EQ(canceled->status, JobStatus::kCanceled);
  Job stored = Stored("b");
  EXPECT_EQ(stored.status, JobStatus::kCanceled);
  EXPECT_EQ(stored.error, "not needed");
  EXPECT_GT(stored.finished_ms, 0);
  EXPECT_EQ(stored.attempts, 0);
  EXPECT_EQ(scheduler->Lanes()[0].queued, 1);  // only c waits now

  world_.Release("a");
  ASSERT_TRUE(world_.WaitStatus("c", JobStatus::kSuccess));  // c was behind b
  EXPECT_EQ(world_.RunOrder(), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(Stored("b").status, JobStatus::kCanceled);
}

TEST_F(SchedulerTest, CancelingARunningJobRunsItsCancelActionAndReturnsOnceItLeftTheLane) {
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "a", "block");
  ASSERT_TRUE(world_.WaitStarted("a"));

  auto canceled = scheduler->Cancel("a");
  ASSERT_TRUE(canceled.ok()) << canceled.status().ToString();
  // By the time Cancel returns: the executor was told, returned, and the lane is free.
  EXPECT_TRUE(world_.CancelActionRan("a"));
  EXPECT_TRUE(world_.Returned("a"));
  EXPECT_EQ(scheduler->Lanes()[0].running_id, "");
  EXPECT_EQ(canceled->status, JobStatus::kCanceled);
  Job stored = Stored("a");
  EXPECT_EQ(stored.status, JobStatus::kCanceled);
  EXPECT_GT(stored.finished_ms, 0);
  EXPECT_EQ(world_.Runs().size(), 1u);  // not retried

  Submit(*scheduler, "next", "ok");  // the lane serves the next job
  EXPECT_TRUE(world_.WaitStatus("next", JobStatus::kSuccess));
}

TEST_F(SchedulerTest, AKilledJobThatReportsAnErrorIsRecordedAsCanceled) {
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "a", "block-error-on-cancel");
  ASSERT_TRUE(world_.WaitStarted("a"));
  auto canceled = scheduler->Cancel("a");
  ASSERT_TRUE(canceled.ok());
  EXPECT_EQ(canceled->status, JobStatus::kCanceled);
  EXPECT_EQ(canceled->error.find("-15"), std::string::npos) << canceled->error;
}

TEST_F(SchedulerTest, CancelManyCancelsQueuedAndRunningJobsAndSkipsFinishedOnes) {
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "done", "ok");
  ASSERT_TRUE(world_.WaitStatus("done", JobStatus::kSuccess));
  Submit(*scheduler, "a", "block");
  ASSERT_TRUE(world_.WaitStarted("a"));
  Submit(*scheduler, "b", "ok");
  Submit(*scheduler, "c", "ok");
  Submit(*scheduler, "d", "ok");

  auto canceled = scheduler->CancelMany({"b", "a", "d", "done", "unknown"}, "clearing the queue");
  ASSERT_TRUE(canceled.ok()) << canceled.status().ToString();
  std::set<std::string> ids;
  for (const Job& job : *canceled) {
    ids.insert(job.id);
    EXPECT_EQ(job.status, JobStatus::kCanceled) << job.id;
  }
  EXPECT_EQ(ids, (std::set<std::string>{"a", "b", "d"}));
  EXPECT_EQ(Stored("b").status, JobStatus::kCanceled);
  EXPECT_EQ(Stored("b").error, "clearing the queue");
  EXPECT_EQ(Stored("a").status, JobStatus::kCanceled);
  EXPECT_EQ(Stored("done").status, JobStatus::kSuccess);  // finished: untouched
  ASSERT_TRUE(world_.WaitStatus("c", JobStatus::kSuccess));  // the one left runs
  EXPECT_EQ(world_.RunOrder(), (std::vector<std::string>{"done", "a", "c"}));
}

TEST_F(SchedulerTest, CancelOfAnUnknownJobIsNotFoundAndOfAFinishedOneChangesNothing) {
  auto scheduler = MakeScheduler(1);
  EXPECT_EQ(scheduler->Cancel("nope").status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "done", "ok");
  ASSERT_TRUE(world_.WaitStatus("done", JobStatus::kSuccess));
  Job before = Stored("done");
  auto result = scheduler->Cancel("done");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, JobStatus::kSuccess);
  Job after = Stored("done");
  EXPECT_EQ(after.status, JobStatus::kSuccess);
  EXPECT_EQ(after.finished_ms, before.finished_ms);
  EXPECT_EQ(after.error, "");
}

// --- failures and retries ---

TEST_F(SchedulerTest, AnErrorIsFinalWithTheExecutorsMessage) {
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "bad", "fail");
  ASSERT_TRUE(world_.WaitStatus("bad", JobStatus::kError));
  Job stored = Stored("bad");
  EXPECT_EQ(stored.status, JobStatus::kError);
  EXPECT_EQ(stored.error, "the fake generator exited with status 1");
  EXPECT_EQ(stored.attempts, 1);
  EXPECT_EQ(world_.Runs().size(), 1u);
}

TEST_F(SchedulerTest, ARetriedJobRunsAgainAtTheHeadOfItsLaneCountingAttempts) {
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "gate", "block");  // holds the lane until both are queued
  ASSERT_TRUE(world_.WaitStarted("gate"));
  Submit(*scheduler, "flaky", "retry:2");
  Submit(*scheduler, "after", "ok");
  world_.Release("gate");
  ASSERT_TRUE(world_.WaitStatus("after", JobStatus::kSuccess));
  EXPECT_EQ(world_.RunOrder(), (std::vector<std::string>{"gate", "flaky", "flaky", "flaky", "after"}));
  std::vector<int> attempts;
  for (const FakeRun& run : world_.Runs()) {
    if (run.id == "flaky") attempts.push_back(run.attempt);
  }
  EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3}));
  Job stored = Stored("flaky");
  EXPECT_EQ(stored.status, JobStatus::kSuccess);
  EXPECT_EQ(stored.attempts, 3);
}

TEST_F(SchedulerTest, AJobThatKeepsNeedingRetriesFailsAfterMaxAttempts) {
  SchedulerOptions options;
  options.max_attempts = 2;
  auto scheduler = MakeScheduler(1, options);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "doomed", "retry:99");
  ASSERT_TRUE(world_.WaitStatus("doomed", JobStatus::kError));
  Job stored = Stored("doomed");
  EXPECT_EQ(stored.attempts, 2);
  EXPECT_EQ(world_.Runs().size(), 2u);
  EXPECT_NE(stored.error.find("fake worker died on attempt 2"), std::string::npos) << stored.error;
}

// --- start: recovery ---

TEST_F(SchedulerTest, StartRequeuesJobsLeftRunningAndRunsThemFirst) {
  InsertRow("was-running", "block", JobStatus::kRunning, "cpu:0");
  InsertRow("was-queued", "ok", JobStatus::kQueued, "cpu:0");
  auto scheduler = MakeScheduler(1);  // restart_policy: requeue by default
  ASSERT_TRUE(scheduler->Start().ok());
  ASSERT_TRUE(world_.WaitStarted("was-running"));
  std::vector<FakeRun> runs = world_.Runs();
  ASSERT_EQ(runs.size(), 1u);  // it is older (lower seq): first
  EXPECT_EQ(runs[0].attempt, 2);
  EXPECT_EQ(Stored("was-running").progress, 0.0);  // the dead attempt's progress is gone
  world_.Release("was-running");
  ASSERT_TRUE(world_.WaitStatus("was-queued", JobStatus::kSuccess));
  EXPECT_EQ(world_.RunOrder(), (std::vector<std::string>{"was-running", "was-queued"}));
  EXPECT_EQ(Stored("was-running").status, JobStatus::kSuccess);
}

TEST_F(SchedulerTest, StartFailsJobsLeftRunningUnderTheFailPolicy) {
  InsertRow("was-running", "ok", JobStatus::kRunning, "cpu:0");
  InsertRow("was-queued", "ok", JobStatus::kQueued, "cpu:0");
  SchedulerOptions options;
  options.restart_policy = RestartPolicy::kFail;
  auto scheduler = MakeScheduler(1, options);
  ASSERT_TRUE(scheduler->Start().ok());
  Job failed = Stored("was-running");  // decided before Start returned
  EXPECT_EQ(failed.status, JobStatus::kError);
  EXPECT_FALSE(failed.error.empty());
  EXPECT_GT(failed.finished_ms, 0);
  ASSERT_TRUE(world_.WaitStatus("was-queued", JobStatus::kSuccess));
  EXPECT_EQ(world_.RunOrder(), std::vector<std::string>{"was-queued"});
  EXPECT_EQ(Stored("was-running").status, JobStatus::kError);
}

TEST_F(SchedulerTest, StartPlacesQueuedRowsAgainInSeqOrder) {
  // Ids sort the other way round and lanes are missing or gone: only seq decides.
  InsertRow("z-first", "ok", JobStatus::kQueued, "");
  InsertRow("m-second", "ok", JobStatus::kQueued, "cuda:7");
  InsertRow("a-third", "ok", JobStatus::kQueued, "cpu:0");
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  ASSERT_TRUE(world_.WaitStatus("a-third", JobStatus::kSuccess));
  ASSERT_TRUE(world_.WaitStatus("m-second", JobStatus::kSuccess));
  ASSERT_TRUE(world_.WaitStatus("z-first", JobStatus::kSuccess));
  EXPECT_EQ(world_.RunOrder(), (std::vector<std::string>{"z-first", "m-second", "a-third"}));
  EXPECT_EQ(Stored("m-second").lane, "cpu:0");
}

TEST_F(SchedulerTest, StartSpreadsRowsWithoutALaneByBacklog) {
  InsertRow("q1", "block", JobStatus::kQueued, "");
  InsertRow("q2", "block", JobStatus::kQueued, "");
  auto scheduler = MakeScheduler(2);
  ASSERT_TRUE(scheduler->Start().ok());
  ASSERT_TRUE(world_.WaitStarted("q1"));
  ASSERT_TRUE(world_.WaitStarted("q2"));
  EXPECT_EQ(Stored("q1").lane, "cpu:0");
  EXPECT_EQ(Stored("q2").lane, "cpu:1");
}

// Submit places a job at once, whether or not the lanes run yet; Start must not
// place it a second time when it finds the same row queued in the store.
TEST_F(SchedulerTest, StartDoesNotPlaceAgainJobsSubmittedBeforeIt) {
  auto scheduler = MakeScheduler(1);
  Submit(*scheduler, "gate", "block");
  Submit(*scheduler, "a", "ok");
  ASSERT_EQ(scheduler->Lanes()[0].queued, 2);
  ASSERT_TRUE(scheduler->Start().ok());
  ASSERT_TRUE(world_.WaitStarted("gate"));
  // Stop here if they were placed twice: taking a copy would run a job twice.
  ASSERT_EQ(scheduler->Lanes()[0].queued, 1) << "queued jobs were placed again by Start";
  world_.Release("gate");
  ASSERT_TRUE(world_.WaitStatus("a", JobStatus::kSuccess));
  Submit(*scheduler, "b", "ok");
  ASSERT_TRUE(world_.WaitStatus("b", JobStatus::kSuccess));
  EXPECT_EQ(world_.RunOrder(), (std::vector<std::string>{"gate", "a", "b"}));
}

// The lane that is idle when another lane picks up a job with more waiting
// behind it must still take that waiting work (scheduler.h: "one long job never
// holds up a queue that another device could serve"), whichever lane thread
// happened to look first.
TEST_F(SchedulerTest, AnIdleLaneTakesWorkQueuedBehindAJobThatStartsAfterItLooked) {
  InsertRow("long", "block", JobStatus::kQueued, "cpu:0");
  InsertRow("short", "ok", JobStatus::kQueued, "cpu:0");
  auto scheduler = MakeScheduler(2);
  ASSERT_TRUE(scheduler->Start().ok());
  ASSERT_TRUE(world_.WaitStarted("long"));
  ASSERT_TRUE(world_.WaitStatus("short", JobStatus::kSuccess)) << "short waited behind long with cpu:1 idle";
  EXPECT_EQ(Stored("short").lane, "cpu:1");
}

TEST_F(SchedulerTest, StartWithoutLanesIsRefused) {
  Scheduler scheduler(*store_, {}, {}, SchedulerOptions{});
  EXPECT_EQ(scheduler.Start().code(), StatusCode::kInvalid);
}

// --- stop ---

TEST_F(SchedulerTest, StopInterruptsRunningJobsAndLeavesThemQueuedForTheNextStart) {
  {
    auto scheduler = MakeScheduler(1);
    ASSERT_TRUE(scheduler->Start().ok());
    Submit(*scheduler, "a", "block");
    ASSERT_TRUE(world_.WaitStarted("a"));
    Submit(*scheduler, "b", "ok");
    scheduler->Stop();
    EXPECT_TRUE(world_.CancelActionRan("a"));
    EXPECT_TRUE(world_.Returned("a"));
  }
  Job a = Stored("a");
  EXPECT_EQ(a.status, JobStatus::kQueued);  // not failed, not canceled
  EXPECT_EQ(a.attempts, 0);                 // the interrupted start does not count
  EXPECT_EQ(a.started_ms, 0);
  EXPECT_EQ(a.finished_ms, 0);
  EXPECT_EQ(Stored("b").status, JobStatus::kQueued);
  EXPECT_EQ(world_.RunOrder(), std::vector<std::string>{"a"});

  world_.Release("a");
  auto restarted = MakeScheduler(1);
  ASSERT_TRUE(restarted->Start().ok());
  ASSERT_TRUE(world_.WaitStatus("b", JobStatus::kSuccess));
  EXPECT_EQ(world_.RunOrder(), (std::vector<std::string>{"a", "a", "b"}));
  EXPECT_EQ(Stored("a").status, JobStatus::kSuccess);
  EXPECT_EQ(Stored("a").attempts, 1);
}

// Stop's contract does not depend on how an executor reports being interrupted:
// one that reports the kill as an error (as Cancel already tolerates) is still
// put back in the queue, not failed.
TEST_F(SchedulerTest, StopRequeuesAJobWhoseExecutorReportsTheInterruptionAsAnError) {
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "a", "block-error-on-cancel");
  ASSERT_TRUE(world_.WaitStarted("a"));
  scheduler->Stop();
  Job a = Stored("a");
  EXPECT_EQ(a.status, JobStatus::kQueued) << "error: " << a.error;
  EXPECT_EQ(a.attempts, 0);
}

// --- listeners ---

TEST_F(SchedulerTest, ListenersSeeQueuedRunningProgressAndFinishedViews) {
  auto scheduler = MakeScheduler(1);
  ASSERT_TRUE(scheduler->Start().ok());
  Submit(*scheduler, "first", "block");
  ASSERT_TRUE(world_.WaitStarted("first"));
  Submit(*scheduler, "j", "block");  // waits behind first

  std::vector<JobView> views = world_.ViewsOf("j");
  ASSERT_EQ(views.size(), 1u);  // told before Submit returned
  EXPECT_EQ(views[0].job.status, JobStatus::kQueued);
  EXPECT_EQ(views[0].queue_position, 2);
  EXPECT_TRUE(views[0].eta_seconds.has_value());

  world_.Release("first");
  ASSERT_TRUE(world_.WaitStatus("j", JobStatus::kRunning));
  world_.SendProgress("j", {0.5, 0, 0, false});
  ASSERT_TRUE(world_.WaitUntil([&] {
    return std::any_of(world_.views.begin(), world_.views.end(),
                       [](const JobView& v) { return v.job.id == "j" && v.job.progress == 0.5; });
  }));
  world_.Release("j");
  ASSERT_TRUE(world_.WaitStatus("j", JobStatus::kSuccess));

  views = world_.ViewsOf("j");
  std::vector<JobStatus> statuses;
  for (const auto& v : views) {
    if (statuses.empty() || statuses.back() != v.job.status) statuses.push_back(v.job.status);
  }
  EXPECT_EQ(statuses, (std::vector<JobStatus>{JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSuccess}));
  EXPECT_EQ(views.back().eta_seconds, std::nullopt);
  EXPECT_EQ(views.back().job.progress, 1.0);
  EXPECT_EQ(Stored("j").progress, 1.0);
}

TEST_F(SchedulerTest, ACanceledQueuedJobIsAnnouncedToListeners) {
  auto scheduler = MakeScheduler(1);
  Submit(*scheduler, "j", "ok");
  ASSERT_TRUE(scheduler->Cancel("j").ok());
  std::vector<JobView> views = world_.ViewsOf("j");
  ASSERT_FALSE(views.empty());
  EXPECT_EQ(views.back().job.status, JobStatus::kCanceled);
}

// --- Store writes and the scheduler's lock ---

// A JobStore in front of another whose Insert, and Update of a finished job,
// wait at a gate the test opens: a store write that takes long (an fsync, a
// database across the network).
class GatedStore : public store::JobStore {
 public:
  explicit GatedStore(store::JobStore& inner) : inner_(inner) {}

  void Close() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }
  bool WaitSomeoneWaiting() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return waiting_ > 0; });
  }

  Result<int64_t> Insert(const Job& job) override {
    Gate();
    return inner_.Insert(job);
  }
  Status Update(const Job& job) override {
    if (store::IsFinished(job.status)) Gate();
    return inner_.Update(job);
  }
  Result<Job> Get(const std::string& id) override { return inner_.Get(id); }
  Status UpdateAll(const std::vector<Job>& jobs) override { return inner_.UpdateAll(jobs); }
  Status UpdateProgress(const std::string& id, double progress) override { return inner_.UpdateProgress(id, progress); }
  Result<std::vector<Job>> List(const store::JobFilter& filter) override { return inner_.List(filter); }
  Result<int64_t> Delete(const std::vector<std::string>& ids) override { return inner_.Delete(ids); }
  Result<std::map<JobStatus, int64_t>> CountByStatus() override { return inner_.CountByStatus(); }
  Result<std::vector<double>> RecentDurations(const std::string& lane, JobKind kind, int limit) override {
    return inner_.RecentDurations(lane, kind, limit);
  }
  Result<int64_t> AddWebhook(const store::WebhookRegistration& registration) override {
    return inner_.AddWebhook(registration);
  }
  Result<std::vector<store::WebhookRegistration>> WebhooksFor(const std::string& job_id) override {
    return inner_.WebhooksFor(job_id);
  }
  Status AddWebhookAttempt(const store::WebhookAttemptRecord& attempt) override {
    return inner_.AddWebhookAttempt(attempt);
  }
  Result<std::vector<store::WebhookAttemptRecord>> WebhookAttempts(const std::string& job_id, int64_t limit) override {
    return inner_.WebhookAttempts(job_id, limit);
  }

 private:
  void Gate() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    --waiting_;
  }

  store::JobStore& inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
  int waiting_ = 0;
};

// What a status read needs from the scheduler answers while a store write
// waits: the write never holds the scheduler's lock.
TEST_F(SchedulerTest, StatusReadsAnswerWhileASubmitOrAFinishWaitsOnTheStore) {
  GatedStore gated(*store_);
  ExecutorFactory factory = [this](const LaneSpec&) { return std::make_unique<FakeExecutor>(world_); };
  Scheduler scheduler(gated, CpuLanes(1), {{JobKind::kGenerate, factory}}, {});
  scheduler.AddListener([this](const JobView& view) { world_.Change([&] { world_.views.push_back(view); }); });
  ASSERT_TRUE(scheduler.Start().ok());
  auto running = scheduler.Submit(NewJob("running", "block"));
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  ASSERT_TRUE(world_.WaitStarted("running"));
  // Each read must answer while the write waits. One that does not is a failure,
  // and the gate then opens so that the test ends instead of hanging.
  auto answers_soon = [&](const char* what) {
    auto lanes = std::async(std::launch::async, [&] { return scheduler.Lanes(); });
    bool lanes_ready = lanes.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
    EXPECT_TRUE(lanes_ready) << "Lanes() waited " << what;
    if (!lanes_ready) gated.Open();
    auto snapshot = lanes.get();
    EXPECT_EQ(snapshot.size(), 1u);
    if (!snapshot.empty()) {
      EXPECT_EQ(snapshot[0].running_id, "running") << what;
    }
    auto held = std::async(std::launch::async, [&] { return scheduler.DescribeHeld("running"); });
    bool held_ready = held.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
    EXPECT_TRUE(held_ready) << "DescribeHeld() waited " << what;
    if (!held_ready) gated.Open();
    held.get();
  };

  // A submission waiting on its insert.
  gated.Close();
  std::thread submitter([&] { EXPECT_TRUE(scheduler.Submit(NewJob("queued", "ok")).ok()); });
  ASSERT_TRUE(gated.WaitSomeoneWaiting());
  answers_soon("while a submission's insert waits");
  gated.Open();
  submitter.join();

  // A lane saving its job's result.
  gated.Close();
  world_.Release("running");
  ASSERT_TRUE(gated.WaitSomeoneWaiting());
  answers_soon("while a finished job's save waits");
  gated.Open();
  EXPECT_TRUE(world_.WaitStatus("queued", JobStatus::kSuccess));
  EXPECT_EQ(Stored("running").status, JobStatus::kSuccess);
  scheduler.Stop();
}

}  // namespace
}  // namespace tessera::jobs
