// The PostgreSQL store as the ClusterStore (cluster_store.h): claims that never
// hand one job to two lanes, fenced writes, node leases by the database's clock,
// and sessions that hear queued jobs and control messages across connections
// and survive losing theirs. Each test has a database of its own: channels and
// advisory locks are per database, and parallel tests must not share them.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "pg_test_cluster.h"
#include "store/postgres_job_store.h"

namespace tessera::store::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How long a test waits for something that should happen at once.
constexpr auto kBound = 10s;

Job Queued(const std::string& id, JobKind kind = JobKind::kGenerate) {
  Job job;
  job.id = id;
  job.kind = kind;
  job.created_ms = 1'700'000'000'000;
  return job;
}

// What src/jobs/job_state does when a lane starts a job, enough for the store.
std::function<Status(Job&)> StartOn(const std::string& node) {
  return [node](Job& job) {
    job.status = JobStatus::kRunning;
    job.node = node;
    job.lane = "cuda:0";
    job.gpu_id = 0;
    job.attempts += 1;
    job.started_ms = 1'700'000'001'000;
    return Status::Ok();
  };
}

int CountOn(const std::vector<Notification>& notifications, const std::string& channel) {
  return static_cast<int>(std::count_if(notifications.begin(), notifications.end(),
                                        [&](const Notification& n) { return n.channel == channel; }));
}

class PostgresClusterStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto database = PgTestSchema::CreateDatabase();
    if (!database.ok() && database.status().code() == StatusCode::kUnsupported) {
      GTEST_SKIP() << database.status().message();
    }
    ASSERT_TRUE(database.ok()) << database.status().ToString();
    database_ = std::move(database).value();
    auto store = PostgresJobStore::Open(database_->url());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  std::string Query(const std::string& sql, const pg::PgParams& params = {}) {
    auto result = database_->raw().Exec("test query", sql, params);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() && result->rows() > 0 ? result->Text(0, 0) : "";
  }
  // The database's clock, in epoch milliseconds.
  int64_t DatabaseNowMs() { return std::stoll(Query("SELECT floor(extract(epoch FROM now()) * 1000)::bigint")); }

  int64_t Insert(const Job& job) {
    auto seq = store_->Insert(job);
    EXPECT_TRUE(seq.ok()) << seq.status().ToString();
    return seq.ok() ? *seq : 0;
  }

  // Claims one job for `node`; the job, or a failure recorded and nullopt.
  std::optional<Job> ClaimFor(const std::string& node, const std::vector<JobKind>& kinds) {
    auto claimed = store_->Claim({node, kinds}, StartOn(node));
    EXPECT_TRUE(claimed.ok()) << claimed.status().ToString();
    return claimed.ok() ? *claimed : std::nullopt;
  }

  std::unique_ptr<ClusterSession> OpenSession(const std::vector<std::string>& channels) {
    auto session = store_->OpenSession(channels);
    EXPECT_TRUE(session.ok()) << session.status().ToString();
    return session.ok() ? std::move(session).value() : nullptr;
  }

  // What `session` hears until a notification on `channel` with `payload`
  // (included) arrives; a failure when none does within kBound.
  std::vector<Notification> HearUntil(ClusterSession& session, const std::string& channel, const std::string& payload) {
    std::vector<Notification> heard;
    const Clock::time_point deadline = Clock::now() + kBound;
    while (Clock::now() < deadline) {
      auto received = session.Wait(200ms);
      if (!received.ok()) {
        ADD_FAILURE() << received.status().ToString();
        return heard;
      }
      for (const Notification& notification : *received) {
        heard.push_back(notification);
        if (notification.channel == channel && notification.payload == payload) return heard;
      }
    }
    ADD_FAILURE() << "no notification on " << channel << " with payload '" << payload << "' within 10 s";
    return heard;
  }

  // Sends a marker on the control channel and returns what `session` heard up
  // to it: notifications are delivered in commit order, so whatever an earlier
  // commit sent is among them, with no sleep to guess how long to listen.
  std::vector<Notification> HearUpToAMarker(ClusterSession& session, const std::string& marker) {
    EXPECT_TRUE(store_->Notify(kControlChannel, marker).ok());
    return HearUntil(session, kControlChannel, marker);
  }

  bool HoldsReaperLock(ClusterSession& session) {
    auto held = session.HoldReaperLock();
    EXPECT_TRUE(held.ok()) << held.status().ToString();
    return held.ok() && *held;
  }

  // Calls `condition` until it is true, at most kBound.
  template <typename Condition>
  bool Eventually(Condition condition) {
    const Clock::time_point deadline = Clock::now() + kBound;
    while (Clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(20ms);  // between polls of the condition, not a guess
    }
    return condition();
  }

  // Declared first: destroyed last, after the store that uses its database.
  std::unique_ptr<PgTestSchema> database_;
  std::unique_ptr<PostgresJobStore> store_;
};

