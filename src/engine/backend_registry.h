// Which backend runs on which device, and the choices every backend shares
// (--precision, --vram-budget), parsed and checked in one place.
//
// "cpu" is oneDNN where it starts (else the reference kernels), with the
// reference kernels as the fallback for the layers oneDNN declines. "cuda:N" is
// the CUDA backend in builds with TESSERA_CUDA (docs/gpu.md); kDeviceUnavailable
// with the reason where this machine has no usable NVIDIA GPU. "vulkan:N" is
// the Vulkan backend in builds with TESSERA_VULKAN (docs/vulkan.md), the N-th
// device the Vulkan loader reports; kDeviceUnavailable with the reason where
// there is no loader, driver or such device. A GPU backend's fallback, for the
// layers it declines, is the reference kernels: they run every layer type,
// where oneDNN declines bicubic Interp (realesr-animevideov3-x2's last layer),
// and the executor takes one fallback.
//
// Devices chosen automatically are real GPUs only: a CPU-type Vulkan device
// (Mesa's llvmpipe) runs only when named explicitly (`--device vulkan:N`);
// DeviceInfo::automatic says which. The protocol's gpu_id and the server's
// lanes number real GPUs by engine/gpu_chain.h's rule over MachineGpus().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/backend.h"
#include "engine/backends/onednn_backend.h"
#include "engine/device.h"
#include "engine/gpu_chain.h"
#include "util/status.h"

namespace tessera::engine {

// Storage precision of activations (and, on CUDA, weights). kAuto: fp16 (fp32
// accumulation) on CUDA GPUs and on Vulkan GPUs with 16-bit storage; fp32 on
// CPUs and CPU-type Vulkan devices (llvmpipe). fp16 is refused on the CPU and
// on a Vulkan device without 16-bit storage.
enum class Precision { kAuto, kFp32, kFp16 };
Result<Precision> ParsePrecision(std::string_view text);  // "auto", "fp32", "fp16"
std::string_view PrecisionName(Precision precision);

struct BackendOptions {
  Precision precision = Precision::kAuto;
  // Device memory this process may use on a GPU (0: no limit beyond the free
  // memory the device reports). Ignored on the CPU, whose budget is --ram-budget.
  uint64_t vram_budget_bytes = 0;
  // A GPU's cached device blocks idle this long go back to the device (--pool-idle-release).
  std::chrono::milliseconds pool_idle_release{std::chrono::seconds(30)};
  OneDnnBackendOptions onednn;  // CPU tuning (tests force layouts through it)
  // Where a Vulkan device keeps its VkPipelineCache between processes (the plan
  // cache's directory; empty: not kept). Ignored by the other backends.
  std::string pipeline_cache_dir;
};

// --precision and --vram-budget as the user typed them (empty: the defaults),
// parsed and checked once for every command and backend; kInvalid names the flag.
Result<BackendOptions> ParseBackendFlags(const std::string& precision, const std::string& vram_budget);

// Checks the options against the device: kInvalid / kUnsupported with the
// reason (fp16 on the CPU, which computes in fp32 only, and on a Vulkan device
// without 16-bit storage).
Status CheckBackendOptions(const Device& device, const BackendOptions& options);

// The backends of one device: the one that runs the graph, and the fallback for
// the layers it declines (null when it declines none).
struct BackendSet {
  std::shared_ptr<Backend> backend;
  std::shared_ptr<Backend> fallback;
};

// kDeviceUnavailable with the reason when this build or machine has no such
// device.
Result<BackendSet> BackendsFor(const Device& device, const BackendOptions& options = {});

// A device as `tessera devices` lists it.
struct DeviceInfo {
  Device device;
  std::string backend;  // "onednn", "reference", "cuda", ...
  BackendMemory memory;
  std::string detail;  // e.g. "isa=avx512_core layout=auto"
  // May be chosen without being named (false for a CPU-type Vulkan device).
  bool automatic = true;
};

// Every device this build and machine can run on (the CPU always).
std::vector<DeviceInfo> ListDevices();

// This machine's CUDA and Vulkan devices, for numbering GPUs (engine/gpu_chain.h);
// asked once per process.
const GpuInventory& MachineGpus();

// GPUs of a kind usable here (0 without a GPU backend built in, or without a
// driver and device).
int UsableDeviceCount(Device::Kind kind);

// Why no GPU of `kind` is usable here (empty when one is): the build has no
// such backend, no driver, no device.
std::string DeviceUnavailableReason(Device::Kind kind);

// Device memory the GPU backends of this process hold on `device` (in use and
// cached); 0 for the CPU and in builds without a GPU backend.
uint64_t DeviceBytesHeld(const Device& device);

// Whether this build has the CUDA backend compiled in.
bool BuiltWithCuda();
// Whether this build has the Vulkan backend compiled in.
bool BuiltWithVulkan();

}  // namespace tessera::engine
