#include "video/video_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

extern "C" {
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

#include "video/av_error.h"

namespace tessera::video {
namespace {

// Stream side data that describes the picture, not the bitstream: rotation
// (the display matrix), stereo and 360° layouts, HDR mastering metadata. The
// upscaled stream keeps these; codec-specific entries are the encoder's to write.
constexpr AVPacketSideDataType kPictureSideData[] = {AV_PKT_DATA_DISPLAYMATRIX, AV_PKT_DATA_STEREO3D,
                                                     AV_PKT_DATA_SPHERICAL, AV_PKT_DATA_MASTERING_DISPLAY_METADATA,
                                                     AV_PKT_DATA_CONTENT_LIGHT_LEVEL};

// Tags that describe the old file's making, not its content.
constexpr const char* kFileTagsNotCopied[] = {"encoder", "major_brand", "minor_version", "compatible_brands"};

}  // namespace

Status CopySideData(const AVStream& in, AVStream* out, bool picture_only) {
  for (int i = 0; i < in.nb_side_data; ++i) {
    const AVPacketSideData& sd = in.side_data[i];
    if (picture_only &&
        std::find(std::begin(kPictureSideData), std::end(kPictureSideData), sd.type) == std::end(kPictureSideData)) {
      continue;
    }
    uint8_t* data = av_stream_new_side_data(out, sd.type, sd.size);
    if (data == nullptr) return Status({StatusCode::kOutOfMemory, "cannot copy stream side data"});
    std::memcpy(data, sd.data, sd.size);
  }
  return Status::Ok();
}

Status CopyChapters(const AVFormatContext& in, AVFormatContext* out) {
  if (in.nb_chapters == 0) return Status::Ok();
  out->chapters = static_cast<AVChapter**>(av_calloc(in.nb_chapters, sizeof(AVChapter*)));
  if (out->chapters == nullptr) return Status({StatusCode::kOutOfMemory, "cannot copy chapters"});
  for (unsigned i = 0; i < in.nb_chapters; ++i) {
    const AVChapter* from = in.chapters[i];
    auto* to = static_cast<AVChapter*>(av_mallocz(sizeof(AVChapter)));
    if (to == nullptr) return Status({StatusCode::kOutOfMemory, "cannot copy chapters"});
    to->id = from->id;
    to->time_base = from->time_base;
    to->start = from->start;
    to->end = from->end;
    av_dict_copy(&to->metadata, from->metadata, 0);
    out->chapters[out->nb_chapters++] = to;
  }
  return Status::Ok();
}

namespace {

bool IsRgb(AVPixelFormat format) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(format);
  return d != nullptr && (d->flags & AV_PIX_FMT_FLAG_RGB);
}

std::string PixelFormatsOf(const AVCodec& codec) {
  std::string list;
  for (const AVPixelFormat* f = codec.pix_fmts; f != nullptr && *f != AV_PIX_FMT_NONE; ++f) {
    if (!list.empty()) list += ", ";
    list += av_get_pix_fmt_name(*f);
  }
  return list;
}

Result<AVPixelFormat> ChoosePixelFormat(const AVCodec& codec, const std::string& requested, AVPixelFormat input) {
  if (requested.empty()) {
    if (codec.pix_fmts == nullptr) return input;
    return avcodec_find_best_pix_fmt_of_list(codec.pix_fmts, input, 0, nullptr);
  }
  const AVPixelFormat wanted = av_get_pix_fmt(requested.c_str());
  if (wanted == AV_PIX_FMT_NONE) return Status(InvalidError("--pix-fmt " + requested + " is not a pixel format"));
  if (codec.pix_fmts != nullptr) {
    bool found = false;
    for (const AVPixelFormat* f = codec.pix_fmts; *f != AV_PIX_FMT_NONE; ++f) found = found || *f == wanted;
    if (!found) {
      return Status(InvalidError("--pix-fmt " + requested + " is not taken by " + codec.name + "; it takes " +
                                 PixelFormatsOf(codec)));
    }
  }
  return wanted;
}

// --crf and --preset as each encoder names them.
Status ApplyQuality(const VideoEncodeOptions& o, AVCodecContext* encoder) {
  const std::string& codec = o.codec;
  if (codec == "ffv1") {
    if (o.crf || !o.preset.empty()) return InvalidError("ffv1 is lossless: --crf and --preset do not apply");
    encoder->level = 3;  // version 3: multithreaded slices with CRCs
    return Status::Ok();
  }
  const int crf = o.crf ? *o.crf : DefaultCrf(codec);
  const bool nvenc = codec.find("nvenc") != std::string::npos;
  const char* crf_name = nvenc ? "cq" : "crf";
  if (av_opt_set_int(encoder->priv_data, crf_name, crf, 0) < 0) {
    return InvalidError("--crf " + std::to_string(crf) + " is out of range for " + codec);
  }
  if (codec == "libvpx-vp9") {
    encoder->bit_rate = 0;  // constant quality, no bitrate cap
    if (!o.preset.empty()) {
      if (av_opt_set(encoder->priv_data, "cpu-used", o.preset.c_str(), 0) < 0) {
        return InvalidError("--preset for libvpx-vp9 is its cpu-used, 0 (slowest) to 8; got " + o.preset);
      }
    }
    return Status::Ok();
  }
  if (!o.preset.empty() && av_opt_set(encoder->priv_data, "preset", o.preset.c_str(), 0) < 0) {
    return InvalidError("--preset " + o.preset + " is not a preset of " + codec);
  }
  return Status::Ok();
}

}  // namespace

Status SyncFile(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + path + " to sync it: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) return IoError("cannot sync " + path + ": " + std::strerror(saved));
  return Status::Ok();
}

int DefaultCrf(std::string_view codec) {
  if (codec == "libx265") return 20;
  if (codec == "libvpx-vp9") return 30;
  if (codec == "h264_nvenc" || codec == "hevc_nvenc") return 19;
  return 18;  // libx264
}

Result<std::unique_ptr<VideoWriter>> VideoWriter::Open(const VideoWriterSetup& setup, const VideoReader& reader) {
  if (Status s = CheckVideoCodec(setup.container, setup.encode.codec); !s.ok()) return s;
  const AVCodec* codec = avcodec_find_encoder_by_name(setup.encode.codec.c_str());
  if (codec == nullptr) {
    return Status({StatusCode::kUnsupported, "this libavcodec has no encoder " + setup.encode.codec});
  }
  std::unique_ptr<VideoWriter> w(new VideoWriter());
  w->output_ = setup.output;
  w->partial_ = setup.output + ".partial";
  const AVFormatContext& in = reader.format();
  const AVStream& in_video = reader.video_stream();
  const AVCodecContext& decoder = reader.decoder();

  AVFormatContext* raw = nullptr;
  if (int e = avformat_alloc_output_context2(&raw, nullptr, MuxerName(setup.container), w->partial_.c_str()); e < 0) {
    return AvStatus(StatusCode::kInternal, "cannot set up the output", e);
  }
  w->out_.reset(raw);
  AVFormatContext* out = raw;

  // The video encoder, opened now so a missing GPU encoder or a bad flag fails before any frame.
  w->encoder_.reset(avcodec_alloc_context3(codec));
  if (!w->encoder_ || !w->packet_) return Status({StatusCode::kOutOfMemory, "cannot allocate an encoder"});
  AVCodecContext* enc = w->encoder_.get();
  Result<AVPixelFormat> pix_fmt = ChoosePixelFormat(*codec, setup.encode.pix_fmt, decoder.pix_fmt);
  if (!pix_fmt.ok()) return pix_fmt.status();
  enc->pix_fmt = *pix_fmt;
  enc->width = setup.width;
  enc->height = setup.height;
  enc->sample_aspect_ratio = decoder.sample_aspect_ratio;  // scaling both axes alike keeps the pixel shape
  enc->time_base = in_video.time_base;  // timestamps pass through untouched (variable frame rate too)
  enc->framerate = av_guess_frame_rate(const_cast<AVFormatContext*>(&in), const_cast<AVStream*>(&in_video), nullptr);
  enc->color_primaries = decoder.color_primaries;
  enc->color_trc = decoder.color_trc;
  enc->colorspace = decoder.colorspace;
  enc->color_range = decoder.color_range;
  enc->chroma_sample_location = decoder.chroma_sample_location;
  if (IsRgb(enc->pix_fmt)) {
    enc->colorspace = AVCOL_SPC_RGB;
    enc->color_range = AVCOL_RANGE_JPEG;
  } else if (IsRgb(decoder.pix_fmt) || enc->colorspace == AVCOL_SPC_RGB) {
    // RGB in, YUV out: BT.601 limited range, said explicitly so players agree.
    enc->colorspace = AVCOL_SPC_SMPTE170M;
    enc->color_range = AVCOL_RANGE_MPEG;
  } else if (enc->color_range == AVCOL_RANGE_UNSPECIFIED) {
    enc->color_range = AVCOL_RANGE_MPEG;
  }
  if (Status s = ApplyQuality(setup.encode, enc); !s.ok()) return s;
  if (out->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (int e = avcodec_open2(enc, codec, nullptr); e < 0) {
    std::string hint = setup.encode.codec.find("nvenc") != std::string::npos
                           ? " (NVENC needs an NVIDIA GPU and its driver)"
                           : " (check --preset, --pix-fmt and the frame size)";
    return AvStatus(StatusCode::kInvalid, "cannot open the " + setup.encode.codec + " encoder" + hint, e);
  }

  // Output streams in input order, as planned.
  w->out_index_.assign(in.nb_streams, -1);
  w->subtitles_.resize(in.nb_streams);
  for (unsigned i = 0; i < in.nb_streams; ++i) w->in_time_base_.push_back(in.streams[i]->time_base);
  for (const StreamPlan& plan : setup.plans) {
    if (plan.action == StreamAction::kDrop) continue;
    const AVStream& from = *in.streams[plan.input_index];
    AVStream* to = avformat_new_stream(out, nullptr);
    if (to == nullptr) return Status({StatusCode::kOutOfMemory, "cannot add an output stream"});
    w->out_index_[plan.input_index] = to->index;
    to->disposition = from.disposition;
    av_dict_copy(&to->metadata, from.metadata, 0);
    int e = 0;
    switch (plan.action) {
      case StreamAction::kUpscale:
        w->video_out_index_ = to->index;
        e = avcodec_parameters_from_context(to->codecpar, enc);
        to->time_base = enc->time_base;
        to->avg_frame_rate = from.avg_frame_rate;
        to->r_frame_rate = from.r_frame_rate;
        to->sample_aspect_ratio = enc->sample_aspect_ratio;
        if (Status s = CopySideData(from, to, true); !s.ok()) return s;
        break;
      case StreamAction::kCopy:
        e = avcodec_parameters_copy(to->codecpar, from.codecpar);
        to->codecpar->codec_tag = 0;  // the tag is the old container's; the muxer picks its own
        to->time_base = from.time_base;
        if (Status s = CopySideData(from, to, false); !s.ok()) return s;
        break;
      case StreamAction::kSubtitleToMovText:
      case StreamAction::kSubtitleToSubrip: {
        const AVCodecID target =
            plan.action == StreamAction::kSubtitleToMovText ? AV_CODEC_ID_MOV_TEXT : AV_CODEC_ID_SUBRIP;
        Result<std::unique_ptr<SubtitleConverter>> converter = SubtitleConverter::Open(from, target);
        if (!converter.ok()) return converter.status();
        e = avcodec_parameters_from_context(to->codecpar, &(*converter)->encoder());
        to->time_base = from.time_base;
        w->subtitles_[plan.input_index] = std::move(*converter);
        break;
      }
      case StreamAction::kDrop: break;
    }
    if (e < 0) return AvStatus(StatusCode::kInternal, "cannot set up output stream " + std::to_string(to->index), e);
  }
  av_dict_copy(&out->metadata, in.metadata, 0);
  for (const char* tag : kFileTagsNotCopied) av_dict_set(&out->metadata, tag, nullptr, 0);
  if (Status s = CopyChapters(in, out); !s.ok()) return s;

  if (int e = avio_open(&out->pb, w->partial_.c_str(), AVIO_FLAG_WRITE); e < 0) {
    return AvStatus(StatusCode::kIo, "cannot create " + w->partial_, e);
  }
  if (int e = avformat_write_header(out, nullptr); e < 0) {
    return AvStatus(
        StatusCode::kInvalid,
        std::string("the ") + ContainerLabel(setup.container) + " muxer refused the streams of " + setup.output, e);
  }
  return w;
}

VideoWriter::~VideoWriter() {
  if (finished_) return;
  out_.reset();  // closes the file before it is removed
  if (!partial_.empty()) std::remove(partial_.c_str());
}

Status VideoWriter::WriteError(int error) const {
  return AvStatus(
      StatusCode::kIo,
      "cannot write " + partial_ + " (after " + std::to_string(frames_written_) + " frames; is the disk full?)", error);
}

Status VideoWriter::DrainEncoder() {
  for (;;) {
    int e = avcodec_receive_packet(encoder_.get(), packet_.get());
    if (e == AVERROR(EAGAIN) || e == AVERROR_EOF) return Status::Ok();
    if (e < 0)
      return AvStatus(StatusCode::kInternal, "the encoder failed after frame " + std::to_string(frames_written_), e);
    packet_->stream_index = video_out_index_;
    av_packet_rescale_ts(packet_.get(), encoder_->time_base, out_->streams[video_out_index_]->time_base);
    if (int w = av_interleaved_write_frame(out_.get(), packet_.get()); w < 0) return WriteError(w);
  }
}

Status VideoWriter::WriteFrame(const AVFrame& frame) {
  if (int e = avcodec_send_frame(encoder_.get(), &frame); e < 0) {
    return AvStatus(StatusCode::kInternal, "the encoder refused frame " + std::to_string(frames_written_), e);
  }
  ++frames_written_;
  return DrainEncoder();
}

Status VideoWriter::WritePacket(AVPacket& packet) {
  const int in = packet.stream_index;
  if (in < 0 || in >= static_cast<int>(out_index_.size()) || out_index_[in] < 0) return Status::Ok();
  AVPacket* to_write = &packet;
  Packet converted;
  if (subtitles_[in]) {
    Result<Packet> c = subtitles_[in]->Convert(packet);
    if (!c.ok()) return c.status();
    if (!*c) return Status::Ok();
    converted = std::move(*c);
    to_write = converted.get();
  }
  to_write->stream_index = out_index_[in];
  to_write->pos = -1;
  av_packet_rescale_ts(to_write, in_time_base_[in], out_->streams[out_index_[in]]->time_base);
  if (int e = av_interleaved_write_frame(out_.get(), to_write); e < 0) return WriteError(e);
  return Status::Ok();
}

Status VideoWriter::Finish() {
  if (int e = avcodec_send_frame(encoder_.get(), nullptr); e < 0) {
    return AvStatus(StatusCode::kInternal, "cannot flush the encoder", e);
  }
  if (Status s = DrainEncoder(); !s.ok()) return s;
  if (int e = av_write_trailer(out_.get()); e < 0) return WriteError(e);
  if (int e = avio_closep(&out_->pb); e < 0) return WriteError(e);
  Status published = PublishPartial(partial_, output_);
  finished_ = published.ok();
  return published;
}

Status PublishPartial(const std::string& partial, const std::string& output) {
  if (Status s = SyncFile(partial, false); !s.ok()) return s;
  std::error_code ec;
  std::filesystem::rename(partial, output, ec);
  if (ec) return IoError("cannot rename " + partial + " to " + output + ": " + ec.message());
  std::filesystem::path folder = std::filesystem::path(output).parent_path();
  return SyncFile(folder.empty() ? "." : folder.string(), true);
}

}  // namespace tessera::video
