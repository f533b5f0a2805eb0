// What an executor that runs a command (the generator, a video segment's
// `tessera upscale`) shares with the others: the command's output fed to a
// ProgressTracker, each new progress reported to the scheduler once; and the
// wait for the command, stopped on cancel or at its timeout.
#pragma once

#include <chrono>
#include <functional>

#include "jobs/command_runner.h"
#include "jobs/job_executor.h"

namespace tessera::jobs {

OutputCallback ReportCommandProgress(std::function<void(const ProgressReport&)> report);

struct CommandWait {
  CommandOutcome outcome;
  bool canceled = false;   // a cancel was requested (the command was stopped)
  bool timed_out = false;  // it ran past `timeout` and was stopped
};

// Waits for `command`; a cancel of `cancel`, or `timeout` (0: none), stops it
// (SIGTERM to its group, SIGKILL after `grace`).
CommandWait WaitForCommand(RunningCommand& command, CancelSignal& cancel, std::chrono::milliseconds timeout,
                           std::chrono::milliseconds grace);

}  // namespace tessera::jobs
