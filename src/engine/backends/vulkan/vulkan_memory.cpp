#include "engine/backends/vulkan/vulkan_memory.h"

#include <algorithm>
#include <iterator>

namespace tessera::engine::vulkan {
namespace {

uint64_t RoundUp(uint64_t value, uint64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

}  // namespace

VulkanDeviceMemory::~VulkanDeviceMemory() {
  for (const std::unique_ptr<Block>& block : blocks_) {
    if (block != nullptr) device_->FreeBlock(block->memory);
  }
}

bool VulkanDeviceMemory::Take(size_t index, uint64_t bytes, uint64_t* offset) {
  Block& block = *blocks_[index];
  for (auto it = block.free.begin(); it != block.free.end(); ++it) {
    if (it->second < bytes) continue;
    *offset = it->first;
    const uint64_t rest = it->second - bytes;
    block.free.erase(it);
    if (rest > 0) block.free.emplace(*offset + bytes, rest);
    block.used += bytes;
    return true;
  }
  return false;
}

Result<void*> VulkanDeviceMemory::Allocate(uint64_t bytes) {
  if (bytes == 0) return InvalidError("an empty device allocation");
  // Every range starts on the storage-buffer offset alignment, so any range can
  // be bound to a shader as it is.
  const uint64_t size = RoundUp(bytes, device_->storage_alignment());
  std::lock_guard lock(mutex_);
  uint64_t offset = 0;
  size_t index = blocks_.size();
  for (size_t i = 0; i < blocks_.size(); ++i) {
    if (blocks_[i] != nullptr && Take(i, size, &offset)) {
      index = i;
      break;
    }
  }
  if (index == blocks_.size()) {
    Result<MemoryBlock> memory = device_->AllocateBlock(std::max(size, kBlockBytes));
    if (!memory.ok()) return memory.status();
    auto block = std::make_unique<Block>();
    block->memory = *memory;
    block->free.emplace(0, memory->bytes);
    // Reuse a slot of a block given back, so indexes stay small.
    index = blocks_.size();
    for (size_t i = 0; i < blocks_.size(); ++i) {
      if (blocks_[i] == nullptr) {
        index = i;
        break;
      }
    }
    if (index == blocks_.size()) blocks_.emplace_back();
    blocks_[index] = std::move(block);
    Take(index, size, &offset);
  }
  auto* range = new VulkanRange{{blocks_[index]->memory.buffer, offset, size}, index};
  return static_cast<void*>(range);
}

void VulkanDeviceMemory::Free(void* pointer) {
  std::unique_ptr<VulkanRange> range(static_cast<VulkanRange*>(pointer));
  if (range == nullptr) return;
  std::lock_guard lock(mutex_);
  Block& block = *blocks_.at(range->block);
  uint64_t offset = range->span.offset;
  uint64_t size = range->span.bytes;
  block.used -= size;
  // Merge with the free neighbours on both sides.
  auto next = block.free.lower_bound(offset);
  if (next != block.free.end() && next->first == offset + size) {
    size += next->second;
    next = block.free.erase(next);
  }
  if (next != block.free.begin()) {
    auto previous = std::prev(next);
    if (previous->first + previous->second == offset) {
      offset = previous->first;
      size += previous->second;
      block.free.erase(previous);
    }
  }
  block.free.emplace(offset, size);
  if (block.used == 0) {
    device_->FreeBlock(block.memory);
    blocks_[range->block].reset();
  }
}

Result<gpu::DeviceMemoryInfo> VulkanDeviceMemory::Info() const {
  const HeapReport report = device_->MemoryReport();
  uint64_t unused = 0;
  {
    std::lock_guard lock(mutex_);
    for (const std::unique_ptr<Block>& block : blocks_) {
      if (block != nullptr) unused += block->memory.bytes - block->used;
    }
  }
  gpu::DeviceMemoryInfo info;
  info.total_bytes = report.heap_bytes;
  info.free_bytes = std::min(FreeDeviceBytes(report) + unused, report.heap_bytes);
  return info;
}

size_t VulkanDeviceMemory::block_count() const {
  std::lock_guard lock(mutex_);
  size_t count = 0;
  for (const std::unique_ptr<Block>& block : blocks_) count += block != nullptr;
  return count;
}

}  // namespace tessera::engine::vulkan
