#include "worker/engine_resolver.h"

#include <algorithm>
#include <chrono>

#include "engine/lanczos_upscaler.h"
#include "engine/buffer_pool.h"
#include "runtime/plan_cache.h"
#include "runtime/plan_choices.h"
#include "util/process_memory.h"
#include "util/byte_size.h"
#include "util/deadline.h"
#include "util/log.h"

namespace tessera::worker {
engine::ModelFamily FamilyForEngine(protocol::Engine engine) {
  switch (engine) {
    case protocol::Engine::kRealCugan: return engine::ModelFamily::kRealCugan;
    case protocol::Engine::kWaifu2x: return engine::ModelFamily::kWaifu2xCunet;
    default: return engine::ModelFamily::kRealEsrgan;
  }
}

protocol::Engine EngineForFamily(engine::ModelFamily family) {
  switch (family) {
    case engine::ModelFamily::kRealCugan: return protocol::Engine::kRealCugan;
    case engine::ModelFamily::kWaifu2xCunet: return protocol::Engine::kWaifu2x;
    case engine::ModelFamily::kRealEsrgan: return protocol::Engine::kRealEsrgan;
  }
  return protocol::Engine::kRealEsrgan;
}

std::string DefaultModelFor(protocol::Engine engine, int scale) {
  switch (engine) {
    case protocol::Engine::kRealEsrgan:
      return scale == 2 ? "realesr-animevideov3-x2" : scale == 3 ? "realesr-animevideov3-x3"
                                                  : scale == 4 ? "realesr-animevideov3-x4" : "";
    case protocol::Engine::kRealCugan:
      return scale >= 2 && scale <= 4 ? "up" + std::to_string(scale) + "x-conservative" : "";
    case protocol::Engine::kWaifu2x:
      return scale == 1 ? "cunet-noise0" : scale == 2 ? "cunet-noise0-x2" : "";
    case protocol::Engine::kLanczos:
      return "";
  }
  return "";
}

EngineResolver::EngineResolver(const WorkerOptions& options)
    : options_(options),
      memory_budget_(options.limits.ram_budget_bytes > 0
                         ? std::make_shared<engine::MemoryBudget>(options.limits.ram_budget_bytes)
                         : nullptr),
      cache_(runtime::ModelCacheLimits{options.max_loaded_models, options.max_loaded_model_bytes}) {
  if (!options_.warmup.empty()) {
    if (options_.warmup.size() > cache_.limits().max_models) {
      LogWarn("warmup")
          .Field("detail", "more models to warm up than --max-loaded-models; the first ones will be evicted")
          .Field("models", static_cast<uint64_t>(options_.warmup.size()))
          .Field("max_loaded_models", static_cast<uint64_t>(cache_.limits().max_models));
    }
    warmup_ = std::jthread([this](std::stop_token stop) { Warmup(stop); });
  }
}

EngineResolver::~EngineResolver() = default;

engine::MemoryPlanOptions EngineResolver::MemoryPlan(const engine::Backend& backend) const {
  engine::MemoryPlanOptions plan;
  plan.safe_mode = options_.safe_mode;
  plan.max_chunk_bytes = options_.max_chunk_bytes;
  plan.oom_retries = options_.oom_retries;
  if (!backend.HostMemory()) {
    // A device's own memory, bounded by --vram-budget when one is set.
    plan.probe = [&backend, limit = options_.backend.vram_budget_bytes]() -> std::optional<uint64_t> {
      const engine::BackendMemory memory = backend.ProbeMemory();
      if (!memory.known) return std::nullopt;
      return limit > 0 ? std::min(memory.free_bytes, limit) : memory.free_bytes;
    };
    return plan;
  }
  // Free for a chunk: what the machine has (MemAvailable within the cgroup), and
  // never more than is left of --ram-budget.
  plan.probe = [budget = memory_budget_]() -> std::optional<uint64_t> {
    std::optional<uint64_t> machine = AvailableMemoryBytes();
    if (!budget) return machine;
    return machine ? std::min(*machine, budget->available()) : budget->available();
  };
  return plan;
}

void EngineResolver::Warmup(std::stop_token stop) {
  const auto all_started = std::chrono::steady_clock::now();
  uint64_t ready = 0, failed = 0;
  for (const std::string& name : options_.warmup) {
    if (stop.stop_requested()) break;
    LogInfo("warmup").Field("model", name).Field("stage", "loading");
    const auto started = std::chrono::steady_clock::now();
    auto model = GetModel(name, std::nullopt, engine::Device::Cpu());
    Status prepared = model.ok() ? (*model)->WarmUp() : model.status();
    if (!prepared.ok()) {
      ++failed;
      LogWarn("warmup")
          .Field("model", name)
          .Field("stage", "failed")
          .Field("status", "failed")
          .Field("ms", MillisSince(started))
          .Field("error", prepared.message());
      continue;
    }
    ++ready;
    LogInfo("warmup")
        .Field("model", name)
        .Field("stage", "ready")
        .Field("ms", MillisSince(started))
        .Field("resident_mb", ToMiB((*model)->WeightBytes()));
  }
  LogInfo("warmup").Field("stage", "done").Field("ready", ready).Field("failed", failed).Field(
      "ms", MillisSince(all_started));
}

void EngineResolver::LogCacheStats() const {
  runtime::ModelCacheStats s = cache_.Stats();
  LogLine cache_line = LogInfo("model_cache");
  cache_line.Field("hits", s.hits)
      .Field("misses", s.misses)
      .Field("joined", s.joined)
      .Field("loads", s.loads)
      .Field("load_failures", s.load_failures)
      .Field("evictions", s.evictions)
      .Field("resident_mb", ToMiB(s.resident_bytes))
      .Field("entries", static_cast<uint64_t>(s.entries));
  // On a GPU machine: the device memory this worker's models and tiles hold
  // (the server's /lanes and /metrics show it per lane).
  // The GPUs this worker has loaded models on (no probing of the machine's).
  std::vector<engine::Device> gpus;
  {
    std::lock_guard lock(gpus_used_mutex_);
    gpus = gpus_used_;
  }
  if (!gpus.empty()) {
    uint64_t held = 0;
    for (const engine::Device& gpu : gpus) held += engine::DeviceBytesHeld(gpu);
    cache_line.Field("vram_mb", ToMiB(held));
  }
  engine::BufferPoolStats pool = engine::ActivationPool().Stats();
  LogInfo("buffer_pool")
      .Field("hits", pool.hits)
      .Field("misses", pool.misses)
      .Field("returned", pool.returned)
      .Field("cached_mb", ToMiB(pool.cached_bytes))
      .Field("in_use_mb", ToMiB(pool.in_use_bytes));
}

Result<std::shared_ptr<const engine::Upscaler>> EngineResolver::Resolve(protocol::Engine engine,
                                                                        std::string_view quality,
                                                                        const engine::Device& device) {
  if (engine == protocol::Engine::kLanczos) {
    std::string_view text = quality.empty() ? std::string_view(options_.scale) : quality;
    Result<double> factor = engine::LanczosUpscaler::ParseFactor(text);
    if (!factor.ok()) return factor.status();
    if (options_.cache_stats) LogCacheStats();
    return std::shared_ptr<const engine::Upscaler>(std::make_shared<engine::LanczosUpscaler>(*factor));
  }
  auto resolved = ResolveModel(engine, quality, device);
  if (options_.cache_stats) LogCacheStats();
  return resolved;
}

Result<std::shared_ptr<const engine::Upscaler>> EngineResolver::ResolveModel(protocol::Engine engine,
                                                                             std::string_view quality,
                                                                             const engine::Device& device) {
  std::string name(quality.empty() ? std::string_view(options_.model_name) : quality);
  const std::string engine_name(protocol::EngineName(engine));
  if (name.empty()) name = options_.scale;
  // A scale ("x2", "4") picks the family's default model for it.
  std::string_view digits = name;
  if (!digits.empty() && (digits.front() == 'x' || digits.front() == 'X')) digits.remove_prefix(1);
  if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos && digits.size() <= 2) {
    const int scale = std::stoi(std::string(digits));
    std::string model = DefaultModelFor(engine, scale);
    if (model.empty()) return InvalidError(engine_name + " has no model for scale " + std::string(digits));
    name = model;
  }
  auto model = GetModel(name, FamilyForEngine(engine), device);
  if (!model.ok()) return model.status();
  return std::shared_ptr<const engine::Upscaler>(std::move(model).value());
}

