// Reads a video file in order: the upscaled stream's frames decoded, every other
// stream's packets as they are (for stream copy). Frames and packets come out in
// the file's order, so whoever writes them keeps the interleaving.
//
// Damage is an error, never silently skipped frames: the decoder runs with
// AV_EF_EXPLODE; a frame flagged corrupt, a packet the demuxer could only read
// in part, or an error the demuxer logged (libav_error_watch.h: Matroska's
// "File ended prematurely", a damaged cluster it skipped) stops the read; and a
// file that ends before the frame count its header announces (MP4) is reported
// as truncated. Each message names the frame (counting from 0, in decoding
// order) and its time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "util/status.h"
#include "video/av_handles.h"
#include "video/frame_converter.h"
#include "video/libav_error_watch.h"

namespace tessera::video {

// A segment of the input: the frames whose timestamps fall in [start, end), in
// the video stream's time base; unset ends are the file's. `start` should be a
// keyframe's timestamp (the read seeks to the keyframe at or before it and skips
// frames before `start`), so that segments cut at keyframes decode on their own.
struct VideoRange {
  std::optional<int64_t> start;
  std::optional<int64_t> end;
  bool whole() const { return !start && !end; }
};

struct ReadItem {
  enum class Kind { kFrame, kPacket, kEnd };
  Kind kind = Kind::kEnd;
  Frame frame;               // kFrame: decoded, timestamps in the video stream's time base
  int64_t frame_index = -1;  // kFrame: counting from 0 within the read
  Packet packet;             // kPacket: another stream's packet, in its stream's time base
};

class VideoReader {
 public:
  // Opens `path` and the decoder of its upscaled stream (video_probe.h's choice).
  static Result<std::unique_ptr<VideoReader>> Open(const std::string& path, VideoRange range = {});

  // The next frame or packet, or kEnd. Errors are kBadImage naming the frame.
  Result<ReadItem> Next();

  const AVFormatContext& format() const { return *input_; }
  int video_index() const { return video_index_; }
  const AVStream& video_stream() const { return *input_->streams[video_index_]; }
  const AVCodecContext& decoder() const { return *decoder_; }
  ColourSpace colour() const { return {decoder_->colorspace, decoder_->color_range}; }

 private:
  VideoReader() = default;
  Status FrameError(std::string_view what, int error) const;
  std::string Where() const;  // "frame N in decoding order (t = S s)"
  bool InRange(const AVPacket& packet) const;
  // At the end of a whole-file read: kBadImage when its header announced more frames.
  Status CheckComplete() const;

  std::string path_;
  InputContext input_;
  std::unique_ptr<LibavErrorWatch> demuxer_errors_;  // after input_: stops watching before it is freed
  CodecContext decoder_;
  Packet packet_ = MakePacket();
  int video_index_ = -1;
  VideoRange range_;
  int64_t frames_out_ = 0;
  int64_t video_packets_ = 0;
  int64_t packet_pts_ = AV_NOPTS_VALUE;  // of the last video packet sent to the decoder
  bool input_done_ = false;
  bool ended_ = false;
};

}  // namespace tessera::video
