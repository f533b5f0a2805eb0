#include "jobs/video_postprocess.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "util/fd_io.h"
#include "util/subprocess.h"

namespace tessera::jobs {
namespace {

namespace fs = std::filesystem;

// --- helpers ---------------------------------------------------------------------

// Runs a command and returns its stdout; fails the test on a non-zero exit.
std::string RunCapture(const std::vector<std::string>& argv) {
  SubprocessOptions o;
  o.argv = argv;
  o.pipe_stdin = false;
  o.stderr_path = "/dev/null";
  auto child = Subprocess::Start(o);
  EXPECT_TRUE(child.ok()) << child.status().ToString();
  if (!child.ok()) return {};
  std::string out;
  uint8_t buf[1 << 16];
  for (;;) {
    auto n = ReadSome(child->stdout_fd(), buf, sizeof buf);
    if (!n.ok() || *n == 0) break;
    out.append(reinterpret_cast<char*>(buf), *n);
  }
  auto status = child->Wait();
  EXPECT_TRUE(status.ok() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << argv[0] << " failed";
  return out;
}

void WriteFile(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> DirEntries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

// A tool stand-in: a shell script made executable.
fs::path WriteScript(const fs::path& path, const std::string& body) {
  WriteFile(path, "#!/bin/sh\n" + body + "\n");
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

// One decoded frame, RGB24.
struct Frame {
  int width = 0;
  int height = 0;
  std::string rgb;

  // Mean and max channel value over the rectangle [x0, x1) x [y0, y1).
  std::pair<double, int> Stats(int x0, int y0, int x1, int y1) const {
    double sum = 0;
    int max = 0;
    size_t count = 0;
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x) {
        for (int c = 0; c < 3; ++c) {
          int v = static_cast<uint8_t>(rgb[(static_cast<size_t>(y) * width + x) * 3 + c]);
          sum += v;
          max = std::max(max, v);
          ++count;
        }
      }
    }
    return {count ? sum / count : 0, max};
  }
};

Frame FirstFrame(const fs::path& video, VideoSize size) {
  Frame f{size.width, size.height,
          RunCapture({"ffmpeg", "-v", "error", "-nostdin", "-i", video.string(), "-frames:v", "1", "-f", "rawvideo",
                      "-pix_fmt", "rgb24", "-"})};
  EXPECT_EQ(f.rgb.size(), static_cast<size_t>(size.width) * size.height * 3);
  if (f.rgb.size() != static_cast<size_t>(size.width) * size.height * 3)
    f.rgb.assign(size_t(size.width) * size.height * 3, '\0');
  return f;
}

std::string StreamInfo(const fs::path& video, const std::string& stream, const std::string& entries) {
  std::string out = RunCapture({"ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
                                "stream=" + entries, "-of", "csv=p=0", video.string()});
  while (!out.empty() && (out.back() == '\n' || out.back() == ',')) out.pop_back();
  return out;
}

bool HasPair(const std::vector<std::string>& args, const std::string& a, const std::string& b) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == a && args[i + 1] == b) return true;
  }
  return false;
}

bool Has(const std::vector<std::string>& args, const std::string& a) {
  return std::find(args.begin(), args.end(), a) != args.end();
}

// --- sizes, modes, arguments ----------------------------------------------------

TEST(VideoSizeTest, ParsesExactlyTheTwoApiSizes) {
  auto landscape = ParseApiSize("1280x720");
  ASSERT_TRUE(landscape.ok());
  EXPECT_EQ(*landscape, (VideoSize{1280, 720}));
  auto portrait = ParseApiSize("720x1280");
  ASSERT_TRUE(portrait.ok());
  EXPECT_EQ(*portrait, (VideoSize{720, 1280}));
}

