#include "worker/device_selector.h"

#include <mutex>

#include "engine/backend_registry.h"
#include "util/log.h"

namespace tessera::worker {

DeviceSelector::DeviceSelector(bool gpu_fallback)
    : gpu_fallback_(gpu_fallback), usable_gpu_count_(engine::UsableDeviceCount(engine::Device::Kind::kCuda)) {}

Result<DeviceChoice> DeviceSelector::Select(int32_t requested_gpu_id) const {
  const engine::Device device = engine::DeviceForGpuId(requested_gpu_id);
  return Choose(device, usable_gpu_count_, "gpu " + std::to_string(requested_gpu_id) + " (" + device.Name() + ")",
                "; send gpu_id -1 for CPU, or run the worker without --no-gpu-fallback");
}

Result<DeviceChoice> DeviceSelector::SelectNamed(const engine::Device& device) const {
  return Choose(device, device.is_cpu() ? 1 : engine::UsableDeviceCount(device.kind), device.Name(), "");
}

Result<DeviceChoice> DeviceSelector::Choose(const engine::Device& device, int usable, const std::string& what,
                                            const std::string& advice) const {
  DeviceChoice choice;
  choice.device = device;
  if (device.is_cpu() || device.index < usable) return choice;
  const std::string why =
      usable == 0 ? engine::DeviceUnavailableReason(device.kind) : std::to_string(usable) + " GPU(s) usable";
  if (gpu_fallback_) {
    // Once per process: a worker serving many requests logs it once.
    static std::once_flag logged;
    std::call_once(logged, [&] {
      LogWarn("gpu_fallback").Field("requested", device.Name()).Field("runs_on", "cpu").Field("reason", why);
    });
    choice.device = engine::Device::Cpu();
    choice.fell_back = true;
    return choice;
  }
  return Status(StatusCode::kDeviceUnavailable, what + " is not available (" + why + ")" + advice);
}

}  // namespace tessera::worker
