// Reuses the large blocks tensors are made of (seed 003: buffer pools). A tile's
// layers allocate and free maps of the same few sizes again and again, and so do
// the next tiles and the next requests; from the system allocator each large
// block is a fresh mmap whose pages the kernel zeroes and faults in on first
// touch. The pool keeps freed blocks per size class and hands them out again.
//
// - Size classes: four per doubling (1, 1.25, 1.5, 1.75 × 2^k), so a block is at
//   most 25 % bigger than asked; blocks under 64 KiB are not pooled (malloc's own
//   bins do that well).
// - Blocks are 64-byte aligned (oneDNN's kernels may use aligned stores).
// - A block unused for `idle_release` (--pool-idle-release, default 30 s) is
//   returned to the system; ReleaseAll() returns every free block at once (after
//   an out-of-memory, before the retry).
// - Thread-safe. Under AddressSanitizer the pool passes every call through, so
//   that a use after free is still caught.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace tessera::engine {

struct BufferPoolStats {
  uint64_t hits = 0;            // allocations served from a free block
  uint64_t misses = 0;          // allocations that went to the system
  uint64_t returned = 0;        // blocks given back to the system (idle or released)
  uint64_t cached_bytes = 0;    // free blocks held now
  uint64_t in_use_bytes = 0;    // pooled-size blocks handed out and not yet freed
};

class BufferPool {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMinPooledBytes = 64 * 1024;
  static constexpr size_t kAlignment = 64;

  explicit BufferPool(std::chrono::milliseconds idle_release = std::chrono::seconds(30));
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // `bytes` of 64-byte aligned memory; throws std::bad_alloc like operator new.
  void* Allocate(size_t bytes);
  // `bytes` must be what Allocate() was asked for.
  void Deallocate(void* block, size_t bytes) noexcept;

  // Returns blocks idle for the idle-release time as of `now`. Also called by
  // Allocate()/Deallocate() at most once a second.
  void ReleaseIdle(Clock::time_point now);
  void ReleaseAll();

  void set_idle_release(std::chrono::milliseconds idle_release);
  BufferPoolStats Stats() const;

  // The class size a request of `bytes` is rounded up to (bytes itself when not pooled).
  static size_t ClassSize(size_t bytes);
  // False in AddressSanitizer builds, where every call goes to the system.
  static bool pooling_enabled();

 private:
  struct FreeBlock {
    void* block;
    Clock::time_point freed_at;
  };
  void ReleaseIdleLocked(Clock::time_point now);

  mutable std::mutex mutex_;
  std::chrono::milliseconds idle_release_;
  std::map<size_t, std::vector<FreeBlock>> free_;  // by class size; most recently freed last
  Clock::time_point last_sweep_;
  BufferPoolStats stats_;
};

// The pool tensor storage comes from (engine/tensor.h).
BufferPool& ActivationPool();

}  // namespace tessera::engine
