// The 704 ↔ 720 mapping of seed 001, section 9.
//
// The video model only makes 704 pixels on the short side. The API speaks 720:
//
//   API size     generator size   post-processing (ffmpeg)
//   1280x720  →  1280x704         pad=1280:720:0:8:black   (8 black rows top and bottom)
//   720x1280  →  704x1280         pad=720:1280:8:0:black   (8 black columns left and right)
//
// Padding is the default (no distortion); scaling straight to 720 is the
// alternative for those who prefer no bands (a 2% stretch).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace tessera::jobs {

struct VideoSize {
  int width = 0;
  int height = 0;

  bool operator==(const VideoSize&) const = default;
  std::string ToString() const;  // "1280x720"
};

// Accepts exactly "1280x720" and "720x1280"; anything else is kInvalid with a
// message that lists the accepted sizes.
Result<VideoSize> ParseApiSize(std::string_view text);

// The size the generator is asked for: 1280x720 → 1280x704, 720x1280 → 704x1280.
// `api_size` must be one ParseApiSize accepts.
VideoSize GeneratorSize(VideoSize api_size);

enum class ResizeMode { kPad, kScale };

// "pad" or "scale"; anything else is kInvalid.
Result<ResizeMode> ParseResizeMode(std::string_view text);
const char* ResizeModeName(ResizeMode mode);

// The ffmpeg video filter taking a generator-sized frame to `api_size`.
std::string VideoFilter(VideoSize api_size, ResizeMode mode);

// The full ffmpeg command line (argv[0] is "ffmpeg") that converts `input` into an
// H.264 MP4 of `api_size` at `output`: quiet, never reads stdin, overwrites
// `output`, copies the audio stream when there is one, moov atom up front. The
// muxer is named explicitly, so `output` needs no ".mp4" suffix. Both paths are
// passed as "file:" URLs, so a name that starts with '-' or holds a ':' is never
// taken for an option or a protocol.
std::vector<std::string> FfmpegArgs(const std::string& input, const std::string& output, VideoSize api_size,
                                    ResizeMode mode);

struct VideoToolOptions {
  std::string ffmpeg = "ffmpeg";    // looked up in PATH when it has no '/'
  std::string ffprobe = "ffprobe";  //
  // The whole run; past it the tool is killed and the call fails with kTimeout.
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};

// Converts the generator's video at `input` into the API-sized video at `output`.
//
// ffmpeg writes to a temporary file beside `output` that is renamed over it only
// once ffmpeg has succeeded, so a failed, killed or timed-out run leaves neither a
// partial file nor a changed `output`. Errors:
//   kNotFound     `input` does not exist;
//   kInvalid      ffmpeg rejected the input (the message ends with ffmpeg's last
//                 stderr lines);
//   kUnsupported  ffmpeg is not installed;
//   kTimeout      it ran longer than options.timeout;
//   kIo           the temporary file or the rename failed.
Status PostprocessVideo(const std::string& input, const std::string& output, VideoSize api_size, ResizeMode mode,
                        const VideoToolOptions& options = {});

// The width and height of the first video stream of `path`, read with ffprobe.
// kNotFound when the file is missing, kInvalid when it has no readable video
// stream, kUnsupported when ffprobe is not installed.
Result<VideoSize> ProbeVideoSize(const std::string& path, const VideoToolOptions& options = {});

}  // namespace tessera::jobs
