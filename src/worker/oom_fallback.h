// Seed 002's last step: a GPU run still out of memory after the planner's
// shrink-and-retry runs the whole image again on the CPU (logged), unless
// --no-gpu-fallback. So does a GPU lost in the middle of a run (a driver
// reset, VK_ERROR_DEVICE_LOST: kDeviceUnavailable), seed 000's "GPU → CPU"
// at run time: the request is answered, not failed. The image is rerun from
// the start, so its bytes are exactly the CPU run's, never a mix of GPU and
// CPU tiles.
#pragma once

#include <functional>
#include <memory>

#include "engine/device.h"
#include "engine/upscaler.h"
#include "util/deadline.h"
#include "util/status.h"

namespace tessera::worker {

// The CPU's upscaler for the same model, resolved only when needed.
using CpuUpscalerFn = std::function<Result<std::shared_ptr<const engine::Upscaler>>()>;

struct OomFallbackRun {
  Result<imaging::Image> image = Status::Ok();
  bool reran_on_cpu = false;
};

OomFallbackRun RunWithOomFallback(const engine::Upscaler& upscaler, const engine::Device& device,
                                  bool gpu_fallback_allowed, const CpuUpscalerFn& cpu_upscaler,
                                  const imaging::Image& input, const Deadline& deadline,
                                  const engine::ProgressFn& progress);

}  // namespace tessera::worker
