// What an executor that runs a command (the generator, a video segment's
// `tessera upscale`) gives RunningCommand::Start: the command's output fed to a
// ProgressTracker, each new progress reported to the scheduler once.
#pragma once

#include <functional>

#include "jobs/command_runner.h"
#include "jobs/job_executor.h"

namespace tessera::jobs {

OutputCallback ReportCommandProgress(std::function<void(const ProgressReport&)> report);

}  // namespace tessera::jobs
