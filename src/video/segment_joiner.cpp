#include "video/segment_joiner.h"

#include <cstdio>
#include <filesystem>

extern "C" {
#include <libavformat/avformat.h>
}

#include "util/log.h"
#include "video/av_error.h"
#include "video/container_rules.h"
#include "video/video_probe.h"
#include "video/video_writer.h"

namespace tessera::video {
namespace {

// The source's streams copied into the output: input index -> plan, or an error
// for a stream that would need converting.
Result<std::vector<StreamPlan>> PlanCopiedStreams(const std::string& source_path, const AVFormatContext& source,
                                                  const std::string& output) {
  auto container = ContainerForPath(output);
  if (!container.ok()) return container.status();
  std::vector<InputStream> streams;
  for (unsigned i = 0; i < source.nb_streams; ++i) {
    streams.push_back({static_cast<int>(i), source.streams[i]->codecpar->codec_type, source.streams[i]->codecpar->codec_id});
  }
  int video_index = FindUpscaledStream(source);
  auto plans = PlanStreams(*container, streams, video_index);
  if (!plans.ok()) return plans.status();
  std::vector<StreamPlan> copied;
  for (const StreamPlan& plan : *plans) {
    if (plan.action == StreamAction::kUpscale || plan.action == StreamAction::kDrop) continue;
    if (plan.action != StreamAction::kCopy) {
      return InvalidError(source_path + ": stream #" + std::to_string(plan.input_index) + " (" +
                          avcodec_get_name(source.streams[plan.input_index]->codecpar->codec_id) +
                          ") would need converting for " + ContainerLabel(*container) +
                          "; a server video job copies the other streams as they are: ask for .mkv");
    }
    copied.push_back(plan);
  }
  return copied;
}

// Reads packets of some streams of one file, one at a time.
class PacketSource {
 public:
  PacketSource(AVFormatContext* context, std::vector<int> out_index)
      : context_(context), out_index_(std::move(out_index)), packet_(av_packet_alloc()) {}

  // The next packet of a wanted stream into packet(); false at the end.
  Result<bool> Advance() {
    while (true) {
      av_packet_unref(packet_.get());
      int e = av_read_frame(context_, packet_.get());
      if (e == AVERROR_EOF) return false;
      if (e < 0) return AvStatus(StatusCode::kBadImage, std::string("cannot read ") + context_->url, e);
      if (out_index_[packet_->stream_index] >= 0) return true;
    }
  }
  AVPacket* packet() { return packet_.get(); }
  AVRational time_base() const { return context_->streams[packet_->stream_index]->time_base; }
  int out_index() const { return out_index_[packet_->stream_index]; }
  // The packet's place on the timeline, for interleaving.
  int64_t when() const { return packet_->dts != AV_NOPTS_VALUE ? packet_->dts : packet_->pts; }

 private:
  AVFormatContext* context_;
  std::vector<int> out_index_;
  Packet packet_;
};

class Joiner {
 public:
  Joiner(std::string output) : output_(std::move(output)), partial_(output_ + ".partial") {}
  ~Joiner() {
    if (!finished_) std::remove(partial_.c_str());
  }
  Status Run(const std::string& source_path, const std::vector<std::string>& segments, JoinReport* report);

 private:
  Status OpenOutput(const AVFormatContext& first_segment, int segment_video, const AVFormatContext& source,
                    const std::vector<StreamPlan>& copied);
  Status Write(PacketSource& from, bool video);
  Status Finish();

