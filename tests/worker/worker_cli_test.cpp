// Flags of `tessera worker` as a user meets them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../support/run_program.h"
#include "../support/test_images.h"

namespace tessera::test {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream o(p, std::ios::binary);
  o.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

TEST(WorkerCliTest, NoModeIsAClearError) {
  RunResult r = RunTessera({"worker"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--keep-alive"), std::string::npos) << r.output;
}

TEST(WorkerCliTest, ProtocolV1FlagsAreRefusedWithAnExplanation) {
  RunResult r = RunTessera({"worker", "--mode", "stdin", "--batch-size", "4"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("protocol v1"), std::string::npos) << r.output;
  r = RunTessera({"worker", "--keep-alive", "--protocol", "1"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST(WorkerCliTest, BadValuesAreRefusedBeforeServing) {
  EXPECT_EQ(RunTessera({"worker", "--keep-alive", "--format", "bmp"}).exit_code, 2);
  EXPECT_EQ(RunTessera({"worker", "--keep-alive", "--ram-budget", "lots"}).exit_code, 2);
  EXPECT_EQ(RunTessera({"worker", "--keep-alive", "--request-timeout", "soon"}).exit_code, 2);
  EXPECT_EQ(RunTessera({"worker", "--keep-alive", "--scale", "40"}).exit_code, 2);
  EXPECT_EQ(RunTessera({"worker", "--keep-alive", "--tile-size", "8"}).exit_code, 2);
}

TEST(WorkerCliTest, HelpDescribesTheFlags) {
  RunResult r = RunTessera({"worker", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--keep-alive", "--max-batch-items", "--max-message-bytes", "--max-image-bytes",
                           "--max-image-pixels", "--ram-budget", "--request-timeout", "--no-gpu-fallback",
                           "--model-name", "--scale", "--tile-size", "--format", "--profiling", "--log-protocol"}) {
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
  }
}

TEST(WorkerCliTest, VersionNamesTheProtocol) {
  RunResult r = RunTessera({"version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("protocol v2"), std::string::npos);
}

TEST(WorkerCliTest, BatchModeProcessesADirectoryAndReportsBadFiles) {
  fs::path root = fs::temp_directory_path() / ("tessera-batch-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "in");
  WriteFile(root / "in" / "a.png", SolidPng(10, 8, {255, 0, 0}));
  WriteFile(root / "in" / "b.png", SolidPng(6, 6, {0, 0, 255}));
  WriteFile(root / "in" / "broken.png", {'n', 'o', 'p', 'e'});
  WriteFile(root / "in" / "notes.txt", {'h', 'i'});
  RunResult r = RunTessera({"worker", "--mode", "batch", "-i", (root / "in").string(), "-o", (root / "out").string(),
                            "--scale", "3", "--format", "webp"});
  EXPECT_EQ(r.exit_code, 1) << r.output;  // one file failed
  EXPECT_NE(r.output.find("broken.png"), std::string::npos);
  std::ifstream a(root / "out" / "a.webp", std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
  DecodedPixels px = DecodePixels(bytes);
  EXPECT_EQ(px.width, 30);
  EXPECT_EQ(px.height, 24);
  EXPECT_TRUE(fs::exists(root / "out" / "b.webp"));
  EXPECT_FALSE(fs::exists(root / "out" / "broken.webp"));
  EXPECT_FALSE(fs::exists(root / "out" / "notes.webp"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace tessera::test

namespace tessera::test {
namespace {

TEST(UpscaleCliTest, UpscalesAFileWithAModelAndInfersTheFormat) {
  fs::path root = fs::temp_directory_path() / ("tessera-upscale-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  WriteFile(root / "in.png", TexturedPng(20, 14));
  RunResult r = RunTessera({"upscale", "-i", (root / "in.png").string(), "-o", (root / "out.webp").string(), "-n",
                            "realesr-animevideov3-x2"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::ifstream f(root / "out.webp", std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 12u);
  EXPECT_EQ(std::string(bytes.begin() + 8, bytes.begin() + 12), "WEBP");
  DecodedPixels px = DecodePixels(bytes);
  EXPECT_EQ(px.width, 40);
  EXPECT_EQ(px.height, 28);
  fs::remove_all(root);
}

TEST(UpscaleCliTest, DirectoryInDirectoryOutWithLanczos) {
  fs::path root = fs::temp_directory_path() / ("tessera-upscale-dir-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "in");
  WriteFile(root / "in" / "a.png", SolidPng(5, 4, {9, 9, 9}));
  WriteFile(root / "in" / "b.jpg", SolidPng(3, 3, {9, 9, 9}));  // PNG bytes, .jpg name: content decides
  RunResult r = RunTessera({"upscale", "-i", (root / "in").string(), "-o", (root / "out").string(), "-n", "lanczos",
                            "-s", "3", "-f", "png"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(root / "out" / "a.png"));
  EXPECT_TRUE(fs::exists(root / "out" / "b.png"));
  fs::remove_all(root);
}

TEST(UpscaleCliTest, UnknownModelAndMissingInputAreClearErrors) {
  RunResult r = RunTessera({"upscale", "-i", "/nonexistent.png", "-o", "/tmp/x.png", "-n", "no-such-model"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown model 'no-such-model'"), std::string::npos) << r.output;
  r = RunTessera({"upscale", "-i", "/nonexistent.png", "-o", "/tmp/x.png", "-n", "lanczos"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("input not found"), std::string::npos) << r.output;
}

TEST(UpscaleCliTest, HelpListsEveryModelName) {
  RunResult r = RunTessera({"upscale", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* name : {"realesrgan-x4plus", "realesrgan-x4fast", "realesrgan-x4plus-anime", "realesr-animevideov3-x3",
                           "up2x-denoise2x", "up3x-denoise3x", "up4x-no-denoise", "cunet-x2", "cunet-noise0..3-x2"}) {
    EXPECT_NE(r.output.find(name), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace tessera::test
