#include "worker/device_selector.h"

namespace tessera::worker {

DeviceSelector::DeviceSelector(bool gpu_fallback) : gpu_fallback_(gpu_fallback) {}

Result<DeviceChoice> DeviceSelector::Select(int32_t requested_gpu_id) const {
  DeviceChoice choice;
  if (requested_gpu_id < 0) return choice;
  if (requested_gpu_id < usable_gpu_count_) {
    choice.gpu_id = requested_gpu_id;
    return choice;
  }
  if (gpu_fallback_) {
    choice.fell_back = true;
    return choice;
  }
  std::string why =
      usable_gpu_count_ == 0 ? "this build has no GPU backend" : std::to_string(usable_gpu_count_) + " GPU(s) usable";
  return Status(StatusCode::kDeviceUnavailable,
                "gpu " + std::to_string(requested_gpu_id) + " is not available (" + why +
                    "); send gpu_id -1 for CPU, or run the worker without --no-gpu-fallback");
}

}  // namespace tessera::worker
