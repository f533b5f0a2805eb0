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

NextState DecideAfterOutcome(const ExecutionOutcome& outcome, const RunCircumstances& circumstances) {
  using Kind = ExecutionOutcome::Kind;
  NextState next;
  if (outcome.kind == Kind::kSuccess) return next;
  bool interrupted = circumstances.cancel_requested || outcome.kind == Kind::kCanceled || outcome.kind == Kind::kRetry;
  if (interrupted && circumstances.stopping) {
    next.status = JobStatus::kQueued;
    next.refund_attempt = true;
    return next;
  }
  if (outcome.kind == Kind::kError) {
    next.status = circumstances.cancel_requested ? JobStatus::kCanceled : JobStatus::kError;
    next.error = circumstances.cancel_requested ? "canceled by request" : outcome.message;
    return next;
  }
  if (outcome.kind == Kind::kCanceled || circumstances.cancel_requested) {
    next.status = JobStatus::kCanceled;
    next.error = outcome.message;
    return next;
  }
  // kRetry: the machinery failed, not the job.
  if (circumstances.attempts >= circumstances.max_attempts) {
    next.status = JobStatus::kError;
    next.error = "failed " + std::to_string(circumstances.attempts) + " times; last: " + outcome.message;
    return next;
  }
  next.status = JobStatus::kQueued;
  next.requeue_front = true;
  return next;
}

Status ApplyNextState(store::Job& job, const NextState& next, int64_t now_ms) {
  if (job.status != JobStatus::kRunning) {
    return InvalidError("job " + job.id + " is " + std::string(store::JobStatusName(job.status)) + ", not running");
  }
  store::Job moved = job;
  if (next.refund_attempt && moved.attempts > 0) moved.attempts -= 1;
  if (Status s = TransitionJob(moved, next.status, now_ms, next.error); !s.ok()) return s;
  job = std::move(moved);
  return Status::Ok();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tessera::jobs
