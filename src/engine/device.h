// Devices as users name them: "cpu", "cuda:N", "vulkan:N" — in --device, lane
// names, logs and `tessera devices`. The worker protocol's integer gpu_id maps
// to them by engine/gpu_chain.h's rule.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace tessera::engine {

struct Device {
  enum class Kind { kCpu, kCuda, kVulkan };
  Kind kind = Kind::kCpu;
  int index = 0;  // 0 for the CPU

  static Device Cpu() { return {}; }
  static Device Cuda(int index) { return {Kind::kCuda, index}; }
  static Device Vulkan(int index) { return {Kind::kVulkan, index}; }

  bool is_cpu() const { return kind == Kind::kCpu; }
  // "cpu", "cuda:0", "vulkan:1".
  std::string Name() const;
  bool operator==(const Device&) const = default;
};

// Parses a device name: "cpu", "cuda:N", "vulkan:N" ("cuda" and "vulkan" alone
// mean index 0). kInvalid with the accepted forms otherwise.
Result<Device> ParseDevice(std::string_view name);

}  // namespace tessera::engine
