// Picks the Upscaler for a request. Priority, documented in docs/worker.md:
//   1. the request's quality string, when not empty;
//   2. otherwise the worker's --model-name (engines 1-3) or --scale (lanczos).
#pragma once

#include <memory>
#include <string_view>

#include "engine/upscaler.h"
#include "protocol/wire_format.h"
#include "worker/worker_options.h"

namespace tessera::worker {

Result<std::unique_ptr<engine::Upscaler>> ResolveUpscaler(protocol::Engine engine, std::string_view quality,
                                                          const WorkerOptions& options);

}  // namespace tessera::worker
