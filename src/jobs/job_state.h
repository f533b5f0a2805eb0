// The one place that decides job state transitions.
//
//   queued  ──▶ running ──▶ success | error | canceled
//     │            │
//     │            └──▶ queued   (requeue: its worker died, or the server restarted)
//     └──▶ canceled
//
// Nothing else assigns Job::status. A transition also keeps the timestamps and
// fields that belong to it consistent (started_ms, finished_ms, progress, error).
#pragma once

#include <cstdint>
#include <string>

#include "jobs/job_executor.h"
#include "store/job.h"
#include "util/status.h"

namespace tessera::jobs {

bool IsAllowedTransition(store::JobStatus from, store::JobStatus to);

// Moves `job` to `to` at `now_ms`; kInvalid (and `job` untouched) when the
// transition is not allowed. `error` is kept for error and canceled (a queued job
// carries none: callers log why they requeued it).
Status TransitionJob(store::Job& job, store::JobStatus to, int64_t now_ms, std::string error = "");

// What surrounded a run when its executor returned.
struct RunCircumstances {
  bool cancel_requested = false;  // a client (or Stop) asked the run to stop
  bool stopping = false;          // the server is stopping
  int attempts = 0;               // starts of the job so far, this one included
  int max_attempts = 1;
};

// The state a running job goes to after its executor's outcome.
struct NextState {
  store::JobStatus status = store::JobStatus::kSuccess;
  std::string error;            // for error and canceled
  bool refund_attempt = false;  // the run does not count: the server stopped under it
  bool requeue_front = false;   // run again soon: back at the head of its lane
};

// Decides it, and nothing else decides it:
// - success stays success, whatever happened around it;
// - a run interrupted because the server is stopping goes back to the queue and
//   its attempt is refunded (the job did nothing wrong; it runs on the next start);
// - a run stopped on request is canceled (a killed process's error is reported
//   as "canceled by request", not as its exit status);
// - a machinery failure (kRetry) is retried at the head of its lane until
//   `max_attempts` starts, then fails naming the last failure;
// - an error of the job itself is final.
NextState DecideAfterOutcome(const ExecutionOutcome& outcome, const RunCircumstances& circumstances);

// Applies `next` to a running `job` at `now_ms`: refunds the attempt when asked,
// then TransitionJob. kInvalid (job untouched) when `job` is not running.
Status ApplyNextState(store::Job& job, const NextState& next, int64_t now_ms);

// Wall-clock milliseconds since the Unix epoch (what the store records).
int64_t NowMs();

}  // namespace tessera::jobs
