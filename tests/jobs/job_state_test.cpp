#include "jobs/job_state.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tessera::jobs {
namespace {

using store::Job;
using store::JobStatus;

constexpr JobStatus kAllStatuses[] = {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSuccess,
                                      JobStatus::kError, JobStatus::kCanceled};

// The diagram in job_state.h, written out: the only five arrows (plus requeue).
bool DiagramAllows(JobStatus from, JobStatus to) {
  if (from == JobStatus::kQueued) return to == JobStatus::kRunning || to == JobStatus::kCanceled;
  if (from == JobStatus::kRunning) {
    return to == JobStatus::kSuccess || to == JobStatus::kError || to == JobStatus::kCanceled ||
           to == JobStatus::kQueued;
  }
  return false;
}

// A job in `status` with every field set to something recognisable.
Job JobIn(JobStatus status) {
  Job job;
  job.id = "5d1b3c1e-0000-4000-8000-000000000001";
  job.kind = store::JobKind::kGenerate;
  job.status = status;
  job.seq = 7;
  job.prompt = "a cat";
  job.lane = "cuda:1";
  job.gpu_id = 1;
  job.attempts = 2;
  job.progress = 0.4;
  job.error = "earlier trouble";
  job.created_ms = 1'000;
  job.started_ms = 2'000;
  job.finished_ms = store::IsFinished(status) ? 3'000 : 0;
  return job;
}

void ExpectSameJob(const Job& a, const Job& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.prompt, b.prompt);
  EXPECT_EQ(a.params_json, b.params_json);
  EXPECT_EQ(a.lane, b.lane);
  EXPECT_EQ(a.gpu_id, b.gpu_id);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.progress, b.progress);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.created_ms, b.created_ms);
  EXPECT_EQ(a.started_ms, b.started_ms);
  EXPECT_EQ(a.finished_ms, b.finished_ms);
}

std::string PairName(JobStatus from, JobStatus to) {
  return std::string(store::JobStatusName(from)) + " -> " + std::string(store::JobStatusName(to));
}

TEST(JobStateTest, IsAllowedTransitionMatchesTheDiagramForAllTwentyFivePairs) {
  int allowed = 0;
  for (JobStatus from : kAllStatuses) {
    for (JobStatus to : kAllStatuses) {
      EXPECT_EQ(IsAllowedTransition(from, to), DiagramAllows(from, to)) << PairName(from, to);
      allowed += DiagramAllows(from, to) ? 1 : 0;
    }
  }
  EXPECT_EQ(allowed, 6);  // the table itself is not vacuous
}

