// `tessera devices`: the devices this build and machine can run on, the backend
// of each, and its memory; for each kind of GPU with none, why.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/backend_registry.h"

namespace tessera::cli {

void AddDevicesCommand(CLI::App& app, CommandRunner* runner) {
  CLI::App* cmd = app.add_subcommand("devices",
                                     "List the devices (cpu, cuda:N, vulkan:N) this build can run on, with the backend "
                                     "and memory of each. vulkan:N are in the order the Vulkan loader reports them; "
                                     "a CPU-type Vulkan device (llvmpipe) is used only when named with --device. "
                                     "Then the GPUs a request's gpu_id (and a server lane) numbers, and the order a "
                                     "request falls back along: its GPU, an integrated GPU, the CPU");
  cmd->callback([runner] {
    *runner = [] {
      std::printf("%-10s %-10s %12s %12s  %s\n", "device", "backend", "free_mib", "total_mib", "detail");
      for (const engine::DeviceInfo& d : engine::ListDevices()) {
        const auto mib = [&](uint64_t bytes) { return d.memory.known ? std::to_string(bytes >> 20) : std::string("?"); };
        std::printf("%-10s %-10s %12s %12s  %s\n", d.device.Name().c_str(), d.backend.c_str(),
                    mib(d.memory.free_bytes).c_str(), mib(d.memory.total_bytes).c_str(), d.detail.c_str());
      }
      for (const auto& [kind, name] :
           {std::pair{engine::Device::Kind::kCuda, "cuda"}, std::pair{engine::Device::Kind::kVulkan, "vulkan"}}) {
        if (engine::UsableDeviceCount(kind) == 0) {
          std::printf("(no %s devices: %s)\n", name, engine::DeviceUnavailableReason(kind).c_str());
        }
      }
      const std::vector<engine::GpuEntry> gpus = engine::NumberedGpus(engine::MachineGpus());
      if (gpus.empty()) std::printf("gpu_id: no GPU to number; a request's gpu_id >= 0 runs on the cpu\n");
      for (size_t i = 0; i < gpus.size(); ++i) {
        std::string chain;
        for (const engine::Device& d : engine::FallbackChain(engine::MachineGpus(), static_cast<int>(i))) {
          chain += (chain.empty() ? "" : " -> ") + d.Name();
        }
        std::printf("gpu_id %zu = %s (%s, %s): falls back %s\n", i, gpus[i].device.Name().c_str(),
                    std::string(engine::GpuClassName(gpus[i].cls)).c_str(), gpus[i].name.c_str(), chain.c_str());
      }
      return 0;
    };
  });
}

}  // namespace tessera::cli
