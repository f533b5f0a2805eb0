// tessera: one binary, subcommands. This file only wires the subcommands together.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "util/log.h"

int main(int argc, char** argv) {
  CLI::App app{"tessera: a job server and keep-alive worker for AI image and video work on GPUs and CPUs"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags such as --log-level may follow the subcommand
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "Minimum level of the key=value log lines on stderr")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();

  tessera::cli::CommandRunner runner;
  tessera::cli::AddWorkerCommand(app, &runner);
  tessera::cli::AddUpscaleCommand(app, &runner);
  tessera::cli::AddServeCommand(app, &runner);
  tessera::cli::AddDevicesCommand(app, &runner);
  tessera::cli::AddThumbnailCommand(app, &runner);
  tessera::cli::AddStoreCommand(app, &runner);
  tessera::cli::AddVersionCommand(app, &runner);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  tessera::LogLevel level = tessera::LogLevel::kInfo;
  tessera::ParseLogLevel(log_level, &level);
  tessera::SetLogLevel(level);
  return runner ? runner() : 2;
}
