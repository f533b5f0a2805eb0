#include "video/frame_converter.h"

#include <string>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "video/av_error.h"

namespace tessera::video {
namespace {

// No resizing happens here, only format changes: full chroma resolution in and
// out and accurate rounding, so an RGB or 4:4:4 video goes through unchanged.
constexpr int kScaleFlags = SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP | SWS_BITEXACT;

// The JPEG ("J") formats are their plain twins at full range; libswscale warns
// about them, and the range is passed to it explicitly (ApplyColour).
AVPixelFormat WithoutJ(AVPixelFormat format) {
  switch (format) {
    case AV_PIX_FMT_YUVJ420P: return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: return AV_PIX_FMT_YUV411P;
    default: return format;
  }
}

bool IsJ(AVPixelFormat format) { return WithoutJ(format) != format; }

// libswscale's matrix for a colour space; unspecified is BT.601, as everywhere in libav*.
const int* Coefficients(AVColorSpace matrix) { return sws_getCoefficients(static_cast<int>(matrix)); }

int IsFullRange(AVColorRange range, AVPixelFormat format) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(format);
  if (d != nullptr && (d->flags & AV_PIX_FMT_FLAG_RGB)) return 1;
  return range == AVCOL_RANGE_JPEG || IsJ(format) ? 1 : 0;
}

// Sets the matrix and ranges; RGB-to-RGB conversions refuse a matrix (they need
// none), so the result is not an error.
void ApplyColour(SwsContext* context, ColourSpace colour, AVPixelFormat yuv_format, bool yuv_is_source) {
  const int* table = Coefficients(colour.matrix);
  const int yuv_full = IsFullRange(colour.range, yuv_format);
  const int src_range = yuv_is_source ? yuv_full : 1;
  const int dst_range = yuv_is_source ? 1 : yuv_full;
  // Brightness 0, contrast and saturation 1.0 in 16.16 fixed point: no change.
  sws_setColorspaceDetails(context, table, src_range, table, dst_range, 0, 1 << 16, 1 << 16);
}

}  // namespace

Result<imaging::PixelBuffer> FrameToRgb::Convert(const AVFrame& frame) {
  if (!context_ || frame.width != width_ || frame.height != height_ || frame.format != format_) {
    const auto format = static_cast<AVPixelFormat>(frame.format);
    context_.reset(sws_getContext(frame.width, frame.height, WithoutJ(format), frame.width, frame.height,
                                  AV_PIX_FMT_RGB24, kScaleFlags, nullptr, nullptr, nullptr));
    if (!context_) {
      const char* name = av_get_pix_fmt_name(format);
      return Status(InternalError(std::string("cannot convert pixel format ") + (name ? name : "?") + " to RGB"));
    }
    ColourSpace colour = stream_colour_;
    if (frame.colorspace != AVCOL_SPC_UNSPECIFIED) colour.matrix = frame.colorspace;
    if (frame.color_range != AVCOL_RANGE_UNSPECIFIED) colour.range = frame.color_range;
    ApplyColour(context_.get(), colour, format, true);
    width_ = frame.width;
    height_ = frame.height;
    format_ = frame.format;
  }
  imaging::PixelBuffer rgb;
  rgb.width = frame.width;
  rgb.height = frame.height;
  rgb.bands = 3;
  rgb.data.resize(static_cast<size_t>(rgb.width) * rgb.height * 3);
  uint8_t* planes[4] = {rgb.data.data(), nullptr, nullptr, nullptr};
  int strides[4] = {rgb.width * 3, 0, 0, 0};
  int rows = sws_scale(context_.get(), frame.data, frame.linesize, 0, frame.height, planes, strides);
  if (rows != frame.height)
    return Status(
        InternalError("libswscale converted " + std::to_string(rows) + " rows of " + std::to_string(frame.height)));
  return rgb;
}

RgbToFrame::RgbToFrame(int width, int height, AVPixelFormat format, ColourSpace colour)
    : width_(width), height_(height), format_(format), colour_(colour) {}

Result<Frame> RgbToFrame::Convert(const imaging::PixelBuffer& rgb) {
  if (rgb.width != width_ || rgb.height != height_ || rgb.bands != 3) {
    return Status(InternalError("an upscaled frame is " + std::to_string(rgb.width) + "x" + std::to_string(rgb.height) +
                                ", the encoder expects " + std::to_string(width_) + "x" + std::to_string(height_)));
  }
  if (!context_) {
    context_.reset(sws_getContext(width_, height_, AV_PIX_FMT_RGB24, width_, height_, WithoutJ(format_), kScaleFlags,
                                  nullptr, nullptr, nullptr));
    if (!context_) return Status(InternalError(std::string("cannot convert RGB to ") + av_get_pix_fmt_name(format_)));
    ApplyColour(context_.get(), colour_, format_, false);
  }
  Frame frame = MakeFrame();
  if (!frame) return Status({StatusCode::kOutOfMemory, "cannot allocate a video frame"});
  frame->width = width_;
  frame->height = height_;
  frame->format = format_;
  frame->colorspace = colour_.matrix;
  frame->color_range = colour_.range;
  if (int error = av_frame_get_buffer(frame.get(), 0); error < 0) {
    return AvStatus(StatusCode::kOutOfMemory, "cannot allocate a video frame", error);
  }
  const uint8_t* planes[4] = {rgb.data.data(), nullptr, nullptr, nullptr};
  const int strides[4] = {rgb.width * 3, 0, 0, 0};
  int rows = sws_scale(context_.get(), planes, strides, 0, height_, frame->data, frame->linesize);
  if (rows != height_)
    return Status(
        InternalError("libswscale converted " + std::to_string(rows) + " rows of " + std::to_string(height_)));
  return frame;
}

}  // namespace tessera::video
