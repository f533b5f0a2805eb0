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

#include "store/job.h"
#include "util/status.h"

namespace tessera::jobs {

bool IsAllowedTransition(store::JobStatus from, store::JobStatus to);

// Moves `job` to `to` at `now_ms`; kInvalid (and `job` untouched) when the
// transition is not allowed. `error` is kept for error and canceled (a queued job
// carries none: callers log why they requeued it).
Status TransitionJob(store::Job& job, store::JobStatus to, int64_t now_ms, std::string error = "");

// Wall-clock milliseconds since the Unix epoch (what the store records).
int64_t NowMs();

}  // namespace tessera::jobs
