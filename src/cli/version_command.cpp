#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"

#ifndef TESSERA_VERSION
#define TESSERA_VERSION "0.0.0"
#endif

namespace tessera::cli {

void AddVersionCommand(CLI::App& app, CommandRunner* runner) {
  CLI::App* cmd = app.add_subcommand("version", "Print the version and the protocol version");
  cmd->callback([runner] {
    *runner = [] {
      std::printf("tessera %s (protocol v2)\n", TESSERA_VERSION);
      return 0;
    };
  });
}

}  // namespace tessera::cli
