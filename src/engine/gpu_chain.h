// Which device an integer gpu_id names, and seed 000's fallback order when it
// cannot run there: "GPU → iGPU → CPU".
//
// The worker protocol carries a gpu_id (i32), not a device name, and the
// server's lanes hand one to their worker. The GPUs it numbers are the real
// ones of the machine, in this order:
//   1. CUDA devices, cuda:0 .. cuda:n-1 (NVIDIA, through the CUDA backend);
//   2. Vulkan discrete GPUs, then virtual GPUs (a VM's passed-through or
//      paravirtual GPU), then integrated GPUs, each in the loader's order;
//      NVIDIA's Vulkan devices are left out when CUDA numbers GPUs (they are
//      the same cards).
// A CPU-type Vulkan device (llvmpipe, SwiftShader) is never numbered: it is far
// slower than the CPU backend and runs only when named (--device vulkan:N).
//
// A request for gpu_id N tries, in order: the GPU numbered N (when there is
// one), then the first integrated GPU not tried yet, then the CPU. The caller
// moves along the chain when a device is absent or cannot be opened, with a
// log line at each step; --no-gpu-fallback stops at the first.
//
// Pure functions over a description of the machine (GpuInventory), so that the
// rule is tested on machines we do not have; engine/backend_registry.h's
// MachineGpus() describes this one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/device.h"

namespace tessera::engine {

enum class GpuClass { kDiscrete, kIntegrated, kVirtual, kSoftware, kOther };
std::string_view GpuClassName(GpuClass cls);  // "discrete", "integrated", "virtual", "software", "other"

struct GpuEntry {
  Device device;
  GpuClass cls = GpuClass::kDiscrete;
  uint32_t vendor_id = 0;  // PCI vendor: 0x10DE NVIDIA, 0x1002 AMD, 0x8086 Intel
  std::string name;
};

struct GpuInventory {
  std::vector<GpuEntry> cuda;    // cuda:0 .. in order
  std::vector<GpuEntry> vulkan;  // every device the Vulkan loader reports, in its order
};

inline constexpr uint32_t kNvidiaVendorId = 0x10DE;

// The GPUs gpu_id 0, 1, ... name, by the rule above.
std::vector<GpuEntry> NumberedGpus(const GpuInventory& inventory);

// The devices a request for `gpu_id` tries, in order; the last is always the
// CPU. A negative gpu_id is the CPU alone.
std::vector<Device> FallbackChain(const GpuInventory& inventory, int gpu_id);

}  // namespace tessera::engine
