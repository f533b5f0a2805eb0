// Joins a video's upscaled segments into one file without re-encoding them
// (docs/video.md, "Server video jobs"): the video packets of every segment are
// copied in order, and the other streams (audio, subtitles) are copied once from
// the source for the whole timeline, so they are bit-identical to the source's
// and have no seam at the joins.
//
// The segments must come from one encoder setup (same codec, size, extradata),
// as the server's segment jobs do. Their timestamps are the source's (a segment
// keeps the input's timestamps), so nothing is shifted; only a decoding time
// that would not increase across a join (an encoder's B-frame delay starts
// each segment's decoding times before its first frame) is moved just past the
// previous one.
//
// Written to "<output>.partial", synced and renamed like VideoWriter's output;
// on failure the partial file is removed.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace tessera::video {

struct JoinReport {
  int64_t video_packets = 0;
  int64_t other_packets = 0;  // copied from the source
};

// `segments` in timeline order. kInvalid when the source holds a stream the
// output's container can take only converted (text subtitles into MP4): a
// video job copies the other streams as they are (CheckJoinableStreams says so
// before any work). kBadImage for an unreadable segment or source; kIo for the
// output.
Status JoinSegments(const std::string& source, const std::vector<std::string>& segments, const std::string& output,
                    JoinReport* report = nullptr);

// Refuses, before work, a source whose other streams the joiner could not copy
// as they are into `output`'s container (subtitles that need converting,
// streams the container refuses).
Status CheckJoinableStreams(const std::string& source, const std::string& output);

}  // namespace tessera::video