TEST(VideoSizeTest, RejectsEverythingElseClearly) {
  for (const char* text : {"1280x704", "704x1280", "1280X720", " 1280x720", "1280x720 ", "1280*720", "", "720x720",
                           "1920x1080", "1280x720x3", "01280x720"}) {
    auto r = ParseApiSize(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
    EXPECT_NE(r.status().message().find("1280x720"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("720x1280"), std::string::npos) << r.status().message();
  }
}

TEST(VideoSizeTest, GeneratorWorksAt704OnTheShortSide) {
  EXPECT_EQ(GeneratorSize({1280, 720}), (VideoSize{1280, 704}));
  EXPECT_EQ(GeneratorSize({720, 1280}), (VideoSize{704, 1280}));
}

TEST(VideoSizeTest, ToStringIsTheApiSpelling) {
  EXPECT_EQ((VideoSize{1280, 720}).ToString(), "1280x720");
  EXPECT_EQ((VideoSize{704, 1280}).ToString(), "704x1280");
}

TEST(ResizeModeTest, ParsesPadAndScaleOnly) {
  EXPECT_EQ(*ParseResizeMode("pad"), ResizeMode::kPad);
  EXPECT_EQ(*ParseResizeMode("scale"), ResizeMode::kScale);
  for (const char* text : {"Pad", "crop", "", "pad "}) {
    auto r = ParseResizeMode(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  }
  EXPECT_STREQ(ResizeModeName(ResizeMode::kPad), "pad");
  EXPECT_STREQ(ResizeModeName(ResizeMode::kScale), "scale");
}

TEST(FfmpegArgsTest, FiltersFollowTheSeed) {
  EXPECT_EQ(VideoFilter({1280, 720}, ResizeMode::kPad), "pad=1280:720:0:8:black");
  EXPECT_EQ(VideoFilter({720, 1280}, ResizeMode::kPad), "pad=720:1280:8:0:black");
  EXPECT_EQ(VideoFilter({1280, 720}, ResizeMode::kScale), "scale=1280:720");
  EXPECT_EQ(VideoFilter({720, 1280}, ResizeMode::kScale), "scale=720:1280");
}

TEST(FfmpegArgsTest, CommandLineIsQuietH264AndOverwrites) {
  auto args = FfmpegArgs("/in/gen.mp4", "/out/res.mp4", {1280, 720}, ResizeMode::kPad);
  ASSERT_FALSE(args.empty());
  EXPECT_EQ(args.front(), "ffmpeg");
  EXPECT_EQ(args.back(), "file:/out/res.mp4");
  EXPECT_TRUE(HasPair(args, "-i", "file:/in/gen.mp4"));
  EXPECT_TRUE(HasPair(args, "-vf", "pad=1280:720:0:8:black"));
  EXPECT_TRUE(HasPair(args, "-c:v", "libx264"));
  EXPECT_TRUE(HasPair(args, "-pix_fmt", "yuv420p"));
  EXPECT_TRUE(HasPair(args, "-movflags", "+faststart"));
  EXPECT_TRUE(HasPair(args, "-c:a", "copy"));
  EXPECT_TRUE(HasPair(args, "-loglevel", "error"));
  EXPECT_TRUE(HasPair(args, "-f", "mp4"));
  EXPECT_TRUE(Has(args, "-y"));
  EXPECT_TRUE(Has(args, "-nostdin"));
  EXPECT_TRUE(Has(args, "-hide_banner"));
  auto portrait = FfmpegArgs("a", "b", {720, 1280}, ResizeMode::kScale);
  EXPECT_TRUE(HasPair(portrait, "-vf", "scale=720:1280"));
}

// --- real ffmpeg -------------------------------------------------------------------

class VideoPostprocessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "tessera-video-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = new fs::path(tmpl);
    // Landscape with an AAC track, portrait without: both kinds of input occur.
    RunCapture({"ffmpeg",
                "-v",
                "error",
                "-nostdin",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=1280x704:rate=8",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=22050",
                "-t",
                "2",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-shortest",
                (*dir_ / "landscape.mp4").string()});
    RunCapture({"ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc=size=704x1280:rate=8", "-t",
                "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", (*dir_ / "portrait.mp4").string()});
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    // Each test writes into its own folder, so leftovers can be counted.
    out_ = *dir_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(out_);
  }

  static fs::path Input(const char* name) { return *dir_ / name; }

  static fs::path* dir_;
  fs::path out_;
};

fs::path* VideoPostprocessTest::dir_ = nullptr;

TEST_F(VideoPostprocessTest, ProbesTheGeneratedInputs) {
  auto landscape = ProbeVideoSize(Input("landscape.mp4"));
  ASSERT_TRUE(landscape.ok()) << landscape.status().ToString();
  EXPECT_EQ(*landscape, (VideoSize{1280, 704}));
  auto portrait = ProbeVideoSize(Input("portrait.mp4"));
  ASSERT_TRUE(portrait.ok()) << portrait.status().ToString();
  EXPECT_EQ(*portrait, (VideoSize{704, 1280}));
}

TEST_F(VideoPostprocessTest, LandscapePadAddsEightBlackRowsTopAndBottom) {
  fs::path out = out_ / "result.mp4";
  Status s = PostprocessVideo(Input("landscape.mp4"), out, {1280, 720}, ResizeMode::kPad);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto size = ProbeVideoSize(out);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, (VideoSize{1280, 720}));
  EXPECT_EQ(StreamInfo(out, "v:0", "codec_name,pix_fmt"), "h264,yuv420p");

  Frame f = FirstFrame(out, {1280, 720});
  auto [top_mean, top_max] = f.Stats(0, 0, 1280, 8);
  auto [bottom_mean, bottom_max] = f.Stats(0, 712, 1280, 720);
  auto [middle_mean, middle_max] = f.Stats(0, 8, 1280, 712);
  EXPECT_LT(top_mean, 2.0);
  EXPECT_LE(top_max, 16);
  EXPECT_LT(bottom_mean, 2.0);
  EXPECT_LE(bottom_max, 16);
  EXPECT_GT(middle_mean, 40.0);  // the picture itself is not black
  EXPECT_GT(middle_max, 200);
  // The first row of the picture is content, not band: the offset is exactly 8.
  EXPECT_GT(f.Stats(0, 8, 1280, 9).first, 40.0);
}

