#include "video/container_rules.h"

#include <algorithm>
#include <cctype>
#include <string>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
}

namespace tessera::video {
namespace {

std::string LowerExtension(std::string_view path) {
  size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) return {};
  std::string ext(path.substr(dot));
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

std::string CodecName(AVCodecID codec) { return avcodec_get_name(codec); }

std::string StreamLabel(const InputStream& s, const char* kind) {
  return std::string(kind) + " stream #" + std::to_string(s.index) + " (" + CodecName(s.codec) + ")";
}

// Whether the muxer can store `codec`; unknown answers (negative) count as yes:
// the header write still catches what slips through.
bool MuxerHolds(Container container, AVCodecID codec) {
  const AVOutputFormat* muxer = av_guess_format(MuxerName(container), nullptr, nullptr);
  return muxer == nullptr || avformat_query_codec(muxer, codec, FF_COMPLIANCE_NORMAL) != 0;
}

bool IsTextSubtitle(AVCodecID codec) {
  const AVCodecDescriptor* d = avcodec_descriptor_get(codec);
  return d != nullptr && (d->props & AV_CODEC_PROP_TEXT_SUB) != 0;
}

Result<StreamPlan> PlanSubtitle(Container container, const InputStream& s) {
  StreamPlan plan{s.index, StreamAction::kCopy, {}};
  const std::string label = StreamLabel(s, "subtitle");
  switch (container) {
    case Container::kMp4:
    case Container::kMov:
      if (s.codec == AV_CODEC_ID_MOV_TEXT) return plan;
      if (IsTextSubtitle(s.codec)) {
        plan.action = StreamAction::kSubtitleToMovText;
        return plan;
      }
      return Status(InvalidError(label + " is a picture subtitle, which " + ContainerLabel(container) +
                                 " cannot hold; write .mkv to keep it"));
    case Container::kMatroska:
      if (s.codec == AV_CODEC_ID_MOV_TEXT) {
        plan.action = StreamAction::kSubtitleToSubrip;
        return plan;
      }
      if (MuxerHolds(container, s.codec)) return plan;
      return Status(InvalidError(label + " cannot be stored in MKV"));
    case Container::kWebm:
      if (s.codec == AV_CODEC_ID_WEBVTT) return plan;
      return Status(InvalidError(label + ": WebM holds only WebVTT subtitles; write .mkv to keep it"));
  }
  return Status(InternalError("unknown container"));
}

}  // namespace

Result<Container> ContainerForPath(std::string_view path) {
  const std::string ext = LowerExtension(path);
  if (ext == ".mp4" || ext == ".m4v") return Container::kMp4;
  if (ext == ".mov") return Container::kMov;
  if (ext == ".mkv") return Container::kMatroska;
  if (ext == ".webm") return Container::kWebm;
  return Status(
      InvalidError("the video output must end in .mp4, .m4v, .mov, .mkv or .webm (the container "
                   "follows the extension); got '" +
                   std::string(path) + "'"));
}

const char* MuxerName(Container container) {
  switch (container) {
    case Container::kMp4: return "mp4";
    case Container::kMov: return "mov";
    case Container::kMatroska: return "matroska";
    case Container::kWebm: return "webm";
  }
  return "";
}

const char* ContainerLabel(Container container) {
  switch (container) {
    case Container::kMp4: return "MP4";
    case Container::kMov: return "MOV";
    case Container::kMatroska: return "MKV";
    case Container::kWebm: return "WebM";
  }
  return "";
}

Status CheckVideoCodec(Container container, std::string_view codec) {
  const std::string name(codec);
  const bool h26x = codec == "libx264" || codec == "libx265" || codec == "h264_nvenc" || codec == "hevc_nvenc";
  if (!h26x && codec != "libvpx-vp9" && codec != "ffv1") {
    return InvalidError("--codec " + name + " is not one of " + std::string(kVideoCodecs));
  }
  const char* where = ContainerLabel(container);
  if (codec == "ffv1" && container != Container::kMatroska) {
    return InvalidError("--codec ffv1 is only allowed in MKV (write .mkv), not " + std::string(where));
  }
  if (h26x && container == Container::kWebm) {
    return InvalidError("--codec " + name +
                        " cannot go into WebM, which holds VP8/VP9/AV1 only; use "
                        "--codec libvpx-vp9 or write .mp4/.mkv");
  }
  if (codec == "libvpx-vp9" && container == Container::kMov) {
    return InvalidError("--codec libvpx-vp9 cannot go into MOV; write .mp4, .mkv or .webm");
  }
  return Status::Ok();
}

Result<std::vector<StreamPlan>> PlanStreams(Container container, const std::vector<InputStream>& streams,
                                            int video_index) {
  std::vector<StreamPlan> plans;
  plans.reserve(streams.size());
  for (const InputStream& s : streams) {
    if (s.index == video_index) {
      plans.push_back({s.index, StreamAction::kUpscale, {}});
      continue;
    }
    switch (s.type) {
      case AVMEDIA_TYPE_AUDIO:
        if (!MuxerHolds(container, s.codec)) {
          return Status(InvalidError(StreamLabel(s, "audio") + " cannot be stored in " + ContainerLabel(container) +
                                     "; write .mkv, which holds any audio codec"));
        }
        plans.push_back({s.index, StreamAction::kCopy, {}});
        break;
      case AVMEDIA_TYPE_SUBTITLE: {
        Result<StreamPlan> plan = PlanSubtitle(container, s);
        if (!plan.ok()) return plan.status();
        plans.push_back(*plan);
        break;
      }
      case AVMEDIA_TYPE_ATTACHMENT:
        if (container == Container::kMatroska) {
          plans.push_back({s.index, StreamAction::kCopy, {}});
        } else {
          plans.push_back({s.index, StreamAction::kDrop, "attachments exist only in MKV"});
        }
        break;
      case AVMEDIA_TYPE_VIDEO:
        plans.push_back({s.index, StreamAction::kDrop, "only one video stream is upscaled; others are left out"});
        break;
      default: plans.push_back({s.index, StreamAction::kDrop, "data streams are not copied"}); break;
    }
  }
  return plans;
}

}  // namespace tessera::video
