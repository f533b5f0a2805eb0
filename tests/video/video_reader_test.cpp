// VideoReader on its own: file order, and a segment (VideoRange) read alone.
#include "video/video_reader.h"

#include <gtest/gtest.h>

#include "video_clips.h"

namespace tessera::video {
namespace {

using test::Ffmpeg;
using test::TempDir;

struct Read {
  std::vector<int64_t> frame_pts;  // video stream time base
  std::vector<int64_t> audio_pts;  // converted to the video stream's time base
};

Read ReadAll(const std::string& path, VideoRange range = {}) {
  Read read;
  Result<std::unique_ptr<VideoReader>> reader = VideoReader::Open(path, range);
  EXPECT_TRUE(reader.ok()) << reader.status().message();
  if (!reader.ok()) return read;
  for (;;) {
    Result<ReadItem> item = (*reader)->Next();
    EXPECT_TRUE(item.ok()) << item.status().message();
    if (!item.ok() || item->kind == ReadItem::Kind::kEnd) break;
    if (item->kind == ReadItem::Kind::kFrame) {
      read.frame_pts.push_back(item->frame->pts);
    } else {
      const AVRational from = (*reader)->format().streams[item->packet->stream_index]->time_base;
      read.audio_pts.push_back(av_rescale_q(item->packet->pts, from, (*reader)->video_stream().time_base));
    }
  }
  return read;
}

TEST(VideoReaderTest, ASegmentBetweenKeyframesReadsOnlyItsFramesAndPackets) {
  TempDir dir;
  // Keyframes every 2 frames, no B-frames: frames 0, 2, 4 start segments.
  Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.6", "-f", "lavfi", "-i",
          "sine=frequency=440:sample_rate=48000:duration=0.6", "-c:v", "libx264", "-g", "2", "-bf", "0", "-c:a",
          "pcm_s16le", "-shortest", dir / "in.mkv"});
  Read whole = ReadAll(dir / "in.mkv");
  ASSERT_EQ(whole.frame_pts.size(), 6u);
  for (size_t i = 1; i < 6; ++i) ASSERT_EQ(whole.frame_pts[i] - whole.frame_pts[i - 1], 100);  // 1/1000 s
  ASSERT_FALSE(whole.audio_pts.empty());

  const std::vector<int64_t>& f = whole.frame_pts;
  Read middle = ReadAll(dir / "in.mkv", {f[2], f[4]});
  EXPECT_EQ(middle.frame_pts, (std::vector<int64_t>{f[2], f[3]}));
  ASSERT_FALSE(middle.audio_pts.empty());
  for (int64_t pts : middle.audio_pts) {
    EXPECT_GE(pts, f[2]);
    EXPECT_LT(pts, f[4]);
  }
  Read tail = ReadAll(dir / "in.mkv", {f[4], std::nullopt});
  EXPECT_EQ(tail.frame_pts, (std::vector<int64_t>{f[4], f[5]}));
}

TEST(VideoReaderTest, AMissingFileIsNotFound) {
  Result<std::unique_ptr<VideoReader>> reader = VideoReader::Open("/nonexistent/clip.mkv");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  EXPECT_NE(reader.status().message().find("/nonexistent/clip.mkv"), std::string::npos);
}

}  // namespace
}  // namespace tessera::video