TEST_F(VideoPostprocessTest, PortraitPadAddsEightBlackColumnsLeftAndRight) {
  fs::path out = out_ / "result.mp4";
  Status s = PostprocessVideo(Input("portrait.mp4"), out, {720, 1280}, ResizeMode::kPad);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto size = ProbeVideoSize(out);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, (VideoSize{720, 1280}));

  Frame f = FirstFrame(out, {720, 1280});
  auto [left_mean, left_max] = f.Stats(0, 0, 8, 1280);
  auto [right_mean, right_max] = f.Stats(712, 0, 720, 1280);
  EXPECT_LT(left_mean, 2.0);
  EXPECT_LE(left_max, 16);
  EXPECT_LT(right_mean, 2.0);
  EXPECT_LE(right_max, 16);
  EXPECT_GT(f.Stats(8, 0, 712, 1280).first, 40.0);
  // Top rows are picture in portrait mode: the bands are on the sides only.
  EXPECT_GT(f.Stats(8, 0, 712, 8).first, 40.0);
}

TEST_F(VideoPostprocessTest, ScaleStretchesWithoutBands) {
  fs::path landscape = out_ / "landscape.mp4";
  ASSERT_TRUE(PostprocessVideo(Input("landscape.mp4"), landscape, {1280, 720}, ResizeMode::kScale).ok());
  EXPECT_EQ(*ProbeVideoSize(landscape), (VideoSize{1280, 720}));
  Frame lf = FirstFrame(landscape, {1280, 720});
  EXPECT_GT(lf.Stats(0, 0, 1280, 8).first, 40.0);
  EXPECT_GT(lf.Stats(0, 712, 1280, 720).first, 40.0);

  fs::path portrait = out_ / "portrait.mp4";
  ASSERT_TRUE(PostprocessVideo(Input("portrait.mp4"), portrait, {720, 1280}, ResizeMode::kScale).ok());
  EXPECT_EQ(*ProbeVideoSize(portrait), (VideoSize{720, 1280}));
  Frame pf = FirstFrame(portrait, {720, 1280});
  EXPECT_GT(pf.Stats(0, 0, 8, 1280).first, 40.0);
}

TEST_F(VideoPostprocessTest, AudioIsCopiedWhenPresent) {
  fs::path out = out_ / "result.mp4";
  ASSERT_TRUE(PostprocessVideo(Input("landscape.mp4"), out, {1280, 720}, ResizeMode::kPad).ok());
  EXPECT_EQ(StreamInfo(out, "a:0", "codec_name,sample_rate"), "aac,22050");
}

TEST_F(VideoPostprocessTest, NoAudioInNoAudioOut) {
  fs::path out = out_ / "result.mp4";
  ASSERT_TRUE(PostprocessVideo(Input("portrait.mp4"), out, {720, 1280}, ResizeMode::kPad).ok());
  EXPECT_EQ(StreamInfo(out, "a", "codec_name"), "");
}

