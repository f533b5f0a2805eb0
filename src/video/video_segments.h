// How a video is cut into segments for the server's video jobs (issue 19,
// docs/video.md): contiguous keyframe ranges, each decodable on its own, so
// that any lane of any node can upscale one into a file of its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"
#include "video/video_reader.h"

namespace tessera::video {

struct VideoSegment {
  int index = 0;
  VideoRange range;     // in the video stream's time base; the first and last are open-ended
  int64_t frames = 0;   // video packets (frames) whose timestamps fall in the range
};

struct SegmentPlan {
  int64_t frames = 0;     // of the whole video
  int64_t keyframes = 0;
  std::vector<VideoSegment> segments;  // in timeline order, covering every frame once
};

// Reads the video stream's packets (demuxing only, no decoding) and cuts at
// keyframes into at most `wanted` segments (fewer when the video has fewer
// keyframes), balanced by frame count. kBadImage for an unreadable file.
Result<SegmentPlan> PlanSegments(const std::string& path, int wanted);

// "START:END" (either may be empty: open) <-> VideoRange, as `tessera upscale
// --range` takes it. kInvalid for anything else.
Result<VideoRange> ParseVideoRange(const std::string& text);
std::string FormatVideoRange(const VideoRange& range);

}  // namespace tessera::video
