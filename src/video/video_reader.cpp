#include "video/video_reader.h"

#include <cstdio>

#include "video/av_error.h"
#include "video/video_probe.h"

namespace tessera::video {

Result<std::unique_ptr<VideoReader>> VideoReader::Open(const std::string& path, VideoRange range) {
  Result<InputFile> input = OpenInputFile(path);
  if (!input.ok()) return input.status();
  std::unique_ptr<VideoReader> reader(new VideoReader());
  reader->path_ = path;
  reader->range_ = range;
  reader->input_ = std::move(input->context);
  reader->demuxer_errors_ = std::move(input->errors);
  reader->video_index_ = FindUpscaledStream(*reader->input_);
  if (reader->video_index_ < 0) return Status(BadImageError(path + " has no video stream"));
  const AVStream* stream = reader->input_->streams[reader->video_index_];
  const AVCodec* codec = avcodec_find_decoder(stream->codecpar->codec_id);
  if (codec == nullptr) {
    return Status({StatusCode::kUnsupported,
                   path + ": no decoder for " + std::string(avcodec_get_name(stream->codecpar->codec_id))});
  }
  reader->decoder_.reset(avcodec_alloc_context3(codec));
  if (!reader->decoder_ || !reader->packet_) return Status({StatusCode::kOutOfMemory, "cannot allocate a decoder"});
  AVCodecContext* d = reader->decoder_.get();
  if (int error = avcodec_parameters_to_context(d, stream->codecpar); error < 0) {
    return AvStatus(StatusCode::kInternal, "cannot set up the decoder", error);
  }
  d->pkt_timebase = stream->time_base;
  d->err_recognition |= AV_EF_EXPLODE;  // damaged data is an error, not a concealed frame
  // Slice threads only: with frame threads a decoding error surfaces frames
  // after the packet that caused it, and the message would name the wrong frame.
  // Decoding is small next to the model either way.
  d->thread_count = 0;
  d->thread_type = FF_THREAD_SLICE;
  if (int error = avcodec_open2(d, codec, nullptr); error < 0) {
    return AvStatus(StatusCode::kBadImage, path + ": cannot open the " + codec->name + " decoder", error);
  }
  if (range.start) {
    // To the keyframe at or before the segment's start; frames before it are skipped.
    if (int error = av_seek_frame(reader->input_.get(), reader->video_index_, *range.start, AVSEEK_FLAG_BACKWARD);
        error < 0) {
      return AvStatus(StatusCode::kBadImage, path + ": cannot seek to the segment's start", error);
    }
  }
  return reader;
}

namespace {

std::string SecondsText(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f", seconds);
  return text;
}

}  // namespace

std::string VideoReader::Where() const {
  // Packets reach the decoder in decoding order; the one being decoded is the
  // last one sent, which B-frames may place before frames already shown.
  std::string where = "frame " + std::to_string(video_packets_ > 0 ? video_packets_ - 1 : 0) + " in decoding order";
  if (packet_pts_ != AV_NOPTS_VALUE) {
    where += " (t = " + SecondsText(static_cast<double>(packet_pts_) * av_q2d(video_stream().time_base)) + " s)";
  }
  return where;
}

Status VideoReader::CheckComplete() const {
  if (!range_.whole()) return Status::Ok();
  const int64_t announced = video_stream().nb_frames;
  if (announced > 0 && video_packets_ < announced) {
    return BadImageError(path_ + ": the video ends after " + std::to_string(video_packets_) +
                         " frames, but its header announces " + std::to_string(announced) + ": the file is truncated");
  }
  return Status::Ok();
}

Status VideoReader::FrameError(std::string_view what, int error) const {
  return AvStatus(StatusCode::kBadImage, path_ + ": " + std::string(what) + " at " + Where(), error);
}

bool VideoReader::InRange(const AVPacket& packet) const {
  if (range_.whole() || packet.pts == AV_NOPTS_VALUE) return true;
  const int64_t pts =
      av_rescale_q(packet.pts, input_->streams[packet.stream_index]->time_base, video_stream().time_base);
  return (!range_.start || pts >= *range_.start) && (!range_.end || pts < *range_.end);
}

Result<ReadItem> VideoReader::Next() {
  ReadItem item;
  if (ended_) return item;
  for (;;) {
    // Frames the decoder already holds come first.
    Frame frame = MakeFrame();
    if (!frame) return Status({StatusCode::kOutOfMemory, "cannot allocate a video frame"});
    int error = avcodec_receive_frame(decoder_.get(), frame.get());
    if (error == 0) {
      if ((frame->flags & AV_FRAME_FLAG_CORRUPT) || frame->decode_error_flags != 0) {
        return Status(BadImageError(path_ + ": " + Where() + " is corrupt (the decoder flagged damaged data)"));
      }
      const int64_t pts = frame->best_effort_timestamp;
      if (range_.start && pts != AV_NOPTS_VALUE && pts < *range_.start) continue;  // before the segment
      if (range_.end && pts != AV_NOPTS_VALUE && pts >= *range_.end) {
        ended_ = true;
        return item;
      }
      frame->pts = pts;
      item.kind = ReadItem::Kind::kFrame;
      item.frame = std::move(frame);
      item.frame_index = frames_out_++;
      return item;
    }
    if (error == AVERROR_EOF) {
      ended_ = true;
      if (Status s = CheckComplete(); !s.ok()) return s;
      return item;
    }
    if (error != AVERROR(EAGAIN)) return FrameError("cannot decode", error);
    if (input_done_) return FrameError("the decoder stopped early", error);

    av_packet_unref(packet_.get());
    error = av_read_frame(input_.get(), packet_.get());
    if (std::string damage = demuxer_errors_->Take(); !damage.empty()) {
      return Status(BadImageError(path_ + ": damaged data after " + Where() + ": " + damage));
    }
    if (error == AVERROR_EOF) {
      input_done_ = true;
      if (int e = avcodec_send_packet(decoder_.get(), nullptr); e < 0) return FrameError("cannot flush the decoder", e);
      continue;
    }
    if (error < 0) return FrameError("cannot read the file", error);
    if (packet_->stream_index == video_index_) {
      ++video_packets_;
      packet_pts_ = packet_->pts;
      if (packet_->flags & AV_PKT_FLAG_CORRUPT) {
        return Status(BadImageError(path_ + ": " + Where() + " is cut short (the file is truncated or damaged)"));
      }
      if (int e = avcodec_send_packet(decoder_.get(), packet_.get()); e < 0) return FrameError("cannot decode", e);
      continue;
    }
    if (!InRange(*packet_)) continue;
    item.kind = ReadItem::Kind::kPacket;
    item.packet = MakePacket();
    if (!item.packet) return Status({StatusCode::kOutOfMemory, "cannot allocate a packet"});
    av_packet_move_ref(item.packet.get(), packet_.get());
    return item;
  }
}

}  // namespace tessera::video
