// Device memory for the engine's caching allocator (engine/gpu/device_memory.h)
// on a Vulkan device: a few large VkDeviceMemory blocks, each with one storage
// buffer over it, sub-allocated first-fit with neighbours merged on free.
// Drivers limit the number of live allocations (4096 is common) and
// vkAllocateMemory costs far more than a layer, so tensors never get a
// VkDeviceMemory of their own. A block wholly free goes back to the device at
// once: the caching allocator above already keeps freed ranges for reuse and
// gives them back on its own terms (idle, out-of-memory, --vram-budget).
//
// The `void*` this hands out is a VulkanRange* (owned here until Free): a
// buffer, an offset and a size — what a shader binding names. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/backends/vulkan/vulkan_device.h"
#include "engine/gpu/device_memory.h"

namespace tessera::engine::vulkan {

struct VulkanRange {
  BufferSpan span;
  size_t block = 0;  // index in VulkanDeviceMemory's blocks
};

class VulkanDeviceMemory : public gpu::DeviceMemoryApi {
 public:
  // Blocks are this large, or one allocation's size when it is larger.
  static constexpr uint64_t kBlockBytes = 64ull << 20;

  explicit VulkanDeviceMemory(std::shared_ptr<VulkanDevice> device) : device_(std::move(device)) {}
  ~VulkanDeviceMemory() override;

  // kOutOfMemory on VK_ERROR_OUT_OF_DEVICE_MEMORY (the planner's retry path).
  Result<void*> Allocate(uint64_t bytes) override;
  void Free(void* pointer) override;
  // Free: the device's free memory (vulkan_device.h's FreeDeviceBytes) plus the
  // unused room inside this allocator's blocks; total: the device-local heap.
  Result<gpu::DeviceMemoryInfo> Info() const override;

  size_t block_count() const;

 private:
  struct Block {
    MemoryBlock memory;
    std::map<uint64_t, uint64_t> free;  // offset -> bytes, merged
    uint64_t used = 0;
  };
  // Callers hold mutex_.
  bool Take(size_t index, uint64_t bytes, uint64_t* offset);

  std::shared_ptr<VulkanDevice> device_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Block>> blocks_;  // null where a block was given back
};

}  // namespace tessera::engine::vulkan
