#include "video/video_probe.h"

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "imaging/image_magic.h"
#include "video/av_error.h"
#include "video/av_handles.h"

namespace tessera::video {
namespace {

// Image demuxers: "image2" (by file name) and the "<codec>_pipe" probes.
bool IsImageDemuxer(const AVInputFormat* format) {
  std::string_view name = format->name;
  return name == "image2" || (name.size() > 5 && name.substr(name.size() - 5) == "_pipe");
}

}  // namespace

int FindUpscaledStream(const AVFormatContext& context) {
  for (unsigned i = 0; i < context.nb_streams; ++i) {
    const AVStream* s = context.streams[i];
    if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && !(s->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

Result<InputContext> OpenInputFile(const std::string& path) {
  AVFormatContext* raw = nullptr;
  int error = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (error < 0) {
    return AvStatus(error == AVERROR(ENOENT) ? StatusCode::kNotFound : StatusCode::kBadImage, "cannot open " + path,
                    error);
  }
  InputContext context(raw);
  error = avformat_find_stream_info(context.get(), nullptr);
  if (error < 0) return AvStatus(StatusCode::kBadImage, "cannot read the streams of " + path, error);
  return context;
}

namespace {

// Counts the video stream's packets without decoding them.
Result<int64_t> CountVideoPackets(const std::string& path, int video_index) {
  Result<InputContext> context = OpenInputFile(path);
  if (!context.ok()) return context.status();
  Packet packet = MakePacket();
  int64_t count = 0;
  for (;;) {
    int error = av_read_frame(context->get(), packet.get());
    if (error == AVERROR_EOF) break;
    if (error < 0) {
      return AvStatus(StatusCode::kBadImage,
                      path + ": unreadable after video packet " + std::to_string(count) + " while counting frames",
                      error);
    }
    if (packet->stream_index == video_index) ++count;
    av_packet_unref(packet.get());
  }
  return count;
}

}  // namespace

bool LooksLikeVideo(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::array<uint8_t, imaging::kImageMagicBytes> head{};
  std::ifstream file(path, std::ios::binary);
  file.read(reinterpret_cast<char*>(head.data()), head.size());
  if (imaging::SniffImageFormat(std::span<const uint8_t>(head.data(), static_cast<size_t>(file.gcount())))) {
    return false;
  }
  AVFormatContext* raw = nullptr;
  if (avformat_open_input(&raw, path.c_str(), nullptr, nullptr) < 0) return false;
  InputContext context(raw);
  if (IsImageDemuxer(context->iformat)) return false;
  if (avformat_find_stream_info(context.get(), nullptr) < 0) return false;
  return FindUpscaledStream(*context) >= 0;
}

Result<VideoInfo> ProbeVideo(const std::string& path) {
  Result<InputContext> context = OpenInputFile(path);
  if (!context.ok()) return context.status();
  const AVFormatContext& c = **context;
  VideoInfo info;
  info.format = c.iformat->name;
  info.video_index = FindUpscaledStream(c);
  if (info.video_index < 0 || IsImageDemuxer(c.iformat)) {
    return Status(BadImageError(path + " has no video stream"));
  }
  const AVStream* video = c.streams[info.video_index];
  info.width = video->codecpar->width;
  info.height = video->codecpar->height;
  info.codec = avcodec_get_name(video->codecpar->codec_id);
  const char* pix_fmt = av_get_pix_fmt_name(static_cast<AVPixelFormat>(video->codecpar->format));
  info.pix_fmt = pix_fmt != nullptr ? pix_fmt : "unknown";
  if (video->avg_frame_rate.num > 0 && video->avg_frame_rate.den > 0) info.frame_rate = av_q2d(video->avg_frame_rate);
  for (unsigned i = 0; i < c.nb_streams; ++i) {
    info.streams.push_back({static_cast<int>(i), c.streams[i]->codecpar->codec_type, c.streams[i]->codecpar->codec_id});
  }
  if (info.width <= 0 || info.height <= 0) return Status(BadImageError(path + ": the video stream has no frame size"));
  if (video->nb_frames > 0) {
    info.frames = video->nb_frames;
  } else {
    Result<int64_t> counted = CountVideoPackets(path, info.video_index);
    if (!counted.ok()) return counted.status();
    info.frames = *counted;
  }
  return info;
}

}  // namespace tessera::video
