// What a video file holds, read before any frame is decoded: the limits
// (--max-video-pixels, --max-video-frames) and the container rules are checked
// on this, so a run that must fail fails before work starts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/status.h"
#include "video/av_handles.h"
#include "video/container_rules.h"
#include "video/libav_error_watch.h"

namespace tessera::video {

struct VideoInfo {
  std::string format;  // the demuxer: "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", ...
  int video_index = -1;
  int width = 0;
  int height = 0;
  std::string codec;      // "h264", ...
  std::string pix_fmt;    // "yuv420p", ...
  double frame_rate = 0;  // average; 0 when unknown
  // Frames in the video stream: the container's count when it has one, else the
  // video packets counted by a pass over the file (demuxing only, no decoding).
  int64_t frames = 0;
  std::vector<InputStream> streams;
  uint64_t pixels() const { return static_cast<uint64_t>(width) * static_cast<uint64_t>(height); }
};

// Whether `path` is a video for `tessera upscale`: content decides, not the
// name. Files whose first bytes are an image format libvips reads (PNG, GIF,
// HEIF...) are images; otherwise a file is a video when libavformat opens it
// with a demuxer that is not an image reader and finds a moving-picture stream,
// or, when it cannot open it, when its first bytes are a video container's (a
// damaged video, which then fails as a video).
bool LooksLikeVideo(const std::string& path);

// An opened input and the watch on what its demuxer logs as errors.
struct InputFile {
  InputContext context;
  std::unique_ptr<LibavErrorWatch> errors;  // declared after: stops watching before the context is freed
};

// Opens `path` and reads its stream parameters. Damage is an error: kBadImage
// when the demuxer fails or logs an error meanwhile; kNotFound for a missing file.
Result<InputFile> OpenInputFile(const std::string& path);

// The first video stream that is not cover art: the one tessera upscales; -1 if none.
int FindUpscaledStream(const AVFormatContext& context);

// kNotFound for a missing file, kBadImage for one libavformat cannot read or
// that has no video stream.
Result<VideoInfo> ProbeVideo(const std::string& path);

}  // namespace tessera::video
