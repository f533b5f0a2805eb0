// Device names, the gpu_id rule, and the backend choices every command parses
// the same way.
#include "engine/device.h"

#include <gtest/gtest.h>

#include "engine/backend_registry.h"

namespace tessera::engine {
namespace {

TEST(DeviceTest, NamesRoundTrip) {
  for (const char* name : {"cpu", "cuda:0", "cuda:3", "vulkan:1"}) {
    Result<Device> device = ParseDevice(name);
    ASSERT_TRUE(device.ok()) << name << ": " << device.status().ToString();
    EXPECT_EQ(device->Name(), name);
  }
  EXPECT_EQ(ParseDevice("cuda")->Name(), "cuda:0");
  EXPECT_EQ(ParseDevice("vulkan")->Name(), "vulkan:0");
}

TEST(DeviceTest, MalformedNamesAreRefusedWithTheAcceptedForms) {
  for (const char* name : {"", "gpu", "cuda:", "cuda:-1", "cuda:x", "cuda:1x", "cuda0", "CPU", "cuda:99999"}) {
    Result<Device> device = ParseDevice(name);
    ASSERT_FALSE(device.ok()) << name;
    EXPECT_EQ(device.status().code(), StatusCode::kInvalid);
    EXPECT_NE(device.status().message().find("cpu, cuda:N, vulkan:N"), std::string::npos) << device.status().message();
  }
}

TEST(BackendRegistryTest, PrecisionAndVramBudgetAreParsedOnce) {
  auto defaults = ParseBackendFlags("", "");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->precision, Precision::kAuto);
  EXPECT_EQ(defaults->vram_budget_bytes, 0u);
  auto set = ParseBackendFlags("fp16", "6GiB");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->precision, Precision::kFp16);
  EXPECT_EQ(set->vram_budget_bytes, 6ull << 30);
  auto bad_precision = ParseBackendFlags("fp8", "");
  ASSERT_FALSE(bad_precision.ok());
  EXPECT_NE(bad_precision.status().message().find("--precision"), std::string::npos);
  auto bad_budget = ParseBackendFlags("", "lots");
  ASSERT_FALSE(bad_budget.ok());
  EXPECT_NE(bad_budget.status().message().find("--vram-budget"), std::string::npos);
}

TEST(BackendRegistryTest, TheCpuRunsFp32AndAGpuWithoutABackendIsUnavailable) {
  BackendOptions fp16;
  fp16.precision = Precision::kFp16;
  EXPECT_EQ(CheckBackendOptions(Device::Cpu(), fp16).code(), StatusCode::kUnsupported);
  EXPECT_TRUE(CheckBackendOptions(Device::Cuda(0), fp16).ok());
  auto cpu = BackendsFor(Device::Cpu());
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->backend->device(), Device::Cpu());
  if (UsableDeviceCount(Device::Kind::kCuda) == 0) {
    auto cuda = BackendsFor(Device::Cuda(0));
    ASSERT_FALSE(cuda.ok());
    EXPECT_EQ(cuda.status().code(), StatusCode::kDeviceUnavailable);
    EXPECT_NE(cuda.status().message().find("cuda:0"), std::string::npos);
  }
  const std::vector<DeviceInfo> devices = ListDevices();
  ASSERT_FALSE(devices.empty());
  EXPECT_EQ(devices[0].device, Device::Cpu());
  EXPECT_FALSE(devices[0].backend.empty());
}

}  // namespace
}  // namespace tessera::engine
