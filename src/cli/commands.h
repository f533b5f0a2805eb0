// Subcommands of the tessera binary. Each registers its flags on the app and
// returns the function that runs it once parsing succeeded.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace tessera::cli {

using CommandRunner = std::function<int()>;

void AddWorkerCommand(CLI::App& app, CommandRunner* runner);
void AddUpscaleCommand(CLI::App& app, CommandRunner* runner);
void AddVersionCommand(CLI::App& app, CommandRunner* runner);
void AddServeCommand(CLI::App& app, CommandRunner* runner);
void AddDevicesCommand(CLI::App& app, CommandRunner* runner);
void AddThumbnailCommand(CLI::App& app, CommandRunner* runner);
void AddStoreCommand(CLI::App& app, CommandRunner* runner);

}  // namespace tessera::cli