  std::string output_;
  std::string partial_;
  OutputContext out_;
  int video_out_ = -1;
  std::vector<int> source_out_;  // source stream -> output stream, -1: not copied
  int64_t last_video_dts_ = AV_NOPTS_VALUE;  // in the output stream's time base
  bool finished_ = false;
};

Status Joiner::OpenOutput(const AVFormatContext& first_segment, int segment_video, const AVFormatContext& source,
                          const std::vector<StreamPlan>& copied) {
  auto container = ContainerForPath(output_);
  if (!container.ok()) return container.status();
  AVFormatContext* raw = nullptr;
  if (int e = avformat_alloc_output_context2(&raw, nullptr, MuxerName(*container), partial_.c_str()); e < 0) {
    return AvStatus(StatusCode::kInternal, "cannot make a muxer for " + output_, e);
  }
  out_.reset(raw);
  const AVStream& video_in = *first_segment.streams[segment_video];
  AVStream* video = avformat_new_stream(raw, nullptr);
  if (video == nullptr) return Status({StatusCode::kOutOfMemory, "cannot add an output stream"});
  if (int e = avcodec_parameters_copy(video->codecpar, video_in.codecpar); e < 0) {
    return AvStatus(StatusCode::kInternal, "cannot copy the video stream's parameters", e);
  }
  video->codecpar->codec_tag = 0;
  video->time_base = video_in.time_base;
  video->avg_frame_rate = video_in.avg_frame_rate;
  video->r_frame_rate = video_in.r_frame_rate;
  video->disposition = video_in.disposition;
  av_dict_copy(&video->metadata, video_in.metadata, 0);
  if (Status s = CopySideData(video_in, video, false); !s.ok()) return s;
  video_out_ = video->index;

  source_out_.assign(source.nb_streams, -1);
  for (const StreamPlan& plan : copied) {
    const AVStream& from = *source.streams[plan.input_index];
    AVStream* to = avformat_new_stream(raw, nullptr);
    if (to == nullptr) return Status({StatusCode::kOutOfMemory, "cannot add an output stream"});
    if (int e = avcodec_parameters_copy(to->codecpar, from.codecpar); e < 0) {
      return AvStatus(StatusCode::kInternal, "cannot copy a stream's parameters", e);
    }
    to->codecpar->codec_tag = 0;
    to->time_base = from.time_base;
    to->disposition = from.disposition;
    av_dict_copy(&to->metadata, from.metadata, 0);
    if (Status s = CopySideData(from, to, false); !s.ok()) return s;
    source_out_[plan.input_index] = to->index;
  }
  // The segment's file tags and chapters: its writer copied them from the source.
  av_dict_copy(&raw->metadata, first_segment.metadata, 0);
  av_dict_set(&raw->metadata, "encoder", nullptr, 0);
  if (Status s = CopyChapters(first_segment, raw); !s.ok()) return s;
  if (int e = avio_open(&raw->pb, partial_.c_str(), AVIO_FLAG_WRITE); e < 0) {
    return AvStatus(StatusCode::kIo, "cannot create " + partial_, e);
  }
  if (int e = avformat_write_header(raw, nullptr); e < 0) {
    return AvStatus(StatusCode::kIo, "cannot write the header of " + partial_, e);
  }
  return Status::Ok();
}

Status Joiner::Write(PacketSource& from, bool video) {
  AVPacket* packet = from.packet();
  packet->stream_index = from.out_index();
  packet->pos = -1;
  av_packet_rescale_ts(packet, from.time_base(), out_->streams[packet->stream_index]->time_base);
  // Matroska stores no decoding times; its segments are ffv1 (no reordering),
  // whose decoding time is the frame's.
  if (video && packet->dts == AV_NOPTS_VALUE) packet->dts = packet->pts;
  if (video && packet->dts != AV_NOPTS_VALUE) {
    // A B-frame encoder starts each segment's decoding times before its first
    // frame's time, which may not follow the previous segment's last one.
    if (last_video_dts_ != AV_NOPTS_VALUE && packet->dts <= last_video_dts_) packet->dts = last_video_dts_ + 1;
    if (packet->pts != AV_NOPTS_VALUE && packet->dts > packet->pts) {
      return InternalError("segments cannot be joined: a decoding time past its frame's time at the join (" +
                           std::to_string(packet->dts) + " > " + std::to_string(packet->pts) + ")");
    }
    last_video_dts_ = packet->dts;
  }
  if (int e = av_interleaved_write_frame(out_.get(), packet); e < 0) {
    return AvStatus(StatusCode::kIo, "cannot write " + partial_ + " (is the disk full?)", e);
  }
  return Status::Ok();
}

Status Joiner::Finish() {
  if (int e = av_write_trailer(out_.get()); e < 0) return AvStatus(StatusCode::kIo, "cannot finish " + partial_, e);
  if (int e = avio_closep(&out_->pb); e < 0) return AvStatus(StatusCode::kIo, "cannot close " + partial_, e);
  Status published = PublishPartial(partial_, output_);
  finished_ = published.ok();
  return published;
}

Status Joiner::Run(const std::string& source_path, const std::vector<std::string>& segments, JoinReport* report) {
  if (segments.empty()) return InvalidError("no segments to join");
  auto source = OpenInputFile(source_path);
  if (!source.ok()) return source.status();
  auto copied = PlanCopiedStreams(source_path, *source->context, output_);
  if (!copied.ok()) return copied.status();

  std::vector<InputFile> inputs;
  for (const std::string& path : segments) {
    auto segment = OpenInputFile(path);
    if (!segment.ok()) return segment.status();
    if (FindUpscaledStream(*segment->context) < 0) return Status(StatusCode::kBadImage, path + " has no video stream");
    inputs.push_back(std::move(*segment));
  }
  int first_video = FindUpscaledStream(*inputs[0].context);
  if (Status s = OpenOutput(*inputs[0].context, first_video, *source->context, *copied); !s.ok()) return s;

  PacketSource others(source->context.get(), source_out_);
  auto more_others = others.Advance();
  if (!more_others.ok()) return more_others.status();
  JoinReport counts;
  for (InputFile& segment : inputs) {
    std::vector<int> wanted(segment.context->nb_streams, -1);
    wanted[FindUpscaledStream(*segment.context)] = video_out_;
    PacketSource video(segment.context.get(), wanted);
    auto more_video = video.Advance();
    if (!more_video.ok()) return more_video.status();
    while (*more_video) {
      // The source's packets due before this video packet go first, keeping
      // the file's interleaving.
      while (*more_others && av_compare_ts(others.when(), others.time_base(), video.when(), video.time_base()) <= 0) {
        if (Status s = Write(others, false); !s.ok()) return s;
        counts.other_packets += 1;
        more_others = others.Advance();
        if (!more_others.ok()) return more_others.status();
      }
      if (Status s = Write(video, true); !s.ok()) return s;
      counts.video_packets += 1;
      more_video = video.Advance();
      if (!more_video.ok()) return more_video.status();
    }
  }
  while (*more_others) {
    if (Status s = Write(others, false); !s.ok()) return s;
    counts.other_packets += 1;
    more_others = others.Advance();
    if (!more_others.ok()) return more_others.status();
  }
  if (Status s = Finish(); !s.ok()) return s;
  if (report != nullptr) *report = counts;
  return Status::Ok();
}

}  // namespace

Status JoinSegments(const std::string& source, const std::vector<std::string>& segments, const std::string& output,
                    JoinReport* report) {
  Joiner joiner(output);
  return joiner.Run(source, segments, report);
}

Status CheckJoinableStreams(const std::string& source_path, const std::string& output) {
  auto source = OpenInputFile(source_path);
  if (!source.ok()) return source.status();
  auto copied = PlanCopiedStreams(source_path, *source->context, output);
  return copied.ok() ? Status::Ok() : copied.status();
}

}  // namespace tessera::video
