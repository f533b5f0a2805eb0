// A GPU's memory as the engine's device backends see it: allocate, free and ask
// what is free. The CUDA backend implements it over cudaMalloc / cudaFree /
// cudaMemGetInfo; tests implement it with a fake that fails on demand, so the
// caching allocator, the chunk planner's sizing from free VRAM and the
// out-of-memory paths are tested on machines without a GPU.
#pragma once

#include <cstdint>

#include "util/status.h"

namespace tessera::engine::gpu {

struct DeviceMemoryInfo {
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
};

class DeviceMemoryApi {
 public:
  virtual ~DeviceMemoryApi() = default;
  // kOutOfMemory when the device has no room; other codes for a broken device.
  virtual Result<void*> Allocate(uint64_t bytes) = 0;
  virtual void Free(void* pointer) = 0;
  virtual Result<DeviceMemoryInfo> Info() const = 0;
};

}  // namespace tessera::engine::gpu
