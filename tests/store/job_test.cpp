#include "store/job.h"

#include <gtest/gtest.h>

namespace tessera::store {
namespace {

constexpr JobKind kAllKinds[] = {JobKind::kGenerate, JobKind::kUpscale, JobKind::kVideo, JobKind::kVideoSegment};
constexpr JobStatus kAllStatuses[] = {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSuccess, JobStatus::kError,
                                      JobStatus::kCanceled};

TEST(JobTest, KindNamesAreTheApiSpellingsAndRoundTrip) {
  EXPECT_EQ(JobKindName(JobKind::kGenerate), "generate");
  EXPECT_EQ(JobKindName(JobKind::kUpscale), "upscale");
  EXPECT_EQ(JobKindName(JobKind::kVideo), "video");
  EXPECT_EQ(JobKindName(JobKind::kVideoSegment), "video_segment");
  for (JobKind kind : kAllKinds) EXPECT_EQ(ParseJobKind(JobKindName(kind)), kind);
}

TEST(JobTest, StatusNamesAreTheApiSpellingsAndRoundTrip) {
  EXPECT_EQ(JobStatusName(JobStatus::kQueued), "queued");
  EXPECT_EQ(JobStatusName(JobStatus::kRunning), "running");
  EXPECT_EQ(JobStatusName(JobStatus::kSuccess), "success");
  EXPECT_EQ(JobStatusName(JobStatus::kError), "error");
  EXPECT_EQ(JobStatusName(JobStatus::kCanceled), "canceled");
  for (JobStatus status : kAllStatuses) EXPECT_EQ(ParseJobStatus(JobStatusName(status)), status);
}

TEST(JobTest, ParsingRejectsUnknownAndDifferentlySpelledNames) {
  EXPECT_FALSE(ParseJobKind(""));
  EXPECT_FALSE(ParseJobKind("Generate"));
  EXPECT_FALSE(ParseJobKind("upscale "));
  EXPECT_FALSE(ParseJobKind("Video"));
  EXPECT_FALSE(ParseJobKind("video-segment"));
  EXPECT_FALSE(ParseJobStatus(""));
  EXPECT_FALSE(ParseJobStatus("QUEUED"));
  EXPECT_FALSE(ParseJobStatus("cancelled"));
  EXPECT_FALSE(ParseJobStatus("done"));
}

TEST(JobTest, OnlySuccessErrorAndCanceledAreFinished) {
  EXPECT_FALSE(IsFinished(JobStatus::kQueued));
  EXPECT_FALSE(IsFinished(JobStatus::kRunning));
  EXPECT_TRUE(IsFinished(JobStatus::kSuccess));
  EXPECT_TRUE(IsFinished(JobStatus::kError));
  EXPECT_TRUE(IsFinished(JobStatus::kCanceled));
}

TEST(JobTest, DefaultsAreAQueuedUnplacedJob) {
  Job job;
  EXPECT_EQ(job.status, JobStatus::kQueued);
  EXPECT_EQ(job.params_json, "{}");
  EXPECT_EQ(job.gpu_id, -1);
  EXPECT_EQ(job.seq, 0);
  EXPECT_EQ(job.progress, 0.0);
}

}  // namespace
}  // namespace tessera::store
