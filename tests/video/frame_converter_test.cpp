// The YUV <-> RGB conversions around the model use the video's own matrix and
// range. A wrong matrix used both ways would largely cancel out in the output,
// so each direction is checked on its own here.
#include "video/frame_converter.h"

#include <gtest/gtest.h>

#include <cmath>

#include "video/video_reader.h"
#include "video_clips.h"

namespace tessera::video {
namespace {

// The luma RgbToFrame stores for one RGB colour, converted as `colour` says.
int StoredLuma(uint8_t r, uint8_t g, uint8_t b, ColourSpace colour) {
  imaging::PixelBuffer rgb{4, 2, 3, {}};
  for (int i = 0; i < 8; ++i) rgb.data.insert(rgb.data.end(), {r, g, b});
  RgbToFrame to_frame(4, 2, AV_PIX_FMT_YUV444P, colour);
  Result<Frame> frame = to_frame.Convert(rgb);
  EXPECT_TRUE(frame.ok()) << frame.status().message();
  return frame.ok() ? (*frame)->data[0][0] : -1;
}

TEST(FrameConverterTest, RgbToFrameUsesTheMatrixAndRangeItIsGiven) {
  EXPECT_EQ(StoredLuma(255, 255, 255, {AVCOL_SPC_BT709, AVCOL_RANGE_JPEG}), 255);
  EXPECT_EQ(StoredLuma(255, 255, 255, {AVCOL_SPC_BT709, AVCOL_RANGE_MPEG}), 235);
  // Pure red: 0.2126 of full scale in BT.709, 0.299 in BT.601.
  EXPECT_NEAR(StoredLuma(255, 0, 0, {AVCOL_SPC_BT709, AVCOL_RANGE_JPEG}), 0.2126 * 255, 1);
  EXPECT_NEAR(StoredLuma(255, 0, 0, {AVCOL_SPC_BT709, AVCOL_RANGE_MPEG}), 16 + 0.2126 * 219, 1);
  EXPECT_NEAR(StoredLuma(255, 0, 0, {AVCOL_SPC_SMPTE170M, AVCOL_RANGE_MPEG}), 16 + 0.299 * 219, 1);
  EXPECT_NEAR(StoredLuma(255, 0, 0, {AVCOL_SPC_UNSPECIFIED, AVCOL_RANGE_UNSPECIFIED}), 16 + 0.299 * 219, 1);
}

TEST(FrameConverterTest, FrameToRgbAgreesWithFfmpegOnABt709FullRangeClip) {
  test::TempDir dir;
  test::Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.2", "-c:v", "libx264", "-pix_fmt",
                "yuv444p", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range",
                "pc", "-qp", "0", dir / "in.mkv"});
  std::vector<std::vector<uint8_t>> expected = test::RgbFrames(dir / "in.mkv");
  ASSERT_EQ(expected.size(), 2u);
  Result<std::unique_ptr<VideoReader>> reader = VideoReader::Open(dir / "in.mkv");
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  FrameToRgb to_rgb((*reader)->colour());
  size_t frames = 0;
  for (;;) {
    Result<ReadItem> item = (*reader)->Next();
    ASSERT_TRUE(item.ok()) << item.status().message();
    if (item->kind == ReadItem::Kind::kEnd) break;
    ASSERT_EQ(item->kind, ReadItem::Kind::kFrame);
    Result<imaging::PixelBuffer> rgb = to_rgb.Convert(*item->frame);
    ASSERT_TRUE(rgb.ok()) << rgb.status().message();
    ASSERT_EQ(rgb->data.size(), expected[frames].size());
    int worst = 0;
    for (size_t i = 0; i < rgb->data.size(); ++i) worst = std::max(worst, std::abs(rgb->data[i] - expected[frames][i]));
    EXPECT_LE(worst, 2) << "frame " << frames;  // rounding only; the BT.601 matrix would be tens of levels off
    ++frames;
  }
  EXPECT_EQ(frames, 2u);
}

}  // namespace
}  // namespace tessera::video
