// The Vulkan device the tests run on: Mesa's llvmpipe (a CPU-type device that
// `make test` installs with mesa-vulkan-drivers), found by type rather than by
// index so that a machine with a GPU as vulkan:0 tests the same device. A
// machine without it fails the tests: they are never skipped.
#pragma once

#include <gtest/gtest.h>

#include "engine/backend_registry.h"
#include "engine/backends/vulkan/vulkan_loader.h"

namespace tessera::engine::vulkan::test {

// The index of the first CPU-type device, else of the first device; -1 (with
// a test failure saying why) when there is none.
inline int TestDeviceIndex() {
  const VulkanAvailability& available = Availability();
  if (available.system == nullptr || available.system->devices.empty()) {
    ADD_FAILURE() << "no Vulkan device (scripts/setup installs mesa-vulkan-drivers): " << available.reason;
    return -1;
  }
  const auto& devices = available.system->devices;
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i].type == VK_PHYSICAL_DEVICE_TYPE_CPU) return static_cast<int>(i);
  }
  return 0;
}

inline Device TestDevice() { return Device::Vulkan(TestDeviceIndex()); }

}  // namespace tessera::engine::vulkan::test
