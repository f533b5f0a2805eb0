#include "jobs/job_state.h"

#include <chrono>

namespace tessera::jobs {

using store::JobStatus;

bool IsAllowedTransition(JobStatus from, JobStatus to) {
  switch (from) {
    case JobStatus::kQueued:
      return to == JobStatus::kRunning || to == JobStatus::kCanceled;
    case JobStatus::kRunning:
      return to == JobStatus::kSuccess || to == JobStatus::kError || to == JobStatus::kCanceled ||
             to == JobStatus::kQueued;
    case JobStatus::kSuccess:
    case JobStatus::kError:
    case JobStatus::kCanceled:
      return false;
  }
  return false;
}

Status TransitionJob(store::Job& job, JobStatus to, int64_t now_ms, std::string error) {
  if (!IsAllowedTransition(job.status, to)) {
    return InvalidError("job " + job.id + " cannot go from " + std::string(store::JobStatusName(job.status)) +
                        " to " + std::string(store::JobStatusName(to)));
  }
  switch (to) {
    case JobStatus::kQueued:  // back in line: this attempt's traces are cleared (the reason is logged)
      job.started_ms = 0;
      job.progress = 0.0;
      job.error.clear();
      break;
    case JobStatus::kRunning:
      job.started_ms = now_ms;
      job.attempts += 1;
      job.progress = 0.0;
      job.error.clear();
      break;
    case JobStatus::kSuccess:
      job.finished_ms = now_ms;
      job.progress = 1.0;
      job.error.clear();
      break;
    case JobStatus::kError:
    case JobStatus::kCanceled:
      job.finished_ms = now_ms;
      job.error = std::move(error);
      break;
  }
  job.status = to;
  return Status::Ok();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tessera::jobs
