#include "engine/gpu_chain.h"

#include <algorithm>

namespace tessera::engine {

std::string_view GpuClassName(GpuClass cls) {
  switch (cls) {
    case GpuClass::kDiscrete: return "discrete";
    case GpuClass::kIntegrated: return "integrated";
    case GpuClass::kVirtual: return "virtual";
    case GpuClass::kSoftware: return "software";
    case GpuClass::kOther: return "other";
  }
  return "other";
}

std::vector<GpuEntry> NumberedGpus(const GpuInventory& inventory) {
  std::vector<GpuEntry> gpus = inventory.cuda;
  const bool cuda_numbers_nvidia = !inventory.cuda.empty();
  // Discrete first: on a laptop the discrete GPU is the fast one, and gpu_id 0
  // is what a client that knows nothing of the machine sends.
  for (GpuClass cls : {GpuClass::kDiscrete, GpuClass::kVirtual, GpuClass::kIntegrated}) {
    for (const GpuEntry& gpu : inventory.vulkan) {
      if (gpu.cls != cls) continue;
      if (cuda_numbers_nvidia && gpu.vendor_id == kNvidiaVendorId) continue;
      gpus.push_back(gpu);
    }
  }
  return gpus;
}

std::vector<Device> FallbackChain(const GpuInventory& inventory, int gpu_id) {
  std::vector<Device> chain;
  if (gpu_id >= 0) {
    const std::vector<GpuEntry> gpus = NumberedGpus(inventory);
    if (static_cast<size_t>(gpu_id) < gpus.size()) chain.push_back(gpus[gpu_id].device);
    for (const GpuEntry& gpu : inventory.vulkan) {
      if (gpu.cls != GpuClass::kIntegrated) continue;
      if (std::find(chain.begin(), chain.end(), gpu.device) != chain.end()) continue;
      chain.push_back(gpu.device);
      break;  // one integrated GPU: the next step is the CPU
    }
  }
  chain.push_back(Device::Cpu());
  return chain;
}

}  // namespace tessera::engine
