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
  if (run.image.ok()) return run;
  const StatusCode code = run.image.status().code();
  const bool lost = code == StatusCode::kDeviceUnavailable;
  if (code != StatusCode::kOutOfMemory && !lost) return run;
  // A lost device and a memory that no retry fitted take the same way out.
  if (engine::AfterOomRetriesSpent(!device.is_cpu(), gpu_fallback_allowed) != engine::OomOutcome::kFallBackToCpu) {
    return run;
  }
  Result<std::shared_ptr<const engine::Upscaler>> cpu = cpu_upscaler();
  if (!cpu.ok()) {
    run.image = Status(code, run.image.status().message() + "; the CPU fallback could not start: " +
                                 cpu.status().message());
    return run;
  }
  LogWarn(lost ? "gpu_lost_fallback" : "gpu_oom_fallback")
      .Field("device", device.Name())
      .Field("error", run.image.status().message())
      .Field("runs_on", "cpu");
  run.image = (*cpu)->Run(input, deadline, progress);
  run.reran_on_cpu = true;
  return run;
}

}  // namespace tessera::worker
