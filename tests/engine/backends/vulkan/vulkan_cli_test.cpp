// `tessera upscale --device vulkan:N` as a user runs it: the image is upscaled
// on the named Vulkan device (llvmpipe here) and matches the oracle's golden;
// without a driver, or out of device memory on every retry, the CPU runs it;
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

// In fp32 (auto on llvmpipe, a CPU-type device) and in fp16 (llvmpipe has
// 16-bit storage), each against the oracle's golden at issue 20's bound.
TEST(VulkanUpscaleCommandTest, ANamedVulkanDeviceRunsTheModelInEitherPrecision) {
  const std::string device = test::TestDevice().Name();
  const std::string out = (std::filesystem::temp_directory_path() / "tessera_vulkan_cli_test.png").string();
  const tessera::test::DecodedPixels golden =
      tessera::test::DecodePixels(tessera::test::ReadFileBytes(kData + "goldens/realesr-animevideov3-x2/gradient.png"));
  for (const auto& [precision, bound] : {std::pair<std::string, double>{"auto", 50.0}, {"fp16", 45.0}}) {
    SCOPED_TRACE(precision);
    std::filesystem::remove(out);
    const tessera::test::RunResult run =
        tessera::test::RunTessera({"upscale", "-i", kData + "inputs/gradient.png", "-o", out, "-n",
                                   "realesr-animevideov3-x2", "-t", "32", "--device", device, "--precision", precision});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("device=" + device), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find("gpu_fallback"), std::string::npos) << run.output;
    // The engine's description says how its feature maps were stored.
    const bool says_fp16 = run.output.find(" vulkan fp16") != std::string::npos;
    EXPECT_EQ(says_fp16, precision == "fp16") << run.output;
    const tessera::test::DecodedPixels ours = tessera::test::DecodePixels(tessera::test::ReadFileBytes(out));
    ASSERT_EQ(ours.width, golden.width);
    ASSERT_EQ(ours.height, golden.height);
    ASSERT_EQ(ours.data.size(), golden.data.size());
    EXPECT_GE(tessera::test::Psnr8(ours.data, golden.data), bound);
  }
  std::filesystem::remove(out);
}

// Without a driver the named device falls back to the CPU, saying why.
TEST(VulkanUpscaleCommandTest, WithoutADriverTheCpuRunsTheImage) {
  const std::string out = (std::filesystem::temp_directory_path() / "tessera_vulkan_cli_fallback.png").string();
  setenv("VK_ICD_FILENAMES", "/nonexistent", 1);
  setenv("VK_DRIVER_FILES", "/nonexistent", 1);
  const tessera::test::RunResult run =
      tessera::test::RunTessera({"upscale", "-i", kData + "inputs/gradient.png", "-o", out, "-n",
                                 "realesr-animevideov3-x2", "--device", "vulkan:0"});
  unsetenv("VK_ICD_FILENAMES");
  unsetenv("VK_DRIVER_FILES");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("event=gpu_fallback requested=vulkan:0 runs_on=cpu"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("no driver"), std::string::npos) << run.output;
  EXPECT_TRUE(std::filesystem::exists(out));
  std::filesystem::remove(out);
}

// Seed 002's last step on Vulkan: a --vram-budget no tile fits in is an
// out-of-memory on every retry, and the image is rerun on the CPU with the CPU
// run's bytes.
TEST(VulkanUpscaleCommandTest, AnOutOfMemoryOnEveryRetryRerunsTheImageOnTheCpu) {
  const auto temp = std::filesystem::temp_directory_path();
  const std::string on_vulkan = (temp / "tessera_vulkan_cli_oom.png").string();
  const std::string on_cpu = (temp / "tessera_vulkan_cli_oom_cpu.png").string();
  const std::string in = kData + "inputs/dark.png";
  const tessera::test::RunResult run =
      tessera::test::RunTessera({"upscale", "-i", in, "-o", on_vulkan, "-n", "realesr-animevideov3-x2", "-t", "32",
                                 "--device", test::TestDevice().Name(), "--vram-budget", "64KiB"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("event=oom_retry retry=3/3"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("event=gpu_oom_fallback device=" + test::TestDevice().Name()), std::string::npos)
      << run.output;
  const tessera::test::RunResult cpu = tessera::test::RunTessera(
      {"upscale", "-i", in, "-o", on_cpu, "-n", "realesr-animevideov3-x2", "-t", "32", "--device", "cpu"});
  ASSERT_EQ(cpu.exit_code, 0) << cpu.output;
  EXPECT_EQ(tessera::test::ReadFileBytes(on_vulkan), tessera::test::ReadFileBytes(on_cpu));
  std::filesystem::remove(on_vulkan);
  std::filesystem::remove(on_cpu);
}

TEST(VulkanUpscaleCommandTest, ConflictingFlagsAreRefused) {
  const std::string in = kData + "inputs/gradient.png";
  const std::string out = (std::filesystem::temp_directory_path() / "tessera_vulkan_cli_refused.png").string();
  const tessera::test::RunResult with_gpu_id =
      tessera::test::RunTessera({"upscale", "-i", in, "-o", out, "-g", "0", "--device", "vulkan:0"});
  EXPECT_EQ(with_gpu_id.exit_code, 2) << with_gpu_id.output;
  // llvmpipe is never numbered: -g 0 is no GPU here, so the two disagree.
  EXPECT_NE(with_gpu_id.output.find("-g 0 numbers no GPU here"), std::string::npos) << with_gpu_id.output;
  const tessera::test::RunResult fp16_on_cpu =
      tessera::test::RunTessera({"upscale", "-i", in, "-o", out, "--device", "cpu", "--precision", "fp16"});
  EXPECT_EQ(fp16_on_cpu.exit_code, 2) << fp16_on_cpu.output;
  EXPECT_NE(fp16_on_cpu.output.find("fp16"), std::string::npos) << fp16_on_cpu.output;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace tessera::engine::vulkan
