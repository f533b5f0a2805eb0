#include "store/job.h"

namespace tessera::store {

std::string_view JobKindName(JobKind kind) {
  switch (kind) {
    case JobKind::kGenerate: return "generate";
    case JobKind::kUpscale: return "upscale";
    case JobKind::kVideo: return "video";
    case JobKind::kVideoSegment: return "video_segment";
  }
  return "unknown";
}

std::string_view JobStatusName(JobStatus status) {
  switch (status) {
    case JobStatus::kQueued: return "queued";
    case JobStatus::kRunning: return "running";
    case JobStatus::kSuccess: return "success";
    case JobStatus::kError: return "error";
    case JobStatus::kCanceled: return "canceled";
  }
  return "unknown";
}

std::optional<JobKind> ParseJobKind(std::string_view text) {
  for (JobKind kind : {JobKind::kGenerate, JobKind::kUpscale, JobKind::kVideo, JobKind::kVideoSegment}) {
    if (text == JobKindName(kind)) return kind;
  }
  return std::nullopt;
}

std::optional<JobStatus> ParseJobStatus(std::string_view text) {
  for (JobStatus status :
       {JobStatus::kQueued, JobStatus::kRunning, JobStatus::kSuccess, JobStatus::kError, JobStatus::kCanceled}) {
    if (text == JobStatusName(status)) return status;
  }
  return std::nullopt;
}

bool IsFinished(JobStatus status) {
  switch (status) {
    case JobStatus::kSuccess:
    case JobStatus::kError:
    case JobStatus::kCanceled: return true;
    case JobStatus::kQueued:
    case JobStatus::kRunning: return false;
  }
  return false;
}

}  // namespace tessera::store
