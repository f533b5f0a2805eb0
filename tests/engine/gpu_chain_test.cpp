// engine/gpu_chain.h: the GPUs a gpu_id numbers and the "GPU → iGPU → CPU"
// chain, on described machines (this one has no GPU at all).
#include "engine/gpu_chain.h"

#include <gtest/gtest.h>

namespace tessera::engine {
namespace {

constexpr uint32_t kAmd = 0x1002;
constexpr uint32_t kIntel = 0x8086;
constexpr uint32_t kMesa = 0x10005;  // llvmpipe's

GpuEntry VulkanGpu(int index, GpuClass cls, uint32_t vendor) {
  return {Device::Vulkan(index), cls, vendor, "vulkan device " + std::to_string(index)};
}

std::vector<std::string> Names(const std::vector<Device>& devices) {
  std::vector<std::string> names;
  for (const Device& d : devices) names.push_back(d.Name());
  return names;
}

std::vector<std::string> Names(const std::vector<GpuEntry>& gpus) {
  std::vector<std::string> names;
  for (const GpuEntry& g : gpus) names.push_back(g.device.Name());
  return names;
}

using Strings = std::vector<std::string>;

TEST(GpuChainTest, ANegativeGpuIdIsTheCpuAlone) {
  GpuInventory nvidia;
  nvidia.cuda = {{Device::Cuda(0), GpuClass::kDiscrete, kNvidiaVendorId, "H100"}};
  EXPECT_EQ(Names(FallbackChain(nvidia, -1)), Strings{"cpu"});
}

TEST(GpuChainTest, OnlyASoftwareDeviceNumbersNoGpu) {
  // This machine: llvmpipe, which runs only when named.
  GpuInventory llvmpipe;
  llvmpipe.vulkan = {VulkanGpu(0, GpuClass::kSoftware, kMesa)};
  EXPECT_TRUE(NumberedGpus(llvmpipe).empty());
  EXPECT_EQ(Names(FallbackChain(llvmpipe, 0)), Strings{"cpu"});
}

TEST(GpuChainTest, CudaNumbersNvidiaCardsAndTheirVulkanTwinsAreLeftOut) {
  GpuInventory box;
  box.cuda = {{Device::Cuda(0), GpuClass::kDiscrete, kNvidiaVendorId, "a"},
              {Device::Cuda(1), GpuClass::kDiscrete, kNvidiaVendorId, "b"}};
  box.vulkan = {VulkanGpu(0, GpuClass::kDiscrete, kNvidiaVendorId), VulkanGpu(1, GpuClass::kDiscrete, kNvidiaVendorId),
                VulkanGpu(2, GpuClass::kSoftware, kMesa)};
  EXPECT_EQ(Names(NumberedGpus(box)), (Strings{"cuda:0", "cuda:1"}));
  EXPECT_EQ(Names(FallbackChain(box, 1)), (Strings{"cuda:1", "cpu"}));
  // No third GPU: straight to the CPU (no integrated GPU here).
  EXPECT_EQ(Names(FallbackChain(box, 2)), Strings{"cpu"});
}

TEST(GpuChainTest, WithoutCudaNvidiaCardsAreNumberedThroughVulkan) {
  GpuInventory box;  // a build or driver without CUDA
  box.vulkan = {VulkanGpu(0, GpuClass::kDiscrete, kNvidiaVendorId)};
  EXPECT_EQ(Names(NumberedGpus(box)), Strings{"vulkan:0"});
}

TEST(GpuChainTest, ALaptopRunsOnItsDiscreteGpuThenItsIntegratedOneThenTheCpu) {
  // The loader lists the integrated GPU first; the discrete one is still gpu 0.
  GpuInventory laptop;
  laptop.vulkan = {VulkanGpu(0, GpuClass::kIntegrated, kIntel), VulkanGpu(1, GpuClass::kDiscrete, kAmd),
                   VulkanGpu(2, GpuClass::kSoftware, kMesa)};
  EXPECT_EQ(Names(NumberedGpus(laptop)), (Strings{"vulkan:1", "vulkan:0"}));
  EXPECT_EQ(Names(FallbackChain(laptop, 0)), (Strings{"vulkan:1", "vulkan:0", "cpu"}));
  // gpu 1 is the integrated GPU itself: it is not tried twice.
  EXPECT_EQ(Names(FallbackChain(laptop, 1)), (Strings{"vulkan:0", "cpu"}));
  // An absent GPU starts the chain at the integrated one.
  EXPECT_EQ(Names(FallbackChain(laptop, 5)), (Strings{"vulkan:0", "cpu"}));
}

TEST(GpuChainTest, AnNvidiaDesktopWithAnIntegratedGpuFallsToItBeforeTheCpu) {
  GpuInventory desktop;
  desktop.cuda = {{Device::Cuda(0), GpuClass::kDiscrete, kNvidiaVendorId, "RTX"}};
  desktop.vulkan = {VulkanGpu(0, GpuClass::kDiscrete, kNvidiaVendorId), VulkanGpu(1, GpuClass::kIntegrated, kIntel)};
  EXPECT_EQ(Names(NumberedGpus(desktop)), (Strings{"cuda:0", "vulkan:1"}));
  EXPECT_EQ(Names(FallbackChain(desktop, 0)), (Strings{"cuda:0", "vulkan:1", "cpu"}));
}

TEST(GpuChainTest, VirtualGpusComeAfterDiscreteOnesAndOtherDevicesAreNeverNumbered) {
  GpuInventory vm;
  vm.vulkan = {VulkanGpu(0, GpuClass::kVirtual, kAmd), VulkanGpu(1, GpuClass::kOther, kAmd),
               VulkanGpu(2, GpuClass::kDiscrete, kAmd)};
  EXPECT_EQ(Names(NumberedGpus(vm)), (Strings{"vulkan:2", "vulkan:0"}));
}

}  // namespace
}  // namespace tessera::engine
