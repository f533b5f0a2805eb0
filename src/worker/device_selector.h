// Turns a request's gpu_id into the device that will run it, applying the
// fallback policy: an unavailable GPU means CPU (logged) or DEVICE_UNAVAILABLE.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace tessera::worker {

struct DeviceChoice {
  int gpu_id = -1;         // the device that runs: -1 = CPU
  bool fell_back = false;  // a GPU was asked for and the CPU runs instead
  std::string Name() const { return gpu_id < 0 ? "cpu" : "cuda:" + std::to_string(gpu_id); }
};

class DeviceSelector {
 public:
  explicit DeviceSelector(bool gpu_fallback);

  Result<DeviceChoice> Select(int32_t requested_gpu_id) const;

  // GPUs this build can drive. Zero until the CUDA backend lands.
  int usable_gpu_count() const { return usable_gpu_count_; }

 private:
  bool gpu_fallback_;
  int usable_gpu_count_ = 0;
};

}  // namespace tessera::worker
