#include "video/video_probe.h"

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>
#include <vector>

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

Result<InputFile> OpenInputFile(const std::string& path) {
  InputFile file;
  // The context is made before the open so that what the demuxer logs while
  // opening and reading ahead for the stream parameters is watched too.
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) return Status({StatusCode::kOutOfMemory, "cannot allocate a demuxer"});
  auto errors = std::make_unique<LibavErrorWatch>(raw);
  // Damaged data is an error where a demuxer honours err_detect=explode; those
  // that skip damage anyway (Matroska) are caught by the watch.
  AVDictionary* options = nullptr;
  av_dict_set(&options, "err_detect", "explode", 0);
  int error = avformat_open_input(&raw, path.c_str(), nullptr, &options);  // frees raw on failure
  av_dict_free(&options);
  if (error < 0) {
    return AvStatus(error == AVERROR(ENOENT) ? StatusCode::kNotFound : StatusCode::kBadImage, "cannot open " + path,
                    error);
  }
  file.context.reset(raw);
  file.errors = std::move(errors);
  error = avformat_find_stream_info(file.context.get(), nullptr);
  if (error < 0) return AvStatus(StatusCode::kBadImage, "cannot read the streams of " + path, error);
  if (std::string damage = file.errors->Take(); !damage.empty()) {
    return Status(BadImageError(path + " is damaged (found while reading its stream parameters): " + damage));
  }
  return file;
}

namespace {

// Enough of a file's start for libavformat to recognise its container.
constexpr int kProbeBytes = 4096;

// Counts the video stream's packets without decoding them.
Result<int64_t> CountVideoPackets(const std::string& path, int video_index) {
  Result<InputFile> file = OpenInputFile(path);
  if (!file.ok()) return file.status();
  Packet packet = MakePacket();
  int64_t count = 0;
  for (;;) {
    int error = av_read_frame(file->context.get(), packet.get());
    if (std::string damage = file->errors->Take(); !damage.empty()) {
      return Status(BadImageError(path + ": damaged data after video packet " + std::to_string(count) +
                                  " (counting frames): " + damage));
    }
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

// Whether the file's first bytes are those of a container libavformat knows
// (MP4/MOV's ftyp, Matroska's EBML header ...), image readers aside.
bool LooksLikeVideoContainer(const std::string& path) {
  std::vector<uint8_t> head(kProbeBytes + AVPROBE_PADDING_SIZE, 0);
  std::ifstream file(path, std::ios::binary);
  file.read(reinterpret_cast<char*>(head.data()), kProbeBytes);
  AVProbeData probe{};
  probe.filename = "";  // the name must not decide
  probe.buf = head.data();
  probe.buf_size = static_cast<int>(file.gcount());
  int score = 0;
  const AVInputFormat* format = av_probe_input_format2(&probe, 1, &score);
  return format != nullptr && !IsImageDemuxer(format) && score >= AVPROBE_SCORE_MAX / 2;
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
  if (avformat_open_input(&raw, path.c_str(), nullptr, nullptr) < 0) {
    // A damaged video (an MP4 cut before its index) does not open, but its
    // first bytes still name a video container: it goes the video way, to fail
    // there with libavformat's reason rather than as "not an image".
    return LooksLikeVideoContainer(path);
  }
  InputContext context(raw);
  if (IsImageDemuxer(context->iformat)) return false;
  if (avformat_find_stream_info(context.get(), nullptr) < 0) return false;
  return FindUpscaledStream(*context) >= 0;
}

Result<VideoInfo> ProbeVideo(const std::string& path) {
  Result<InputFile> file = OpenInputFile(path);
  if (!file.ok()) return file.status();
  const AVFormatContext& c = *file->context;
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