// --- Claim -----------------------------------------------------------------------

TEST_F(PostgresClusterStoreTest, FourClaimersDrainFourHundredJobsEachOnceByKindAndInSeqOrder) {
  constexpr int kJobs = 400;
  std::map<std::string, JobKind> kind_of;
  for (int i = 0; i < kJobs; ++i) {
    const std::string id = "job-" + std::to_string(i);
    kind_of[id] = i % 3 == 0 ? JobKind::kUpscale : JobKind::kGenerate;
    Insert(Queued(id, kind_of[id]));
  }
  struct Claimer {
    std::string node;
    std::vector<JobKind> kinds;
    std::vector<Job> claimed;
    Status status;
  };
  std::vector<Claimer> claimers = {{"gen-1", {JobKind::kGenerate}, {}, Status::Ok()},
                                   {"gen-2", {JobKind::kGenerate}, {}, Status::Ok()},
                                   {"up", {JobKind::kUpscale}, {}, Status::Ok()},
                                   {"both", {JobKind::kUpscale, JobKind::kGenerate}, {}, Status::Ok()}};
  std::vector<std::thread> threads;
  for (Claimer& claimer : claimers) {
    threads.emplace_back([this, &claimer] {
      // Until nothing of its kinds is queued (or held by another claim, which
      // will take it).
      while (true) {
        auto claimed = store_->Claim({claimer.node, claimer.kinds}, StartOn(claimer.node));
        if (!claimed.ok()) {
          claimer.status = claimed.status();
          return;
        }
        if (!*claimed) return;
        claimer.claimed.push_back(**claimed);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::set<std::string> seen;
  size_t total = 0;
  for (const Claimer& claimer : claimers) {
    ASSERT_TRUE(claimer.status.ok()) << claimer.node << ": " << claimer.status.ToString();
    int64_t previous_seq = 0;
    for (const Job& job : claimer.claimed) {
      EXPECT_TRUE(seen.insert(job.id).second) << job.id << " claimed twice";
      EXPECT_NE(std::find(claimer.kinds.begin(), claimer.kinds.end(), job.kind), claimer.kinds.end())
          << claimer.node << " got " << job.id << " of a kind it cannot run";
      EXPECT_EQ(job.kind, kind_of[job.id]);
      EXPECT_GT(job.seq, previous_seq) << claimer.node << " claimed " << job.id << " out of seq order";
      previous_seq = job.seq;
      EXPECT_EQ(job.status, JobStatus::kRunning);
      EXPECT_EQ(job.node, claimer.node);
    }
    total += claimer.claimed.size();
  }
  EXPECT_EQ(total, static_cast<size_t>(kJobs));
  EXPECT_EQ(seen.size(), static_cast<size_t>(kJobs));
  // What the claims wrote is in the table: every job running once, where its claimer said.
  EXPECT_EQ(Query("SELECT count(*) FROM jobs WHERE status = 'running' AND attempts = 1 AND node <> ''"),
            std::to_string(kJobs));
  for (const Claimer& claimer : claimers) {
    auto running = store_->RunningOn(claimer.node);
    ASSERT_TRUE(running.ok()) << running.status().ToString();
    EXPECT_EQ(running->size(), claimer.claimed.size()) << claimer.node;
  }
}

TEST_F(PostgresClusterStoreTest, AClaimTakesTheOldestQueuedJobOfItsKindsAndNothingWhenNoneIsQueued) {
  Job running = Queued("running");
  running.status = JobStatus::kRunning;
  Insert(running);
  Insert(Queued("upscale", JobKind::kUpscale));
  Insert(Queued("generate-1"));
  Insert(Queued("generate-2"));

  std::optional<Job> first = ClaimFor("node-a", {JobKind::kGenerate});
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->id, "generate-1");
  EXPECT_EQ(first->attempts, 1);
  auto stored = store_->Get("generate-1");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->status, JobStatus::kRunning);
  EXPECT_EQ(stored->node, "node-a");
  EXPECT_EQ(stored->lane, "cuda:0");
  EXPECT_EQ(stored->attempts, 1);

  EXPECT_EQ(ClaimFor("node-a", {JobKind::kGenerate})->id, "generate-2");
  EXPECT_FALSE(ClaimFor("node-a", {JobKind::kGenerate}).has_value());
  EXPECT_FALSE(ClaimFor("node-a", {}).has_value());
  EXPECT_EQ(ClaimFor("node-b", {JobKind::kGenerate, JobKind::kUpscale})->id, "upscale");
}

TEST_F(PostgresClusterStoreTest, AFailingStartRollsTheClaimBack) {
  Insert(Queued("job"));
  auto claimed = store_->Claim({"node-a", {JobKind::kGenerate}}, [](Job& job) {
    job.status = JobStatus::kRunning;
    job.node = "node-a";
    job.attempts += 1;
    return InvalidError("no lane free for job " + job.id);
  });
  ASSERT_FALSE(claimed.ok());
  EXPECT_EQ(claimed.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(claimed.status().message(), "no lane free for job job");
  auto stored = store_->Get("job");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->status, JobStatus::kQueued);
  EXPECT_EQ(stored->attempts, 0);
  EXPECT_EQ(stored->node, "");
  // Nor left locked: the next claim takes it.
  std::optional<Job> again = ClaimFor("node-b", {JobKind::kGenerate});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id, "job");
  EXPECT_EQ(again->attempts, 1);
}

// --- Fenced writes -------------------------------------------------------------------

TEST_F(PostgresClusterStoreTest, ALateNodesWritesMatchNothingOnceItsJobWasClaimedAgainElsewhere) {
  Insert(Queued("job"));
  std::optional<Job> claimed = ClaimFor("node-a", {JobKind::kGenerate});
  ASSERT_TRUE(claimed.has_value());
  const Fence fence_a{"node-a", claimed->attempts};
  ASSERT_TRUE(store_->UpdateProgressFenced("job", fence_a, 0.25).ok());
  EXPECT_EQ(store_->Get("job")->progress, 0.25);

  // The reaper takes it back (node-a presumed dead) and node-b claims it.
  Job requeued = *claimed;
  requeued.status = JobStatus::kQueued;
  requeued.node = "";
  requeued.progress = 0;
  ASSERT_TRUE(store_->Update(requeued).ok());
  std::optional<Job> again = ClaimFor("node-b", {JobKind::kGenerate});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->attempts, 2);

  Job finished = *claimed;
  finished.status = JobStatus::kSuccess;
  finished.progress = 1.0;
  Status late = store_->UpdateFenced(finished, fence_a);
  EXPECT_EQ(late.code(), StatusCode::kConflict) << late.ToString();
  EXPECT_NE(late.message().find("job job"), std::string::npos) << late.message();
  EXPECT_NE(late.message().find("node-a"), std::string::npos) << late.message();
  EXPECT_NE(late.message().find("node-b"), std::string::npos) << late.message();
  Status late_progress = store_->UpdateProgressFenced("job", fence_a, 0.9);
  EXPECT_EQ(late_progress.code(), StatusCode::kConflict) << late_progress.ToString();

  auto stored = store_->Get("job");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->status, JobStatus::kRunning);
  EXPECT_EQ(stored->node, "node-b");
  EXPECT_EQ(stored->attempts, 2);
  EXPECT_EQ(stored->progress, 0.0);
  // node-b's fence holds.
  EXPECT_TRUE(store_->UpdateProgressFenced("job", {"node-b", 2}, 0.5).ok());
  EXPECT_EQ(store_->Get("job")->progress, 0.5);
}

