// Whole graph runs recorded once per input shape and replayed, on Vulkan
// (Backend::BeginCapture; vulkan_recording.cpp): GraphExecutor::RunOnBackend
// records the first batch of tiles of a shape and replays the recording for
// every later one, so a replay costs one vkCmdExecuteCommands and two copies
// instead of recording every layer's dispatches and descriptor sets again.
//
// While a thread records, the ops' dispatches go into a command buffer of the
// recording's own (VulkanDevice::BeginRecording) and every tensor the backend
// makes on that thread comes from an arena of the recording's own: a caching
// allocator over blocks of the backend's, so a blob freed after its last
// reader is reused by a later one exactly as in a plain run (peak memory, not
// the sum) and every binding the commands name stays valid for as long as the
// recording lives. A replay copies its input into the recorded input, executes
// the commands and copies the recorded output into a tensor of its own, all
// under one device lock: replays from several threads never interleave.
//
// A recording's memory is given back on demand — least recently replayed
// first whenever the backend's allocator has no room (so ProbeMemory counts
// it as free), all of it on ReleaseCachedMemory (the planner's retry after an
// out-of-memory), and when not replayed for --pool-idle-release — and the
// executor records again on its next batch of that shape.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>
#include <memory>
#include <mutex>

#include "engine/gpu/caching_allocator.h"

namespace tessera::engine::vulkan {

class VulkanRecordedRun;

// The recordings of one backend that hold memory. Thread-safe; it holds them
// weakly (the executors own them).
class RecordingRegistry {
 public:
  void Add(const std::shared_ptr<VulkanRecordedRun>& run);
  // Gives back the least recently replayed recording's memory; false when none holds any.
  bool DropOldest();
  void DropAll();
  // Those not replayed since `idle` before `now`.
  void DropIdle(std::chrono::steady_clock::time_point now, std::chrono::milliseconds idle);
  // The device memory they hold.
  uint64_t bytes() const;
  size_t size() const;

 private:
  // Those holding memory, pruning the others; callers hold mutex_.
  std::vector<std::shared_ptr<VulkanRecordedRun>> LiveLocked() const;

  mutable std::mutex mutex_;
  mutable std::vector<std::weak_ptr<VulkanRecordedRun>> runs_;
};

// A block from `allocator`; when it has no room, recordings' memory goes back
// (oldest first) until it has, or until none is left.
Result<gpu::DeviceBlock> AllocateOrDropRecordings(gpu::CachingAllocator& allocator, RecordingRegistry& recordings,
                                                  uint64_t bytes);

}  // namespace tessera::engine::vulkan
