// Clips for the server's video tests, made with the ffmpeg program, and what
// the tests compare in outputs, read back with ffprobe/ffmpeg (never with
// src/video): frame times, audio packets, each decoded frame's MD5.
#pragma once

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "../support/run_program.h"

namespace tessera::test {

// testsrc2 64x48 at 10 fps with a keyframe every 4 frames (so `frames / 4`
// segments at most) and a sine tone in AAC.
inline std::string MakeClip(const std::string& dir, int frames) {
  std::string path = dir + "/clip.mp4";
  std::string seconds = std::to_string(frames / 10.0);
  RunResult made = RunProgram({"ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                               "testsrc2=size=64x48:rate=10", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                               "-t", seconds, "-frames:v", std::to_string(frames), "-c:v", "libx264", "-g", "4",
                               "-keyint_min", "4", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", path});
  EXPECT_EQ(made.exit_code, 0) << made.output;
  return path;
}

inline std::string ProbeCsv(const std::string& path, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ffprobe", "-v", "error"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(path);
  RunResult probed = RunProgram(argv);
  EXPECT_EQ(probed.exit_code, 0) << probed.output;
  return probed.output;
}

// Every video frame's presentation time, in order (ffprobe's decoded frames),
// one per line. (A frame with side data, such as x264's SEI at each segment's
// start, gets extra CSV fields and lines: only the times are kept.)
inline std::string FrameTimes(const std::string& path) {
  std::string csv = ProbeCsv(path, {"-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "csv=p=0"});
  std::stringstream in(csv), out;
  for (std::string line; std::getline(in, line);) {
    line = line.substr(0, line.find(','));
    if (!line.empty()) out << line << "\n";
  }
  return out.str();
}

// The MD5 of the audio packets as they are stored (ffmpeg -c copy -f md5).
inline std::string AudioMd5(const std::string& path) {
  RunResult md5 = RunProgram({"ffmpeg", "-hide_banner", "-loglevel", "error", "-i", path, "-map", "0:a", "-c",
                              "copy", "-f", "md5", "-"});
  EXPECT_EQ(md5.exit_code, 0) << md5.output;
  return md5.output;
}

// One MD5 per decoded video frame (ffmpeg -f framemd5), timestamps stripped of
// the header lines: what "the same frames" means between two outputs.
inline std::string DecodedFrameMd5s(const std::string& path) {
  RunResult md5 = RunProgram({"ffmpeg", "-hide_banner", "-loglevel", "error", "-i", path, "-map", "0:v", "-f",
                              "framemd5", "-"});
  EXPECT_EQ(md5.exit_code, 0) << md5.output;
  std::stringstream in(md5.output), out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') out << line << "\n";
  }
  return out.str();
}

}  // namespace tessera::test
