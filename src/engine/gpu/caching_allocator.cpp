#include "engine/gpu/caching_allocator.h"

#include <algorithm>

#include "util/byte_size.h"

namespace tessera::engine::gpu {
namespace {

constexpr uint64_t kSmallLimit = 1ull << 20;
constexpr uint64_t kSmallRound = 512;
constexpr uint64_t kLargeRound = 2ull << 20;

uint64_t RoundUp(uint64_t bytes, uint64_t unit) { return (bytes + unit - 1) / unit * unit; }

}  // namespace

DeviceBlock& DeviceBlock::operator=(DeviceBlock&& other) noexcept {
  if (this != &other) {
    Reset();
    owner_ = std::move(other.owner_);
    pointer_ = other.pointer_;
    bytes_ = other.bytes_;
    stream_ = other.stream_;
    other.pointer_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

void DeviceBlock::Reset() {
  if (pointer_ != nullptr && owner_) owner_->Return(pointer_, bytes_, stream_);
  owner_.reset();
  pointer_ = nullptr;
  bytes_ = 0;
}

std::shared_ptr<CachingAllocator> CachingAllocator::Create(std::shared_ptr<DeviceMemoryApi> device,
                                                           CachingAllocatorOptions options) {
  return std::shared_ptr<CachingAllocator>(new CachingAllocator(std::move(device), std::move(options)));
}

CachingAllocator::CachingAllocator(std::shared_ptr<DeviceMemoryApi> device, CachingAllocatorOptions options)
    : device_(std::move(device)), options_(std::move(options)) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard lock(mutex_);
  ReleaseCachedLocked();
}

uint64_t CachingAllocator::SizeClass(uint64_t bytes) {
  if (bytes == 0) bytes = 1;
  return bytes < kSmallLimit ? RoundUp(bytes, kSmallRound) : RoundUp(bytes, kLargeRound);
}

std::chrono::steady_clock::time_point CachingAllocator::Now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

Result<DeviceBlock> CachingAllocator::Allocate(uint64_t bytes, uint64_t stream) {
  const uint64_t size = SizeClass(bytes);
  std::lock_guard lock(mutex_);
  ReleaseIdleLocked(Now());
  // The smallest cached block of this stream that fits and wastes under half.
  for (auto it = cache_.lower_bound(size); it != cache_.end() && it->first <= 2 * size; ++it) {
    if (it->second.stream != stream) continue;
    DeviceBlock block;
    block.owner_ = shared_from_this();
    block.pointer_ = it->second.pointer;
    block.bytes_ = it->first;
    block.stream_ = stream;
    stats_.cached_bytes -= it->first;
    stats_.in_use_bytes += it->first;
    stats_.cache_hits += 1;
    cache_.erase(it);
    return block;
  }
  if (options_.budget_bytes != 0 && HeldLocked() + size > options_.budget_bytes) {
    ReleaseCachedLocked();  // idle blocks of other sizes or streams make room
    if (HeldLocked() + size > options_.budget_bytes) {
      return Status(StatusCode::kOutOfMemory, "VRAM budget: " + FormatBytes(size) + " more would pass " +
                                                  FormatBytes(options_.budget_bytes) + " (" +
                                                  FormatBytes(stats_.in_use_bytes) + " in use)");
    }
  }
  Result<void*> pointer = device_->Allocate(size);
  if (!pointer.ok() && pointer.status().code() == StatusCode::kOutOfMemory && !cache_.empty()) {
    ReleaseCachedLocked();
    pointer = device_->Allocate(size);
  }
  if (!pointer.ok()) return pointer.status();
  DeviceBlock block;
  block.owner_ = shared_from_this();
  block.pointer_ = *pointer;
  block.bytes_ = size;
  block.stream_ = stream;
  stats_.in_use_bytes += size;
  stats_.device_allocations += 1;
  stats_.peak_held_bytes = std::max(stats_.peak_held_bytes, HeldLocked());
  return block;
}

void CachingAllocator::Return(void* pointer, uint64_t bytes, uint64_t stream) {
  std::lock_guard lock(mutex_);
  stats_.in_use_bytes -= bytes;
  stats_.cached_bytes += bytes;
  cache_.emplace(bytes, CachedBlock{pointer, stream, Now()});
}

void CachingAllocator::ReleaseCached() {
  std::lock_guard lock(mutex_);
  ReleaseCachedLocked();
}

void CachingAllocator::ReleaseCachedLocked() {
  for (auto& [size, block] : cache_) {
    device_->Free(block.pointer);
    stats_.released_bytes += size;
  }
  cache_.clear();
  stats_.cached_bytes = 0;
}

uint64_t CachingAllocator::ReleaseIdle() {
  std::lock_guard lock(mutex_);
  return ReleaseIdleLocked(Now());
}

uint64_t CachingAllocator::ReleaseIdleLocked(std::chrono::steady_clock::time_point now) {
  uint64_t released = 0;
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (now - it->second.idle_since < options_.idle_release) {
      ++it;
      continue;
    }
    device_->Free(it->second.pointer);
    released += it->first;
    stats_.cached_bytes -= it->first;
    it = cache_.erase(it);
  }
  stats_.released_bytes += released;
  return released;
}

Result<DeviceMemoryInfo> CachingAllocator::Probe() const {
  Result<DeviceMemoryInfo> device = device_->Info();
  if (!device.ok()) return device.status();
  std::lock_guard lock(mutex_);
  DeviceMemoryInfo info;
  info.total_bytes = device->total_bytes;
  info.free_bytes = device->free_bytes + stats_.cached_bytes;
  if (options_.budget_bytes != 0) {
    const uint64_t left = options_.budget_bytes > stats_.in_use_bytes ? options_.budget_bytes - stats_.in_use_bytes : 0;
    info.free_bytes = std::min(info.free_bytes, left);
    info.total_bytes = std::min(info.total_bytes, options_.budget_bytes);
  }
  return info;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace tessera::engine::gpu
