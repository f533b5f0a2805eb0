// Turns a request's gpu_id into the device that will run it (engine/device.h's
// one rule: -1 is "cpu", N is "cuda:N"), or takes a device the user named,
// applying the fallback policy: an unavailable GPU means CPU (logged) or
// DEVICE_UNAVAILABLE.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/device.h"
#include "util/status.h"

namespace tessera::worker {

struct DeviceChoice {
  engine::Device device;   // the device that runs
  bool fell_back = false;  // a GPU was asked for and the CPU runs instead
  std::string Name() const { return device.Name(); }
};

class DeviceSelector {
 public:
  explicit DeviceSelector(bool gpu_fallback);

  Result<DeviceChoice> Select(int32_t requested_gpu_id) const;
  // A device the user named (WorkerOptions::device), under the same fallback
  // policy: unusable here means the CPU (logged) or DEVICE_UNAVAILABLE.
  Result<DeviceChoice> SelectNamed(const engine::Device& device) const;
  // The named device when there is one (it wins over the request's gpu_id), else gpu_id's.
  Result<DeviceChoice> Select(const std::optional<engine::Device>& named, int32_t requested_gpu_id) const {
    return named ? SelectNamed(*named) : Select(requested_gpu_id);
  }

  // CUDA GPUs this build and machine can drive (engine/backend_registry.h).
  int usable_gpu_count() const { return usable_gpu_count_; }

 private:
  // The fallback policy for `device`, of which `usable` exist here; `what`
  // names it in a refusal, `advice` follows.
  Result<DeviceChoice> Choose(const engine::Device& device, int usable, const std::string& what,
                              const std::string& advice) const;

  bool gpu_fallback_;
  int usable_gpu_count_ = 0;
};

}  // namespace tessera::worker
