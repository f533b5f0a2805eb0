#include "worker/engine_resolver.h"

#include "engine/lanczos_upscaler.h"
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

Result<std::shared_ptr<const engine::Upscaler>> EngineResolver::Resolve(protocol::Engine engine,
                                                                        std::string_view quality) {
  if (engine == protocol::Engine::kLanczos) {
    std::string_view text = quality.empty() ? std::string_view(options_.scale) : quality;
    Result<double> factor = engine::LanczosUpscaler::ParseFactor(text);
    if (!factor.ok()) return factor.status();
    return std::shared_ptr<const engine::Upscaler>(std::make_shared<engine::LanczosUpscaler>(*factor));
  }
  return ResolveModel(engine, quality);
}

Result<std::shared_ptr<const engine::Upscaler>> EngineResolver::ResolveModel(protocol::Engine engine,
                                                                             std::string_view quality) {
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
  if (auto it = loaded_.find(name); it != loaded_.end()) return std::shared_ptr<const engine::Upscaler>(it->second);

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
  if (entry->family != FamilyForEngine(engine)) {
    return InvalidError("model '" + name + "' is a " + engine::ModelFamilyName(entry->family) +
                        " model, not for engine " + engine_name);
  }
  auto started = std::chrono::steady_clock::now();
  auto loaded = engine::ModelUpscaler::Load(options_.model_dir, *entry, options_.tile_size);
  if (!loaded.ok()) return loaded.status();
  LogInfo("model_loaded").Field("model", name).Field("ms", MillisSince(started));
  std::shared_ptr<const engine::ModelUpscaler> shared = std::move(loaded).value();
  loaded_[name] = shared;
  return std::shared_ptr<const engine::Upscaler>(shared);
}

}  // namespace tessera::worker
