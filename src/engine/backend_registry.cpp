#include "engine/backend_registry.h"

#include "engine/backends/onednn_backend.h"
#include "engine/backends/reference_backend.h"
#include "util/byte_size.h"

namespace tessera::engine {

Result<Precision> ParsePrecision(std::string_view text) {
  if (text == "auto") return Precision::kAuto;
  if (text == "fp32") return Precision::kFp32;
  if (text == "fp16") return Precision::kFp16;
  return InvalidError("precision '" + std::string(text) + "' is not one of auto, fp32, fp16");
}

std::string_view PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kAuto: return "auto";
    case Precision::kFp32: return "fp32";
    case Precision::kFp16: return "fp16";
  }
  return "unknown";
}

Result<BackendOptions> ParseBackendFlags(const std::string& precision, const std::string& vram_budget) {
  BackendOptions options;
  if (!precision.empty()) {
    Result<Precision> parsed = ParsePrecision(precision);
    if (!parsed.ok()) return InvalidError("--precision: " + parsed.status().message());
    options.precision = *parsed;
  }
  if (!vram_budget.empty()) {
    Result<uint64_t> bytes = ParseByteSize(vram_budget);
    if (!bytes.ok()) return InvalidError("--vram-budget: " + bytes.status().message());
    options.vram_budget_bytes = *bytes;
  }
  return options;
}

Status CheckBackendOptions(const Device& device, const BackendOptions& options) {
  if (device.is_cpu() && options.precision == Precision::kFp16) {
    return Status(StatusCode::kUnsupported, "precision fp16 needs a GPU device; the CPU computes in fp32");
  }
  return Status::Ok();
}

int UsableDeviceCount(Device::Kind kind) { return kind == Device::Kind::kCpu ? 1 : 0; }

Result<BackendSet> BackendsFor(const Device& device, const BackendOptions& options) {
  Status checked = CheckBackendOptions(device, options);
  if (!checked.ok()) return checked;
  if (!device.is_cpu()) {
    return Status(StatusCode::kDeviceUnavailable,
                  device.Name() + " is not available: this build has no " +
                      (device.kind == Device::Kind::kCuda ? "CUDA" : "Vulkan") + " backend");
  }
  BackendSet set;
  if (OneDnnBackend::Available()) {
    set.backend = std::make_shared<OneDnnBackend>(options.onednn);
    set.fallback = std::make_shared<ReferenceBackend>();
  } else {
    set.backend = std::make_shared<ReferenceBackend>();
  }
  return set;
}

std::vector<DeviceInfo> ListDevices() {
  std::vector<DeviceInfo> devices;
  DeviceInfo cpu;
  cpu.device = Device::Cpu();
  Result<BackendSet> set = BackendsFor(cpu.device);
  if (set.ok()) {
    cpu.backend = set->backend->name();
    cpu.memory = set->backend->ProbeMemory();
    cpu.detail = set->backend->Fingerprint();
  }
  devices.push_back(cpu);
  return devices;
}

}  // namespace tessera::engine
