#include "engine/backend_registry.h"

#include "engine/backends/onednn_backend.h"
#include "engine/backends/reference_backend.h"
#include "engine/gpu/held_memory.h"
#include "util/byte_size.h"

#ifdef TESSERA_HAVE_CUDA
#include "engine/backends/cuda/cuda_backend.h"
#endif
#ifdef TESSERA_HAVE_VULKAN
#include "engine/backends/vulkan/vulkan_backend.h"
#endif

namespace tessera::engine {

Result<Precision> ParsePrecision(std::string_view text) {
  if (text == "auto") return Precision::kAuto;
  if (text == "fp32") return Precision::kFp32;
  if (text == "fp16") return Precision::kFp16;
  return InvalidError("precision '" + std::string(text) + "' is not one of auto, fp32, fp16");
}

std::string_view PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kAuto: return "auto";
    case Precision::kFp32: return "fp32";
    case Precision::kFp16: return "fp16";
  }
  return "unknown";
}

Result<BackendOptions> ParseBackendFlags(const std::string& precision, const std::string& vram_budget) {
  BackendOptions options;
  if (!precision.empty()) {
    Result<Precision> parsed = ParsePrecision(precision);
    if (!parsed.ok()) return InvalidError("--precision: " + parsed.status().message());
    options.precision = *parsed;
  }
  if (!vram_budget.empty()) {
    Result<uint64_t> bytes = ParseByteSize(vram_budget);
    if (!bytes.ok()) return InvalidError("--vram-budget: " + bytes.status().message());
    options.vram_budget_bytes = *bytes;
  }
  return options;
}

Status CheckBackendOptions(const Device& device, const BackendOptions& options) {
  if (device.is_cpu() && options.precision == Precision::kFp16) {
    return Status(StatusCode::kUnsupported, "precision fp16 needs a GPU device; the CPU computes in fp32");
  }
#ifdef TESSERA_HAVE_VULKAN
  if (device.kind == Device::Kind::kVulkan && options.precision == Precision::kFp16) {
    const vulkan::VulkanSystem* system = vulkan::Availability().system;
    if (system != nullptr && device.index >= 0 && static_cast<size_t>(device.index) < system->devices.size() &&
        !system->devices[device.index].storage_16bit) {
      return Status(StatusCode::kUnsupported, "precision fp16 needs 16-bit storage (storageBuffer16BitAccess), which " +
                                                  device.Name() + " (" + system->devices[device.index].name +
                                                  ") lacks; use fp32");
    }
  }
#endif
  return Status::Ok();
}

#ifdef TESSERA_HAVE_VULKAN
namespace {

// fp16 when asked; with auto, on a real GPU that has 16-bit storage (a
// CPU-type device such as llvmpipe gains nothing from it: fp32 there).
DataType VulkanDtype(int index, Precision precision) {
  if (precision == Precision::kFp32) return DataType::kF32;
  if (precision == Precision::kFp16) return DataType::kF16;
  const vulkan::VulkanPhysicalDevice& d = vulkan::Availability().system->devices[index];
  return d.storage_16bit && vulkan::ChosenAutomatically(d.type) ? DataType::kF16 : DataType::kF32;
}

}  // namespace
#endif

bool BuiltWithCuda() {
#ifdef TESSERA_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

bool BuiltWithVulkan() {
#ifdef TESSERA_HAVE_VULKAN
  return true;
#else
  return false;
#endif
}

int UsableDeviceCount(Device::Kind kind) {
  switch (kind) {
    case Device::Kind::kCpu: return 1;
#ifdef TESSERA_HAVE_CUDA
    case Device::Kind::kCuda: return cuda::Availability().device_count;
#endif
#ifdef TESSERA_HAVE_VULKAN
    case Device::Kind::kVulkan: {
      // Every device the loader reports counts (a CPU-type one too: usable when
      // named); the indexes stay the loader's.
      const vulkan::VulkanAvailability& available = vulkan::Availability();
      return available.system != nullptr ? static_cast<int>(available.system->devices.size()) : 0;
    }
#endif
    default: return 0;
  }
}

namespace {

GpuInventory ProbeMachineGpus() {
  GpuInventory inventory;
  for (int i = 0; i < UsableDeviceCount(Device::Kind::kCuda); ++i) {
    inventory.cuda.push_back({Device::Cuda(i), GpuClass::kDiscrete, kNvidiaVendorId, "cuda:" + std::to_string(i)});
  }
#ifdef TESSERA_HAVE_VULKAN
  if (const vulkan::VulkanSystem* system = vulkan::Availability().system) {
    for (size_t i = 0; i < system->devices.size(); ++i) {
      const vulkan::VulkanPhysicalDevice& d = system->devices[i];
      GpuClass cls = GpuClass::kOther;
      switch (d.type) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: cls = GpuClass::kDiscrete; break;
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: cls = GpuClass::kIntegrated; break;
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: cls = GpuClass::kVirtual; break;
        case VK_PHYSICAL_DEVICE_TYPE_CPU: cls = GpuClass::kSoftware; break;
        default: break;
      }
      // A device without a compute queue is listed, never used.
      if (d.compute_queue_family < 0) cls = GpuClass::kOther;
      inventory.vulkan.push_back({Device::Vulkan(static_cast<int>(i)), cls, d.vendor_id, d.name});
    }
  }
#endif
  return inventory;
}

}  // namespace

const GpuInventory& MachineGpus() {
  static const GpuInventory inventory = ProbeMachineGpus();
  return inventory;
}

uint64_t DeviceBytesHeld(const Device& device) { return device.is_cpu() ? 0 : gpu::HeldBytes(device); }

