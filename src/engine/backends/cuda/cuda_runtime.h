// The CUDA runtime as the backend uses it: whether this machine can run CUDA at
// all (cudart is linked statically and finds the driver at run time, so the
// binary starts everywhere), device properties for fingerprints and logs, CUDA
// errors as Status values (an allocation failure is kOutOfMemory, which drives
// the planner's shrink and retry), and device memory behind the engine's
// DeviceMemoryApi (engine/gpu/device_memory.h).
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "engine/gpu/device_memory.h"
#include "util/status.h"

namespace tessera::engine::cuda {

struct CudaAvailability {
  int device_count = 0;
  std::string reason;  // why there is none (no driver, driver too old, no device)
};
// Asked once per process.
const CudaAvailability& Availability();

// kOutOfMemory for allocation failures, kDeviceUnavailable for a missing or
// lost device, kInternal otherwise; the message names `what` and CUDA's words.
Status CudaStatus(cudaError_t error, const std::string& what);
// Ok, or the error of the last launch on this thread.
Status LastLaunchStatus(const std::string& what);

struct CudaDeviceProperties {
  std::string name;
  int major = 0, minor = 0;  // compute capability
  uint64_t total_bytes = 0;
  int driver_version = 0;   // e.g. 13000
  int runtime_version = 0;  // cudart this binary carries
};
Result<CudaDeviceProperties> DeviceProperties(int index);

// cudaMalloc / cudaFree / cudaMemGetInfo on one device.
class CudaDeviceMemory : public gpu::DeviceMemoryApi {
 public:
  explicit CudaDeviceMemory(int device_index) : device_index_(device_index) {}
  Result<void*> Allocate(uint64_t bytes) override;
  void Free(void* pointer) override;
  Result<gpu::DeviceMemoryInfo> Info() const override;

 private:
  int device_index_;
};

}  // namespace tessera::engine::cuda
