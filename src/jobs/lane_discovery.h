// Which lanes the scheduler runs: one per GPU, or CPU lanes when there is none.
//
// Seed 001 section 7: GPU_IDS when set, else NVIDIA_VISIBLE_DEVICES, else the
// GPUs `nvidia-smi -L` lists; when those name none, the machine's other real
// GPUs (Vulkan discrete, virtual and integrated ones: engine/gpu_chain.h, never
// a CPU-type device such as llvmpipe). With no GPU at all, `cpu_lanes` CPU lanes.
// A GPU lane's gpu_id is the number the worker protocol gives that GPU, and
// its name the device's ("cuda:0", "vulkan:1").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace tessera::jobs {

struct LaneSpec {
  std::string name;  // "cuda:0", "vulkan:1", "cpu:0"
  int gpu_id = -1;   // -1: a CPU lane
};

struct LaneSources {
  std::optional<std::string> gpu_ids;                 // GPU_IDS, e.g. "0,1"
  std::optional<std::string> nvidia_visible_devices;  // NVIDIA_VISIBLE_DEVICES
  std::optional<std::string> nvidia_smi_list;         // output of `nvidia-smi -L`, if it ran
  // The machine's real GPUs by gpu_id (engine::NumberedGpus): names for the
  // numbers above, and the lanes when they name none.
  std::vector<std::string> numbered_gpus;
  int cpu_lanes = 1;
};

// kInvalid for malformed GPU_IDS ("0,x", duplicates, negatives) or cpu_lanes < 1.
// NVIDIA_VISIBLE_DEVICES values "all" defer to nvidia-smi; "none", "void" and ""
// mean no GPU; UUIDs are numbered in order.
Result<std::vector<LaneSpec>> DiscoverLanes(const LaneSources& sources);

// Runs `nvidia-smi -L`; nullopt when it is absent or fails.
std::optional<std::string> RunNvidiaSmiList();

}  // namespace tessera::jobs
