// `tessera devices`: the devices this build and machine can run on, the backend
// of each, and its memory; for each kind of GPU with none, why.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "engine/backend_registry.h"

namespace tessera::cli {

void AddDevicesCommand(CLI::App& app, CommandRunner* runner) {
  CLI::App* cmd = app.add_subcommand("devices",
                                     "List the devices (cpu, cuda:N, vulkan:N) this build can run on, with the backend "
                                     "and memory of each. vulkan:N are in the order the Vulkan loader reports them; "
                                     "a CPU-type Vulkan device (llvmpipe) is used only when named with --device");
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
      return 0;
    };
  });
}

}  // namespace tessera::cli
