// Picks the Upscaler for a request, and keeps loaded models for the next one.
// Priority, documented in docs/worker.md:
//   1. the request's quality string, when not empty: a model name
//      ("realesr-animevideov3-x2") or, for every engine, a scale ("x2", "4");
//   2. otherwise the worker's --model-name (engines 1-3) or --scale.
// A scale given to a model engine picks that family's default model for it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "engine/model_upscaler.h"
#include "engine/upscaler.h"
#include "protocol/wire_format.h"
#include "worker/worker_options.h"

namespace tessera::worker {

// The engine that runs a model family, and back.
protocol::Engine EngineForFamily(engine::ModelFamily family);
engine::ModelFamily FamilyForEngine(protocol::Engine engine);

// The family's model for a scale, e.g. (realcugan, 2) -> "up2x-conservative";
// empty when the family has none at that scale.
std::string DefaultModelFor(protocol::Engine engine, int scale);

class EngineResolver {
 public:
  explicit EngineResolver(const WorkerOptions& options) : options_(options) {}

  Result<std::shared_ptr<const engine::Upscaler>> Resolve(protocol::Engine engine, std::string_view quality);

 private:
  Result<std::shared_ptr<const engine::Upscaler>> ResolveModel(protocol::Engine engine, std::string_view quality);

  const WorkerOptions& options_;
  std::map<std::string, std::shared_ptr<const engine::ModelUpscaler>> loaded_;  // by model name
};

}  // namespace tessera::worker
