#include "video/subtitle_converter.h"

#include <cstring>
#include <vector>

#include "video/av_error.h"

namespace tessera::video {
namespace {

// Larger than any text subtitle event: mov_text and SubRip events are short lines.
constexpr int kMaxSubtitleBytes = 1 << 20;

}  // namespace

Result<std::unique_ptr<SubtitleConverter>> SubtitleConverter::Open(const AVStream& input, AVCodecID target) {
  const std::string from = avcodec_get_name(input.codecpar->codec_id);
  const std::string to = avcodec_get_name(target);
  const AVCodec* decoder = avcodec_find_decoder(input.codecpar->codec_id);
  const AVCodec* encoder = avcodec_find_encoder(target);
  if (decoder == nullptr || encoder == nullptr) {
    return Status({StatusCode::kUnsupported, "this libavcodec cannot convert " + from + " subtitles to " + to});
  }
  std::unique_ptr<SubtitleConverter> c(new SubtitleConverter());
  c->decoder_.reset(avcodec_alloc_context3(decoder));
  c->encoder_.reset(avcodec_alloc_context3(encoder));
  if (!c->decoder_ || !c->encoder_) return Status({StatusCode::kOutOfMemory, "cannot allocate a subtitle codec"});
  if (int e = avcodec_parameters_to_context(c->decoder_.get(), input.codecpar); e < 0) {
    return AvStatus(StatusCode::kInternal, "cannot set up the " + from + " decoder", e);
  }
  c->decoder_->pkt_timebase = input.time_base;
  if (int e = avcodec_open2(c->decoder_.get(), decoder, nullptr); e < 0) {
    return AvStatus(StatusCode::kBadImage, "cannot open the " + from + " decoder", e);
  }
  c->encoder_->time_base = input.time_base;
  // The encoder needs the decoder's ASS header (styles) to lay out the events.
  if (c->decoder_->subtitle_header_size > 0) {
    const int size = c->decoder_->subtitle_header_size;
    c->encoder_->subtitle_header = static_cast<uint8_t*>(av_mallocz(size + 1));
    if (c->encoder_->subtitle_header == nullptr) return Status({StatusCode::kOutOfMemory, "subtitle header"});
    std::memcpy(c->encoder_->subtitle_header, c->decoder_->subtitle_header, size);
    c->encoder_->subtitle_header_size = size;
  }
  if (int e = avcodec_open2(c->encoder_.get(), encoder, nullptr); e < 0) {
    return AvStatus(StatusCode::kInternal, "cannot open the " + to + " encoder", e);
  }
  return c;
}

Result<Packet> SubtitleConverter::Convert(const AVPacket& packet) {
  Subtitle subtitle(new AVSubtitle{});
  int got = 0;
  int e = avcodec_decode_subtitle2(decoder_.get(), subtitle.get(), &got, const_cast<AVPacket*>(&packet));
  if (e < 0) return AvStatus(StatusCode::kBadImage, "cannot decode a subtitle", e);
  if (!got) return Packet();
  // The encoders take events that start at their packet's time.
  subtitle->end_display_time -= subtitle->start_display_time;
  subtitle->start_display_time = 0;
  std::vector<uint8_t> buffer(kMaxSubtitleBytes);
  const int size =
      avcodec_encode_subtitle(encoder_.get(), buffer.data(), static_cast<int>(buffer.size()), subtitle.get());
  if (size < 0) return AvStatus(StatusCode::kInternal, "cannot encode a subtitle", size);
  Packet out = MakePacket();
  if (!out || av_new_packet(out.get(), size) < 0) return Status({StatusCode::kOutOfMemory, "subtitle packet"});
  std::memcpy(out->data, buffer.data(), static_cast<size_t>(size));
  out->pts = packet.pts;
  out->dts = packet.dts;
  out->duration = packet.duration;
  out->flags = packet.flags;
  return out;
}

}  // namespace tessera::video
