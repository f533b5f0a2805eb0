// The Vulkan loader, opened at run time: `dlopen("libvulkan.so.1")` and
// `vkGetInstanceProcAddr`, then every function the backend calls through a
// table of our own (VK_NO_PROTOTYPES: the binary links no Vulkan symbol). So
// the same binary starts and works where there is no loader, no driver or no
// device; a Vulkan device asked for there is kDeviceUnavailable with the reason.
//
// One instance per process, made on first use and kept to the end of the
// process (never destroyed: backends held by other statics may outlive any
// destruction order we could choose). Physical devices are `vulkan:N` in the
// order the loader reports them.
#pragma once

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace tessera::engine::vulkan {

// Every Vulkan function the backend uses, by name. All are looked up through
// vkGetInstanceProcAddr on our instance (device functions then go through the
// loader's dispatch, which is correct for any device of the instance).
#define TESSERA_VULKAN_INSTANCE_FUNCTIONS(X)  \
  X(vkDestroyInstance)                        \
  X(vkEnumeratePhysicalDevices)               \
  X(vkGetPhysicalDeviceProperties)            \
  X(vkGetPhysicalDeviceMemoryProperties)      \
  X(vkGetPhysicalDeviceQueueFamilyProperties) \
  X(vkEnumerateDeviceExtensionProperties)     \
  X(vkCreateDevice)                           \
  X(vkDestroyDevice)                          \
  X(vkGetDeviceQueue)                         \
  X(vkCreateBuffer)                           \
  X(vkDestroyBuffer)                          \
  X(vkGetBufferMemoryRequirements)            \
  X(vkAllocateMemory)                         \
  X(vkFreeMemory)                             \
  X(vkBindBufferMemory)                       \
  X(vkMapMemory)                              \
  X(vkUnmapMemory)                            \
  X(vkCreateShaderModule)                     \
  X(vkDestroyShaderModule)                    \
  X(vkCreateDescriptorSetLayout)              \
  X(vkDestroyDescriptorSetLayout)             \
  X(vkCreatePipelineLayout)                   \
  X(vkDestroyPipelineLayout)                  \
  X(vkCreateComputePipelines)                 \
  X(vkCreatePipelineCache)                    \
  X(vkDestroyPipelineCache)                   \
  X(vkGetPipelineCacheData)                   \
  X(vkMergePipelineCaches)                    \
  X(vkDestroyPipeline)                        \
  X(vkCreateDescriptorPool)                   \
  X(vkDestroyDescriptorPool)                  \
  X(vkResetDescriptorPool)                    \
  X(vkAllocateDescriptorSets)                 \
  X(vkUpdateDescriptorSets)                   \
  X(vkCreateCommandPool)                      \
  X(vkDestroyCommandPool)                     \
  X(vkAllocateCommandBuffers)                 \
  X(vkResetCommandBuffer)                     \
  X(vkBeginCommandBuffer)                     \
  X(vkEndCommandBuffer)                       \
  X(vkCmdBindPipeline)                        \
  X(vkCmdBindDescriptorSets)                  \
  X(vkCmdPushConstants)                       \
  X(vkCmdDispatch)                            \
  X(vkCmdPipelineBarrier)                     \
  X(vkCmdCopyBuffer)                          \
  X(vkCmdExecuteCommands)                     \
  X(vkFreeCommandBuffers)                     \
  X(vkCreateFence)                            \
  X(vkDestroyFence)                           \
  X(vkWaitForFences)                          \
  X(vkResetFences)                            \
  X(vkQueueSubmit)                            \
  X(vkDeviceWaitIdle)

struct VulkanFunctions {
  PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
#define TESSERA_VULKAN_DECLARE(name) PFN_##name name = nullptr;
  TESSERA_VULKAN_INSTANCE_FUNCTIONS(TESSERA_VULKAN_DECLARE)
#undef TESSERA_VULKAN_DECLARE
  // Vulkan 1.1 (null on a 1.0 loader): what VK_EXT_memory_budget reports through.
  PFN_vkGetPhysicalDeviceMemoryProperties2 vkGetPhysicalDeviceMemoryProperties2 = nullptr;
  // Vulkan 1.1 (null on a 1.0 loader): what 16-bit storage is asked through.
  PFN_vkGetPhysicalDeviceFeatures2 vkGetPhysicalDeviceFeatures2 = nullptr;
};

struct VulkanHeap {
  uint64_t size = 0;
  bool device_local = false;
};

// A physical device as the loader reports it.
struct VulkanPhysicalDevice {
  VkPhysicalDevice handle = VK_NULL_HANDLE;
  VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
  std::string name;
  uint32_t vendor_id = 0, device_id = 0;
  uint32_t driver_version = 0;  // the vendor's encoding
  uint32_t api_version = 0;
  std::vector<VulkanHeap> heaps;
  bool memory_budget = false;     // VK_EXT_memory_budget (and Vulkan 1.1 to query it)
  // storageBuffer16BitAccess (Vulkan 1.1): fp16 activations (--precision fp16).
  bool storage_16bit = false;
  int compute_queue_family = -1;  // -1: none (such a device is listed, never used)
};

struct VulkanSystem {
  VulkanFunctions fn;
  VkInstance instance = VK_NULL_HANDLE;
  uint32_t instance_api_version = VK_API_VERSION_1_0;
  std::vector<VulkanPhysicalDevice> devices;
};

struct VulkanAvailability {
  const VulkanSystem* system = nullptr;  // null when there is no loader or instance
  std::string reason;                    // why there is no usable device (empty when there is one)
};

// Opened once per process, on the first call.
const VulkanAvailability& Availability();

// "discrete", "integrated", "virtual", "cpu", "other".
const char* DeviceTypeName(VkPhysicalDeviceType type);
// Whether a device may be chosen without the user naming it: real GPUs only.
// A CPU-type device (Mesa's llvmpipe, SwiftShader) is far slower than the CPU
// backend and runs only when named explicitly (`--device vulkan:N`); nothing
// that picks devices on its own (lanes, "GPU -> iGPU -> CPU") may take one.
bool ChosenAutomatically(VkPhysicalDeviceType type);
// The driver version as its vendor writes it (NVIDIA's 10.8.8.6 bits, Intel's
// on Windows not relevant here, else Vulkan's major.minor.patch).
std::string DriverVersionText(const VulkanPhysicalDevice& device);
// The memory heaps in MiB, device-local ones marked: "8192MiB(local),16384MiB".
std::string HeapsText(const VulkanPhysicalDevice& device);
// "VK_ERROR_OUT_OF_DEVICE_MEMORY", ...
const char* ResultName(VkResult result);
// A failed Vulkan call as a Status: kOutOfMemory for device or host memory
// exhausted (what the chunk planner shrinks and retries on), kDeviceUnavailable
// for a lost device or missing driver, kInternal otherwise; names `what`.
Status VulkanStatus(VkResult result, const std::string& what);

}  // namespace tessera::engine::vulkan