TEST_F(VideoPostprocessTest, CorruptInputFailsClearlyAndLeavesNothing) {
  fs::path corrupt = out_ / "corrupt.mp4";
  std::string bytes = ReadFile(Input("landscape.mp4")).substr(0, 64);  // a header, then garbage
  bytes += std::string(4096, '\x5a');
  WriteFile(corrupt, bytes);
  fs::path out = out_ / "result.mp4";
  Status s = PostprocessVideo(corrupt, out, {1280, 720}, ResizeMode::kPad);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("ffmpeg"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(corrupt.string()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(": "), std::string::npos) << "no stderr tail: " << s.message();
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(DirEntries(out_), std::set<std::string>{"corrupt.mp4"});
}

TEST_F(VideoPostprocessTest, AFailedRunKeepsTheExistingOutput) {
  fs::path corrupt = out_ / "corrupt.mp4";
  WriteFile(corrupt, "not a video at all");
  fs::path out = out_ / "result.mp4";
  WriteFile(out, "previous result");
  EXPECT_FALSE(PostprocessVideo(corrupt, out, {1280, 720}, ResizeMode::kPad).ok());
  EXPECT_EQ(ReadFile(out), "previous result");
  EXPECT_EQ(DirEntries(out_), (std::set<std::string>{"corrupt.mp4", "result.mp4"}));
}

TEST_F(VideoPostprocessTest, ASuccessfulRunReplacesTheOutput) {
  fs::path out = out_ / "result.mp4";
  WriteFile(out, "previous result");
  ASSERT_TRUE(PostprocessVideo(Input("portrait.mp4"), out, {720, 1280}, ResizeMode::kPad).ok());
  EXPECT_EQ(*ProbeVideoSize(out), (VideoSize{720, 1280}));
  EXPECT_EQ(DirEntries(out_), std::set<std::string>{"result.mp4"});
}

TEST_F(VideoPostprocessTest, MissingInputIsNotFound) {
  Status s = PostprocessVideo(out_ / "absent.mp4", out_ / "result.mp4", {1280, 720}, ResizeMode::kPad);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(DirEntries(out_).empty());
}

TEST_F(VideoPostprocessTest, RejectsANonApiTargetSize) {
  Status s = PostprocessVideo(Input("landscape.mp4"), out_ / "result.mp4", {1280, 704}, ResizeMode::kPad);
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_TRUE(DirEntries(out_).empty());
}

TEST_F(VideoPostprocessTest, MissingFfmpegSaysSo) {
  VideoToolOptions options;
  options.ffmpeg = "tessera-test-no-such-ffmpeg";
  Status s = PostprocessVideo(Input("landscape.mp4"), out_ / "result.mp4", {1280, 720}, ResizeMode::kPad, options);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("not found"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("install ffmpeg"), std::string::npos) << s.message();
  EXPECT_TRUE(DirEntries(out_).empty());

  options.ffmpeg = (out_ / "bin" / "ffmpeg").string();
  EXPECT_EQ(
      PostprocessVideo(Input("landscape.mp4"), out_ / "result.mp4", {1280, 720}, ResizeMode::kPad, options).code(),
      StatusCode::kUnsupported);

  // A directory named like the program is not the program.
  fs::create_directories(out_ / "bin" / "ffmpeg");
  EXPECT_EQ(
      PostprocessVideo(Input("landscape.mp4"), out_ / "result.mp4", {1280, 720}, ResizeMode::kPad, options).code(),
      StatusCode::kUnsupported);
  EXPECT_FALSE(fs::exists(out_ / "result.mp4"));
}

TEST_F(VideoPostprocessTest, MissingFfprobeSaysSo) {
  VideoToolOptions options;
  options.ffprobe = "tessera-test-no-such-ffprobe";
  auto r = ProbeVideoSize(Input("landscape.mp4"), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
}

TEST_F(VideoPostprocessTest, AHungFfmpegIsKilledAtTheTimeout) {
  VideoToolOptions options;
  options.ffmpeg = WriteScript(out_ / "hung-ffmpeg", "exec sleep 30").string();
  options.timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  Status s = PostprocessVideo(Input("landscape.mp4"), out_ / "result.mp4", {1280, 720}, ResizeMode::kPad, options);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), StatusCode::kTimeout) << s.ToString();
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_EQ(DirEntries(out_), std::set<std::string>{"hung-ffmpeg"});
}

TEST_F(VideoPostprocessTest, ErrorCarriesOnlyTheTailOfALongStderr) {
  VideoToolOptions options;
  options.ffmpeg = WriteScript(out_ / "noisy-ffmpeg",
                               "i=1; while [ $i -le 500 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done; exit 3")
                       .string();
  Status s = PostprocessVideo(Input("landscape.mp4"), out_ / "result.mp4", {1280, 720}, ResizeMode::kPad, options);
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("noise line 500"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("exit 3"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("noise line 1 "), std::string::npos) << s.message();
  EXPECT_LT(s.message().size(), 1024u);
  EXPECT_EQ(DirEntries(out_), std::set<std::string>{"noisy-ffmpeg"});
}

TEST_F(VideoPostprocessTest, ProbeErrors) {
  EXPECT_EQ(ProbeVideoSize((out_ / "absent.mp4").string()).status().code(), StatusCode::kNotFound);

  fs::path garbage = out_ / "garbage.mp4";
  WriteFile(garbage, std::string(1000, 'q'));
  auto bad = ProbeVideoSize(garbage);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalid);

  fs::path audio_only = out_ / "audio.m4a";
  RunCapture({"ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "0.5", "-c:a",
              "aac", audio_only.string()});
  auto no_video = ProbeVideoSize(audio_only);
  ASSERT_FALSE(no_video.ok());
  EXPECT_EQ(no_video.status().code(), StatusCode::kInvalid);
  EXPECT_NE(no_video.status().message().find("no video stream"), std::string::npos) << no_video.status().message();
}

}  // namespace
}  // namespace tessera::jobs
