#include "engine/gpu/held_memory.h"

#include <mutex>
#include <utility>
#include <vector>

namespace tessera::engine::gpu {
namespace {

std::mutex registry_mutex;
std::vector<std::pair<Device, std::weak_ptr<CachingAllocator>>>& Registry() {
  static std::vector<std::pair<Device, std::weak_ptr<CachingAllocator>>> registry;
  return registry;
}

}  // namespace

void RegisterHeldMemory(const Device& device, const std::shared_ptr<CachingAllocator>& allocator) {
  std::lock_guard lock(registry_mutex);
  Registry().emplace_back(device, allocator);
}

uint64_t HeldBytes(const Device& device) {
  std::lock_guard lock(registry_mutex);
  uint64_t bytes = 0;
  auto& all = Registry();
  for (auto it = all.begin(); it != all.end();) {
    std::shared_ptr<CachingAllocator> allocator = it->second.lock();
    if (!allocator) {
      it = all.erase(it);
      continue;
    }
    if (it->first == device) {
      const AllocatorStats stats = allocator->stats();
      bytes += stats.in_use_bytes + stats.cached_bytes;
    }
    ++it;
  }
  return bytes;
}

}  // namespace tessera::engine::gpu
