// `tessera upscale --device vulkan:N` as a user runs it: the image is upscaled
// on the named Vulkan device (llvmpipe here) and matches the oracle's golden;
// flags that cannot go together are refused before any work.
#include <gtest/gtest.h>

#include <filesystem>

#include "../../../support/golden_compare.h"
#include "../../../support/run_program.h"
#include "../../../support/test_images.h"
#include "vulkan_test_device.h"

namespace tessera::engine::vulkan {
namespace {

const std::string kData = std::string(TESSERA_SOURCE_DIR) + "/tests/data/";

TEST(VulkanUpscaleCommandTest, ANamedVulkanDeviceRunsTheModel) {
  const std::string device = test::TestDevice().Name();
  const std::string out = (std::filesystem::temp_directory_path() / "tessera_vulkan_cli_test.png").string();
  std::filesystem::remove(out);
  const tessera::test::RunResult run = tessera::test::RunTessera(
      {"upscale", "-i", kData + "inputs/gradient.png", "-o", out, "-n", "realesr-animevideov3-x2", "-t", "32",
       "--device", device});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("device=" + device), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("gpu_fallback"), std::string::npos) << run.output;
  const tessera::test::DecodedPixels ours = tessera::test::DecodePixels(tessera::test::ReadFileBytes(out));
  const tessera::test::DecodedPixels golden =
      tessera::test::DecodePixels(tessera::test::ReadFileBytes(kData + "goldens/realesr-animevideov3-x2/gradient.png"));
  ASSERT_EQ(ours.width, golden.width);
  ASSERT_EQ(ours.height, golden.height);
  ASSERT_EQ(ours.data.size(), golden.data.size());
  EXPECT_GE(tessera::test::Psnr8(ours.data, golden.data), 50.0);
  std::filesystem::remove(out);
}

// Without a driver the named device falls back to the CPU, saying why.
TEST(VulkanUpscaleCommandTest, WithoutADriverTheCpuRunsTheImage) {
  const std::string out = (std::filesystem::temp_directory_path() / "tessera_vulkan_cli_fallback.png").string();
  setenv("VK_ICD_FILENAMES", "/nonexistent", 1);
  setenv("VK_DRIVER_FILES", "/nonexistent", 1);
  const tessera::test::RunResult run = tessera::test::RunTessera(
      {"upscale", "-i", kData + "inputs/gradient.png", "-o", out, "-n", "realesr-animevideov3-x2", "--device", "vulkan:0"});
  unsetenv("VK_ICD_FILENAMES");
  unsetenv("VK_DRIVER_FILES");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("event=gpu_fallback requested=vulkan:0 runs_on=cpu"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("no driver"), std::string::npos) << run.output;
  EXPECT_TRUE(std::filesystem::exists(out));
  std::filesystem::remove(out);
}

TEST(VulkanUpscaleCommandTest, ConflictingFlagsAreRefused) {
  const std::string in = kData + "inputs/gradient.png";
  const std::string out = (std::filesystem::temp_directory_path() / "tessera_vulkan_cli_refused.png").string();
  const tessera::test::RunResult with_gpu_id =
      tessera::test::RunTessera({"upscale", "-i", in, "-o", out, "-g", "0", "--device", "vulkan:0"});
  EXPECT_EQ(with_gpu_id.exit_code, 2) << with_gpu_id.output;
  EXPECT_NE(with_gpu_id.output.find("numbers CUDA devices"), std::string::npos) << with_gpu_id.output;
  const tessera::test::RunResult fp16 =
      tessera::test::RunTessera({"upscale", "-i", in, "-o", out, "--device", "vulkan:0", "--precision", "fp16"});
  EXPECT_EQ(fp16.exit_code, 2) << fp16.output;
  EXPECT_NE(fp16.output.find("fp16"), std::string::npos) << fp16.output;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace tessera::engine::vulkan