TEST_F(PostgresClusterStoreTest, AJobRequeuedBehindTheNodesBackRefusesItsWritesAndAGoneJobIsNotFound) {
  Insert(Queued("job"));
  Insert(Queued("gone"));
  std::optional<Job> job = ClaimFor("node-a", {JobKind::kGenerate});
  std::optional<Job> gone = ClaimFor("node-a", {JobKind::kGenerate});
  ASSERT_TRUE(job.has_value() && gone.has_value());
  const Fence fence{"node-a", 1};

  // Same node, same attempt: only the status moved.
  Query("UPDATE jobs SET status = 'queued' WHERE id = 'job'");
  Job finished = *job;
  finished.status = JobStatus::kSuccess;
  EXPECT_EQ(store_->UpdateFenced(finished, fence).code(), StatusCode::kConflict);
  EXPECT_EQ(store_->UpdateProgressFenced("job", fence, 0.5).code(), StatusCode::kConflict);
  EXPECT_EQ(Query("SELECT status || ' ' || progress FROM jobs WHERE id = 'job'"), "queued 0");

  ASSERT_EQ(*store_->Delete({"gone"}), 1);
  Status status = store_->UpdateFenced(*gone, fence);
  EXPECT_EQ(status.code(), StatusCode::kNotFound) << status.ToString();
  EXPECT_NE(status.message().find("gone"), std::string::npos) << status.message();
  EXPECT_EQ(store_->UpdateProgressFenced("gone", fence, 0.5).code(), StatusCode::kNotFound);
}

