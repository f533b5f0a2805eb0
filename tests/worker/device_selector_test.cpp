// worker/device_selector.h: gpu_id through "GPU → iGPU → CPU" on described
// machines, each step logged, and the real registry refusing a device this
// machine does not have (which is how the chain's later steps are reached).
#include "worker/device_selector.h"

#include <gtest/gtest.h>

#include "engine/backend_registry.h"

namespace tessera::worker {
namespace {

using engine::Device;
using engine::GpuClass;

// A laptop: an integrated GPU the loader lists first, a discrete one second.
// Neither exists on this machine, so opening either fails for real.
engine::GpuInventory Laptop() {
  engine::GpuInventory laptop;
  laptop.vulkan = {{Device::Vulkan(6), GpuClass::kIntegrated, 0x8086, "Intel iGPU"},
                   {Device::Vulkan(7), GpuClass::kDiscrete, 0x1002, "AMD dGPU"}};
  return laptop;
}

Result<engine::BackendSet> OpenBackends(const Device& device) { return engine::BackendsFor(device); }

TEST(DeviceSelectorTest, AGpuIdNamesTheDiscreteGpuWithTheRestOfTheChainBehindIt) {
  DeviceSelector selector(/*gpu_fallback=*/true, Laptop());
  Result<DeviceChoice> choice = selector.Select(0);
  ASSERT_TRUE(choice.ok()) << choice.status().ToString();
  EXPECT_EQ(choice->Name(), "vulkan:7");
  EXPECT_FALSE(choice->fell_back);
  ASSERT_EQ(choice->next.size(), 2u);
  EXPECT_EQ(choice->next[0].Name(), "vulkan:6");
  EXPECT_EQ(choice->next[1].Name(), "cpu");
  EXPECT_EQ(selector.usable_gpu_count(), 2);
}

TEST(DeviceSelectorTest, DevicesThatCannotBeOpenedFallToTheIntegratedGpuThenTheCpuLoggingEachStep) {
  DeviceSelector selector(/*gpu_fallback=*/true, Laptop());
  Result<DeviceChoice> choice = selector.Select(0);
  ASSERT_TRUE(choice.ok());
  testing::internal::CaptureStderr();
  Result<engine::BackendSet> opened = selector.OpenAlongChain<engine::BackendSet>(*choice, OpenBackends);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(choice->Name(), "cpu");
  EXPECT_TRUE(choice->fell_back);
  EXPECT_TRUE(opened->backend->HostMemory());
  // One line per step, each with the registry's reason.
  const size_t first = log.find("event=gpu_fallback requested=vulkan:7 runs_on=vulkan:6");
  const size_t second = log.find("event=gpu_fallback requested=vulkan:6 runs_on=cpu");
  ASSERT_NE(first, std::string::npos) << log;
  ASSERT_NE(second, std::string::npos) << log;
  EXPECT_LT(first, second);
  EXPECT_NE(log.find("vulkan:7 is not available"), std::string::npos) << log;

  // A worker serving many requests says it once.
  Result<DeviceChoice> again = selector.Select(0);
  ASSERT_TRUE(again.ok());
  testing::internal::CaptureStderr();
  ASSERT_TRUE(selector.OpenAlongChain<engine::BackendSet>(*again, OpenBackends).ok());
  EXPECT_EQ(testing::internal::GetCapturedStderr().find("gpu_fallback"), std::string::npos);
}

TEST(DeviceSelectorTest, AnAbsentGpuStartsTheChainAtTheIntegratedGpu) {
  DeviceSelector selector(/*gpu_fallback=*/true, Laptop());
  testing::internal::CaptureStderr();
  Result<DeviceChoice> choice = selector.Select(5);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->Name(), "vulkan:6");
  EXPECT_TRUE(choice->fell_back);
  EXPECT_NE(log.find("event=gpu_fallback requested=\"gpu 5\" runs_on=vulkan:6"), std::string::npos) << log;
  EXPECT_NE(log.find("2 GPU(s) here: vulkan:7, vulkan:6"), std::string::npos) << log;
}

TEST(DeviceSelectorTest, WithoutFallbackAnAbsentGpuIsRefusedAndAFailedOneGoesNowhere) {
  DeviceSelector selector(/*gpu_fallback=*/false, Laptop());
  Result<DeviceChoice> absent = selector.Select(5);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.status().code(), StatusCode::kDeviceUnavailable);
  EXPECT_NE(absent.status().message().find("gpu 5 is not available"), std::string::npos) << absent.status().message();

  Result<DeviceChoice> choice = selector.Select(0);
  ASSERT_TRUE(choice.ok());
  EXPECT_TRUE(choice->next.empty());
  Result<engine::BackendSet> opened = selector.OpenAlongChain<engine::BackendSet>(*choice, OpenBackends);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kDeviceUnavailable);
  EXPECT_EQ(choice->Name(), "vulkan:7");
}

TEST(DeviceSelectorTest, OnThisMachineAGpuIdRunsOnTheCpuAndLlvmpipeIsNeverChosen) {
  // This machine has no GPU; llvmpipe (when installed) is a CPU-type device.
  DeviceSelector selector(/*gpu_fallback=*/true);
  EXPECT_EQ(selector.usable_gpu_count(), 0);
  testing::internal::CaptureStderr();
  Result<DeviceChoice> choice = selector.Select(0);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->Name(), "cpu");
  EXPECT_TRUE(choice->fell_back);
  EXPECT_NE(log.find("no GPU here"), std::string::npos) << log;
}

}  // namespace
}  // namespace tessera::worker
