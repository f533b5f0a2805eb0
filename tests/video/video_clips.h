// Short test videos made with the ffmpeg program in a temporary folder, and
// ffprobe/ffmpeg readers to look inside outputs independently of src/video.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../support/run_program.h"

namespace tessera::test {

// ffmpeg -y -hide_banner -loglevel error <args>; fails the test when ffmpeg fails.
void Ffmpeg(const std::vector<std::string>& args);

// A fresh temporary folder, removed when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The chroma and rounding flags of src/video/frame_converter.cpp, for ffmpeg's
// own conversions to RGB: ffmpeg's default upsamples chroma differently, and the
// model magnifies such differences.
inline constexpr const char* kPipelineSwsFlags = "bicubic+accurate_rnd+full_chroma_int+full_chroma_inp+bitexact";

// ffprobe -show_streams -show_chapters -show_format as JSON.
nlohmann::json ProbeStreams(const std::string& path);
// The first video stream's frames: pts_time of each, in order of presentation.
std::vector<double> FrameTimes(const std::string& path);
// The first video stream's frames as rgb24, each width*height*3 bytes, as
// stored (not rotated by the display matrix), converted by ffmpeg with
// kPipelineSwsFlags and the stream's own matrix and range.
std::vector<std::vector<uint8_t>> RgbFrames(const std::string& path);
// The first video stream's luma planes as stored (yuv420p, yuv444p or
// yuv420p10le), in 8-bit units (10-bit values / 4).
std::vector<std::vector<double>> LumaPlanes(const std::string& path);
// The BT.601 limited-range luma of an rgb24 image, in 8-bit units: what an
// encoder stores for it before any loss.
std::vector<double> Bt601Luma(const std::vector<uint8_t>& rgb);
// PSNR between two planes of one size (peak 255); 99 when equal.
double PlanePsnr(const std::vector<double>& a, const std::vector<double>& b);

// The concatenated packet payloads of the streams `map` selects (e.g. "0:a"), copied out by ffmpeg.
std::vector<uint8_t> PacketPayloads(const std::string& path, const std::string& map);

}  // namespace tessera::test