TEST_F(PostgresClusterStoreTest, AnAttemptRefundIsWrittenWhileTheFenceHoldsAndEndsIt) {
  Insert(Queued("job"));
  std::optional<Job> claimed = ClaimFor("node-a", {JobKind::kGenerate});
  ASSERT_TRUE(claimed.has_value());
  const Fence fence{"node-a", claimed->attempts};
  // Still running, at the fence's attempt: every field is written.
  Job progressed = *claimed;
  progressed.progress = 0.5;
  progressed.error = "slow";
  ASSERT_TRUE(store_->UpdateFenced(progressed, fence).ok());
  EXPECT_EQ(store_->Get("job")->error, "slow");

  // Requeued without counting the attempt (the lane, not the job, failed).
  Job refunded = *claimed;
  refunded.status = JobStatus::kQueued;
  refunded.attempts = fence.attempt - 1;
  refunded.node = "";
  Status status = store_->UpdateFenced(refunded, fence);
  ASSERT_TRUE(status.ok()) << status.ToString();
  auto stored = store_->Get("job");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->status, JobStatus::kQueued);
  EXPECT_EQ(stored->attempts, 0);
  // The job left the fence: a second write under it matches nothing.
  EXPECT_EQ(store_->UpdateFenced(progressed, fence).code(), StatusCode::kConflict);
}

// --- Nodes -----------------------------------------------------------------------

TEST_F(PostgresClusterStoreTest, ARegistrationIsWrittenWithTheDatabasesClockAndReadsBack) {
  NodeRecord node;
  node.node_id = "gpu-a";
  node.advertise_url = "http://gpu-a:8080";
  node.lanes = {"gpu-a/cuda:0", "gpu-a/cpu:0", "odd, \"quoted\" {lane} NULL", ""};
  const int64_t before_ms = DatabaseNowMs();
  auto registered = store_->RegisterNode(node, 30s);
  ASSERT_TRUE(registered.ok()) << registered.status().ToString();
  EXPECT_EQ(registered->node_id, "gpu-a");
  EXPECT_EQ(registered->advertise_url, "http://gpu-a:8080");
  EXPECT_EQ(registered->lanes, node.lanes);
  EXPECT_GT(registered->incarnation, 0);
  EXPECT_TRUE(registered->alive);
  EXPECT_GE(registered->started_ms, before_ms);
  EXPECT_LE(registered->started_ms, DatabaseNowMs());
  EXPECT_EQ(registered->lease_expires_ms - registered->started_ms, 30'000);

  auto listed = store_->ListNodes();
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].lanes, node.lanes);
  EXPECT_EQ((*listed)[0].incarnation, registered->incarnation);
  EXPECT_EQ((*listed)[0].lease_expires_ms, registered->lease_expires_ms);

  EXPECT_EQ(store_->RegisterNode(NodeRecord{}, 30s).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(store_->RegisterNode(node, 0ms).status().code(), StatusCode::kInvalid);
}

TEST_F(PostgresClusterStoreTest, RegisteringAgainMakesANewIncarnationAndTheOldOneCannotRenew) {
  NodeRecord node;
  node.node_id = "gpu-a";
  auto first = store_->RegisterNode(node, 30s);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  node.advertise_url = "http://gpu-a:9090";
  auto second = store_->RegisterNode(node, 30s);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_GT(second->incarnation, first->incarnation);

  Status stale = store_->RenewLease("gpu-a", first->incarnation, 30s);
  EXPECT_EQ(stale.code(), StatusCode::kConflict) << stale.ToString();
  EXPECT_NE(stale.message().find("gpu-a"), std::string::npos) << stale.message();
  EXPECT_TRUE(store_->RenewLease("gpu-a", second->incarnation, 30s).ok());
  // A stale incarnation's clean stop leaves the new one alone.
  EXPECT_TRUE(store_->RetireNode("gpu-a", first->incarnation).ok());

  auto listed = store_->ListNodes();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].incarnation, second->incarnation);
  EXPECT_EQ((*listed)[0].advertise_url, "http://gpu-a:9090");
  EXPECT_TRUE((*listed)[0].alive);

  ASSERT_TRUE(store_->RetireNode("gpu-a", second->incarnation).ok());
  EXPECT_EQ(store_->RenewLease("gpu-a", second->incarnation, 30s).code(), StatusCode::kConflict);
  EXPECT_FALSE(store_->ListNodes()->front().alive);
}

