// A device's VkPipelineCache kept on disk between processes, in the plan
// cache's directory (runtime/plan_cache.h's DefaultPlanCacheDir, or the
// worker's --cache-dir), one file per device and driver:
//
//   <dir>/vulkan-<vendor>-<device>-<driver version>-<pipelineCacheUUID>.pipelines
//
//   offset size
//   0      8    magic "TSRVKPC\0"
//   8      4    format version (kPipelineCacheFormatVersion), u32 LE
//   12     4    vendor id, u32 LE
//   16     4    device id, u32 LE
//   20     4    driver version, u32 LE
//   24     16   pipelineCacheUUID
//   40     8    data length n, u64 LE
//   48     32   SHA-256 of the data
//   80     n    what vkGetPipelineCacheData returned
//
// The driver's data starts with Vulkan's own header (length, version ONE,
// vendor, device, UUID); reading checks ours, the checksum and Vulkan's header
// against the device, so a corrupt file, another device's or another driver's
// is ignored with a log line (event=vulkan_pipeline_cache) and the pipelines
// are compiled again — a driver need not check the data it is given, so none
// is passed on unchecked. Written atomically (util/file_io.h), so concurrent
// processes leave one whole file.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/status.h"

namespace tessera::engine::vulkan {

inline constexpr char kPipelineCacheMagic[8] = {'T', 'S', 'R', 'V', 'K', 'P', 'C', '\0'};
inline constexpr uint32_t kPipelineCacheFormatVersion = 1;
inline constexpr size_t kPipelineCacheHeaderBytes = 80;

// What the cache is valid for.
struct PipelineCacheKey {
  uint32_t vendor_id = 0, device_id = 0, driver_version = 0;
  std::array<uint8_t, 16> uuid{};  // VkPhysicalDeviceProperties::pipelineCacheUUID
};

std::string PipelineCacheFileName(const PipelineCacheKey& key);

// A whole file holding `data` (vkGetPipelineCacheData's bytes) for `key`.
std::vector<uint8_t> EncodePipelineCacheFile(const PipelineCacheKey& key, std::span<const uint8_t> data);
// The driver's data in a file's bytes, checked against `key`; kInvalid saying
// why when the file is short, corrupt or for another device or driver.
Result<std::span<const uint8_t>> DecodePipelineCacheFile(std::span<const uint8_t> file, const PipelineCacheKey& key);

// The data to start a device's VkPipelineCache with: the file's, when it is
// there and valid; empty otherwise (a missing file silently, any other
// problem with a log line).
std::vector<uint8_t> ReadPipelineCacheFile(const std::string& path, const PipelineCacheKey& key);
// Creates the directory when missing, then writes atomically.
Status WritePipelineCacheFile(const std::string& path, const PipelineCacheKey& key, std::span<const uint8_t> data);

}  // namespace tessera::engine::vulkan
