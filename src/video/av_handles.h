// Owning handles over libav* objects, so every exit path — errors included —
// frees what was allocated, and no caller writes a free call by hand.
#pragma once

#include <memory>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
}

namespace tessera::video {

// An input opened with avformat_open_input (closed with avformat_close_input).
struct InputContextDeleter {
  void operator()(AVFormatContext* context) const { avformat_close_input(&context); }
};
using InputContext = std::unique_ptr<AVFormatContext, InputContextDeleter>;

// An output made with avformat_alloc_output_context2: its file, when opened,
// is closed before the context is freed.
struct OutputContextDeleter {
  void operator()(AVFormatContext* context) const {
    if (context->pb != nullptr && !(context->oformat->flags & AVFMT_NOFILE)) avio_closep(&context->pb);
    avformat_free_context(context);
  }
};
using OutputContext = std::unique_ptr<AVFormatContext, OutputContextDeleter>;

struct CodecContextDeleter {
  void operator()(AVCodecContext* context) const { avcodec_free_context(&context); }
};
using CodecContext = std::unique_ptr<AVCodecContext, CodecContextDeleter>;

struct FrameDeleter {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
using Frame = std::unique_ptr<AVFrame, FrameDeleter>;

struct PacketDeleter {
  void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
using Packet = std::unique_ptr<AVPacket, PacketDeleter>;

struct ScaleContextDeleter {
  void operator()(SwsContext* context) const { sws_freeContext(context); }
};
using ScaleContext = std::unique_ptr<SwsContext, ScaleContextDeleter>;

struct SubtitleDeleter {
  void operator()(AVSubtitle* subtitle) const {
    avsubtitle_free(subtitle);
    delete subtitle;
  }
};
using Subtitle = std::unique_ptr<AVSubtitle, SubtitleDeleter>;

inline Frame MakeFrame() { return Frame(av_frame_alloc()); }
inline Packet MakePacket() { return Packet(av_packet_alloc()); }

}  // namespace tessera::video
