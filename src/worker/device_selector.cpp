#include "worker/device_selector.h"

#include "engine/backend_registry.h"
#include "util/log.h"

namespace tessera::worker {
namespace {

// Why no GPU is numbered `gpu_id` here, for a refusal or a log line.
std::string NoSuchGpu(int gpu_id, const std::vector<engine::GpuEntry>& numbered) {
  if (numbered.empty()) {
    std::string why = "no GPU here";
    const std::string cuda = engine::DeviceUnavailableReason(engine::Device::Kind::kCuda);
    if (!cuda.empty()) why += "; cuda: " + cuda;
    const std::string vulkan = engine::DeviceUnavailableReason(engine::Device::Kind::kVulkan);
    why += vulkan.empty() ? "; vulkan: CPU-type devices only (used only when named with --device)"
                          : "; vulkan: " + vulkan;
    return why;
  }
  std::string names;
  for (const engine::GpuEntry& gpu : numbered) names += (names.empty() ? "" : ", ") + gpu.device.Name();
  return std::to_string(numbered.size()) + " GPU(s) here: " + names + "; gpu " + std::to_string(gpu_id) +
         " is not one of them";
}

}  // namespace

DeviceSelector::DeviceSelector(bool gpu_fallback) : gpu_fallback_(gpu_fallback) {}

DeviceSelector::DeviceSelector(bool gpu_fallback, engine::GpuInventory inventory)
    : gpu_fallback_(gpu_fallback), described_(std::move(inventory)) {}

const engine::GpuInventory& DeviceSelector::Inventory() const {
  return described_ ? *described_ : engine::MachineGpus();
}

int DeviceSelector::usable_gpu_count() const { return static_cast<int>(engine::NumberedGpus(Inventory()).size()); }

Result<DeviceChoice> DeviceSelector::Select(int32_t requested_gpu_id) const {
  DeviceChoice choice;  // the CPU
  if (requested_gpu_id < 0) return choice;
  const engine::GpuInventory& inventory = Inventory();
  std::vector<engine::Device> chain = engine::FallbackChain(inventory, requested_gpu_id);
  choice.device = chain.front();
  if (gpu_fallback_) choice.next.assign(chain.begin() + 1, chain.end());
  const std::vector<engine::GpuEntry> numbered = engine::NumberedGpus(inventory);
  if (static_cast<size_t>(requested_gpu_id) < numbered.size()) return choice;
  // No GPU has that number: the chain starts at its next step.
  const std::string why = NoSuchGpu(requested_gpu_id, numbered);
  if (!gpu_fallback_) {
    return Status(StatusCode::kDeviceUnavailable,
                  "gpu " + std::to_string(requested_gpu_id) + " is not available (" + why +
                      "); send gpu_id -1 for CPU, or run the worker without --no-gpu-fallback");
  }
  choice.fell_back = true;
  LogStep("gpu " + std::to_string(requested_gpu_id), choice.device, why);
  return choice;
}

Result<DeviceChoice> DeviceSelector::SelectNamed(const engine::Device& device) const {
  DeviceChoice choice;
  choice.device = device;
  if (device.is_cpu()) return choice;
  if (gpu_fallback_) choice.next = {engine::Device::Cpu()};
  const int usable = engine::UsableDeviceCount(device.kind);
  if (device.index < usable) return choice;
  const std::string why =
      usable == 0 ? engine::DeviceUnavailableReason(device.kind) : std::to_string(usable) + " such device(s) here";
  if (!gpu_fallback_) return Status(StatusCode::kDeviceUnavailable, device.Name() + " is not available (" + why + ")");
  choice.device = engine::Device::Cpu();
  choice.next.clear();
  choice.fell_back = true;
  LogStep(device.Name(), choice.device, why);
  return choice;
}

Result<DeviceChoice> DeviceSelector::Next(const DeviceChoice& failed, const Status& why) const {
  if (failed.next.empty()) return why;
  DeviceChoice choice;
  choice.device = failed.next.front();
  choice.next.assign(failed.next.begin() + 1, failed.next.end());
  choice.fell_back = true;
  LogStep(failed.device.Name(), choice.device, why.message());
  return choice;
}

void DeviceSelector::LogStep(const std::string& requested, const engine::Device& runs_on,
                             const std::string& reason) const {
  {
    std::lock_guard<std::mutex> lock(logged_mutex_);
    if (!logged_.insert(requested + ">" + runs_on.Name()).second) return;
  }
  LogWarn("gpu_fallback").Field("requested", requested).Field("runs_on", runs_on.Name()).Field("reason", reason);
}

}  // namespace tessera::worker