TEST_F(PostgresClusterStoreTest, ALeaseNotRenewedIsReapedByTheDatabasesClock) {
  auto late = store_->RegisterNode({"late", "", {}, 0, 0, 0, true}, 200ms);
  auto live = store_->RegisterNode({"live", "", {}, 0, 0, 0, true}, 600s);
  ASSERT_TRUE(late.ok() && live.ok());

  std::vector<NodeRecord> reaped;
  ASSERT_TRUE(Eventually([&] {
    auto result = store_->ReapExpiredNodes();
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (result.ok()) reaped = *result;
    return !reaped.empty();
  })) << "the 200 ms lease was not reaped within 10 s";
  ASSERT_EQ(reaped.size(), 1u);
  EXPECT_EQ(reaped[0].node_id, "late");
  EXPECT_FALSE(reaped[0].alive);
  EXPECT_GE(DatabaseNowMs(), late->lease_expires_ms);
  // Reaped once: the next pass does not return it again.
  EXPECT_TRUE(store_->ReapExpiredNodes()->empty());
  EXPECT_EQ(store_->RenewLease("late", late->incarnation, 30s).code(), StatusCode::kConflict);

  auto listed = store_->ListNodes();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].node_id, "live");  // alive first
  EXPECT_TRUE((*listed)[0].alive);
  EXPECT_EQ((*listed)[1].node_id, "late");
  EXPECT_FALSE((*listed)[1].alive);
}

TEST_F(PostgresClusterStoreTest, ExtendingLeasesSavesAnExpiredButAliveNodeAndKeepsLongerLeases) {
  auto expired = store_->RegisterNode({"expired", "", {}, 0, 0, 0, true}, 200ms);
  auto long_lease = store_->RegisterNode({"long", "", {}, 0, 0, 0, true}, 600s);
  ASSERT_TRUE(expired.ok() && long_lease.ok());
  ASSERT_TRUE(Eventually([&] { return DatabaseNowMs() > expired->lease_expires_ms; }));

  ASSERT_TRUE(store_->ExtendLeases(60s).ok());
  auto reaped = store_->ReapExpiredNodes();
  ASSERT_TRUE(reaped.ok());
  EXPECT_TRUE(reaped->empty());
  auto listed = store_->ListNodes();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].node_id, "expired");
  EXPECT_TRUE((*listed)[0].alive);
  EXPECT_GE((*listed)[0].lease_expires_ms, expired->lease_expires_ms + 59'000);
  EXPECT_EQ((*listed)[1].lease_expires_ms, long_lease->lease_expires_ms);
}

TEST_F(PostgresClusterStoreTest, RunningOnListsANodesRunningJobsInSeqOrder) {
  for (std::string id : {"a-1", "b-1", "a-2", "a-done", "queued"}) {
    Job job = Queued(id);
    if (id != "queued") {
      job.status = id == "a-done" ? JobStatus::kSuccess : JobStatus::kRunning;
      job.node = id.substr(0, 1) == "a" ? "node-a" : "node-b";
    }
    Insert(job);
  }
  auto running = store_->RunningOn("node-a");
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  ASSERT_EQ(running->size(), 2u);
  EXPECT_EQ((*running)[0].id, "a-1");
  EXPECT_EQ((*running)[1].id, "a-2");
  EXPECT_TRUE(store_->RunningOn("node-c")->empty());
}

TEST_F(PostgresClusterStoreTest, QueuedBeforeCountsOnlyQueuedJobsWithASmallerSeq) {
  std::map<std::string, int64_t> seq;
  for (std::string id : {"q1", "running", "q2", "done", "q3"}) {
    Job job = Queued(id);
    if (id == "running") job.status = JobStatus::kRunning;
    if (id == "done") job.status = JobStatus::kSuccess;
    seq[id] = Insert(job);
  }
  EXPECT_EQ(*store_->QueuedBefore(seq["q1"]), 0);
  EXPECT_EQ(*store_->QueuedBefore(seq["q2"]), 1);
  EXPECT_EQ(*store_->QueuedBefore(seq["q3"]), 2);
  EXPECT_EQ(*store_->QueuedBefore(seq["q3"] + 1), 3);
}

// --- Sessions ------------------------------------------------------------------------

