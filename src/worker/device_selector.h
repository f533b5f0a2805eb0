// Turns a request's gpu_id into the device that will run it, or takes a device
// the user named, applying the fallback policy.
//
// gpu_id follows engine/gpu_chain.h: -1 is the CPU; N is the N-th real GPU of
// the machine (CUDA devices, then Vulkan discrete, virtual and integrated
// GPUs; never a CPU-type Vulkan device such as llvmpipe). With fallback on
// (the default), a request that cannot run on its GPU moves along seed 000's
// chain "GPU → iGPU → CPU" with a log line (event=gpu_fallback) at each step:
// when the GPU is absent (here, at Select) and when it cannot be opened (the
// caller, through Next). With --no-gpu-fallback an unusable GPU is
// DEVICE_UNAVAILABLE.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/gpu_chain.h"
#include "util/status.h"

namespace tessera::worker {

struct DeviceChoice {
  engine::Device device;   // the device that runs
  bool fell_back = false;  // a GPU was asked for and another device runs instead
  // Where to go when `device` cannot be opened (empty: nowhere; the error stands).
  std::vector<engine::Device> next;
  std::string Name() const { return device.Name(); }
};

class DeviceSelector {
 public:
  // On this machine (engine::MachineGpus(), probed on the first request for a
  // GPU: a CPU-only process never opens the GPU drivers).
  explicit DeviceSelector(bool gpu_fallback);
  // On a described machine (tests).
  DeviceSelector(bool gpu_fallback, engine::GpuInventory inventory);

  Result<DeviceChoice> Select(int32_t requested_gpu_id) const;
  // A device the user named (WorkerOptions::device), under the same fallback
  // policy: unusable here means the CPU (logged) or DEVICE_UNAVAILABLE.
  Result<DeviceChoice> SelectNamed(const engine::Device& device) const;
  // The named device when there is one (it wins over the request's gpu_id), else gpu_id's.
  Result<DeviceChoice> Select(const std::optional<engine::Device>& named, int32_t requested_gpu_id) const {
    return named ? SelectNamed(*named) : Select(requested_gpu_id);
  }
  // The next step of the chain after `failed.device` could not be opened
  // (`why`); logs it. `why` itself when there is no next step.
  Result<DeviceChoice> Next(const DeviceChoice& failed, const Status& why) const;

  // `open` (a backend, a model) on `choice`'s device, and on each next step of
  // the chain, logged, while the device is unavailable; `choice` ends on the
  // device that opened, or on the last one tried.
  template <typename T, typename OpenFn>
  Result<T> OpenAlongChain(DeviceChoice& choice, const OpenFn& open) const {
    Result<T> opened = open(choice.device);
    while (!opened.ok() && opened.status().code() == StatusCode::kDeviceUnavailable && !choice.next.empty()) {
      Result<DeviceChoice> next = Next(choice, opened.status());
      if (!next.ok()) break;
      choice = std::move(next).value();
      opened = open(choice.device);
    }
    return opened;
  }

  // GPUs a gpu_id may name here.
  int usable_gpu_count() const;

 private:
  // Logs one step of the chain, once per process and step: a worker serving
  // many requests says it once, not per request.
  void LogStep(const std::string& requested, const engine::Device& runs_on, const std::string& reason) const;

  // The described machine, else this one (probed once per process, on first use).
  const engine::GpuInventory& Inventory() const;

  bool gpu_fallback_;
  std::optional<engine::GpuInventory> described_;  // tests' machine; else this one's
  mutable std::mutex logged_mutex_;
  mutable std::set<std::string> logged_;
};

}  // namespace tessera::worker
