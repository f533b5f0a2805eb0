// Joining a video's upscaled segments (video/segment_joiner.h): every frame at
// its source time and the audio copied once; a full disk fails the join and
// leaves neither a partial file nor a result.
#include "video/segment_joiner.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "engine/lanczos_upscaler.h"
#include "video/av_error.h"
#include "video/video_segments.h"
#include "video/video_upscale_pipeline.h"
#include "../support/test_images.h"
#include "video_clips.h"

namespace tessera::video {
namespace {

namespace fs = std::filesystem;
using test::Ffmpeg;
using test::TempDir;

// A 64x48 clip of 12 frames with a keyframe every 4 and a sine tone, and its
// three segments upscaled ×2 (Lanczos) into MP4 files of their own, as the
// server's segment jobs make them.
struct SegmentedClip {
  std::string source;
  std::vector<std::string> segments;
};

SegmentedClip MakeSegments(const TempDir& dir) {
  SegmentedClip clip{dir / "in.mp4", {}};
  Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-f", "lavfi", "-i",
          "sine=frequency=440:sample_rate=44100", "-t", "1.2", "-frames:v", "12", "-c:v", "libx264", "-g", "4",
          "-keyint_min", "4", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", clip.source});
  auto plan = PlanSegments(clip.source, 3);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  if (!plan.ok()) return clip;
  EXPECT_EQ(plan->segments.size(), 3u);
  test::InitImagingForTests();
  ShowOnlyLibavErrors();
  engine::LanczosUpscaler lanczos(2.0);
  for (const VideoSegment& segment : plan->segments) {
    VideoUpscaleOptions options;
    options.input = clip.source;
    options.output = dir / ("segment-" + std::to_string(segment.index) + ".mp4");
    options.range = segment.range;
    options.video_only = true;
    Status s = UpscaleVideo(lanczos, options);
    EXPECT_TRUE(s.ok()) << s.ToString();
    clip.segments.push_back(options.output);
  }
  return clip;
}

TEST(SegmentJoiner, JoinsEveryFrameAtItsSourceTimeWithTheSourcesAudio) {
  TempDir dir;
  SegmentedClip clip = MakeSegments(dir);
  ASSERT_EQ(clip.segments.size(), 3u);
  JoinReport report;
  Status joined = JoinSegments(clip.source, clip.segments, dir / "out.mp4", &report);
  ASSERT_TRUE(joined.ok()) << joined.ToString();
  EXPECT_EQ(report.video_packets, 12);
  EXPECT_GT(report.other_packets, 0);
  EXPECT_EQ(test::FrameTimes(dir / "out.mp4"), test::FrameTimes(clip.source));
  EXPECT_EQ(test::PacketPayloads(dir / "out.mp4", "0:a"), test::PacketPayloads(clip.source, "0:a"));
  EXPECT_FALSE(fs::exists(dir / "out.mp4.partial"));
}

TEST(SegmentJoiner, AFullDiskFailsTheJoinAndLeavesNoFile) {
  TempDir dir;
  SegmentedClip clip = MakeSegments(dir);
  ASSERT_EQ(clip.segments.size(), 3u);
  const std::string output = dir / "out.mp4";
  // In a child process of its own: a file size limit makes writes fail with
  // EFBIG, as a full disk fails them with ENOSPC (SIGXFSZ ignored so that the
  // write returns the error instead of killing the process).
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    Status joined = JoinSegments(clip.source, clip.segments, output);
    const bool says_why = joined.code() == StatusCode::kIo && joined.message().find("cannot") != std::string::npos;
    ::_exit(joined.ok() ? 1 : says_why ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the join succeeded; 2: it failed without saying it could not write";
  EXPECT_FALSE(fs::exists(output + ".partial"));
  EXPECT_FALSE(fs::exists(output));
}

}  // namespace
}  // namespace tessera::video