TEST_F(PostgresClusterStoreTest, ASessionHearsJobsBecomingQueuedButNotOtherWrites) {
  auto session = OpenSession({kJobsChannel, kControlChannel});
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->connections(), 1);

  Insert(Queued("job"));
  std::vector<Notification> heard = HearUntil(*session, kJobsChannel, "queued");
  EXPECT_EQ(CountOn(heard, kJobsChannel), 1);

  // A job inserted running, a progress update, a queued job written again
  // (still queued) and a claim: nothing new to claim, nothing said.
  Job running = Queued("running");
  running.status = JobStatus::kRunning;
  Insert(running);
  ASSERT_TRUE(store_->UpdateProgress("job", 0.5).ok());
  Job same = *store_->Get("job");
  same.prompt = "edited";
  ASSERT_TRUE(store_->Update(same).ok());
  std::optional<Job> claimed = ClaimFor("node-a", {JobKind::kGenerate});
  ASSERT_TRUE(claimed.has_value());
  heard = HearUpToAMarker(*session, "marker 1");
  EXPECT_EQ(CountOn(heard, kJobsChannel), 0);

  // Requeued: heard.
  claimed->status = JobStatus::kQueued;
  ASSERT_TRUE(store_->Update(*claimed).ok());
  heard = HearUntil(*session, kJobsChannel, "queued");
  EXPECT_EQ(CountOn(heard, kJobsChannel), 1);

  // 300 jobs queued in one transaction: one notification.
  Query("INSERT INTO jobs(id, kind, status) SELECT 'batch-' || g, 'generate', 'queued' FROM generate_series(1, 300) g");
  heard = HearUpToAMarker(*session, "marker 2");
  EXPECT_EQ(CountOn(heard, kJobsChannel), 1);

  ASSERT_TRUE(store_->Notify(kControlChannel, "cancel job").ok());
  heard = HearUntil(*session, kControlChannel, "cancel job");
  ASSERT_FALSE(heard.empty());
  EXPECT_EQ(heard.back().channel, kControlChannel);
  EXPECT_EQ(heard.back().payload, "cancel job");
  EXPECT_EQ(session->connections(), 1);
}

TEST_F(PostgresClusterStoreTest, ASessionOnlyHearsItsOwnChannels) {
  auto control_only = OpenSession({kControlChannel});
  ASSERT_NE(control_only, nullptr);
  Insert(Queued("job"));
  std::vector<Notification> heard = HearUpToAMarker(*control_only, "marker");
  EXPECT_EQ(CountOn(heard, kJobsChannel), 0);
  EXPECT_EQ(CountOn(heard, kControlChannel), 1);
}

TEST_F(PostgresClusterStoreTest, ASessionWhoseBackendWasTerminatedReconnectsAndHearsAgain) {
  auto session = OpenSession({kJobsChannel, kControlChannel});
  ASSERT_NE(session, nullptr);
  // The session's backend: this database's connections carry its name as
  // application_name; the session's last statement was its LISTEN.
  EXPECT_EQ(Query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE application_name = $1 AND query LIKE 'LISTEN %'",
                  pg::PgParams().Text(database_->name())),
            "1");

  ASSERT_TRUE(Eventually([&] {
    auto received = session->Wait(100ms);
    EXPECT_TRUE(received.ok()) << received.status().ToString();
    return session->connections() == 2;
  })) << "the session did not reconnect within 10 s";

  Insert(Queued("job"));
  std::vector<Notification> heard = HearUntil(*session, kJobsChannel, "queued");
  EXPECT_EQ(CountOn(heard, kJobsChannel), 1);
  HearUpToAMarker(*session, "after the reconnect");
  EXPECT_EQ(session->connections(), 2);
}

TEST_F(PostgresClusterStoreTest, ASessionThatCannotReconnectSaysSoAndReconnectsOnALaterWait) {
  auto session = OpenSession({kJobsChannel});
  ASSERT_NE(session, nullptr);
  ASSERT_EQ(*session->HoldReaperLock(), true);
  // The database refuses new connections (as during a restart), then the
  // session's backend goes. (Only another database's connection may say so.)
  auto admin = PgTestAdminConnection();
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  auto allow_connections = [&](bool allow) {
    Status altered =
        (*admin)->ExecScript("allow connections", "ALTER DATABASE " + database_->name() + " WITH ALLOW_CONNECTIONS " +
                                                      (allow ? "true" : "false"));
    ASSERT_TRUE(altered.ok()) << altered.ToString();
  };
  allow_connections(false);
  EXPECT_EQ(Query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE application_name = $1 AND query LIKE 'SELECT pg_try_advisory_lock%'",
                  pg::PgParams().Text(database_->name())),
            "1");
  Status failed = Status::Ok();
  EXPECT_TRUE(Eventually([&] {
    auto received = session->Wait(100ms);
    if (!received.ok()) failed = received.status();
    return !received.ok();
  }));
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable) << failed.ToString();
  EXPECT_EQ(session->HoldReaperLock().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(session->connections(), 1);

  allow_connections(true);
  auto received = session->Wait(100ms);
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  EXPECT_EQ(session->connections(), 2);
  EXPECT_EQ(*session->HoldReaperLock(), true);
  Insert(Queued("job"));
  EXPECT_EQ(CountOn(HearUntil(*session, kJobsChannel, "queued"), kJobsChannel), 1);
}

