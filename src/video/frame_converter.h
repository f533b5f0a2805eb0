// Decoded video frames <-> the 8-bit RGB the engine computes on, with libswscale.
// The YUV <-> RGB matrix and range are the video's own (BT.601, BT.709, BT.2020;
// limited or full range), both ways, so colours come out as they went in; the
// encoder is told the same matrix, primaries, transfer and range.
#pragma once

#include <cstdint>

#include "imaging/pixel_buffer.h"
#include "util/status.h"
#include "video/av_handles.h"

namespace tessera::video {

struct ColourSpace {
  AVColorSpace matrix = AVCOL_SPC_UNSPECIFIED;
  AVColorRange range = AVCOL_RANGE_UNSPECIFIED;
};

// Decoded frames of any pixel format to RGB24. One per thread.
class FrameToRgb {
 public:
  // `colour`: the stream's, used where a frame does not say its own.
  explicit FrameToRgb(ColourSpace colour) : stream_colour_(colour) {}
  Result<imaging::PixelBuffer> Convert(const AVFrame& frame);

 private:
  ColourSpace stream_colour_;
  ScaleContext context_;
  int width_ = 0, height_ = 0;
  int format_ = -1;
};

// RGB24 to frames of the encoder's pixel format and size. One per thread.
class RgbToFrame {
 public:
  RgbToFrame(int width, int height, AVPixelFormat format, ColourSpace colour);
  Result<Frame> Convert(const imaging::PixelBuffer& rgb);

 private:
  int width_, height_;
  AVPixelFormat format_;
  ColourSpace colour_;
  ScaleContext context_;
};

}  // namespace tessera::video
