// `tessera upscale` on videos, as a user meets it: clips made by ffmpeg, outputs
// read back by ffprobe/ffmpeg (never by src/video), frames compared with the same
// frames upscaled one by one as images.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "../support/test_images.h"
#include "engine/lanczos_upscaler.h"
#include "video/av_error.h"
#include "video/video_upscale_pipeline.h"
#include "video_clips.h"

namespace tessera::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModel = "realesr-animevideov3-x2";

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The first `size` bytes of `bytes` (all by default) into `path`.
void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes, size_t size = SIZE_MAX) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(std::min(size, bytes.size())));
}

// 6 frames of `source` (testsrc2, or testsrc: testsrc2 rounds sizes to even) at
// 10 fps, `size`, with a sine tone (AAC), into `path`.
void MakeClip(const std::string& path, const std::string& size, const std::vector<std::string>& video_args,
              bool audio = true, const std::string& source = "testsrc2") {
  std::vector<std::string> args{"-f", "lavfi", "-i", source + "=size=" + size + ":rate=10:duration=0.6"};
  if (audio) args.insert(args.end(), {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.6"});
  args.insert(args.end(), video_args.begin(), video_args.end());
  if (audio) args.insert(args.end(), {"-c:a", "aac", "-shortest"});
  args.push_back(path);
  Ffmpeg(args);
}

// The frames of `video` upscaled one at a time as images: extracted as PNG by
// ffmpeg, upscaled by `tessera upscale` on the folder.
std::vector<std::vector<uint8_t>> UpscaledAsImages(const std::string& video, const TempDir& dir,
                                                   const std::string& model = kModel) {
  fs::create_directories(dir.path() / "frames");
  // As stored: the model is not rotation-invariant, so frames are compared
  // unrotated, and converted to RGB as the pipeline converts them.
  Ffmpeg({"-noautorotate", "-i", video, "-map", "0:v:0", "-fps_mode", "passthrough", "-sws_flags", kPipelineSwsFlags,
          "-pix_fmt", "rgb24", (dir.path() / "frames" / "%03d.png").string()});
  RunResult r = RunTessera({"upscale", "-i", dir / "frames", "-o", dir / "big", "-n", model, "-f", "png"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir.path() / "big")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  InitImagingForTests();
  std::vector<std::vector<uint8_t>> frames;
  for (const fs::path& f : files) {
    DecodedPixels px = DecodePixels(ReadFile(f.string()));
    EXPECT_EQ(px.bands, 3);
    frames.push_back(std::move(px.data));
  }
  return frames;
}

void ExpectSameTimes(const std::vector<double>& in, const std::vector<double>& out) {
  ASSERT_EQ(in.size(), out.size());
  for (size_t i = 0; i < in.size(); ++i) EXPECT_NEAR(in[i], out[i], 1e-3) << "frame " << i;
}

// Every output frame's luma (its Y plane, as stored) within `min_db` of the
// BT.601 luma of the same frame upscaled alone as an image.
void ExpectFramesMatchImages(const std::string& input, const std::string& output, const TempDir& dir,
                             double min_db = 40) {
  std::vector<std::vector<uint8_t>> expected = UpscaledAsImages(input, dir);
  std::vector<std::vector<double>> got = LumaPlanes(output);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_GE(PlanePsnr(got[i], Bt601Luma(expected[i])), min_db) << "frame " << i;
  }
}

nlohmann::json StreamOfType(const nlohmann::json& probe, const std::string& type) {
  for (const auto& s : probe["streams"]) {
    if (s["codec_type"] == type) return s;
  }
  ADD_FAILURE() << "no " << type << " stream";
  return nlohmann::json::object();
}

// `tessera upscale -i input -o output <flags>` in `dir` fails (exit 1) with each
// of `messages` in its output, and leaves neither `output` nor its partial file.
// Returns the output.
std::string ExpectFailure(const TempDir& dir, const std::string& input, const std::string& output,
                          const std::vector<std::string>& flags, const std::vector<std::string>& messages) {
  std::vector<std::string> args{"upscale", "-i", dir / input, "-o", dir / output, "-n", kModel};
  args.insert(args.end(), flags.begin(), flags.end());
  RunResult r = RunTessera(args);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  for (const std::string& m : messages) EXPECT_NE(r.output.find(m), std::string::npos) << m << "\n" << r.output;
  EXPECT_FALSE(fs::exists(dir / output));
  EXPECT_FALSE(fs::exists(dir / (output + ".partial")));
  return r.output;
}

TEST(VideoUpscaleTest, Mp4KeepsTimestampsAudioChaptersAndRotation) {
  TempDir dir;
  std::ofstream(dir / "chapters.txt") << ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=300\ntitle=One\n"
                                         "[CHAPTER]\nTIMEBASE=1/1000\nSTART=300\nEND=600\ntitle=Two\n";
  Ffmpeg({"-f",
          "lavfi",
          "-i",
          "testsrc2=size=64x48:rate=10:duration=0.6",
          "-f",
          "lavfi",
          "-i",
          "sine=frequency=440:sample_rate=48000:duration=0.6",
          "-i",
          dir / "chapters.txt",
          "-map",
          "0:v",
          "-map",
          "1:a",
          "-map_chapters",
          "2",
          "-c:v",
          "libx264",
          "-pix_fmt",
          "yuv420p",
          "-g",
          "3",
          "-c:a",
          "aac",
          "-shortest",
          dir / "plain.mp4"});
  // FFmpeg 5.1 writes a display matrix from the rotate tag on a stream copy only.
  Ffmpeg({"-i", dir / "plain.mp4", "-map", "0", "-c", "copy", "-metadata:s:v:0", "rotate=90", dir / "in.mp4"});
  RunResult r = RunTessera({"upscale", "-i", dir / "in.mp4", "-o", dir / "out.mp4", "-n", kModel, "--crf", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("frames 6/6"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out.mp4.partial"));

  nlohmann::json in = ProbeStreams(dir / "in.mp4");
  nlohmann::json out = ProbeStreams(dir / "out.mp4");
  const nlohmann::json video = StreamOfType(out, "video");
  EXPECT_EQ(video["width"], 128);
  EXPECT_EQ(video["height"], 96);
  EXPECT_EQ(video["codec_name"], "h264");
  ASSERT_TRUE(video.contains("side_data_list")) << video.dump();
  EXPECT_EQ(StreamOfType(in, "video")["side_data_list"][0]["rotation"], 90);
  EXPECT_EQ(video["side_data_list"][0]["rotation"], 90);
  ASSERT_EQ(out["chapters"].size(), 2u);
  EXPECT_EQ(out["chapters"][1]["tags"]["title"], "Two");
  EXPECT_EQ(out["chapters"][1]["start_time"], in["chapters"][1]["start_time"]);

  ExpectSameTimes(FrameTimes(dir / "in.mp4"), FrameTimes(dir / "out.mp4"));
  std::vector<uint8_t> audio_in = PacketPayloads(dir / "in.mp4", "0:a");
  ASSERT_FALSE(audio_in.empty());
  EXPECT_TRUE(audio_in == PacketPayloads(dir / "out.mp4", "0:a")) << "audio packets differ";
  ExpectFramesMatchImages(dir / "in.mp4", dir / "out.mp4", dir);
}

TEST(VideoUpscaleTest, SubtitlesBecomeMovTextInMp4AndStayAsTheyAreInMkv) {
  TempDir dir;
  std::ofstream(dir / "subs.srt") << "1\n00:00:00,000 --> 00:00:00,300\nHello\n\n2\n00:00:00,300 --> 00:00:00,600\n"
                                     "World\n";
  Ffmpeg({"-f",        "lavfi",
          "-i",        "testsrc2=size=64x48:rate=10:duration=0.6",
          "-f",        "lavfi",
          "-i",        "sine=frequency=440:sample_rate=48000:duration=0.6",
          "-i",        dir / "subs.srt",
          "-map",      "0:v",
          "-map",      "1:a",
          "-map",      "2:s",
          "-c:v",      "libx264",
          "-c:a",      "libopus",
          "-c:s",      "srt",
          "-shortest", dir / "in.mkv"});
  RunResult mp4 = RunTessera({"upscale", "-i", dir / "in.mkv", "-o", dir / "out.mp4", "-n", kModel});
  ASSERT_EQ(mp4.exit_code, 0) << mp4.output;
  EXPECT_EQ(StreamOfType(ProbeStreams(dir / "out.mp4"), "subtitle")["codec_name"], "mov_text");
  EXPECT_TRUE(PacketPayloads(dir / "in.mkv", "0:a") == PacketPayloads(dir / "out.mp4", "0:a"));

  RunResult mkv = RunTessera({"upscale", "-i", dir / "in.mkv", "-o", dir / "out.mkv", "-n", kModel});
  ASSERT_EQ(mkv.exit_code, 0) << mkv.output;
  EXPECT_EQ(StreamOfType(ProbeStreams(dir / "out.mkv"), "subtitle")["codec_name"], "subrip");
  std::vector<uint8_t> subs_in = PacketPayloads(dir / "in.mkv", "0:s");
  ASSERT_FALSE(subs_in.empty());
  EXPECT_TRUE(subs_in == PacketPayloads(dir / "out.mkv", "0:s"));
  // mov_text back to MKV: SubRip with the same text.
  RunResult back = RunTessera({"upscale", "-i", dir / "out.mp4", "-o", dir / "back.mkv", "-n", kModel});
  ASSERT_EQ(back.exit_code, 0) << back.output;
  EXPECT_TRUE(subs_in == PacketPayloads(dir / "back.mkv", "0:s"));
}

TEST(VideoUpscaleTest, VariableFrameRateKeepsEveryTimestamp) {
  TempDir dir;
  // Gaps of 1, 1, 4, 2, 2 thirtieths of a second.
  Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30:duration=0.2", "-vf", "setpts='if(lt(N,3),N,2*N)/30/TB'",
          "-fps_mode", "vfr", "-c:v", "libx264", dir / "in.mkv"});
  std::vector<double> in_times = FrameTimes(dir / "in.mkv");
  ASSERT_EQ(in_times.size(), 6u);
  ASSERT_NEAR(in_times[3] - in_times[2], 4.0 / 30, 2e-3);  // the clip really is variable
  for (const char* out : {"out.mp4", "out.mkv"}) {
    RunResult r = RunTessera({"upscale", "-i", dir / "in.mkv", "-o", dir / out, "-n", kModel});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ExpectSameTimes(in_times, FrameTimes(dir / out));
  }
}

TEST(VideoUpscaleTest, OddSizeAndTenBitVideos) {
  TempDir dir;
  MakeClip(dir / "odd.mkv", "97x61", {"-c:v", "libx264", "-pix_fmt", "yuv444p"}, false, "testsrc");
  RunResult odd = RunTessera({"upscale", "-i", dir / "odd.mkv", "-o", dir / "odd_out.mkv", "-n", kModel, "--crf", "8"});
  ASSERT_EQ(odd.exit_code, 0) << odd.output;
  const nlohmann::json v = StreamOfType(ProbeStreams(dir / "odd_out.mkv"), "video");
  EXPECT_EQ(v["width"], 194);
  EXPECT_EQ(v["height"], 122);
  EXPECT_EQ(v["pix_fmt"], "yuv444p");
  TempDir odd_frames;
  ExpectFramesMatchImages(dir / "odd.mkv", dir / "odd_out.mkv", odd_frames);

  MakeClip(dir / "ten.mp4", "64x48", {"-c:v", "libx264", "-pix_fmt", "yuv420p10le"});
  RunResult ten = RunTessera({"upscale", "-i", dir / "ten.mp4", "-o", dir / "ten_out.mp4", "-n", kModel, "--crf", "8"});
  ASSERT_EQ(ten.exit_code, 0) << ten.output;
  EXPECT_EQ(StreamOfType(ProbeStreams(dir / "ten_out.mp4"), "video")["pix_fmt"], "yuv420p10le");
  TempDir ten_frames;
  ExpectFramesMatchImages(dir / "ten.mp4", dir / "ten_out.mp4", ten_frames);
}

std::vector<double> AsDoubles(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

TEST(VideoUpscaleTest, ColourMatrixRangeAndPrimariesAreKept) {
  TempDir dir;
  // BT.709, full range: both differ from the BT.601 limited-range default, and a
  // pipeline that ignored either would shift testsrc2's saturated colours.
  MakeClip(dir / "in.mkv", "64x48",
           {"-c:v", "libx264", "-pix_fmt", "yuv444p", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc",
            "bt709", "-color_range", "pc"},
           false);
  const nlohmann::json in = StreamOfType(ProbeStreams(dir / "in.mkv"), "video");
  ASSERT_EQ(in["color_space"], "bt709");
  ASSERT_EQ(in["color_range"], "pc");
  RunResult r = RunTessera({"upscale", "-i", dir / "in.mkv", "-o", dir / "out.mkv", "-n", kModel, "--crf", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json out = StreamOfType(ProbeStreams(dir / "out.mkv"), "video");
  for (const char* key : {"color_space", "color_range", "color_primaries", "color_transfer", "pix_fmt"}) {
    EXPECT_EQ(out[key], in[key]) << key;
  }
  std::vector<std::vector<uint8_t>> expected = UpscaledAsImages(dir / "in.mkv", dir);
  std::vector<std::vector<uint8_t>> got = RgbFrames(dir / "out.mkv");
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_GE(PlanePsnr(AsDoubles(got[i]), AsDoubles(expected[i])), 38) << "frame " << i << " (RGB)";
  }
}

TEST(VideoUpscaleTest, LosslessRgbIsBitExactAndX4Quadruples) {
  TempDir dir;
  MakeClip(dir / "rgb.mkv", "64x48", {"-c:v", "ffv1", "-pix_fmt", "bgr0"}, false);
  RunResult r = RunTessera({"upscale", "-i", dir / "rgb.mkv", "-o", dir / "out.mkv", "-n", kModel, "--codec", "ffv1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::vector<uint8_t>> expected = UpscaledAsImages(dir / "rgb.mkv", dir);
  std::vector<std::vector<uint8_t>> got = RgbFrames(dir / "out.mkv");
  ASSERT_EQ(got.size(), 6u);
  ASSERT_EQ(expected.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(got[i] == expected[i]) << "frame " << i;

  RunResult x4 = RunTessera(
      {"upscale", "-i", dir / "rgb.mkv", "-o", dir / "x4.mkv", "-n", "realesr-animevideov3-x4", "--codec", "ffv1"});
  ASSERT_EQ(x4.exit_code, 0) << x4.output;
  const nlohmann::json v = StreamOfType(ProbeStreams(dir / "x4.mkv"), "video");
  EXPECT_EQ(v["width"], 256);
  EXPECT_EQ(v["height"], 192);
}

TEST(VideoUpscaleTest, ContainerRulesAndLimitsRefuseBeforeWork) {
  TempDir dir;
  MakeClip(dir / "in.mp4", "64x48", {"-c:v", "libx264"});
  struct Case {
    std::vector<std::string> flags;
    std::string output;
    std::string message;
  };
  const std::vector<Case> cases{
      {{"--codec", "ffv1"}, "out.mp4", "only allowed in MKV"},
      {{}, "out.webm", "cannot go into WebM"},
      {{}, "out.avi", "must end in .mp4"},
      {{"--max-video-frames", "5"}, "out.mp4", "has 6 frames, over --max-video-frames 5"},
      {{"--max-video-pixels", "3000"}, "out.mp4", "64x48 = 3072 pixels a frame, over --max-video-pixels 3000"},
      {{"--pix-fmt", "rgb24"}, "out.mp4", "--pix-fmt rgb24 is not taken by libx264"},
      {{"--codec", "ffv1", "--crf", "5"}, "out.mkv", "lossless"},
      {{"--preset", "warpspeed"}, "out.mp4", "cannot open the libx264 encoder (check --preset"},
      {{"--codec", "libvpx-vp9"}, "out.webm", "audio stream #1 (aac) cannot be stored in WebM"},
  };
  for (const Case& c : cases) {
    const std::string output = ExpectFailure(dir, "in.mp4", c.output, c.flags, {c.message});
    EXPECT_EQ(output.find("frames 1/"), std::string::npos) << "work started: " << output;
  }
}

TEST(VideoUpscaleTest, X265AndVp9Encode) {
  TempDir dir;
  // Opus audio: WebM holds it (not AAC), MP4 too.
  Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.6", "-f", "lavfi", "-i",
          "sine=frequency=440:sample_rate=48000:duration=0.6", "-c:v", "libx264", "-c:a", "libopus", "-shortest",
          dir / "opus.mkv"});
  struct Case {
    const char* codec;
    const char* output;
    const char* codec_name;
  };
  for (const Case& c : {Case{"libx265", "out.mp4", "hevc"}, Case{"libvpx-vp9", "out.webm", "vp9"}}) {
    RunResult r = RunTessera({"upscale", "-i", dir / "opus.mkv", "-o", dir / c.output, "-n", kModel, "--codec", c.codec,
                              "--preset", c.codec == std::string("libx265") ? "ultrafast" : "8"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const nlohmann::json probe = ProbeStreams(dir / c.output);
    EXPECT_EQ(StreamOfType(probe, "video")["codec_name"], c.codec_name);
    EXPECT_EQ(StreamOfType(probe, "video")["width"], 128);
    EXPECT_EQ(FrameTimes(dir / c.output).size(), 6u);
    EXPECT_TRUE(PacketPayloads(dir / "opus.mkv", "0:a") == PacketPayloads(dir / c.output, "0:a")) << c.codec;
  }
}

TEST(VideoUpscaleTest, CorruptAndTruncatedInputsFailNamingTheFrame) {
  TempDir dir;
  MakeClip(dir / "in.mp4", "64x48", {"-c:v", "libx264", "-g", "2", "-movflags", "+faststart"}, false);
  std::vector<uint8_t> bytes = ReadFile(dir / "in.mp4");
  ASSERT_GT(bytes.size(), 2000u);

  std::vector<uint8_t> corrupt = bytes;
  // Past the header (faststart puts moov first), over the frames' data.
  for (size_t i = corrupt.size() / 2; i < corrupt.size() / 2 + 400; ++i) corrupt[i] = static_cast<uint8_t>(i * 37);
  WriteFile(dir / "corrupt.mp4", corrupt);
  ExpectFailure(dir, "corrupt.mp4", "c.mp4", {}, {"corrupt.mp4: ", "frame ", "in decoding order"});

  WriteFile(dir / "cut.mp4", bytes, bytes.size() * 2 / 3);
  ExpectFailure(dir, "cut.mp4", "t.mp4", {}, {"frame ", "truncated"});

  // Cut before its index (moov last): it no longer opens, and fails as a video, not as "not an image".
  MakeClip(dir / "late_index.mp4", "64x48", {"-c:v", "libx264"}, false);
  std::vector<uint8_t> late = ReadFile(dir / "late_index.mp4");
  WriteFile(dir / "no_index.mp4", late, late.size() / 2);
  ExpectFailure(dir, "no_index.mp4", "n.mp4", {}, {"event=video_failed", "cannot open"});

  // Matroska's demuxer skips a damaged cluster, saying so only in its log.
  MakeClip(dir / "in.mkv", "64x48", {"-c:v", "libx264", "-g", "2"}, false);
  std::vector<uint8_t> damaged = ReadFile(dir / "in.mkv");
  for (size_t i = damaged.size() / 2; i < damaged.size() / 2 + 300; ++i) damaged[i] = static_cast<uint8_t>(i * 37);
  WriteFile(dir / "damaged.mkv", damaged);
  const std::string output = ExpectFailure(dir, "damaged.mkv", "dm.mp4", {}, {"damaged.mkv"});
  EXPECT_TRUE(output.find("damaged") != std::string::npos || output.find("cannot decode") != std::string::npos)
      << output;

  // MKV has no frame count; its demuxer says when a file ends before the size its header gives.
  std::vector<uint8_t> mkv = ReadFile(dir / "in.mkv");
  WriteFile(dir / "cut.mkv", mkv, mkv.size() * 2 / 3);
  ExpectFailure(dir, "cut.mkv", "m.mp4", {}, {"cut.mkv", "File ended prematurely"});
}

TEST(VideoUpscaleTest, NvencRunsOnAnNvidiaGpuOrFailsClearlyBeforeWork) {
  TempDir dir;
  MakeClip(dir / "in.mkv", "64x48", {"-c:v", "libx264"}, false);
  RunResult r =
      RunTessera({"upscale", "-i", dir / "in.mkv", "-o", dir / "out.mp4", "-n", kModel, "--codec", "h264_nvenc"});
  if (r.exit_code == 0) {
    EXPECT_EQ(StreamOfType(ProbeStreams(dir / "out.mp4"), "video")["codec_name"], "h264");
  } else {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(r.output.find("NVENC needs an NVIDIA GPU") != std::string::npos ||
                r.output.find("has no encoder h264_nvenc") != std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("frames 1/"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir / "out.mp4"));
  }
}

TEST(VideoUpscaleTest, AFullDiskFailsTheRunAndRemovesThePartialFile) {
  TempDir dir;
  MakeClip(dir / "in.mkv", "64x48", {"-c:v", "libx264"});
  std::ofstream(dir / "out.mkv") << "an older output";
  // A file size limit makes writes fail with EFBIG, as a full disk fails them with ENOSPC.
  const std::string command = "trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"";
  RunResult r = RunProgram({"sh", "-c", command, TesseraBinary(), "upscale", "-i", dir / "in.mkv", "-o",
                            dir / "out.mkv", "-n", kModel, "--codec", "ffv1"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot write"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out.mkv.partial"));
  std::ifstream old(dir / "out.mkv");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(old), std::istreambuf_iterator<char>()), "an older output");
}

TEST(VideoUpscalePipelineTest, ASegmentIsUpscaledIntoAFileOfItsOwn) {
  TempDir dir;
  Ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.6", "-c:v", "libx264", "-g", "2", "-bf", "0",
          dir / "in.mkv"});
  std::vector<double> times = FrameTimes(dir / "in.mkv");
  ASSERT_EQ(times.size(), 6u);
  InitImagingForTests();
  video::ShowOnlyLibavErrors();
  engine::LanczosUpscaler lanczos(2.0);
  video::VideoUpscaleOptions options;
  options.input = dir / "in.mkv";
  options.output = dir / "segment.mkv";
  options.range = {200, 400};  // frames 2 and 3 (MKV's time base is 1/1000), keyframe to keyframe
  std::vector<int64_t> progress;
  video::VideoUpscaleReport report;
  Status s = video::UpscaleVideo(
      lanczos, options,
      [&](int64_t done, int64_t total) {
        progress.push_back(done);
        EXPECT_EQ(total, 0);  // a segment's count is not known before it is read
      },
      &report);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(report.frames, 2);
  EXPECT_EQ(progress, (std::vector<int64_t>{1, 2}));
  std::vector<double> segment = FrameTimes(dir / "segment.mkv");
  ASSERT_EQ(segment.size(), 2u);
  EXPECT_NEAR(segment[0], times[2], 1e-3);
  EXPECT_NEAR(segment[1], times[3], 1e-3);
  EXPECT_EQ(StreamOfType(ProbeStreams(dir / "segment.mkv"), "video")["width"], 128);
  EXPECT_FALSE(fs::exists(dir / "segment.mkv.partial"));
}

TEST(VideoUpscaleTest, ANonVideoStillGoesTheImageWay) {
  TempDir dir;
  WriteFile(dir / "picture.mp4", SolidPng(8, 6, {10, 20, 30}));
  RunResult r = RunTessera({"upscale", "-i", dir / "picture.mp4", "-o", dir / "out.png", "-n", "lanczos", "-s", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "out.png"));
}

}  // namespace
}  // namespace tessera::test
