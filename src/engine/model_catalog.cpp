#include "engine/model_catalog.h"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

namespace tessera::engine {

std::string DefaultModelDir() {
  if (const char* dir = std::getenv("TESSERA_MODEL_DIR"); dir != nullptr && *dir != '\0') return dir;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.cache/tessera/models";
}

const char* ModelFamilyName(ModelFamily family) {
  switch (family) {
    case ModelFamily::kRealEsrgan: return "realesrgan";
    case ModelFamily::kRealCugan: return "realcugan";
    case ModelFamily::kWaifu2xCunet: return "waifu2x-cunet";
  }
  return "unknown";
}

Result<std::vector<ModelEntry>> ReadManifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  std::ifstream in(path);
  if (!in) return Status(StatusCode::kNotFound, "no model manifest at " + path + "; run scripts/fetch-models");
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("models") || !doc["models"].is_array()) {
    return InvalidError(path + " is not a model manifest; re-run scripts/fetch-models --force");
  }
  std::vector<ModelEntry> entries;
  for (const auto& m : doc["models"]) {
    ModelEntry e;
    if (!m.is_object() || !m.contains("name") || !m["name"].is_string() || !m.contains("family") ||
        !m["family"].is_string() || !m.contains("scale") || !m["scale"].is_number_integer()) {
      return InvalidError(path + ": a model entry lacks name, family or scale");
    }
    e.name = m["name"].get<std::string>();
    const std::string family = m["family"].get<std::string>();
    if (family == "realesrgan") {
      e.family = ModelFamily::kRealEsrgan;
    } else if (family == "realcugan") {
      e.family = ModelFamily::kRealCugan;
    } else if (family == "waifu2x-cunet") {
      e.family = ModelFamily::kWaifu2xCunet;
    } else {
      return InvalidError(path + ": model '" + e.name + "' has unknown family '" + family + "'");
    }
    e.scale = m["scale"].get<int>();
    e.noise = m.value("noise", -1);
    entries.push_back(std::move(e));
  }
  return entries;
}

}  // namespace tessera::engine