TEST_F(PostgresClusterStoreTest, OneSessionHoldsTheReaperLockAndAnotherTakesItWhenItGoes) {
  auto first = OpenSession({});
  auto second = OpenSession({});
  ASSERT_TRUE(first != nullptr && second != nullptr);
  ASSERT_EQ(*first->HoldReaperLock(), true);
  EXPECT_EQ(*first->HoldReaperLock(), true);
  EXPECT_EQ(*second->HoldReaperLock(), false);

  first.reset();  // its connection ends, and the lock with it
  EXPECT_TRUE(Eventually([&] { return HoldsReaperLock(*second); }));
  auto third = OpenSession({});
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(*third->HoldReaperLock(), false);
  // Given back after a pass, it is free for the next session at once.
  ASSERT_TRUE(second->ReleaseReaperLock().ok());
  EXPECT_EQ(*third->HoldReaperLock(), true);
  EXPECT_EQ(*second->HoldReaperLock(), false);
}

TEST_F(PostgresClusterStoreTest, ASessionThatLostItsConnectionNoLongerHoldsTheReaperLock) {
  auto first = OpenSession({kControlChannel});
  ASSERT_NE(first, nullptr);
  ASSERT_EQ(*first->HoldReaperLock(), true);
  EXPECT_EQ(Query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE application_name = $1 AND query LIKE 'SELECT pg_try_advisory_lock%'",
                  pg::PgParams().Text(database_->name())),
            "1");
  // Another server takes the lock the dead backend released...
  auto second = OpenSession({});
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(Eventually([&] { return HoldsReaperLock(*second); }));
  // ...and the first, reconnected, knows it no longer holds it.
  ASSERT_TRUE(Eventually([&] {
    auto received = first->Wait(100ms);
    EXPECT_TRUE(received.ok()) << received.status().ToString();
    return first->connections() == 2;
  }));
  EXPECT_EQ(*first->HoldReaperLock(), false);
}

// --- Job events ----------------------------------------------------------------------

// The feed's event ids and job ids, in order.
std::vector<std::pair<int64_t, std::string>> EventsOf(const std::vector<std::pair<int64_t, Job>>& events) {
  std::vector<std::pair<int64_t, std::string>> out;
  for (const auto& [id, job] : events) out.emplace_back(id, job.id);
  return out;
}

TEST_F(PostgresClusterStoreTest, EveryWriteOfAJobIsAnEventInOrderCarryingTheJobAsItIsNow) {
  auto none = store_->LatestJobEventId();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, 0);

  Insert(Queued("job"));
  ASSERT_TRUE(store_->UpdateProgress("job", 0.5).ok());
  Job finished = *store_->Get("job");
  finished.status = JobStatus::kSuccess;
  ASSERT_TRUE(store_->Update(finished).ok());

  auto events = store_->JobEventsAfter(0, 100);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 3u);  // the insert, the progress, the status
  EXPECT_LT((*events)[0].first, (*events)[1].first);
  EXPECT_LT((*events)[1].first, (*events)[2].first);
  for (const auto& [id, job] : *events) {
    EXPECT_EQ(job.id, "job");
    EXPECT_EQ(job.status, JobStatus::kSuccess);  // the row as it is now
    EXPECT_DOUBLE_EQ(job.progress, 0.5);
  }
  EXPECT_EQ(*store_->LatestJobEventId(), (*events)[2].first);

  // After an id, and at most a limit.
  auto after_first = store_->JobEventsAfter((*events)[0].first, 100);
  ASSERT_TRUE(after_first.ok());
  EXPECT_EQ(EventsOf(*after_first),
            (std::vector<std::pair<int64_t, std::string>>{{(*events)[1].first, "job"}, {(*events)[2].first, "job"}}));
  auto two = store_->JobEventsAfter(0, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
  auto past_the_end = store_->JobEventsAfter((*events)[2].first, 100);
  ASSERT_TRUE(past_the_end.ok());
  EXPECT_TRUE(past_the_end->empty());
  EXPECT_FALSE(store_->JobEventsAfter(0, 0).ok());

  // A claim and a fenced write are events too; a deleted job's are skipped.
  Insert(Queued("other"));
  std::optional<Job> claimed = ClaimFor("node-a", {JobKind::kGenerate});
  ASSERT_TRUE(claimed.has_value());
  ASSERT_TRUE(store_->UpdateProgressFenced("other", {"node-a", 1}, 0.25).ok());
  ASSERT_TRUE(store_->Delete({"job"}).ok());
  auto left = store_->JobEventsAfter(0, 100);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 3u);  // inserted, claimed, progress
  for (const auto& [id, job] : *left) EXPECT_EQ(job.id, "other");
  EXPECT_EQ(left->back().second.status, JobStatus::kRunning);
  EXPECT_DOUBLE_EQ(left->back().second.progress, 0.25);
}

