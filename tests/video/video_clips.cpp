#include "video_clips.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include "../support/test_images.h"

namespace tessera::test {

namespace fs = std::filesystem;

void Ffmpeg(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-nostdin"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = RunProgram(argv);
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/tessera-video-XXXXXX";
  path_ = ::mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

nlohmann::json ProbeStreams(const std::string& path) {
  RunResult r =
      RunProgram({"ffprobe", "-v", "error", "-show_streams", "-show_chapters", "-show_format", "-of", "json", path});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output, nullptr, false);
}

std::vector<double> FrameTimes(const std::string& path) {
  RunResult r = RunProgram(
      {"ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "json", path});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<double> times;
  nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
  for (const auto& frame : j["frames"]) times.push_back(std::stod(frame["pts_time"].get<std::string>()));
  return times;
}

namespace {

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

std::vector<std::vector<uint8_t>> RgbFrames(const std::string& path) {
  nlohmann::json streams = ProbeStreams(path)["streams"];
  int width = 0, height = 0;
  for (const auto& s : streams) {
    if (s["codec_type"] == "video") {
      width = s["width"];
      height = s["height"];
      break;
    }
  }
  TempDir dir;
  Ffmpeg({"-noautorotate", "-i", path, "-map", "0:v:0", "-fps_mode", "passthrough", "-sws_flags", kPipelineSwsFlags,
          "-f", "rawvideo", "-pix_fmt", "rgb24", dir / "frames.rgb"});
  std::vector<uint8_t> all = ReadAll(dir / "frames.rgb");
  const size_t frame_bytes = static_cast<size_t>(width) * height * 3;
  std::vector<std::vector<uint8_t>> frames;
  for (size_t at = 0; frame_bytes > 0 && at + frame_bytes <= all.size(); at += frame_bytes) {
    frames.emplace_back(all.begin() + at, all.begin() + at + frame_bytes);
  }
  return frames;
}

std::vector<uint8_t> PacketPayloads(const std::string& path, const std::string& map) {
  TempDir dir;
  Ffmpeg({"-i", path, "-map", map, "-c", "copy", "-f", "data", dir / "payload.bin"});
  return ReadAll(dir / "payload.bin");
}

std::vector<std::vector<double>> LumaPlanes(const std::string& path) {
  nlohmann::json video;
  const nlohmann::json probe = ProbeStreams(path);
  for (const auto& s : probe["streams"]) {
    if (s["codec_type"] == "video") video = s;
  }
  const size_t w = video["width"], h = video["height"];
  const std::string format = video["pix_fmt"];
  size_t frame_samples = 0;
  if (format == "yuv420p" || format == "yuv420p10le") {
    frame_samples = w * h + 2 * ((w + 1) / 2) * ((h + 1) / 2);
  } else if (format == "yuv444p") {
    frame_samples = 3 * w * h;
  } else {
    ADD_FAILURE() << "LumaPlanes does not read " << format;
    return {};
  }
  const bool ten_bit = format == "yuv420p10le";
  const size_t sample_bytes = ten_bit ? 2 : 1;
  TempDir dir;
  Ffmpeg(
      {"-noautorotate", "-i", path, "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", dir / "frames.yuv"});
  std::vector<uint8_t> all = ReadAll(dir / "frames.yuv");
  std::vector<std::vector<double>> planes;
  const size_t frame_bytes = frame_samples * sample_bytes;
  for (size_t at = 0; at + frame_bytes <= all.size(); at += frame_bytes) {
    std::vector<double> luma(w * h);
    for (size_t i = 0; i < w * h; ++i) {
      luma[i] = ten_bit ? (all[at + 2 * i] | (all[at + 2 * i + 1] << 8)) / 4.0 : all[at + i];
    }
    planes.push_back(std::move(luma));
  }
  return planes;
}

std::vector<double> Bt601Luma(const std::vector<uint8_t>& rgb) {
  std::vector<double> luma(rgb.size() / 3);
  for (size_t i = 0; i < luma.size(); ++i) {
    luma[i] = 16 + 219.0 / 255.0 * (0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2]);
  }
  return luma;
}

double PlanePsnr(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.empty()) return 0;
  double squared = 0;
  for (size_t i = 0; i < a.size(); ++i) squared += (a[i] - b[i]) * (a[i] - b[i]);
  if (squared == 0) return 99;
  return 10 * std::log10(255.0 * 255.0 / (squared / static_cast<double>(a.size())));
}

}  // namespace tessera::test
