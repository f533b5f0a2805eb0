#include "cli/upscale_video.h"

#include <algorithm>
#include <cstdio>

#include "imaging/vips_runtime.h"
#include "util/log.h"
#include "video/av_error.h"
#include "video/video_progress.h"
#include "worker/device_selector.h"
#include "worker/engine_resolver.h"

namespace tessera::cli {

int RunVideoUpscale(VideoUpscaleRequest request) {
  video::ShowOnlyLibavErrors();
  worker::ResolveMachineDefaults(&request.worker);
  if (Status s = imaging::InitImaging({request.worker.threads}); !s.ok()) {
    LogError("startup_failed").Field("error", s.message());
    return 2;
  }
  worker::DeviceSelector devices(request.worker.gpu_fallback);
  Result<worker::DeviceChoice> device = devices.Select(request.worker.device, request.gpu_id);
  if (!device.ok()) {
    LogError("video_failed").Field("error", device.status().ToString());
    return 2;
  }
  worker::EngineResolver engines(request.worker);
  auto upscaler = devices.OpenAlongChain<std::shared_ptr<const engine::Upscaler>>(
      *device, [&](const engine::Device& d) { return engines.Resolve(request.engine, request.quality, d); });
  if (!upscaler.ok()) {
    LogError("video_failed").Field("error", upscaler.status().ToString());
    return 2;
  }
  video::ProgressPrinter printer(stderr);
  video::VideoUpscaleReport report;
  Status status = video::UpscaleVideo(
      **upscaler, request.video,
      [&printer, &request](int64_t done, int64_t total) {
        if (request.progress_total > 0) {
          std::fprintf(stderr, "TESSERA_PROGRESS {\"step\":%lld,\"total\":%lld}\n", static_cast<long long>(done),
                       static_cast<long long>(std::max(done, request.progress_total)));
          return;
        }
        printer.Update(done, total);
      },
      &report);
  if (!status.ok()) {
    LogError("video_failed").Field("input", request.video.input).Field("error", status.ToString());
    return 1;
  }
  LogInfo("video_done")
      .Field("output", request.video.output)
      .Field("engine", report.engine)
      .Field("device", device->Name())
      .Field("frames", report.frames)
      .Field("seconds", report.seconds)
      .Field("fps", report.seconds > 0 ? static_cast<double>(report.frames) / report.seconds : 0.0)
      .Field("model_seconds", report.upscale_seconds);
  return 0;
}

}  // namespace tessera::cli
