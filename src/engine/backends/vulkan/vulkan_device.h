// One Vulkan device opened for compute: its logical device and compute queue,
// the memory types tensors and staging use, one compute pipeline per embedded
// shader (built on first use, then shared by every op and backend on the
// device), and the one path by which work reaches the GPU (Run).
//
// Phase 1 runs work synchronously: Run records one command buffer, submits it
// and waits for its fence, under the device's mutex. That keeps every
// lifetime trivial (a descriptor set, a staging copy or a scratch buffer is
// free again when Run returns) at the cost of overlap between threads and of
// CPU/GPU overlap; recording once per tile shape and replaying is later work.
//
// Shared per process and device index (Open); thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "engine/backends/vulkan/vulkan_loader.h"
#include "engine/backends/vulkan/vulkan_shaders.h"
#include "util/status.h"

namespace tessera::engine::vulkan {

// A range of a storage buffer: what a shader binding or a copy names.
struct BufferSpan {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0;
  VkDeviceSize bytes = 0;
};

// One VkDeviceMemory with a storage buffer spanning it.
struct MemoryBlock {
  VkDeviceMemory memory = VK_NULL_HANDLE;
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize bytes = 0;
};

// What Run's callback records into: dispatches of the embedded shaders, each
// followed by a barrier, so a dispatch sees everything recorded before it.
class CommandRecorder {
 public:
  virtual ~CommandRecorder() = default;
  // `invocations` threads of `shader` over `buffers` (bindings 0..n-1, exactly
  // as many as the shader declares) with `push` as its push constants.
  virtual Status Dispatch(ShaderRef shader, std::span<const BufferSpan> buffers, const void* push, uint32_t push_bytes,
                          uint64_t invocations) = 0;
};

// How much of the device-local heap is free, by the driver's report where it
// gives one (VK_EXT_memory_budget), else by what tessera itself holds.
struct HeapReport {
  uint64_t heap_bytes = 0;
  uint64_t held_bytes = 0;  // VkDeviceMemory this process holds on the device
  bool has_budget = false;  // the two below came from VK_EXT_memory_budget
  uint64_t budget_bytes = 0;
  uint64_t usage_bytes = 0;
};
uint64_t FreeDeviceBytes(const HeapReport& report);

class VulkanDevice {
 public:
  // The process's device `vulkan:index`, opened on first use; kDeviceUnavailable
  // with the reason when there is no loader, driver or such device.
  static Result<std::shared_ptr<VulkanDevice>> Open(int index);
  ~VulkanDevice();
  VulkanDevice(const VulkanDevice&) = delete;
  VulkanDevice& operator=(const VulkanDevice&) = delete;

  int index() const { return index_; }
  const VulkanPhysicalDevice& physical() const { return physical_; }
  // Storage-buffer offsets must be multiples of this.
  VkDeviceSize storage_alignment() const { return storage_alignment_; }
  // The largest range one binding may cover.
  uint64_t max_storage_range() const { return max_storage_range_; }

  // Device-local memory with a storage buffer over it; kOutOfMemory on
  // VK_ERROR_OUT_OF_DEVICE_MEMORY.
  Result<MemoryBlock> AllocateBlock(uint64_t bytes);
  void FreeBlock(const MemoryBlock& block);
  // The device-local heap now; `held` counted from AllocateBlock/FreeBlock.
  HeapReport MemoryReport() const;

  // Records work with `record`, submits it and waits for it to finish.
  Status Run(const std::function<Status(CommandRecorder&)>& record);
  // Host values into a buffer range, and back, through a host-visible staging
  // buffer (the device's memory need not be host-visible).
  Status Upload(const void* data, uint64_t bytes, const BufferSpan& to);
  Status Download(const BufferSpan& from, void* data, uint64_t bytes);

 private:
  VulkanDevice(int index, const VulkanFunctions& fn, const VulkanPhysicalDevice& physical);
  Status Init();
  struct Pipeline {
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkPipeline pipeline = VK_NULL_HANDLE;
  };
  // Callers hold mutex_.
  Result<const Pipeline*> PipelineFor(ShaderRef shader);
  Status EnsureStaging(uint64_t bytes);
  Status Submit(const std::function<Status(VkCommandBuffer)>& record);
  class Recorder;

  const int index_;
  const VulkanFunctions& fn_;
  const VulkanPhysicalDevice physical_;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t device_memory_type_ = 0;
  int device_heap_ = 0;
  int staging_memory_type_ = -1;
  VkDeviceSize storage_alignment_ = 256;
  uint64_t max_storage_range_ = 0;
  std::atomic<uint64_t> held_bytes_{0};

  std::mutex mutex_;  // the queue, command buffer, descriptor pool, staging and pipelines
  VkCommandPool command_pool_ = VK_NULL_HANDLE;
  VkCommandBuffer commands_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  VkDescriptorPool descriptor_pool_ = VK_NULL_HANDLE;
  MemoryBlock staging_;
  void* staging_mapped_ = nullptr;
  Pipeline pipelines_[kShaderVariantCount];
};

}  // namespace tessera::engine::vulkan
