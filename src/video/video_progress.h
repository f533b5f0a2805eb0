// The progress line of a video upscale on stderr: frames done of all, the rate
// and the time left, e.g. "frames 120/300 (40%)  2.5 fps  ETA 1:12". On a
// terminal one line is rewritten in place; elsewhere (logs, pipes) a line is
// printed at most every few seconds, and always for the last frame.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tessera::video {

// The line for `done` of `total` frames after `elapsed`; total 0 = unknown.
std::string ProgressLine(int64_t done, int64_t total, std::chrono::duration<double> elapsed);

class ProgressPrinter {
 public:
  // `out`: where lines go; a terminal gets one line rewritten in place.
  explicit ProgressPrinter(std::FILE* out);
  void Update(int64_t done, int64_t total);

 private:
  std::FILE* out_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_print_{};
};

}  // namespace tessera::video
