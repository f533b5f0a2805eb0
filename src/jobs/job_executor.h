// What a lane does with one job of one kind: the contract between the scheduler
// and the code that actually runs work (an external command, a worker child).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "jobs/lane_discovery.h"
#include "store/job.h"

namespace tessera::jobs {

// Set by the scheduler when a running job is canceled (or the server stops); the
// executor registers what to do at that moment (kill the process group...).
// Thread-safe. The action runs on the thread that calls Request() (an HTTP
// thread, for a DELETE) while the executor goes on on the lane's thread.
class CancelSignal {
 public:
  // Runs `action` now if cancellation was already requested, else on request.
  void OnCancel(std::function<void()> action);
  // Unregisters the action, and returns only once an action already started by
  // Request() has returned: after it, the executor may destroy what the action
  // uses (the command it kills) without the action still touching it.
  void ClearAction();
  void Request();
  bool requested() const { return requested_.load(); }

 private:
  std::mutex mutex_;
  std::condition_variable action_done_;
  std::atomic<bool> requested_{false};
  bool action_running_ = false;
  std::function<void()> action_;
};

struct ProgressReport {
  double fraction = 0.0;  // 0..1
  int64_t step = 0;       // 0 with total 0: no step information
  int64_t total = 0;
  bool structured = false;  // tier A (TESSERA_PROGRESS) rather than parsed text (tier B)
};

struct ExecutionContext {
  const LaneSpec& lane;
  CancelSignal& cancel;
  std::function<void(const ProgressReport&)> report_progress;
};

struct ExecutionOutcome {
  enum class Kind {
    kSuccess,
    kError,     // the job itself failed: final
    kCanceled,  // stopped on request
    kRetry,     // the machinery failed (a worker died or hung): run the job again
  };
  Kind kind = Kind::kSuccess;
  std::string message;  // for errors, cancels and retries: what happened
};

class JobExecutor {
 public:
  virtual ~JobExecutor() = default;
  // Runs the job to its end on the lane it was made for. Called from that lane's
  // thread only, one job at a time.
  virtual ExecutionOutcome Execute(const store::Job& job, ExecutionContext& context) = 0;
};

}  // namespace tessera::jobs
