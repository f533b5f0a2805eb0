// `tessera serve`: the job server (seed 001). Owns the store, the scheduler and
// its lanes, the HTTP routes, webhooks, metrics and retention.
#pragma once

#include <memory>
#include <string>

#include "server/server_config.h"
#include "util/status.h"

namespace tessera::server {

class JobServer {
 public:
  // Opens the store, recovers interrupted jobs, starts the lanes and binds the
  // port (0: any free port). `self_binary` is the tessera executable, for the
  // upscale workers when the config names none.
  static Result<std::unique_ptr<JobServer>> Start(const ServerConfig& config, const std::string& self_binary);
  ~JobServer();

  // The bound port.
  int port() const;
  // Serves until Stop() (from another thread or a signal handler thread).
  Status Serve();
  // A graceful stop (SIGTERM): new work is refused (503 with Retry-After, /health
  // says draining), no queued job is started, running jobs get up to
  // drain_timeout_s to finish; then Stop() hands back what still runs. Returns
  // early when Stop() is called meanwhile (a second signal).
  void Drain();
  // Stops accepting requests, interrupts running jobs (they stay queued for the
  // next start) and flushes webhooks. Idempotent.
  void Stop();

  struct State;

 private:
  explicit JobServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tessera::server
