#include "worker/oom_fallback.h"

#include "engine/memory_planner.h"
#include "util/log.h"

namespace tessera::worker {

OomFallbackRun RunWithOomFallback(const engine::Upscaler& upscaler, const engine::Device& device,
                                  bool gpu_fallback_allowed, const CpuUpscalerFn& cpu_upscaler,
                                  const imaging::Image& input, const Deadline& deadline,
                                  const engine::ProgressFn& progress) {
  OomFallbackRun run;
  run.image = upscaler.Run(input, deadline, progress);
  if (run.image.ok() || run.image.status().code() != StatusCode::kOutOfMemory) return run;
  if (engine::AfterOomRetriesSpent(!device.is_cpu(), gpu_fallback_allowed) != engine::OomOutcome::kFallBackToCpu) {
    return run;
  }
  Result<std::shared_ptr<const engine::Upscaler>> cpu = cpu_upscaler();
  if (!cpu.ok()) {
    run.image = Status(StatusCode::kOutOfMemory, run.image.status().message() +
                                                     "; the CPU fallback could not start: " + cpu.status().message());
    return run;
  }
  LogWarn("gpu_oom_fallback")
      .Field("device", device.Name())
      .Field("error", run.image.status().message())
      .Field("runs_on", "cpu");
  run.image = (*cpu)->Run(input, deadline, progress);
  run.reran_on_cpu = true;
  return run;
}

}  // namespace tessera::worker