Result<engine::ModelEntry> EngineResolver::FindModel(const std::string& name,
                                                     std::optional<engine::ModelFamily> family) const {
  Result<std::vector<engine::ModelEntry>> manifest = engine::ReadManifest(options_.model_dir);
  if (!manifest.ok()) return manifest.status();
  const engine::ModelEntry* entry = nullptr;
  for (const auto& e : *manifest) {
    if (e.name == name) entry = &e;
  }
  if (entry == nullptr) {
    return InvalidError("unknown model '" + name + "'; the installed models are listed in " + options_.model_dir +
                        "/manifest.json (see README)");
  }
  if (family && entry->family != *family) {
    return InvalidError("model '" + name + "' is a " + engine::ModelFamilyName(entry->family) +
                        " model, not for engine " + std::string(protocol::EngineName(EngineForFamily(*family))));
  }
  return *entry;
}

void EngineResolver::PrepareOnDevice(engine::ModelUpscaler& model, const runtime::PlanCache& plans,
                                     const Sha256Digest& key) const {
  // On a device, what the backend chooses per layer (cuDNN algorithms) is kept
  // beside the plan: given back here, made by one warm-up tile when missing
  // (which also uploads the weights before the first request), then stored.
  std::optional<std::vector<std::string>> restored = runtime::ReadChoices(plans, key);
  if (restored) model.RestoreChoices(*restored);
  const auto started = std::chrono::steady_clock::now();
  Status warm = model.WarmUp();
  if (!warm.ok()) {
    // The first request meets the same failure with its own context.
    LogWarn("device_warmup").Field("model", model.entry().name).Field("error", warm.message());
    return;
  }
  std::vector<std::string> chosen = model.SavedChoices();
  const bool any = std::any_of(chosen.begin(), chosen.end(), [](const std::string& c) { return !c.empty(); });
  LogInfo("device_warmup")
      .Field("model", model.entry().name)
      .Field("ms", MillisSince(started))
      .Field("choices", restored ? "restored" : any ? "made" : "none");
  if (any && (!restored || *restored != chosen)) {
    Status written = runtime::WriteChoices(plans, key, chosen);
    if (!written.ok()) LogWarn("plan_choices").Field("status", "write_failed").Field("error", written.message());
  }
}

