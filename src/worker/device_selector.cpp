#include "worker/device_selector.h"

#include <mutex>

#include "engine/backend_registry.h"
#include "util/log.h"

namespace tessera::worker {

DeviceSelector::DeviceSelector(bool gpu_fallback)
    : gpu_fallback_(gpu_fallback), usable_gpu_count_(engine::UsableDeviceCount(engine::Device::Kind::kCuda)) {}

Result<DeviceChoice> DeviceSelector::Select(int32_t requested_gpu_id) const {
  DeviceChoice choice;
  choice.device = engine::DeviceForGpuId(requested_gpu_id);
  if (choice.device.is_cpu()) return choice;
  if (requested_gpu_id < usable_gpu_count_) return choice;
  const std::string why = usable_gpu_count_ == 0 ? engine::DeviceUnavailableReason(engine::Device::Kind::kCuda)
                                                 : std::to_string(usable_gpu_count_) + " GPU(s) usable";
  if (gpu_fallback_) {
    // Once per process and device: a worker serving many requests logs it once.
    static std::once_flag logged;
    std::call_once(logged, [&] {
      LogWarn("gpu_fallback").Field("requested", choice.device.Name()).Field("runs_on", "cpu").Field("reason", why);
    });
    choice.device = engine::Device::Cpu();
    choice.fell_back = true;
    return choice;
  }
  return Status(StatusCode::kDeviceUnavailable,
                "gpu " + std::to_string(requested_gpu_id) + " (" + choice.device.Name() + ") is not available (" + why +
                    "); send gpu_id -1 for CPU, or run the worker without --no-gpu-fallback");
}

Result<DeviceChoice> DeviceSelector::SelectNamed(const engine::Device& device) const {
  DeviceChoice choice;
  choice.device = device;
  if (device.is_cpu()) return choice;
  const int usable = engine::UsableDeviceCount(device.kind);
  if (device.index < usable) return choice;
  const std::string why = usable == 0 ? engine::DeviceUnavailableReason(device.kind)
                                      : std::to_string(usable) + " such device(s) usable";
  if (gpu_fallback_) {
    static std::once_flag logged;
    std::call_once(logged, [&] {
      LogWarn("gpu_fallback").Field("requested", device.Name()).Field("runs_on", "cpu").Field("reason", why);
    });
    choice.device = engine::Device::Cpu();
    choice.fell_back = true;
    return choice;
  }
  return Status(StatusCode::kDeviceUnavailable, device.Name() + " is not available (" + why + ")");
}

}  // namespace tessera::worker
