#include "video/video_upscale_pipeline.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "imaging/pixel_buffer.h"
#include "runtime/pipeline.h"
#include "util/log.h"
#include "video/container_rules.h"
#include "video/frame_converter.h"
#include "video/video_probe.h"

namespace tessera::video {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct RgbFrame {
  imaging::PixelBuffer pixels;
  int64_t pts = 0;
  int64_t index = 0;
};
// What travels between the stages: a frame, or (packet set) another stream's
// packet, kept in file order.
struct Item {
  RgbFrame frame;
  Packet packet;
};
using Queue = runtime::BoundedQueue<Item>;

Status CheckPaths(const VideoUpscaleOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::weakly_canonical(o.input, ec) == fs::weakly_canonical(o.output, ec)) {
    return InvalidError("the output " + o.output + " is the input; write to another file");
  }
  fs::path folder = fs::path(o.output).parent_path();
  if (!folder.empty() && !fs::is_directory(folder, ec)) {
    return IoError("the output's folder " + folder.string() + " does not exist");
  }
  return Status::Ok();
}

Status CheckLimits(const VideoInfo& info, const VideoLimits& limits, const std::string& path) {
  if (limits.max_pixels > 0 && info.pixels() > limits.max_pixels) {
    return LimitError(path + " is " + std::to_string(info.width) + "x" + std::to_string(info.height) + " = " +
                      std::to_string(info.pixels()) + " pixels a frame, over --max-video-pixels " +
                      std::to_string(limits.max_pixels));
  }
  if (limits.max_frames > 0 && info.frames > limits.max_frames) {
    return LimitError(path + " has " + std::to_string(info.frames) + " frames, over --max-video-frames " +
                      std::to_string(limits.max_frames));
  }
  return Status::Ok();
}

// Frames without a timestamp (raw streams) get one from their index and the frame rate.
int64_t TimestampOf(const AVFrame& frame, int64_t index, const AVStream& stream) {
  if (frame.pts != AV_NOPTS_VALUE) return frame.pts;
  AVRational rate = stream.avg_frame_rate.num > 0 ? stream.avg_frame_rate : AVRational{25, 1};
  return av_rescale_q(index, av_inv_q(rate), stream.time_base);
}

// Every stream but the upscaled one left out, on purpose (no log line).
std::vector<StreamPlan> VideoStreamOnly(const std::vector<InputStream>& streams, int video_index) {
  std::vector<StreamPlan> plans;
  for (const InputStream& s : streams) {
    plans.push_back({s.index, s.index == video_index ? StreamAction::kUpscale : StreamAction::kDrop, ""});
  }
  return plans;
}

}  // namespace

