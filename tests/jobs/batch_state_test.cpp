// The one place that derives image and batch statuses (seed 004).
#include "jobs/batch_state.h"

#include "jobs/batch_runner.h"

#include <gtest/gtest.h>

namespace tessera::jobs {
namespace {

using store::BatchImageRow;
using store::JobStatus;

BatchImageRow Row(JobStatus job, int attempts = 1, int64_t retry_at_ms = 0, std::string error = "") {
  BatchImageRow row;
  row.job_status = job;
  row.image.attempts = attempts;
  row.image.retry_at_ms = retry_at_ms;
  row.job_error = std::move(error);
  return row;
}

TEST(BatchStateTest, ImageStatusFollowsItsCurrentJob) {
  EXPECT_EQ(ImageStatusOf(Row(JobStatus::kQueued)), ImageStatus::kPending);
  EXPECT_EQ(ImageStatusOf(Row(JobStatus::kRunning)), ImageStatus::kProcessing);
  EXPECT_EQ(ImageStatusOf(Row(JobStatus::kSuccess)), ImageStatus::kCompleted);
  EXPECT_EQ(ImageStatusOf(Row(JobStatus::kError)), ImageStatus::kFailed);
  EXPECT_EQ(ImageStatusOf(Row(JobStatus::kCanceled)), ImageStatus::kFailed);
  EXPECT_EQ(ImageStatusOf(Row(JobStatus::kError, 1, 5000)), ImageStatus::kRetrying);
}

TEST(BatchStateTest, BatchStatusTakesTheFirstRuleThatApplies) {
  struct Case {
    std::vector<BatchImageRow> rows;
    BatchStatus expected;
    bool settled;
  };
  const std::vector<Case> cases = {
      {{Row(JobStatus::kQueued), Row(JobStatus::kQueued)}, BatchStatus::kPending, false},
      {{Row(JobStatus::kRunning), Row(JobStatus::kQueued)}, BatchStatus::kProcessing, false},
      {{Row(JobStatus::kSuccess), Row(JobStatus::kQueued)}, BatchStatus::kProcessing, false},
      {{Row(JobStatus::kSuccess), Row(JobStatus::kSuccess)}, BatchStatus::kCompleted, true},
      {{Row(JobStatus::kSuccess), Row(JobStatus::kError)}, BatchStatus::kPartiallyCompleted, true},
      {{Row(JobStatus::kError), Row(JobStatus::kCanceled)}, BatchStatus::kFailed, true},
      {{Row(JobStatus::kSuccess), Row(JobStatus::kError, 1, 9000)}, BatchStatus::kRetrying, false},
      {{Row(JobStatus::kSuccess), Row(JobStatus::kQueued, 2)}, BatchStatus::kRetrying, false},
      {{Row(JobStatus::kSuccess), Row(JobStatus::kRunning, 2)}, BatchStatus::kRetrying, false},
      {{Row(JobStatus::kQueued, 2)}, BatchStatus::kRetrying, false},  // a retried image has started before
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    BatchSummary summary = SummarizeBatch(cases[i].rows, 3);
    EXPECT_EQ(summary.status, cases[i].expected) << "case " << i << ": " << BatchStatusName(summary.status);
    EXPECT_EQ(summary.settled, cases[i].settled) << "case " << i;
  }
}

TEST(BatchStateTest, CountersAndTextsComeFromTheRows) {
  std::vector<BatchImageRow> rows;
  for (int i = 0; i < 25; ++i) rows.push_back(Row(JobStatus::kSuccess));
  for (int i = 0; i < 3; ++i) rows.push_back(Row(JobStatus::kError));
  rows.push_back(Row(JobStatus::kRunning));
  rows.push_back(Row(JobStatus::kQueued));
  BatchSummary summary = SummarizeBatch(rows, 3);
  EXPECT_EQ(summary.total, 30);
  EXPECT_EQ(summary.completed, 25);
  EXPECT_EQ(summary.failed, 3);
  EXPECT_EQ(summary.processing, 1);
  EXPECT_EQ(summary.pending, 1);
  EXPECT_EQ(summary.ProcessedText(), "25/30 images processed");
  EXPECT_EQ(summary.FailedText(), "3/30 images failed");
  EXPECT_NEAR(summary.percentage(), 83.333, 0.001);
}

TEST(BatchStateTest, OnlyFailedImagesWithARetryLeftMayRetry) {
  EXPECT_TRUE(ImageMayRetry(Row(JobStatus::kError, 1), 3));
  EXPECT_TRUE(ImageMayRetry(Row(JobStatus::kCanceled, 3), 3));
  EXPECT_FALSE(ImageMayRetry(Row(JobStatus::kError, 4), 3));  // first attempt + 3 retries used
  EXPECT_FALSE(ImageMayRetry(Row(JobStatus::kSuccess, 1), 3));
  EXPECT_FALSE(ImageMayRetry(Row(JobStatus::kError, 1), 0));
  BatchSummary summary = SummarizeBatch({Row(JobStatus::kError, 4), Row(JobStatus::kError, 2)}, 3);
  EXPECT_EQ(summary.retryable, 1);
  EXPECT_TRUE(summary.can_retry());
  EXPECT_FALSE(SummarizeBatch({Row(JobStatus::kError, 4)}, 3).can_retry());
}

TEST(BatchStateTest, RejectedImagesAreNotRetriedAutomatically) {
  EXPECT_TRUE(IsPermanentImageFailure("BAD_IMAGE: image 0: not a supported image"));
  EXPECT_TRUE(IsPermanentImageFailure("INVALID: unknown model x"));
  EXPECT_TRUE(IsPermanentImageFailure("input image: cannot open /x"));
  EXPECT_FALSE(IsPermanentImageFailure("failed 3 times; last: the worker failed: worker closed its output"));
  EXPECT_FALSE(IsPermanentImageFailure("OUT_OF_MEMORY: the budget said no"));
}

}  // namespace
}  // namespace tessera::jobs
