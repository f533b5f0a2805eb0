// What an output container may hold, decided before any frame is decoded, so a
// run that could never be written fails at once with a message saying what to
// change — never after an hour of upscaling.
//
// Rules (docs/video.md):
//   containers   .mp4/.m4v (MP4), .mov (QuickTime), .mkv (Matroska), .webm (WebM)
//   video codec  libx264, libx265, h264_nvenc, hevc_nvenc: MP4, MOV, MKV
//                libvpx-vp9: MP4, MKV, WebM;   ffv1: MKV only
//   audio        copied; refused when the container cannot hold its codec
//   subtitles    MP4/MOV: mov_text copied, other text subtitles converted to
//                mov_text, picture subtitles (PGS, DVD) refused;
//                MKV: kept as they are (MP4's mov_text becomes SubRip, which MKV
//                holds and mov_text's plain text loses nothing in);
//                WebM: WebVTT only
//   attachments  (fonts) copied into MKV, left out elsewhere (logged)
//   other        further video streams (cover art) and data streams are left out (logged)
#pragma once

#include <string>
#include <string_view>
#include <vector>

extern "C" {
#include <libavcodec/codec_id.h>
#include <libavutil/avutil.h>
}

#include "util/status.h"

namespace tessera::video {

enum class Container { kMp4, kMov, kMatroska, kWebm };

// From the output's extension; kInvalid naming the accepted ones otherwise.
Result<Container> ContainerForPath(std::string_view path);
// libavformat's muxer name: "mp4", "mov", "matroska", "webm".
const char* MuxerName(Container container);
// For messages: "MP4", "MOV", "MKV", "WebM".
const char* ContainerLabel(Container container);

// The encoders --codec accepts, for --help and messages.
inline constexpr std::string_view kVideoCodecs = "libx264, libx265, libvpx-vp9, ffv1, h264_nvenc, hevc_nvenc";

// kInvalid when `codec` is not one of kVideoCodecs or `container` cannot hold it.
Status CheckVideoCodec(Container container, std::string_view codec);

enum class StreamAction {
  kUpscale,            // the video stream: decoded, upscaled, encoded
  kCopy,               // packets copied unchanged
  kSubtitleToMovText,  // text subtitles re-encoded as mov_text (MP4, MOV)
  kSubtitleToSubrip,   // mov_text re-encoded as SubRip (MKV)
  kDrop,               // left out; `reason` says why
};

struct InputStream {
  int index = 0;
  AVMediaType type = AVMEDIA_TYPE_UNKNOWN;
  AVCodecID codec = AV_CODEC_ID_NONE;
};

struct StreamPlan {
  int input_index = 0;
  StreamAction action = StreamAction::kDrop;
  std::string reason;  // kDrop only
};

// One plan per input stream, in input order. `video_index` is the stream
// upscaled. kInvalid naming the stream and its codec when one cannot be written.
Result<std::vector<StreamPlan>> PlanStreams(Container container, const std::vector<InputStream>& streams,
                                            int video_index);

}  // namespace tessera::video
