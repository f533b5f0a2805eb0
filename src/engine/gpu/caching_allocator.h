// Device memory handed out in size classes and kept for reuse (seed 002 on a
// GPU): cudaMalloc/cudaFree synchronise the device and cost far more than a
// layer, so freed blocks go to a cache, and the cache goes back to the device
// when a block has been idle for `idle_release` (--pool-idle-release), on an
// out-of-memory before a retry (ReleaseCached), or when a new allocation would
// pass the budget (--vram-budget).
//
// Size classes: under 1 MiB, multiples of 512 B; from 1 MiB, multiples of 2 MiB.
// A cached block serves a request of its class or a smaller one down to half
// its size. A block is reused only for work on the stream it was last used
// on, so stream order alone keeps a reuse after the previous user's kernels.
//
// Thread-safe. Blocks hold the allocator alive.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "engine/gpu/device_memory.h"
#include "util/status.h"

namespace tessera::engine::gpu {

struct CachingAllocatorOptions {
  uint64_t budget_bytes = 0;  // 0: the device's memory is the only limit
  std::chrono::milliseconds idle_release{std::chrono::seconds(30)};
  // Tests: a clock of their own; default steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

struct AllocatorStats {
  uint64_t in_use_bytes = 0;     // blocks handed out now
  uint64_t cached_bytes = 0;     // blocks kept for reuse
  uint64_t peak_held_bytes = 0;  // most bytes held from the device at once (in use + cached)
  uint64_t device_allocations = 0;
  uint64_t cache_hits = 0;
  uint64_t released_bytes = 0;  // given back to the device (idle, on demand, or to fit the budget)
};

class CachingAllocator;

// One block of device memory; back to the cache when destroyed.
class DeviceBlock {
 public:
  DeviceBlock() = default;
  DeviceBlock(DeviceBlock&& other) noexcept { *this = std::move(other); }
  DeviceBlock& operator=(DeviceBlock&& other) noexcept;
  DeviceBlock(const DeviceBlock&) = delete;
  DeviceBlock& operator=(const DeviceBlock&) = delete;
  ~DeviceBlock() { Reset(); }

  void* data() const { return pointer_; }
  uint64_t bytes() const { return bytes_; }  // the size class, at least what was asked
  explicit operator bool() const { return pointer_ != nullptr; }
  void Reset();

 private:
  friend class CachingAllocator;
  std::shared_ptr<CachingAllocator> owner_;
  void* pointer_ = nullptr;
  uint64_t bytes_ = 0;
  uint64_t stream_ = 0;
};

class CachingAllocator : public std::enable_shared_from_this<CachingAllocator> {
 public:
  static std::shared_ptr<CachingAllocator> Create(std::shared_ptr<DeviceMemoryApi> device,
                                                  CachingAllocatorOptions options = {});
  ~CachingAllocator();

  // A block of at least `bytes` for work ordered on `stream` (any number the
  // caller uses to name its stream). kOutOfMemory when neither the cache, the
  // budget nor the device has room — after the cache was given back once.
  Result<DeviceBlock> Allocate(uint64_t bytes, uint64_t stream = 0);

  // Every cached block back to the device (after an out-of-memory, before a retry).
  void ReleaseCached();
  // Cached blocks idle for longer than idle_release back to the device; returns
  // the bytes released. Also done on every Allocate.
  uint64_t ReleaseIdle();

  // What the planner may use now: the device's free memory plus the cache,
  // within what the budget leaves beside the blocks in use.
  Result<DeviceMemoryInfo> Probe() const;
  AllocatorStats stats() const;
  const CachingAllocatorOptions& options() const { return options_; }

  static uint64_t SizeClass(uint64_t bytes);

 private:
  CachingAllocator(std::shared_ptr<DeviceMemoryApi> device, CachingAllocatorOptions options);
  friend class DeviceBlock;
  void Return(void* pointer, uint64_t bytes, uint64_t stream);
  std::chrono::steady_clock::time_point Now() const;
  // Callers hold mutex_.
  uint64_t ReleaseIdleLocked(std::chrono::steady_clock::time_point now);
  void ReleaseCachedLocked();
  uint64_t HeldLocked() const { return stats_.in_use_bytes + stats_.cached_bytes; }

  struct CachedBlock {
    void* pointer;
    uint64_t stream;
    std::chrono::steady_clock::time_point idle_since;
  };

  std::shared_ptr<DeviceMemoryApi> device_;
  CachingAllocatorOptions options_;
  mutable std::mutex mutex_;
  std::multimap<uint64_t, CachedBlock> cache_;  // by size class
  AllocatorStats stats_;
};

}  // namespace tessera::engine::gpu
