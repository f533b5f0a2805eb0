#include "engine/backends/vulkan/vulkan_loader.h"

#include <dlfcn.h>

#include <cstring>

namespace tessera::engine::vulkan {
namespace {

bool HasExtension(const VulkanFunctions& fn, VkPhysicalDevice device, const char* name) {
  uint32_t count = 0;
  if (fn.vkEnumerateDeviceExtensionProperties(device, nullptr, &count, nullptr) != VK_SUCCESS) return false;
  std::vector<VkExtensionProperties> extensions(count);
  if (fn.vkEnumerateDeviceExtensionProperties(device, nullptr, &count, extensions.data()) != VK_SUCCESS) return false;
  for (const VkExtensionProperties& e : extensions) {
    if (std::strcmp(e.extensionName, name) == 0) return true;
  }
  return false;
}

VulkanPhysicalDevice Describe(const VulkanSystem& system, VkPhysicalDevice handle) {
  const VulkanFunctions& fn = system.fn;
  VulkanPhysicalDevice d;
  d.handle = handle;
  VkPhysicalDeviceProperties properties{};
  fn.vkGetPhysicalDeviceProperties(handle, &properties);
  d.type = properties.deviceType;
  d.name = properties.deviceName;
  d.vendor_id = properties.vendorID;
  d.device_id = properties.deviceID;
  d.driver_version = properties.driverVersion;
  d.api_version = properties.apiVersion;
  VkPhysicalDeviceMemoryProperties memory{};
  fn.vkGetPhysicalDeviceMemoryProperties(handle, &memory);
  for (uint32_t i = 0; i < memory.memoryHeapCount; ++i) {
    d.heaps.push_back(
        {memory.memoryHeaps[i].size, (memory.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0});
  }
  d.memory_budget = fn.vkGetPhysicalDeviceMemoryProperties2 != nullptr && d.api_version >= VK_API_VERSION_1_1 &&
                    system.instance_api_version >= VK_API_VERSION_1_1 &&
                    HasExtension(fn, handle, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
  if (fn.vkGetPhysicalDeviceFeatures2 != nullptr && d.api_version >= VK_API_VERSION_1_1) {
    VkPhysicalDevice16BitStorageFeatures storage{};
    storage.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
    VkPhysicalDeviceFeatures2 features{};
    features.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    features.pNext = &storage;
    fn.vkGetPhysicalDeviceFeatures2(handle, &features);
    d.storage_16bit = storage.storageBuffer16BitAccess == VK_TRUE;
  }
  uint32_t families = 0;
  fn.vkGetPhysicalDeviceQueueFamilyProperties(handle, &families, nullptr);
  std::vector<VkQueueFamilyProperties> family(families);
  fn.vkGetPhysicalDeviceQueueFamilyProperties(handle, &families, family.data());
  for (uint32_t i = 0; i < families; ++i) {
    if ((family[i].queueFlags & VK_QUEUE_COMPUTE_BIT) != 0 && family[i].queueCount > 0) {
      d.compute_queue_family = static_cast<int>(i);
      break;
    }
  }
  return d;
}

// The loader, an instance and its devices; `out.reason` says what is missing.
VulkanAvailability Open() {
  VulkanAvailability out;
  // dlerror()'s text names the library and why (not found, wrong ELF class).
  void* library = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    out.reason = std::string("no Vulkan loader (libvulkan.so.1): ") + (why != nullptr ? why : "not found");
    return out;
  }
  auto* system = new VulkanSystem();  // kept for the process's life (vulkan_loader.h)
  VulkanFunctions& fn = system->fn;
  fn.vkGetInstanceProcAddr = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(library, "vkGetInstanceProcAddr"));
  if (fn.vkGetInstanceProcAddr == nullptr) {
    out.reason = "libvulkan.so.1 has no vkGetInstanceProcAddr";
    delete system;
    return out;
  }
  auto create_instance =
      reinterpret_cast<PFN_vkCreateInstance>(fn.vkGetInstanceProcAddr(VK_NULL_HANDLE, "vkCreateInstance"));
  auto instance_version = reinterpret_cast<PFN_vkEnumerateInstanceVersion>(
      fn.vkGetInstanceProcAddr(VK_NULL_HANDLE, "vkEnumerateInstanceVersion"));
  if (create_instance == nullptr) {
    out.reason = "the Vulkan loader has no vkCreateInstance";
    delete system;
    return out;
  }
  // Vulkan 1.1 where the loader has it (memory budgets are queried through it);
  // nothing the backend does needs more.
  uint32_t loader_version = VK_API_VERSION_1_0;
  if (instance_version != nullptr && instance_version(&loader_version) != VK_SUCCESS)
    loader_version = VK_API_VERSION_1_0;
  system->instance_api_version = loader_version >= VK_API_VERSION_1_1 ? VK_API_VERSION_1_1 : VK_API_VERSION_1_0;
  VkApplicationInfo app{};
  app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
  app.pApplicationName = "tessera";
  app.pEngineName = "tessera";
  app.apiVersion = system->instance_api_version;
  VkInstanceCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
  info.pApplicationInfo = &app;
  const VkResult created = create_instance(&info, nullptr, &system->instance);
  if (created != VK_SUCCESS) {
    out.reason = created == VK_ERROR_INCOMPATIBLE_DRIVER
                     ? "the Vulkan loader found no driver (vkCreateInstance: VK_ERROR_INCOMPATIBLE_DRIVER)"
                     : std::string("vkCreateInstance failed: ") + ResultName(created);
    delete system;
    return out;
  }
  std::string missing;
#define TESSERA_VULKAN_LOAD(name)                                                            \
  fn.name = reinterpret_cast<PFN_##name>(fn.vkGetInstanceProcAddr(system->instance, #name)); \
  if (fn.name == nullptr && missing.empty()) missing = #name;
  TESSERA_VULKAN_INSTANCE_FUNCTIONS(TESSERA_VULKAN_LOAD)
#undef TESSERA_VULKAN_LOAD
  if (!missing.empty()) {
    out.reason = "the Vulkan loader lacks " + missing;
    return out;  // the instance stays: destroying it would need the very table that is incomplete
  }
  if (system->instance_api_version >= VK_API_VERSION_1_1) {
    fn.vkGetPhysicalDeviceMemoryProperties2 = reinterpret_cast<PFN_vkGetPhysicalDeviceMemoryProperties2>(
        fn.vkGetInstanceProcAddr(system->instance, "vkGetPhysicalDeviceMemoryProperties2"));
    fn.vkGetPhysicalDeviceFeatures2 = reinterpret_cast<PFN_vkGetPhysicalDeviceFeatures2>(
        fn.vkGetInstanceProcAddr(system->instance, "vkGetPhysicalDeviceFeatures2"));
  }
  uint32_t count = 0;
  VkResult listed = fn.vkEnumeratePhysicalDevices(system->instance, &count, nullptr);
  std::vector<VkPhysicalDevice> handles(count);
  if (listed == VK_SUCCESS && count > 0)
    listed = fn.vkEnumeratePhysicalDevices(system->instance, &count, handles.data());
  if (listed != VK_SUCCESS && listed != VK_INCOMPLETE) {
    out.reason = std::string("vkEnumeratePhysicalDevices failed: ") + ResultName(listed);
    return out;
  }
  handles.resize(count);
  for (VkPhysicalDevice handle : handles) system->devices.push_back(Describe(*system, handle));
  out.system = system;
  if (system->devices.empty()) out.reason = "the Vulkan driver reports no device";
  return out;
}

}  // namespace

const VulkanAvailability& Availability() {
  static const VulkanAvailability availability = Open();
  return availability;
}

const char* DeviceTypeName(VkPhysicalDeviceType type) {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

bool ChosenAutomatically(VkPhysicalDeviceType type) {
  return type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU || type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
         type == VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU;
}

std::string DriverVersionText(const VulkanPhysicalDevice& device) {
  const uint32_t v = device.driver_version;
  if (device.vendor_id == 0x10DE) {  // NVIDIA packs 10.8.8.6 bits
    return std::to_string(v >> 22) + "." + std::to_string((v >> 14) & 0xFF) + "." + std::to_string((v >> 6) & 0xFF);
  }
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." +
         std::to_string(VK_API_VERSION_PATCH(v));
}

std::string HeapsText(const VulkanPhysicalDevice& device) {
  std::string text;
  for (const VulkanHeap& heap : device.heaps) {
    if (!text.empty()) text += ",";
    text += std::to_string(heap.size >> 20) + "MiB" + (heap.device_local ? "(local)" : "");
  }
  return text;
}

const char* ResultName(VkResult result) {
  switch (result) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VK_ERROR_UNKNOWN";
  }
}

Status VulkanStatus(VkResult result, const std::string& what) {
  if (result == VK_SUCCESS) return Status::Ok();
  const std::string text = what + ": " + ResultName(result);
  switch (result) {
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    case VK_ERROR_OUT_OF_HOST_MEMORY: return Status(StatusCode::kOutOfMemory, text);
    case VK_ERROR_DEVICE_LOST:
    case VK_ERROR_INITIALIZATION_FAILED:
    case VK_ERROR_INCOMPATIBLE_DRIVER: return Status(StatusCode::kDeviceUnavailable, text);
    default: return InternalError(text);
  }
}

}  // namespace tessera::engine::vulkan
