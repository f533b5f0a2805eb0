// The cut of a video into keyframe segments (video_segments.h) and the --range text.
#include "video/video_segments.h"

#include <gtest/gtest.h>

#include "video_clips.h"

namespace tessera::video {
namespace {

using test::Ffmpeg;
using test::TempDir;

// 16 frames at 10 fps (time base 1/10240 in MP4), a keyframe every 4 frames.
std::string MakeClip(const TempDir& dir) {
  std::string path = dir / "clip.mp4";
  Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "16", "-c:v", "libx264", "-g", "4",
          "-keyint_min", "4", "-sc_threshold", "0", "-pix_fmt", "yuv420p", path});
  return path;
}

TEST(VideoSegments, CutsAtKeyframesIntoBalancedContiguousRanges) {
  TempDir dir;
  auto plan = PlanSegments(MakeClip(dir), 2);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->frames, 16);
  EXPECT_EQ(plan->keyframes, 4);
  ASSERT_EQ(plan->segments.size(), 2u);
  EXPECT_FALSE(plan->segments[0].range.start);  // from the file's start
  EXPECT_EQ(plan->segments[0].range.end, 8 * 1024);
  EXPECT_EQ(plan->segments[1].range.start, 8 * 1024);
  EXPECT_FALSE(plan->segments[1].range.end);  // to the file's end
  EXPECT_EQ(plan->segments[0].frames, 8);
  EXPECT_EQ(plan->segments[1].frames, 8);
}

TEST(VideoSegments, NeverMoreSegmentsThanKeyframes) {
  TempDir dir;
  auto plan = PlanSegments(MakeClip(dir), 10);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->segments.size(), 4u);
  int64_t frames = 0;
  for (size_t i = 0; i < plan->segments.size(); ++i) {
    EXPECT_EQ(plan->segments[i].index, static_cast<int>(i));
    EXPECT_EQ(plan->segments[i].frames, 4);
    if (i > 0) {
      EXPECT_EQ(plan->segments[i].range.start, plan->segments[i - 1].range.end);
    }
    frames += plan->segments[i].frames;
  }
  EXPECT_EQ(frames, 16);
}

TEST(VideoSegments, AnUnreadableFileIsABadVideo) {
  TempDir dir;
  Ffmpeg({"-f", "lavfi", "-i", "sine=frequency=440", "-t", "0.5", dir / "tone.wav"});
  auto plan = PlanSegments(dir / "tone.wav", 2);
  EXPECT_EQ(plan.status().code(), StatusCode::kBadImage);
}

TEST(VideoSegments, RangeTextRoundTrips) {
  auto both = ParseVideoRange("4096:8192");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->start, 4096);
  EXPECT_EQ(both->end, 8192);
  EXPECT_EQ(FormatVideoRange(*both), "4096:8192");
  auto open_end = ParseVideoRange("4096:");
  ASSERT_TRUE(open_end.ok());
  EXPECT_FALSE(open_end->end);
  EXPECT_EQ(FormatVideoRange(*open_end), "4096:");
  EXPECT_EQ(FormatVideoRange(*ParseVideoRange(":")), ":");
  EXPECT_FALSE(ParseVideoRange("12").ok());
  EXPECT_FALSE(ParseVideoRange("a:b").ok());
  EXPECT_FALSE(ParseVideoRange("8192:4096").ok());
}

}  // namespace
}  // namespace tessera::video
