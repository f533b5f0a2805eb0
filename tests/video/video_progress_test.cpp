#include "video/video_progress.h"

#include <gtest/gtest.h>

namespace tessera::video {
namespace {

using std::chrono::duration;

TEST(VideoProgressTest, LineHasFramesRateAndTimeLeft) {
  EXPECT_EQ(ProgressLine(30, 120, duration<double>(10)), "frames 30/120 (25%)  3.00 fps  ETA 0:30");
  EXPECT_EQ(ProgressLine(1, 10000, duration<double>(2)), "frames 1/10000 (0%)  0.50 fps  ETA 5:33:18");
  EXPECT_EQ(ProgressLine(120, 120, duration<double>(61)), "frames 120/120 (100%)  1.97 fps  done in 1:01");
  EXPECT_EQ(ProgressLine(0, 120, duration<double>(0)), "frames 0/120 (0%)  0.00 fps  ETA --:--");
  EXPECT_EQ(ProgressLine(7, 0, duration<double>(7)), "frames 7  1.00 fps");
}

}  // namespace
}  // namespace tessera::video
