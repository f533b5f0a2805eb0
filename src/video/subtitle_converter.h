// Re-encodes a text subtitle stream for a container that cannot hold it as it
// is: SubRip/ASS/WebVTT to mov_text for MP4, mov_text to SubRip for MKV
// (container_rules.h). The text and its timing are kept; only the wrapping changes.
#pragma once

#include <memory>

#include "util/status.h"
#include "video/av_handles.h"

namespace tessera::video {

class SubtitleConverter {
 public:
  // Decoder of `input`'s codec, encoder of `target`; both in `input`'s time base.
  static Result<std::unique_ptr<SubtitleConverter>> Open(const AVStream& input, AVCodecID target);

  // The encoder, whose parameters the output stream takes.
  const AVCodecContext& encoder() const { return *encoder_; }

  // One input packet to one output packet in the input's time base; an empty
  // Packet when the input held no subtitle (e.g. a clearing event).
  Result<Packet> Convert(const AVPacket& packet);

 private:
  SubtitleConverter() = default;
  CodecContext decoder_;
  CodecContext encoder_;
};

}  // namespace tessera::video
