// Picks the Upscaler for a request, and keeps loaded models for the next one.
// Priority, documented in docs/worker.md:
//   1. the request's quality string, when not empty: a model name
//      ("realesr-animevideov3-x2") or, for every engine, a scale ("x2", "4");
//   2. otherwise the worker's --model-name (engines 1-3) or --scale.
// A scale given to a model engine picks that family's default model for it.
// Loaded models live in a runtime::ModelCache bounded by --max-loaded-models and
// --max-loaded-model-mb; --warmup names models loaded by a background thread from
// construction on (a request for one of them waits for that load, never repeats it).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/model_upscaler.h"
#include "engine/upscaler.h"
#include "protocol/wire_format.h"
#include "runtime/model_cache.h"
#include "runtime/plan_cache.h"
#include "worker/worker_options.h"

namespace tessera::worker {

// The engine that runs a model family, and back.
protocol::Engine EngineForFamily(engine::ModelFamily family);
engine::ModelFamily FamilyForEngine(protocol::Engine engine);

// The family's model for a scale, e.g. (realcugan, 2) -> "up2x-conservative";
// empty when the family has none at that scale.
std::string DefaultModelFor(protocol::Engine engine, int scale);

// Thread-safe: Resolve may be called from several threads, and runs alongside the
// warm-up thread. `options` must outlive the resolver. Destruction stops the
// warm-up after the model it is loading.
class EngineResolver {
 public:
  explicit EngineResolver(const WorkerOptions& options);
  ~EngineResolver();
  EngineResolver(const EngineResolver&) = delete;
  EngineResolver& operator=(const EngineResolver&) = delete;

  // The upscaler for a request, on `device` (models are loaded and cached per
  // device: "name@cpu", "name@cuda:0"). With options.cache_stats, logs one
  // model_cache line per call.
  Result<std::shared_ptr<const engine::Upscaler>> Resolve(protocol::Engine engine, std::string_view quality,
                                                          const engine::Device& device = engine::Device::Cpu());

  runtime::ModelCacheStats CacheStats() const { return cache_.Stats(); }

 private:
  using Cache = runtime::ModelCache<engine::ModelUpscaler>;

  Result<std::shared_ptr<const engine::Upscaler>> ResolveModel(protocol::Engine engine, std::string_view quality,
                                                               const engine::Device& device);
  // The named model on `device` from the cache, loaded on a miss; `family`, when given, must match.
  Result<std::shared_ptr<const engine::ModelUpscaler>> GetModel(const std::string& name,
                                                                std::optional<engine::ModelFamily> family,
                                                                const engine::Device& device);
  Result<engine::ModelEntry> FindModel(const std::string& name, std::optional<engine::ModelFamily> family) const;
  void LogCacheStats() const;
  void Warmup(std::stop_token stop);

  // Chunk sizing for every model this resolver loads (--safe-mode, --max-chunk-mb,
  // --oom-retries), with a probe bounded by what is left of --ram-budget.
  // On a GPU, the probe is the device's free memory (engine::Backend::ProbeMemory).
  engine::MemoryPlanOptions MemoryPlan(const engine::Backend& backend) const;
  // A model on a device, after its load: the backend's saved choices given
  // back, one warm-up tile, the choices stored (runtime/plan_choices.h).
  void PrepareOnDevice(engine::ModelUpscaler& model, const runtime::PlanCache& plans, const Sha256Digest& key) const;

  const WorkerOptions& options_;
  // --ram-budget as a live accountant: every chunk of tiles reserves from it.
  std::shared_ptr<engine::MemoryBudget> memory_budget_;
  Cache cache_;
  // GPUs a model was loaded on: whose memory the model_cache line reports (vram_mb).
  mutable std::mutex gpus_used_mutex_;
  std::vector<engine::Device> gpus_used_;
  std::jthread warmup_;  // last: stopped and joined before the cache goes away
};

}  // namespace tessera::worker
