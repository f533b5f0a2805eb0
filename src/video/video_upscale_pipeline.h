// A whole video (or one segment of it) through a super-resolution model:
// decode → upscale → encode, in three threads joined by bounded queues, so
// decoding the next frame and encoding the last one happen while the model runs
// on the current one. Frames stay in memory; nothing goes to disk but the output.
//
// Everything that can be refused is refused before the first frame is decoded:
// an unreadable input, --max-video-pixels / --max-video-frames, container and
// codec rules (container_rules.h), encoder flags. A failure mid-way stops all
// three threads, and the partial output is removed (video_writer.h).
//
// A segment (VideoRange, a keyframe-aligned time range of the input) runs the
// same way into its own durable file; phase 2 of issue 19 cuts a video into
// segments, runs them on several lanes and joins them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "engine/upscaler.h"
#include "util/status.h"
#include "video/video_reader.h"
#include "video/video_writer.h"

namespace tessera::video {

struct VideoLimits {
  uint64_t max_pixels = 3840ull * 2160;  // of one input frame (4K UHD)
  int64_t max_frames = 0;                // of the whole input, even for a segment; 0: no limit
};

struct VideoUpscaleOptions {
  std::string input;
  std::string output;
  VideoEncodeOptions encode;
  VideoLimits limits;
  VideoRange range;  // whole file by default
  // Only the upscaled stream is written (`--video-only`): a segment of a server
  // video job, whose other streams the join copies from the source once.
  bool video_only = false;
  // Items waiting between two stages (frames, and packets of other streams
  // travelling with them to keep their order). The queue after the model holds
  // upscaled frames, the largest; it is kept short.
  size_t decoded_queue = 8;
  size_t upscaled_queue = 3;
};

struct VideoUpscaleReport {
  int64_t frames = 0;
  int64_t frames_expected = 0;     // the probe's count for the whole file; 0 for a segment
  double seconds = 0;              // the whole run
  double upscale_seconds = 0;      // inside the model
  double decode_wait_seconds = 0;  // the model waiting for a decoded frame
  std::string engine;              // the upscaler's description
};

// Called from the encoding thread after each frame is written; `total` is 0
// when unknown (a segment).
using FrameProgressFn = std::function<void(int64_t done, int64_t total)>;

Status UpscaleVideo(const engine::Upscaler& upscaler, const VideoUpscaleOptions& options,
                    const FrameProgressFn& progress = nullptr, VideoUpscaleReport* report = nullptr);

}  // namespace tessera::video
