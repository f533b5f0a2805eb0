#include "engine/buffer_pool.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace tessera::engine {
namespace {

constexpr size_t kMiB = 1 << 20;

bool Aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % BufferPool::kAlignment == 0; }

TEST(BufferPoolTest, ClassesAreAtMostAQuarterBiggerThanAsked) {
  EXPECT_EQ(BufferPool::ClassSize(1000), 1000u);  // not pooled
  EXPECT_EQ(BufferPool::ClassSize(64 * 1024), 64u * 1024);
  EXPECT_EQ(BufferPool::ClassSize(64 * 1024 + 1), 80u * 1024);
  EXPECT_EQ(BufferPool::ClassSize(3 * kMiB), 3 * kMiB);
  EXPECT_EQ(BufferPool::ClassSize(3 * kMiB + 1), 3 * kMiB + kMiB / 2);
  for (size_t bytes = 64 * 1024; bytes < 64 * kMiB; bytes = bytes * 9 / 7 + 13) {
    const size_t size = BufferPool::ClassSize(bytes);
    EXPECT_GE(size, bytes);
    EXPECT_LE(size, bytes + bytes / 4) << bytes;
    EXPECT_EQ(BufferPool::ClassSize(size), size) << "a class size is its own class";
  }
}

TEST(BufferPoolTest, AFreedBlockServesTheNextRequestOfItsClass) {
  BufferPool pool;
  void* a = pool.Allocate(kMiB);
  ASSERT_TRUE(Aligned(a));
  pool.Deallocate(a, kMiB);
  void* b = pool.Allocate(kMiB - 1000);  // same class
  BufferPoolStats stats = pool.Stats();
  if (BufferPool::pooling_enabled()) {
    EXPECT_EQ(b, a);
    EXPECT_EQ(stats.hits, 1u);
    EXPECT_EQ(stats.misses, 1u);
    EXPECT_EQ(stats.in_use_bytes, kMiB);
    EXPECT_EQ(stats.cached_bytes, 0u);
  } else {
    EXPECT_EQ(stats.hits + stats.misses, 0u);  // ASan build: straight to the system
  }
  void* c = pool.Allocate(2 * kMiB);  // another class: a new block
  EXPECT_NE(c, b);
  EXPECT_TRUE(Aligned(c));
  pool.Deallocate(b, kMiB - 1000);
  pool.Deallocate(c, 2 * kMiB);
  if (BufferPool::pooling_enabled()) {
    EXPECT_EQ(pool.Stats().cached_bytes, 3 * kMiB);
  }
}

TEST(BufferPoolTest, SmallBlocksAreNotPooled) {
  BufferPool pool;
  void* p = pool.Allocate(4096);
  EXPECT_TRUE(Aligned(p));
  pool.Deallocate(p, 4096);
  BufferPoolStats stats = pool.Stats();
  EXPECT_EQ(stats.hits + stats.misses, 0u);
  EXPECT_EQ(stats.cached_bytes, 0u);
}

TEST(BufferPoolTest, BlocksIdleForTheReleaseTimeGoBackToTheSystem) {
  if (!BufferPool::pooling_enabled()) {
    BufferPool pool;
    pool.Deallocate(pool.Allocate(kMiB), kMiB);
    EXPECT_EQ(pool.Stats().cached_bytes, 0u);
    return;
  }
  BufferPool pool(std::chrono::seconds(30));
  const auto before = BufferPool::Clock::now();
  void* a = pool.Allocate(kMiB);
  void* b = pool.Allocate(4 * kMiB);
  pool.Deallocate(a, kMiB);
  pool.Deallocate(b, 4 * kMiB);
  ASSERT_EQ(pool.Stats().cached_bytes, 5 * kMiB);
  pool.ReleaseIdle(before + std::chrono::seconds(29));
  EXPECT_EQ(pool.Stats().cached_bytes, 5 * kMiB) << "not idle long enough yet";
  pool.ReleaseIdle(BufferPool::Clock::now() + std::chrono::seconds(31));
  EXPECT_EQ(pool.Stats().cached_bytes, 0u);
  EXPECT_EQ(pool.Stats().returned, 2u);
}

TEST(BufferPoolTest, ReleaseAllEmptiesThePoolButNotTheBlocksInUse) {
  BufferPool pool;
  void* kept = pool.Allocate(kMiB);
  pool.Deallocate(pool.Allocate(2 * kMiB), 2 * kMiB);
  pool.ReleaseAll();
  EXPECT_EQ(pool.Stats().cached_bytes, 0u);
  if (BufferPool::pooling_enabled()) {
    EXPECT_EQ(pool.Stats().in_use_bytes, kMiB);
  }
  static_cast<char*>(kept)[kMiB - 1] = 1;  // still ours
  pool.Deallocate(kept, kMiB);
}

}  // namespace
}  // namespace tessera::engine
