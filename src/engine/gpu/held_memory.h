// Device memory the GPU backends of this process hold, by device (in use and
// cached): what a lane's worker reports as its VRAM. Each GPU backend
// registers its caching allocator once; only weak references are kept, so an
// allocator that ends stops counting. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/device.h"
#include "engine/gpu/caching_allocator.h"

namespace tessera::engine::gpu {

void RegisterHeldMemory(const Device& device, const std::shared_ptr<CachingAllocator>& allocator);
// The sum over the live allocators registered for `device`.
uint64_t HeldBytes(const Device& device);

}  // namespace tessera::engine::gpu
