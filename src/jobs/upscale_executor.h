// Runs upscale jobs on a lane through a keep-alive `tessera worker` child, over
// protocol v2 (DESIGN.md: workers are processes).
//
// The child is started on first use and kept for the next jobs (models stay
// loaded). A child that dies, or does not answer within `job_timeout`, is killed
// and the job is handed back to the scheduler to run again (ExecutionOutcome
// kRetry): a crashed worker never loses a job. Errors the worker reports about the
// job itself (a corrupt image, an unknown model) are final.
//
// Job params (params_json): {"engine": "realesrgan|realcugan|waifu2x|lanczos",
// "quality": model name or scale, "format": "png|jpg|webp", "output_dir": the
// folder of the result, for batch images; default: the results folder}; validated
// when the job was submitted.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "jobs/job_executor.h"
#include "worker/worker_process.h"

namespace tessera::jobs {

struct UpscaleExecutorOptions {
  std::string worker_binary;             // the tessera executable
  std::vector<std::string> worker_args;  // after `worker --keep-alive` (model dir, threads...)
  std::string results_dir;
  std::string logs_dir;  // the child's stderr goes to <logs_dir>/worker-<lane>.log
  std::chrono::milliseconds job_timeout{std::chrono::minutes(10)};
  uint64_t max_input_bytes = 256ull << 20;
};

class UpscaleExecutor : public JobExecutor {
 public:
  UpscaleExecutor(UpscaleExecutorOptions options, LaneSpec lane);
  ~UpscaleExecutor() override;

  ExecutionOutcome Execute(const store::Job& job, ExecutionContext& context) override;

  // The running child's pid for a format, for tests and metrics; -1 when none.
  int worker_pid(const std::string& format) const;

 private:
  Result<worker::WorkerProcess*> WorkerFor(const std::string& format);

  UpscaleExecutorOptions options_;
  LaneSpec lane_;
  uint64_t next_request_id_ = 1;
  // One child per output format: the worker's format is fixed at its start.
  std::map<std::string, std::unique_ptr<worker::WorkerProcess>> workers_;
};

}  // namespace tessera::jobs
