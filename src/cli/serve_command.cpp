// `tessera serve`: the job server. Every setting of src/server/server_config.h is
// a flag here (--results-dir ...), an environment variable and a config-file key.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "server/job_server.h"
#include "util/failpoint.h"
#include "util/log.h"

namespace tessera::cli {
namespace {

struct ServeFlags {
  std::map<std::string, std::string> values;  // by setting key, only those given
  std::string config_path;
  std::string port_file;
  std::string log_format = "json";
  std::string test_failpoints;  // test-only failure injection (src/util/failpoint.h)
};

std::string SelfExecutable() {
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return "tessera";
  path[n] = '\0';
  return path;
}

// Writes the bound port (tests pass a FIFO here and block reading it).
void WritePortFile(const std::string& path, int port) {
  if (path.empty()) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    LogWarn("port_file_failed").Field("path", path);
    return;
  }
  std::string text = std::to_string(port) + "\n";
  ssize_t ignored = ::write(fd, text.data(), text.size());
  (void)ignored;
  ::close(fd);
}

int RunServe(const ServeFlags& flags) {
  SetLogFormat(flags.log_format == "json" ? LogFormat::kJson : LogFormat::kKeyValue);
  if (!flags.test_failpoints.empty()) {
    if (Status armed = ArmFailpoints(flags.test_failpoints); !armed.ok()) {
      std::fprintf(stderr, "tessera serve: --test-failpoints: %s\n", armed.message().c_str());
      return 2;
    }
    LogWarn("failpoints_armed").Field("spec", flags.test_failpoints);
  }
  auto config = server::LoadServerConfig(flags.values, server::ProcessEnvironment(), flags.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "tessera serve: invalid configuration: %s\n", config.status().message().c_str());
    return 2;
  }
  // Signals are taken by one thread with sigwait, so every other thread (HTTP,
  // lanes) runs with them blocked and a stop is an ordinary call.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto server = server::JobServer::Start(*config, SelfExecutable());
  if (!server.ok()) {
    std::fprintf(stderr, "tessera serve: %s\n", server.status().message().c_str());
    return 1;
  }
  server::JobServer* running = server->get();
  // SIGTERM drains (JobServer::Drain: running jobs may finish, up to
  // drain_timeout_s) on a thread of its own, so that this one still hears a
  // second SIGTERM or a SIGINT, which stops at once. SIGINT alone (Ctrl-C) stops
  // at once too. SIGUSR1 comes from below once Serve returned.
  std::thread signal_thread([&signals, running] {
    int received = 0;
    sigwait(&signals, &received);
    if (received == SIGUSR1) return running->Stop();
    LogInfo("signal_received").Field("signal", received);
    if (received != SIGTERM) return running->Stop();
    std::thread drainer([running] { running->Drain(); });
    sigwait(&signals, &received);
    if (received != SIGUSR1) {
      LogInfo("signal_received").Field("signal", received).Field("action", "stop now: running jobs handed back");
    }
    running->Stop();
    drainer.join();
  });
  WritePortFile(flags.port_file, running->port());
  Status served = running->Serve();
  pthread_kill(signal_thread.native_handle(), SIGUSR1);  // wakes it if no signal came
  signal_thread.join();
  server->reset();
  if (!served.ok()) {
    std::fprintf(stderr, "tessera serve: %s\n", served.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app, CommandRunner* runner) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Run the job server: REST API for video generation and upscale jobs, FIFO over the GPUs (or CPU lanes), "
      "SQLite store (or PostgreSQL: --store). SIGTERM drains (new jobs refused, running ones get --drain-timeout-s to "
      "finish, then go back to the queue); a second SIGTERM or Ctrl-C stops at once. "
      "Precedence: flags > environment > config file > defaults. Routes and settings: docs/server.md.");
  cmd->add_option("--config", flags->config_path, "JSON file of settings (keys as below, with _; default: $TESSERA_CONFIG)");
  cmd->add_option("--port-file", flags->port_file, "Write the bound port here once listening (useful with --port 0)");
  cmd->add_option("--log-format", flags->log_format, "Log lines on stderr: json or kv (key=value)")
      ->check(CLI::IsMember({"json", "kv"}))
      ->capture_default_str();
  cmd->add_option("--test-failpoints", flags->test_failpoints,
                  "TESTS ONLY: make named points fail (e.g. store.create_batch,upload.write@3); off by default")
      ->group("");  // hidden from --help: not for production
  for (const server::SettingSpec& setting : server::ServerSettings()) {
    std::string flag = "--" + setting.key;
    for (char& c : flag) {
      if (c == '_') c = '-';
    }
    std::string help = setting.help + (setting.env.empty() ? "" : " [env " + setting.env + "]");
    std::string key = setting.key;
    cmd->add_option_function<std::string>(
        flag, [flags, key](const std::string& value) { flags->values[key] = value; }, help);
  }
  cmd->callback([runner, flags] { *runner = [flags] { return RunServe(*flags); }; });
}

}  // namespace tessera::cli
