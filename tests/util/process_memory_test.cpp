#include "util/process_memory.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

namespace tessera {
namespace {

TEST(ProcessMemoryTest, ReadsResidentAndAvailableMemory) {
  EXPECT_GT(CurrentRssBytes(), 1u << 20);
  EXPECT_GE(PeakRssBytes(), CurrentRssBytes());
  std::optional<uint64_t> available = AvailableMemoryBytes();
  ASSERT_TRUE(available.has_value());
  EXPECT_GT(*available, 16u << 20);
}

// The worker reports a per-request peak by resetting the kernel's mark before
// each request; this is the behaviour it relies on.
TEST(ProcessMemoryTest, ResetPeakForgetsAnEarlierPeak) {
  constexpr size_t kSize = 96u << 20;
  const uint64_t before = PeakRssBytes();
  {
    std::unique_ptr<char[]> block(new char[kSize]);
    std::memset(block.get(), 1, kSize);  // touch every page
    EXPECT_GE(PeakRssBytes(), CurrentRssBytes());
    EXPECT_GT(PeakRssBytes(), before + kSize / 2);
  }
  const uint64_t with_block = PeakRssBytes();
  ASSERT_TRUE(ResetPeakRss());
  EXPECT_LT(PeakRssBytes(), with_block - kSize / 2);
}

}  // namespace
}  // namespace tessera