Status UpscaleVideo(const engine::Upscaler& upscaler, const VideoUpscaleOptions& options,
                    const FrameProgressFn& progress, VideoUpscaleReport* report) {
  const auto started = Clock::now();
  // 1. Everything that can be refused, before any frame is decoded.
  if (Status s = CheckPaths(options); !s.ok()) return s;
  Result<Container> container = ContainerForPath(options.output);
  if (!container.ok()) return container.status();
  if (Status s = CheckVideoCodec(*container, options.encode.codec); !s.ok()) return s;
  Result<VideoInfo> info = ProbeVideo(options.input);
  if (!info.ok()) return info.status();
  if (Status s = CheckLimits(*info, options.limits, options.input); !s.ok()) return s;
  Result<std::vector<StreamPlan>> plans = options.video_only
                                             ? VideoStreamOnly(info->streams, info->video_index)
                                             : PlanStreams(*container, info->streams, info->video_index);
  if (!plans.ok()) return plans.status();
  for (const StreamPlan& plan : *plans) {
    if (plan.action == StreamAction::kDrop && !options.video_only) {
      LogWarn("video_stream_left_out").Field("stream", plan.input_index).Field("why", plan.reason);
    }
  }
  Result<std::unique_ptr<VideoReader>> reader = VideoReader::Open(options.input, options.range);
  if (!reader.ok()) return reader.status();
  const engine::Size out_size =
      upscaler.OutputSize({static_cast<uint64_t>(info->width), static_cast<uint64_t>(info->height)});
  VideoWriterSetup setup{
      options.output, *container, *plans, static_cast<int>(out_size.width), static_cast<int>(out_size.height),
      options.encode};
  Result<std::unique_ptr<VideoWriter>> writer = VideoWriter::Open(setup, **reader);
  if (!writer.ok()) return writer.status();

  // 2. Three stages: decoding in its thread, the model on this one, encoding in
  // its thread. The first failure cancels both queues, which stops the others;
  // the error kept is the one of the earliest frame, as in runtime/pipeline.h.
  Queue decoded(options.decoded_queue);
  Queue upscaled(options.upscaled_queue);
  runtime::pipeline_detail::FirstError error;
  auto fail = [&](int64_t frame, Status status) {
    error.Record(static_cast<size_t>(frame), std::move(status));
    decoded.Cancel();
    upscaled.Cancel();
  };
  // Each stage returns its error; Guarded turns an escaping exception into one.
  auto run_stage = [&](const int64_t& frame, const std::function<Status()>& stage) {
    Status s = runtime::pipeline_detail::Guarded(stage);
    if (!s.ok()) fail(frame, std::move(s));
    return s.ok();
  };
  // A segment's own frame count is known only once read: its progress has no total.
  const int64_t total = options.range.whole() ? info->frames : 0;

  int64_t frames_read = 0;
  std::thread decode([&] {
    const bool done = run_stage(frames_read, [&]() -> Status {
      VideoReader& r = **reader;
      FrameToRgb to_rgb(r.colour());
      for (;;) {
        Result<ReadItem> item = r.Next();
        if (!item.ok()) return item.status();
        if (item->kind == ReadItem::Kind::kEnd) return Status::Ok();
        if (item->kind == ReadItem::Kind::kPacket) {
          if (!decoded.Push(Item{{}, std::move(item->packet)})) return Status::Ok();  // cancelled
          continue;
        }
        Result<imaging::PixelBuffer> rgb = to_rgb.Convert(*item->frame);
        if (!rgb.ok()) return rgb.status();
        RgbFrame frame{std::move(*rgb), TimestampOf(*item->frame, item->frame_index, r.video_stream()),
                       item->frame_index};
        frames_read = item->frame_index + 1;
        if (!decoded.Push(Item{std::move(frame), nullptr})) return Status::Ok();  // cancelled
      }
    });
    if (done) decoded.Close();
  });

  int64_t frames_written = 0;
  std::thread encode([&] {
    run_stage(frames_written, [&]() -> Status {
      VideoWriter& w = **writer;
      RgbToFrame to_frame(static_cast<int>(out_size.width), static_cast<int>(out_size.height), w.pix_fmt(), w.colour());
      while (std::optional<Item> item = upscaled.Pop()) {
        if (item->packet) {
          if (Status s = w.WritePacket(*item->packet); !s.ok()) return s;
          continue;
        }
        Result<Frame> frame = to_frame.Convert(item->frame.pixels);
        if (!frame.ok()) {
          return Status(frame.status().code(),
                        "frame " + std::to_string(item->frame.index) + ": " + frame.status().message());
        }
        (*frame)->pts = item->frame.pts;
        if (Status s = w.WriteFrame(**frame); !s.ok()) return s;
        ++frames_written;
        if (progress) progress(frames_written, total);
      }
      // Cancelled: another stage failed, and the partial file is removed with the writer.
      if (!error.status().ok()) return Status::Ok();
      return w.Finish();
    });
  });

  double upscale_seconds = 0;
  double wait_seconds = 0;
  int64_t frames_upscaled = 0;
  const bool upscaled_all = run_stage(frames_upscaled, [&]() -> Status {
    for (;;) {
      auto wait_start = Clock::now();
      std::optional<Item> item = decoded.Pop();
      wait_seconds += SecondsSince(wait_start);
      if (!item) return Status::Ok();
      if (!item->packet) {
        RgbFrame& frame = item->frame;
        frames_upscaled = frame.index;
        auto run_start = Clock::now();
        Result<imaging::Image> image = imaging::FromPixels(frame.pixels);
        Result<imaging::Image> big = image.ok() ? upscaler.Run(*image, Deadline(), nullptr) : image.status();
        Result<imaging::PixelBuffer> pixels = big.ok() ? imaging::ToPixels(*big) : big.status();
        upscale_seconds += SecondsSince(run_start);
        if (!pixels.ok()) {
          return Status(pixels.status().code(),
                        "frame " + std::to_string(frame.index) + ": " + pixels.status().message());
        }
        frame.pixels = std::move(*pixels);
      }
      if (!upscaled.Push(std::move(*item))) return Status::Ok();  // cancelled
    }
  });
  if (upscaled_all) upscaled.Close();
  decode.join();
  encode.join();

  if (report != nullptr) {
    report->frames = frames_written;
    report->frames_expected = total;
    report->seconds = SecondsSince(started);
    report->upscale_seconds = upscale_seconds;
    report->decode_wait_seconds = wait_seconds;
    report->engine = upscaler.Describe();
  }
  return error.status();
}

}  // namespace tessera::video
