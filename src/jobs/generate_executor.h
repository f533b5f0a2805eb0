// Runs `generate` jobs: the external generator command (Wan2.2's generate.py by
// default) at the model's 704 size, then ffmpeg to the 720 the API promised
// (seed 001, sections 5 and 9).
//
// The command runs with CUDA_VISIBLE_DEVICES set to the lane's CUDA device
// (CudaVisibleDevicesFor), in its own
// process group, its output appended to <logs_dir>/<job_id>.log and read for
// progress (tiers A and B). Its raw video is written under
// <results_dir>/.partial/ and only the post-processed file appears in the results.
// Job params (params_json): {"size": "1280x720" | "720x1280", "resize_mode":
// "pad" | "scale"}.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "jobs/job_executor.h"
#include "jobs/video_postprocess.h"

namespace tessera::jobs {

struct GenerateExecutorOptions {
  std::vector<std::string> argv_template;  // SplitCommandTemplate of the configured command
  std::string working_directory;
  std::string ckpt_dir;
  std::string results_dir;
  std::string logs_dir;
  std::chrono::milliseconds timeout{0};  // 0: none
  std::chrono::milliseconds cancel_grace{std::chrono::seconds(10)};
  VideoToolOptions video_tools;
};

// CUDA_VISIBLE_DEVICES for a generator on `lane` (seed 001: one GPU per job):
// the CUDA device a "cuda:K" lane names (K is CUDA's own number, also the
// lane's gpu_id, CUDA's devices being numbered first). Empty on a CPU lane and
// on a Vulkan lane — an AMD or Intel GPU, or one CUDA does not see, whose
// gpu_id counts the machine's real GPUs, not CUDA's: the generator sees no
// CUDA GPU rather than another lane's.
std::string CudaVisibleDevicesFor(const LaneSpec& lane);

class GenerateExecutor : public JobExecutor {
 public:
  explicit GenerateExecutor(GenerateExecutorOptions options) : options_(std::move(options)) {}
  ExecutionOutcome Execute(const store::Job& job, ExecutionContext& context) override;

 private:
  GenerateExecutorOptions options_;
};

}  // namespace tessera::jobs