std::string DeviceUnavailableReason(Device::Kind kind) {
  if (UsableDeviceCount(kind) > 0) return "";
  if (kind == Device::Kind::kVulkan) {
#ifdef TESSERA_HAVE_VULKAN
    return vulkan::Availability().reason;
#else
    return "this build has no Vulkan backend (configured with -DTESSERA_VULKAN=OFF, or the Vulkan headers / glslc "
           "missing)";
#endif
  }
#ifdef TESSERA_HAVE_CUDA
  return cuda::Availability().reason;
#else
  return "this build has no CUDA backend (configured with -DTESSERA_CUDA=OFF, or nvcc / cuDNN headers missing)";
#endif
}

namespace {

// The CPU's backends: oneDNN where it starts, the reference kernels for what it declines.
BackendSet CpuBackends(const BackendOptions& options) {
  BackendSet set;
  if (OneDnnBackend::Available()) {
    set.backend = std::make_shared<OneDnnBackend>(options.onednn);
    set.fallback = std::make_shared<ReferenceBackend>();
  } else {
    set.backend = std::make_shared<ReferenceBackend>();
  }
  return set;
}

}  // namespace

Result<BackendSet> BackendsFor(const Device& device, const BackendOptions& options) {
  Status checked = CheckBackendOptions(device, options);
  if (!checked.ok()) return checked;
  if (device.is_cpu()) return CpuBackends(options);
  const int usable = UsableDeviceCount(device.kind);
  if (device.index >= usable) {
    const std::string why = usable == 0 ? DeviceUnavailableReason(device.kind)
                                        : "this machine has " + std::to_string(usable) + " such devices";
    return Status(StatusCode::kDeviceUnavailable, device.Name() + " is not available: " + why);
  }
#ifdef TESSERA_HAVE_CUDA
  if (device.kind == Device::Kind::kCuda) {
    cuda::CudaBackendOptions cuda_options;
    cuda_options.dtype = options.precision == Precision::kFp32 ? DataType::kF32 : DataType::kF16;
    cuda_options.vram_budget_bytes = options.vram_budget_bytes;
    cuda_options.pool_idle_release = options.pool_idle_release;
    Result<std::shared_ptr<cuda::CudaBackend>> backend = cuda::CudaBackend::Create(device.index, cuda_options);
    if (!backend.ok()) return backend.status();
    BackendSet set;
    set.backend = std::move(backend).value();
    // The layer the GPU declines (bicubic Interp) on the reference kernels:
    // oneDNN declines it too, and the executor takes one fallback.
    set.fallback = std::make_shared<ReferenceBackend>();
    return set;
  }
#endif
#ifdef TESSERA_HAVE_VULKAN
  if (device.kind == Device::Kind::kVulkan) {
    vulkan::VulkanBackendOptions vulkan_options;
    vulkan_options.dtype = VulkanDtype(device.index, options.precision);
    vulkan_options.vram_budget_bytes = options.vram_budget_bytes;
    vulkan_options.pool_idle_release = options.pool_idle_release;
    vulkan_options.pipeline_cache_dir = options.pipeline_cache_dir;
    Result<std::shared_ptr<vulkan::VulkanBackend>> backend =
        vulkan::VulkanBackend::Create(device.index, vulkan_options);
    if (!backend.ok()) {
      return Status(backend.status().code(), device.Name() + " is not available: " + backend.status().message());
    }
    BackendSet set;
    set.backend = std::move(backend).value();
    // The layers the shaders do not cover yet, on the reference kernels: they
    // run every layer type, where oneDNN declines bicubic Interp (which
    // realesr-animevideov3-x2 ends with) and the executor takes one fallback.
    set.fallback = std::make_shared<ReferenceBackend>();
    return set;
  }
#endif
  return Status(StatusCode::kDeviceUnavailable, device.Name() + " is not available: " + DeviceUnavailableReason(device.kind));
}

std::vector<DeviceInfo> ListDevices() {
  std::vector<DeviceInfo> devices;
  DeviceInfo cpu;
  cpu.device = Device::Cpu();
  Result<BackendSet> set = BackendsFor(cpu.device);
  if (set.ok()) {
    cpu.backend = set->backend->name();
    cpu.memory = set->backend->ProbeMemory();
    cpu.detail = set->backend->Fingerprint();
  }
  devices.push_back(cpu);
  for (int i = 0; i < UsableDeviceCount(Device::Kind::kCuda); ++i) {
    DeviceInfo gpu;
    gpu.device = Device::Cuda(i);
    Result<BackendSet> gpu_set = BackendsFor(gpu.device);
    if (!gpu_set.ok()) {
      gpu.detail = gpu_set.status().message();
    } else {
      gpu.backend = gpu_set->backend->name();
      gpu.memory = gpu_set->backend->ProbeMemory();
      gpu.detail = gpu_set->backend->Fingerprint();
    }
    devices.push_back(gpu);
  }
#ifdef TESSERA_HAVE_VULKAN
  for (int i = 0; i < UsableDeviceCount(Device::Kind::kVulkan); ++i) {
    DeviceInfo gpu;
    gpu.device = Device::Vulkan(i);
    gpu.automatic = vulkan::ChosenAutomatically(vulkan::Availability().system->devices[i].type);
    Result<BackendSet> gpu_set = BackendsFor(gpu.device);
    if (!gpu_set.ok()) {
      gpu.detail = gpu_set.status().message();
    } else {
      gpu.backend = gpu_set->backend->name();
      gpu.memory = gpu_set->backend->ProbeMemory();
      gpu.detail = gpu_set->backend->Fingerprint();
    }
    gpu.detail += " heaps=" + vulkan::HeapsText(vulkan::Availability().system->devices[i]);
    if (!gpu.automatic) gpu.detail += " (a CPU implementation: used only when named)";
    devices.push_back(gpu);
  }
#endif
  return devices;
}

}  // namespace tessera::engine