TEST_F(PostgresClusterStoreTest, JobEventsAreNumberedInCommitOrder) {
  // A follower reads "after the last id it saw": an id taken by a transaction
  // that commits after a larger one would be passed over for good.
  Insert(Queued("first"));
  Insert(Queued("second"));
  auto before = store_->LatestJobEventId();
  ASSERT_TRUE(before.ok());
  // `first` is written in a transaction left open while `second` commits.
  ASSERT_TRUE(database_->raw().ExecScript("begin", "BEGIN").ok());
  ASSERT_TRUE(database_->raw().ExecScript("write first", "UPDATE jobs SET progress = 0.1 WHERE id = 'first'").ok());
  ASSERT_TRUE(store_->UpdateProgress("second", 0.2).ok());
  ASSERT_TRUE(database_->raw().ExecScript("commit", "COMMIT").ok());
  auto events = store_->JobEventsAfter(*before, 100);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].second.id, "second");  // committed first
  EXPECT_EQ((*events)[1].second.id, "first");
}

TEST_F(PostgresClusterStoreTest, ASessionOnTheEventsChannelHearsEveryWriteOfAJob) {
  auto events = OpenSession({kEventsChannel, kControlChannel});
  auto queued_only = OpenSession({kJobsChannel, kControlChannel});
  ASSERT_NE(events, nullptr);
  ASSERT_NE(queued_only, nullptr);
  Insert(Queued("job"));
  std::vector<Notification> heard = HearUntil(*events, kEventsChannel, "");
  EXPECT_EQ(CountOn(heard, kEventsChannel), 1);
  HearUpToAMarker(*queued_only, "marker 1");

  // A progress update: a change to the feed, nothing new to claim.
  ASSERT_TRUE(store_->UpdateProgress("job", 0.5).ok());
  heard = HearUntil(*events, kEventsChannel, "");
  EXPECT_EQ(CountOn(heard, kEventsChannel), 1);
  heard = HearUpToAMarker(*queued_only, "marker 2");
  EXPECT_EQ(CountOn(heard, kJobsChannel), 0);

  // 300 jobs written in one transaction: one notification, 300 events.
  const int64_t before = *store_->LatestJobEventId();
  Query("INSERT INTO jobs(id, kind, status) SELECT 'batch-' || g, 'generate', 'queued' FROM generate_series(1, 300) g");
  heard = HearUpToAMarker(*events, "marker 3");
  EXPECT_EQ(CountOn(heard, kEventsChannel), 1);
  auto written = store_->JobEventsAfter(before, 1000);
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(written->size(), 300u);
}

TEST_F(PostgresClusterStoreTest, PruningKeepsTheNewestEvents) {
  for (int i = 0; i < 5; ++i) Insert(Queued("job-" + std::to_string(i)));
  auto all = store_->JobEventsAfter(0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  auto pruned = store_->PruneJobEvents(2);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(*pruned, 3);
  auto kept = store_->JobEventsAfter(0, 100);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(EventsOf(*kept),
            (std::vector<std::pair<int64_t, std::string>>{{(*all)[3].first, "job-3"}, {(*all)[4].first, "job-4"}}));
  EXPECT_EQ(*store_->LatestJobEventId(), (*all)[4].first);
  auto again = store_->PruneJobEvents(2);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  EXPECT_FALSE(store_->PruneJobEvents(-1).ok());
}

}  // namespace
}  // namespace tessera::store::testing
