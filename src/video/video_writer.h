// Writes the output container: the upscaled frames through the chosen encoder,
// every other kept stream as container_rules.h planned it (copied packets,
// converted subtitles), the chapters and the file's metadata.
//
// The file is written to "<output>.partial" and renamed over `output` only
// after the trailer is written and the data is on disk (fsync of the file and
// its folder): a failed run — an encoder error, a full disk — removes the
// partial file and leaves no changed `output`, and a finished file survives a
// crash. That is what makes one segment of a video a durable unit of work.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"
#include "video/av_handles.h"
#include "video/container_rules.h"
#include "video/frame_converter.h"
#include "video/subtitle_converter.h"
#include "video/video_reader.h"

namespace tessera::video {

struct VideoEncodeOptions {
  std::string codec = "libx264";  // one of kVideoCodecs
  // Constant quality (x264/x265 crf, VP9 crf with no bitrate cap, NVENC cq); unset:
  // DefaultCrf. ffv1 is lossless and refuses it.
  std::optional<int> crf;
  // x264/x265: ultrafast … placebo; NVENC: p1 … p7; VP9: cpu-used 0 … 8. Empty: the encoder's.
  std::string preset;
  // Empty: the format closest to the input's that the encoder takes.
  std::string pix_fmt;
};

// The crf used when none is given: visually lossless for upscaled material.
int DefaultCrf(std::string_view codec);

// fsync of a file (or, with `directory`, a folder: a rename in it becomes
// durable); kIo naming the path.
Status SyncFile(const std::string& path, bool directory);
// A finished `.partial` file made the output: synced, renamed over `output`, its
// folder synced, so that the output either does not exist or is whole.
Status PublishPartial(const std::string& partial, const std::string& output);

// Copies a stream's side data (with `picture_only`: only what describes the
// picture — rotation, stereo, 360°, HDR — not the bitstream's), and a file's
// chapters; also used by the segment joiner (segment_joiner.h).
Status CopySideData(const AVStream& in, AVStream* out, bool picture_only);
Status CopyChapters(const AVFormatContext& in, AVFormatContext* out);

struct VideoWriterSetup {
  std::string output;
  Container container = Container::kMp4;
  std::vector<StreamPlan> plans;  // one per input stream
  int width = 0;                  // of the upscaled frames
  int height = 0;
  VideoEncodeOptions encode;
};

class VideoWriter {
 public:
  // Opens the encoder and writes the header; `reader` gives the input's streams.
  static Result<std::unique_ptr<VideoWriter>> Open(const VideoWriterSetup& setup, const VideoReader& reader);
  // Removes the partial file unless Finish() succeeded.
  ~VideoWriter();

  // The frames WriteFrame takes: this size, pixel format and colour space.
  AVPixelFormat pix_fmt() const { return encoder_->pix_fmt; }
  ColourSpace colour() const { return {encoder_->colorspace, encoder_->color_range}; }

  // One upscaled frame, pts in the input video stream's time base.
  Status WriteFrame(const AVFrame& frame);
  // A packet of another input stream (ReadItem::kPacket); dropped streams are skipped.
  Status WritePacket(AVPacket& packet);
  // Flushes the encoder, writes the trailer, makes the file durable and renames it.
  Status Finish();

 private:
  VideoWriter() = default;
  Status DrainEncoder();
  Status WriteError(int error) const;

  std::string output_;
  std::string partial_;
  OutputContext out_;
  CodecContext encoder_;
  int video_out_index_ = -1;
  std::vector<int> out_index_;  // per input stream; -1 = dropped
  std::vector<AVRational> in_time_base_;
  std::vector<std::unique_ptr<SubtitleConverter>> subtitles_;  // per input stream, or null
  Packet packet_ = MakePacket();
  int64_t frames_written_ = 0;
  bool finished_ = false;
};

}  // namespace tessera::video
