// The Vulkan devices as the engine sees them: the listing (`tessera devices`
// and ListDevices), the rule that keeps a CPU-type device (llvmpipe) out of
// automatic choices, free memory with and without VK_EXT_memory_budget (a fake
// report: llvmpipe has no budget extension), the sub-allocator over large
// VkDeviceMemory blocks, the precision chosen, and what happens where no driver or no
// loader is: DEVICE_UNAVAILABLE with the reason, and `tessera devices` still
// works.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "../../../support/run_program.h"
#include "engine/backend_registry.h"
#include "engine/backends/vulkan/vulkan_backend.h"
#include "engine/backends/vulkan/vulkan_memory.h"
#include "vulkan_test_device.h"

namespace tessera::engine::vulkan {
namespace {

TEST(VulkanDeviceTest, DevicesAreListedWithTheirTypeAndMemory) {
  const int index = test::TestDeviceIndex();
  ASSERT_GE(index, 0);
  EXPECT_GT(UsableDeviceCount(Device::Kind::kVulkan), index);
  EXPECT_TRUE(DeviceUnavailableReason(Device::Kind::kVulkan).empty());
  bool listed = false;
  for (const DeviceInfo& d : ListDevices()) {
    if (d.device != Device::Vulkan(index)) continue;
    listed = true;
    EXPECT_EQ(d.backend, "vulkan");
    EXPECT_TRUE(d.memory.known);
    EXPECT_GT(d.memory.total_bytes, 0u);
    EXPECT_LE(d.memory.free_bytes, d.memory.total_bytes);
    EXPECT_NE(d.detail.find("driver="), std::string::npos) << d.detail;
    EXPECT_NE(d.detail.find("heaps="), std::string::npos) << d.detail;
    const VkPhysicalDeviceType type = Availability().system->devices[index].type;
    EXPECT_NE(d.detail.find(std::string("type=") + DeviceTypeName(type)), std::string::npos) << d.detail;
    EXPECT_EQ(d.automatic, ChosenAutomatically(type));
  }
  EXPECT_TRUE(listed);
}

TEST(VulkanDeviceTest, OnlyRealGpusAreChosenAutomatically) {
  EXPECT_TRUE(ChosenAutomatically(VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU));
  EXPECT_TRUE(ChosenAutomatically(VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU));
  EXPECT_TRUE(ChosenAutomatically(VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU));
  EXPECT_FALSE(ChosenAutomatically(VK_PHYSICAL_DEVICE_TYPE_CPU));
  EXPECT_FALSE(ChosenAutomatically(VK_PHYSICAL_DEVICE_TYPE_OTHER));
  for (const DeviceInfo& d : ListDevices()) {
    if (d.device.kind != Device::Kind::kVulkan || d.automatic) continue;
    EXPECT_NE(d.detail.find("used only when named"), std::string::npos) << d.detail;
  }
}

TEST(VulkanDeviceTest, FreeMemoryComesFromTheBudgetReportElseFromWhatTesseraHolds) {
  HeapReport without;
  without.heap_bytes = 8ull << 30;
  without.held_bytes = 3ull << 30;
  EXPECT_EQ(FreeDeviceBytes(without), 5ull << 30);
  without.held_bytes = 9ull << 30;
  EXPECT_EQ(FreeDeviceBytes(without), 0u);
  // A fake VK_EXT_memory_budget report: other processes' use counts too.
  HeapReport with = without;
  with.has_budget = true;
  with.budget_bytes = 7ull << 30;
  with.usage_bytes = 4ull << 30;
  EXPECT_EQ(FreeDeviceBytes(with), 3ull << 30);
  with.usage_bytes = 8ull << 30;
  EXPECT_EQ(FreeDeviceBytes(with), 0u);
}

TEST(VulkanDeviceTest, RangesShareLargeBlocksAndABlockGoesBackWhenEmpty) {
  auto device = VulkanDevice::Open(test::TestDeviceIndex());
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  VulkanDeviceMemory memory(*device);
  const uint64_t held_before = (*device)->MemoryReport().held_bytes;
  std::vector<void*> ranges;
  std::set<VkBuffer> buffers;
  for (uint64_t bytes : {1000ull, 4096ull, 300000ull, 1ull << 20}) {
    auto range = memory.Allocate(bytes);
    ASSERT_TRUE(range.ok()) << range.status().ToString();
    const auto* r = static_cast<const VulkanRange*>(*range);
    EXPECT_GE(r->span.bytes, bytes);
    EXPECT_EQ(r->span.offset % (*device)->storage_alignment(), 0u);
    buffers.insert(r->span.buffer);
    ranges.push_back(*range);
  }
  EXPECT_EQ(buffers.size(), 1u);  // one VkDeviceMemory for all four
  EXPECT_EQ(memory.block_count(), 1u);
  EXPECT_EQ((*device)->MemoryReport().held_bytes - held_before, VulkanDeviceMemory::kBlockBytes);
  // Larger than a block: a block of its own.
  auto big = memory.Allocate(VulkanDeviceMemory::kBlockBytes + 1);
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(memory.block_count(), 2u);
  memory.Free(*big);
  EXPECT_EQ(memory.block_count(), 1u);
  // Freed out of order, neighbours merge: the whole block is one range again and goes back.
  const VkDeviceSize second_offset = static_cast<const VulkanRange*>(ranges[1])->span.offset;
  memory.Free(ranges[1]);
  memory.Free(ranges[3]);
  auto reuse = memory.Allocate(4096);
  ASSERT_TRUE(reuse.ok());
  EXPECT_EQ(static_cast<const VulkanRange*>(*reuse)->span.offset, second_offset);  // first fit: the hole
  memory.Free(*reuse);
  memory.Free(ranges[0]);
  memory.Free(ranges[2]);
  EXPECT_EQ(memory.block_count(), 0u);
  EXPECT_EQ((*device)->MemoryReport().held_bytes, held_before);
  auto info = memory.Info();
  ASSERT_TRUE(info.ok());
  EXPECT_GT(info->total_bytes, 0u);
}

// What a lane's worker reports as its VRAM: the live backends' allocators.
TEST(VulkanDeviceTest, BytesHeldCountTheLiveBackendsOfTheDevice) {
  const Device device = test::TestDevice();
  const uint64_t before = DeviceBytesHeld(device);
  {
    auto backend = VulkanBackend::Create(device.index, {});
    ASSERT_TRUE(backend.ok()) << backend.status().ToString();
    auto t = (*backend)->NewTensor(3, 1, 8, 64, 64);  // 128 KiB
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_GE(DeviceBytesHeld(device), before + (128u << 10));
    EXPECT_EQ(DeviceBytesHeld(Device::Vulkan(device.index + 1)), 0u);
  }
  EXPECT_EQ(DeviceBytesHeld(device), before);
}

// llvmpipe has 16-bit storage: fp16 when asked; auto is fp32 on a CPU-type
// device, which gains nothing from it.
TEST(VulkanDeviceTest, Fp16IsStoredWhenAskedAndAutoIsFp32OnACpuTypeDevice) {
  const VulkanPhysicalDevice& physical = Availability().system->devices[test::TestDeviceIndex()];
  ASSERT_TRUE(physical.storage_16bit) << physical.name << " has no storageBuffer16BitAccess";
  BackendOptions fp16;
  fp16.precision = Precision::kFp16;
  EXPECT_TRUE(CheckBackendOptions(test::TestDevice(), fp16).ok());
  auto set = BackendsFor(test::TestDevice(), fp16);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->backend->storage_dtype(), DataType::kF16);
  EXPECT_NE(set->backend->Fingerprint().find("precision=fp16"), std::string::npos);
  auto automatic = BackendsFor(test::TestDevice());
  ASSERT_TRUE(automatic.ok()) << automatic.status().ToString();
  EXPECT_EQ(automatic->backend->storage_dtype(), DataType::kF32);
  EXPECT_NE(automatic->backend->Fingerprint().find("precision=fp32"), std::string::npos);
}

TEST(VulkanDeviceTest, ADeviceThatDoesNotExistIsUnavailable) {
  auto set = BackendsFor(Device::Vulkan(99));
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kDeviceUnavailable);
  EXPECT_NE(set.status().message().find("vulkan:99"), std::string::npos) << set.status().message();
}

