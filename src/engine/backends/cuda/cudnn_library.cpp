#include "engine/backends/cuda/cudnn_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string_view>

namespace tessera::engine::cuda {
namespace {

struct Loaded {
  CudnnLibrary library;
  bool ok = false;
  std::string why;
};

Loaded Load() {
  Loaded loaded;
  const char* setting = std::getenv("TESSERA_CUDNN");
  if (setting != nullptr && std::string_view(setting) == "off") {
    loaded.why = "cuDNN disabled by TESSERA_CUDNN=off";
    return loaded;
  }
  void* handle = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = dlerror();
    loaded.why = std::string("cuDNN 9 not found (libcudnn.so.9): ") + (error != nullptr ? error : "unknown");
    return loaded;
  }
  CudnnLibrary& lib = loaded.library;
#define TESSERA_CUDNN_RESOLVE(name)                                                   \
  lib.name = reinterpret_cast<decltype(lib.name)>(dlsym(handle, #name));              \
  if (lib.name == nullptr) {                                                          \
    loaded.why = "libcudnn.so.9 has no " #name;                                       \
    return loaded;                                                                    \
  }
  TESSERA_CUDNN_FUNCTIONS(TESSERA_CUDNN_RESOLVE)
#undef TESSERA_CUDNN_RESOLVE
  lib.version = lib.cudnnGetVersion();
  if (lib.version / 10000 != 9) {
    loaded.why = "cuDNN " + CudnnVersionText(lib.version) + " found; this build needs cuDNN 9";
    return loaded;
  }
  loaded.ok = true;
  // The handle stays open for the life of the process: ops hold its functions.
  return loaded;
}

}  // namespace

const CudnnLibrary* LoadCudnn(std::string* why) {
  static const Loaded loaded = Load();
  if (why != nullptr) *why = loaded.why;
  return loaded.ok ? &loaded.library : nullptr;
}

std::string CudnnVersionText(size_t version) {
  return std::to_string(version / 10000) + "." + std::to_string(version % 10000 / 100) + "." +
         std::to_string(version % 100);
}

}  // namespace tessera::engine::cuda
