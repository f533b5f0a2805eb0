// `tessera upscale` on a video: the engine is resolved as for images
// (worker::EngineResolver, the same devices and fallbacks), then the video runs
// through video::UpscaleVideo with a progress line on stderr.
#pragma once

#include <cstdint>
#include <string>

#include "protocol/wire_format.h"
#include "video/video_upscale_pipeline.h"
#include "worker/worker_options.h"

namespace tessera::cli {

struct VideoUpscaleRequest {
  worker::WorkerOptions worker;  // model folder, tile size, threads, backend flags
  protocol::Engine engine = protocol::Engine::kRealEsrgan;
  std::string quality;  // model name or scale, as for images
  int gpu_id = -1;
  video::VideoUpscaleOptions video;
  // > 0: a line `TESSERA_PROGRESS {"step":N,"total":progress_total}` on stderr
  // after each frame (tier A of jobs/progress_parser.h), for the server.
  int64_t progress_total = 0;
};

// Exit code: 0 done, 1 the video failed (message logged), 2 setup errors.
int RunVideoUpscale(VideoUpscaleRequest request);

}  // namespace tessera::cli
