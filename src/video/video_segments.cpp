#include "video/video_segments.h"

#include <algorithm>
#include <charconv>

#include "video/av_error.h"
#include "video/video_probe.h"

extern "C" {
#include <libavformat/avformat.h>
}

namespace tessera::video {
namespace {

struct PacketTime {
  int64_t pts = 0;
  bool key = false;
};

// Every video packet's presentation time (its decoding time when it has none),
// in presentation order.
Result<std::vector<PacketTime>> ReadVideoPacketTimes(const std::string& path) {
  auto input = OpenInputFile(path);
  if (!input.ok()) return input.status();
  AVFormatContext* context = input->context.get();
  int stream = FindUpscaledStream(*context);
  if (stream < 0) return Status(StatusCode::kBadImage, path + " has no video stream");
  std::vector<PacketTime> times;
  Packet packet(av_packet_alloc());
  while (true) {
    int e = av_read_frame(context, packet.get());
    if (e == AVERROR_EOF) break;
    if (e < 0) return AvStatus(StatusCode::kBadImage, "cannot read " + path, e);
    if (packet->stream_index == stream) {
      int64_t t = packet->pts != AV_NOPTS_VALUE ? packet->pts : packet->dts;
      if (t == AV_NOPTS_VALUE) {
        av_packet_unref(packet.get());
        return Status(StatusCode::kBadImage, path + ": a video packet without a timestamp; it cannot be cut into segments");
      }
      times.push_back({t, (packet->flags & AV_PKT_FLAG_KEY) != 0});
    }
    av_packet_unref(packet.get());
  }
  std::stable_sort(times.begin(), times.end(), [](const PacketTime& a, const PacketTime& b) { return a.pts < b.pts; });
  if (times.empty()) return Status(StatusCode::kBadImage, path + " has no video frames");
  return times;
}

}  // namespace

Result<SegmentPlan> PlanSegments(const std::string& path, int wanted) {
  auto times = ReadVideoPacketTimes(path);
  if (!times.ok()) return times.status();
  const std::vector<PacketTime>& all = *times;
  // Where a segment may start: a keyframe's position in presentation order
  // (the first frame starts the first segment whatever it is).
  std::vector<size_t> starts;
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].key) starts.push_back(i);
  }
  SegmentPlan plan;
  plan.frames = static_cast<int64_t>(all.size());
  plan.keyframes = static_cast<int64_t>(starts.size()) + (all[0].key ? 1 : 0);
  int count = std::clamp<int>(wanted, 1, static_cast<int>(starts.size()) + 1);
  // Cut i goes at the keyframe nearest to an even share of the frames; cuts stay
  // strictly increasing, so no segment is empty.
  std::vector<size_t> cuts = {0};
  size_t next_start = 0;  // index into `starts` of the first keyframe still usable
  for (int i = 1; i < count; ++i) {
    double target = static_cast<double>(all.size()) * i / count;
    size_t last_allowed = starts.size() - static_cast<size_t>(count - i);  // leave one keyframe per later cut
    size_t best = next_start;
    for (size_t k = next_start; k <= last_allowed; ++k) {
      if (std::abs(static_cast<double>(starts[k]) - target) < std::abs(static_cast<double>(starts[best]) - target)) {
        best = k;
      }
    }
    cuts.push_back(starts[best]);
    next_start = best + 1;
  }
  for (size_t i = 0; i < cuts.size(); ++i) {
    VideoSegment segment;
    segment.index = static_cast<int>(i);
    size_t end = i + 1 < cuts.size() ? cuts[i + 1] : all.size();
    if (i > 0) segment.range.start = all[cuts[i]].pts;
    if (i + 1 < cuts.size()) segment.range.end = all[end].pts;
    segment.frames = static_cast<int64_t>(end - cuts[i]);
    plan.segments.push_back(segment);
  }
  return plan;
}

Result<VideoRange> ParseVideoRange(const std::string& text) {
  size_t colon = text.find(':');
  if (colon == std::string::npos) return InvalidError("--range must be START:END, got " + text);
  VideoRange range;
  auto parse = [&](std::string_view part, std::optional<int64_t>& into) {
    if (part.empty()) return true;
    int64_t value = 0;
    auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (error != std::errc() || end != part.data() + part.size()) return false;
    into = value;
    return true;
  };
  std::string_view view(text);
  if (!parse(view.substr(0, colon), range.start) || !parse(view.substr(colon + 1), range.end)) {
    return InvalidError("--range must be START:END (integers in the video stream's time base), got " + text);
  }
  if (range.start && range.end && *range.end <= *range.start) {
    return InvalidError("--range " + text + " is empty: END must be after START");
  }
  return range;
}

std::string FormatVideoRange(const VideoRange& range) {
  return (range.start ? std::to_string(*range.start) : "") + ":" + (range.end ? std::to_string(*range.end) : "");
}

}  // namespace tessera::video
