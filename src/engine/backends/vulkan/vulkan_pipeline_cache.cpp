#include "engine/backends/vulkan/vulkan_pipeline_cache.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "util/file_io.h"
#include "util/log.h"
#include "util/sha256.h"

namespace tessera::engine::vulkan {
namespace {

// Vulkan's pipeline cache header (VkPipelineCacheHeaderVersionOne): header
// length, header version, vendor id, device id (u32 each), then the UUID.
constexpr size_t kVulkanHeaderBytes = 32;
constexpr uint32_t kVulkanHeaderVersionOne = 1;
// Larger than any driver's cache for our handful of shaders by far: a length
// field past it is corruption, not data.
constexpr uint64_t kMaxDataBytes = 256ull << 20;

void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint32_t GetU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
uint64_t GetU64(const uint8_t* p) { return GetU32(p) | static_cast<uint64_t>(GetU32(p + 4)) << 32; }

std::string Hex32(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof(text), "%08x", v);
  return text;
}

}  // namespace

std::string PipelineCacheFileName(const PipelineCacheKey& key) {
  return "vulkan-" + Hex32(key.vendor_id) + "-" + Hex32(key.device_id) + "-" + Hex32(key.driver_version) + "-" +
         ToHex(key.uuid) + ".pipelines";
}

std::vector<uint8_t> EncodePipelineCacheFile(const PipelineCacheKey& key, std::span<const uint8_t> data) {
  std::vector<uint8_t> out(kPipelineCacheMagic, kPipelineCacheMagic + sizeof(kPipelineCacheMagic));
  out.reserve(kPipelineCacheHeaderBytes + data.size());
  PutU32(out, kPipelineCacheFormatVersion);
  PutU32(out, key.vendor_id);
  PutU32(out, key.device_id);
  PutU32(out, key.driver_version);
  out.insert(out.end(), key.uuid.begin(), key.uuid.end());
  PutU64(out, data.size());
  const Sha256Digest digest = Sha256Of(data);
  out.insert(out.end(), digest.begin(), digest.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Result<std::span<const uint8_t>> DecodePipelineCacheFile(std::span<const uint8_t> file, const PipelineCacheKey& key) {
  if (file.size() < kPipelineCacheHeaderBytes) return InvalidError("shorter than its header");
  const uint8_t* p = file.data();
  if (std::memcmp(p, kPipelineCacheMagic, sizeof(kPipelineCacheMagic)) != 0) return InvalidError("not a pipeline cache");
  if (GetU32(p + 8) != kPipelineCacheFormatVersion) return InvalidError("another format version");
  if (GetU32(p + 12) != key.vendor_id || GetU32(p + 16) != key.device_id) return InvalidError("another device's");
  if (GetU32(p + 20) != key.driver_version) return InvalidError("another driver version's");
  if (std::memcmp(p + 24, key.uuid.data(), key.uuid.size()) != 0) return InvalidError("another pipelineCacheUUID's");
  const uint64_t length = GetU64(p + 40);
  if (length > kMaxDataBytes || length != file.size() - kPipelineCacheHeaderBytes) {
    return InvalidError("its length does not match the file");
  }
  const std::span<const uint8_t> data = file.subspan(kPipelineCacheHeaderBytes);
  const Sha256Digest digest = Sha256Of(data);
  if (std::memcmp(p + 48, digest.data(), digest.size()) != 0) return InvalidError("its checksum does not match");
  // The driver's own header, checked too: it is what the driver will trust.
  if (data.size() < kVulkanHeaderBytes) return InvalidError("the driver's data is shorter than Vulkan's header");
  const uint8_t* v = data.data();
  if (GetU32(v) < kVulkanHeaderBytes || GetU32(v + 4) != kVulkanHeaderVersionOne || GetU32(v + 8) != key.vendor_id ||
      GetU32(v + 12) != key.device_id || std::memcmp(v + 16, key.uuid.data(), key.uuid.size()) != 0) {
    return InvalidError("the driver's header does not match the device");
  }
  return data;
}

std::vector<uint8_t> ReadPipelineCacheFile(const std::string& path, const PipelineCacheKey& key) {
  Result<std::vector<uint8_t>> file = ReadFileBytes(path, kPipelineCacheHeaderBytes + kMaxDataBytes);
  if (!file.ok()) {
    if (file.status().code() != StatusCode::kNotFound) {
      LogWarn("vulkan_pipeline_cache").Field("status", "unreadable").Field("path", path).Field(
          "error", file.status().message());
    }
    return {};
  }
  Result<std::span<const uint8_t>> data = DecodePipelineCacheFile(*file, key);
  if (!data.ok()) {
    LogWarn("vulkan_pipeline_cache").Field("status", "ignored").Field("path", path).Field(
        "reason", data.status().message());
    return {};
  }
  return std::vector<uint8_t>(data->begin(), data->end());
}

Status WritePipelineCacheFile(const std::string& path, const PipelineCacheKey& key, std::span<const uint8_t> data) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  if (error) return Status(StatusCode::kIo, "creating the directory of " + path + ": " + error.message());
  return WriteFileAtomically(path, EncodePipelineCacheFile(key, data));
}

}  // namespace tessera::engine::vulkan