TEST(JobStateTest, TransitionJobSucceedsExactlyForAllowedPairsAndSetsTheStatus) {
  for (JobStatus from : kAllStatuses) {
    for (JobStatus to : kAllStatuses) {
      Job job = JobIn(from);
      Status moved = TransitionJob(job, to, 10'000, "reason");
      if (DiagramAllows(from, to)) {
        EXPECT_TRUE(moved.ok()) << PairName(from, to) << ": " << moved.ToString();
        EXPECT_EQ(job.status, to) << PairName(from, to);
      } else {
        EXPECT_EQ(moved.code(), StatusCode::kInvalid) << PairName(from, to);
      }
    }
  }
}

TEST(JobStateTest, ARefusedTransitionLeavesTheJobUntouched) {
  for (JobStatus from : kAllStatuses) {
    for (JobStatus to : kAllStatuses) {
      if (DiagramAllows(from, to)) continue;
      SCOPED_TRACE(PairName(from, to));
      Job job = JobIn(from);
      const Job before = job;
      ASSERT_FALSE(TransitionJob(job, to, 99'999, "should not be stored").ok());
      ExpectSameJob(job, before);
    }
  }
}

TEST(JobStateTest, ARefusedTransitionNamesTheJobAndBothStates) {
  Job job = JobIn(JobStatus::kSuccess);
  Status moved = TransitionJob(job, JobStatus::kRunning, 5);
  ASSERT_EQ(moved.code(), StatusCode::kInvalid);
  EXPECT_NE(moved.message().find(job.id), std::string::npos) << moved.message();
  EXPECT_NE(moved.message().find("success"), std::string::npos) << moved.message();
  EXPECT_NE(moved.message().find("running"), std::string::npos) << moved.message();
}

TEST(JobStateTest, StartingAJobStampsItAndCountsTheAttempt) {
  Job job = JobIn(JobStatus::kQueued);
  job.started_ms = 0;
  ASSERT_TRUE(TransitionJob(job, JobStatus::kRunning, 12'345).ok());
  EXPECT_EQ(job.status, JobStatus::kRunning);
  EXPECT_EQ(job.started_ms, 12'345);
  EXPECT_EQ(job.attempts, 3);
  EXPECT_EQ(job.progress, 0.0);
  EXPECT_EQ(job.error, "");
  EXPECT_EQ(job.finished_ms, 0);
}

TEST(JobStateTest, SuccessStampsTheFinishCompletesProgressAndClearsTheError) {
  Job job = JobIn(JobStatus::kRunning);
  ASSERT_TRUE(TransitionJob(job, JobStatus::kSuccess, 20'000, "ignored").ok());
  EXPECT_EQ(job.finished_ms, 20'000);
  EXPECT_EQ(job.started_ms, 2'000);  // the start of this attempt is kept
  EXPECT_EQ(job.progress, 1.0);
  EXPECT_EQ(job.error, "");
  EXPECT_EQ(job.attempts, 2);
}

TEST(JobStateTest, ErrorStampsTheFinishAndKeepsTheMessage) {
  Job job = JobIn(JobStatus::kRunning);
  ASSERT_TRUE(TransitionJob(job, JobStatus::kError, 21'000, "generator exited with 1").ok());
  EXPECT_EQ(job.finished_ms, 21'000);
  EXPECT_EQ(job.started_ms, 2'000);
  EXPECT_EQ(job.error, "generator exited with 1");
  EXPECT_EQ(job.attempts, 2);
  EXPECT_EQ(job.progress, 0.4);  // how far it got
}

TEST(JobStateTest, CancelingARunningJobStampsTheFinishAndKeepsTheReason) {
  Job job = JobIn(JobStatus::kRunning);
  ASSERT_TRUE(TransitionJob(job, JobStatus::kCanceled, 22'000, "canceled by request").ok());
  EXPECT_EQ(job.finished_ms, 22'000);
  EXPECT_EQ(job.error, "canceled by request");
  EXPECT_EQ(job.attempts, 2);
}

TEST(JobStateTest, CancelingAQueuedJobStampsTheFinishWithoutStartingIt) {
  Job job = JobIn(JobStatus::kQueued);
  job.started_ms = 0;
  job.attempts = 0;
  ASSERT_TRUE(TransitionJob(job, JobStatus::kCanceled, 23'000, "").ok());
  EXPECT_EQ(job.status, JobStatus::kCanceled);
  EXPECT_EQ(job.finished_ms, 23'000);
  EXPECT_EQ(job.started_ms, 0);
  EXPECT_EQ(job.attempts, 0);
  EXPECT_EQ(job.error, "");  // no reason given: none recorded
}

TEST(JobStateTest, RequeueClearsTheAttemptsStartAndProgressButKeepsTheCount) {
  Job job = JobIn(JobStatus::kRunning);
  ASSERT_TRUE(TransitionJob(job, JobStatus::kQueued, 24'000).ok());
  EXPECT_EQ(job.status, JobStatus::kQueued);
  EXPECT_EQ(job.started_ms, 0);
  EXPECT_EQ(job.finished_ms, 0);
  EXPECT_EQ(job.progress, 0.0);
  EXPECT_EQ(job.attempts, 2);  // the next start counts the next attempt
  EXPECT_EQ(job.error, "");
}

// job_state.h: "`error` is kept for error and canceled"; store/job.h: error is
// "empty unless status is error (or canceled with a reason)". A queued job
// carries no error, whatever reason the caller gave for the requeue.
TEST(JobStateTest, RequeueDoesNotStoreAnErrorOnAQueuedJob) {
  Job job = JobIn(JobStatus::kRunning);
  ASSERT_TRUE(TransitionJob(job, JobStatus::kQueued, 24'000, "the worker died").ok());
  EXPECT_EQ(job.error, "");
}

TEST(JobStateTest, ARequeuedJobCanStartAgainAndCountsTheNewAttempt) {
  Job job = JobIn(JobStatus::kQueued);
  job.attempts = 0;
  ASSERT_TRUE(TransitionJob(job, JobStatus::kRunning, 1'000).ok());
  ASSERT_TRUE(TransitionJob(job, JobStatus::kQueued, 2'000).ok());
  ASSERT_TRUE(TransitionJob(job, JobStatus::kRunning, 3'000).ok());
  EXPECT_EQ(job.attempts, 2);
  EXPECT_EQ(job.started_ms, 3'000);
}

// --- The state after an executor's outcome ---------------------------------------

using Kind = ExecutionOutcome::Kind;

RunCircumstances Around(int attempts, int max_attempts, bool cancel_requested = false, bool stopping = false) {
  RunCircumstances circumstances;
  circumstances.attempts = attempts;
  circumstances.max_attempts = max_attempts;
  circumstances.cancel_requested = cancel_requested;
  circumstances.stopping = stopping;
  return circumstances;
}

TEST(NextStateTest, SuccessStaysSuccessWhateverHappenedAroundIt) {
  for (bool cancel : {false, true}) {
    for (bool stopping : {false, true}) {
      NextState next = DecideAfterOutcome({Kind::kSuccess, ""}, Around(3, 3, cancel, stopping));
      EXPECT_EQ(next.status, JobStatus::kSuccess) << cancel << stopping;
      EXPECT_FALSE(next.refund_attempt);
      EXPECT_FALSE(next.requeue_front);
      EXPECT_EQ(next.error, "");
    }
  }
}

TEST(NextStateTest, AnErrorOfTheJobIsFinalEvenWhileStopping) {
  for (bool stopping : {false, true}) {
    NextState next = DecideAfterOutcome({Kind::kError, "exit status 2"}, Around(1, 3, false, stopping));
    EXPECT_EQ(next.status, JobStatus::kError);
    EXPECT_EQ(next.error, "exit status 2");
    EXPECT_FALSE(next.refund_attempt);
    EXPECT_FALSE(next.requeue_front);
  }
}

TEST(NextStateTest, AProcessKilledOnRequestIsCanceledNotAnError) {
  NextState next = DecideAfterOutcome({Kind::kError, "exit status -15"}, Around(1, 3, true, false));
  EXPECT_EQ(next.status, JobStatus::kCanceled);
  EXPECT_EQ(next.error, "canceled by request");
}

TEST(NextStateTest, ACanceledRunIsCanceledWithTheExecutorsReason) {
  NextState next = DecideAfterOutcome({Kind::kCanceled, "canceled by the client"}, Around(1, 3));
  EXPECT_EQ(next.status, JobStatus::kCanceled);
  EXPECT_EQ(next.error, "canceled by the client");
  // A retry asked for while a cancel was requested: the cancel wins.
  next = DecideAfterOutcome({Kind::kRetry, "worker died"}, Around(1, 3, true, false));
  EXPECT_EQ(next.status, JobStatus::kCanceled);
  EXPECT_FALSE(next.requeue_front);
}

TEST(NextStateTest, ARunInterruptedByTheServerStoppingIsQueuedAgainAndItsAttemptRefunded) {
  for (Kind kind : {Kind::kCanceled, Kind::kRetry}) {
    NextState next = DecideAfterOutcome({kind, "stopped"}, Around(3, 3, true, true));
    EXPECT_EQ(next.status, JobStatus::kQueued);
    EXPECT_TRUE(next.refund_attempt);
    EXPECT_FALSE(next.requeue_front);  // the lanes are going away: it waits in the store
  }
  NextState killed = DecideAfterOutcome({Kind::kError, "exit status -15"}, Around(2, 3, true, true));
  EXPECT_EQ(killed.status, JobStatus::kQueued);
  EXPECT_TRUE(killed.refund_attempt);
}

TEST(NextStateTest, AMachineryFailureIsRetriedAtTheHeadUntilTheLastAttemptThenFails) {
  NextState first = DecideAfterOutcome({Kind::kRetry, "worker hung"}, Around(1, 3));
  EXPECT_EQ(first.status, JobStatus::kQueued);
  EXPECT_TRUE(first.requeue_front);
  EXPECT_FALSE(first.refund_attempt);
  EXPECT_EQ(DecideAfterOutcome({Kind::kRetry, "worker hung"}, Around(2, 3)).status, JobStatus::kQueued);
  NextState last = DecideAfterOutcome({Kind::kRetry, "worker hung"}, Around(3, 3));
  EXPECT_EQ(last.status, JobStatus::kError);
  EXPECT_EQ(last.error, "failed 3 times; last: worker hung");
  EXPECT_FALSE(last.requeue_front);
}

TEST(NextStateTest, ApplyingARefundGivesTheAttemptBackOnce) {
  Job job = JobIn(JobStatus::kRunning);
  job.attempts = 3;
  NextState next = DecideAfterOutcome({Kind::kRetry, "stopped"}, Around(3, 3, true, true));
  ASSERT_TRUE(ApplyNextState(job, next, 9'000).ok());
  EXPECT_EQ(job.status, JobStatus::kQueued);
  EXPECT_EQ(job.attempts, 2);
  EXPECT_EQ(job.started_ms, 0);

  Job failed = JobIn(JobStatus::kRunning);
  failed.attempts = 3;
  ASSERT_TRUE(ApplyNextState(failed, DecideAfterOutcome({Kind::kRetry, "hung"}, Around(3, 3)), 9'000).ok());
  EXPECT_EQ(failed.status, JobStatus::kError);
  EXPECT_EQ(failed.attempts, 3);
  EXPECT_EQ(failed.finished_ms, 9'000);
  EXPECT_EQ(failed.error, "failed 3 times; last: hung");
}

TEST(NextStateTest, ApplyingToAJobThatIsNotRunningIsRefusedAndLeavesItAlone) {
  Job job = JobIn(JobStatus::kQueued);
  NextState next;
  next.status = JobStatus::kQueued;
  next.refund_attempt = true;
  EXPECT_EQ(ApplyNextState(job, next, 9'000).code(), StatusCode::kInvalid);
  EXPECT_EQ(job.attempts, 2);
  EXPECT_EQ(job.status, JobStatus::kQueued);
}

TEST(JobStateTest, NowMsIsWallClockMilliseconds) {
  int64_t now = NowMs();
  EXPECT_GT(now, 1'600'000'000'000);  // after September 2020, in milliseconds
  EXPECT_LT(now, 4'000'000'000'000);  // not microseconds
  EXPECT_LE(now, NowMs());
}

}  // namespace
}  // namespace tessera::jobs
