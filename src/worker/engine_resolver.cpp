#include "worker/engine_resolver.h"

#include "engine/lanczos_upscaler.h"

namespace tessera::worker {

Result<std::unique_ptr<engine::Upscaler>> ResolveUpscaler(protocol::Engine engine, std::string_view quality,
                                                          const WorkerOptions& options) {
  switch (engine) {
    case protocol::Engine::kLanczos: {
      std::string_view text = quality.empty() ? std::string_view(options.scale) : quality;
      Result<double> factor = engine::LanczosUpscaler::ParseFactor(text);
      if (!factor.ok()) return factor.status();
      return std::unique_ptr<engine::Upscaler>(std::make_unique<engine::LanczosUpscaler>(*factor));
    }
    case protocol::Engine::kRealEsrgan:
    case protocol::Engine::kRealCugan:
    case protocol::Engine::kWaifu2x:
      return Status(StatusCode::kUnsupported, "engine " + std::string(protocol::EngineName(engine)) +
                                                  " is not in this build yet; use engine 4 (lanczos)");
  }
  return InvalidError("unknown engine");
}

}  // namespace tessera::worker