Result<std::shared_ptr<const engine::ModelUpscaler>> EngineResolver::GetModel(
    const std::string& name, std::optional<engine::ModelFamily> family, const engine::Device& device) {
  // Unknown names and wrong families are refused before they count as misses.
  std::optional<engine::ModelEntry> entry;
  const std::string key = name + "@" + device.Name();
  if (!cache_.Contains(key)) {
    Result<engine::ModelEntry> found = FindModel(name, family);
    if (!found.ok()) return found.status();
    entry = std::move(found).value();
  }
  auto model = cache_.GetOrLoad(key, [&]() -> Result<Cache::Loaded> {
    if (!entry) {  // evicted between the check and the load
      Result<engine::ModelEntry> found = FindModel(name, family);
      if (!found.ok()) return found.status();
      entry = std::move(found).value();
    }
    auto started = std::chrono::steady_clock::now();
    engine::BackendOptions backend_options = options_.backend;
    // A GPU's compiled pipelines (Vulkan's VkPipelineCache) beside the plans.
    if (options_.plan_cache) backend_options.pipeline_cache_dir = options_.cache_dir;
    Result<engine::BackendSet> backends = engine::BackendsFor(device, backend_options);
    if (!backends.ok()) return backends.status();
    if (!device.is_cpu()) {
      std::lock_guard lock(gpus_used_mutex_);
      if (std::find(gpus_used_.begin(), gpus_used_.end(), device) == gpus_used_.end()) gpus_used_.push_back(device);
    }
    const engine::Backend& backend = *backends->backend;
    std::shared_ptr<const engine::ModelUpscaler> shared;
    if (options_.plan_cache && !options_.cache_dir.empty()) {
      const int tile = engine::ModelUpscaler::ResolvedTileSize(options_.tile_size);
      const runtime::PlanCache plans(options_.cache_dir);
      Sha256Digest key{};
      auto model = runtime::LoadModelWithPlanCache(plans, options_.model_dir, entry->name, tile,
                                                   runtime::PlanTargetFor(backend), &key);
      if (!model.ok()) return model.status();
      auto made = engine::ModelUpscaler::FromModel(*entry, std::move(model).value(), tile, *backends);
      made->SetMemoryPlan(MemoryPlan(backend), memory_budget_);
      if (made->OnDevice()) PrepareOnDevice(*made, plans, key);
      shared = std::move(made);
    } else {
      auto loaded = engine::ModelUpscaler::Load(options_.model_dir, *entry, options_.tile_size, *backends);
      if (!loaded.ok()) return loaded.status();
      (*loaded)->SetMemoryPlan(MemoryPlan(backend), memory_budget_);
      shared = std::move(loaded).value();
    }
    LogInfo("model_loaded")
        .Field("model", name)
        .Field("device", device.Name())
        .Field("ms", MillisSince(started))
        .Field("resident_mb", ToMiB(shared->WeightBytes()));
    return Cache::Loaded{shared, shared->WeightBytes()};
  });
  if (!model.ok()) return model.status();
  const engine::ModelFamily got = (*model)->entry().family;
  if (family && got != *family) {
    return InvalidError("model '" + name + "' is a " + engine::ModelFamilyName(got) + " model, not for engine " +
                        std::string(protocol::EngineName(EngineForFamily(*family))));
  }
  return model;
}

}  // namespace tessera::worker