// In a process where the driver is hidden: exits 0 when vulkan:0 is
// DEVICE_UNAVAILABLE and no Vulkan device is counted; prints the reason.
[[noreturn]] void ExitWithoutDriver() {
  setenv("VK_ICD_FILENAMES", "/nonexistent", 1);
  setenv("VK_DRIVER_FILES", "/nonexistent", 1);
  auto set = BackendsFor(Device::Vulkan(0));
  const bool unavailable = !set.ok() && set.status().code() == StatusCode::kDeviceUnavailable;
  std::fprintf(stderr, "%s\n", set.status().message().c_str());
  std::exit(unavailable && UsableDeviceCount(Device::Kind::kVulkan) == 0 ? 0 : 1);
}

// The loader is opened once per process, so the driver is hidden in a fresh
// process: gtest's "threadsafe" death tests run the statement in a re-executed
// copy of this binary.
TEST(VulkanWithoutDriverTest, AVulkanDeviceIsUnavailableWithTheReason) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ExitWithoutDriver(), ::testing::ExitedWithCode(0), "vulkan:0 is not available: .*no driver");
}

TEST(VulkanWithoutDriverTest, TesseraDevicesStillWorks) {
  setenv("VK_ICD_FILENAMES", "/nonexistent", 1);
  setenv("VK_DRIVER_FILES", "/nonexistent", 1);
  const tessera::test::RunResult run = tessera::test::RunTessera({"devices"});
  unsetenv("VK_ICD_FILENAMES");
  unsetenv("VK_DRIVER_FILES");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("\ncpu "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("(no vulkan devices: the Vulkan loader found no driver"), std::string::npos) << run.output;
}

// No usable loader: an empty libvulkan.so.1 found first on the library path
// (dlopen fails on it), as where the loader is missing or broken.
TEST(VulkanWithoutLoaderTest, TesseraDevicesSaysWhyAndStillWorks) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "tessera_no_vulkan_loader";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "libvulkan.so.1").close();
  const char* previous = std::getenv("LD_LIBRARY_PATH");
  const std::string saved = previous != nullptr ? previous : "";
  setenv("LD_LIBRARY_PATH", (dir.string() + (saved.empty() ? "" : ":" + saved)).c_str(), 1);
  const tessera::test::RunResult run = tessera::test::RunTessera({"devices"});
  if (previous != nullptr) {
    setenv("LD_LIBRARY_PATH", saved.c_str(), 1);
  } else {
    unsetenv("LD_LIBRARY_PATH");
  }
  std::filesystem::remove_all(dir);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("\ncpu "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("(no vulkan devices: no Vulkan loader (libvulkan.so.1): "), std::string::npos)
      << run.output;
}

TEST(VulkanDevicesCommandTest, ListsTheVulkanDevice) {
  const tessera::test::RunResult run = tessera::test::RunTessera({"devices"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find(test::TestDevice().Name() + " "), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("(no vulkan devices"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace tessera::engine::vulkan
