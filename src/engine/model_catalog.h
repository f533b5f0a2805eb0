// The installed models: the directory scripts/fetch-models fills, and its
// manifest.json (name, family, scale, noise level per model).
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace tessera::engine {

enum class ModelFamily { kRealEsrgan, kRealCugan, kWaifu2xCunet };

struct ModelEntry {
  std::string name;  // what users type: -n realesr-animevideov3-x2
  ModelFamily family = ModelFamily::kRealEsrgan;
  int scale = 1;
  int noise = -1;  // -1: none
};

// $TESSERA_MODEL_DIR, else ~/.cache/tessera/models.
std::string DefaultModelDir();

// Reads <dir>/manifest.json. kNotFound with "run scripts/fetch-models" when absent.
Result<std::vector<ModelEntry>> ReadManifest(const std::string& dir);

const char* ModelFamilyName(ModelFamily family);

}  // namespace tessera::engine
