#include "engine/gpu/caching_allocator.h"

#include <gtest/gtest.h>

#include "fake_device_memory.h"

namespace tessera::engine::gpu {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  void Advance(std::chrono::milliseconds d) { now += d; }
};

class CachingAllocatorTest : public ::testing::Test {
 protected:
  std::shared_ptr<CachingAllocator> Make(uint64_t capacity, uint64_t budget = 0,
                                         std::chrono::milliseconds idle = std::chrono::seconds(30)) {
    device_ = std::make_shared<FakeDeviceMemory>(capacity);
    CachingAllocatorOptions options;
    options.budget_bytes = budget;
    options.idle_release = idle;
    options.clock = [this] { return clock_.now; };
    return CachingAllocator::Create(device_, options);
  }
  std::shared_ptr<FakeDeviceMemory> device_;
  FakeClock clock_;
};

TEST(CachingAllocatorSizeClass, SmallBlocksRoundTo512BytesLargeOnesTo2MiB) {
  EXPECT_EQ(CachingAllocator::SizeClass(1), 512u);
  EXPECT_EQ(CachingAllocator::SizeClass(512), 512u);
  EXPECT_EQ(CachingAllocator::SizeClass(513), 1024u);
  EXPECT_EQ(CachingAllocator::SizeClass(kMiB - 1), kMiB);
  EXPECT_EQ(CachingAllocator::SizeClass(kMiB), 2 * kMiB);
  EXPECT_EQ(CachingAllocator::SizeClass(3 * kMiB), 4 * kMiB);
  EXPECT_EQ(CachingAllocator::SizeClass(4 * kMiB), 4 * kMiB);
}

TEST_F(CachingAllocatorTest, AFreedBlockIsReusedOnItsStreamWithoutTheDevice) {
  auto allocator = Make(64 * kMiB);
  void* first = nullptr;
  {
    Result<DeviceBlock> a = allocator->Allocate(3 * kMiB, /*stream=*/1);
    ASSERT_TRUE(a.ok()) << a.status().message();
    first = a->data();
    EXPECT_EQ(a->bytes(), 4 * kMiB);
  }
  EXPECT_EQ(allocator->stats().cached_bytes, 4 * kMiB);
  Result<DeviceBlock> again = allocator->Allocate(4 * kMiB, 1);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->data(), first);
  EXPECT_EQ(device_->allocate_calls(), 1);
  EXPECT_EQ(allocator->stats().cache_hits, 1u);
  // Another stream never gets a block a stream may still be using.
  Result<DeviceBlock> other = allocator->Allocate(4 * kMiB, 2);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->data(), first);
  EXPECT_EQ(device_->allocate_calls(), 2);
}

TEST_F(CachingAllocatorTest, ACachedBlockServesRequestsDownToHalfItsSize) {
  auto allocator = Make(64 * kMiB);
  { ASSERT_TRUE(allocator->Allocate(8 * kMiB).ok()); }
  { ASSERT_TRUE(allocator->Allocate(4 * kMiB).ok()); }  // 8 MiB cached block serves 4 MiB
  EXPECT_EQ(device_->allocate_calls(), 1);
  { ASSERT_TRUE(allocator->Allocate(2 * kMiB).ok()); }  // under half: a new block
  EXPECT_EQ(device_->allocate_calls(), 2);
}

TEST_F(CachingAllocatorTest, IdleBlocksGoBackToTheDeviceAfterIdleRelease) {
  auto allocator = Make(64 * kMiB, 0, std::chrono::seconds(30));
  { ASSERT_TRUE(allocator->Allocate(4 * kMiB).ok()); }
  EXPECT_EQ(device_->used(), 4 * kMiB);
  clock_.Advance(std::chrono::seconds(29));
  EXPECT_EQ(allocator->ReleaseIdle(), 0u);
  EXPECT_EQ(device_->used(), 4 * kMiB);
  clock_.Advance(std::chrono::seconds(2));
  EXPECT_EQ(allocator->ReleaseIdle(), 4 * kMiB);
  EXPECT_EQ(device_->used(), 0u);
  EXPECT_EQ(allocator->stats().cached_bytes, 0u);
}

TEST_F(CachingAllocatorTest, TheBudgetRefusesWhatWouldPassItAsOutOfMemory) {
  auto allocator = Make(1024 * kMiB, /*budget=*/16 * kMiB);
  Result<DeviceBlock> a = allocator->Allocate(10 * kMiB);
  ASSERT_TRUE(a.ok());
  Result<DeviceBlock> b = allocator->Allocate(8 * kMiB);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(b.status().message().find("VRAM budget"), std::string::npos) << b.status().message();
  // Cached blocks of other sizes are given back to make room.
  a->Reset();
  Result<DeviceBlock> c = allocator->Allocate(12 * kMiB);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(allocator->stats().cached_bytes, 0u);
  EXPECT_LE(device_->used(), 16 * kMiB);
}

TEST_F(CachingAllocatorTest, ADeviceOutOfMemoryReleasesTheCacheAndRetriesOnce) {
  auto allocator = Make(10 * kMiB);
  { ASSERT_TRUE(allocator->Allocate(6 * kMiB, 1).ok()); }  // cached on stream 1
  Result<DeviceBlock> other = allocator->Allocate(6 * kMiB, 2);
  ASSERT_TRUE(other.ok()) << other.status().message();  // made room by freeing stream 1's block
  EXPECT_EQ(device_->used(), 6 * kMiB);
  // With nothing cached, the device's refusal is the typed out-of-memory.
  Result<DeviceBlock> more = allocator->Allocate(6 * kMiB, 2);
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.status().code(), StatusCode::kOutOfMemory);
  device_->FailNext(1);
  Result<DeviceBlock> small = allocator->Allocate(512);
  EXPECT_EQ(small.status().code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(device_->bad_frees(), 0);
}

TEST_F(CachingAllocatorTest, ProbeCountsTheCacheAsFreeWithinTheBudget) {
  auto allocator = Make(100 * kMiB);
  Result<DeviceBlock> held = allocator->Allocate(20 * kMiB);
  { ASSERT_TRUE(allocator->Allocate(10 * kMiB).ok()); }
  Result<DeviceMemoryInfo> info = allocator->Probe();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->total_bytes, 100 * kMiB);
  EXPECT_EQ(info->free_bytes, 80 * kMiB);  // 70 free on the device + 10 cached

  auto budgeted = Make(100 * kMiB, 32 * kMiB);
  Result<DeviceBlock> in_use = budgeted->Allocate(20 * kMiB);
  info = budgeted->Probe();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->total_bytes, 32 * kMiB);
  EXPECT_EQ(info->free_bytes, 12 * kMiB);
}

TEST_F(CachingAllocatorTest, BlocksOutliveTheirOwnerHandleAndEverythingIsFreedAtTheEnd) {
  auto allocator = Make(64 * kMiB);
  Result<DeviceBlock> block = allocator->Allocate(kMiB);
  ASSERT_TRUE(block.ok());
  std::weak_ptr<CachingAllocator> weak = allocator;
  allocator.reset();
  EXPECT_FALSE(weak.expired());  // the block holds it
  *block = DeviceBlock();
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(device_->used(), 0u);
  EXPECT_EQ(device_->bad_frees(), 0);
}

}  // namespace
}  // namespace tessera::engine::gpu
