// A test double of a GPU's memory (engine/gpu/device_memory.h): a capacity,
// allocations counted against it, and failures on demand, so the allocator,
// the planner's sizing from free VRAM and the out-of-memory paths are tested
// on machines without a GPU. Host memory stands behind each block.
#pragma once

#include <cstdlib>
#include <map>
#include <mutex>

#include "engine/gpu/device_memory.h"

namespace tessera::engine::gpu {

class FakeDeviceMemory : public DeviceMemoryApi {
 public:
  explicit FakeDeviceMemory(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}
  ~FakeDeviceMemory() override {
    for (auto& [pointer, bytes] : blocks_) std::free(pointer);
  }

  Result<void*> Allocate(uint64_t bytes) override {
    std::lock_guard lock(mutex_);
    ++allocate_calls_;
    if (succeed_first_ > 0) {
      --succeed_first_;
    } else if (fail_next_ > 0) {
      --fail_next_;
      return Status(StatusCode::kOutOfMemory, "fake device: failure on demand");
    }
    if (used_ + bytes > capacity_) return Status(StatusCode::kOutOfMemory, "fake device: out of memory");
    void* pointer = std::malloc(bytes);
    blocks_[pointer] = bytes;
    used_ += bytes;
    return pointer;
  }
  void Free(void* pointer) override {
    std::lock_guard lock(mutex_);
    auto it = blocks_.find(pointer);
    if (it == blocks_.end()) {
      ++bad_frees_;
      return;
    }
    used_ -= it->second;
    std::free(pointer);
    blocks_.erase(it);
    ++free_calls_;
  }
  Result<DeviceMemoryInfo> Info() const override {
    std::lock_guard lock(mutex_);
    return DeviceMemoryInfo{capacity_ - used_, capacity_};
  }

  void FailNext(int count) { FailAfter(0, count); }
  // The next `successes` allocations succeed (room allowing), then `count` fail.
  void FailAfter(int successes, int count) {
    std::lock_guard lock(mutex_);
    succeed_first_ = successes;
    fail_next_ = count;
  }
  uint64_t used() const {
    std::lock_guard lock(mutex_);
    return used_;
  }
  int allocate_calls() const {
    std::lock_guard lock(mutex_);
    return allocate_calls_;
  }
  int free_calls() const {
    std::lock_guard lock(mutex_);
    return free_calls_;
  }
  int bad_frees() const {
    std::lock_guard lock(mutex_);
    return bad_frees_;
  }

 private:
  mutable std::mutex mutex_;
  const uint64_t capacity_;
  uint64_t used_ = 0;
  std::map<void*, uint64_t> blocks_;
  int succeed_first_ = 0;
  int fail_next_ = 0;
  int allocate_calls_ = 0, free_calls_ = 0, bad_frees_ = 0;
};

}  // namespace tessera::engine::gpu
