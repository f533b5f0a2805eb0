#include "engine/backends/cuda/cuda_runtime.h"

#include "util/log.h"

namespace tessera::engine::cuda {

const CudaAvailability& Availability() {
  static const CudaAvailability availability = [] {
    CudaAvailability a;
    int count = 0;
    const cudaError_t error = cudaGetDeviceCount(&count);
    if (error == cudaErrorInsufficientDriver) {
      int driver = 0;
      cudaDriverGetVersion(&driver);
      int runtime = 0;
      cudaRuntimeGetVersion(&runtime);
      a.reason = driver == 0 ? "no NVIDIA driver found (libcuda.so.1)"
                             : "the NVIDIA driver supports CUDA " + std::to_string(driver / 1000) + "." +
                                   std::to_string(driver % 1000 / 10) + "; this build needs CUDA " +
                                   std::to_string(runtime / 1000) + " (driver >= 580)";
    } else if (error == cudaErrorNoDevice || (error == cudaSuccess && count == 0)) {
      a.reason = "no CUDA device found";
    } else if (error != cudaSuccess) {
      a.reason = std::string("CUDA cannot start: ") + cudaGetErrorString(error);
    } else {
      a.device_count = count;
    }
    cudaGetLastError();  // a failed probe must not stick to later calls
    return a;
  }();
  return availability;
}

Status CudaStatus(cudaError_t error, const std::string& what) {
  if (error == cudaSuccess) return Status::Ok();
  const std::string text = what + ": " + cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")";
  switch (error) {
    case cudaErrorMemoryAllocation: return Status(StatusCode::kOutOfMemory, text);
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorDevicesUnavailable:
    case cudaErrorInvalidDevice: return Status(StatusCode::kDeviceUnavailable, text);
    default: return InternalError(text);
  }
}

Status LastLaunchStatus(const std::string& what) { return CudaStatus(cudaGetLastError(), what); }

Result<CudaDeviceProperties> DeviceProperties(int index) {
  if (index < 0 || index >= Availability().device_count) {
    return Status(StatusCode::kDeviceUnavailable,
                  "cuda:" + std::to_string(index) + " does not exist (" +
                      (Availability().device_count == 0 ? Availability().reason
                                                        : std::to_string(Availability().device_count) + " CUDA devices") +
                      ")");
  }
  cudaDeviceProp prop{};
  Status s = CudaStatus(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  if (!s.ok()) return s;
  CudaDeviceProperties p;
  p.name = prop.name;
  p.major = prop.major;
  p.minor = prop.minor;
  p.total_bytes = prop.totalGlobalMem;
  cudaDriverGetVersion(&p.driver_version);
  cudaRuntimeGetVersion(&p.runtime_version);
  return p;
}

Result<void*> CudaDeviceMemory::Allocate(uint64_t bytes) {
  Status s = CudaStatus(cudaSetDevice(device_index_), "cudaSetDevice");
  if (!s.ok()) return s;
  void* pointer = nullptr;
  const cudaError_t error = cudaMalloc(&pointer, bytes);
  if (error != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky; clear it for the next launch check
    return CudaStatus(error, "cudaMalloc of " + std::to_string(bytes) + " bytes");
  }
  return pointer;
}

void CudaDeviceMemory::Free(void* pointer) {
  cudaSetDevice(device_index_);
  const cudaError_t error = cudaFree(pointer);
  if (error != cudaSuccess) {
    LogWarn("cuda_free_failed").Field("error", cudaGetErrorName(error));
  }
}

Result<gpu::DeviceMemoryInfo> CudaDeviceMemory::Info() const {
  Status s = CudaStatus(cudaSetDevice(device_index_), "cudaSetDevice");
  if (!s.ok()) return s;
  size_t free_bytes = 0, total_bytes = 0;
  s = CudaStatus(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  if (!s.ok()) return s;
  return gpu::DeviceMemoryInfo{free_bytes, total_bytes};
}

}  // namespace tessera::engine::cuda
